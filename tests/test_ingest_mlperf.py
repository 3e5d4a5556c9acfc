"""MLPerf Inference and Training results from the shared data, checked against the raw files.

Every expected number is computed here from the raw JSON or CSV with the json and csv modules,
independently of the parser.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.ingest import IngestOptions, ingest_paths
from tests.conftest import table_counts

UNIT_METRIC = {
    "Samples/s": "mlperf_samples_per_second",
    "Tokens/s": "mlperf_tokens_per_second",
    "Queries/s": "mlperf_queries_per_second",
    "Latency (ms)": "mlperf_latency_ms",
}


def _series_rows(store) -> list[dict]:
    with store.cursor() as cur:
        frame = cur.execute(
            """SELECT r.result_id, r.ts, r.status, r.duration_s, r.message, r.worker_id,
                      s.kind, s.suite, s.name, s.model, s.model_family, s.modality, s.hardware,
                      s.device, s.batch_size, s."precision", s.extra
               FROM results AS r JOIN series AS s USING (series_id)"""
        ).df()
    rows = frame.to_dict("records")
    for row in rows:
        row["extra"] = dict(row["extra"]) if row["extra"] is not None else {}
    return rows


def _metrics(store) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    with store.cursor() as cur:
        for result_id, metric, value in cur.execute(
            "SELECT result_id, metric, value FROM measurements"
        ).fetchall():
            out.setdefault(result_id, {})[metric] = value
    return out


@pytest.fixture(scope="module")
def inference_raw(shared_data: Path) -> list[dict]:
    return json.loads((shared_data / "mlperf_inference_v4.1" / "summary_results.json").read_text())


def test_inference_summary(empty_store, shared_data: Path, inference_raw: list[dict]) -> None:
    path = shared_data / "mlperf_inference_v4.1" / "summary_results.json"
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    assert report.format == "mlperf-inference"
    power = [r for r in inference_raw if r.get("Power_Result") is not None]
    assert (report.results, report.passed, report.added) == (len(inference_raw),) * 3
    assert report.measurements == len(inference_raw) + len(power)

    rows = _series_rows(empty_store)
    metrics = _metrics(empty_store)
    assert len(rows) == len(inference_raw)
    assert Counter(r["extra"]["scenario"] for r in rows) == Counter(
        r["Scenario"] for r in inference_raw
    )
    assert Counter(r["extra"]["division"] for r in rows) == Counter(
        r["Category"] for r in inference_raw
    )
    assert {r["extra"]["system"] for r in rows} == {r["System"] for r in inference_raw}
    assert {r["status"] for r in rows} == {"passed"}
    assert {r["ts"] for r in rows} == {datetime(2024, 8, 28)}
    assert {r["kind"] for r in rows} == {"benchmark"}

    # Every measured value, matched by (division, submitter, platform, model, scenario and the
    # model used when it differs): the record's Location, which is unique.
    def used(model: str, used_model: str) -> str | None:
        return used_model if used_model != model else None

    by_location = {
        (
            r["Category"],
            r["Submitter"],
            r["Platform"],
            r["Model"],
            r["Scenario"],
            used(r["Model"], r["UsedModel"]),
        ): r
        for r in inference_raw
    }
    assert len(by_location) == len(inference_raw)
    per_metric: Counter[str] = Counter()
    for row in rows:
        e = row["extra"]
        key = (e["division"], e["submitter"], e["platform"], row["name"], e["scenario"])
        raw = by_location[(*key, e.get("used_model"))]
        values = metrics[row["result_id"]]
        metric = UNIT_METRIC[raw["Performance_Units"]]
        assert values[metric] == pytest.approx(raw["Performance_Result"], rel=1e-12)
        per_metric[metric] += 1
        if raw.get("Power_Result") is not None:
            name = "mlperf_power_watts" if raw["Power_Units"] == "Watts" else "mlperf_energy_mj"
            assert values[name] == pytest.approx(raw["Power_Result"], rel=1e-12)
        assert len(values) == 1 + (raw.get("Power_Result") is not None)
        accelerator = raw["Accelerator"].strip()
        assert row["device"] == (accelerator or raw["Processor"])
        if not accelerator:
            assert row["hardware"] == "cpu"
        elif accelerator.startswith("NVIDIA"):
            assert row["hardware"] == "cuda"
        elif accelerator.startswith("AMD"):
            assert row["hardware"] == "rocm"
        elif accelerator.startswith("TPU"):
            assert row["hardware"] == "tpu"
        assert row["precision"] == raw["weight_data_types"].lower()
    assert per_metric == Counter(UNIT_METRIC[r["Performance_Units"]] for r in inference_raw)

    with empty_store.cursor() as cur:
        units = {
            n: (u, d)
            for n, u, d in cur.execute(
                "SELECT name, unit, direction FROM metrics WHERE name LIKE 'mlperf%'"
            ).fetchall()
        }
    assert units["mlperf_latency_ms"] == ("ms", "lower")
    assert units["mlperf_tokens_per_second"] == ("tokens/s", "higher")
    assert units["mlperf_samples_per_second"] == ("samples/s", "higher")
    assert units["mlperf_queries_per_second"] == ("queries/s", "higher")
    assert units["mlperf_power_watts"] == ("W", "lower")


def test_inference_concrete_record(empty_store, shared_data: Path, inference_raw) -> None:
    path = shared_data / "mlperf_inference_v4.1" / "summary_results.json"
    ingest_paths(empty_store, [path])
    first = next(r for r in inference_raw if r["ID"] == "v4.1-0001" and r["Scenario"] == "Offline")
    assert (first["Model"], first["Performance_Units"]) == ("llama2-70b-99", "Tokens/s")
    with empty_store.cursor() as cur:
        found = cur.execute(
            """SELECT s.hardware, s.device, s."precision", s.suite, s.model_family, s.modality,
                      m.metric, m.value, r.ts
               FROM results AS r JOIN series AS s USING (series_id)
               JOIN measurements AS m USING (result_id)
               WHERE s.name = 'llama2-70b-99' AND s.extra['platform'] = ?
                 AND s.extra['scenario'] = 'Offline' AND s.extra['division'] = 'closed'""",
            [first["Platform"]],
        ).fetchall()
    assert found == [
        (
            "rocm",
            "AMD Instinct MI300X-NPS1-SPX-192GB-750W",
            "fp8",
            "MLPerf Inference v4.1",
            "llama",
            "text",
            "mlperf_tokens_per_second",
            3062.72,
            datetime(2024, 8, 28),
        )
    ]


def test_inference_twice_adds_nothing(empty_store, shared_data: Path) -> None:
    path = shared_data / "mlperf_inference_v4.1" / "summary_results.json"
    ingest_paths(empty_store, [path])
    counts = table_counts(empty_store)
    (again,) = ingest_paths(empty_store, [path])
    assert (again.status, again.added) == ("ok", 0)
    assert table_counts(empty_store) == counts


def _ms(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None)


@pytest.mark.parametrize("version", ["v5.0", "v5.1"])
def test_training_runs(empty_store, shared_data: Path, version: str) -> None:
    path = shared_data / f"mlperf_training_{version}" / "runs.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    assert report.format == "mlperf-training"
    statuses = Counter(r["status"] for r in raw)
    assert report.results == len(raw)
    assert report.passed == statuses["success"]
    assert report.failed == statuses["aborted"]
    assert report.errors == statuses[""]
    assert report.measurements == statuses["success"]

    rows = _series_rows(empty_store)
    metrics = _metrics(empty_store)
    by_run = {(r["submitter"], r["system"], r["benchmark"], _ms(r["run_start_ms"])): r for r in raw}
    assert len(by_run) == len(raw)
    total = 0.0
    for row in rows:
        e = row["extra"]
        source = by_run[(e["submitter"], e["system"], row["name"], row["ts"])]
        want = {"success": "passed", "aborted": "failed", "": "error"}[source["status"]]
        assert row["status"] == want
        assert row["worker_id"] == f"{source['submitter']}/{source['system']}"
        assert row["device"] == source["accelerator_model_name"]
        assert row["batch_size"] == int(source["global_batch_size"])
        assert e["number_of_nodes"] == source["number_of_nodes"]
        assert e["framework"] == source["framework"]
        assert row["suite"] == f"MLPerf Training {version}"
        values = metrics.get(row["result_id"], {})
        if source["status"] == "success":
            assert values == {
                "time_to_train_min": pytest.approx(float(source["time_to_train_min"]))
            }
            total += values["time_to_train_min"]
        else:
            assert values == {}
            assert row["message"]
    assert total == pytest.approx(
        sum(float(r["time_to_train_min"]) for r in raw if r["status"] == "success")
    )
    with empty_store.cursor() as cur:
        workers = cur.execute("SELECT count(*) FROM workers").fetchall()[0][0]
        unit = cur.execute(
            "SELECT unit, direction, description FROM metrics WHERE name = 'time_to_train_min'"
        ).fetchall()
    assert workers == len({(r["submitter"], r["system"]) for r in raw})
    assert unit[0][:2] == ("min", "lower")
    assert "not an official MLPerf score" in unit[0][2]


def test_training_concrete_run(empty_store, shared_data: Path) -> None:
    path = shared_data / "mlperf_training_v5.0" / "runs.csv"
    ingest_paths(empty_store, [path])
    with empty_store.cursor() as cur:
        found = cur.execute(
            """SELECT r.ts, r.status, r.duration_s, s.hardware, s.device, s.batch_size,
                      s.model_family, m.value
               FROM results AS r JOIN series AS s USING (series_id)
               JOIN measurements AS m USING (result_id)
               WHERE s.name = 'llama2_70b_lora' AND s.extra['system'] = 'MI300X_EPYC_9575F_pytorch'
                 AND r.ts = ?""",
            [_ms("1745906128645")],
        ).fetchall()
    assert found == [
        (
            datetime(2025, 4, 29, 5, 55, 28, 645000),
            "passed",
            pytest.approx((1745907824256 - 1745906128645) / 1000),
            "rocm",
            "AMD Instinct MI300X 192GB HBM3",
            8,
            "llama",
            28.2602,
        )
    ]


def test_training_twice_adds_nothing(empty_store, shared_data: Path) -> None:
    paths = [shared_data / f"mlperf_training_{v}" / "runs.csv" for v in ("v5.0", "v5.1")]
    first = ingest_paths(empty_store, paths)
    counts = table_counts(empty_store)
    again = ingest_paths(empty_store, paths)
    assert [r.added for r in first] == [r.results for r in first]
    assert [r.added for r in again] == [0, 0]
    assert table_counts(empty_store) == counts


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("eval_curves.csv", "not a table of results"), ("systems.json", "does not recognise")],
)
def test_training_side_files_are_not_results(empty_store, shared_data: Path, name, fragment):
    (report,) = ingest_paths(empty_store, [shared_data / "mlperf_training_v5.0" / name])
    assert report.status == "error"
    assert fragment in report.error
    assert table_counts(empty_store)["results"] == 0


# ------------------------------------------------------------------------ later rounds (issue 17)

SCENARIO_UNITS = {
    "Offline": ["Samples/s", "Tokens/s"],
    "Server": ["Queries/s", "Tokens/s"],
    "SingleStream": ["Latency (ms)"],
    "MultiStream": ["Latency (ms)"],
    "Interactive": ["Tokens/s"],
}
MODELS = ["llama2-70b-99", "llama3.1-8b", "deepseek-r1", "whisper", "resnet50", "rgat"]


def _summary(version: str, counts: dict[str, int], start: int = 0) -> list[dict]:
    """MLPerf Inference summary records as MLCommons publishes them (the fields of the v4.1
    summary), ``counts[scenario]`` records per scenario, each with a Location of its own."""
    records = []
    n = start
    for scenario, count in counts.items():
        for i in range(count):
            n += 1
            unit = SCENARIO_UNITS[scenario][i % len(SCENARIO_UNITS[scenario])]
            model = MODELS[i % len(MODELS)]
            platform = f"{1 + i % 8}xGPU_sys{n}"
            record = {
                "ID": f"{version}-{n:04d}",
                "Submitter": ["NVIDIA", "AMD", "Intel", "Google"][i % 4],
                "Availability": "available",
                "Category": "closed" if i % 5 else "open",
                "Suite": "datacenter",
                "System": f"System {n}",
                "Platform": platform,
                "UsedModel": model,
                "Model": model,
                "Scenario": scenario,
                "Accuracy": "ROUGE1: 44.4",
                "Nodes": 1,
                "Processor": "2xAMD EPYC 9575F",
                "Accelerator": ["NVIDIA GB300", "AMD Instinct MI355X", "", "TPU v6e"][i % 4],
                "a#": float(1 + i % 8),
                "Location": f"closed/sub/results/{platform}/{model}/{scenario}",
                "version": version,
                "weight_data_types": ["fp4", "fp8", "int8", "bf16"][i % 4],
                "Performance_Result": round(10.0 + 7.5 * n, 3),
                "Performance_Units": unit,
            }
            if i % 9 == 0:
                record["Power_Result"] = 800.0 + i
                record["Power_Units"] = "Watts"
            records.append(record)
    return records


def _write_summary(tmp_path: Path, records: list[dict], name: str = "summary_results.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_a_v5_1_summary_with_interactive_records_goes_in_whole(empty_store, tmp_path) -> None:
    """Finding 3: the v5.1 summary (1,448 records, 68 of them Interactive) stored 0."""
    counts = {"Offline": 700, "Server": 560, "SingleStream": 80, "MultiStream": 40}
    records = _summary("v5.1", {**counts, "Interactive": 68})
    assert len(records) == 1448
    path = _write_summary(tmp_path, records)
    (report,) = ingest_paths(empty_store, [path])
    assert report.status == "ok", report.error
    assert (report.results, report.added, report.rejected, report.warnings) == (1448, 1448, 0, 0)
    power = sum("Power_Result" in r for r in records)
    assert report.measurements == len(records) + power
    rows = _series_rows(empty_store)
    metrics = _metrics(empty_store)
    assert Counter(r["extra"]["scenario"] for r in rows) == Counter(r["Scenario"] for r in records)
    assert {r["ts"] for r in rows} == {datetime(2025, 9, 9)}
    assert {r["suite"] for r in rows} == {"MLPerf Inference v5.1"}
    expected = Counter(UNIT_METRIC[r["Performance_Units"]] for r in records)
    got = Counter(m for values in metrics.values() for m in values if m != "mlperf_power_watts")
    assert got == expected
    interactive = [r for r in rows if r["extra"]["scenario"] == "Interactive"]
    assert len(interactive) == 68
    assert all(
        metrics[r["result_id"]].keys() - {"mlperf_power_watts"} == {"mlperf_tokens_per_second"}
        for r in interactive
    )
    total = sum(
        v for values in metrics.values() for m, v in values.items() if m != "mlperf_power_watts"
    )
    assert total == pytest.approx(sum(r["Performance_Result"] for r in records))
    families = {r["name"]: (r["model_family"], r["modality"]) for r in rows}
    assert families["deepseek-r1"] == ("deepseek", "text")
    assert families["whisper"] == ("whisper", "audio")


@pytest.mark.parametrize(
    ("version", "published"),
    [
        ("v4.0", datetime(2024, 3, 27)),
        ("v5.0", datetime(2025, 4, 2)),
        ("5.1", datetime(2025, 9, 9)),
    ],
)
def test_each_known_round_is_dated_by_its_publication(empty_store, tmp_path, version, published):
    path = _write_summary(tmp_path, _summary(version, {"Offline": 3, "Server": 2}))
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.results, report.warnings) == ("ok", 5, 0), report.error
    assert {r["ts"] for r in _series_rows(empty_store)} == {published}


def test_a_later_round_goes_in_dated_by_the_rule_with_a_warning(empty_store, tmp_path) -> None:
    records = _summary("v6.0", {"Offline": 4}) + _summary("v6.1", {"Server": 3}, start=4)
    path = _write_summary(tmp_path, records)
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.results, report.rejected) == ("ok", 7, 0), report.error
    assert report.warnings == 2
    v60 = next(p for p in report.problems if "'v6.0'" in p["problem"])
    assert v60["outcome"] == "kept" and v60["where"].endswith("field version")
    assert "4 results are dated 2026-04-01" in v60["fix"] and "PUBLICATION_DATES" in v60["fix"]
    dates = Counter((r["suite"], r["ts"]) for r in _series_rows(empty_store))
    assert dates == {
        ("MLPerf Inference v6.0", datetime(2026, 4, 1)): 4,
        ("MLPerf Inference v6.1", datetime(2026, 9, 1)): 3,
    }
    # All or nothing: an estimated date is a stand-in time.
    (strict,) = ingest_paths(empty_store, [path], IngestOptions(strict=True))
    assert strict.status == "error" and "'v6.0'" in strict.error


def test_record_problems_name_the_real_cause_and_block_nothing_else(empty_store, tmp_path):
    records = _summary("v5.1", {"Offline": 6, "SingleStream": 2, "Interactive": 2})
    records[1]["version"] = "round six"
    records[2]["version"] = ""
    records[6]["Performance_Units"] = "Tokens/s"  # a SingleStream throughput: does not fit
    records[8]["Performance_Units"] = "Frames/s"  # a unit never seen: a throughput of its own
    records[9]["Scenario"] = "Streaming"  # a scenario never seen: taken as it comes
    path = _write_summary(tmp_path, records)
    (report,) = ingest_paths(empty_store, [path])
    assert (report.status, report.results, report.rejected) == ("partial", 7, 3), report.error
    problems = {p["where"].rsplit(" ", 1)[-1]: p["problem"] for p in report.problems}
    assert problems == {
        "2": "field version: 'round six' is not an MLPerf round dtd can date (a name such as "
        "v5.1; rounds from v0.5 on are known)",
        "3": "field version: is missing (a result is dated by its round, e.g. v5.1)",
        "7": "field Performance_Units: 'SingleStream / Tokens/s': the unit does not fit the "
        "scenario (SingleStream and MultiStream report a latency; Offline, Server and "
        "Interactive a throughput)",
    }
    assert all(p["where"].startswith(f"{path} record ") for p in report.problems)
    with empty_store.cursor() as cur:
        frames = cur.execute(
            "SELECT unit, direction FROM metrics WHERE name = 'mlperf_frames_per_second'"
        ).fetchall()
        stored = cur.execute(
            """SELECT s.extra['scenario'], m.metric, m.value FROM measurements m
               JOIN series s USING (series_id) WHERE s.extra['scenario'] IN ('Streaming')
               OR m.metric = 'mlperf_frames_per_second' ORDER BY 1"""
        ).fetchall()
    assert frames == [("frames/s", "higher")]
    assert stored == [
        ("Interactive", "mlperf_frames_per_second", records[8]["Performance_Result"]),
        ("Streaming", "mlperf_tokens_per_second", records[9]["Performance_Result"]),
    ]
