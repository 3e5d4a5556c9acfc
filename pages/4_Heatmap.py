"""Heatmap: a statistic of a metric for every combination of two dimensions."""

from __future__ import annotations

import streamlit as st

from lib import analysis, charts, performance
from lib.ui import context, controls, panels, share, sidebar

context.page("Heatmap")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Heatmap")
c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
metric = controls.metric(agg, container=c1)
if metric is None:
    st.stop()
rows = controls.dimension(agg, "Rows", "rows", "model", container=c2)
cols = controls.dimension(agg, "Columns", "cols", "hardware", container=c3)
stat = c4.selectbox("Statistic", list(performance.STATISTICS), key="stat", bind="query-params")
normalise = c5.toggle(
    "Relative to best in row",
    key="norm",
    bind="query-params",
    help="1.0 is the row's best cell (highest or lowest, by the metric's "
    "direction); 0.5 is half as good.",
)
share.link(spec, metric=metric["name"], rows=rows, cols=cols, stat=stat, norm=normalise)
dims = controls.dimensions(agg)
if rows == cols:
    st.info("Pick two different dimensions.")
    st.stop()

cells = agg.run(
    performance.heatmap_cells, spec, metric=metric["name"], rows=rows, cols=cols, stat=stat
)
if cells.empty:
    st.info(
        f"No values of {metric['name']} in this range and filter.", icon=":material/filter_alt_off:"
    )
    st.stop()
direction = "higher" if stat == "count" else metric["direction"]
grid = analysis.heatmap_grid(cells, normalise and stat != "cv", direction)
unit = "" if stat in ("count", "cv") or normalise else f" ({metric['unit']})"
value_title = "relative to best" if normalise else f"{stat} of {metric['name']}{unit}"
fmt = ".0%" if stat == "cv" else ".2f" if normalise else ",.3~s"
empty = int(grid["value"].isna().sum())
st.caption(
    f"{len(cells):,} combinations ran; {empty:,} never did (dashed)."
    + ("" if stat != "cv" else " CV = standard deviation / mean.")
    + performance.statistic_note(cells)
)
panels.chart(
    charts.heatmap(grid, dims.label(rows), dims.label(cols), value_title, fmt),
    grid.drop(columns="relative"),
    f"heatmap_{metric['name']}_{rows}_{cols}_{stat}",
)
