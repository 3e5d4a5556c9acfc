"""Trends: how a metric moves over time, overall, per dimension value or per series."""

from __future__ import annotations

import streamlit as st

from lib import analysis, charts, performance, regressions
from lib.ui import context, controls, panels, safe, share, sidebar

MAX_MARKED = 40
"""More change-point rules than this would hide the lines they annotate."""

context.page("Trends")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Performance trends")
left, middle, values_col, right, last = st.columns([3, 3, 2, 2, 1])
metric = controls.metric(agg, container=left)
if metric is None:
    st.stop()
by = controls.dimension(
    agg, "Group by", "by", "hardware", extra=(controls.NONE, performance.SERIES), container=middle
)
values = values_col.selectbox(
    "Values",
    ["relative", "absolute"],
    key="values",
    bind="query-params",
    help="relative: each value divided by its own series' median in the range, so groups that mix "
    "fast and slow configurations share one scale (1.0 = usual; 0.9 = 10 % below).",
)
band = right.selectbox(
    "Band",
    ["p25-p75", "min-max", "none"],
    key="band",
    bind="query-params",
    help="The spread of the values in each bucket around the median line.",
)
log = last.toggle("Log scale", key="log", bind="query-params")
relative = values == "relative"
share.link(spec, metric=metric["name"], by=by, values=values, band=band, log=log)
st.caption(f"{safe.md(metric['description'])} · {spec.describe(context.utc_now())}")

group_by = "" if by == controls.NONE else by
frame = agg.run(
    performance.metric_over_time, spec, metric=metric["name"], by=group_by, relative=relative
)
if frame.empty:
    st.info(
        f"No values of {metric['name']} in this range and filter. Widen the time range or "
        "clear a filter.",
        icon=":material/filter_alt_off:",
    )
    st.stop()
shown, total = frame["group"].nunique(), frame.attrs.get("groups_total", 0)
if total > shown:
    st.caption(
        f"The {shown} {'series' if by == performance.SERIES else 'groups'} with the most "
        f"values are drawn, of {total:,}; filter in the sidebar to see others."
    )
if log and (frame["min"] <= 0).any():
    st.warning(
        "Some values are zero or negative; a log scale cannot show them.", icon=":material/warning:"
    )
title = {controls.NONE: "All", performance.SERIES: "Series"}.get(by) or by
changes = agg.run(regressions.changes_in, spec, metric=metric["name"])
if by == performance.SERIES:
    changes = changes[changes["label"].isin(set(frame["group"]))]
marked = changes if len(changes) <= MAX_MARKED else None
panels.chart(
    charts.trend(frame, metric, band, log, title, relative, marked),
    frame,
    f"trend_{metric['name']}",
    caption="Median per bucket; drag to pan, scroll to zoom, click the legend to focus."
    + performance.statistic_note(frame)
    + (
        f" Dashed rules: {len(changes)} detected change points (see Regressions)."
        if marked is not None and len(changes)
        else ""
    )
    + (
        f" {len(changes)} change points in this selection: filter or group by series to see "
        "them marked."
        if marked is None
        else ""
    ),
)

st.subheader("Early against late")
st.caption("Median of the bucket medians in the first and the last tenth of the range.")
panels.table(
    analysis.trend_summary(frame, metric["direction"]),
    f"trend_summary_{metric['name']}",
    column_config={"change": st.column_config.NumberColumn(format="percent")},
)
