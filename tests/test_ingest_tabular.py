"""Our own results as CSV, TSV, Parquet, JSON Lines and JSON arrays; mappings; bad files.

Every expected value is written down here, next to the rows the test writes, and compared field
by field with what the store holds afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.ingest import IngestOptions, ingest_bytes, ingest_paths, tabular
from lib.ingest import sink as sink_module
from lib.ingest.tabular import infer_metric
from tests.conftest import table_counts

COLUMNS = [
    "ts",
    "name",
    "status",
    "kind",
    "suite",
    "duration_s",
    "message",
    "model",
    "model_family",
    "modality",
    "hardware",
    "device",
    "batch_size",
    "precision",
    "worker",
    "hostname",
    "os",
    "run",
    "git_commit",
    "git_branch",
    "metric.latency_p50_ms",
    "metric.tokens_per_second",
    "metric.peak_rss_mb",
    "metric.score",
    "throughput_items_per_second",
    "browser",
]

# One dict per row: what the file says. None is an empty cell / a missing key.
ROWS = [
    {
        "ts": "2025-03-01T12:00:00Z",
        "name": "test_generate",
        "status": "PASS",
        "suite": "perf.llm",
        "duration_s": 4.25,
        "model": "TinyLlama-1.1B",
        "model_family": "llama",
        "modality": "text",
        "hardware": "cuda",
        "device": "NVIDIA H100",
        "batch_size": 8,
        "precision": "fp16",
        "worker": "gpu-01",
        "hostname": "gpu-01.lab",
        "os": "linux",
        "run": "nightly-42",
        "git_commit": "3f2a9c1",
        "git_branch": "main",
        "metric.latency_p50_ms": 21.5,
        "metric.tokens_per_second": 812.25,
        "metric.peak_rss_mb": 2048.0,
        "metric.score": 0.875,
        "throughput_items_per_second": 160.5,
    },
    {
        "ts": "2025-03-01 14:00:05+02:00",
        "name": "test_render",
        "status": "failed",
        "kind": "integration-test",
        "suite": "ui",
        "duration_s": 0.5,
        "message": "AssertionError: frame 3 differs",
        "hardware": "webgpu",
        "precision": "fp32",
        "hostname": "web-03",
        "run": "nightly-42",
        "git_commit": "3f2a9c1",
        "git_branch": "main",
        "browser": "chrome",
    },
    {
        "ts": "1740830410",
        "name": "test_tokenizer",
        "status": "ok",
        "suite": "unit.text",
        "duration_s": 0.0,
        "worker": "cpu-07",
    },
    {
        "ts": "1740830415000",
        "name": "test_cuda_graphs",
        "status": "Skipped",
        "kind": "unit_test",
        "message": "requires 2 GPUs",
        "hardware": "cpu",
        "browser": "firefox",
    },
    {
        "ts": "2025-03-01T12:00:20",
        "name": "test_import",
        "status": "error",
        "message": "ImportError: no module named flash_attn",
        "git_commit": "3f2a9c1",
    },
    {
        "ts": "2025-03-01T12:00:25.250Z",
        "name": "bench_resnet",
        "status": "true",
        "kind": "performance_test",
        "model": "resnet-50",
        "hardware": "rocm",
        "device": "AMD MI300X",
        "batch_size": 32,
        "metric.latency_p50_ms": 3.0,
        "throughput_items_per_second": 10000.0,
    },
]

# What the store must hold, by name.
EXPECTED = {
    "test_generate": {
        "ts": datetime(2025, 3, 1, 12, 0, 0),
        "status": "passed",
        "kind": "benchmark",
        "extra": None,
        "worker_id": "gpu-01",
        "run": ("nightly-42", "3f2a9c1", "main"),
        "metrics": {
            "latency_p50_ms": 21.5,
            "tokens_per_second": 812.25,
            "peak_rss_mb": 2048.0,
            "score": 0.875,
            "throughput_items_per_second": 160.5,
        },
    },
    "test_render": {
        "ts": datetime(2025, 3, 1, 12, 0, 5),
        "status": "failed",
        "kind": "integration_test",
        "extra": {"browser": "chrome"},
        "worker_id": "web-03",
        "run": ("nightly-42", "3f2a9c1", "main"),
        "metrics": {},
    },
    "test_tokenizer": {
        "ts": datetime(2025, 3, 1, 12, 0, 10),
        "status": "passed",
        "kind": "unit_test",
        "extra": None,
        "worker_id": "cpu-07",
        "run": None,
        "metrics": {},
    },
    "test_cuda_graphs": {
        "ts": datetime(2025, 3, 1, 12, 0, 15),
        "status": "skipped",
        "kind": "unit_test",
        "extra": {"browser": "firefox"},
        "worker_id": None,
        "run": None,
        "metrics": {},
    },
    "test_import": {
        "ts": datetime(2025, 3, 1, 12, 0, 20),
        "status": "error",
        "kind": "unit_test",
        "extra": None,
        "worker_id": None,
        "run": (None, "3f2a9c1", None),
        "metrics": {},
    },
    "bench_resnet": {
        "ts": datetime(2025, 3, 1, 12, 0, 25, 250000),
        "status": "passed",
        "kind": "performance_test",
        "extra": None,
        "worker_id": None,
        "run": None,
        "metrics": {"latency_p50_ms": 3.0, "throughput_items_per_second": 10000.0},
    },
}
METRIC_DEFINITIONS = {
    "latency_p50_ms": ("ms", "lower"),  # the catalog's
    "throughput_items_per_second": ("items/s", "higher"),  # the catalog's, by its bare name
    "tokens_per_second": ("tokens/s", "higher"),  # inferred from the name
    "peak_rss_mb": ("MB", "lower"),
    "score": ("", "none"),
}


def _text(value) -> str:
    return "" if value is None else str(value)


def write_csv(path: Path, rows=ROWS, columns=COLUMNS, delimiter=",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(c)) for c in columns])
    return path


def _typed(row: dict) -> dict:
    """JSON values as a producer would write them: numbers as numbers, ts as given."""
    out = {}
    for key, value in row.items():
        if key == "ts" and value.isdigit():
            out[key] = int(value)
        elif key == "status" and value == "true":
            out[key] = True
        else:
            out[key] = value
    return out


def write_jsonl(path: Path) -> Path:
    lines = [json.dumps(_typed(row)) for row in ROWS]
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n", encoding="utf-8")
    return path


def write_json(path: Path) -> Path:
    path.write_text(json.dumps([_typed(row) for row in ROWS], indent=1), encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    """Typed columns: timestamps with a zone, floats, integers, a boolean-free status."""

    def column(name: str, kind: pa.DataType):
        return pa.array([row.get(name) for row in ROWS], kind)

    def when(text: str) -> datetime:
        if text.isdigit():
            value = int(text)
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    arrays = {}
    for name in COLUMNS:
        if name == "ts":
            arrays[name] = pa.array([when(r["ts"]) for r in ROWS], pa.timestamp("us", tz="UTC"))
        elif name == "batch_size":
            arrays[name] = column(name, pa.int64())
        elif name == "duration_s" or name.startswith("metric.") or name.startswith("throughput"):
            arrays[name] = column(name, pa.float64())
        else:
            arrays[name] = column(name, pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


WRITERS = {
    "results.csv": write_csv,
    "results.tsv": lambda path: write_csv(path, delimiter="\t"),
    "results.parquet": write_parquet,
    "results.jsonl": write_jsonl,
    "results.json": write_json,
}


def stored(store) -> dict[str, dict]:
    """Everything the store holds per result, by name."""
    with store.cursor() as cur:
        rows = cur.execute(
            """SELECT s.name, r.ts, r.status, r.duration_s, r.message, s.kind, s.suite, s.model,
                      s.model_family, s.modality, s.hardware, s.device, s.batch_size,
                      s."precision", s.extra, r.worker_id, w.hostname, w.os,
                      u.name, u.git_commit, u.git_branch, r.result_id, r.run_id
               FROM results AS r JOIN series AS s USING (series_id)
               LEFT JOIN workers AS w USING (worker_id)
               LEFT JOIN runs AS u USING (run_id)"""
        ).fetchall()
        measurements = cur.execute("SELECT result_id, metric, value FROM measurements").fetchall()
    values: dict[int, dict[str, float]] = {}
    for result_id, metric, value in measurements:
        values.setdefault(result_id, {})[metric] = value
    out = {}
    for row in rows:
        (
            name,
            ts,
            status,
            duration,
            message,
            kind,
            suite,
            model,
            family,
            modality,
            hardware,
            device,
            batch,
            precision,
            extra,
            worker,
            hostname,
            os_,
            run,
            commit,
            branch,
            rid,
            run_id,
        ) = row
        out[name] = {
            "ts": ts,
            "status": status,
            "duration_s": duration,
            "message": message,
            "kind": kind,
            "suite": suite,
            "model": model,
            "model_family": family,
            "modality": modality,
            "hardware": hardware,
            "device": device,
            "batch_size": batch,
            "precision": precision,
            "extra": dict(extra) if extra else None,
            "worker_id": worker,
            "hostname": hostname,
            "os": os_,
            "run": (run, commit, branch) if run_id is not None else None,
            "metrics": values.get(rid, {}),
        }
    return out


def check_round_trip(store) -> None:
    got = stored(store)
    assert set(got) == set(EXPECTED)
    for row in ROWS:
        name = row["name"]
        have, want = got[name], EXPECTED[name]
        for key in ("ts", "status", "kind", "extra", "worker_id", "run"):
            assert have[key] == want[key], (name, key)
        assert have["metrics"] == pytest.approx(want["metrics"]), name
        for key in ("suite", "message", "model", "model_family", "modality", "hardware"):
            assert have[key] == row.get(key), (name, key)
        for key in ("device", "precision", "os"):
            assert have[key] == row.get(key), (name, key)
        assert have["duration_s"] == row.get("duration_s"), name
        assert have["batch_size"] == row.get("batch_size"), name
        if have["worker_id"]:
            assert have["hostname"] == row.get("hostname"), name
    with store.cursor() as cur:
        units = {
            name: (unit, direction)
            for name, unit, direction in cur.execute(
                "SELECT name, unit, direction FROM metrics"
            ).fetchall()
        }
    for metric, definition in METRIC_DEFINITIONS.items():
        assert units[metric] == definition, metric


@pytest.mark.parametrize("filename", sorted(WRITERS))
def test_round_trip(empty_store, tmp_path: Path, filename: str) -> None:
    path = WRITERS[filename](tmp_path / filename)
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    expected_format = {"tsv": "csv"}.get(path.suffix[1:], path.suffix[1:])
    assert report.format == expected_format
    assert (report.results, report.passed, report.failed) == (6, 3, 1)
    assert (report.errors, report.skipped, report.added) == (1, 1, 6)
    assert report.measurements == 7
    check_round_trip(empty_store)


@pytest.mark.parametrize("filename", sorted(WRITERS))
def test_the_same_file_twice_adds_nothing(empty_store, tmp_path: Path, filename: str) -> None:
    path = WRITERS[filename](tmp_path / filename)
    first = ingest_paths(empty_store, [path])[0]
    counts = table_counts(empty_store)
    copy = tmp_path / "copy" / filename
    copy.parent.mkdir()
    shutil.copy(path, copy)
    again = ingest_paths(empty_store, [path, copy])
    assert first.added == 6
    assert [r.status for r in again] == ["ok", "ok"]
    assert [r.added for r in again] == [0, 0]
    assert [r.results for r in again] == [6, 6]
    assert table_counts(empty_store) == counts


def test_uploaded_bytes_are_read_like_a_file(empty_store, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "results.csv").read_bytes()
    report = ingest_bytes(empty_store, "upload.csv", data)
    assert report.status == "ok", report.error
    check_round_trip(empty_store)
    again = ingest_bytes(empty_store, "other-name.csv", data)
    assert (again.status, again.added) == ("ok", 0)


def test_identical_rows_are_separate_results_and_a_longer_file_adds_only_new_rows(
    empty_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)  # so repeats fall into different chunks
    row = "2025-03-01T12:00:00Z,test_flaky,failed,timeout\n"
    header = "ts,name,status,message\n"
    path = tmp_path / "flaky.csv"
    path.write_text(header + row * 5, encoding="utf-8")
    first = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))[0]
    assert (first.status, first.results, first.added) == ("ok", 5, 5)
    other = "2025-03-01T12:01:00Z,test_flaky,passed,\n"
    path.write_text(header + row * 5 + other + row, encoding="utf-8")
    second = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))[0]
    assert (second.status, second.results, second.added) == ("ok", 7, 2)
    with empty_store.cursor() as cur:
        statuses = cur.execute(
            "SELECT status, count(*) FROM results GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert statuses == [("failed", 6), ("passed", 1)]


def test_result_id_is_the_identity(empty_store, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(
        "result_id,ts,name,status,metric.wall_s\n"
        "r-1,2025-03-01T12:00:00Z,test_a,passed,1.5\n"
        "r-2,2025-03-01T12:00:00Z,test_a,passed,1.5\n",
        encoding="utf-8",
    )
    assert ingest_paths(empty_store, [path])[0].added == 2
    # The same ids with other values are the same results: nothing is added or changed.
    path.write_text(
        "result_id,ts,name,status,metric.wall_s\n"
        "r-1,2025-03-02T12:00:00Z,test_a,failed,9\n"
        "r-3,2025-03-02T12:00:00Z,test_a,failed,9\n",
        encoding="utf-8",
    )
    report = ingest_paths(empty_store, [path])[0]
    assert (report.results, report.added) == (2, 1)
    with empty_store.cursor() as cur:
        assert cur.execute(
            "SELECT status, count(*) FROM results GROUP BY ALL ORDER BY 1"
        ).fetchall() == [("failed", 1), ("passed", 2)]
        assert cur.execute(
            "SELECT unit, direction FROM metrics WHERE name = 'wall_s'"
        ).fetchall() == [("s", "lower")]


def test_defaults_fill_what_the_file_does_not_say(empty_store, tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text(
        "ts,name,status,hardware\n"
        "2025-03-01T12:00:00Z,test_a,passed,\n"
        "2025-03-01T12:00:01Z,test_b,passed,rocm\n",
        encoding="utf-8",
    )
    options = IngestOptions(
        defaults={"hardware": "cuda", "kind": "integration_test", "git_commit": "abc", "run": "r9"}
    )
    assert ingest_paths(empty_store, [path], options)[0].status == "ok"
    got = stored(empty_store)
    assert got["test_a"]["hardware"] == "cuda"
    assert got["test_b"]["hardware"] == "rocm"
    assert {got[n]["kind"] for n in got} == {"integration_test"}
    assert {got[n]["run"] for n in got} == {("r9", "abc", None)}


MAPPING_TOML = """
ts_unit = "ms"
ignore = ["uuid"]

