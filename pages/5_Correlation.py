"""Correlation: how metrics move together, with n, p-values corrected for many comparisons."""

from __future__ import annotations

import streamlit as st

from lib import charts, performance, queries, stats
from lib.ui import context, controls, panels, share, sidebar

context.page("Correlation")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Correlation")
catalog = agg.run(queries.metrics_present)
if len(catalog) < 2:
    st.info("Correlation needs at least two metrics with values.", icon=":material/query_stats:")
    st.stop()
names = list(catalog["name"])
chosen = st.multiselect("Metrics", names, default=names[:8], key="metrics", bind="query-params")
method = st.segmented_control(
    "Coefficient", ["spearman", "pearson"], default="spearman", key="method", bind="query-params"
)
if len(chosen) < 2:
    share.link(spec, metrics=chosen, method=method)
    st.info("Pick at least two metrics.")
    st.stop()
sample = agg.run(performance.metric_sample, spec, metrics=tuple(chosen))
pairs = stats.correlation_matrix(sample[chosen])
total = sample.attrs.get("results_total", len(sample))
st.caption(
    f"{len(sample):,} results"
    + (f", a repeatable sample of {total:,}" if total > len(sample) else "")
    + f" with {chosen[0]}; pairs use the results "
    "that have both metrics. p-values are Benjamini-Hochberg adjusted over every pair and "
    "both coefficients."
)
if pairs["n"].max() < 3:
    st.info("Fewer than three results carry two of these metrics together.")
    st.stop()
panels.chart(
    charts.correlation_grid(pairs, method or "spearman"),
    pairs,
    f"correlation_{method or 'spearman'}",
)
panels.table(
    pairs,
    "correlation_pairs",
    column_config={
        **{c: st.column_config.NumberColumn(format="%.3f") for c in ("pearson_r", "spearman_rho")},
        **{
            c: st.column_config.NumberColumn(format="%.2e")
            for c in ("pearson_p", "spearman_p", "pearson_p_adjusted", "spearman_p_adjusted")
        },
    },
)

st.subheader("Two metrics")
c1, c2, c3, c4 = st.columns([3, 3, 3, 1])
x = c1.selectbox("x", chosen, index=0, key="x", bind="query-params")
y = c2.selectbox("y", chosen, index=1, key="y", bind="query-params")
color = controls.dimension(agg, "Colour by", "color", "hardware", container=c3)
log = c4.toggle("Log", key="log", bind="query-params")
share.link(spec, metrics=chosen, method=method, x=x, y=y, color=color, log=log)
points = agg.run(performance.metric_sample, spec, metrics=(x, y), color=color, size=5000)
points = points.rename(columns={x: "x", y: "y"}).dropna(subset=["x", "y"])
if log:
    points = points[(points["x"] > 0) & (points["y"] > 0)]
if len(points) < 2:
    st.info(f"Fewer than two results carry both {x} and {y}.")
    st.stop()
fitted = stats.fit_line(points["x"], points["y"], log)
info = {row["name"]: row for _, row in catalog.iterrows()}
panels.chart(
    charts.scatter(
        points,
        dict(info[x]),
        dict(info[y]),
        controls.dimensions(agg).label(color),
        None if fitted is None else fitted[0],
        log,
    ),
    points,
    f"scatter_{x}_{y}",
    caption=None
    if fitted is None
    else f"Least-squares line{' on log-log axes' if log else ''}: slope {fitted[1]:.4g}.",
)
