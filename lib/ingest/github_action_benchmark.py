"""github-action-benchmark history (``data.js`` on the gh-pages branch).

The file is ``window.BENCHMARK_DATA = `` followed by JSON: ``entries`` maps a suite name to its
entries, one per CI run, each with ``commit`` {id, message, timestamp, url, author, ...},
``date`` (epoch milliseconds), ``tool`` and ``benches`` [{name, value, unit, range, extra}].
Plain JSON with the same shape (without the assignment) is read too.

Each (entry, bench) is one result, at the entry's ``date``. Its metric comes from the unit:

- a rate ("iter/sec", "ops/sec", "ops/s", ...) is ops_per_second (higher is better);
- a time per iteration or operation ("ns/iter", "ms/iter", "ns/op", ...) is time_per_iter_ns
  (lower), converted to nanoseconds: googlecpp writes each benchmark in its own time unit, so one
  suite mixes "ns/iter" and "ms/iter";
- any other unit is ``value_<unit slug>`` ("B/op" becomes value_b_op) with the direction of the
  tool, as github-action-benchmark itself decides it: customBiggerIsBetter, pytest and
  benchmarkjs higher, everything else (cargo, go, googlecpp, catch2, julia, jmh,
  benchmarkdotnet, benchmarkluau, customSmallerIsBetter) lower.

Times and rates must not be negative; a custom value may be. ``range`` and ``extra`` (e.g.
"stddev: 0.06" and "mean: 850 msec\\nrounds: 5") are kept as the result's message.

Series: suite = the suite name, name = the bench name, hardware = "cpu" (no device: the file does
not say which runner). Run = one entry: its commit, and git_branch "pull request" when the commit
URL points into a pull request (``/pull/``); otherwise the branch is not recorded in the file and
stays empty.

Identity: (suite, commit id, entry date, bench name, occurrence of that name within the entry),
so a data.js that has grown by new entries adds exactly their results.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from lib.ingest.model import IngestError, MetricDef, Record, RunInfo, Source, from_epoch
from lib.ingest.options import IngestOptions
from lib.ingest.pytest_benchmark import number
from lib.ingest.sink import Sink

PREFIX = "window.BENCHMARK_DATA"
OPS = MetricDef("ops_per_second", "ops/s", "higher", "Operations (calls) per second")
TIME_PER_ITER = MetricDef("time_per_iter_ns", "ns", "lower", "Time per iteration")
BIGGER_IS_BETTER = {"customBiggerIsBetter": True, "pytest": True, "benchmarkjs": True}
"""Tools whose values are better when larger; every other tool's are better when smaller."""
_RATE = re.compile(
    r"^(iter|iters|iteration|iterations|op|ops|operation|operations|runs?)"
    r"\s*/\s*(s|sec|secs|second|seconds)$",
    re.IGNORECASE,
)
_TIME_PER = re.compile(
    r"^(ns|nsec|us|µs|μs|usec|ms|msec|s|sec)\s*/\s*"
    r"(iter|iteration|op|operation)$",
    re.IGNORECASE,
)
_TO_NS = {
    "ns": 1.0,
    "nsec": 1.0,
    "us": 1e3,
    "µs": 1e3,
    "μs": 1e3,
    "usec": 1e3,
    "ms": 1e6,
    "msec": 1e6,
    "s": 1e9,
    "sec": 1e9,
}


def unit_metric(unit: str, tool: str | None) -> tuple[MetricDef, float, bool]:
    """The metric a unit maps to, the factor to apply to values, and whether < 0 is an error."""
    text = unit.strip()
    if _RATE.match(text):
        return OPS, 1.0, True
    match = _TIME_PER.match(text)
    if match:
        return TIME_PER_ITER, _TO_NS[match.group(1).lower()], True
    slug = re.sub(r"[^0-9a-z]+", "_", text.lower().replace("%", "percent")).strip("_")
    direction = "higher" if BIGGER_IS_BETTER.get(tool or "", False) else "lower"
    metric = f"value_{slug}" if slug else "value"
    return MetricDef(metric, text, direction, f"Value in {text or 'no unit'}"), 1.0, False


