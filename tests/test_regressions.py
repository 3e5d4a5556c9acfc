"""Regression records: what is stored for a change, incrementally, and how people review it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lib import regressions
from lib.ingest.model import MetricDef, Record, RunInfo
from lib.ingest.sink import Sink
from lib.spec import QuerySpec
from lib.store import open_store, release
from tests.conftest import NOW

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
ALL = QuerySpec.build("all")


def _write(
    store,
    name: str,
    values: list[float],
    start: int = 0,
    hardware: str = "cuda",
    model: str = "bert",
    metric: str = "speed",
) -> None:
    """One benchmark series, a value an hour, commit c<i> for the i-th point."""
    with store.transaction() as cur:
        sink = Sink(cur, "test", name)
        sink.define(
            [
                MetricDef("speed", "items/s", "higher"),
                MetricDef("lag_ms", "ms", "lower"),
                MetricDef("colour", "", "none"),
            ]
        )
        for i, value in enumerate(values, start=start):
            sink.add(
                Record(
                    key=(name, metric, i),
                    name=name,
                    kind="benchmark",
                    hardware=hardware,
                    model=model,
                    ts=NOW - timedelta(hours=500 - i),
                    metrics={metric: value},
                    run=RunInfo(key=f"run{i}", git_commit=f"c{i:04d}abcdef0123"),
                )
            )
        sink.finish()


def _noise(n: int, level: float, seed: int, cv: float = 0.01) -> list[float]:
    return list(level * (1 + np.random.default_rng(seed).normal(0, cv, n)))


@pytest.fixture()
def store(tmp_path: Path):
    store = open_store(tmp_path / "reg.duckdb")
    yield store
    store.close()


def test_a_step_becomes_a_regression_with_its_evidence(store) -> None:
    values = _noise(60, 100.0, 1) + _noise(40, 75.0, 2)
    _write(store, "bench", values)
    assert regressions.analyse(store, now=NOW) == 1
    with store.cursor() as cur:
        [row] = regressions.listing(cur, ALL, NOW).to_dict("records")
        record = regressions.detail(cur, row["change_id"])
    assert row["kind"] == "regression" and row["severity"] == "major"
    assert row["change"] == pytest.approx(
        np.median(values[60:]) / np.median(values[10:60]) - 1, abs=0.01
    )
    assert record["ci_low"] < row["change"] < record["ci_high"] < 0
    assert record["before_n"] == 50 and record["after_n"] == 40  # WINDOW points before
    assert row["commit_before"] == "c0059abcdef0" and row["commit_after"] == "c0060abcdef0"
    assert record["p_value"] < 1e-6 and record["q_value"] == pytest.approx(record["p_value"])
    assert record["changed_at"] == NOW - timedelta(hours=440)
    assert not record["unstable"] and record["status"] == "open"


@pytest.mark.parametrize(
    "metric, factor, kind",
    [
        ("lag_ms", 1.3, "regression"),
        ("lag_ms", 0.7, "improvement"),
        ("speed", 1.3, "improvement"),
    ],
)
def test_direction_decides_regression_or_improvement(store, metric, factor, kind) -> None:
    _write(store, "b", _noise(50, 10.0, 3) + _noise(50, 10.0 * factor, 4), metric=metric)
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        found = regressions.listing(cur, ALL, NOW, kinds=("regression", "improvement"))
    assert list(found["kind"]) == [kind]


def test_metrics_without_direction_are_not_analysed(store) -> None:
    _write(store, "c", _noise(50, 10.0, 5) + _noise(50, 20.0, 6), metric="colour")
    assert regressions.analyse(store, now=NOW) == 0


def test_unstable_series_are_kept_but_not_listed_by_default(store) -> None:
    _write(store, "noisy", _noise(60, 100.0, 7, cv=0.2) + _noise(60, 50.0, 8, cv=0.2))
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        assert regressions.listing(cur, ALL, NOW).empty
        shown = regressions.listing(cur, ALL, NOW, include_unstable=True)
    assert len(shown) == 1 and bool(shown["unstable"].iloc[0])


def test_analysis_is_incremental_and_keeps_a_change_as_data_grows(store) -> None:
    _write(store, "bench", _noise(60, 100.0, 1) + _noise(20, 80.0, 2))
    assert regressions.analyse(store, now=NOW) == 1
    assert regressions.analyse(store, now=NOW) == 0  # nothing new
    with store.cursor() as cur:
        [first] = regressions.listing(cur, ALL, NOW).to_dict("records")
    _write(store, "bench", _noise(20, 80.0, 9), start=80)
    assert regressions.analyse(store, now=NOW) == 1
    with store.cursor() as cur:
        [again] = regressions.listing(cur, ALL, NOW).to_dict("records")
        record = regressions.detail(cur, again["change_id"])
    assert again["change_id"] == first["change_id"]  # the same change, seen with more data
    assert record["after_n"] == 40


def test_reviews_keep_history_and_the_latest_counts(store) -> None:
    _write(store, "bench", _noise(60, 100.0, 1) + _noise(40, 75.0, 2))
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        change_id = int(regressions.listing(cur, ALL, NOW)["change_id"].iloc[0])
    regressions.review(store, change_id, "acknowledged", "ticket 12", now=NOW)
    regressions.review(store, change_id, "fixed", "reverted", now=NOW + timedelta(hours=1))
    with store.cursor() as cur:
        record = regressions.detail(cur, change_id)
        assert regressions.listing(cur, ALL, NOW, statuses=("open",)).empty
        assert len(regressions.listing(cur, ALL, NOW, statuses=("fixed",))) == 1
    assert record["status"] == "fixed" and list(record["reviews"]["status"]) == [
        "fixed",
        "acknowledged",
    ]
    with pytest.raises(ValueError, match="status: 'ignored': input should be 'open'"):
        regressions.review(store, change_id, "ignored")
    with pytest.raises(ValueError, match="note: 42 is not text"):
        regressions.review(store, change_id, "fixed", 42)  # the validation layer of every write
    with pytest.raises(ValueError, match="no change point"):
        regressions.review(store, 12345, "fixed")


def test_blast_radius_groups_changes_of_one_commit(store) -> None:
    for name, hardware, model, level in (
        ("a", "cuda", "bert", 100.0),
        ("b", "rocm", "bert", 50.0),
        ("c", "cuda", "t5", 70.0),
    ):
        _write(
            store,
            name,
            _noise(60, level, 1) + _noise(40, level * 0.8, 2),
            hardware=hardware,
            model=model,
        )
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        reach = regressions.blast_radius(cur, "c0060abcdef0123", "speed")
    assert len(reach) == 3 and set(reach["col"]) == {"cuda", "rocm"}
    assert reach["value"].to_numpy() == pytest.approx([-0.2] * 3, abs=0.02)


def test_odd_series_never_raise_and_never_alarm(store) -> None:
    _write(store, "constant", [5.0] * 40)
    _write(store, "short", [1.0, 2.0])
    _write(store, "outlier", [*_noise(30, 10.0, 1), 100.0, *_noise(30, 10.0, 2)])
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        assert regressions.listing(cur, ALL, NOW, include_unstable=True).empty


def test_regressions_page_explains_and_saves_a_verdict(monkeypatch, tmp_path) -> None:
    db = tmp_path / "page.duckdb"
    store = open_store(db)
    _write(store, "bench", _noise(60, 100.0, 1) + _noise(40, 75.0, 2))
    regressions.analyse(store, now=NOW)
    with store.cursor() as cur:
        change_id = int(regressions.listing(cur, ALL, NOW)["change_id"].iloc[0])
    release(db)
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["range"] = "all"
    at.query_params["change"] = str(change_id)
    at.switch_page("pages/8_Regressions.py").run()
    assert not at.exception, [e.value for e in at.exception]
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Regressions"] == "1" and tiles["Status"] == "open"
    assert tiles["Change of median"].startswith("-2")
    assert len(at.get("vega_lite_chart")) == 3  # series, windows, blast radius
    at.selectbox(key="review_status").set_value("false_positive")
    at.text_input(key="review_note").set_value("a noisy neighbour")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Status"] == "false_positive"
    store = open_store(db)
    with store.cursor() as cur:
        assert regressions.detail(cur, change_id)["reviews"]["note"].iloc[0] == "a noisy neighbour"
    release(db)
