"""pytest-benchmark JSON (``--benchmark-json`` output and the saved runs in ``.benchmarks/``).

One file is one run on one machine: ``machine_info`` (node, CPU, Python), ``commit_info`` (id,
branch, dirty), ``datetime`` and ``benchmarks[]`` with ``stats`` in seconds. Each benchmark is one
result with the metrics time_mean_s, time_median_s, time_min_s, time_max_s, time_stddev_s and
ops_per_second (rounds, iterations and the quartiles are not metrics).

Versions differ in ways that matter here (both kinds are in ../shared/data):

- 3.x writes ``datetime`` without a zone (it is UTC), 4.x and later with one;
- the CPU name is ``cpu.brand_raw`` (py-cpuinfo 5 and later) or ``cpu.brand`` (older);
- ``stats.ops`` is missing from the oldest files: it is 1 / mean, and is computed so;
- parameter values that pytest-benchmark cannot serialise are written as
  ``"UNSERIALIZABLE[<repr>]"``; the repr changes from run to run (memory addresses, set order
  under hash randomisation: both in ../shared/data), so such a parameter is left out of
  ``extra`` and the test's parameter id (``param``, also part of the name) stands in for it.

Series: suite = the benchmark group (or the test module when there is none), name = the test name
with its parameter id; ``extra`` holds the parameters and the Python implementation and minor
version ("CPython 3.12"), since the same test under two Pythons is two configurations.
hardware = "cpu", device = the CPU brand.

Identity: (machine node, commit id, run datetime, fullname[, occurrence]), so the same run
ingested twice, or from a copy, adds nothing, and a folder of saved runs that has grown adds only
the new runs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
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
)
from lib.ingest.options import IngestOptions
from lib.ingest.sink import Sink

METRICS = (
    MetricDef("time_mean_s", "s", "lower", "Mean time per round"),
    MetricDef("time_median_s", "s", "lower", "Median time per round"),
    MetricDef("time_min_s", "s", "lower", "Fastest round"),
    MetricDef("time_max_s", "s", "lower", "Slowest round"),
    MetricDef("time_stddev_s", "s", "lower", "Standard deviation of the round times"),
    MetricDef("ops_per_second", "ops/s", "higher", "Operations (calls) per second"),
)
_STATS = (
    ("mean", "time_mean_s"),
    ("median", "time_median_s"),
    ("min", "time_min_s"),
    ("max", "time_max_s"),
    ("stddev", "time_stddev_s"),
)
_DETACHED = ("(detached head)", "HEAD", "")


def load_json(source: Source) -> Any:
    """The source as JSON, or an error with the line and column where it stops being JSON."""
    text = source.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{source.name} line {exc.lineno}, column {exc.colno}",
            f"is not valid JSON ({exc.msg})",
            "The file may be truncated or hand-edited.",
        ) from None


def number(value: Any, where: str, field: str, *, negative_ok: bool = False) -> float:
    """A finite number (and not negative unless allowed), or an error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(where, f"{field} is {value!r}, not a number")
    if not math.isfinite(value):
        raise IngestError(where, f"{field} is {value!r}, not a finite number")
    if value < 0 and not negative_ok:
        raise IngestError(where, f"{field} is {value!r}, which is negative")
    return float(value)


