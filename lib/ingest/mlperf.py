"""MLPerf results: Inference ``summary_results.json`` and Training ``runs.csv``.

Both are foreign tables with a fixed layout, so each gets a built-in ``Plan`` (the same machinery
as our own CSV and JSON in ``lib.ingest.tabular``: DuckDB reads, SQL reshapes, checks and
identifies the rows in the store's own connection, and the sink writes them there).
docs/ingest-formats.md has the mapping tables.

- Inference: one benchmark result per record (system x model x scenario). The measured number
  becomes a metric chosen by scenario and unit: SingleStream and MultiStream report a latency
  (``mlperf_latency_ms``, lower is better), Offline and Server a throughput in samples, tokens or
  queries per second (higher is better); power submissions add ``mlperf_power_watts`` or
  ``mlperf_energy_mj``. Records carry no time, so ``ts`` is the round's publication date.
- Training: one result per run of a (submitter, system, benchmark) submission, with
  ``time_to_train_min`` for runs that reached the target. These are per-run times, NOT official
  MLPerf scores (an official score is a mean over a submission's runs, with benchmark-specific
  rules); the metric's description says so.

``eval_curves.csv`` and ``systems.json`` are not results and are not read.
"""

from __future__ import annotations

from lib.ingest.model import IngestError, MetricDef, Source
from lib.ingest.options import IngestOptions
from lib.ingest.sink import Sink
from lib.ingest.tabular import (
    Check,
    Column,
    Plan,
    Reader,
    columns_of,
    connect,
    csv_reader,
    json_reader,
    literal,
    local_path,
    quote,
    run_plan,
)

PUBLICATION_DATES = {"v4.1": "2024-08-28"}
"""MLPerf Inference rounds and the day their results were published (records carry no time)."""

INFERENCE_METRICS = {
    "Samples/s": MetricDef(
        "mlperf_samples_per_second",
        "samples/s",
        "higher",
        "MLPerf Inference throughput (Offline, Server) in samples per second",
    ),
    "Tokens/s": MetricDef(
        "mlperf_tokens_per_second",
        "tokens/s",
        "higher",
        "MLPerf Inference throughput (Offline, Server) in tokens per second",
    ),
    "Queries/s": MetricDef(
        "mlperf_queries_per_second",
        "queries/s",
        "higher",
        "MLPerf Inference throughput (Server) in queries per second",
    ),
    "Latency (ms)": MetricDef(
        "mlperf_latency_ms",
        "ms",
        "lower",
        "MLPerf Inference latency: 90th percentile (SingleStream) or 99th percentile (MultiStream)",
    ),
}
"""Performance_Units -> metric."""
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")
THROUGHPUT_SCENARIOS = ("Offline", "Server")
POWER_METRICS = {
    "Watts": MetricDef(
        "mlperf_power_watts", "W", "lower", "MLPerf Power: average system power during the run"
    ),
    "millijoules": MetricDef(
        "mlperf_energy_mj", "mJ", "lower", "MLPerf Power: energy per query or stream"
    ),
}
"""Power_Units -> metric."""
TIME_TO_TRAIN = MetricDef(
    "time_to_train_min",
    "min",
    "lower",
    "MLPerf Training time to train of one run (a per-run time, not an official MLPerf score)",
)
TRAINING_COLUMNS = (
    "version",
    "submitter",
    "system",
    "benchmark",
    "status",
    "time_to_train_min",
    "run_start_ms",
    "run_stop_ms",
    "global_batch_size",
    "number_of_nodes",
    "accelerators_per_node",
    "accelerator_model_name",
    "framework",
    "division",
    "source_path",
)
INFERENCE_COLUMNS = (
    "version",
    "Location",
    "Submitter",
    "System",
    "Platform",
    "Model",
    "Scenario",
    "Category",
    "Availability",
    "Suite",
    "Nodes",
    "Processor",
    "Accelerator",
    "a#",
    "weight_data_types",
    "Performance_Result",
    "Performance_Units",
)

_FAMILIES = (
    ("bert", "bert", "text"),
    ("resnet", "resnet", "vision"),
    ("retinanet", "retinanet", "vision"),
    ("gptj", "gptj", "text"),
    ("llama", "llama", "text"),
    ("mixtral", "mixtral", "text"),
    ("stable", "stable-diffusion", "multimodal"),
    ("flux", "flux", "multimodal"),
    ("3d-unet", "unet", "vision"),
    ("dlrm", "dlrm", None),
    ("rgat", "rgat", None),
)
"""Model name prefix -> (model_family, modality)."""


def hardware_sql(accelerator: str) -> str:
    """Our hardware platform from an accelerator's name; no accelerator means cpu."""
    return (
        f"CASE WHEN {accelerator} IS NULL OR trim({accelerator}) = '' THEN 'cpu' "
        f"WHEN {accelerator} ILIKE '%nvidia%' OR {accelerator} ILIKE 'tesla%' "
        f"OR {accelerator} ILIKE '%geforce%' THEN 'cuda' "
        f"WHEN {accelerator} ILIKE '%amd%' OR {accelerator} ILIKE '%instinct%' "
        f"OR {accelerator} ILIKE '%radeon%' THEN 'rocm' "
        f"WHEN {accelerator} ILIKE '%tpu%' THEN 'tpu' "
        f"WHEN {accelerator} ILIKE '%gaudi%' THEN 'hpu' "
        "ELSE 'other' END"
    )


