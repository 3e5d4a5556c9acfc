"""The seed framework's benchmark database (DuckDB), built here with duckdb, read read-only."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from lib.ingest import IngestOptions, ingest_paths
from lib.store import open_store
from tests.conftest import table_counts

SCHEMA = """
CREATE TABLE models (
    model_id INTEGER PRIMARY KEY, model_name VARCHAR, model_family VARCHAR, modality VARCHAR,
    source VARCHAR, version VARCHAR, parameters_million FLOAT);
CREATE TABLE hardware_platforms (
    hardware_id INTEGER PRIMARY KEY, hardware_type VARCHAR, device_name VARCHAR, platform VARCHAR,
    platform_version VARCHAR, driver_version VARCHAR, memory_gb FLOAT, compute_units INTEGER);
CREATE TABLE test_runs (
    run_id INTEGER PRIMARY KEY, test_name VARCHAR, test_type VARCHAR, started_at TIMESTAMP,
    completed_at TIMESTAMP, execution_time_seconds FLOAT, success BOOLEAN, git_commit VARCHAR,
    git_branch VARCHAR, command_line VARCHAR, metadata JSON);
CREATE TABLE performance_results (
    result_id INTEGER PRIMARY KEY, run_id INTEGER, model_id INTEGER, hardware_id INTEGER,
    test_case VARCHAR, batch_size INTEGER, precision VARCHAR, total_time_seconds FLOAT,
    average_latency_ms FLOAT, throughput_items_per_second FLOAT, memory_peak_mb FLOAT,
    iterations INTEGER, warmup_iterations INTEGER, metrics JSON, is_simulated BOOLEAN,
    created_at TIMESTAMP);