[columns]
ts = "When"
name = "Benchmark"
status = "Outcome"
device = "GPU"

[constants]
hardware = "cuda"
kind = "benchmark"

[status_values]
"OK" = "passed"
"KO" = "failed"
"" = "error"

[metrics]
latency_p50_ms = "p50"

[metrics.frames_per_second]
column = "fps"
unit = "frames/s"
direction = "higher"
description = "Rendered frames per second"

[metrics.vram]
column = "vram"
unit = "GiB"
direction = "lower"

[extra]
dataset = "ds"
"""


def test_a_mapping_reads_a_foreign_table(empty_store, tmp_path: Path) -> None:
    path = tmp_path / "foreign.csv"
    path.write_text(
        "uuid,When,Benchmark,Outcome,GPU,p50,fps,vram,ds,Team\n"
        "a1,1740830400000,render,OK,RTX 4090,4.5,220.5,6.5,coco,graphics\n"
        "a2,1740830401000,render,KO,RTX 4090,,,,coco,graphics\n"
        "a3,1740830402000,encode,,RTX 4090,9.0,,7.25,,\n",
        encoding="utf-8",
    )
    mapping = tomllib.loads(MAPPING_TOML)
    (report,) = ingest_paths(empty_store, [path], IngestOptions(mapping=mapping))
    assert report.status == "ok", report.error
    assert (report.results, report.passed, report.failed, report.errors) == (3, 1, 1, 1)
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT r.ts, s.name, r.status, s.kind, s.hardware, s.device, s.extra
               FROM results AS r JOIN series AS s USING (series_id) ORDER BY r.ts"""
        ).fetchall()
        values = cur.execute(
            """SELECT r.ts, m.metric, m.value FROM measurements AS m
               JOIN results AS r USING (result_id) ORDER BY r.ts, m.metric"""
        ).fetchall()
        units = dict(
            (n, (u, d, desc)) for n, u, d, desc in cur.execute("SELECT * FROM metrics").fetchall()
        )
    t0 = datetime(2025, 3, 1, 12, 0, 0)
    t1 = datetime(2025, 3, 1, 12, 0, 1)
    t2 = datetime(2025, 3, 1, 12, 0, 2)
    assert [r[:6] for r in rows] == [
        (t0, "render", "passed", "benchmark", "cuda", "RTX 4090"),
        (t1, "render", "failed", "benchmark", "cuda", "RTX 4090"),
        (t2, "encode", "error", "benchmark", "cuda", "RTX 4090"),
    ]
    assert [dict(r[6]) if r[6] else None for r in rows] == [
        {"Team": "graphics", "dataset": "coco"},
        {"Team": "graphics", "dataset": "coco"},
        None,
    ]
    assert values == [
        (t0, "frames_per_second", 220.5),
        (t0, "latency_p50_ms", 4.5),
        (t0, "vram", 6.5),
        (t2, "latency_p50_ms", 9.0),
        (t2, "vram", 7.25),
    ]
    assert units["frames_per_second"] == ("frames/s", "higher", "Rendered frames per second")
    assert units["vram"][:2] == ("GiB", "lower")
    assert units["latency_p50_ms"][:2] == ("ms", "lower")


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"colums": {}}, "unknown key 'colums'"),
        ({"columns": {"name": "Nope"}}, "has no column 'Nope'"),
        ({"columns": {"title": "name"}}, "'title' is not one of our columns"),
        ({"metrics": {"latency_p50_ms": {"column": "v", "unit": "s"}}}, "already has this metric"),
        ({"status_values": {"OK": "good"}}, "'good' is not one of"),
        ({"ts_unit": "days"}, "ts_unit must be one of"),
    ],
)
def test_a_bad_mapping_is_refused(empty_store, tmp_path: Path, mapping, fragment) -> None:
    path = tmp_path / "m.csv"
    path.write_text("ts,name,status,v\n2025-03-01,a,passed,1\n", encoding="utf-8")
    before = table_counts(empty_store)
    (report,) = ingest_paths(empty_store, [path], IngestOptions(mapping=mapping))
    assert report.status == "error"
    assert fragment in report.error
    assert table_counts(empty_store) == before


