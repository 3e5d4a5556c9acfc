"""Compare: a metric across the values of one dimension, and one value against another."""

from __future__ import annotations

import streamlit as st

from lib import charts, performance
from lib.ui import context, controls, panels, safe, share, sidebar

context.page("Compare")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Dimension comparison")
left, right = st.columns(2)
metric = controls.metric(agg, container=left)
if metric is None:
    st.stop()
dim = controls.dimension(agg, "Dimension", "dim", "hardware", container=right)
label = controls.dimensions(agg).label(dim)

stats = agg.run(performance.dimension_stats, spec, metric=metric["name"], dim=dim)
if stats.empty:
    share.link(spec, metric=metric["name"], dim=dim)
    st.info(
        f"No values of {metric['name']} in this range and filter.", icon=":material/filter_alt_off:"
    )
    st.stop()

st.subheader(f"{safe.md(metric['name'])} by {safe.md(label)}")
panels.chart(
    charts.distribution(stats, metric, label),
    stats,
    f"{metric['name']}_by_{dim}",
    caption="Bars span the 25th to 75th percentile; the tick is the median."
    + performance.statistic_note(stats),
)
panels.table(
    stats,
    f"{metric['name']}_by_{dim}_stats",
    column_config={
        "cv": st.column_config.NumberColumn("CV", format="percent"),
    },
)

st.subheader("A against B")
values = agg.run(performance.dimension_values, spec, metric=metric["name"], dim=dim)
if len(values) < 2:
    share.link(spec, metric=metric["name"], dim=dim)
    st.info(f"{label} takes only one value here; there is nothing to compare.")
    st.stop()
pick_a, pick_b = st.columns(2)
a = pick_a.selectbox("A (baseline)", values, index=0, key="a", bind="query-params")
b = pick_b.selectbox("B", values, index=1, key="b", bind="query-params")
share.link(spec, metric=metric["name"], dim=dim, a=a, b=b)
if a == b:
    st.info("Pick two different values.")
    st.stop()
pairs = agg.run(performance.comparison_values, spec, metric=metric["name"], dim=dim, a=a, b=b)
table, overall, verdict = context.cached_comparison(pairs, metric["direction"])
if table.empty:
    st.info(f"No benchmark ran with both {label} = {a} and {label} = {b} in this range.")
    st.stop()
better = {"higher": "higher is better", "lower": "lower is better"}.get(metric["direction"], "")
ci = (
    ""
    if overall.low != overall.low
    else f" (95 % interval {overall.low:.3f} to {overall.high:.3f})"
)
st.metric(
    f"Geometric mean of median({safe.md(b)}) / median({safe.md(a)}) over {len(table)} benchmarks",
    f"{overall.estimate:.3f}",
    help=f"{metric['name']}: {better}. Intervals are percentile "
    "bootstraps; a verdict needs the whole interval on one side of 1.",
)
st.markdown(f"**{safe.md(b)}** against **{safe.md(a)}**: {verdict}{ci}.")
if dim in performance.DETERMINED_BY:
    st.caption(
        f"Benchmarks are matched on everything but {label} and "
        f"{', '.join(performance.DETERMINED_BY[dim])}; values of several devices may pool "
        "on one side. Filter the device in the sidebar for a cleaner comparison."
    )
panels.chart(charts.ratios(table, a, b), table, f"{metric['name']}_{dim}_{a}_vs_{b}")
panels.table(table, f"{metric['name']}_{dim}_{a}_vs_{b}_table")
