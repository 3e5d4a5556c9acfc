"""Turning what a panel shows into files: CSV of exactly the plotted rows, PNG of the chart."""

from __future__ import annotations

import altair as alt
import pandas as pd
import vl_convert


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV with ISO-8601 timestamps and no index column."""
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S").encode("utf-8")


PNG_WIDTH = 900
"""In the app a chart takes its container's width; a file needs a number."""


def chart_png(chart: alt.TopLevelMixin, dark: bool = False, scale: float = 2.0) -> bytes:
    """Render offline (vl-convert bundles Vega), in the app's light or dark look."""
    spec = chart.to_dict()
    spec.setdefault("width", PNG_WIDTH)
    return vl_convert.vegalite_to_png(spec, scale=scale, theme="dark" if dark else None)
