"""Hourly rollups stay equal to what the raw rows say, however the writes are split."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from lib.ids import stable_id
from lib.store import open_store
from lib.writer import Batch, append

START = datetime(2026, 11, 1)
SERIES = [stable_id("benchmark", "suite", f"bench_{k}") for k in range(3)]


def _batch(rng: np.random.Generator, first: int, n: int) -> Batch:
    """``n`` results with ids from ``first``, at random minutes of a 60-hour window, so later
    batches land in hours earlier batches already filled (and some hours get one value only)."""
    ids = [stable_id("roll", k) for k in range(first, first + n)]
    series = rng.choice(SERIES, n)
    ts = [START + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 60, n)]
    status = rng.choice(["passed", "failed", "skipped"], n)
    duration = rng.gamma(2.0, 1.5, n)
    values = rng.lognormal(3.0, 0.4, n)
    return Batch(
        metrics=pd.DataFrame({"name": ["lat_ms"], "unit": ["ms"], "direction": ["lower"]}),
        series=pd.DataFrame(
            {"series_id": SERIES, "kind": "benchmark", "name": [f"bench_{k}" for k in range(3)]}
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
    assert len(got) == len(expected) and first == len(raw) == 607
    assert (expected["count"] == 1).any() and (expected["count"] == 2).any()
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
