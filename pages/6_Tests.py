"""Tests: which are broken, which are flaky, and what one test has been doing."""

from __future__ import annotations

import streamlit as st

from lib import charts, health
from lib.ui import context, panels, safe, share, sidebar

context.page("Tests")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Tests")
sick = agg.run(health.flagged_workers, spec)
tests = agg.run(health.test_health, spec, exclude_workers=sick)
if tests.empty:
    st.info(
        "No test results in this range and filter (benchmarks are on the performance pages).",
        icon=":material/checklist:",
    )
    st.stop()

states = tests["state"].value_counts()
tiles = st.columns(6)
tiles[0].metric("Tests", f"{len(tests):,}", help="Test configurations: a test on one platform.")
tiles[1].metric("Broken", int(states.get("broken", 0)), help="The last 3 runs failed.")
tiles[2].metric(
    "Flaky",
    int(states.get("flaky", 0)),
    help="Passed and failed on the same commit, or flips between pass and fail at "
    "least every fifth run of the last 20 with a failure rate of 5 to 95 %.",
)
tiles[3].metric("Failing", int(states.get("failing", 0)), help="The last run failed.")
tiles[4].metric(
    "Recovered",
    int(states.get("recovered", 0)),
    help="Failed 3 or more times in a row earlier; passing now.",
)
executed = tests["runs"] - tests["skipped"]
rate = (tests["runs"] - tests["skipped"] - tests["failures"]).sum() / max(executed.sum(), 1)
tiles[5].metric("Pass rate", f"{rate:.1%}", help="passed / executed over all tests shown.")
if sick:
    st.caption(
        f"Results of {len(sick)} flagged worker(s) ({safe.md(', '.join(sick))}) are set "
        "aside: a sick machine makes every test it runs look flaky. See the Workers page."
    )

c1, c2, c3, c4, c5 = st.columns([4, 3, 2, 1, 1])
search = c1.text_input("Search", key="q", bind="query-params", placeholder="test or platform")
chosen_states = c2.multiselect(
    "State", list(health.STATE_ORDER), key="state", bind="query-params", placeholder="All"
)
sort_by = c3.selectbox("Sort by", health.SORTABLE, key="sort", bind="query-params")
descending = c4.toggle("Desc", key="desc", bind="query-params")
shown = tests[tests["state"].isin(chosen_states)] if chosen_states else tests
size = settings.max_items_per_page
pages = max(1, -(-len(shown) // size))
page = c5.number_input(
    "Page", min_value=1, max_value=pages, value=1, key="page", bind="query-params"
)
rows, total, page = health.page_of(shown, search, sort_by, descending, int(page), size)
share.link(spec, q=search, state=chosen_states, sort=sort_by, desc=descending, page=page)
st.caption(
    f"{total:,} tests match; page {page} of {max(1, -(-total // size))} "
    f"({size} per page, `max_items_per_page`)."
)
table = rows.drop(columns=["series_id"])
panels.table(
    table,
    "tests",
    column_config={
        "pass_rate": st.column_config.NumberColumn("pass rate", format="percent"),
        "pass_rate_low": st.column_config.NumberColumn("95 % low", format="percent"),
        "pass_rate_high": st.column_config.NumberColumn("95 % high", format="percent"),
        "flaky_score": st.column_config.NumberColumn("flaky score", format="%.2f"),
        "duration_trend": st.column_config.NumberColumn(
            "duration trend",
            format="percent",
            help="Median of the last 10 runs against the 10 before.",
        ),
        "strip": st.column_config.TextColumn("last runs (old → new)"),
        "recent_durations": st.column_config.LineChartColumn("durations (s)"),
        "last_run": st.column_config.DatetimeColumn("last run (UTC)", format="YYYY-MM-DD HH:mm"),
    },
)

# ------------------------------------------------------------------ one test
st.divider()
labels = dict(zip(rows["series_id"], rows["test"] + " · " + rows["configuration"], strict=True))
wanted = panels.url_pick("Details for", labels, "test", "test_pick")
if not wanted or not wanted.lstrip("-").isdigit():
    st.caption("Pick a test to see its history, durations and failure clusters.")
    st.stop()
series_id = int(wanted)
identity = agg.run(health.test_identity, series_id)
if identity is None:
    st.warning(f"No test has the id {safe.md(wanted)}.", icon=":material/warning:")
    st.stop()
st.subheader(safe.md(identity["test"]))
st.caption(f"{safe.md(identity['configuration'] or 'no configuration')} · {identity['kind']}")
runs = agg.run(health.test_runs, spec, series_id=series_id)
mine = tests[tests["series_id"] == series_id]
if len(mine):
    row = mine.iloc[0]
    tiles = st.columns(4)
    tiles[0].metric("State", row["state"])
    tiles[1].metric("Runs", f"{int(row['runs']):,}")
    tiles[2].metric(
        "Pass rate",
        "–" if row["pass_rate"] != row["pass_rate"] else f"{row['pass_rate']:.1%}",
        help=f"Wilson 95 % interval {row['pass_rate_low']:.1%} to {row['pass_rate_high']:.1%}"
        if row["pass_rate"] == row["pass_rate"]
        else None,
    )
    tiles[3].metric("Flaky score", f"{row['flaky_score']:.2f}")
if runs.empty:
    st.info("No runs of this test in the range.")
    st.stop()
timed = runs.dropna(subset=["duration_s"])
if len(timed):
    panels.chart(
        charts.durations(timed),
        timed[["time", "status", "duration_s", "worker"]],
        f"durations_{series_id}",
    )
left, right = st.columns(2)
with left:
    st.markdown("**Failures by cause** (messages with numbers, ids and paths taken out)")
    panels.table(health.failure_clusters(runs), f"failure_clusters_{series_id}")
with right:
    st.markdown("**Where it ran and failed**")
    panels.table(
        agg.run(health.failure_places, spec, series_id=series_id), f"failure_places_{series_id}"
    )
st.markdown("**History**")
panels.table(
    runs,
    f"history_{series_id}",
    column_config={
        "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss")
    },
)
