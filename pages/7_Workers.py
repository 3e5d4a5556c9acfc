"""Workers: which machines are alive, busy, and failing more than their peers."""

from __future__ import annotations

import streamlit as st

from lib import charts, health, queries
from lib.queries import bucket_seconds, effective_window
from lib.ui import context, panels, safe, sidebar

context.page("Workers")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings, default_refresh="30s")
agg, spec = view.aggregator, view.spec

st.title("Workers")
fleet = agg.run(queries.workers, hardware=spec.filter_values("hardware"))
if fleet.empty:
    st.info(
        "No workers are known yet: they appear when results name them or when they send "
        "heartbeats.",
        icon=":material/dns:",
    )
    st.stop()
judged = agg.run(health.worker_health, spec)
rates = agg.run(health.worker_throughput)
table = health.with_health(fleet.merge(rates, on="worker_id", how="left"), judged)
table["results_per_hour"] = table["results_per_hour"].fillna(0.0)
table["flagged"] = table["flagged"].fillna(False).astype(bool)

states = table["state"].value_counts()
tiles = st.columns(6)
for tile, state, text in zip(
    tiles,
    ("active", "idle", "stale", "dead", "unknown"),
    (
        "Heartbeat within 3 intervals, running a task.",
        "Heartbeat within 3 intervals, no task.",
        "Missed 3 or more heartbeats, fewer than 10.",
        "No heartbeat for 10 intervals or more.",
        "Known only from result files: no heartbeats.",
    ),
    strict=False,
):
    tile.metric(state.capitalize(), int(states.get(state, 0)), help=text)
tiles[5].metric(
    "Failing more than peers",
    int(table["flagged"].sum()),
    help="Failures against those expected on the same tests elsewhere: "
    "Benjamini-Hochberg adjusted p < 0.001, at least twice and 5 more than expected.",
)
st.caption(f"Refreshes every {view.refresh_s} s." if view.refresh_s else "Auto-refresh is off.")

shown = table[
    [
        "worker_id",
        "state",
        "seconds_since_heartbeat",
        "current_task",
        "hardware",
        "device",
        "results_per_hour",
        *health.JUDGED_COLUMNS[1:],  # the verdict, after worker_id
    ]
].sort_values(["flagged", "state", "worker_id"], ascending=[False, True, True])
panels.table(
    shown,
    "workers",
    column_config={
        "seconds_since_heartbeat": st.column_config.NumberColumn(
            "since heartbeat (s)", format="%.0f"
        ),
        "results_per_hour": st.column_config.NumberColumn("results / hour (24 h)", format="%.1f"),
        "failure_rate": st.column_config.NumberColumn("failure rate", format="percent"),
        "expected": st.column_config.NumberColumn("expected failures", format="%.1f"),
        "ratio": st.column_config.NumberColumn("observed / expected", format="%.2f"),
        "p_adjusted": st.column_config.NumberColumn("p (BH)", format="%.2e"),
    },
)

# ------------------------------------------------------------------ one worker
st.divider()
ids = list(shown["worker_id"])
wanted = st.query_params.get("worker")
index = ids.index(wanted) + 1 if wanted in ids else 0
picked = st.selectbox(
    "Details for",
    [None, *ids],
    index=index,
    key="worker_pick",
    format_func=lambda w: "—" if w is None else w,
)
if picked is None:
    st.caption("Pick a worker to see its throughput, resource use and failures over time.")
    st.stop()
st.query_params["worker"] = picked
row = table[table["worker_id"] == picked].iloc[0]
st.subheader(safe.md(picked))
st.caption(
    " · ".join(
        safe.md(x)
        for x in (row["state"], row["hardware"], row["device"], row["hostname"])
        if isinstance(x, str)
    )
)
start, end = agg.run(effective_window, spec)
step = bucket_seconds(start, end, 150)
activity = agg.run(health.worker_activity, spec, worker_id=picked, bucket_s=step)
if len(activity):
    st.markdown("**Results over time**")
    panels.chart(charts.worker_activity(activity, step), activity, f"worker_results_{picked}")
else:
    st.info("No results from this worker in the range.")
resources = agg.run(health.worker_resources, spec, worker_id=picked, bucket_s=step)
if len(resources):
    st.markdown("**Resource use** (mean per bucket, from heartbeats)")
    panels.chart(charts.resources(resources, step), resources, f"worker_resources_{picked}")
else:
    st.info("No heartbeats from this worker in the range.")
st.markdown("**Latest failures on this worker**")
panels.table(agg.run(health.worker_failures, spec, worker_id=picked), f"worker_failures_{picked}")