def _unit(name: str) -> tuple[str, str]:
    metric = infer_metric(name)
    return metric.unit, metric.direction


def test_metric_units_from_names() -> None:
    assert _unit("load_ms") == ("ms", "lower")
    assert _unit("wall_seconds") == ("s", "lower")
    assert _unit("rss_bytes") == ("bytes", "lower")
    assert _unit("images_per_second") == ("images/s", "higher")
    assert _unit("req_per_s") == ("req/s", "higher")
    assert _unit("throughput") == ("items/s", "higher")
    assert _unit("accuracy") == ("", "none")


# ------------------------------------------------------------------------------ malformed files

HEADER = "ts,name,status,duration_s,metric.latency_ms\n"
GOOD = "2025-03-01T12:00:00Z,test_a,passed,1.5,4.0\n"


def _parquet_with_nan() -> bytes:
    table = pa.table(
        {
            "ts": ["2025-03-01T12:00:00Z"] * 3,
            "name": ["a", "b", "c"],
            "status": ["passed"] * 3,
            "metric.latency_ms": [1.0, 2.0, float("nan")],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


FILE_LEVEL = {
    # name: (file name, bytes, fragments the message must contain)
    # Files that cannot be read as their format at all: nothing of them goes in.
    "non-UTF-8 bytes": (
        "latin1.csv",
        (HEADER + GOOD + "2025-03-01T12:00:01Z,caf\xe9,passed,1,2\n").encode("latin-1"),
        ["line 3", "column name", "not valid UTF-8"],
    ),
    "missing required column": (
        "no_status.csv",
        b"ts,name,duration_s\n2025-03-01T12:00:00Z,test_a,1\n",
        ["line 1", "column status", "is missing"],
    ),
    "a row with too few fields": (
        "ragged.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,passed\n").encode(),
        ["line 3", "3 fields", "header has 5"],
    ),
    "an empty file": ("empty.csv", b"", ["is empty"]),
    "a header-only file": ("header.csv", HEADER.encode(), ["line 2", "no results"]),
    "an empty JSON array": ("empty.json", b"[]", ["no results"]),
    "every row bad": (
        "all_bad.csv",
        (HEADER + "2025-03-01T12:00:02Z,test_b,passed,-0.5,4\n").encode(),
        ["line 2", "column duration_s", "'-0.5' is negative"],
    ),
}

ROW_LEVEL = {
    # name: (file name, bytes, fragments the bad row's problem must contain)
    # Files with one bad row among good ones: the good rows go in, the bad one is listed.
    "NaN metric": (
        "nan.csv",
        (HEADER + GOOD + GOOD + "2025-03-01T12:00:02Z,test_b,passed,1,NaN\n").encode(),
        ["line 4", "column metric.latency_ms", "'NaN' is not a finite number"],
    ),
    "infinite metric": (
        "inf.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,passed,1,-inf\n").encode(),
        ["line 3", "column metric.latency_ms", "'-inf' is not a finite number"],
    ),
    "NaN metric in Parquet": (
        "nan.parquet",
        _parquet_with_nan(),
        ["row 3", "column metric.latency_ms", "not a finite number"],
    ),
    "NaN in JSON Lines": (
        "nan.jsonl",
        b'{"ts": "2025-03-01T12:00:00Z", "name": "a", "status": "passed", "metric.x": 1}\n\n'
        b'{"ts": "2025-03-01T12:00:00Z", "name": "b", "status": "passed", "metric.x": NaN}\n',
        ["line 3", "column metric.x", "not a finite number"],
    ),
    "negative duration": (
        "negative.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,passed,-0.5,4\n").encode(),
        ["line 3", "column duration_s", "'-0.5' is negative"],
    ),
    "negative metric": (
        "negative_metric.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,passed,1,-4\n").encode(),
        ["line 3", "column metric.latency_ms", "is negative"],
    ),
    "missing value in a required column": (
        "no_name.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,,passed,1,4\n").encode(),
        ["line 3", "column name", "is missing"],
    ),
    "missing timestamp": (
        "no_ts.csv",
        (HEADER + GOOD + GOOD + ",test_b,passed,1,4\n").encode(),
        ["line 4", "column ts", "is missing"],
    ),
    "unknown status": (
        "status.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,flaky,1,4\n").encode(),
        ["line 3", "column status", "'flaky' is not a status"],
    ),
    "unparseable timestamp": (
        "ts.csv",
        (HEADER + GOOD + "March 1st,test_b,passed,1,4\n").encode(),
        ["line 3", "column ts", "'March 1st' is not a timestamp"],
    ),
    "wrong type in a numeric column": (
        "type.csv",
        (HEADER + GOOD + "2025-03-01T12:00:02Z,test_b,passed,1.5s,4\n").encode(),
        ["line 3", "column duration_s", "'1.5s' is not a number"],
    ),
    "a value spanning lines before the bad row": (
        "multiline.csv",
        (
            HEADER + '2025-03-01T12:00:00Z,"two\nlines",passed,1,4\n' + "x,test_b,passed,1,4\n"
        ).encode(),
        ["line 4", "column ts", "'x' is not a timestamp"],
    ),
    "repeated result_id": (
        "ids.csv",
        b"result_id,ts,name,status\nr1,2025-03-01,a,passed\nr2,2025-03-01,a,passed\n"
        b"r1,2025-03-02,a,failed\n",
        ["line 4", "column result_id", "repeats the result_id of line 2"],
    ),
    "bad kind in a JSON array": (
        "kind.json",
        b'[{"ts": 1740830400, "name": "a", "status": "passed"},'
        b' {"ts": 1740830400, "name": "b", "status": "passed", "kind": "smoke"}]',
        ["record 2", "column kind", "'smoke' is not a kind"],
    ),
}