def _family_sql(model: str, index: int) -> str:
    cases = " ".join(
        f"WHEN lower({model}) LIKE {literal(prefix + '%')} THEN "
        f"{literal(values[index]) if values[index] else 'NULL'}"
        for prefix, *values in _FAMILIES
    )
    return f"CASE {cases} END"


def _require(columns: dict[str, str], wanted: tuple[str, ...], source: Source, what: str) -> None:
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise IngestError(
            source.name,
            f"column {missing[0]}: is missing, so this is not {what} "
            f"(missing: {', '.join(missing)})",
            "Ingest the file exactly as MLCommons publishes it.",
        )


def _text(name: str) -> str:
    return f"NULLIF(trim({quote(name)}), '')"


def inference_plan(columns: dict[str, str]) -> Plan:
    """summary_results.json (every field read as text) -> results."""
    version = quote("version")
    units = quote("Performance_Units")
    scenario = quote("Scenario")
    accelerator = _text("Accelerator")
    model = quote("Model")
    fields = {
        "result_id": Column(
            f"{version} || '/' || {quote('Location')}", "VARCHAR", "field Location"
        ),
        "ts": Column(
            "CASE "
            + " ".join(
                f"WHEN {version} = {literal(v)} THEN {literal(d)}"
                for v, d in PUBLICATION_DATES.items()
            )
            + " END",
            "VARCHAR",
            "field version",
        ),
        "name": Column(model, "VARCHAR", "field Model"),
        "model": Column(model, "VARCHAR", "field Model"),
        "model_family": Column(_family_sql(model, 0), "VARCHAR", "field Model"),
        "modality": Column(_family_sql(model, 1), "VARCHAR", "field Model"),
        "suite": Column(f"'MLPerf Inference ' || {version}", "VARCHAR", "field version"),
        "kind": Column("'benchmark'", "VARCHAR", "kind"),
        "status": Column("'passed'", "VARCHAR", "status"),
        "hardware": Column(hardware_sql(accelerator), "VARCHAR", "field Accelerator"),
        "device": Column(
            f"coalesce({accelerator}, {_text('Processor')})", "VARCHAR", "field Accelerator"
        ),
        "precision": Column(
            f"lower({_text('weight_data_types')})", "VARCHAR", "field weight_data_types"
        ),
    }
    metrics = [
        (
            metric,
            Column(
                f"CASE WHEN {units} = {literal(unit)} THEN {quote('Performance_Result')} END",
                "VARCHAR",
                "field Performance_Result",
            ),
        )
        for unit, metric in INFERENCE_METRICS.items()
    ]
    known_units = ", ".join(literal(u) for u in INFERENCE_METRICS)
    fits = (
        f"({scenario} IN ({', '.join(literal(s) for s in LATENCY_SCENARIOS)}) "
        f"AND {units} = 'Latency (ms)') OR ({scenario} IN "
        f"({', '.join(literal(s) for s in THROUGHPUT_SCENARIOS)}) AND {units} <> 'Latency (ms)')"
    )
    checks = [
        Check(
            f"{version} IS NULL OR {version} NOT IN ({', '.join(literal(v) for v in PUBLICATION_DATES)})",
            "field version",
            "{value} is not a round whose publication date dtd knows ("
            + ", ".join(PUBLICATION_DATES)
            + ")",
            version,
        ),
        Check(
            f"{units} IS NULL OR {units} NOT IN ({known_units})",
            "field Performance_Units",
            "{value} is not a unit dtd knows (" + ", ".join(INFERENCE_METRICS) + ")",
            units,
        ),
        Check(
            f"NOT ({fits})",
            "field Performance_Units",
            "{value}: the unit does not fit the scenario (SingleStream and MultiStream report a "
            "latency, Offline and Server a throughput)",
            f"{scenario} || ' / ' || {units}",
        ),
        Check(
            f"{_text('Performance_Result')} IS NULL",
            "field Performance_Result",
            "is missing",
        ),
    ]
    if "Power_Units" in columns and "Power_Result" in columns:
        power_units = quote("Power_Units")
        for unit, metric in POWER_METRICS.items():
            metrics.append(
                (
                    metric,
                    Column(
                        f"CASE WHEN {power_units} = {literal(unit)} THEN {quote('Power_Result')} END",
                        "VARCHAR",
                        "field Power_Result",
                    ),
                )
            )
        checks.append(
            Check(
                f"{_text('Power_Result')} IS NOT NULL AND ({power_units} IS NULL OR "
                f"{power_units} NOT IN ({', '.join(literal(u) for u in POWER_METRICS)}))",
                "field Power_Units",
                "{value} is not a power unit dtd knows (" + ", ".join(POWER_METRICS) + ")",
                power_units,
            )
        )
    extras = [
        ("scenario", Column.of("Scenario", "VARCHAR", "field Scenario")),
        ("submitter", Column.of("Submitter", "VARCHAR", "field Submitter")),
        ("system", Column.of("System", "VARCHAR", "field System")),
        ("platform", Column.of("Platform", "VARCHAR", "field Platform")),
        ("division", Column.of("Category", "VARCHAR", "field Category")),
        ("availability", Column.of("Availability", "VARCHAR", "field Availability")),
        ("mlperf_suite", Column.of("Suite", "VARCHAR", "field Suite")),
        ("nodes", Column(_integer_text("Nodes"), "VARCHAR", "field Nodes")),
        ("accelerators_per_node", Column(_integer_text("a#"), "VARCHAR", "field a#")),
    ]
    if "UsedModel" in columns:
        # The open division runs variants under one benchmark (e.g. pruned BERTs for bert-99):
        # the model actually used keeps them apart.
        used = _text("UsedModel")
        extras.append(
            (
                "used_model",
                Column(
                    f"CASE WHEN {used} IS DISTINCT FROM {model} THEN {used} END",
                    "VARCHAR",
                    "field UsedModel",
                ),
            )
        )
    return Plan(fields=fields, metrics=metrics, extras=extras, checks=checks)


