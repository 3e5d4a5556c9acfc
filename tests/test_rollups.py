"""Hourly rollups stay equal to what the raw rows say, however the writes are split."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from lib import performance, queries, rollups
from lib.ids import stable_id
from lib.spec import QuerySpec
from lib.store import open_store
from lib.writer import Batch, append

START = datetime(2026, 11, 1)
NOW = START + timedelta(hours=61, minutes=30)  # windows then end and start mid-hour
SERIES = [stable_id("benchmark", "suite", f"bench_{k}") for k in range(3)]


def _batch(rng: np.random.Generator, first: int, n: int, hours: tuple[int, int] = (0, 60)) -> Batch:
    """``n`` results with ids from ``first``, at random minutes of ``hours`` after START (by
    default a 60-hour window, so later batches land in hours earlier batches already filled,
    and some hours get one value only)."""
    ids = [stable_id("roll", k) for k in range(first, first + n)]
    series = rng.choice(SERIES, n)
    minutes = rng.integers(hours[0] * 60, hours[1] * 60, n)
    ts = [START + timedelta(minutes=int(m)) for m in minutes]
    status = rng.choice(["passed", "failed", "skipped"], n)
    duration = rng.gamma(2.0, 1.5, n)
    values = rng.lognormal(3.0, 0.4, n)
    return Batch(
        metrics=pd.DataFrame({"name": ["lat_ms"], "unit": ["ms"], "direction": ["lower"]}),
        series=pd.DataFrame(
            {
                "series_id": SERIES,
                "kind": "benchmark",
                "name": [f"bench_{k}" for k in range(3)],
                "model": [f"model_{k}" for k in range(3)],
                "hardware": "gpu",
            }
        ),
        results=pd.DataFrame(
            {
                "result_id": ids,
                "series_id": series,
                "ts": ts,
                "status": status,
                "duration_s": duration,
                "worker_id": "w1",
            }
        ),
        measurements=pd.DataFrame(
            {"result_id": ids, "series_id": series, "ts": ts, "metric": "lat_ms", "value": values}
        ),
    )


def test_rollups_match_pandas_after_overlapping_writes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "roll.duckdb")
    rng = np.random.default_rng(7)
    first = 0
    for n in (1, 2, 40, 3, 500, 1, 60):  # single values, pairs, then hours filled again
        append(store, _batch(rng, first, n))
        first += n
    assert first == 607
    per_hour = _assert_rollups_match_raw(store)
    assert (per_hour == 1).any() and (per_hour == 2).any()  # the (min + max) / 2 medians


def test_rollups_match_pandas_when_writes_come_in_time_order(tmp_path: Path) -> None:
    """Each batch after the rollup's newest hour (one pass, no recomputation), then one that
    goes back into earlier hours."""
    store = open_store(tmp_path / "ordered.duckdb")
    rng = np.random.default_rng(5)
    for k, hours in enumerate([(0, 5), (5, 9), (9, 10), (12, 20), (3, 15)]):
        append(store, _batch(rng, 100 * k, 100, hours))
    _assert_rollups_match_raw(store)


def _assert_rollups_match_raw(store) -> pd.Series:
    """Both rollups equal pandas on the raw rows; returns the values per (series, hour)."""
    with store.cursor() as cur:
        raw = cur.execute("SELECT series_id, ts, value FROM measurements").df()
        got = cur.execute("SELECT series_id, hour, n, sum, min, max, median FROM metric_hours").df()
        results = cur.execute("SELECT series_id, ts, status, duration_s FROM results").df()
        result_hours = cur.execute(
            "SELECT series_id, hour, sum(passed) AS passed, sum(failed) AS failed, "
            "sum(skipped) AS skipped, sum(duration_sum) AS duration_sum "
            "FROM result_hours GROUP BY ALL"
        ).df()
    store.close()

    raw["hour"] = raw["ts"].dt.floor("h")
    expected = raw.groupby(["series_id", "hour"])["value"].agg(
        ["count", "sum", "min", "max", "median"]
    )
    got = got.set_index(["series_id", "hour"]).sort_index()
    assert len(got) == len(expected)
    assert (got["n"] == expected["count"]).all()
    for column in ("sum", "min", "max", "median"):
        assert np.allclose(got[column], expected[column], rtol=1e-12), column

    results["hour"] = results["ts"].dt.floor("h")
    counts = pd.crosstab([results["series_id"], results["hour"]], results["status"])
    durations = results.groupby(["series_id", "hour"])["duration_s"].sum()
    result_hours = result_hours.set_index(["series_id", "hour"]).sort_index()
    assert len(result_hours) == len(counts)
    for status in ("passed", "failed", "skipped"):
        assert (result_hours[status] == counts[status]).all(), status
    assert np.allclose(result_hours["duration_sum"], durations, rtol=1e-12)
    return expected["count"]


def _answers(store) -> dict:
    """What pages read through the rollups: totals, counts in a window, values per metric,
    the data's span and a heatmap of means."""
    spec = QuerySpec.build("all")
    with store.cursor() as cur:
        summary = queries.summary(cur, NOW)
        window = queries.status_counts(cur, QuerySpec.build("24h"), NOW)
        catalog = queries.metric_catalog(cur).set_index("name")["values"].to_dict()
        cells = performance.heatmap_cells(cur, spec, NOW, "lat_ms", "model", "hardware", "mean")
        return {
            "results": summary["results"],
            "failed": summary["failed"],
            "window": window["current"]["results"],
            "values": catalog["lat_ms"],
            "span": queries.data_span(cur),
            "means": dict(zip(cells["row"], np.round(cells["value"], 9), strict=True)),
        }