def _rows_in(filename: str, data: bytes) -> int:
    """Data rows in a file, counted without our reader (csv, json, pyarrow)."""
    if filename.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).num_rows
    if filename.endswith(".jsonl"):
        return sum(1 for line in data.splitlines() if line.strip())
    if filename.endswith(".json"):
        return len(json.loads(data))
    return len(list(csv.reader(io.StringIO(data.decode())))) - 1


@pytest.fixture()
def populated(empty_store, tmp_path: Path):
    """A store that already holds results, so "unchanged" means something."""
    path = write_csv(tmp_path / "seed_results.csv")
    assert ingest_paths(empty_store, [path])[0].added == 6
    return empty_store


def _write(tmp_path: Path, filename: str, data: bytes) -> Path:
    path = tmp_path / "bad" / filename
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(FILE_LEVEL))
def test_files_not_in_their_format_are_refused_whole(populated, tmp_path: Path, case) -> None:
    filename, data, fragments = FILE_LEVEL[case]
    path = _write(tmp_path, filename, data)
    before = table_counts(populated)
    (report,) = ingest_paths(populated, [path])
    assert report.status == "error", case
    assert str(path) in report.error
    for fragment in fragments:
        assert fragment in report.error, (case, report.error)
    assert table_counts(populated) == before


