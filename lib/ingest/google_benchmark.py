"""Google Benchmark JSON (``--benchmark_format=json`` or ``--benchmark_out=<file>``).

A file is one execution of one benchmark binary on one host: ``context`` (date, host_name,
executable, CPU count and caches, build type) and ``benchmarks[]``, one row per run.

Which rows are results:

- ``run_type: "iteration"`` rows are the measurements; with ``--benchmark_repetitions`` there is
  one per repetition (``repetition_index``), and each is a result of its own.
- ``run_type: "aggregate"`` rows (mean, median, stddev, cv, min, max, and the BigO / RMS of a
  complexity fit) are derived from the repetitions, so they are skipped whenever their family
  (``run_name``) has iteration rows in the file.
- A family with aggregate rows only (``--benchmark_report_aggregates_only``) contributes its
  ``mean`` row as its result; its other aggregates are skipped.
- Rows without ``run_type`` (old versions) are iterations unless they carry ``aggregate_name``;
  rows of any other run type are skipped.

A row with ``error_occurred: true`` becomes a result with status "error" and its
``error_message``, without metrics; one with ``skipped: true`` (1.8+, ``SkipWithMessage``) becomes
"skipped" with its ``skip_message``.

Metrics: real_time_ns and cpu_time_ns (converted from the row's ``time_unit``, ns/us/ms/s),
bytes_per_second (B/s) and items_per_second (items/s), and every user counter as
``counter_<name>`` (direction "none": the file does not say which way is better). Iterations,
threads and repetitions are not metrics.

Series: suite = the executable's file name (without .exe), name = ``run_name`` (with its
arguments, e.g. ``BM_Foo/64/threads:2``); ``extra`` holds the library build type (a debug build
is another configuration). hardware = "cpu"; the context names no CPU model, so device is empty.
Worker = ``context.host_name``.

Identity: (host_name, context date, row name, repetition_index, run_type, aggregate_name).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from lib.ingest.model import (
    IngestError,
    MetricDef,
    Record,
    RunInfo,
    Source,
    WorkerInfo,
    parse_timestamp,
    to_utc,
)
from lib.ingest.options import IngestOptions
from lib.ingest.pytest_benchmark import load_json, number
from lib.ingest.sink import Sink

METRICS = (
    MetricDef("real_time_ns", "ns", "lower", "Wall-clock time per iteration"),
    MetricDef("cpu_time_ns", "ns", "lower", "CPU time per iteration"),
)
RATES = {
    "bytes_per_second": MetricDef(
        "bytes_per_second", "B/s", "higher", "Bytes processed per second"
    ),
    "items_per_second": MetricDef(
        "items_per_second", "items/s", "higher", "Items processed per second"
    ),
}
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
_NOT_COUNTERS = {
    "family_index",
    "per_family_instance_index",
    "repetitions",
    "repetition_index",
    "threads",
    "iterations",
    "real_time",
    "cpu_time",
    "bytes_per_second",
    "items_per_second",
    "cpu_coefficient",
    "real_coefficient",
    "rms",
}
_SLUG = re.compile(r"[^0-9A-Za-z_]+")


def counter_metric(name: str) -> str:
    return "counter_" + (_SLUG.sub("_", name).strip("_") or "unnamed")


def _date(text: Any, where: str) -> datetime:
    if not isinstance(text, str) or not text.strip():
        raise IngestError(where, f"context.date is {text!r}, not a date")
    try:
        return parse_timestamp(text, where)
    except IngestError:
        pass
    try:  # versions before 1.5 wrote local time as "03/21/19 14:42:05": taken as UTC
        return to_utc(datetime.strptime(text.strip(), "%m/%d/%y %H:%M:%S"))
    except ValueError:
        raise IngestError(where, f"context.date {text!r} is not a date") from None


def _counters(row: dict) -> list[str]:
    """User counters: numeric fields that are not Google Benchmark's own."""
    return [
        key
        for key, value in row.items()
        if key not in _NOT_COUNTERS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ]


def _run_type(row: dict) -> str:
    kind = row.get("run_type")
    if isinstance(kind, str) and kind:
        return kind
    return "aggregate" if "aggregate_name" in row else "iteration"


