"""Benchmark JSON formats: pytest-benchmark, Google Benchmark, github-action-benchmark, asv.

Every real file in ../shared/data goes in, and what the store holds is compared with counts this
module computes from the raw files with json and plain Python (never with the parsers' helpers).
Then details end to end, identity (twice adds nothing, a grown history adds only what is new) and
malformed inputs (refused with the file and the place named, the store left as it was).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.ingest import IngestOptions, ingest_bytes, ingest_paths
from tests.conftest import table_counts

TIME_METRICS = ("time_mean_s", "time_median_s", "time_min_s", "time_max_s", "time_stddev_s")


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def _iso_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _stored(store) -> dict:
    """What the store holds, in the same shape as the expectations below."""
    with store.cursor() as cur:

        def one(sql: str):
            return cur.execute(sql).fetchall()[0][0]

        return {
            "results": one("SELECT count(*) FROM results"),
            "series": one("SELECT count(*) FROM series"),
            "runs": one("SELECT count(*) FROM runs"),
            "commits": one("SELECT count(DISTINCT git_commit) FROM runs"),
            "workers": one("SELECT count(*) FROM workers"),
            "metrics": dict(
                cur.execute("SELECT metric, count(*) FROM measurements GROUP BY ALL").fetchall()
            ),
            "statuses": dict(
                cur.execute("SELECT status, count(*) FROM results GROUP BY ALL").fetchall()
            ),
        }


def _load_data_js(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text[text.index("=") + 1 :])


# --------------------------------------------------------------------- independent expectations


def _expect_pytest_benchmark(files: list[Path]) -> dict:
    results, series, runs, commits, workers = 0, set(), set(), set(), set()
    for path in files:
        doc = json.loads(path.read_text())
        machine, commit = doc["machine_info"], doc["commit_info"]
        cpu = machine["cpu"].get("brand_raw") or machine["cpu"].get("brand")
        minor = ".".join(machine["python_version"].split(".")[:2])
        python = f"{machine['python_implementation']} {minor}"
        runs.add((machine["node"], commit["id"], doc["datetime"]))
        commits.add(commit["id"])
        workers.add(machine["node"])
        for bench in doc["benchmarks"]:
            results += 1
            params = {
                k: json.dumps(v)
                for k, v in (bench["params"] or {}).items()
                if not str(v).startswith("UNSERIALIZABLE[")
            }
            series.add(
                (bench["group"], bench["fullname"], cpu, python, str(sorted(params.items())))
            )
    return {
        "results": results,
        "series": len(series),
        "runs": len(runs),
        "commits": len(commits),
        "workers": len(workers),
        "metrics": dict.fromkeys((*TIME_METRICS, "ops_per_second"), results),
        "statuses": {"passed": results},
    }


def _expect_google_benchmark(files: list[Path]) -> dict:
    results, series, runs, hosts = 0, set(), set(), set()
    for path in files:
        doc = json.loads(path.read_text())
        rows = doc["benchmarks"]
        measured = {r["run_name"] for r in rows if r["run_type"] == "iteration"}
        chosen = [
            r
            for r in rows
            if r["run_type"] == "iteration"
            or (r.get("aggregate_name") == "mean" and r["run_name"] not in measured)
        ]
        results += len(chosen)
        exe = doc["context"]["executable"].replace("\\", "/").split("/")[-1]
        series.update((exe, r["run_name"]) for r in chosen)
        runs.add((doc["context"]["host_name"], doc["context"]["date"], exe))
        hosts.add(doc["context"]["host_name"])
    return {
        "results": results,
        "series": len(series),
        "runs": len(runs),
        "commits": 0,
        "workers": len(hosts),
        "metrics": {"real_time_ns": results, "cpu_time_ns": results},
        "statuses": {"passed": results},
    }


def _expect_data_js(files: list[Path]) -> dict:
    metrics: Counter = Counter()
    series, runs, commits, results = set(), set(), set(), 0
    for path in files:
        for suite, entries in _load_data_js(path)["entries"].items():
            for entry in entries:
                runs.add((suite, entry["commit"]["id"], entry["date"]))
                commits.add(entry["commit"]["id"])
                for bench in entry["benches"]:
                    results += 1
                    series.add((suite, bench["name"]))
                    unit = bench["unit"]
                    metrics["ops_per_second" if unit == "iter/sec" else "time_per_iter_ns"] += 1
                    assert unit in ("iter/sec", "ns/iter", "ms/iter")
    return {
        "results": results,
        "series": len(series),
        "runs": len(runs),
        "commits": len(commits),
        "workers": 0,
        "metrics": dict(metrics),
        "statuses": {"passed": results},
    }


def _expect_asv(files: list[Path]) -> dict:
    statuses: Counter = Counter()
    series, runs, commits, machines = set(), set(), set(), set()
    for path in files:
        doc = json.loads(path.read_text())
        machine = doc["params"]["machine"]
        machines.add(machine)
        runs.add((machine, doc["commit_hash"], doc["env_name"]))
        commits.add(doc["commit_hash"])
        column = {c: i for i, c in enumerate(doc["result_columns"])}
        for bench, row in doc["results"].items():
            params = row[column["params"]] if len(row) > column["params"] else []
            combos = list(itertools.product(*params)) if params else [()]
            values = row[column["result"]] or [None] * len(combos)
            for combo, value in zip(combos, values, strict=True):
                series.add((machine, doc["env_name"], bench, combo))
                if value is None:
                    statuses["error"] += 1
                elif math.isnan(value):
                    statuses["skipped"] += 1
                else:
                    statuses["passed"] += 1
    return {
        "results": sum(statuses.values()),
        "series": len(series),
        "runs": len(runs),
        "commits": len(commits),
        "workers": len(machines),
        "metrics": {"time_s": statuses["passed"]},
        "statuses": dict(statuses),
    }


FOLDERS = {
    "pytest_benchmark_cachew": ("*/*.json", _expect_pytest_benchmark, "pytest-benchmark", 7),
    "pytest_benchmark_lagom": ("*/*.json", _expect_pytest_benchmark, "pytest-benchmark", 12),
    "pytest_benchmark_pdfminer_six": ("*/*.json", _expect_pytest_benchmark, "pytest-benchmark", 2),
    "google_benchmark_kalman": (
        "benchmark/result/*.json",
        _expect_google_benchmark,
        "google-benchmark",
        27,
    ),
    "github_action_benchmark_safetensors": (
        "data.js",
        _expect_data_js,
        "github-action-benchmark",
        1,
    ),
    "github_action_benchmark_opentelemetry_cpp": (
        "data.js",
        _expect_data_js,
        "github-action-benchmark",
        1,
    ),
    "asv_django": ("results/*/*-*.json", _expect_asv, "asv", 193),
}


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_every_real_file_goes_in_with_independent_counts(
    shared_data: Path, empty_store, folder: str
) -> None:
    pattern, expect, fmt, n_files = FOLDERS[folder]
    files = sorted((shared_data / folder).glob(pattern))
    assert len(files) == n_files
    reports = ingest_paths(empty_store, [shared_data / folder])
    assert [r.status for r in reports] == ["ok"] * n_files, [r.error for r in reports][:3]
    assert {r.format for r in reports} == {fmt}
    expected = expect(files)
    assert sum(r.results for r in reports) == expected["results"]
    assert sum(r.added for r in reports) == expected["results"]
    assert sum(r.measurements for r in reports) == sum(expected["metrics"].values())
    assert _stored(empty_store) == expected


def test_provenance_totals(shared_data: Path) -> None:
    """The independent counters agree with what PROVENANCE.md says about the files."""
    safetensors = _expect_data_js([shared_data / "github_action_benchmark_safetensors" / "data.js"])
    assert (safetensors["results"], safetensors["runs"], safetensors["commits"]) == (4877, 517, 512)
    assert safetensors["series"] == 16
    otel = _expect_data_js([shared_data / "github_action_benchmark_opentelemetry_cpp" / "data.js"])
    assert (otel["results"], otel["runs"]) == (7304 + 6351 + 1160, 292 + 293 + 290)
    ubuntu = sorted((shared_data / "asv_django" / "results" / "ubuntu-latest").glob("*-*.json"))
    assert _expect_asv(ubuntu)["results"] == 6502


# --------------------------------------------------------------------- details end to end


def test_pytest_benchmark_values_machine_and_commit(shared_data: Path, empty_store) -> None:
    path = shared_data / "pytest_benchmark_pdfminer_six" / "Linux-CPython-3.12-64bit"
    path = path / "0001_baseline.json"
    doc = json.loads(path.read_text())
    bench = doc["benchmarks"][3]
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok" and report.added == len(doc["benchmarks"]) == 9
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT m.metric, m.value, r.ts, r.duration_s, r.worker_id, s.hardware, s.device,
                      s.extra['python'], s.kind, runs.git_commit, runs.git_branch, w.os
               FROM measurements m JOIN results r USING (result_id)
               JOIN series s ON s.series_id = r.series_id JOIN runs USING (run_id)
               JOIN workers w USING (worker_id)
               WHERE s.name = ?""",
            [bench["name"]],
        ).fetchall()
    values = {r[0]: r[1] for r in rows}
    assert values["time_median_s"] == bench["stats"]["median"]
    assert values["time_stddev_s"] == bench["stats"]["stddev"]
    assert values["ops_per_second"] == bench["stats"]["ops"]
    ts, duration, worker, hardware, device, python, kind, commit, branch, os_ = rows[0][2:]
    assert ts == _iso_utc(doc["datetime"]) and duration == bench["stats"]["total"]
    assert (worker, hardware, device) == ("ip-172-31-71-213", "cpu", "AMD EPYC 7R32")
    assert (python, kind) == ("CPython 3.12", "benchmark")
    assert (commit, branch) == (doc["commit_info"]["id"], "master")
    assert os_.startswith("Linux ")