@pytest.mark.parametrize("case", sorted(ROW_LEVEL))
def test_a_bad_row_is_left_out_and_listed_the_others_go_in(populated, tmp_path, case) -> None:
    """Issue 17: a bad row is the row's problem, not the file's (`--strict` below)."""
    filename, data, fragments = ROW_LEVEL[case]
    path = _write(tmp_path, filename, data)
    before = table_counts(populated)
    (report,) = ingest_paths(populated, [path])
    assert report.status == "partial", (case, report.error)
    assert (report.rejected, report.results) == (1, _rows_in(filename, data) - 1)
    [problem] = report.problems
    assert problem["outcome"] == "rejected" and problem["where"].startswith(str(path))
    text = f"{problem['where']}: {problem['problem']}"
    for fragment in fragments:
        assert fragment in text, (case, text)
    assert "ingest the file again" in problem["fix"] or "own result_id" in problem["fix"]
    after = table_counts(populated)
    assert after["results"] == before["results"] + report.added
    assert report.added == report.results  # every good row was new
    # The same file again adds nothing and lists the same row.
    (again,) = ingest_paths(populated, [path])
    assert (again.added, again.rejected, again.problems) == (0, 1, report.problems)


@pytest.mark.parametrize("case", sorted(ROW_LEVEL))
def test_strict_refuses_a_file_with_a_bad_row_whole(populated, tmp_path: Path, case) -> None:
    filename, data, fragments = ROW_LEVEL[case]
    path = _write(tmp_path, filename, data)
    before = table_counts(populated)
    (report,) = ingest_paths(populated, [path], IngestOptions(strict=True))
    assert report.status == "error", case
    for fragment in fragments:
        assert fragment in report.error, (case, report.error)
    assert table_counts(populated) == before


