"""Overview: is the fleet healthy right now? Status, pass rate, throughput and failures at a glance."""

from __future__ import annotations

import streamlit as st

from lib import charts
from lib.aggregator import utc_now
from lib.ui import context, panels, safe, share, sidebar

context.page("Overview")

settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Overview")
filters = " · ".join(f"{name}: {safe.md(', '.join(values))}" for name, values in spec.filters)
st.caption(
    f"{spec.describe(utc_now())}"
    + (f" · {filters}" if filters else "")
    + " · pass rate = passed / (passed + failed + error)"
)

share.link(spec)

if agg.summary()["results"] == 0:
    st.info(
        f"The database `{store.path}` holds no results yet. Upload result files on the Data "
        "page, or stop the dashboard (one process owns the file) and run "
        f"`dtd ingest --db {store.path} PATH...` for your reports, or "
        f"`dtd demo --db {store.path}` for demo data.",
        icon=":material/inbox:",
    )
    st.stop()

counts = agg.status_counts(spec)
current, previous = counts["current"], counts["previous"]
fleet = agg.workers(spec.filter_values("hardware"))
states = fleet["state"].value_counts()


def _change(value: float | None, before: float | None, template: str = "{:+,}") -> str | None:
    """The tile's delta against the previous period, or none when there is nothing to compare."""
    return None if value is None or before is None else template.format(value - before)


tiles = st.columns(6)
tiles[0].metric(
    "Results",
    f"{current['results']:,}",
    _change(current["results"], previous and previous["results"]),
    help="Results in the range; the change is against the range just before it.",
)
rate = current["pass_rate"]
tiles[1].metric(
    "Pass rate",
    "–" if rate is None else f"{rate:.1%}",
    _change(
        rate and rate * 100,
        previous and previous["pass_rate"] and previous["pass_rate"] * 100,
        "{:+.1f} pp",
    ),
    help="passed / (passed + failed + error); skipped results do not count.",
)
failures = current["failed"] + current["error"]
tiles[2].metric(
    "Failures",
    f"{failures:,}",
    _change(failures, previous and previous["failed"] + previous["error"]),
    delta_color="inverse",
    help=f"{current['failed']:,} failed and {current['error']:,} errors (infrastructure or setup).",
)
tiles[3].metric(
    "Active workers",
    int(states.get("active", 0) + states.get("idle", 0)),
    help=f"{int(states.get('active', 0))} running a task, "
    f"{int(states.get('idle', 0))} idle; heartbeat within 3 intervals.",
)
tiles[4].metric(
    "Stale workers", int(states.get("stale", 0)), help="Missed 3 or more heartbeats, fewer than 10."
)
tiles[5].metric(
    "Dead workers", int(states.get("dead", 0)), help="No heartbeat for 10 intervals or more."
)
if states.get("unknown", 0):
    st.caption(
        f"{int(states['unknown'])} more workers are known only from result files (such as a JUnit "
        "report's hostname); without heartbeats nothing says whether they are alive."
    )

left, right = st.columns(2)
over_time = agg.status_over_time(spec)
step = int(over_time.attrs.get("bucket_seconds", 3600))
with left:
    st.subheader("Pass rate over time")
    if over_time["pass_rate"].notna().any():
        data = over_time[["bucket", "pass_rate", "passed", "failed", "error", "skipped"]]
        panels.chart(charts.pass_rate(data, step), data, "pass_rate_over_time")
    else:
        st.info("No executed results in this range.")
with right:
    st.subheader("Results by status")
    data = over_time[["bucket", "passed", "failed", "error", "skipped"]]
    panels.chart(charts.status_volume(data, step), data, "results_by_status")

st.subheader("Throughput over time, by hardware")
throughput = agg.metric_index_over_time(spec, "throughput_items_per_second", "hardware")
if len(throughput):
    panels.chart(
        charts.metric_index(
            throughput,
            int(throughput.attrs.get("bucket_seconds", step)),
            "throughput",
            "higher",
            "Hardware",
        ),
        throughput,
        "throughput_index_by_hardware",
        caption="Each value is divided by its configuration's median in this range, then averaged "
        "geometrically per bucket: 0.90 means 10 % below usual. Click a legend entry to "
        "focus it; drag to pan, scroll to zoom.",
    )
else:
    st.info("No throughput measurements in this range and filter.")

st.subheader("Latest failures")
failed = agg.latest_failures(spec, settings.max_items_per_page)
if len(failed):
    panels.table(
        failed,
        "latest_failures",
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "message": st.column_config.TextColumn(width="large"),
        },
    )
else:
    st.success("No failures in this range.", icon=":material/check_circle:")
