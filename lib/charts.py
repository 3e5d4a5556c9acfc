"""Altair chart builders: data in, chart out; no Streamlit, no queries.

Every chart receives exactly the frame its CSV export holds, shows units in its axis titles, lets
people zoom (x scale bound to the mouse) and toggle series from the legend.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

STATUS_COLORS = {"passed": "#2e7d32", "failed": "#c62828", "error": "#ef6c00", "skipped": "#9e9e9e"}


def time_axis_title(bucket_seconds: int) -> str:
    """'Time (UTC, 6-hour buckets)': says how coarse each point is."""
    for size, unit in ((7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if bucket_seconds % size == 0:
            return f"Time (UTC, {bucket_seconds // size}-{unit} buckets)"
    return f"Time (UTC, {bucket_seconds}-second buckets)"


def pass_rate(frame: pd.DataFrame, bucket_seconds: int) -> alt.Chart:
    """Pass rate per time bucket, with the bucket's counts in the tooltip."""
    base = alt.Chart(frame).encode(
        x=alt.X("bucket:T", title=time_axis_title(bucket_seconds)),
        y=alt.Y(
            "pass_rate:Q",
            title="Pass rate (passed / executed)",
            axis=alt.Axis(format="%"),
            scale=alt.Scale(zero=False),
        ),
        tooltip=[
            alt.Tooltip("bucket:T", title="Bucket start", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("pass_rate:Q", title="Pass rate", format=".2%"),
            alt.Tooltip("passed:Q"),
            alt.Tooltip("failed:Q"),
            alt.Tooltip("error:Q"),
            alt.Tooltip("skipped:Q"),
        ],
    )
    return (
        (base.mark_line(interpolate="monotone") + base.mark_point(size=18, filled=True))
        .properties(height=260)
        .interactive(bind_y=False)
    )


def status_volume(frame: pd.DataFrame, bucket_seconds: int) -> alt.Chart:
    """Results per bucket, stacked by status."""
    long = frame.melt(
        id_vars=["bucket"], value_vars=list(STATUS_COLORS), var_name="status", value_name="results"
    )
    pick = alt.selection_point(fields=["status"], bind="legend")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title=time_axis_title(bucket_seconds)),
            y=alt.Y("results:Q", title="Results", stack=True),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=[
                alt.Tooltip("bucket:T", title="Bucket start", format="%Y-%m-%d %H:%M"),
                "status:N",
                "results:Q",
            ],
        )
        .add_params(pick)
        .properties(height=260)
        .interactive(bind_y=False)
    )


def metric_index(
    frame: pd.DataFrame, bucket_seconds: int, metric: str, direction: str, group_title: str
) -> alt.Chart:
    """A metric's index (1.0 = usual) per group over time, with the 1.0 line drawn."""
    better = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(direction, "")
    pick = alt.selection_point(fields=["group"], bind="legend")
    lines = (
        alt.Chart(frame)
        .mark_line(strokeWidth=1.6)
        .encode(
            x=alt.X("bucket:T", title=time_axis_title(bucket_seconds)),
            y=alt.Y("index:Q", scale=alt.Scale(zero=False), title=f"{metric} index{better}"),
            color=alt.Color("group:N", title=group_title),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=[
                alt.Tooltip("bucket:T", title="Bucket start", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("group:N", title=group_title),
                alt.Tooltip("index:Q", format=".3f"),
                alt.Tooltip("n:Q", title="values"),
            ],
        )
        .add_params(pick)
    )
    rule = (
        alt.Chart(pd.DataFrame({"y": [1.0]}))
        .mark_rule(strokeDash=[4, 4], opacity=0.6)
        .encode(y="y:Q")
    )
    return (lines + rule).properties(height=300).interactive(bind_y=False)
