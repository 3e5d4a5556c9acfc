"""Turning query results into the answers the performance pages show (pandas, no SQL).

Each function takes the small frame a ``lib.performance`` query returned and the metric's
direction, and returns a table a person can read and download.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.stats import Interval, geometric_mean_ratio, ratio_of_medians, verdict

NOTEWORTHY = 0.01
"""A change of the early-against-late median under 1 % is called neither better nor worse."""


def trend_summary(frame: pd.DataFrame, direction: str, share: float = 0.1) -> pd.DataFrame:
    """Per group: values, and the median of the bucket medians in the first and last ``share``
    of the buckets (robust to one noisy bucket), with the change between them."""
    rows = []
    for group, part in frame.sort_values("bucket").groupby("group", sort=True):
        k = max(1, int(round(len(part) * share)))
        early, late = (
            float(part["median"].iloc[:k].median()),
            float(part["median"].iloc[-k:].median()),
        )
        change = (late / early - 1.0) if early else np.nan
        better = {"higher": change > 0, "lower": change < 0}.get(direction)
        if np.isfinite(change) and abs(change) < NOTEWORTHY:
            better = None
        rows.append(
            {
                "group": group,
                "values": int(part["n"].sum()),
                "buckets": len(part),
                "early_median": early,
                "late_median": late,
                "change": change,
                "direction": "—"
                if better is None or not np.isfinite(change) or change == 0
                else "better"
                if better
                else "worse",
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "group",
            "values",
            "buckets",
            "early_median",
            "late_median",
            "change",
            "direction",
        ],
    )


def strip_common_prefix(labels: pd.Series, separator: str = " · ") -> pd.Series:
    """Drop the leading parts every label shares ("benchmarks.inference · ..."), keeping one."""
    parts = labels.str.split(separator, regex=False)
    if parts.empty:
        return labels
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return parts.map(lambda p: separator.join(p[common:]))


def compare_benchmarks(values: pd.DataFrame, direction: str) -> tuple[pd.DataFrame, Interval, str]:
    """Ratio B/A of medians per benchmark present on both sides, with bootstrap intervals and a
    verdict; then the geometric mean of the ratios across benchmarks with its interval.
    ``values``: rows of (side "A" or "B", benchmark, values), as ``comparison_values`` gives."""
    rows = []
    sides = {(row.benchmark, row.side): row.values for row in values.itertuples(index=False)}
    for benchmark in sorted({benchmark for benchmark, _ in sides}):
        a = np.asarray(sides.get((benchmark, "A"), []), dtype=float)
        b = np.asarray(sides.get((benchmark, "B"), []), dtype=float)
        if len(a) == 0 or len(b) == 0:
            continue
        interval = ratio_of_medians(a, b)
        rows.append(
            {
                "benchmark": benchmark,
                "n_a": len(a),
                "n_b": len(b),
                "median_a": float(np.median(a)),
                "median_b": float(np.median(b)),
                "ratio": interval.estimate,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "verdict": verdict(interval, direction),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "benchmark",
            "n_a",
            "n_b",
            "median_a",
            "median_b",
            "ratio",
            "ci_low",
            "ci_high",
            "verdict",
        ],
    )
    overall = (
        geometric_mean_ratio(table["ratio"].to_numpy())
        if len(table)
        else Interval(np.nan, np.nan, np.nan)
    )
    return table, overall, verdict(overall, direction)


def heatmap_grid(cells: pd.DataFrame, normalise: bool, direction: str) -> pd.DataFrame:
    """Every row x column combination (NaN where nothing ran), optionally as a fraction of the
    best cell of its row (1.0 = best, whichever way "best" points for this metric), plus
    ``relative`` (0..1 across the grid) for choosing a readable text colour."""
    if cells.empty:
        return cells.assign(relative=pd.Series(dtype=float))
    rows = list(dict.fromkeys(cells["row"]))
    cols = list(dict.fromkeys(cells["col"]))
    grid = pd.MultiIndex.from_product([rows, cols], names=["row", "col"]).to_frame(index=False)
    grid = grid.merge(cells, on=["row", "col"], how="left")
    if normalise:
        values = grid["value"].astype(float)
        if direction == "lower":
            best = values.where(values > 0).groupby(grid["row"]).transform("min")
            grid["value"] = best / values.where(values > 0)
        else:
            best = values.groupby(grid["row"]).transform("max")
            grid["value"] = values / best.where(best != 0)
    low, high = grid["value"].min(), grid["value"].max()
    span = (high - low) if np.isfinite(high - low) and high != low else 1.0
    grid["relative"] = (grid["value"] - low) / span
    return grid