def test_many_bad_rows_are_all_counted_the_first_hundred_listed(empty_store, tmp_path) -> None:
    rows = [f"2025-03-01T12:{i // 60:02d}:{i % 60:02d}Z,t{i},passed,1,4\n" for i in range(500)]
    bad = set(range(3, 500, 3))  # every third row has a negative duration
    for i in bad:
        rows[i] = rows[i].replace(",1,4", ",-1,4")
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.rejected, report.results) == ("partial", len(bad), 500 - len(bad))
    assert len(report.problems) == 100
    # Listed in file order, each at its own line (header is line 1, row i is line i + 2).
    assert [p["where"] for p in report.problems] == [
        f"{path} line {i + 2}" for i in sorted(bad)[:100]
    ]
    with empty_store.cursor() as cur:
        names = {r[0] for r in cur.execute("SELECT name FROM series").fetchall()}
    assert names == {f"t{i}" for i in range(500) if i not in bad}


def test_a_bad_row_after_written_chunks_leaves_the_store_unchanged_when_strict(
    populated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    rows = "".join(f"2025-03-01T12:00:{i:02d}Z,test_{i},passed,1,{i}\n" for i in range(7))
    path = tmp_path / "late.csv"
    path.write_text(HEADER + rows + "2025-03-01T12:01:00Z,test_x,passed,1,-1\n", encoding="utf-8")
    before = table_counts(populated)
    (report,) = ingest_paths(populated, [path], IngestOptions(chunk_size=1, strict=True))
    assert report.status == "error"
    assert "late.csv line 9: column metric.latency_ms" in report.error
    assert table_counts(populated) == before
    # Without strict, the seven good rows go in, written in ranges of two.
    (report,) = ingest_paths(populated, [path], IngestOptions(chunk_size=1))
    assert (report.status, report.added, report.rejected) == ("partial", 7, 1)


def test_too_many_extra_values_are_refused(empty_store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tabular, "MAX_EXTRA_VALUES", 3)
    rows = "".join(f"2025-03-01T12:00:{i:02d}Z,test,passed,id-{i}\n" for i in range(5))
    path = tmp_path / "uuids.csv"
    path.write_text("ts,name,status,request_id\n" + rows, encoding="utf-8")
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "error"
    assert "request_id" in report.error and "ignore" in report.error
    ignored = IngestOptions(mapping={"ignore": ["request_id"]})
    assert ingest_paths(empty_store, [path], ignored)[0].added == 5


# ------------------------------------------------------------------------------ ids and ranges


def test_the_row_hash_probe_is_recorded_and_a_changed_hash_is_reported(
    empty_store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, text = sink_module.ROW_HASH_PROBE
    path = write_csv(tmp_path / "results.csv")
    assert ingest_paths(empty_store, [path])[0].added == 6
    with empty_store.cursor() as cur:
        expected = str(cur.execute("SELECT hash(?::VARCHAR)", [text]).fetchall()[0][0])
    assert empty_store.meta()[key] == expected
    # A store written under a DuckDB that hashed differently: ingest works, and says so.
    with empty_store.transaction() as cur:
        cur.execute("UPDATE dtd_meta SET value = '12345' WHERE key = ?", [key])
    with caplog.at_level("WARNING", logger="lib.ingest.sink"):
        (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.added) == ("ok", 0)
    assert "hashes differently" in caplog.text and str(path) in caplog.text
    assert empty_store.meta()[key] == "12345"  # the first release's probe is kept


def test_times_without_a_zone_are_utc_whatever_the_connection_says(
    empty_store, tmp_path: Path
) -> None:
    with empty_store.cursor() as cur:
        cur.execute("SET GLOBAL TimeZone = 'America/New_York'")
    (report,) = ingest_paths(empty_store, [write_csv(tmp_path / "results.csv")])
    assert report.status == "ok", report.error
    check_round_trip(empty_store)
    with empty_store.cursor() as cur:
        assert cur.execute("SELECT current_setting('TimeZone')").fetchall() == [
            ("America/New_York",)
        ]


@pytest.mark.parametrize("filename", ["results.csv", "results.parquet"])
def test_a_file_written_in_ranges_of_rows_is_stored_the_same(
    empty_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filename: str
) -> None:
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    path = WRITERS[filename](tmp_path / filename)
    (report,) = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))
    assert (report.status, report.results, report.added, report.measurements) == ("ok", 6, 6, 7)
    check_round_trip(empty_store)
    again = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))[0]
    assert (again.status, again.added) == ("ok", 0)