def _expected(store) -> dict:
    with store.cursor() as cur:
        results = cur.execute("SELECT ts, status, series_id FROM results").df()
        values = cur.execute(
            "SELECT s.model, m.value FROM measurements AS m JOIN series AS s USING (series_id)"
        ).df()
    return {
        "results": len(results),
        "failed": int((results["status"] == "failed").sum()),
        "window": int((results["ts"] >= NOW - timedelta(hours=24)).sum()),
        "values": len(values),
        "span": (results["ts"].min().to_pydatetime(), results["ts"].max().to_pydatetime()),
        "means": values.groupby("model")["value"].mean().round(9).to_dict(),
    }


def test_bulk_writes_settle_later_and_answers_stay_exact_meanwhile(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rollups, "DEFER_ROWS", 100)  # a "bulk" write here is 100 rows or more
    store = open_store(tmp_path / "bulk.duckdb")
    store.settle_in_background = False  # settle when the test says so
    rng = np.random.default_rng(11)
    append(store, _batch(rng, 0, 30))  # 60 rows: rolled up in its transaction
    with store.cursor() as cur:
        assert rollups.pending(cur) is None
        rolled = cur.execute("SELECT sum(n) FROM metric_hours").fetchall()[0][0]
    assert rolled == 30

    append(store, _batch(rng, 30, 400))  # 800 rows: left behind
    append(store, _batch(rng, 430, 5))  # small, but after a pending note: left behind too
    with store.cursor() as cur:
        assert rollups.pending(cur) == (30, 30)
        assert cur.execute("SELECT sum(n) FROM metric_hours").fetchall()[0][0] == 30
    expected = _expected(store)
    assert expected["results"] == 435
    assert _answers(store) == expected  # the raw rows past the note are added to the rollups

    assert store.settle() and not store.settle()
    with store.cursor() as cur:
        assert rollups.pending(cur) is None
        assert cur.execute("SELECT sum(n) FROM metric_hours").fetchall()[0][0] == 435
    assert _answers(store) == expected

    append(store, _batch(rng, 435, 400))  # left behind again; closing settles
    store.close()
    reopened = open_store(tmp_path / "bulk.duckdb")
    with reopened.cursor() as cur:
        assert rollups.pending(cur) is None
        assert cur.execute("SELECT sum(n) FROM metric_hours").fetchall()[0][0] == 835
    reopened.close()


def test_a_background_thread_settles_a_bulk_write(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rollups, "DEFER_ROWS", 100)
    store = open_store(tmp_path / "thread.duckdb")
    append(store, _batch(np.random.default_rng(3), 0, 300))
    for _ in range(200):
        with store.cursor() as cur:
            if rollups.pending(cur) is None:
                break
        time.sleep(0.05)
    with store.cursor() as cur:
        assert rollups.pending(cur) is None
        assert cur.execute("SELECT sum(n) FROM metric_hours").fetchall()[0][0] == 300
    store.close()


def test_a_reader_counts_each_row_once_whatever_commits_between_its_two_statements(
    tmp_path: Path, monkeypatch
):
    """``unsettled`` is read in one statement and used in a later one: a bulk write or a settle
    committing in between must neither hide rows nor count them twice."""
    monkeypatch.setattr(rollups, "DEFER_ROWS", 100)
    store = open_store(tmp_path / "race.duckdb")
    store.settle_in_background = False
    rng = np.random.default_rng(2)

    def count(condition: tuple[str, list]) -> int:
        with store.cursor() as cur:
            return cur.execute(
                "SELECT sum(passed + failed + error + skipped) FROM ("
                "SELECT passed, failed, error, skipped FROM result_hours UNION ALL "
                "SELECT 1, 0, 0, 0 FROM results WHERE TRUE" + condition[0] + ")",
                condition[1],
            ).fetchall()[0][0]

    def condition() -> tuple[str, list]:
        with store.cursor() as cur:
            return rollups.unsettled(cur, "results")

    append(store, _batch(rng, 0, 30))
    before = condition()  # no note yet
    append(store, _batch(rng, 30, 400))  # a bulk write commits in between
    assert count(before) == 430

    before = condition()  # the note of that write
    store.settle()
    append(store, _batch(rng, 430, 400))  # settled, then another bulk write's note
    assert count(before) == 830

    before = condition()
    store.settle()  # settled in between: the rollups hold everything
    assert count(before) == 830

    before = condition()
    append(store, _batch(rng, 830, 5))  # a small write rolls up in its own transaction
    assert count(before) == 835
    store.close()
