"""Queries against the small demo database, checked with pandas on the raw tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import demo, queries
from lib.spec import QuerySpec
from lib.store import open_store
from tests.conftest import NOW


@pytest.fixture()
def cur(demo_db: Path):
    with open_store(demo_db).cursor() as cursor:
        yield cursor


def _filtered(
    raw: dict[str, pd.DataFrame], start: datetime | None, end: datetime | None, **filters: list
) -> pd.DataFrame:
    rows = raw["results"].merge(raw["series"], on="series_id")
    if start is not None:
        rows = rows[rows["ts"] >= start]
    if end is not None:
        rows = rows[rows["ts"] < end]
    for column, values in filters.items():
        rows = rows[rows[column].isin(values)]
    return rows


def _rate(rows: pd.DataFrame) -> float:
    executed = rows[rows["status"] != "skipped"]
    return (executed["status"] == "passed").mean()


def test_status_counts_and_previous_period(cur, raw) -> None:
    spec = QuerySpec.build("7d", hardware=["cuda", "cpu"], precision=["fp16", "int8"])
    got = queries.status_counts(cur, spec, NOW)
    filters = {"hardware": ["cuda", "cpu"], "precision": ["fp16", "int8"]}
    now_rows = _filtered(raw, NOW - timedelta(days=7), None, **filters)
    before_rows = _filtered(raw, NOW - timedelta(days=14), NOW - timedelta(days=7), **filters)
    for label, rows in (("current", now_rows), ("previous", before_rows)):
        assert got[label]["results"] == len(rows) > 0
        for status in ("passed", "failed", "error", "skipped"):
            assert got[label][status] == int((rows["status"] == status).sum())
        assert got[label]["pass_rate"] == pytest.approx(_rate(rows))


def test_previous_period_is_withheld_when_the_data_does_not_reach_back(cur) -> None:
    got = queries.status_counts(cur, QuerySpec.build("30d"), NOW)  # the demo spans 14 days
    assert got["previous"] is None and got["current"]["results"] > 0
    assert queries.status_counts(cur, QuerySpec.build("all"), NOW)["previous"] is None


def test_status_over_time_buckets_add_up(cur, raw) -> None:
    spec = QuerySpec.build("24h", model=["bert-base-uncased"])
    frame = queries.status_over_time(cur, spec, NOW)
    # The chart's window starts at its first whole 15-minute bucket.
    start = pd.Timestamp(NOW - timedelta(hours=24)).floor("15min")
    rows = _filtered(raw, start, None, model=["bert-base-uncased"])
    assert frame.attrs["bucket_seconds"] == 900  # 24 h in at most 200 buckets: 15 minutes
    assert frame["results"].sum() == len(rows)
    assert frame["failed"].sum() == (rows["status"] == "failed").sum()
    buckets = rows["ts"].dt.floor("15min").value_counts()
    assert dict(zip(frame["bucket"], frame["results"], strict=True)) == buckets.to_dict()
    assert frame["pass_rate"].between(0, 1).all()


def test_bucket_floor_matches_clock_boundaries() -> None:
    moment = datetime(2026, 11, 29, 13, 47, 12)
    for seconds, frequency in ((900, "15min"), (3 * 3600, "3h"), (86400, "1D")):
        assert queries.bucket_floor(moment, seconds) == pd.Timestamp(moment).floor(frequency)
    assert queries.bucket_floor(moment, 7 * 86400) == datetime(2026, 11, 23)  # a Monday


def test_bucket_ladder_keeps_lines_short() -> None:
    start = datetime(2026, 1, 1)
    assert queries.bucket_seconds(start, start + timedelta(hours=1)) == 60
    assert queries.bucket_seconds(start, start + timedelta(days=7)) == 3600
    assert queries.bucket_seconds(start, start + timedelta(days=30)) == 6 * 3600
    assert queries.bucket_seconds(start, start + timedelta(days=3650), max_points=200) == 7 * 86400


def test_throughput_index_is_geometric_mean_of_ratios_to_series_typical_value(cur, raw) -> None:
    spec = QuerySpec.build("7d", hardware=["cuda"])
    frame = queries.metric_index_over_time(
        cur, spec, NOW, "throughput_items_per_second", "hardware"
    )
    m = raw["measurements"].merge(raw["series"][["series_id", "hardware"]], on="series_id")
    start = pd.Timestamp(NOW - timedelta(days=7)).floor("3h")  # whole first bucket
    m = m[
        (m["metric"] == "throughput_items_per_second")
        & (m["hardware"] == "cuda")
        & (m["ts"] >= start)
    ].copy()
    # A series' typical value: the median of its hourly medians in the window.
    m["hour"] = m["ts"].dt.floor("1h")
    hourly = m.groupby(["series_id", "hour"])["value"].median()
    typical = hourly.groupby("series_id").median()
    m["ratio"] = m["value"] / m["series_id"].map(typical)
    assert frame.attrs["bucket_seconds"] == 3 * 3600  # 7 days in at most 100 points
    m["bucket"] = m["ts"].dt.floor("3h")
    expected = m.groupby("bucket")["ratio"].apply(lambda r: float(np.exp(np.log(r).mean())))
    got = frame.set_index("bucket")["index"]
    assert set(frame["group"]) == {"cuda"}
    assert len(got) == len(expected)
    assert np.allclose(got.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-9)


def test_throughput_index_shows_the_injected_improvement(cur, raw) -> None:
    qwen = raw["demo_truth"].query(
        "note == 'fused rotary embedding for qwen2' and metric == 'throughput_items_per_second'"
    )
    at = qwen["changed_at"].iloc[0]
    spec = QuerySpec.build("all", model=["Qwen/Qwen2-0.5B-Instruct"], hardware=["cuda"])
    frame = queries.metric_index_over_time(
        cur, spec, NOW, "throughput_items_per_second", "hardware"
    )
    before = frame[frame["bucket"] < at - timedelta(days=1)]["index"].median()
    after = frame[frame["bucket"] > at + timedelta(days=1)]["index"].median()
    assert after / before == pytest.approx(1.25, rel=0.05)


def test_latest_failures_newest_first_with_commit_and_message(cur, raw) -> None:
    spec = QuerySpec.build("all")
    frame = queries.latest_failures(cur, spec, NOW, limit=20)
    rows = _filtered(raw, None, None)
    rows = (
        rows[rows["status"].isin(["failed", "error"])].sort_values("ts", ascending=False).head(20)
    )
    assert list(frame["time"]) == list(rows["ts"])
    assert list(frame["message"]) == list(rows["message"])
    assert frame["commit"].str.len().eq(12).all()
    assert frame["test"].str.contains("::").all()


def test_worker_states_from_heartbeat_ages(cur, raw) -> None:
    frame = queries.workers(cur, NOW)
    last = raw["heartbeats"].sort_values("ts").drop_duplicates("worker_id", keep="last")
    last = last.set_index("worker_id")
    age = (pd.Timestamp(NOW) - last["ts"]).dt.total_seconds()
    expected = np.where(
        age > 300,
        "dead",
        np.where(age > 90, "stale", np.where(last["current_task"].notna(), "active", "idle")),
    )
    got = frame.set_index("worker_id")["state"].loc[last.index]
    assert list(got) == list(expected)
    assert set(frame[frame["state"] == "stale"]["worker_id"]) == set(demo.STALE_WORKERS)
    cuda_only = queries.workers(cur, NOW, hardware=("cuda",))
    assert set(cuda_only["hardware"]) == {"cuda"}


def test_worker_without_heartbeats_is_unknown(tmp_path: Path) -> None:
    store = open_store(tmp_path / "w.duckdb")
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO workers (worker_id, hardware, heartbeat_interval_s, registered_at) "
            "VALUES ('new', 'cpu', 30, ?), ('gone', 'cpu', 30, ?)",
            [NOW - timedelta(seconds=20), NOW - timedelta(hours=2)],
        )
    with store.cursor() as cur:
        states = queries.workers(cur, NOW).set_index("worker_id")["state"]
    store.close()
    assert states.to_dict() == {"gone": "unknown", "new": "unknown"}


def test_summary_matches_the_raw_tables(cur, raw) -> None:
    got = queries.summary(cur, NOW)
    results, series = raw["results"], raw["series"]
    assert got["results"] == len(results)
    assert got["failed"] == (results["status"] == "failed").sum()
    assert got["pass_rate"] == pytest.approx(_rate(results))
    assert got["benchmark_series"] == (series["kind"] == "benchmark").sum()
    tests = series[series["kind"] != "benchmark"]
    assert got["test_cases"] == len(tests[["suite", "name"]].drop_duplicates())
    last = raw["heartbeats"].sort_values("ts").drop_duplicates("worker_id", keep="last")
    age = (pd.Timestamp(NOW) - last["ts"]).dt.total_seconds()
    live = age <= 90
    assert got["workers"] == {
        "active": int((live & last["current_task"].notna()).sum()),
        "idle": int((live & last["current_task"].isna()).sum()),
        "stale": 2,
        "dead": 1,
        "unknown": 0,
    }
    assert got["first_result"] == results["ts"].min()


def test_filter_options_list_what_the_series_carry(cur, raw) -> None:
    options = queries.filter_options(cur)
    assert options["hardware"] == sorted(raw["series"]["hardware"].dropna().unique())
    assert options["batch_size"] == sorted(
        raw["series"]["batch_size"].dropna().astype(int).unique()
    )


def test_empty_store_answers_with_zeros(tmp_path: Path) -> None:
    store = open_store(tmp_path / "empty.duckdb")
    with store.cursor() as cur:
        counts = queries.status_counts(cur, QuerySpec(), NOW)
        assert counts["current"]["results"] == 0 and counts["current"]["pass_rate"] is None
        assert counts["previous"] is None
        assert len(queries.status_over_time(cur, QuerySpec(), NOW)) == 0
        assert queries.summary(cur, NOW)["results"] == 0
        assert queries.demo_truth(cur) is None
    store.close()