def _family(row: dict) -> str:
    run_name = row.get("run_name")
    return run_name if isinstance(run_name, str) and run_name else row["name"]


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    data = load_json(source)
    name = source.name
    if not isinstance(data, dict):
        raise IngestError(
            name, f"holds a JSON {type(data).__name__}, not a Google Benchmark object"
        )
    context = data.get("context")
    if not isinstance(context, dict):
        raise IngestError(name, "context is missing or not an object")
    rows = data.get("benchmarks")
    if not isinstance(rows, list):
        raise IngestError(name, "benchmarks is missing or not a list")
    if not rows:
        raise IngestError(name, "benchmarks is an empty list", "The binary ran no benchmark.")
    date_text = context.get("date")
    ts = _date(date_text, f"{name} context.date")
    host = context.get("host_name") if isinstance(context.get("host_name"), str) else None
    host = host or None
    executable = context.get("executable") if isinstance(context.get("executable"), str) else ""
    suite = re.split(r"[\\/]", executable)[-1].removesuffix(".exe") or None
    build = context.get("library_build_type")
    extra = {"build_type": build} if isinstance(build, str) and build else {}

    # First pass: validate the shape and find the families measured by iteration rows; then
    # choose the rows that are results, and define their counters before any record is added.
    with_iterations: set[str] = set()
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise IngestError(f"{name} benchmark {index}", f"is {row!r}, not an object")
        if not isinstance(row.get("name"), str) or not row["name"]:
            raise IngestError(f"{name} benchmark {index}", f"name is {row.get('name')!r}")
        if _run_type(row) == "iteration":
            with_iterations.add(_family(row))
    chosen = [
        (index, row)
        for index, row in enumerate(rows, start=1)
        if _run_type(row) == "iteration"
        or (
            _run_type(row) == "aggregate"
            and row.get("aggregate_name") == "mean"
            and _family(row) not in with_iterations
        )
    ]
    counters = {key for _, row in chosen for key in _counters(row)}
    sink.define(METRICS)
    sink.define(RATES.values())
    sink.define(MetricDef(counter_metric(c), "", "none", f"User counter {c}") for c in counters)

    run = RunInfo(
        key=f"{host}|{date_text}|{executable}",
        name=f"{suite or 'Google Benchmark'} {ts:%Y-%m-%d %H:%M:%S}",
        started_at=ts,
    )
    worker = WorkerInfo(host, hostname=host, hardware="cpu") if host else None
    for index, row in chosen:
        record = _record(name, index, row, ts, date_text, host, suite, extra, run, worker)
        sink.add(record)


def _record(
    name: str,
    index: int,
    row: dict,
    ts: datetime,
    date_text: str,
    host: str | None,
    suite: str | None,
    extra: dict[str, str],
    run: RunInfo,
    worker: WorkerInfo | None,
) -> Record:
    kind, family = _run_type(row), _family(row)
    where = f"benchmark {index} ({row['name']})"
    at = f"{name} {where}"
    status, message = "passed", None
    metrics: dict[str, float] = {}
    if row.get("error_occurred") is True:
        status = "error"
        message = str(row.get("error_message") or "error_occurred")
    elif row.get("skipped") is True:
        status = "skipped"
        message = str(row.get("skip_message") or "skipped")
    else:
        unit = row.get("time_unit", "ns")
        if not isinstance(unit, str) or unit not in TO_NS:
            raise IngestError(at, f"time_unit is {unit!r}, not one of {', '.join(TO_NS)}")
        for field, metric in (("real_time", "real_time_ns"), ("cpu_time", "cpu_time_ns")):
            if field not in row:
                raise IngestError(at, f"{field} is missing")
            metrics[metric] = number(row[field], at, field) * TO_NS[unit]
        for field in RATES:
            if row.get(field) is not None:
                metrics[field] = number(row[field], at, field)
        for key in _counters(row):
            metrics[counter_metric(key)] = number(row[key], at, key, negative_ok=True)
    repetition = row.get("repetition_index")
    aggregate = row.get("aggregate_name") if kind == "aggregate" else None
    return Record(
        key=(host, date_text, row["name"], repetition, kind, aggregate),
        name=family,
        suite=suite,
        ts=ts,
        kind="benchmark",
        status=status,
        message=message,
        metrics=metrics,
        hardware="cpu",
        extra=dict(extra),
        run=run,
        worker=worker,
        where=where,
    )
