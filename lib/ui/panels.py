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


def url_pick(label: str, labels: dict, param: str, key: str) -> str | None:
    """A "details for" choice kept in the link's ``param``: the picked id as text (from the
    box, else from the link), or None. A link to an id not in ``labels`` still comes back, so
    the page can say it does not exist."""
    wanted = st.query_params.get(param)
    choices = [None, *labels]
    index = next((i for i, c in enumerate(choices) if c is not None and str(c) == wanted), 0)
    picked = st.selectbox(
        label,
        choices,
        index=index,
        key=key,
        format_func=lambda c: "—" if c is None else labels[c],
    )
    if picked is not None:
        st.query_params[param] = str(picked)
        return str(picked)
    return wanted
