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


def _metric_title(metric: dict) -> str:
    better = {"higher": "higher is better", "lower": "lower is better"}.get(metric["direction"])
    unit = f" ({metric['unit']})" if metric["unit"] else ""
    return f"{metric['name']}{unit}" + (f", {better}" if better else "")


def trend(
    frame: pd.DataFrame,
    metric: dict,
    band: str,
    log: bool,
    group_title: str,
    relative: bool = False,
    changes: pd.DataFrame | None = None,
) -> alt.Chart:
    """Median per bucket and group, with a p25-p75 or min-max band; zoom on x, legend toggles."""
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    x = alt.X("bucket:T", title=time_axis_title(int(frame.attrs.get("bucket_seconds", 3600))))
    pick = alt.selection_point(fields=["group"], bind="legend")
    color = alt.Color("group:N", title=group_title, legend=alt.Legend(labelLimit=320))
    opacity = alt.condition(pick, alt.value(1.0), alt.value(0.1))
    tooltip = [
        alt.Tooltip("bucket:T", title="Bucket start", format="%Y-%m-%d %H:%M"),
        alt.Tooltip("group:N", title=group_title),
        alt.Tooltip("median:Q", format=",.4g"),
        alt.Tooltip("p25:Q", format=",.4g"),
        alt.Tooltip("p75:Q", format=",.4g"),
        alt.Tooltip("min:Q", format=",.4g"),
        alt.Tooltip("max:Q", format=",.4g"),
        alt.Tooltip("n:Q", title="values"),
    ]
    base = alt.Chart(frame).encode(x=x, color=color, tooltip=tooltip)
    title = (
        f"{metric['name']} relative to each series' median"
        if relative
        else f"{metric['name']}" + (f" ({metric['unit']})" if metric["unit"] else "")
    )
    line = base.mark_line(strokeWidth=1.8).encode(
        y=alt.Y("median:Q", scale=scale, title=title), opacity=opacity
    )
    layers = [line]
    if band in ("p25-p75", "min-max"):
        low, high = ("p25", "p75") if band == "p25-p75" else ("min", "max")
        layers.insert(
            0,
            base.mark_area(opacity=0.18).encode(
                y=alt.Y(f"{low}:Q", scale=scale, title=title),
                y2=f"{high}:Q",
                opacity=alt.condition(pick, alt.value(0.18), alt.value(0.02)),
            ),
        )
    if frame["n"].max() == 1 or len(frame) < 3:
        layers.append(base.mark_point(filled=True, size=40).encode(y="median:Q"))
    chart = alt.layer(*layers).add_params(pick).interactive(bind_y=False)
    if changes is not None and len(changes):
        # Change points keep their own colour scale (by kind) beside the groups' colours.
        chart = alt.layer(chart, change_marks(changes)).resolve_scale(color="independent")
    better = {"higher": "higher is better", "lower": "lower is better"}.get(metric["direction"], "")
    return chart.properties(
        height=380, title=alt.TitleParams(better, anchor="end", fontSize=11, fontWeight="normal")
    )


def distribution(stats: pd.DataFrame, metric: dict, dim_title: str) -> alt.Chart:
    """Median per value with its p25-p75 range (a box without whiskers), sorted by median."""
    base = alt.Chart(stats).encode(
        y=alt.Y(
            "value:N",
            title=dim_title,
            sort=alt.EncodingSortField("median", order="descending"),
            axis=alt.Axis(labelLimit=320),
        ),
        tooltip=[
            alt.Tooltip("value:N", title=dim_title),
            "count:Q",
            alt.Tooltip("median:Q", format=",.4g"),
            alt.Tooltip("mean:Q", format=",.4g"),
            alt.Tooltip("p25:Q", format=",.4g"),
            alt.Tooltip("p75:Q", format=",.4g"),
            alt.Tooltip("p95:Q", format=",.4g"),
            alt.Tooltip("cv:Q", format=".1%"),
        ],
    )
    box = base.mark_bar(opacity=0.35, height=14).encode(
        x=alt.X("p25:Q", title=_metric_title(metric)), x2="p75:Q"
    )
    tick = base.mark_tick(thickness=3, size=18).encode(x="median:Q")
    return (box + tick).properties(height=alt.Step(26))