"""

MODELS = [
    (1, "bert-base-uncased", "bert", "text", "huggingface", "main", 110.0),
    (2, "openai/whisper-tiny", "whisper", "audio", "huggingface", "main", 39.0),
]
HARDWARE = [
    (1, "cuda", "NVIDIA RTX 4090", "linux", "22.04", "550.54", 24.0, 16384),
    (2, "cpu", "Intel Xeon Gold 6338", "linux", "22.04", None, 256.0, 64),
]
RUNS = [
    (1, "nightly benchmark", "performance", datetime(2025, 3, 1, 2, 0), datetime(2025, 3, 1, 2, 30),
     1800.0, True, "abc1234", "main", "python run_benchmarks.py", None),
    (2, "pr benchmark", "performance", datetime(2025, 3, 2, 3, 0), datetime(2025, 3, 2, 3, 10),
     600.0, False, "def5678", "feature/fp16", "python run_benchmarks.py --pr", None),
]  # fmt: skip
LATENCIES = {"latency_p50_ms": 23.5, "latency_p99_ms": 30.25, "warm": "yes"}
RESULTS = [
    # result_id, run, model, hardware, test_case, batch, precision, total s, mean ms, items/s,
    # peak MB, iterations, warmup, metrics JSON, simulated, created_at
    (1, 1, 1, 1, "bert_inference", 1, "fp32", 12.5, 6.1, 163.9, 1520.0, 100, 10, None, False,
     datetime(2025, 3, 1, 2, 5)),
    (2, 1, 1, 2, "bert_inference", 8, "fp32", 40.0, 24.0, 333.3, 2048.0, 100, 10,
     json.dumps(LATENCIES), False, datetime(2025, 3, 1, 2, 10)),
    (3, 1, 2, 1, "whisper_transcribe", 1, "fp16", 8.0, 80.0, 12.5, 900.0, 50, 5, None, False,
     datetime(2025, 3, 1, 2, 20)),
    (4, 2, 2, 2, "whisper_transcribe", 4, "int8", 30.0, 300.0, 13.3, 700.0, 50, 5, None, True,
     datetime(2025, 3, 2, 3, 5)),
    (5, 2, 1, 1, "bert_inference", 16, "fp16", 20.0, 9.5, 1684.2, 3100.0, 100, 10, None, False,
     datetime(2025, 3, 2, 3, 6)),
]  # fmt: skip


def build_seed(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    con.executemany("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?)", MODELS)
    con.executemany("INSERT INTO hardware_platforms VALUES (?, ?, ?, ?, ?, ?, ?, ?)", HARDWARE)
    con.executemany("INSERT INTO test_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", RUNS)
    con.executemany(
        "INSERT INTO performance_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        RESULTS,
    )
    con.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_seed_database_is_mapped_field_by_field(empty_store, tmp_path: Path) -> None:
    path = build_seed(tmp_path / "benchmark_db.duckdb")
    before = sha256(path)
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    assert report.format == "seed-db"
    assert (report.results, report.passed, report.failed, report.added) == (5, 3, 2, 5)
    assert report.measurements == 5 * 4 + 2  # four columns each, two numbers in the JSON
    assert sha256(path) == before

    models = {m[0]: m for m in MODELS}
    hardware = {h[0]: h for h in HARDWARE}
    runs = {r[0]: r for r in RUNS}
    with empty_store.cursor() as cur:
        got = cur.execute(
            """SELECT s.name, s.kind, s.model, s.model_family, s.modality, s.hardware, s.device,
                      s.batch_size, s."precision", s.extra, r.ts, r.status, r.duration_s,
                      r.message, u.name, u.git_commit, u.git_branch, r.result_id
               FROM results AS r JOIN series AS s USING (series_id)
               LEFT JOIN runs AS u USING (run_id)
               ORDER BY s.name, s.batch_size"""
        ).fetchall()
        values = {}
        for result_id, metric, value in cur.execute(
            "SELECT result_id, metric, value FROM measurements"
        ).fetchall():
            values.setdefault(result_id, {})[metric] = value
        units = {
            n: (u, d)
            for n, u, d in cur.execute("SELECT name, unit, direction FROM metrics").fetchall()
        }
    expected = []
    for row in sorted(RESULTS, key=lambda r: (r[4], r[5])):
        rid, run_id, model_id, hardware_id, case, batch, precision = row[:7]
        total, mean, items, peak, _, _, metrics_json, simulated, _ = row[7:]
        run = runs[run_id]
        metrics = {
            "total_time_seconds": total,
            "latency_mean_ms": mean,
            "throughput_items_per_second": items,
            "memory_peak_mb": peak,
        }
        if metrics_json:
            metrics.update({k: v for k, v in json.loads(metrics_json).items() if k != "warm"})
        expected.append(
            (
                case,
                "benchmark",
                models[model_id][1],
                models[model_id][2],
                models[model_id][3],
                hardware[hardware_id][1],
                hardware[hardware_id][2],
                batch,
                precision,
                {"simulated": "true"} if simulated else None,
                run[3],
                "passed" if run[6] else "failed",
                total,
                None if run[6] else f"test run {run[1]} failed",
                f"{run[1]} (run {run_id})",
                run[7],
                run[8],
                metrics,
            )
        )
    assert len(got) == len(expected)
    for have, want in zip(got, expected, strict=True):
        extra = dict(have[9]) if have[9] else None
        assert (*have[:9], extra, *have[10:17]) == want[:17]
        # 32-bit floats in the seed come back as the numbers that were written
        assert values[have[17]] == want[17]
    assert units["latency_mean_ms"] == ("ms", "lower")
    assert units["latency_p99_ms"] == ("ms", "lower")
    assert units["total_time_seconds"] == ("s", "lower")
    assert units["throughput_items_per_second"] == ("items/s", "higher")
    assert "warm" not in units


def test_seed_database_twice_adds_nothing(empty_store, tmp_path: Path) -> None:
    path = build_seed(tmp_path / "benchmark_db.duckdb")
    before = sha256(path)
    assert ingest_paths(empty_store, [path])[0].added == 5
    counts = table_counts(empty_store)
    (again,) = ingest_paths(empty_store, [path])
    assert (again.status, again.results, again.added) == ("ok", 5, 0)
    assert table_counts(empty_store) == counts
    assert sha256(path) == before


def test_an_older_seed_layout_with_text_times_and_no_runs(empty_store, tmp_path: Path) -> None:
    """Upstream stored VARCHAR timestamps; some files have no is_simulated and no test_runs."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        """CREATE TABLE performance_results (result_id INTEGER, run_id INTEGER, model_id INTEGER,
               hardware_id INTEGER, test_case VARCHAR, batch_size INTEGER, precision VARCHAR,
               total_time_seconds FLOAT, average_latency_ms FLOAT,
               throughput_items_per_second FLOAT, memory_peak_mb FLOAT, iterations INTEGER,
               warmup_iterations INTEGER, metrics VARCHAR, created_at VARCHAR);
           INSERT INTO performance_results VALUES
               (7, NULL, NULL, NULL, 'vit_classify', 2, 'fp32', 3.5, 12.0, 166.5, 512.0, 10, 1,
                'not json', '2025-01-05T10:00:00+01:00')"""
    )
    con.close()
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    with empty_store.cursor() as cur:
        row = cur.execute(
            """SELECT r.ts, r.status, r.run_id, s.name, s.model, s.hardware, s.extra
               FROM results AS r JOIN series AS s USING (series_id)"""
        ).fetchall()
        metrics = cur.execute("SELECT count(*) FROM measurements").fetchall()[0][0]
    assert row == [(datetime(2025, 1, 5, 9, 0), "passed", None, "vit_classify", None, None, None)]
    assert metrics == 4


def test_one_of_our_stores_is_refused(empty_store, tmp_path: Path) -> None:
    other = open_store(tmp_path / "other" / "store.duckdb")
    other_path = other.path
    other.close()
    before = sha256(other_path)
    counts = table_counts(empty_store)
    (report,) = ingest_paths(empty_store, [other_path])
    assert report.status == "error"
    assert "results database of this dashboard" in report.error
    assert sha256(other_path) == before
    assert table_counts(empty_store) == counts
    # the store this process has open is refused too
    (itself,) = ingest_paths(empty_store, [empty_store.path])
    assert itself.status == "error"
    assert "not the seed framework's benchmark database" in itself.error


def test_a_duckdb_file_without_performance_results_is_refused(empty_store, tmp_path: Path):
    path = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (id INTEGER); CREATE TABLE users (id INTEGER)")
    con.close()
    before = sha256(path)
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "error"
    assert "without a performance_results table" in report.error
    assert "events, users" in report.error
    assert sha256(path) == before


@pytest.mark.parametrize("value", [float("nan"), -1.0])
def test_a_bad_value_names_the_seed_row(empty_store, tmp_path: Path, value: float) -> None:
    path = build_seed(tmp_path / "benchmark_db.duckdb")
    con = duckdb.connect(str(path))
    con.execute("UPDATE performance_results SET memory_peak_mb = ? WHERE result_id = 3", [value])
    con.close()
    (report,) = ingest_paths(empty_store, [path], IngestOptions(strict=True))
    assert report.status == "error"
    assert "result_id 3" in report.error
    assert "performance_results.memory_peak_mb" in report.error
    assert table_counts(empty_store)["results"] == 0
    # Without strict, that row is left out and named; the others go in.
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT count(*) FROM performance_results").fetchall()[0][0]
    con.close()
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.rejected, report.results) == ("partial", 1, rows - 1)
    [problem] = report.problems
    assert "result_id 3" in problem["where"] + problem["problem"]
    assert "performance_results.memory_peak_mb" in problem["problem"]
    assert table_counts(empty_store)["results"] == rows - 1
