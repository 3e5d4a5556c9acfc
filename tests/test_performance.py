"""Performance queries and statistics, checked against pandas, numpy and scipy computations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from lib import analysis, performance, stats
from lib.spec import QuerySpec
from lib.store import open_store
from tests.conftest import NOW


@pytest.fixture()
def cur(demo_db: Path):
    with open_store(demo_db).cursor() as cursor:
        yield cursor


def _values(raw, metric: str, start=None) -> pd.DataFrame:
    m = raw["measurements"].merge(raw["series"], on="series_id")
    m = m[m["metric"] == metric]
    return m[m["ts"] >= start] if start is not None else m


def test_trend_by_dimension_matches_pandas(cur, raw) -> None:
    spec = QuerySpec.build("7d")
    frame = performance.metric_over_time(cur, spec, NOW, "latency_p50_ms", "precision")
    step = frame.attrs["bucket_seconds"]
    assert step == 3600  # 7 days in at most 300 points
    assert frame.attrs["statistic"] == performance.HOURLY
    values = _values(raw, "latency_p50_ms", pd.Timestamp(NOW - timedelta(days=7)).floor("1h"))
    values = values.assign(bucket=values["ts"].dt.floor("1h"))
    # Over hour-long buckets the line is the median of each series' hourly median; counts,
    # minima and maxima are over single values.
    hourly = values.groupby(["precision", "bucket", "series_id"])["value"].median()
    centre = hourly.groupby(["precision", "bucket"]).agg(["median", lambda v: v.quantile(0.25)])
    spread = values.groupby(["precision", "bucket"])["value"].agg(["count", "min", "max"])
    got = frame.set_index(["group", "bucket"]).sort_index()
    expected = centre.join(spread).sort_index()
    assert (
        len(got) == len(expected) and frame.attrs["groups_total"] == values["precision"].nunique()
    )
    assert np.allclose(got["median"], expected["median"])
    assert np.allclose(got["p25"], expected["<lambda_0>"])
    assert np.allclose(got["min"], expected["min"]) and np.allclose(got["max"], expected["max"])
    assert (got["n"].to_numpy() == expected["count"].to_numpy()).all()


def test_short_ranges_use_single_values(cur, raw) -> None:
    spec = QuerySpec.build("24h", precision=["fp16"])
    frame = performance.metric_over_time(cur, spec, NOW, "latency_p50_ms", "precision")
    step = frame.attrs["bucket_seconds"]
    assert step == 300 and frame.attrs["statistic"] == performance.EXACT
    start = pd.Timestamp(NOW - timedelta(hours=24)).floor("5min")
    values = _values(raw, "latency_p50_ms", start)
    values = values[values["precision"] == "fp16"]
    expected = values.groupby(values["ts"].dt.floor("5min"))["value"].agg(["median", "count"])
    got = frame.set_index("bucket")
    assert np.allclose(got.loc[expected.index, "median"], expected["median"])
    assert (got.loc[expected.index, "n"] == expected["count"]).all()


def test_relative_trend_divides_by_each_series_median(cur, raw) -> None:
    spec = QuerySpec.build("all", hardware=["cuda"])
    frame = performance.metric_over_time(
        cur, spec, NOW, "throughput_items_per_second", "", relative=True
    )
    values = _values(raw, "throughput_items_per_second")
    values = values[values["hardware"] == "cuda"].copy()
    hourly = values.groupby(["series_id", values["ts"].dt.floor("1h")])["value"].median()
    typical = hourly.groupby("series_id").median()
    ratio = (hourly / typical.reindex(hourly.index.get_level_values(0)).to_numpy()).reset_index()
    step = frame.attrs["bucket_seconds"]
    assert step == 3 * 3600 and frame.attrs["statistic"] == performance.HOURLY
    ratio["bucket"] = ratio["ts"].dt.floor(f"{step}s")
    expected = ratio.groupby("bucket")["value"].median()
    assert np.allclose(frame.set_index("bucket")["median"].loc[expected.index], expected)
    assert set(frame["group"]) == {"all"}


def test_series_grouping_draws_the_busiest_series(cur, raw) -> None:
    frame = performance.metric_over_time(
        cur, QuerySpec.build("all"), NOW, "memory_peak_mb", performance.SERIES, max_groups=5
    )
    counts = _values(raw, "memory_peak_mb").groupby("series_id").size()
    assert frame["group"].nunique() == 5
    assert frame.attrs["groups_total"] == len(counts)
    assert frame.groupby("group")["n"].sum().sort_values().iloc[0] >= counts.sort_values().iloc[-5]


def test_dimension_stats_match_pandas(cur, raw) -> None:
    stats_frame = performance.dimension_stats(
        cur, QuerySpec.build("all"), NOW, "throughput_items_per_second", "hardware"
    )
    assert stats_frame.attrs["statistic"] == performance.HOURLY  # 14 days: hourly rollups
    values = _values(raw, "throughput_items_per_second")
    values = values.assign(hour=values["ts"].dt.floor("1h"))
    for _, row in stats_frame.iterrows():
        v = values.loc[values["hardware"] == row["value"]]
        hourly = v.groupby(["series_id", "hour"])["value"].median()
        assert row["count"] == len(v)
        assert row["mean"] == pytest.approx(v["value"].mean(), rel=1e-9)
        assert row["std"] == pytest.approx(v["value"].std(ddof=1), rel=1e-6)
        assert row["cv"] == pytest.approx(v["value"].std(ddof=1) / v["value"].mean(), rel=1e-6)
        assert row["median"] == pytest.approx(hourly.median())
        assert row["p95"] == pytest.approx(hourly.quantile(0.95))
    assert list(stats_frame["count"]) == sorted(stats_frame["count"], reverse=True)
    short = performance.dimension_stats(cur, QuerySpec.build("24h"), NOW, "latency_p50_ms", "model")
    assert short.attrs["statistic"] == performance.EXACT
    recent = _values(raw, "latency_p50_ms", pd.Timestamp(NOW - timedelta(hours=24)))
    for _, row in short.iterrows():
        v = recent.loc[recent["model"] == row["value"], "value"]
        assert row["median"] == pytest.approx(v.median())
        assert row["p95"] == pytest.approx(v.quantile(0.95))


def test_comparison_pairs_benchmarks_and_keeps_the_latest_values(cur, raw) -> None:
    pairs = performance.comparison_values(
        cur,
        QuerySpec.build("all"),
        NOW,
        "latency_p50_ms",
        "precision",
        "fp32",
        "fp16",
        per_series=5,
    )
    values = _values(raw, "latency_p50_ms")
    values = values[values["precision"].isin(["fp32", "fp16"])]
    latest = values.sort_values("ts").groupby("series_id").tail(5)
    pooled = [v for row in pairs["values"] for v in row]
    assert len(pooled) == len(latest)
    assert sorted(pooled) == pytest.approx(sorted(latest["value"]))
    assert not pairs.duplicated(["benchmark", "side"]).any()
    # A benchmark key never contains the compared dimension.
    assert not pairs["benchmark"].str.contains("fp32|fp16").any()
    table, overall, verdict = analysis.compare_benchmarks(pairs, "lower")
    # fp16 runs at about 0.7x the latency of fp32 (DESIGN.md section 4).
    assert overall.estimate == pytest.approx(0.7, abs=0.05)
    assert overall.low < overall.estimate < overall.high < 1.0
    assert verdict == "better"


def test_heatmap_cells_match_a_pandas_pivot(cur, raw) -> None:
    cells = performance.heatmap_cells(
        cur, QuerySpec.build("all"), NOW, "memory_peak_mb", "model", "hardware", "p95"
    )
    values = _values(raw, "memory_peak_mb")
    pivot = values.groupby(["model", "hardware"])["value"].quantile(0.95)
    got = cells.set_index(["row", "col"])["value"]
    assert len(got) == len(pivot)
    assert np.allclose(got.loc[pivot.index], pivot)
    with pytest.raises(ValueError):
        performance.heatmap_cells(
            cur,
            QuerySpec(),
            NOW,
            "memory_peak_mb",
            "model",
            "hardware",
            "max(value)); DROP TABLE results; --",
        )


def test_heatmap_from_rollups_is_exact_for_mean_cv_count(cur, raw) -> None:
    spec = QuerySpec.build("7d")  # starts mid-hour: whole hours from rollups, the rest raw
    values = _values(raw, "latency_p50_ms", pd.Timestamp(NOW - timedelta(days=7)))
    groups = values.groupby(["model", "precision"])["value"]
    for stat, expected in (
        ("mean", groups.mean()),
        ("count", groups.count()),
        ("cv", groups.std() / groups.mean().abs()),
        ("min", groups.min()),
    ):
        cells = performance.heatmap_cells(
            cur, spec, NOW, "latency_p50_ms", "model", "precision", stat
        )
        got = cells.set_index(["row", "col"])["value"]
        assert len(got) == len(expected), stat
        assert np.allclose(got.loc[expected.index], expected, rtol=1e-9), stat
    median = performance.heatmap_cells(cur, spec, NOW, "latency_p50_ms", "model", "precision")
    assert median.attrs["statistic"] == performance.HOURLY


def test_metric_sample_rows_hold_each_results_own_values(cur, raw) -> None:
    metrics = ("throughput_items_per_second", "latency_p50_ms")
    sample = performance.metric_sample(
        cur, QuerySpec.build("all"), NOW, metrics, "hardware", size=300
    )
    values = _values(raw, metrics[0])
    assert len(sample) == 300 and sample.attrs["results_total"] == len(values)
    wide = raw["measurements"].pivot_table(index="result_id", columns="metric", values="value")
    matched = wide.merge(sample, left_on=list(metrics), right_on=list(metrics))
    assert len(matched) == 300  # every sampled row is a real result's pair of values
    again = performance.metric_sample(cur, QuerySpec.build("all"), NOW, metrics, size=300)
    assert list(again[metrics[0]]) == list(sample[metrics[0]])  # repeatable


def test_ratio_of_medians_interval() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(100, 2, 200)
    b = rng.normal(200, 4, 200)
    interval = stats.ratio_of_medians(a, b)
    assert interval.estimate == pytest.approx(np.median(b) / np.median(a))
    assert interval.low < interval.estimate < interval.high
    assert interval.low > 1.9 and interval.high < 2.1
    same = stats.ratio_of_medians(a, rng.normal(100, 2, 200))
    assert same.low < 1.0 < same.high
    assert stats.verdict(same, "higher") == "no clear change"
    assert stats.verdict(interval, "higher") == "better"
    assert stats.verdict(interval, "lower") == "worse"
    assert np.isnan(stats.ratio_of_medians(np.array([]), b).estimate)
    single = stats.ratio_of_medians(np.array([5.0]), np.array([10.0]))
    assert single.estimate == 2.0 and np.isnan(single.low)


def test_geometric_mean_of_ratios() -> None:
    ratios = np.array([0.5, 2.0, 1.0, 4.0])
    interval = stats.geometric_mean_ratio(ratios)
    assert interval.estimate == pytest.approx((0.5 * 2.0 * 1.0 * 4.0) ** 0.25)
    assert interval.low <= interval.estimate <= interval.high


def test_benjamini_hochberg_against_the_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.001])
    adjusted = stats.benjamini_hochberg(p)
    valid = p[np.isfinite(p)]
    m = len(valid)
    order = np.argsort(valid)
    expected_sorted = np.minimum.accumulate((valid[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    expected = np.empty(m)
    expected[order] = np.minimum(expected_sorted, 1)
    assert np.allclose(adjusted[np.isfinite(p)], expected)
    assert np.isnan(adjusted[4])


def test_correlation_matrix_against_scipy() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=500)
    frame = pd.DataFrame(
        {"a": x, "b": 2 * x + rng.normal(size=500), "c": rng.normal(size=500), "const": 1.0}
    )
    frame.loc[:99, "c"] = np.nan  # missing for some rows
    table = stats.correlation_matrix(frame).set_index(["x", "y"])
    assert table.loc[("a", "b"), "pearson_r"] == pytest.approx(sp.pearsonr(frame.a, frame.b)[0])
    pair = frame[["a", "c"]].dropna()
    assert table.loc[("a", "c"), "n"] == 400
    assert table.loc[("a", "c"), "spearman_rho"] == pytest.approx(sp.spearmanr(pair.a, pair.c)[0])
    assert np.isnan(table.loc[("a", "const"), "pearson_r"])  # constant: undefined, not an error
    assert (table["pearson_p_adjusted"].dropna() >= table["pearson_p"].dropna()).all()


def test_heatmap_grid_fills_and_normalises_by_direction() -> None:
    cells = pd.DataFrame(
        {
            "row": ["m1", "m1", "m2"],
            "col": ["cpu", "cuda", "cpu"],
            "value": [40.0, 10.0, 20.0],
            "n": [3, 3, 3],
        }
    )
    grid = analysis.heatmap_grid(cells, normalise=False, direction="lower")
    assert len(grid) == 4 and np.isnan(grid.set_index(["row", "col"]).loc[("m2", "cuda"), "value"])
    lower = analysis.heatmap_grid(cells, True, "lower").set_index(["row", "col"])["value"]
    assert lower[("m1", "cuda")] == 1.0 and lower[("m1", "cpu")] == 0.25
    higher = analysis.heatmap_grid(cells, True, "higher").set_index(["row", "col"])["value"]
    assert higher[("m1", "cpu")] == 1.0 and higher[("m1", "cuda")] == 0.25


def test_trend_summary_and_label_prefix() -> None:
    frame = pd.DataFrame(
        {
            "bucket": pd.date_range("2026-11-01", periods=20, freq="h").tolist() * 2,
            "group": ["a"] * 20 + ["b"] * 20,
            "median": [10.0] * 10 + [12.0] * 10 + [5.0] * 20,
            "n": 1,
        }
    )
    summary = analysis.trend_summary(frame, "higher").set_index("group")
    assert summary.loc["a", "change"] == pytest.approx(0.2)
    assert summary.loc["a", "direction"] == "better" and summary.loc["b", "direction"] == "—"
    labels = pd.Series(["s · x · 1", "s · y · 2"])
    assert list(analysis.strip_common_prefix(labels)) == ["x · 1", "y · 2"]


def test_fit_line_on_linear_and_log_axes() -> None:
    x = np.array([1.0, 10.0, 100.0])
    line, slope = stats.fit_line(x, 3 * x + 1, log=False)
    assert slope == pytest.approx(3) and list(line["y"]) == pytest.approx([4, 301])
    line, slope = stats.fit_line(x, 2 * x**0.5, log=True)
    assert slope == pytest.approx(0.5) and list(line["y"]) == pytest.approx([2, 20])
    assert stats.fit_line(np.ones(5), np.arange(5.0), log=False) is None


def test_bootstrap_medians_match_plain_resampling() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 60, 301):
        values = rng.lognormal(0.0, 0.4, n)
        fast = stats._bootstrap_medians(values, 20_000, np.random.default_rng(1))
        plain = np.median(values[np.random.default_rng(2).integers(0, n, size=(20_000, n))], axis=1)
        assert np.percentile(fast, [2.5, 50, 97.5]) == pytest.approx(
            np.percentile(plain, [2.5, 50, 97.5]), rel=0.01, abs=1e-9
        ), n