VERDICT_COLORS = {"better": "#2e7d32", "worse": "#c62828", "no clear change": "#9e9e9e"}


def ratios(table: pd.DataFrame, a: str, b: str) -> alt.Chart:
    """Each benchmark's ratio B/A with its 95 % interval on a log axis, coloured by verdict."""
    base = alt.Chart(table).encode(
        y=alt.Y(
            "benchmark:N",
            sort=alt.EncodingSortField("ratio", order="descending"),
            title=None,
            axis=alt.Axis(labelLimit=420),
        ),
        color=alt.Color(
            "verdict:N",
            scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
        ),
        tooltip=[
            "benchmark:N",
            alt.Tooltip("ratio:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f"),
            alt.Tooltip("ci_high:Q", format=".3f"),
            "n_a:Q",
            "n_b:Q",
            "verdict:N",
        ],
    )
    axis = alt.X("ratio:Q", scale=alt.Scale(type="log"), title=f"median({b}) / median({a})")
    rule = base.mark_rule().encode(x=alt.X("ci_low:Q", scale=alt.Scale(type="log")), x2="ci_high:Q")
    dot = base.mark_point(filled=True, size=50).encode(x=axis)
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    return (rule + dot + one).properties(height=alt.Step(18))


def heatmap(
    cells: pd.DataFrame, rows_title: str, cols_title: str, value_title: str, fmt: str = ",.3g"
) -> alt.Chart:
    """Cells coloured by value with the value written in; never-run combinations stay blank."""
    base = alt.Chart(cells).encode(
        x=alt.X("col:N", title=cols_title, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
        y=alt.Y("row:N", title=rows_title, axis=alt.Axis(labelLimit=260)),
    )
    tiles = base.mark_rect().encode(
        color=alt.Color("value:Q", title=value_title, scale=alt.Scale(scheme="viridis")),
        tooltip=[
            alt.Tooltip("row:N", title=rows_title),
            alt.Tooltip("col:N", title=cols_title),
            alt.Tooltip("value:Q", title=value_title, format=fmt),
            "n:Q",
        ],
    )
    empty = base.mark_rect(fill="#00000000", stroke="#9e9e9e", strokeDash=[2, 2]).transform_filter(
        "!isValid(datum.value)"
    )
    text = (
        base.mark_text(fontSize=11)
        .encode(
            text=alt.Text("value:Q", format=fmt),
            color=alt.condition(
                "datum.value > 0 && datum.relative > 0.6", alt.value("black"), alt.value("white")
            ),
        )
        .transform_filter("isValid(datum.value)")
    )
    return (tiles + empty + text).properties(height=alt.Step(26), width=alt.Step(64))


def correlation_grid(table: pd.DataFrame, method: str) -> alt.Chart:
    """The coefficient of every metric pair (both halves), annotated, on a diverging scale."""
    column = "pearson_r" if method == "pearson" else "spearman_rho"
    adjusted = f"{method}_p_adjusted"
    half = table[["x", "y", column, adjusted, "n"]].rename(columns={column: "r", adjusted: "p"})
    mirror = half.rename(columns={"x": "y", "y": "x"})
    names = sorted(set(half["x"]) | set(half["y"]))
    diagonal = pd.DataFrame({"x": names, "y": names, "r": 1.0, "p": 0.0, "n": None})
    grid = pd.concat([half, mirror, diagonal], ignore_index=True)
    base = alt.Chart(grid).encode(
        x=alt.X("x:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=220)),
        y=alt.Y("y:N", title=None, axis=alt.Axis(labelLimit=220)),
    )
    tiles = base.mark_rect().encode(
        color=alt.Color(
            "r:Q",
            scale=alt.Scale(scheme="redblue", domain=[-1, 1]),
            title="Pearson r" if method == "pearson" else "Spearman rho",
        ),
        tooltip=[
            "x:N",
            "y:N",
            alt.Tooltip("r:Q", format=".3f"),
            alt.Tooltip("p:Q", title="p (BH-adjusted)", format=".2g"),
            "n:Q",
        ],
    )
    text = base.mark_text(fontSize=11).encode(text=alt.Text("r:Q", format=".2f"))
    return (tiles + text).properties(height=alt.Step(40), width=alt.Step(70))


def scatter(
    sample: pd.DataFrame, x: dict, y: dict, color_title: str, line: pd.DataFrame | None, log: bool
) -> alt.Chart:
    """Two metrics (columns "x" and "y") against each other, coloured by "group", with a fitted
    line given by its two ends (straight on log axes too)."""
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    points = (
        alt.Chart(sample)
        .mark_circle(size=18, opacity=0.55)
        .encode(
            x=alt.X("x:Q", title=_metric_title(x), scale=scale),
            y=alt.Y("y:Q", title=_metric_title(y), scale=scale),
            color=alt.Color("group:N", title=color_title, legend=alt.Legend(labelLimit=260)),
            tooltip=[
                alt.Tooltip("group:N", title=color_title),
                alt.Tooltip("x:Q", title=x["name"], format=",.4g"),
                alt.Tooltip("y:Q", title=y["name"], format=",.4g"),
            ],
        )
    )
    layers = [points]
    if line is not None:
        layers.append(
            alt.Chart(line).mark_line(color="#888", strokeDash=[6, 3]).encode(x="x:Q", y="y:Q")
        )
    return alt.layer(*layers).properties(height=420).interactive()


def durations(runs: pd.DataFrame) -> alt.Chart:
    """A test's duration per run over time, coloured by outcome."""
    return (
        alt.Chart(runs)
        .mark_circle(size=36, opacity=0.8)
        .encode(
            x=alt.X("time:T", title="Time (UTC)"),
            y=alt.Y("duration_s:Q", title="Duration (s)", scale=alt.Scale(zero=False)),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
            ),
            tooltip=[
                alt.Tooltip("time:T", format="%Y-%m-%d %H:%M:%S"),
                "status:N",
                alt.Tooltip("duration_s:Q", format=",.3f"),
                "worker:N",
            ],
        )
        .properties(height=240)
        .interactive(bind_y=False)
    )


def worker_activity(frame: pd.DataFrame, bucket_seconds: int) -> alt.Chart:
    """Results per bucket on one worker, stacked by status."""
    return status_volume(frame, bucket_seconds)


def resources(frame: pd.DataFrame, bucket_seconds: int) -> alt.Chart:
    """Mean resource use per bucket, one small chart per resource (their units differ)."""
    return (
        alt.Chart(frame)
        .mark_line(strokeWidth=1.5)
        .encode(
            x=alt.X("bucket:T", title=time_axis_title(bucket_seconds)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("resource:N", legend=None),
            tooltip=[
                alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"),
                "resource:N",
                alt.Tooltip("value:Q", format=",.1f"),
                "heartbeats:Q",
            ],
        )
        .properties(height=110)
        .facet(row=alt.Row("resource:N", title=None))
        .resolve_scale(y="independent")
    )


KIND_COLORS = {"regression": "#c62828", "improvement": "#2e7d32", "change": "#6d4c41"}


def change_explained(points: pd.DataFrame, record: dict, others: pd.DataFrame) -> alt.Chart:
    """A series around one change: its values, the before and after windows shaded with their
    medians, and every change point of the series as a vertical rule."""
    unit = f" ({record['unit']})" if record.get("unit") else ""
    base = alt.Chart(points).encode(x=alt.X("ts:T", title="Time (UTC)"))
    dots = base.mark_circle(size=22, opacity=0.75).encode(
        y=alt.Y("value:Q", title=f"{record['metric']}{unit}", scale=alt.Scale(zero=False)),
        tooltip=[
            alt.Tooltip("ts:T", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("value:Q", format=",.4g"),
        ],
    )
    windows = pd.DataFrame(
        {
            "start": [record["before_start"], record["after_start"]],
            "end": [record["before_end"], record["after_end"]],
            "median": [record["before_median"], record["after_median"]],
            "window": ["before", "after"],
        }
    )
    shade = (
        alt.Chart(windows)
        .mark_rect(opacity=0.08)
        .encode(
            x="start:T",
            x2="end:T",
            color=alt.Color("window:N", legend=None, scale=alt.Scale(range=["#1f77b4", "#ff7f0e"])),
        )
    )
    medians = (
        alt.Chart(windows)
        .mark_rule(strokeWidth=2)
        .encode(
            x="start:T",
            x2="end:T",
            y="median:Q",
            color=alt.Color("window:N", scale=alt.Scale(range=["#1f77b4", "#ff7f0e"])),
            tooltip=["window:N", alt.Tooltip("median:Q", format=",.4g")],
        )
    )
    rules = change_marks(others)
    return (
        alt.layer(shade, dots, medians, rules)
        .resolve_scale(color="independent")
        .properties(height=320)
        .interactive(bind_y=False)
    )


def before_after(points: pd.DataFrame) -> alt.Chart:
    """The values of the two windows side by side: box and points."""
    box = (
        alt.Chart(points)
        .mark_boxplot(extent="min-max", size=40)
        .encode(
            x=alt.X("window:N", sort=["before", "after"], title=None),
            y=alt.Y("value:Q", scale=alt.Scale(zero=False), title=None),
            color=alt.Color(
                "window:N",
                legend=None,
                scale=alt.Scale(domain=["before", "after"], range=["#1f77b4", "#ff7f0e"]),
            ),
        )
    )
    return box.properties(height=320, width=220)


def change_marks(changes: pd.DataFrame) -> alt.Chart:
    """Vertical rules for change points, to layer on a time chart."""
    return (
        alt.Chart(changes)
        .mark_rule(strokeDash=[5, 3], strokeWidth=1.2, opacity=0.8)
        .encode(
            x="changed_at:T",
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values())),
                legend=alt.Legend(title="change points"),
            ),
            tooltip=[
                alt.Tooltip("changed_at:T", format="%Y-%m-%d %H:%M"),
                "kind:N",
                "severity:N",
                alt.Tooltip("change:Q", format="+.1%"),
                *(["label:N"] if "label" in changes else []),
            ],
        )
    )


