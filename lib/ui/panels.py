"""A chart or a table with its downloads: CSV of exactly what is shown, PNG for charts."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from lib.export import chart_png, csv_bytes


def _is_dark() -> bool:
    try:
        return st.context.theme.type == "dark"
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode): light is right
        return False


def chart(
    chart: alt.TopLevelMixin, data: pd.DataFrame, name: str, caption: str | None = None
) -> None:
    """Render a chart; offer its data as CSV and the picture as PNG (made only when clicked)."""
    st.altair_chart(chart, width="stretch")
    if caption:
        st.caption(caption)
    dark = _is_dark()
    row = st.container(horizontal=True)
    row.download_button(
        "CSV",
        data=csv_bytes(data),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{name}-csv",
        on_click="ignore",
        icon=":material/download:",
    )
    row.download_button(
        "PNG",
        data=lambda: chart_png(chart, dark=dark),
        file_name=f"{name}.png",
        mime="image/png",
        key=f"{name}-png",
        on_click="ignore",
        icon=":material/image:",
    )


def table(frame: pd.DataFrame, name: str, column_config: dict | None = None) -> None:
    """Render a table with a CSV download of all its rows."""
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config)
    st.download_button(
        "CSV",
        data=csv_bytes(frame),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{name}-csv",
        on_click="ignore",
        icon=":material/download:",
    )