def _text(value: Any) -> str:
    """A parameter value as stable text: strings as they are, the rest as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text.replace("\x1f", " ")


def _unstable(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("UNSERIALIZABLE[")


def _python(machine: dict) -> str | None:
    version = machine.get("python_version")
    if not isinstance(version, str) or not version:
        return None
    minor = ".".join(version.split(".")[:2])
    implementation = machine.get("python_implementation")
    return f"{implementation} {minor}" if isinstance(implementation, str) else minor


def _cpu(machine: dict) -> str | None:
    cpu = machine.get("cpu")
    if not isinstance(cpu, dict):
        return None
    brand = cpu.get("brand_raw") or cpu.get("brand")
    return brand.strip() if isinstance(brand, str) and brand.strip() else None


def _os(machine: dict) -> str | None:
    parts = [machine.get(k) for k in ("system", "release")]
    text = " ".join(p for p in parts if isinstance(p, str) and p)
    return text or None


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    data = load_json(source)
    name = source.name
    if not isinstance(data, dict):
        raise IngestError(
            name, f"holds a JSON {type(data).__name__}, not a pytest-benchmark object"
        )
    machine = data.get("machine_info")
    if not isinstance(machine, dict):
        raise IngestError(name, "machine_info is missing or not an object")
    commit = data.get("commit_info")
    if commit is None:
        commit = {}
    if not isinstance(commit, dict):
        raise IngestError(name, f"commit_info is {commit!r}, not an object")
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise IngestError(name, "benchmarks is missing or not a list")
    if not benchmarks:
        raise IngestError(
            name, "benchmarks is an empty list", "pytest-benchmark ran nothing in this run."
        )
    stamp = data.get("datetime")
    if not isinstance(stamp, str):
        raise IngestError(name, f"datetime is {stamp!r}, not an ISO-8601 timestamp")
    ts = parse_timestamp(stamp, f"{name} datetime")

    node = machine.get("node") if isinstance(machine.get("node"), str) else None
    node = node or None
    commit_id = commit.get("id") if isinstance(commit.get("id"), str) else None
    branch = commit.get("branch") if isinstance(commit.get("branch"), str) else None
    if branch in _DETACHED:
        branch = None
    project = commit.get("project") if isinstance(commit.get("project"), str) else None
    device = _cpu(machine)
    python = _python(machine)
    run = RunInfo(
        key=f"{node}|{commit_id}|{ts.isoformat()}",
        name=f"{project or 'pytest-benchmark'} {ts:%Y-%m-%d %H:%M:%S}"
        + (f" ({commit_id[:10]})" if commit_id else ""),
        started_at=ts,
        git_commit=commit_id,
        git_branch=branch,
    )
    worker = (
        WorkerInfo(node, hostname=node, hardware="cpu", device=device, os=_os(machine))
        if node
        else None
    )
    sink.define(METRICS)
    seen: Counter[str] = Counter()
    for index, bench in enumerate(benchmarks, start=1):
        sink.add(_record(name, index, bench, ts, run, worker, device, python, node, seen))


def _record(
    name: str,
    index: int,
    bench: Any,
    ts: datetime,
    run: RunInfo,
    worker: WorkerInfo | None,
    device: str | None,
    python: str | None,
    node: str | None,
    seen: Counter[str],
) -> Record:
    if not isinstance(bench, dict):
        raise IngestError(f"{name} benchmark {index}", f"is {bench!r}, not an object")
    test = bench.get("name")
    fullname = bench.get("fullname") or test
    label = fullname if isinstance(fullname, str) else "?"
    where = f"benchmark {index} ({label})"
    at = f"{name} {where}"
    if not isinstance(test, str) or not test:
        raise IngestError(at, f"name is {test!r}, not a benchmark name")
    if not isinstance(fullname, str):
        raise IngestError(at, f"fullname is {fullname!r}, not text")
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        raise IngestError(at, "stats is missing or not an object")
    metrics: dict[str, float] = {}
    for key, metric in _STATS:
        if key not in stats:
            raise IngestError(at, f"stats.{key} is missing")
        metrics[metric] = number(stats[key], at, f"stats.{key}")
    if stats.get("ops") is not None:
        metrics["ops_per_second"] = number(stats["ops"], at, "stats.ops")
    elif metrics["time_mean_s"] > 0:
        metrics["ops_per_second"] = 1.0 / metrics["time_mean_s"]
    total = stats.get("total")
    duration = number(total, at, "stats.total") if total is not None else None

    group = bench.get("group")
    suite = group if isinstance(group, str) and group else fullname.split("::", 1)[0]
    extra: dict[str, str] = {}
    params = bench.get("params")
    if isinstance(params, dict):
        for key, value in params.items():
            if not _unstable(value):
                extra[str(key).replace("=", "_").replace("\x1f", " ")] = _text(value)
        param = bench.get("param")
        if any(_unstable(v) for v in params.values()) and isinstance(param, str) and param:
            extra.setdefault("param", param)
    elif params is not None:
        raise IngestError(at, f"params is {params!r}, not an object")
    if python:
        extra.setdefault("python", python)
    occurrence = seen[fullname]
    seen[fullname] += 1
    return Record(
        key=(
            node,
            run.git_commit,
            run.started_at.isoformat() if run.started_at else None,
            fullname,
            occurrence,
        ),
        name=test,
        suite=suite,
        ts=ts,
        kind="benchmark",
        status="passed",
        duration_s=duration,
        metrics=metrics,
        hardware="cpu",
        device=device,
        extra=extra,
        run=run,
        worker=worker,
        where=where,
    )