def test_pytest_benchmark_3x_naive_datetime_is_utc_and_detached_head_has_no_branch(
    shared_data: Path, empty_store
) -> None:
    path = shared_data / "pytest_benchmark_lagom" / "Linux-CPython-3.8-64bit"
    path = path / "0001_baseline__20211106_commit_0a102eb3d2.json"
    doc = json.loads(path.read_text())
    assert doc["version"].startswith("3.") and "+" not in doc["datetime"]
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok"
    with empty_store.cursor() as cur:
        ts, branch, commit = cur.execute(
            "SELECT r.ts, runs.git_branch, runs.git_commit FROM results r JOIN runs USING (run_id)"
        ).fetchall()[0]
    assert ts == datetime.fromisoformat(doc["datetime"])
    assert doc["commit_info"]["branch"] == "(detached head)" and branch is None
    assert commit == doc["commit_info"]["id"]


def test_pytest_benchmark_unserialisable_params_keep_one_series(shared_data: Path, empty_store):
    """0008 and 0009 ran the same cachew suite; their repr params differ by memory address."""
    folder = shared_data / "pytest_benchmark_cachew" / "Linux-CPython-3.14-64bit"
    files = [
        folder / "0008_sqlite3-backend__commit_35888465b1.json",
        folder / "0009_sqlite-multivalue__commit_ec733500ca.json",
    ]
    docs = [json.loads(p.read_text()) for p in files]
    assert docs[0]["benchmarks"][0]["params"] != docs[1]["benchmarks"][0]["params"]
    ingest_paths(empty_store, files)
    with empty_store.cursor() as cur:
        per_series = cur.execute("SELECT count(*) FROM results GROUP BY series_id").fetchall()
        extra = cur.execute(
            "SELECT extra FROM series WHERE name = ?", [docs[0]["benchmarks"][0]["name"]]
        ).fetchall()
    assert len(per_series) == 208 and {n for (n,) in per_series} == {2}
    assert extra[0][0]["param"] == docs[0]["benchmarks"][0]["param"]
    assert extra[0][0]["count"] == "100000" and "spec" not in extra[0][0]


