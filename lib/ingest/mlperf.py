"""MLPerf results: Inference ``summary_results.json`` and Training ``runs.csv``.

Both are foreign tables with a fixed layout, so each gets a built-in ``Plan`` (the same machinery
as our own CSV and JSON in ``lib.ingest.tabular``: DuckDB reads, SQL reshapes, checks and
identifies the rows in the store's own connection, and the sink writes them there).
docs/ingest-formats.md has the mapping tables.

- Inference: one benchmark result per record (system x model x scenario). The measured number
  becomes a metric chosen by its unit (``unit_metric``): a latency (``mlperf_latency_ms``, lower
  is better) or a throughput in samples, tokens or queries per second (higher is better); a
  unit never seen before still goes in (``<what>/s`` is a throughput, ``Latency (<unit>)`` a
  latency, anything else a metric without a direction). SingleStream and MultiStream must report
  a latency, Offline, Server and Interactive a throughput; any other scenario is taken as it
  comes. Power submissions add ``mlperf_power_watts`` or ``mlperf_energy_mj``. Records carry
  no time, so ``ts`` is the round's publication date (``PUBLICATION_DATES``); a later round
  that the table does not list yet is dated by the rule MLCommons' calendar has followed since
  2021 (``vN.0`` in April, ``vN.1`` in September of 2020 + N; ``round_date``), with a warning.
- Training: one result per run of a (submitter, system, benchmark) submission, with
  ``time_to_train_min`` for runs that reached the target. These are per-run times, NOT official
  MLPerf scores (an official score is a mean over a submission's runs, with benchmark-specific
  rules); the metric's description says so.

``eval_curves.csv`` and ``systems.json`` are not results and are not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

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

PUBLICATION_DATES = {
    "v0.5": "2019-11-06",
    "v0.7": "2020-10-21",
    "v1.0": "2021-04-21",
    "v1.1": "2021-09-22",
    "v2.0": "2022-04-06",
    "v2.1": "2022-09-08",
    "v3.0": "2023-04-05",
    "v3.1": "2023-09-11",
    "v4.0": "2024-03-27",
    "v4.1": "2024-08-28",
    "v5.0": "2025-04-02",
    "v5.1": "2025-09-09",
}
"""MLPerf Inference rounds and the day MLCommons published their results (records carry no
time of their own). A round missing here is dated by ``round_date``'s rule, with a warning:
add its date here when it is known."""
ROUND_PATTERN = r"^v?([0-9]+)\.([0-9]+)$"
"""A round's name, as ``version`` holds it ("v5.1"; the "v" may be missing; any case)."""
ESTIMATED_MONTHS = {0: 4}
"""Month of an unlisted round ``vN.M`` by its minor number M (others: 9, September)."""


def round_date(version: str | None) -> tuple[str, bool] | None:
    """(publication date, whether it is known rather than estimated), or None when the text is
    not a round's name. vN.0 rounds have come out in April and vN.1 rounds in September of
    2020 + N since v1.0, so a later round is dated to the 1st of that month."""
    found = re.fullmatch(ROUND_PATTERN, (version or "").strip().lower())
    if not found:
        return None
    major, minor = int(found[1]), int(found[2])
    known = PUBLICATION_DATES.get(f"v{major}.{minor}")
    if known:
        return known, True
    if major < 1:
        return None
    return f"{2020 + major:04d}-{ESTIMATED_MONTHS.get(minor, 9):02d}-01", False


def _round_sql(version: str) -> str:
    """SQL of ``round_date``'s date (NULL for text that is not a round's name)."""
    clean = f"lower(trim({version}))"
    major = f"TRY_CAST(regexp_extract({clean}, {literal(ROUND_PATTERN)}, 1) AS INTEGER)"
    minor = f"TRY_CAST(regexp_extract({clean}, {literal(ROUND_PATTERN)}, 2) AS INTEGER)"
    name = f"'v' || {major} || '.' || {minor}"
    known = " ".join(
        f"WHEN {name} = {literal(v)} THEN {literal(d)}" for v, d in PUBLICATION_DATES.items()
    )
    months = " ".join(f"WHEN {m} THEN {month}" for m, month in ESTIMATED_MONTHS.items())
    return (
        f"CASE {known} WHEN {major} >= 1 THEN "
        f"printf('%04d-%02d-01', 2020 + {major}, CASE {minor} {months} ELSE 9 END) END"
    )


