"""The cached query layer: answers follow committed writes at once and the clock per interval."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from lib import aggregator, rollups
from lib.aggregator import Aggregator
from lib.ids import stable_id
from lib.spec import QuerySpec
from lib.store import open_store
from lib.writer import Batch, append

SID = stable_id("unit_test", "suite", "test_cached")


def _result(n: int) -> Batch:
    return Batch(
        series=pd.DataFrame({"series_id": [SID], "kind": ["unit_test"], "name": ["test_cached"]}),
        results=pd.DataFrame(
            {
                "result_id": [stable_id("cached", n)],
                "series_id": [SID],
                "ts": [datetime(2026, 11, 1) + timedelta(minutes=n)],
                "status": ["passed"],
            }
        ),
    )


def test_answers_follow_writes_and_the_refresh_tick(tmp_path: Path, monkeypatch) -> None:
    store = open_store(tmp_path / "cache.duckdb")
    agg = Aggregator(store, refresh_s=30)
    spec = QuerySpec.build("all")

    def count() -> int:
        return agg.status_counts(spec)["current"]["results"]

    append(store, _result(1))
    assert count() == 1
    append(store, _result(2))
    assert count() == 2  # a committed write changes the cache token

    # A write that bypasses the store's transactions is invisible until the next interval.
    with store.cursor() as cur:
        before = rollups.marks(cur)
        cur.execute(
            "INSERT INTO results (result_id, series_id, ts, status) "
            "VALUES (3, ?, TIMESTAMP '2026-11-01 01:00', 'failed')",
            [SID],
        )
        rollups.catch_up(cur, before)
    assert count() == 2
    later = time.time() + 30
    monkeypatch.setattr(aggregator.time, "time", lambda: later)
    assert count() == 3
    store.close()


def test_refresh_interval_sets_the_period() -> None:
    assert Aggregator(None, 0).period == aggregator.DEFAULT_PERIOD_S  # type: ignore[arg-type]
    assert Aggregator(None, 5).period == 5  # type: ignore[arg-type]
    assert Aggregator(None, 3600).period == 3600  # type: ignore[arg-type]


def test_only_known_queries_can_be_cached(tmp_path: Path) -> None:
    agg = Aggregator(open_store(tmp_path / "x.duckdb"), 0)
    with pytest.raises(KeyError):
        agg._run("close_all")
    with pytest.raises(KeyError):
        aggregator._resolve("os:system")