def test_google_benchmark_values_from_a_real_file(shared_data: Path, empty_store) -> None:
    path = (
        shared_data / "google_benchmark_kalman" / "benchmark" / "result" / "update_eigen_8x8x0.json"
    )
    doc = json.loads(path.read_text())
    iterations = [r for r in doc["benchmarks"] if r["run_type"] == "iteration"]
    [report] = ingest_paths(empty_store, [path])
    assert report.added == len(iterations) == 2
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT m.metric, m.value, r.ts, r.worker_id, s.name, s.suite
               FROM measurements m JOIN results r USING (result_id) JOIN series s
               ON s.series_id = r.series_id ORDER BY m.metric, m.value"""
        ).fetchall()
    real = sorted(r["real_time"] * scale[r["time_unit"]] for r in iterations)
    assert [r[1] for r in rows if r[0] == "real_time_ns"] == pytest.approx(real)
    assert {r[2] for r in rows} == {_iso_utc(doc["context"]["date"])}
    assert {r[3] for r in rows} == {"FRANCOIS-DESK"}
    assert {r[4] for r in rows} == {iterations[0]["run_name"]}
    assert {r[5] for r in rows} == {"eigen_update_8x8x0_driver"}


GOOGLE = {
    "context": {
        "date": "2024-01-02T03:04:05+01:00",
        "host_name": "box",
        "executable": "C:\\build\\bench_x.exe",
        "library_build_type": "release",
    },
    "benchmarks": [
        {
            "name": "BM_a/8",
            "run_name": "BM_a/8",
            "run_type": "iteration",
            "repetitions": 1,
            "repetition_index": 0,
            "threads": 1,
            "iterations": 10,
            "real_time": 1.5,
            "cpu_time": 1.25,
            "time_unit": "us",
            "bytes_per_second": 1000.0,
            "items_per_second": 5.0,
            "hits": 7,
        },
        {
            "name": "BM_a/8_mean",
            "run_name": "BM_a/8",
            "run_type": "aggregate",
            "aggregate_name": "mean",
            "real_time": 9.0,
            "cpu_time": 9.0,
            "time_unit": "us",
        },
        {
            "name": "BM_b",
            "run_name": "BM_b",
            "run_type": "iteration",
            "iterations": 0,
            "real_time": 0,
            "cpu_time": 0,
            "time_unit": "ns",
            "error_occurred": True,
            "error_message": "no device",
        },
        {
            "name": "BM_c_mean",
            "run_name": "BM_c",
            "run_type": "aggregate",
            "aggregate_name": "mean",
            "real_time": 3.0,
            "cpu_time": 2.5,
            "time_unit": "ms",
        },
        {
            "name": "BM_c_stddev",
            "run_name": "BM_c",
            "run_type": "aggregate",
            "aggregate_name": "stddev",
            "real_time": 0.5,
            "cpu_time": 0.5,
            "time_unit": "ms",
        },
        {
            "name": "BM_d",
            "run_name": "BM_d",
            "run_type": "iteration",
            "real_time": 2,
            "cpu_time": 1,
            "time_unit": "s",
        },
    ],
}


def test_google_benchmark_units_counters_errors_and_aggregates_only(empty_store) -> None:
    report = ingest_bytes(empty_store, "bench.json", json.dumps(GOOGLE).encode())
    assert report.status == "ok", report.error
    assert (report.results, report.passed, report.errors) == (4, 3, 1)
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT s.name, r.status, r.message, m.metric, m.value, r.ts, s.suite,
                      s.extra['build_type']
               FROM results r JOIN series s USING (series_id)
               LEFT JOIN measurements m USING (result_id) ORDER BY s.name, m.metric"""
        ).fetchall()
        units = dict(cur.execute("SELECT name, unit FROM metrics").fetchall())
    got = {(r[0], r[3]): r[4] for r in rows if r[3]}
    assert got == {
        ("BM_a/8", "bytes_per_second"): 1000.0,
        ("BM_a/8", "counter_hits"): 7.0,
        ("BM_a/8", "cpu_time_ns"): 1250.0,
        ("BM_a/8", "items_per_second"): 5.0,
        ("BM_a/8", "real_time_ns"): 1500.0,
        ("BM_c", "cpu_time_ns"): 2.5e6,  # the mean row: the family has no iterations
        ("BM_c", "real_time_ns"): 3e6,
        ("BM_d", "cpu_time_ns"): 1e9,
        ("BM_d", "real_time_ns"): 2e9,
    }
    [error] = [r for r in rows if r[0] == "BM_b"]
    assert error[1:4] == ("error", "no device", None)
    assert {r[5] for r in rows} == {datetime(2024, 1, 2, 2, 4, 5)}
    assert {r[6] for r in rows} == {"bench_x"} and {r[7] for r in rows} == {"release"}
    assert units["bytes_per_second"] == "B/s" and units["counter_hits"] == ""


