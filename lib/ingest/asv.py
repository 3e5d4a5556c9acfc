"""asv (airspeed velocity) results, format version 2.

A result file ``results/<machine>/<commit8>-<env>.json`` holds one machine's run of every
benchmark on one commit in one environment: ``commit_hash``, ``env_name``, ``date`` (the commit's
date, epoch ms), ``params`` (machine, python, ...), ``result_columns`` and ``results``
{benchmark: [one value per column]}; asv drops trailing empty columns, so a row may be shorter
than ``result_columns``. Read beside it when the file is on disk (an upload has neither, and goes
in without them): ``machine.json`` in the same folder (machine name, cpu, os) and
``benchmarks.json`` one folder up (each benchmark's unit and parameter names).

A parameterised benchmark's ``result`` is a list over the cartesian product of its ``params``
(a list of lists of value reprs, the order of ``itertools.product``); each combination is a result.
asv writes null for a combination that failed and NaN for one that was skipped
(``NotImplementedError``), and a null ``result`` when the whole benchmark failed: these become
results with status "error" or "skipped" and no metric, so no NaN is ever stored.

Metric from the benchmark's unit: "seconds" is time_s, "bytes" memory_bytes (both lower is better);
any other unit is ``value_<unit slug>`` with direction "none" (asv does not say which way is
better). Without benchmarks.json the unit follows asv's naming: time_* seconds, mem_* and
peakmem_* bytes, others unknown (metric "value"); parameters are then named param1, param2, ...

Time: a result's ``ts`` is the commit's ``date``, not the moment it was measured. asv runs old
commits long after they were made (the macOS results in ../shared/data measure two years of
Django commits within ten minutes), and its graphs are by commit date, so trends are too. The
measuring time is the run's started_at (the earliest ``started_at`` of the file).

Series: suite = the benchmark's module and class, name = its method; ``extra`` holds the parameter
combination (quotes of string reprs removed), the asv machine name (asv machines are named on
purpose and results on two machines are two lines in asv's own graphs) and the environment name
(e.g. conda-py3.12). hardware = "cpu", device = the machine's cpu when asv recorded it.

Identity: (machine, commit_hash, env_name, benchmark, parameter combination), so a results folder
that has grown adds only the new files' results.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from lib.ingest.model import (
    IngestError,
    MetricDef,
    Record,
    RunInfo,
    Source,
    WorkerInfo,
    from_epoch,
)
from lib.ingest.options import IngestOptions
from lib.ingest.pytest_benchmark import load_json, number
from lib.ingest.sink import Sink

TIME = MetricDef("time_s", "s", "lower", "Time per call (asv time_* benchmark)")
MEMORY = MetricDef("memory_bytes", "B", "lower", "Memory (asv mem_* / peakmem_* benchmark)")


def unit_metric(unit: str | None) -> MetricDef:
    if unit == "seconds":
        return TIME
    if unit == "bytes":
        return MEMORY
    slug = re.sub(r"[^0-9a-z]+", "_", (unit or "").lower().replace("%", "percent")).strip("_")
    if not slug:
        return MetricDef("value", "", "none", "Value of an asv benchmark without a unit")
    return MetricDef(f"value_{slug}", unit or "", "none", f"asv value in {unit}")


def _unit_from_name(benchmark: str) -> str | None:
    method = benchmark.rsplit(".", 1)[-1]
    if method.startswith("time_"):
        return "seconds"
    if method.startswith(("mem_", "peakmem_")):
        return "bytes"
    return None


def _side_file(path: Path, problem_where: str) -> dict:
    """machine.json or benchmarks.json when present; broken is an error, absent is {}."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(
            str(path),
            f"cannot be read ({exc})",
            f"It is read with {problem_where}; fix or remove it.",
        ) from None
    if not isinstance(data, dict):
        raise IngestError(str(path), "is not a JSON object")
    return data