@pytest.mark.parametrize(
    "text",
    [
        "result_id,ts,name,status\n"
        "r1,2025-03-01T12:00:00Z,a,passed\n"
        "r2,2025-03-01T12:00:01Z,b,passed\n"
        "r3,2025-03-01T12:00:02Z,c,failed\n",
        "ts,name,status\n"
        "2025-03-01T12:00:00Z,a,passed\n"
        "2025-03-01T12:00:01Z,b,passed\n"
        "2025-03-01T12:00:02Z,c,failed\n",
    ],
    ids=["result_id", "content"],
)
def test_ids_that_collide_are_told_apart(
    empty_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Different rows (or result_ids) with one 64-bit id: all are kept, none is refused."""
    monkeypatch.setattr(tabular, "row_id_sql", lambda fmt, parts: "CAST(42 AS BIGINT)")
    path = tmp_path / "collide.csv"
    path.write_text(text, encoding="utf-8")
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.results, report.added) == ("ok", 3, 3), report.error
    with empty_store.cursor() as cur:
        assert cur.execute("SELECT count(DISTINCT result_id) FROM results").fetchall() == [(3,)]


def test_a_repeated_result_id_among_colliding_ids_is_still_refused(
    empty_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tabular, "row_id_sql", lambda fmt, parts: "CAST(42 AS BIGINT)")
    path = tmp_path / "collide.csv"
    path.write_text(
        "result_id,ts,name,status\n"
        "r1,2025-03-01T12:00:00Z,a,passed\n"
        "r2,2025-03-01T12:00:01Z,b,passed\n"
        "r2,2025-03-01T12:00:02Z,c,failed\n",
        encoding="utf-8",
    )
    (report,) = ingest_paths(empty_store, [path], IngestOptions(strict=True))
    assert report.status == "error"
    assert "collide.csv line 4: column result_id: repeats the result_id of line 3" in report.error
    assert table_counts(empty_store)["results"] == 0
    # Without strict the repeat is left out; r1 and r2 share one 64-bit id and both go in.
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.results, report.rejected) == ("partial", 2, 1)
    assert report.problems[0]["where"].endswith("collide.csv line 4")
    with empty_store.cursor() as cur:
        names = sorted(
            r[0]
            for r in cur.execute(
                "SELECT name FROM results JOIN series USING (series_id)"
            ).fetchall()
        )
    assert names == ["a", "b"]


def test_positions_without_consecutive_rowids(
    empty_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should DuckDB ever number the temporary table's rows with gaps, positions (line numbers,
    repeats, ranges) come from a column of their own and stay right."""
    positions = tabular._positions
    monkeypatch.setattr(
        tabular,
        "_positions",
        lambda cur, rows, first, last: positions(cur, rows, first, None if rows else last),
    )
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 2)
    row = "2025-03-01T12:00:00Z,test_flaky,failed,timeout\n"
    path = tmp_path / "flaky.csv"
    path.write_text("ts,name,status,message\n" + row * 5, encoding="utf-8")
    (report,) = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))
    assert (report.status, report.results, report.added) == ("ok", 5, 5)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + GOOD * 3 + "2025-03-01T12:00:02Z,test_b,passed,-1,4\n", encoding="utf-8"
    )
    (report,) = ingest_paths(empty_store, [bad], IngestOptions(strict=True))
    assert "bad.csv line 5: column duration_s: '-1' is negative" in report.error
    (report,) = ingest_paths(empty_store, [bad])
    assert (report.status, report.results, report.rejected) == ("partial", 3, 1)
    assert report.problems[0]["where"].endswith("bad.csv line 5")