def test_data_js_points_units_and_pull_requests(shared_data: Path, empty_store) -> None:
    path = shared_data / "github_action_benchmark_opentelemetry_cpp" / "data.js"
    entries = _load_data_js(path)["entries"]
    suite = "OpenTelemetry-cpp api Benchmark"
    entry = entries[suite][120]
    bench = next(b for b in entry["benches"] if b["unit"] == "ms/iter")
    other = next(b for b in entry["benches"] if b["unit"] == "ns/iter")
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok"
    with empty_store.cursor() as cur:

        def point(name: str):
            return cur.execute(
                """SELECT m.value, r.ts, runs.git_commit, r.message, m.metric
                   FROM measurements m JOIN results r USING (result_id) JOIN series s
                   ON s.series_id = r.series_id JOIN runs USING (run_id)
                   WHERE s.suite = ? AND s.name = ? AND runs.git_commit = ?""",
                [suite, name, entry["commit"]["id"]],
            ).fetchall()

        [(value, ts, commit, message, metric)] = point(bench["name"])
        [(ns_value, *_)] = point(other["name"])
    assert value == pytest.approx(bench["value"] * 1e6) and metric == "time_per_iter_ns"
    assert ns_value == other["value"]
    assert ts == _utc(entry["date"]) and commit == entry["commit"]["id"]
    assert message == bench["extra"]