def _epoch_ms(value: Any, where: str, field: str) -> datetime:
    ms = number(value, where, field)
    try:
        return from_epoch(ms, "ms")
    except (OverflowError, OSError, ValueError):
        raise IngestError(where, f"{field} {value!r} is not epoch milliseconds") from None


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text.replace("\x1f", " ")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    data = load_json(source)
    name = source.name
    if not isinstance(data, dict):
        raise IngestError(name, f"holds a JSON {type(data).__name__}, not asv results")
    version = data.get("version")
    if version != 2:
        raise IngestError(
            name,
            f"is asv result format version {version!r}; only version 2 is read",
            "Run `asv update` in the project to convert old results.",
        )
    commit = data.get("commit_hash")
    if not isinstance(commit, str) or not commit:
        raise IngestError(name, f"commit_hash is {commit!r}, not a commit hash")
    env = data.get("env_name")
    if not isinstance(env, str):
        raise IngestError(name, f"env_name is {env!r}, not text")
    columns = data.get("result_columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise IngestError(name, "result_columns is missing or not a list of column names")
    if "result" not in columns:
        raise IngestError(name, "result_columns has no 'result' column")
    results = data.get("results")
    if not isinstance(results, dict):
        raise IngestError(name, "results is missing or not an object")
    if not results:
        raise IngestError(name, "results is empty", "asv recorded no benchmark in this run.")
    env_params = data.get("params") if isinstance(data.get("params"), dict) else {}
    commit_date = _epoch_ms(data["date"], name, "date") if data.get("date") is not None else None

    machine_info: dict = {}
    benchmarks: dict = {}
    if source.path is not None:
        folder = Path(source.path).parent
        machine_info = _side_file(folder / "machine.json", name)
        benchmarks = _side_file(folder.parent / "benchmarks.json", name)
    machine = (
        _text(env_params.get("machine"))
        or _text(machine_info.get("machine"))
        or (Path(source.path).parent.name if source.path is not None else None)
    )
    cpu = _text(env_params.get("cpu")) or _text(machine_info.get("cpu"))
    system = _text(env_params.get("os")) or _text(machine_info.get("os"))
    worker = (
        WorkerInfo(machine, hostname=machine, hardware="cpu", device=cpu, os=system)
        if machine
        else None
    )
    col = {column: i for i, column in enumerate(columns)}

    rows = []
    starts = []
    for bench, row in results.items():
        at = f"{name} benchmark {bench!r}"
        if not isinstance(row, list):
            raise IngestError(at, f"is {row!r}, not a list of column values")
        if len(row) > len(columns):
            raise IngestError(at, f"has {len(row)} values for {len(columns)} result_columns")
        started = row[col["started_at"]] if len(row) > col.get("started_at", len(row)) else None
        if started is not None:
            starts.append(_epoch_ms(started, at, "started_at"))
        rows.append((bench, row, started))
    run = RunInfo(
        key=f"{machine}|{commit}|{env}",
        name=f"asv {machine or '?'} {env} {commit[:8]}",
        started_at=min(starts) if starts else None,
        git_commit=commit,
    )
    defined: set[str] = set()
    for bench, row, started in rows:
        meta = benchmarks.get(bench) if isinstance(benchmarks.get(bench), dict) else {}
        metric = unit_metric(_text(meta.get("unit")) or _unit_from_name(bench))
        if metric.name not in defined:
            sink.define([metric])
            defined.add(metric.name)
        for record in _records(
            name,
            bench,
            row,
            col,
            meta,
            metric,
            commit_date,
            started,
            machine,
            env,
            commit,
            cpu,
            run,
            worker,
        ):
            sink.add(record)


def _value(row: list, col: dict[str, int], column: str) -> Any:
    index = col.get(column)
    return row[index] if index is not None and index < len(row) else None


def _records(
    name: str,
    bench: str,
    row: list,
    col: dict[str, int],
    meta: dict,
    metric: MetricDef,
    commit_date: datetime | None,
    started: Any,
    machine: str | None,
    env: str,
    commit: str,
    cpu: str | None,
    run: RunInfo,
    worker: WorkerInfo | None,
):
    at = f"{name} benchmark {bench!r}"
    params = _value(row, col, "params") or []
    if not isinstance(params, list) or not all(isinstance(p, list) for p in params):
        raise IngestError(at, f"params is {params!r}, not a list of value lists")
    combos = list(itertools.product(*params)) if params else [()]
    result = _value(row, col, "result")
    if result is None:
        values: list = [None] * len(combos)
    elif isinstance(result, list):
        values = result
    else:
        raise IngestError(at, f"result is {result!r}, not a list of values")
    if len(values) != len(combos):
        raise IngestError(
            at, f"result has {len(values)} values but its params make {len(combos)} combinations"
        )
    names = meta.get("param_names")
    if not (isinstance(names, list) and len(names) == len(params)):
        names = [f"param{i}" for i in range(1, len(params) + 1)]
    positive = metric in (TIME, MEMORY)
    if commit_date is not None:
        ts = commit_date
    elif started is not None:
        ts = from_epoch(float(started), "ms")
    else:
        raise IngestError(at, "has no started_at, and the file has no date")
    duration = _value(row, col, "duration")
    duration_s = (
        number(duration, at, "duration") if duration is not None and len(combos) == 1 else None
    )
    suite, _, method = bench.rpartition(".")
    for combo, value in zip(combos, values, strict=True):
        label = ", ".join(str(v) for v in combo)
        where = f"benchmark {bench!r}" + (f" [{label}]" if combo else "")
        there = f"{name} {where}"
        extra = {
            str(k).replace("=", "_"): _param_text(v) for k, v in zip(names, combo, strict=True)
        }
        if machine:
            extra.setdefault("machine", machine)
        extra.setdefault("env", env)
        status, message, metrics = "passed", None, {}
        if value is None:
            status, message = "error", "asv recorded no value: the benchmark failed"
        elif isinstance(value, float) and math.isnan(value):
            status, message = "skipped", "asv recorded NaN: the benchmark was skipped"
        else:
            metrics = {metric.name: number(value, there, "result", negative_ok=not positive)}
        yield Record(
            key=(machine, commit, env, bench, label),
            name=method or bench,
            suite=suite or None,
            ts=ts,
            kind="benchmark",
            status=status,
            duration_s=duration_s,
            message=message,
            metrics=metrics,
            hardware="cpu",
            device=cpu,
            extra=extra,
            run=run,
            worker=worker,
            where=where,
        )