def _integer_text(name: str) -> str:
    """ "8.0" -> "8"; text that is not a number is kept as written."""
    number = f"TRY_CAST({_text(name)} AS DOUBLE)"
    return (
        f"CASE WHEN {number} = floor({number}) THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) "
        f"ELSE {_text(name)} END"
    )


def training_plan(columns: dict[str, str]) -> Plan:
    """runs.csv (every column read as text) -> results."""
    version = quote("version")
    status = _text("status")
    accelerator = _text("accelerator_model_name")
    start, stop = quote("run_start_ms"), quote("run_stop_ms")
    fields = {
        "result_id": Column(
            f"{version} || '/' || {quote('source_path')}", "VARCHAR", "column source_path"
        ),
        "ts": Column.of("run_start_ms", "VARCHAR"),
        "name": Column.of("benchmark", "VARCHAR"),
        "model": Column.of("benchmark", "VARCHAR"),
        "model_family": Column(_family_sql(quote("benchmark"), 0), "VARCHAR", "column benchmark"),
        "modality": Column(_family_sql(quote("benchmark"), 1), "VARCHAR", "column benchmark"),
        "suite": Column(f"'MLPerf Training ' || {version}", "VARCHAR", "column version"),
        "kind": Column("'benchmark'", "VARCHAR", "kind"),
        "status": Column.of("status", "VARCHAR"),
        "duration_s": Column(
            f"(TRY_CAST({stop} AS DOUBLE) - TRY_CAST({start} AS DOUBLE)) / 1000",
            "DOUBLE",
            "columns run_start_ms and run_stop_ms",
        ),
        "message": Column(
            f"CASE WHEN {status} = 'aborted' THEN 'run aborted before reaching the target' "
            f"WHEN {status} IS NULL THEN 'the log has no run_stop (the run did not finish)' END",
            "VARCHAR",
            "column status",
        ),
        "hardware": Column(hardware_sql(accelerator), "VARCHAR", "column accelerator_model_name"),
        "device": Column.of("accelerator_model_name", "VARCHAR"),
        "batch_size": Column.of("global_batch_size", "VARCHAR"),
        "worker": Column(
            f"{quote('submitter')} || '/' || {quote('system')}", "VARCHAR", "column system"
        ),
    }
    metrics = [
        (
            TIME_TO_TRAIN,
            Column(
                f"CASE WHEN {status} = 'success' THEN {quote('time_to_train_min')} END",
                "VARCHAR",
                "column time_to_train_min",
            ),
        )
    ]
    extras = [
        (name, Column.of(name, "VARCHAR"))
        for name in (
            "submitter",
            "system",
            "number_of_nodes",
            "accelerators_per_node",
            "framework",
            "division",
        )
    ]
    checks = [
        Check(
            f"{status} = 'success' AND {_text('time_to_train_min')} IS NULL",
            "column time_to_train_min",
            "is missing for a successful run",
        )
    ]
    return Plan(
        fields=fields,
        metrics=metrics,
        extras=extras,
        status_values={"success": "passed", "aborted": "failed", "": "error"},
        ts_unit="ms",
        checks=checks,
    )


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    """A mapping (``--mapping``) does not apply: the layout is MLCommons'."""
    inference = sink.fmt == "mlperf-inference"
    with local_path(source, ".json" if inference else ".csv") as path:
        con = connect()
        try:
            if inference:
                reader: Reader = json_reader(con, path, source, lines=False)
                what, wanted = "an MLPerf Inference summary", INFERENCE_COLUMNS
            else:
                reader = csv_reader(con, path, source)
                what, wanted = "an MLPerf Training runs table", TRAINING_COLUMNS
            columns = dict(columns_of(con, reader.relation))
            _require(columns, wanted, source, what)
            plan = inference_plan(columns) if inference else training_plan(columns)
            run_plan(con, reader, plan, source, sink, options)
        finally:
            con.close()
