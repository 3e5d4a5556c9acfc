"""Appending batches: idempotent by id, all or nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from lib.ids import stable_id
from lib.store import open_store
from lib.writer import Batch, append


def _batch(status: str = "passed") -> Batch:
    sid = stable_id("unit_test", "suite", "test_a")
    return Batch(
        series=pd.DataFrame(
            {"series_id": [sid], "kind": ["unit_test"], "suite": ["suite"], "name": ["test_a"]}
        ),
        results=pd.DataFrame(
            {
                "result_id": [stable_id("r", 1), stable_id("r", 2), stable_id("r", 2)],
                "series_id": [sid] * 3,
                "ts": [
                    datetime(2026, 11, 1, 12),
                    datetime(2026, 11, 1, 13),
                    datetime(2026, 11, 1, 13),
                ],
                "status": ["passed", status, status],
                "duration_s": [0.5, 0.7, 0.7],
            }
        ),
        measurements=pd.DataFrame(
            {
                "result_id": [stable_id("r", 1)],
                "series_id": [sid],
                "ts": [datetime(2026, 11, 1, 12)],
                "metric": ["memory_peak_mb"],
                "value": [512.0],
            }
        ),
    )


def _counts(store) -> dict[str, int]:
    with store.cursor() as cur:
        return {
            t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("series", "results", "measurements")
        }


def test_same_batch_twice_adds_nothing_the_second_time(tmp_path: Path) -> None:
    store = open_store(tmp_path / "w.duckdb")
    try:
        first = append(store, _batch())
        assert first == {"series": 1, "results": 2, "measurements": 1}  # the repeated row once
        assert append(store, _batch()) == {"series": 0, "results": 0, "measurements": 0}
        assert _counts(store) == {"series": 1, "results": 2, "measurements": 1}
    finally:
        store.close()


def test_a_bad_row_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    store = open_store(tmp_path / "w.duckdb")
    try:
        with pytest.raises(duckdb.ConstraintException):
            append(store, _batch(status="exploded"))
        assert _counts(store) == {"series": 0, "results": 0, "measurements": 0}
    finally:
        store.close()


def test_ids_are_stable_and_distinguish_none_from_empty() -> None:
    assert stable_id("a", 1, None) == stable_id("a", 1, None)
    assert stable_id("a", 1, None) != stable_id("a", 1, "")
    assert stable_id("a", "b") != stable_id("ab")