def _load(source: Source) -> Any:
    text = source.read_text()
    start = len(text) - len(text.lstrip())
    if text.startswith(PREFIX, start):
        equals = text.find("=", start + len(PREFIX))
        if equals < 0 or text[start + len(PREFIX) : equals].strip():
            raise IngestError(f"{source.name} line 1", f"does not continue with '=' after {PREFIX}")
        start = equals + 1
    while start < len(text) and text[start].isspace():
        start += 1
    try:
        data, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{source.name} line {exc.lineno}, column {exc.colno}",
            f"is not valid JSON after {PREFIX} = ({exc.msg})",
            "The file may be truncated.",
        ) from None
    rest = text[end:].strip().lstrip(";").strip()
    if rest:
        line = text.count("\n", 0, end) + 1
        raise IngestError(
            f"{source.name} line {line}", f"has text after the JSON object: {rest[:40]!r}"
        )
    return data


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    data = _load(source)
    name = source.name
    if not isinstance(data, dict):
        raise IngestError(name, f"holds a JSON {type(data).__name__}, not an object")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise IngestError(name, "entries is missing or not an object of suites")
    if not any(isinstance(v, list) and v for v in entries.values()):
        raise IngestError(name, "entries holds no benchmark runs")
    defined: set[str] = set()
    for suite, runs in entries.items():
        if not isinstance(runs, list):
            raise IngestError(f"{name} suite {suite!r}", "is not a list of entries")
        for number_, entry in enumerate(runs, start=1):
            _entry(name, suite, number_, entry, sink, defined)


def _entry(name: str, suite: str, index: int, entry: Any, sink: Sink, defined: set[str]) -> None:
    at = f"{name} suite {suite!r} entry {index}"
    if not isinstance(entry, dict):
        raise IngestError(at, f"is {entry!r}, not an object")
    commit = entry.get("commit")
    if not isinstance(commit, dict):
        raise IngestError(at, "commit is missing or not an object")
    commit_id = commit.get("id")
    if not isinstance(commit_id, str) or not commit_id:
        raise IngestError(at, f"commit.id is {commit_id!r}, not a commit id")
    if "date" not in entry:
        raise IngestError(at, "date is missing")
    date = number(entry["date"], at, "date")
    try:
        ts = from_epoch(date, "ms")
    except (OverflowError, OSError, ValueError):
        raise IngestError(at, f"date {entry['date']!r} is not epoch milliseconds") from None
    tool = _text(entry.get("tool"))
    benches = entry.get("benches")
    if not isinstance(benches, list):
        raise IngestError(at, "benches is missing or not a list")
    if not benches:
        raise IngestError(at, "benches is an empty list")
    url = _text(commit.get("url")) or ""
    date_key = int(date) if float(date).is_integer() else date
    run = RunInfo(
        key=f"{suite}|{commit_id}|{date_key}",
        name=f"{suite} {commit_id[:10]}",
        started_at=ts,
        git_commit=commit_id,
        git_branch="pull request" if "/pull/" in url else None,
    )
    seen: Counter[str] = Counter()
    for position, bench in enumerate(benches, start=1):
        if not isinstance(bench, dict):
            raise IngestError(f"{at}, bench {position}", f"is {bench!r}, not an object")
        bench_name = bench.get("name")
        if not isinstance(bench_name, str) or not bench_name:
            raise IngestError(f"{at}, bench {position}", f"name is {bench_name!r}")
        where = f"suite {suite!r} entry {index}, bench {bench_name!r}"
        there = f"{name} {where}"
        unit = bench.get("unit")
        if not isinstance(unit, str):
            raise IngestError(there, f"unit is {unit!r}, not text")
        if "value" not in bench:
            raise IngestError(there, "value is missing")
        metric, factor, positive = unit_metric(unit, tool)
        value = number(bench["value"], there, "value", negative_ok=not positive) * factor
        if metric.name not in defined:
            sink.define([metric])
            defined.add(metric.name)
        message = "\n".join(t for t in (_text(bench.get("range")), _text(bench.get("extra"))) if t)
        occurrence = seen[bench_name]
        seen[bench_name] += 1
        sink.add(
            Record(
                key=(suite, commit_id, date_key, bench_name, occurrence),
                name=bench_name,
                suite=suite,
                ts=ts,
                kind="benchmark",
                status="passed",
                message=message or None,
                metrics={metric.name: value},
                hardware="cpu",
                run=run,
                where=where,
            )
        )
