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

from lib.ingest import ingest_paths
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
