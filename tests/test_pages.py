"""The performance pages in the Streamlit runtime (AppTest): charts, downloads, numbers, links,
and empty states."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.ingest.model import MetricDef, Record
from lib.ingest.sink import Sink
from lib.store import open_store, release
from tests.conftest import NOW

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ["pages/2_Trends.py", "pages/3_Compare.py", "pages/4_Heatmap.py", "pages/5_Correlation.py"]


def _open(monkeypatch, db: Path, page: str, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(page).run()  # straight to the page: the link's values seed its widgets
    assert not at.exception, [e.value for e in at.exception]
    return at


def _link(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Link to this view"))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_draws_a_chart_with_downloads(monkeypatch, demo_db: Path, page: str) -> None:
    at = _open(monkeypatch, demo_db, page, {"range": "all"})
    assert len(at.get("vega_lite_chart")) >= 1
    labels = [b.label for b in at.get("download_button")]
    assert "CSV" in labels and "PNG" in labels
    assert not at.error


def test_trends_summary_numbers_and_link_follow_the_filters(monkeypatch, demo_db, raw) -> None:
    at = _open(
        monkeypatch,
        demo_db,
        "pages/2_Trends.py",
        {"range": "all", "metric": "latency_p50_ms", "by": "precision", "values": "absolute"},
    )
    table = at.dataframe[0].value.set_index("group")
    m = raw["measurements"].merge(raw["series"], on="series_id")
    m = m[m["metric"] == "latency_p50_ms"]
    assert table["values"].to_dict() == m.groupby("precision").size().to_dict()
    assert "by=precision" in _link(at) and "hardware=" not in _link(at)

    at.multiselect(key="hardware").set_value(["cuda"]).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("group")
    cuda = m[m["hardware"] == "cuda"]
    assert table["values"].to_dict() == cuda.groupby("precision").size().to_dict()
    assert "hardware=cuda" in _link(at)


def test_compare_geometric_mean_matches_an_independent_computation(
    monkeypatch, demo_db, raw
) -> None:
    at = _open(
        monkeypatch,
        demo_db,
        "pages/3_Compare.py",
        {"range": "all", "metric": "latency_p50_ms", "dim": "precision", "a": "fp32", "b": "fp16"},
    )
    [tile] = [m for m in at.metric if m.label.startswith("Geometric mean")]
    m = raw["measurements"].merge(raw["series"], on="series_id")
    m = m[(m["metric"] == "latency_p50_ms") & m["precision"].isin(["fp32", "fp16"])]
    fp16_values = int((m["precision"] == "fp16").sum())
    m = m.sort_values("ts").groupby("series_id").tail(200)
    keys = ["suite", "name", "model", "hardware", "device", "batch_size"]
    browsers = m["extra"].map(lambda e: dict(e or {}).get("browser"))
    m = m.assign(browser=browsers.fillna(""))
    medians = m.groupby([*keys, "browser", "precision"])["value"].median().unstack("precision")
    ratios = (medians["fp16"] / medians["fp32"]).dropna()
    assert float(tile.value) == pytest.approx(np.exp(np.log(ratios).mean()), abs=0.0005)
    assert "better" in " ".join(md.value for md in at.markdown)  # lower latency is better
    stats_table = at.dataframe[0].value.set_index("value")
    assert stats_table.loc["fp16", "count"] == fp16_values


def test_heatmap_counts_combinations_that_never_ran(monkeypatch, demo_db, raw) -> None:
    at = _open(
        monkeypatch,
        demo_db,
        "pages/4_Heatmap.py",
        {"range": "all", "metric": "memory_peak_mb", "rows": "model", "cols": "hardware"},
    )
    m = raw["measurements"].merge(raw["series"], on="series_id")
    m = m[m["metric"] == "memory_peak_mb"]
    ran = m.groupby(["model", "hardware"]).size()
    never = m["model"].nunique() * m["hardware"].nunique() - len(ran)
    assert f"{len(ran):,} combinations ran; {never:,} never did" in " ".join(
        c.value for c in at.caption
    )


def test_correlation_pairs_count_results_with_both_metrics(monkeypatch, demo_db, raw) -> None:
    metrics = ["latency_p50_ms", "memory_peak_mb", "throughput_items_per_second"]
    at = _open(monkeypatch, demo_db, "pages/5_Correlation.py", {"range": "all", "metrics": metrics})
    pairs = at.dataframe[0].value
    wide = raw["measurements"].pivot_table(index="result_id", columns="metric", values="value")
    with_first = wide[wide["latency_p50_ms"].notna()]
    assert set(pairs["n"]) == {min(20_000, len(with_first))}
    row = pairs[(pairs["x"] == "latency_p50_ms") & (pairs["y"] == "memory_peak_mb")].iloc[0]
    expected = wide[metrics[:2]].dropna().corr(method="spearman").iloc[0, 1]
    assert row["spearman_rho"] == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------- empty and odd data


def _store_with(tmp_path: Path, values: list[tuple[str, dict[str, float]]]) -> Path:
    """A store of benchmark results: (hardware, {metric: value}) each, an hour apart."""
    path = tmp_path / "odd.duckdb"
    store = open_store(path)
    with store.transaction() as cur:
        sink = Sink(cur, "test", "odd")
        sink.define([MetricDef("speed", "items/s", "higher"), MetricDef("lag_ms", "ms", "lower")])
        for i, (hardware, metrics) in enumerate(values):
            sink.add(
                Record(
                    key=(i,),
                    name="bench",
                    kind="benchmark",
                    hardware=hardware,
                    ts=NOW - timedelta(hours=len(values) - i),
                    metrics=metrics,
                )
            )
        sink.finish()
    release(path)
    return path


@pytest.mark.parametrize("page", PAGES)
def test_a_single_data_point_is_shown_or_explained(monkeypatch, tmp_path, page) -> None:
    db = _store_with(tmp_path, [("cuda", {"speed": 5.0, "lag_ms": 2.0})])
    at = _open(monkeypatch, db, page, {"range": "all"})
    assert at.get("vega_lite_chart") or at.info


@pytest.mark.parametrize("page", PAGES)
def test_constant_values_and_a_metric_missing_for_some_rows(monkeypatch, tmp_path, page) -> None:
    rows = [
        ("cuda", {"speed": 5.0}),
        ("cuda", {"speed": 5.0, "lag_ms": 1.0}),
        ("rocm", {"speed": 5.0}),
        ("rocm", {"speed": 5.0}),
    ]
    db = _store_with(tmp_path, rows)
    at = _open(monkeypatch, db, page, {"range": "all", "metric": "speed"})
    assert at.get("vega_lite_chart") or at.info


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_selection_says_so(monkeypatch, demo_db, page) -> None:
    at = _open(
        monkeypatch, demo_db, page, {"range": "custom", "from": "2001-01-01", "to": "2001-01-02"}
    )
    assert any(
        "No values" in i.value or "at least two" in i.value or "Fewer than" in i.value
        for i in at.info
    ), [i.value for i in at.info]


def test_a_store_without_metrics_explains_itself(monkeypatch, tmp_path) -> None:
    db = tmp_path / "tests-only.duckdb"
    open_store(db)
    release(db)
    for page in PAGES:
        at = _open(monkeypatch, db, page)
        assert at.info, page


def test_demo_now_is_recent() -> None:
    assert datetime.now() - NOW < timedelta(hours=6)  # the fixtures' clock is today's
    assert not pd.isna(NOW)