def test_data_js_pytest_tool_and_pull_request_branch(shared_data: Path, empty_store) -> None:
    path = shared_data / "github_action_benchmark_safetensors" / "data.js"
    entries = _load_data_js(path)["entries"]["Benchmark"]
    entry = entries[250]
    bench = entry["benches"][2]
    ingest_paths(empty_store, [path])
    with empty_store.cursor() as cur:
        [(value, ts, message)] = cur.execute(
            """SELECT m.value, r.ts, r.message FROM measurements m JOIN results r
               USING (result_id) JOIN series s ON s.series_id = r.series_id
               JOIN runs USING (run_id)
               WHERE s.name = ? AND runs.git_commit = ? AND r.ts = ?""",
            [bench["name"], entry["commit"]["id"], _utc(entry["date"])],
        ).fetchall()
        branches = dict(
            cur.execute("SELECT git_branch, count(*) FROM runs GROUP BY ALL").fetchall()
        )
        direction = cur.execute(
            "SELECT direction FROM metrics WHERE name = 'ops_per_second'"
        ).fetchall()[0][0]
    assert value == bench["value"] and ts == _utc(entry["date"])
    assert message == bench["range"] + "\n" + bench["extra"]
    pulls = sum("/pull/" in e["commit"]["url"] for e in entries)
    assert pulls == 232 and branches == {"pull request": pulls, None: len(entries) - pulls}
    assert direction == "higher"


def test_asv_real_value_time_and_run(shared_data: Path, empty_store) -> None:
    folder = shared_data / "asv_django" / "results" / "windows-2022"
    path = sorted(folder.glob("*-*.json"))[5]
    doc = json.loads(path.read_text())
    bench = "query.QuerySelectRelated.time_query_select_related"
    row = doc["results"][bench]
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok" and report.added == len(doc["results"])
    with empty_store.cursor() as cur:
        [(value, ts, duration, suite, extra, started, commit, worker)] = cur.execute(
            """SELECT m.value, r.ts, r.duration_s, s.suite, s.extra, runs.started_at,
                      runs.git_commit, r.worker_id
               FROM measurements m JOIN results r USING (result_id) JOIN series s
               ON s.series_id = r.series_id JOIN runs USING (run_id)
               WHERE s.name = 'time_query_select_related'"""
        ).fetchall()
    assert value == row[0][0] and duration == row[4]
    assert ts == _utc(doc["date"])  # the commit's date, not when it was measured
    starts = [r[3] for r in doc["results"].values() if len(r) > 3]
    assert started == _utc(min(starts)) and commit == doc["commit_hash"]
    assert suite == bench.rsplit(".", 1)[0] and worker == "windows-2022"
    assert extra == {"machine": "windows-2022", "env": "virtualenv-py3.10"}


def _asv_tree(root: Path) -> Path:
    """A small asv results folder with parameters, failures, skips and three units."""
    results = root / "results"
    (results / "m1").mkdir(parents=True)
    (results / "benchmarks.json").write_text(
        json.dumps(
            {
                "mod.Cls.time_x": {
                    "name": "mod.Cls.time_x",
                    "params": [["'a'", "'b'"], ["1", "10"]],
                    "param_names": ["kind", "n"],
                    "unit": "seconds",
                    "type": "time",
                },
                "mod.track_y": {
                    "name": "mod.track_y",
                    "params": [],
                    "param_names": [],
                    "unit": "widgets",
                    "type": "track",
                },
                "mod.peakmem_z": {"name": "mod.peakmem_z", "params": [], "unit": "bytes"},
                "version": 2,
            }
        )
    )
    (results / "m1" / "machine.json").write_text(
        json.dumps({"machine": "m1", "cpu": "Test CPU 9000", "os": "Linux 6.1", "version": 1})
    )
    path = results / "m1" / "abcdef12-virtualenv-py3.11.json"
    path.write_text(
        json.dumps(
            {
                "commit_hash": "abcdef1234567890",
                "env_name": "virtualenv-py3.11",
                "date": 1700000000000,
                "params": {"machine": "m1", "python": "3.11"},
                "python": "3.11",
                "requirements": {},
                "env_vars": {},
                "result_columns": ["result", "params", "version", "started_at", "duration"],
                "results": {
                    "mod.Cls.time_x": [
                        [0.5, None, float("nan"), 2.0],
                        [["'a'", "'b'"], ["1", "10"]],
                        "v1",
                        1700000500000,
                        3.5,
                    ],
                    "mod.track_y": [[42]],
                    "mod.peakmem_z": [None, [], "v", 1700000400000],
                },
                "durations": {},
                "version": 2,
            }
        )
    )
    return path


