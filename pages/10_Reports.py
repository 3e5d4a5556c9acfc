"""Reports: one of the five report types for the sidebar's range and filters, previewed here and
downloaded as a self-contained HTML file, a PDF, or a ZIP with every table as CSV and every chart
as PNG."""

from __future__ import annotations

import streamlit as st

from lib import reports
from lib.ui import context, controls, safe, share, sidebar

context.page("Reports")
settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg, spec = view.aggregator, view.spec

st.title("Reports")
st.caption(
    "The same queries and charts as the pages, as files that open anywhere without a network: "
    "for release notes, incident write-ups and CI artifacts (`dtd report TYPE --out FILE` makes "
    "them from a shell)."
)
c1, c2, c3, c4 = st.columns([3, 3, 3, 2])
kind = c1.selectbox(
    "Report type",
    reports.REPORT_TYPES,
    key="report",
    bind="query-params",
    help="performance: status, trend, comparison and heatmap of one metric; regression: "
    "detected changes and their reach; dimension: one metric across a dimension; worker: the "
    "fleet's health; test: flaky, broken and failing tests with their causes.",
)
metric = None
if kind in ("performance", "dimension"):
    chosen = controls.metric(agg, container=c2)
    if chosen is None:
        st.stop()
    metric = chosen["name"]
dimension = (
    controls.dimension(agg, "Compared across", "dimension", "hardware", container=c3)
    if kind in ("performance", "dimension")
    else "hardware"
)
theme = c4.segmented_control(
    "Files' theme", ["light", "dark"], default="light", key="theme", bind="query-params"
)
share.link(spec, report=kind, metric=metric, dimension=dimension, theme=theme)

try:
    report = agg.run(reports.build, kind, spec, metric=metric, dimension=dimension)
except (ValueError, LookupError) as exc:
    st.error(f"This report cannot be made: {exc}", icon=":material/error:")
    st.stop()

theme = theme or "light"
name = f"{kind}_report"
row = st.container(horizontal=True)
row.download_button(
    "HTML",
    data=lambda: reports.to_html(report, theme),
    file_name=f"{name}.html",
    mime="text/html",
    key="download-html",
    on_click="ignore",
    icon=":material/html:",
    help="One file: styles and charts inline, nothing loaded from the network.",
)
row.download_button(
    "PDF",
    data=lambda: reports.to_pdf(report),
    file_name=f"{name}.pdf",
    mime="application/pdf",
    key="download-pdf",
    on_click="ignore",
    icon=":material/picture_as_pdf:",
)
row.download_button(
    "ZIP bundle",
    data=lambda: reports.to_zip(report, theme),
    file_name=f"{name}.zip",
    mime="application/zip",
    key="download-zip",
    on_click="ignore",
    icon=":material/folder_zip:",
    help="The HTML and the PDF, a CSV of every table and a PNG (and CSV) of every chart.",
)

st.subheader(report.title)
st.caption(f"{safe.md(report.scope)} · generated {report.generated:%Y-%m-%d %H:%M:%S} UTC")
for section in report.sections:
    with st.container(border=True):
        st.markdown(f"**{safe.md(section.title)}**")
        if section.text:
            st.caption(safe.md(section.text))
        for _, draw, _ in section.charts:
            st.altair_chart(draw(), width="stretch")
        for table_name, frame in section.tables:
            st.caption(safe.md(table_name.replace("_", " ")))
            if frame.empty:
                st.write("Nothing here.")
            else:
                st.dataframe(frame.head(reports.MAX_ROWS), hide_index=True, width="stretch")
