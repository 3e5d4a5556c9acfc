"""Regressions: detected changes with their evidence, their reach, and people's verdicts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib import charts, regressions
from lib.analysis import heatmap_grid
from lib.schema import REVIEW_STATUSES, SEVERITIES
from lib.ui import context, panels, safe, share, sidebar
from lib.validation import MAX_MESSAGE

context.page("Regressions")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Regressions")
done = agg.run(regressions.progress)
if done["pairs"] and done["analysed"] < done["pairs"]:
    st.info(
        f"Change-point analysis is running: {done['analysed']:,} of {done['pairs']:,} "
        "series and metrics so far. The lists fill in as it goes.",
        icon=":material/hourglass_top:",
    )

c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
severities = c1.multiselect(
    "Severity",
    [s for s in SEVERITIES if s != "none"],
    default=["minor", "moderate", "major", "critical"],
    key="severity",
    bind="query-params",
)
statuses = c2.multiselect(
    "Status", list(REVIEW_STATUSES), key="status", bind="query-params", placeholder="All"
)
unstable = c3.toggle(
    "Unstable series too",
    key="unstable",
    bind="query-params",
    help="Series whose noise (robust CV) exceeds 10 %: shown on request, never counted as alarms.",
)
significant = c4.toggle(
    "Significant only",
    key="significant",
    bind="query-params",
    help="Benjamini-Hochberg q < 0.05 across every detected change.",
)
share.link(spec, severity=severities, status=statuses, unstable=unstable, significant=significant)
common = dict(
    severities=tuple(severities),
    statuses=tuple(statuses),
    include_unstable=unstable,
    significant_only=significant,
)
columns = {
    "change_id": None,
    "changed_at": st.column_config.DatetimeColumn("changed (UTC)", format="YYYY-MM-DD HH:mm"),
    "change": st.column_config.NumberColumn("change", format="percent"),
    "ci_low": st.column_config.NumberColumn("95 % low", format="percent"),
    "ci_high": st.column_config.NumberColumn("95 % high", format="percent"),
    "p_value": st.column_config.NumberColumn("p", format="%.1e"),
    "q_value": st.column_config.NumberColumn("q (BH)", format="%.1e"),
}
found = {
    kind: agg.run(regressions.listing, spec, kinds=(kind,), **common)
    for kind in ("regression", "improvement")
}
tiles = st.columns(4)
tiles[0].metric("Regressions", f"{len(found['regression']):,}")
tiles[1].metric(
    "Critical or major", f"{found['regression']['severity'].isin(['critical', 'major']).sum():,}"
)
tiles[2].metric("Open", f"{(found['regression']['status'] == 'open').sum():,}")
tiles[3].metric("Improvements", f"{len(found['improvement']):,}")
tab_regressions, tab_improvements = st.tabs(["Regressions", "Improvements"])
for tab, kind in ((tab_regressions, "regression"), (tab_improvements, "improvement")):
    with tab:
        if found[kind].empty:
            st.info(f"No {kind}s in this range and filter.")
        else:
            panels.table(found[kind].drop(columns=["series_id"]), f"{kind}s", column_config=columns)

# ------------------------------------------------------------------ one change
st.divider()
listed = pd.concat([found["regression"], found["improvement"]])
labels = {
    row.change_id: f"{row.change:+.1%} {row.metric} · {row.test} · {row.hardware or ''} "
    f"{row.model or ''} · {row.changed_at:%Y-%m-%d %H:%M}"
    for row in listed.head(200).itertuples()
}
wanted = panels.url_pick("Explain", labels, "change", "change_pick")
if not wanted or not wanted.lstrip("-").isdigit():
    st.caption("Pick a change to see its evidence, its commit range and how far it reached.")
    st.stop()
record = agg.run(regressions.detail, int(wanted))
if record is None:
    st.warning(f"No change point has the id {safe.md(wanted)}.", icon=":material/warning:")
    st.stop()
st.subheader(
    f"{record['kind'].capitalize()}: {record['change']:+.1%} in {safe.md(record['metric'])}"
)
st.caption(f"{safe.md(record['test'])} · {safe.md(record['configuration'])}")
better = {"higher": "higher is better", "lower": "lower is better"}.get(record["direction"], "")
tiles = st.columns(5)
tiles[0].metric(
    "Change of median",
    f"{record['change']:+.1%}",
    help=f"95 % bootstrap interval {record['ci_low']:+.1%} to {record['ci_high']:+.1%}; {better}",
)
tiles[1].metric(
    "Before → after",
    f"{record['before_median']:,.4g} → {record['after_median']:,.4g}",
    help=f"{record['before_n']} and {record['after_n']} values",
)
tiles[2].metric(
    "p (Mann-Whitney)",
    f"{record['p_value']:.1e}",
    help=f"q = {record['q_value']:.1e} after Benjamini-Hochberg over every change",
)
tiles[3].metric("Severity", record["severity"], help="5 / 10 / 20 / 30 % cut-offs")
tiles[4].metric("Status", record["status"])
commits = (
    f"`{safe.md((record['commit_before'] or '?')[:12])}` → "
    f"`{safe.md((record['commit_after'] or '?')[:12])}`"
)
st.markdown(
    f"**Commit range** {commits} · changed {record['changed_at']:%Y-%m-%d %H:%M} UTC"
    + (" · **unstable series** (CV > 10 %): shown, not alarmed" if record["unstable"] else "")
)

points = agg.run(
    regressions.series_points,
    int(record["series_id"]),
    record["metric"],
    record["changed_at"].to_pydatetime(),
)
others = agg.run(regressions.series_changes, int(record["series_id"]), record["metric"])
left, right = st.columns([3, 1])
with left:
    panels.chart(charts.change_explained(points, record, others), points, f"change_{wanted}")
with right:
    windows = points.assign(window=None)
    windows.loc[
        (points["ts"] >= record["before_start"]) & (points["ts"] <= record["before_end"]), "window"
    ] = "before"
    windows.loc[
        (points["ts"] >= record["after_start"]) & (points["ts"] <= record["after_end"]), "window"
    ] = "after"
    windows = windows.dropna(subset=["window"])
    panels.chart(charts.before_after(windows), windows, f"change_{wanted}_windows")

with st.form("review"):
    st.markdown("**Your verdict**")
    status = st.selectbox(
        "Status",
        REVIEW_STATUSES,
        index=list(REVIEW_STATUSES).index(record["status"]),
        key="review_status",
    )
    note = st.text_input(
        "Note",
        placeholder="why (a ticket, an expected change, ...)",
        key="review_note",
        max_chars=MAX_MESSAGE,
    )
    if st.form_submit_button("Save", disabled=store.read_only):
        regressions.review(store, int(wanted), status, note)
        st.rerun()
if len(record["reviews"]):
    panels.table(record["reviews"], f"change_{wanted}_reviews")

if record["commit_after"]:
    st.subheader("Blast radius of this commit")
    reach = agg.run(regressions.blast_radius, record["commit_after"], record["metric"])
    st.caption(
        f"Every change of {safe.md(record['metric'])} that starts at commit "
        f"{safe.md(record['commit_after'][:12])}: median change per model and hardware."
    )
    grid = heatmap_grid(reach, False, "higher")
    panels.chart(
        charts.heatmap(grid, "Model", "Hardware", "median change", "+.0%"),
        grid.drop(columns="relative"),
        f"blast_radius_{wanted}",
    )