def test_asv_params_failures_skips_and_side_files(empty_store, tmp_path) -> None:
    path = _asv_tree(tmp_path)
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    assert (report.results, report.passed, report.errors, report.skipped) == (6, 3, 2, 1)
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT s.name, s.extra['kind'], s.extra['n'], r.status, r.message, m.metric,
                      m.value, s.device, r.ts
               FROM results r JOIN series s USING (series_id)
               LEFT JOIN measurements m USING (result_id) ORDER BY ALL"""
        ).fetchall()
        metrics = dict(cur.execute("SELECT name, direction FROM metrics").fetchall())
        worker = cur.execute("SELECT worker_id, os, device FROM workers").fetchall()
        started = cur.execute("SELECT started_at FROM runs").fetchall()
    got = {(r[0], r[1], r[2]): (r[3], r[5], r[6]) for r in rows}
    assert got == {
        ("time_x", "a", "1"): ("passed", "time_s", 0.5),
        ("time_x", "a", "10"): ("error", None, None),
        ("time_x", "b", "1"): ("skipped", None, None),
        ("time_x", "b", "10"): ("passed", "time_s", 2.0),
        ("track_y", None, None): ("passed", "value_widgets", 42.0),
        ("peakmem_z", None, None): ("error", None, None),
    }
    assert {r[7] for r in rows} == {"Test CPU 9000"} and {r[8] for r in rows} == {_utc(1.7e12)}
    assert metrics["value_widgets"] == "none" and metrics["time_s"] == "lower"
    assert worker == [("m1", "Linux 6.1", "Test CPU 9000")]
    assert started == [(_utc(1700000400000),)]


def test_asv_upload_without_side_files_names_params_itself(empty_store, tmp_path) -> None:
    data = _asv_tree(tmp_path).read_bytes()
    report = ingest_bytes(empty_store, "abcdef12-virtualenv-py3.11.json", data)
    assert report.status == "ok", report.error
    with empty_store.cursor() as cur:
        extras = cur.execute(
            "SELECT extra FROM series WHERE name = 'time_x' ORDER BY extra['param1'], "
            "extra['param2']"
        ).fetchall()
        metrics = dict(
            cur.execute(
                "SELECT s.name, m.metric FROM measurements m JOIN series s USING (series_id)"
            ).fetchall()
        )
    assert extras[0][0] == {
        "param1": "a",
        "param2": "1",
        "machine": "m1",
        "env": "virtualenv-py3.11",
    }
    assert metrics == {"time_x": "time_s", "track_y": "value"}


# --------------------------------------------------------------------- identity


@pytest.mark.parametrize(
    "relative",
    [
        "pytest_benchmark_lagom/Linux-CPython-3.11-64bit/0001_baseline__20230306_commit_d3931baa85.json",
        "google_benchmark_kalman/benchmark/result/predict_naive_4x1x1.json",
        "github_action_benchmark_safetensors/data.js",
        "asv_django/results/macos-12/" + "*",
    ],
)
def test_same_file_twice_or_a_copy_adds_nothing(
    shared_data: Path, empty_store, tmp_path, relative: str
) -> None:
    if relative.endswith("*"):
        path = sorted((shared_data / relative[:-1]).glob("*-*.json"))[0]
    else:
        path = shared_data / relative
    [first] = ingest_paths(empty_store, [path])
    assert first.status == "ok" and first.added > 0 and first.added == first.results
    before = table_counts(empty_store)
    copy = tmp_path / "elsewhere" / path.name
    copy.parent.mkdir()
    shutil.copy(path, copy)
    [again] = ingest_paths(empty_store, [path])
    [copied] = ingest_paths(empty_store, [copy])
    assert (again.status, again.added, copied.status, copied.added) == ("ok", 0, "ok", 0)
    assert again.results == first.results
    assert table_counts(empty_store) == before


def test_grown_data_js_adds_exactly_the_new_entries(shared_data: Path, empty_store, tmp_path):
    path = shared_data / "github_action_benchmark_opentelemetry_cpp" / "data.js"
    data = _load_data_js(path)
    keep = 200
    early = dict(data, entries={s: e[:keep] for s, e in data["entries"].items()})
    small = tmp_path / "data.js"
    small.write_text("window.BENCHMARK_DATA = " + json.dumps(early, indent=2) + "\n")
    [first] = ingest_paths(empty_store, [small])
    points = sum(len(e["benches"]) for es in early["entries"].values() for e in es)
    assert first.status == "ok" and first.added == points
    [full] = ingest_paths(empty_store, [path])
    total = sum(len(e["benches"]) for es in data["entries"].values() for e in es)
    assert full.added == total - points and full.results == total
    with empty_store.cursor() as cur:
        runs = cur.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    assert runs == sum(len(es) for es in data["entries"].values())


def test_grown_asv_folder_adds_only_new_result_files(shared_data: Path, empty_store, tmp_path):
    source = shared_data / "asv_django" / "results"
    files = sorted((source / "ubuntu-22.04").glob("*-*.json"))
    target = tmp_path / "results" / "ubuntu-22.04"
    target.mkdir(parents=True)
    shutil.copy(source / "benchmarks.json", tmp_path / "results")
    shutil.copy(source / "ubuntu-22.04" / "machine.json", target)
    for path in files[:10]:
        shutil.copy(path, target)
    first = ingest_paths(empty_store, [tmp_path / "results"])
    assert len(first) == 10 and all(r.status == "ok" for r in first)
    for path in files[10:]:
        shutil.copy(path, target)
    second = ingest_paths(empty_store, [tmp_path / "results"])
    added = {Path(r.path).name: r.added for r in second}
    assert added == {
        p.name: 0 if p in files[:10] else len(json.loads(p.read_text())["results"]) for p in files
    }


# --------------------------------------------------------------------- malformed input


def _pytest_doc(drop: str = "", **stats_changes) -> dict:
    def bench(name: str, drop: str = "", **changes):
        stats = {
            "min": 0.001,
            "max": 0.003,
            "mean": 0.002,
            "stddev": 0.0005,
            "rounds": 5,
            "median": 0.002,
            "ops": 500.0,
            "total": 0.01,
            "iterations": 1,
        }
        stats.update(changes)
        stats.pop(drop, None)
        return {
            "group": None,
            "name": name,
            "fullname": f"tests/test_x.py::{name}",
            "params": None,
            "param": None,
            "extra_info": {},
            "stats": stats,
        }

    return {
        "machine_info": {
            "node": "host-1",
            "python_implementation": "CPython",
            "python_version": "3.12.1",
            "cpu": {"brand_raw": "Some CPU"},
        },
        "commit_info": {"id": "abc123", "branch": "main"},
        "benchmarks": [bench("test_a"), bench("test_b", drop, **stats_changes)],
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.1.0",
    }


def _google_doc(**changes) -> dict:
    good = {
        "name": "BM_a",
        "run_name": "BM_a",
        "run_type": "iteration",
        "iterations": 5,
        "real_time": 10.0,
        "cpu_time": 9.0,
        "time_unit": "ns",
    }
    return {
        "context": {"date": "2025-01-01T00:00:00Z", "host_name": "h", "executable": "b"},
        "benchmarks": [good, dict(good, name="BM_b", run_name="BM_b", **changes)],
    }


def _data_js(drop: str = "", first_benches: list | None = None, **changes) -> str:
    good = {"name": "bench_a", "value": 12.5, "unit": "ns/iter"}
    entry = {
        "commit": {"id": "c1", "url": "https://x/commit/c1", "timestamp": "2025-01-01"},
        "date": 1735689600000,
        "tool": "cargo",
        "benches": [good],
    }
    second = dict(
        entry,
        commit=dict(entry["commit"], id="c2"),
        date=1735689700000,
        benches=[good, dict(good, name="bench_b", **changes)],
    )
    second["benches"][1].pop(drop, None)
    if first_benches is not None:
        entry["benches"] = first_benches
    return "window.BENCHMARK_DATA = " + json.dumps({"entries": {"S": [entry, second]}})


def _asv_doc(**changes) -> dict:
    doc = {
        "commit_hash": "abcdef1234",
        "env_name": "venv",
        "date": 1735689600000,
        "params": {"machine": "m"},
        "result_columns": ["result", "params", "started_at"],
        "results": {
            "b.time_a": [[0.5], [], 1735689600000],
            "b.time_b": [[0.25], [], 1735689600000],
        },
        "version": 2,
    }
    doc.update(changes)
    return doc


def _dump(doc) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


MALFORMED = {
    # pytest-benchmark
    "pb-nan.json": (
        _pytest_doc(median=float("nan")),
        "benchmark 2 (tests/test_x.py::test_b): stats.median is nan",
    ),
    "pb-negative.json": (
        _pytest_doc(min=-0.5),
        "benchmark 2 (tests/test_x.py::test_b): stats.min is -0.5, which is negative",
    ),
    "pb-missing.json": (
        _pytest_doc(drop="mean"),
        "benchmark 2 (tests/test_x.py::test_b): stats.mean is missing",
    ),
    "pb-type.json": (_pytest_doc(max="slow"), "stats.max is 'slow', not a number"),
    "pb-empty.json": (_pytest_doc() | {"benchmarks": []}, "benchmarks is an empty list"),
    "pb-invalid.json": (json.dumps(_pytest_doc())[:-40], "is not valid JSON"),
    "pb-no-datetime.json": (
        {k: v for k, v in _pytest_doc().items() if k != "datetime"},
        "datetime is None",
    ),
    # Google Benchmark
    "gb-nan.json": (_google_doc(real_time=float("nan")), "benchmark 2 (BM_b): real_time is nan"),
    "gb-inf.json": (_google_doc(cpu_time=float("inf")), "benchmark 2 (BM_b): cpu_time is inf"),
    "gb-negative.json": (_google_doc(cpu_time=-1), "benchmark 2 (BM_b): cpu_time is -1"),
    "gb-missing.json": (
        {
            "context": _google_doc()["context"],
            "benchmarks": [
                {k: v for k, v in _google_doc()["benchmarks"][1].items() if k != "real_time"}
            ],
        },
        "benchmark 1 (BM_b): real_time is missing",
    ),
    "gb-type.json": (_google_doc(real_time="12"), "benchmark 2 (BM_b): real_time is '12'"),
    "gb-unit.json": (_google_doc(time_unit="fortnights"), "time_unit is 'fortnights'"),
    "gb-empty.json": (_google_doc() | {"benchmarks": []}, "benchmarks is an empty list"),
    "gb-invalid.json": (json.dumps(_google_doc())[:-3], "is not valid JSON"),
    "gb-no-date.json": (_google_doc() | {"context": {"host_name": "h"}}, "context.date is None"),
    # github-action-benchmark
    "gab-nan.js": (_data_js(value=float("nan")), "entry 2, bench 'bench_b': value is nan"),
    "gab-negative.js": (_data_js(value=-3), "entry 2, bench 'bench_b': value is -3"),
    "gab-missing.js": (_data_js(drop="value"), "entry 2, bench 'bench_b': value is missing"),
    "gab-type.js": (_data_js(value="fast"), "entry 2, bench 'bench_b': value is 'fast'"),
    "gab-unit-type.js": (_data_js(unit=3), "entry 2, bench 'bench_b': unit is 3"),
    "gab-empty.js": (
        "window.BENCHMARK_DATA = " + json.dumps({"entries": {"S": []}}),
        "entries holds no benchmark runs",
    ),
    "gab-empty-benches.js": (
        _data_js(first_benches=[]),
        "suite 'S' entry 1: benches is an empty list",
    ),
    "gab-invalid.js": (_data_js()[:-10], "is not valid JSON"),
    "gab-no-commit.js": (
        _data_js().replace('"id": "c2", ', ""),
        "suite 'S' entry 2: commit.id is None",
    ),
    # asv
    "asv-negative.json": (
        _asv_doc(results={"b.time_a": [[-0.5], [], 1]}),
        "benchmark 'b.time_a': result is -0.5, which is negative",
    ),
    "asv-inf.json": (
        _asv_doc(results={"b.time_a": [[float("inf")], [], 1]}),
        "benchmark 'b.time_a': result is inf, not a finite number",
    ),
    "asv-type.json": (
        _asv_doc(results={"b.time_a": [["slow"], [], 1]}),
        "benchmark 'b.time_a': result is 'slow', not a number",
    ),
    "asv-missing.json": (_asv_doc(result_columns=None), "result_columns is missing"),
    "asv-count.json": (
        _asv_doc(results={"b.time_a": [[1.0, 2.0], [["1", "2", "3"]], 1]}),
        "benchmark 'b.time_a': result has 2 values but its params make 3",
    ),
    "asv-empty.json": (_asv_doc(results={}), "results is empty"),
    "asv-invalid.json": (json.dumps(_asv_doc())[:-5], "is not valid JSON"),
    "asv-version.json": (_asv_doc(version=1), "only version 2 is read"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_refused_precisely_and_changes_nothing(
    empty_store, tmp_path, name: str
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_pytest_doc()))
    [primed] = ingest_paths(empty_store, [good])
    assert primed.status == "ok" and primed.added == 2
    before = table_counts(empty_store)
    doc, words = MALFORMED[name]
    path = tmp_path / name
    path.write_text(_dump(doc))
    # A chunk of one record is written before the bad one is read: the rollback must undo it.
    [report] = ingest_paths(empty_store, [path], IngestOptions(chunk_size=1))
    assert report.status == "error", report
    assert report.error.startswith(str(path)) and words in report.error, report.error
    assert "KeyError" not in report.error and "TypeError" not in report.error
    assert table_counts(empty_store) == before


def test_the_good_variants_of_the_malformed_files_go_in(empty_store, tmp_path) -> None:
    """The malformed files above differ from these by the one fault under test."""
    docs = {
        "pb.json": _pytest_doc(),
        "gb.json": _google_doc(),
        "gab.js": _data_js(),
        "asv.json": _asv_doc(),
    }
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name, doc in docs.items():
        (folder / name).write_text(_dump(doc))
    reports = ingest_paths(empty_store, [folder])
    assert {Path(r.path).name: (r.status, r.added) for r in reports} == {
        "pb.json": ("ok", 2),
        "gb.json": ("ok", 2),
        "gab.js": ("ok", 3),
        "asv.json": ("ok", 2),
    }