INFERENCE_METRICS = {
    "Samples/s": MetricDef(
        "mlperf_samples_per_second",
        "samples/s",
        "higher",
        "MLPerf Inference throughput in samples per second",
    ),
    "Tokens/s": MetricDef(
        "mlperf_tokens_per_second",
        "tokens/s",
        "higher",
        "MLPerf Inference throughput in tokens per second",
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
"""Performance_Units -> metric, for the units published so far (``unit_metric`` for others)."""
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")
THROUGHPUT_SCENARIOS = ("Offline", "Server", "Interactive")
"""Scenarios whose kind of number is known; any other scenario is taken with any unit."""
POWER_METRICS = {
    "Watts": MetricDef(
        "mlperf_power_watts", "W", "lower", "MLPerf Power: average system power during the run"
    ),
    "millijoules": MetricDef(
        "mlperf_energy_mj", "mJ", "lower", "MLPerf Power: energy per query or stream"
    ),
}
"""Power_Units -> metric (others: a metric of their own without a direction)."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "value"


def unit_metric(unit: str) -> MetricDef:
    """The metric of a ``Performance_Units`` value: a known one, a rate ("<what>/s": higher is
    better), a latency ("Latency (<time unit>)": lower), else a metric of its own name with no
    direction (shown, never called a regression)."""
    if unit in INFERENCE_METRICS:
        return INFERENCE_METRICS[unit]
    rate = re.fullmatch(r"\s*([A-Za-z][A-Za-z ]*?)\s*/\s*s(?:ec|econd)?\s*", unit)
    if rate:
        what = _slug(rate[1])
        return MetricDef(
            f"mlperf_{what}_per_second",
            f"{what}/s",
            "higher",
            f"MLPerf Inference throughput in {what} per second",
        )
    latency = re.fullmatch(r"\s*latency\s*\(\s*(ms|us|ns|s)\s*\)\s*", unit, re.IGNORECASE)
    if latency:
        time_unit = latency[1].lower()
        return MetricDef(
            f"mlperf_latency_{time_unit}", time_unit, "lower", "MLPerf Inference latency"
        )
    return MetricDef(
        f"mlperf_{_slug(unit)}",
        unit.strip(),
        "none",
        f"MLPerf Inference result in {unit.strip()!r} (a unit dtd does not know: no direction)",
    )


def power_metric(unit: str) -> MetricDef:
    """The metric of a ``Power_Units`` value (unknown units: no direction)."""
    if unit in POWER_METRICS:
        return POWER_METRICS[unit]
    return MetricDef(
        f"mlperf_power_{_slug(unit)}",
        unit.strip(),
        "none",
        f"MLPerf Power result in {unit.strip()!r} (a unit dtd does not know: no direction)",
    )


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
    ("deepseek", "deepseek", "text"),
    ("whisper", "whisper", "audio"),
    ("pointpainting", "pointpainting", "vision"),
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


def inference_plan(
    columns: dict[str, str], units: list[str] = (), power_units: list[str] = ()
) -> Plan:
    """summary_results.json (every field read as text) -> results; ``units`` and
    ``power_units`` are the distinct ``Performance_Units`` and ``Power_Units`` in the file."""
    version = quote("version")
    units_sql = quote("Performance_Units")
    scenario = quote("Scenario")
    accelerator = _text("Accelerator")
    model = quote("Model")
    fields = {
        "result_id": Column(
            f"{version} || '/' || {quote('Location')}", "VARCHAR", "field Location"
        ),
        "ts": Column(_round_sql(version), "VARCHAR", "field version"),
        "name": Column(model, "VARCHAR", "field Model"),
        "model": Column(model, "VARCHAR", "field Model"),
        "model_family": Column(_family_sql(model, 0), "VARCHAR", "field Model"),
        "modality": Column(_family_sql(model, 1), "VARCHAR", "field Model"),
        "suite": Column(f"'MLPerf Inference ' || trim({version})", "VARCHAR", "field version"),
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
    present = sorted({u for u in units if u and u.strip()})
    metrics = _metric_columns(present, unit_metric, units_sql, "Performance_Result")
    latency_units = [u for u in present if unit_metric(u).name.startswith("mlperf_latency_")]
    listed = ", ".join(literal(u) for u in latency_units) or "NULL"
    is_latency = f"coalesce({units_sql} IN ({listed}), false)"
    fits = (
        f"({scenario} IN ({', '.join(literal(s) for s in LATENCY_SCENARIOS)}) AND {is_latency}) "
        f"OR ({scenario} IN ({', '.join(literal(s) for s in THROUGHPUT_SCENARIOS)}) "
        f"AND NOT {is_latency}) "
        f"OR {scenario} IS NULL OR {scenario} NOT IN "
        f"({', '.join(literal(s) for s in (*LATENCY_SCENARIOS, *THROUGHPUT_SCENARIOS))})"
    )
    early = [
        Check(
            f"{_text('version')} IS NULL",
            "field version",
            "is missing (a result is dated by its round, e.g. v5.1)",
        ),
        Check(
            f"NOT regexp_matches(lower(trim({version})), {literal(ROUND_PATTERN)}) "
            f"OR ({_round_sql(version)}) IS NULL",
            "field version",
            "{value} is not an MLPerf round dtd can date (a name such as v5.1; rounds from "
            "v0.5 on are known)",
            version,
        ),
    ]
    checks = [
        Check(
            f"{_text('Performance_Units')} IS NULL",
            "field Performance_Units",
            "is missing (without a unit the number means nothing)",
        ),
        Check(
            f"NOT ({fits})",
            "field Performance_Units",
            "{value}: the unit does not fit the scenario (SingleStream and MultiStream report a "
            "latency; Offline, Server and Interactive a throughput)",
            f"{scenario} || ' / ' || {units_sql}",
        ),
        Check(
            f"{_text('Performance_Result')} IS NULL",
            "field Performance_Result",
            "is missing",
        ),
    ]
    if "Power_Units" in columns and "Power_Result" in columns:
        power_sql = quote("Power_Units")
        present_power = sorted({u for u in power_units if u and u.strip()})
        metrics += _metric_columns(present_power, power_metric, power_sql, "Power_Result")
        checks.append(
            Check(
                f"{_text('Power_Result')} IS NOT NULL AND {_text('Power_Units')} IS NULL",
                "field Power_Units",
                "is missing while Power_Result holds a number",
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
    return Plan(fields=fields, metrics=metrics, extras=extras, checks=checks, early_checks=early)


def _metric_columns(
    units: list[str], metric_of: Callable[[str], MetricDef], units_sql: str, result: str
) -> list[tuple[MetricDef, Column]]:
    """One value column per metric: units that name the same metric (``Samples/s`` and
    ``samples / sec``) share it."""
    by_metric: dict[str, tuple[MetricDef, list[str]]] = {}
    for unit in units:
        metric = metric_of(unit)
        by_metric.setdefault(metric.name, (metric, []))[1].append(unit)
    return [
        (
            metric,
            Column(
                f"CASE WHEN {units_sql} IN ({', '.join(literal(u) for u in spelled)}) "
                f"THEN {quote(result)} END",
                "VARCHAR",
                f"field {result}",
            ),
        )
        for metric, spelled in by_metric.values()
    ]


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


def _distinct(con: duckdb.DuckDBPyConnection, reader: Reader, field: str) -> list[str]:
    """The distinct values of a field (units: a handful per file)."""
    query = f"SELECT DISTINCT {quote(field)} FROM {reader.relation}"  # noqa: S608
    return [row[0] for row in con.execute(query).fetchall() if row[0] is not None]


def _warn_estimated_rounds(
    con: duckdb.DuckDBPyConnection, reader: Reader, source: Source, sink: Sink
) -> None:
    """One warning per round that ``PUBLICATION_DATES`` does not list: its results are dated by
    the rule, and the warning says which date and how to give the real one."""
    query = f"SELECT {quote('version')}, count(*) FROM {reader.relation} GROUP BY ALL ORDER BY 1"  # noqa: S608
    for version, count in con.execute(query).fetchall():
        dated = round_date(version)
        if dated and not dated[1]:
            sink.warn(
                f"{source.name} field version",
                f"round {version.strip()!r} is not in dtd's table of publication dates "
                f"({', '.join(PUBLICATION_DATES)})",
                f"Its {count:,} results are dated {dated[0]}, the usual month of such a "
                "round; add the real date to PUBLICATION_DATES in lib/ingest/mlperf.py.",
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
            if inference:
                plan = inference_plan(
                    columns,
                    _distinct(con, reader, "Performance_Units"),
                    _distinct(con, reader, "Power_Units") if "Power_Units" in columns else [],
                )
                _warn_estimated_rounds(con, reader, source, sink)
            else:
                plan = training_plan(columns)
            run_plan(con, reader, plan, source, sink, options)
        finally:
            con.close()
