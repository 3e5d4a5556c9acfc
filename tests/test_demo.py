"""The demo generator: realistic, reproducible, and honest about what it injected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import demo
from lib.store import StoreError, open_store, release
from tests.conftest import NOW

DESIGN_PLATFORMS = {"cpu", "cuda", "rocm", "mps", "openvino", "qnn", "webnn", "webgpu"}
DESIGN_BATCHES = {1, 2, 4, 8, 16, 32, 64}
DESIGN_PRECISIONS = {"fp32", "fp16", "bf16", "int8", "int4"}


def _joined(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return (
        raw["results"]
        .merge(raw["series"], on="series_id", how="left")
        .merge(raw["runs"][["run_id", "git_commit"]], on="run_id", how="left")
    )


def test_dimensions_use_the_design_vocabulary(raw: dict[str, pd.DataFrame]) -> None:
    series = raw["series"]
    bench = series[series["kind"] == "benchmark"]
    assert set(bench["hardware"]) == DESIGN_PLATFORMS
    assert set(bench["batch_size"]) <= DESIGN_BATCHES
    assert set(bench["precision"]) <= DESIGN_PRECISIONS
    web = bench[bench["hardware"].isin(["webnn", "webgpu"])]
    assert set(web["precision"]) == {"fp32", "fp16"}
    llava = bench[bench["model"] == "llava-hf/llava-1.5-7b-hf"]
    assert set(llava["hardware"]).isdisjoint({"rocm", "mps", "webnn", "webgpu"})
    assert set(series["kind"]) == {"benchmark", "unit_test", "integration_test", "performance_test"}
    assert raw["results"]["series_id"].isin(series["series_id"]).all()
    assert raw["measurements"]["result_id"].isin(raw["results"]["result_id"]).all()
    assert raw["results"]["result_id"].is_unique


def test_magnitudes_match_the_design_notes(raw: dict[str, pd.DataFrame]) -> None:
    m = raw["measurements"].merge(raw["series"], on="series_id")
    bert = m[
        (m["model"] == "bert-base-uncased") & (m["batch_size"] == 1) & (m["precision"] == "fp32")
    ]

    def median(metric: str, hardware: str, device: str | None = None) -> float:
        rows = bert[(bert["metric"] == metric) & (bert["hardware"] == hardware)]
        if device:
            rows = rows[rows["device"] == device]
        return float(rows["value"].median())

    assert 4.5 < median("latency_p50_ms", "cuda", "NVIDIA RTX 4090") < 8.0  # about 6 ms
    assert (
        120 < median("throughput_items_per_second", "cuda", "NVIDIA RTX 4090") < 210
    )  # about 160/s
    cpu_ratio = median("latency_p50_ms", "cpu") / median(
        "latency_p50_ms", "cuda", "NVIDIA RTX 4090"
    )
    assert 3.0 < cpu_ratio < 5.0  # about 4x slower
    fp16 = m[
        (m["model"] == "bert-base-uncased")
        & (m["hardware"] == "rocm")
        & (m["metric"] == "latency_p50_ms")
    ]
    ratio = (
        fp16[fp16["precision"] == "fp16"]["value"].median()
        / fp16[fp16["precision"] == "fp32"]["value"].median()
    )
    assert 0.6 < ratio < 0.8  # fp16 about 0.7x fp32


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    def digest(path: Path) -> tuple:
        store = open_store(path)
        with store.cursor() as cur:
            row = cur.execute(
                "SELECT count(*), sum(hash(result_id)), sum(duration_s) FROM results"
            ).fetchall()[0]
        release(path)
        return row

    demo.generate(tmp_path / "a.duckdb", results=3000, days=3, seed=5, now=NOW)
    demo.generate(tmp_path / "b.duckdb", results=3000, days=3, seed=5, now=NOW)
    demo.generate(tmp_path / "c.duckdb", results=3000, days=3, seed=6, now=NOW)
    assert digest(tmp_path / "a.duckdb") == digest(tmp_path / "b.duckdb")
    assert digest(tmp_path / "a.duckdb") != digest(tmp_path / "c.duckdb")


def test_injected_speed_changes_are_in_the_data(raw: dict[str, pd.DataFrame]) -> None:
    truth = raw["demo_truth"]
    steps = truth[truth["metric"].isin(["throughput_items_per_second", "memory_peak_mb"])]
    assert len(steps) > 0
    m = raw["measurements"]
    for (note, metric), group in steps.groupby(["note", "metric"]):
        at = group["changed_at"].iloc[0]
        values = m[m["series_id"].isin(group["series_id"]) & (m["metric"] == metric)]
        typical = values[values["ts"] < at].groupby("series_id")["value"].median()
        after = values[values["ts"] >= at]
        ratio = (after["value"] / after["series_id"].map(typical)).dropna()
        assert len(ratio) >= 10, note
        expected = 1 + group["change"].iloc[0]
        assert ratio.median() == pytest.approx(expected, rel=0.03), note
    # Series without any injected change stay flat across the same moments.
    changed = set(steps["series_id"])
    flat = m[~m["series_id"].isin(changed) & (m["metric"] == "throughput_items_per_second")]
    midpoint = flat["ts"].min() + (flat["ts"].max() - flat["ts"].min()) / 2
    typical = flat[flat["ts"] < midpoint].groupby("series_id")["value"].median()
    late = flat[flat["ts"] >= midpoint]
    assert (late["value"] / late["series_id"].map(typical)).median() == pytest.approx(1.0, abs=0.01)


def test_flaky_tests_pass_and_fail_on_the_same_commit(raw: dict[str, pd.DataFrame]) -> None:
    joined = _joined(raw)
    flaky = raw["demo_truth"].query("kind == 'flaky_test'")
    named = flaky.merge(raw["series"], on="series_id")
    names = named["suite"] + "::" + named["name"]
    assert set(names) == set(demo.FLAKY)
    runs = joined[
        joined["series_id"].isin(flaky["series_id"]) & (joined["worker_id"] != demo.BAD_WORKER)
    ]
    mixed = runs.groupby(["series_id", "git_commit"])["status"].agg(
        lambda s: {"passed", "failed"} <= set(s)
    )
    assert mixed.groupby(level=0).any().all()
    rates = runs.groupby("series_id")["status"].apply(lambda s: (s == "failed").mean())
    expected = flaky.set_index("series_id")["change"]
    assert (rates - expected.loc[rates.index]).abs().max() < 0.15
    # No test outside the ground truth ever fails (the bad worker's errors aside).
    others = joined[
        (joined["kind"] != "benchmark")
        & ~joined["series_id"].isin(raw["demo_truth"]["series_id"].dropna())
    ]
    assert (others["status"] == "failed").sum() == 0


def test_broken_test_fails_from_its_commit_and_recovered_one_passes_again(
    raw: dict[str, pd.DataFrame],
) -> None:
    joined = _joined(raw)
    joined = joined[joined["worker_id"] != demo.BAD_WORKER]
    truth = raw["demo_truth"]
    for _, row in truth[truth["kind"] == "broken_test"].iterrows():
        rows = joined[joined["series_id"] == row["series_id"]]
        assert (rows[rows["ts"] >= row["changed_at"]]["status"] == "failed").all()
        assert (rows[rows["ts"] < row["changed_at"]]["status"] == "passed").all()
        assert len(rows[rows["ts"] >= row["changed_at"]]) >= 3
    recovered = truth[truth["kind"] == "recovered_test"].iloc[0]
    rows = joined[joined["series_id"] == recovered["series_id"]].sort_values("ts")
    failing = rows[rows["status"] == "failed"]
    assert len(failing) >= 1 and failing["ts"].min() >= recovered["changed_at"]
    assert rows.iloc[-1]["status"] == "passed"


def test_only_the_bad_worker_has_infrastructure_errors(raw: dict[str, pd.DataFrame]) -> None:
    results = raw["results"]
    errors = results[results["status"] == "error"]
    assert set(errors["worker_id"]) == {demo.BAD_WORKER}
    mine = results[(results["worker_id"] == demo.BAD_WORKER) & (results["status"] != "skipped")]
    assert (mine["status"] == "error").mean() == pytest.approx(demo.BAD_WORKER_ERROR_RATE, abs=0.05)
    assert errors["message"].str.contains("No space left|Connection reset").all()


def test_worker_heartbeats_make_some_stale_and_one_dead(raw: dict[str, pd.DataFrame]) -> None:
    last = raw["heartbeats"].groupby("worker_id")["ts"].max()
    age = (pd.Timestamp(NOW) - last).dt.total_seconds()
    interval = demo.HEARTBEAT_INTERVAL_S
    dead = set(age[age > 10 * interval].index)
    stale = set(age[(age > 3 * interval) & (age <= 10 * interval)].index)
    assert dead == {demo.DEAD_WORKER}
    assert stale == set(demo.STALE_WORKERS)
    assert set(raw["workers"]["worker_id"]) == set(last.index)
    died = pd.Timestamp(NOW) - demo.DEAD_AGO
    results = raw["results"]
    assert results[(results["worker_id"] == demo.DEAD_WORKER) & (results["ts"] > died)].empty


def test_demo_refuses_to_overwrite_real_data_but_fills_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "real.duckdb"
    store = open_store(path)
    release(path)
    demo.generate(path, results=100, days=1, seed=1, now=NOW)  # an empty store may be replaced
    store = open_store(path)
    with store.transaction() as cur:
        cur.execute("DELETE FROM dtd_meta WHERE key LIKE 'demo%'")  # now it is someone's data
    release(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="already holds [0-9,]+ results that are not demo data"):
        demo.generate(path, results=100, days=1, seed=1, now=NOW)
    assert path.read_bytes() == before


def test_demo_replaces_an_earlier_demo_atomically(tmp_path: Path) -> None:
    path = tmp_path / "d.duckdb"
    demo.generate(path, results=500, days=1, seed=1, now=NOW)
    demo.generate(path, results=900, days=1, seed=2, now=NOW)
    store = open_store(path)
    with store.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM results").fetchall()[0][0] > 500
    assert store.meta()["demo_seed"] == "2"
    release(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.duckdb"]


def test_live_demo_catches_up_once_per_window(tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    demo.generate(path, results=20_000, days=2, seed=3, now=NOW - timedelta(hours=1), live=True)
    store = open_store(path)
    with store.cursor() as cur:
        before = cur.execute("SELECT count(*), max(ts) FROM results").fetchall()[0]
    added = demo.catch_up(store, now=NOW)
    # About 20,000 results per 2 days: an hour adds about 417 (Poisson).
    assert 300 < added < 550
    with store.cursor() as cur:
        after = cur.execute("SELECT count(*), max(ts) FROM results").fetchall()[0]
        beats = cur.execute(
            "SELECT max(ts) FROM heartbeats WHERE worker_id = 'gpu-h100-01'"
        ).fetchall()[0][0]
    assert after[0] == before[0] + added
    assert after[1] > before[1]
    assert (pd.Timestamp(NOW) - pd.Timestamp(beats)).total_seconds() < 2 * demo.HEARTBEAT_INTERVAL_S
    assert demo.catch_up(store, now=NOW) == 0
    release(path)


def test_static_demo_is_never_extended(demo_db: Path) -> None:
    store = open_store(demo_db)
    token = store.cache_token
    assert demo.catch_up(store, now=NOW + timedelta(hours=5)) == 0
    assert store.cache_token == token


def test_result_ids_are_stable_hashes(raw: dict[str, pd.DataFrame]) -> None:
    ids = raw["results"]["result_id"].to_numpy()
    assert ids.dtype == np.int64 and len(np.unique(ids)) == len(ids)


def test_live_demo_in_short_steps_keeps_stale_workers_stale_and_no_gaps(tmp_path: Path) -> None:
    path = tmp_path / "steps.duckdb"
    start = NOW - timedelta(hours=2)
    demo.generate(path, results=5000, days=1, seed=8, now=start, live=True)
    store = open_store(path)
    for step in range(1, 41):  # 40 refreshes, 12 s apart: 8 minutes
        demo.catch_up(store, now=start + timedelta(seconds=12 * step))
    end = start + timedelta(seconds=480)
    with store.cursor() as cur:
        beats = cur.execute("SELECT worker_id, ts FROM heartbeats ORDER BY ts").df()
    release(path)
    last = beats.groupby("worker_id")["ts"].max()
    age = (pd.Timestamp(end) - last).dt.total_seconds()
    interval = demo.HEARTBEAT_INTERVAL_S
    assert set(age[(age > 3 * interval) & (age <= 10 * interval)].index) == set(demo.STALE_WORKERS)
    assert set(age[age > 10 * interval].index) == {demo.DEAD_WORKER}
    recent = beats[beats["ts"] >= pd.Timestamp(start) - pd.Timedelta(minutes=10)]
    gaps = recent.groupby("worker_id")["ts"].diff().dt.total_seconds().dropna()
    assert gaps.max() < interval + 2.5  # every 30 s, give or take the 0-2 s jitter