def worker_failures(fleet: pd.DataFrame) -> alt.Chart:
    """Each worker's failure rate (bar) against the rate its peers show on the same tests (tick);
    flagged workers in red."""
    data = fleet.dropna(subset=["failure_rate"]).assign(
        expected_rate=lambda f: f["expected"] / f["executed"].where(f["executed"] > 0),
        verdict=lambda f: f["flagged"].map({True: "flagged", False: "like its peers"}),
    )
    base = alt.Chart(data).encode(
        y=alt.Y(
            "worker_id:N",
            title="Worker",
            sort=list(data.sort_values("failure_rate", ascending=False)["worker_id"]),
        ),
        tooltip=[
            "worker_id:N",
            "state:N",
            "executed:Q",
            "failures:Q",
            alt.Tooltip("failure_rate:Q", format=".1%"),
            alt.Tooltip("expected_rate:Q", title="peers' rate", format=".1%"),
            alt.Tooltip("p_adjusted:Q", title="adjusted p", format=".2g"),
        ],
    )
    bars = base.mark_bar(height=12).encode(
        x=alt.X("failure_rate:Q", title="Failure rate", axis=alt.Axis(format="%")),
        color=alt.Color(
            "verdict:N",
            scale=alt.Scale(domain=["flagged", "like its peers"], range=["#c62828", "#78909c"]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
    )
    ticks = base.mark_tick(color="black", thickness=2, size=16).encode(x="expected_rate:Q")
    return (bars + ticks).properties(height=alt.Step(18))
