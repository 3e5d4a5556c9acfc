"""Results posted as JSON (the REST API): a list of objects in the documented columns.

Each object is checked field by field, so an error names its place: ``results[3].metrics.
latency_ms: 'fast' is not a number``. A bad object is left out and listed (the sink's
``reject``) while the others go in; a body that is not a list of results at all writes nothing,
and so does any bad object with ``strict``. Identity: ``result_id`` when the sender gives one,
otherwise a hash of the object's canonical JSON, so a worker that retries a request adds nothing
(and a corrected object sent again adds just itself).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lib.ingest.model import (
    IngestError,
    MetricDef,
    Record,
    RunInfo,
    WorkerInfo,
    from_epoch,
    parse_timestamp,
)
from lib.ingest.sink import Sink
from lib.ingest.tabular import FIELDS, infer_metric
from lib.schema import KINDS, STATUSES

TEXT_FIELDS = tuple(
    f for f in FIELDS if f not in ("ts", "status", "result_id", "kind", "duration_s", "batch_size")
)
"""The documented columns (the same as for CSV and JSON Lines) that hold text."""
KNOWN = {*FIELDS, "metrics", "extra"}
STATUS_WORDS = {
    "pass": "passed",
    "ok": "passed",
    "success": "passed",
    "fail": "failed",
    "failure": "failed",
    "errored": "error",
    "skip": "skipped",
}


def _fail(where: str, problem: str) -> None:
    raise IngestError(where, problem)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(where, f"{value!r} is not a number")
    if not math.isfinite(value):
        _fail(where, f"{value!r} is not a finite number")
    return float(value)


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value, where)
    number = _number(value, where)
    return from_epoch(number, "ms" if number >= 1e11 else "s")


def records(
    payload: Any, source: str, now: datetime, reject: Callable[[IngestError], None] | None = None
) -> tuple[list[Record], list[MetricDef]]:
    """Records and the metric definitions they need, from a decoded JSON payload: a list of
    result objects, or ``{"results": [...], "metrics": {name: {unit, direction}}}``.

    A payload of the wrong shape raises; a bad result object raises too, unless ``reject``
    takes its error (then it is left out and the others are returned)."""
    declared: dict[str, dict] = {}
    if isinstance(payload, dict):
        items = payload.get("results")
        declared = payload.get("metrics") or {}
        if not isinstance(declared, dict):
            _fail(f"{source} metrics", "must be an object of {name: {unit, direction}}")
    else:
        items = payload
    if not isinstance(items, list):
        _fail(source, 'must be a list of results, or an object with "results": [...]')
    if not items:
        _fail(source, "holds no results")
    out: list[Record] = []
    metrics: dict[str, MetricDef] = {}
    seen: Counter[str] = Counter()
    for index, item in enumerate(items):
        try:
            record = _record(item, index, source, now, seen)
        except IngestError as exc:
            if reject is None:
                raise
            reject(exc)
            continue
        for name in record.metrics:
            if name not in metrics:
                spec = declared.get(name)
                metrics[name] = (
                    MetricDef(name, str(spec.get("unit", "")), str(spec.get("direction", "none")))
                    if isinstance(spec, dict)
                    else infer_metric(name)
                )
        out.append(record)
    return out, list(metrics.values())


def _record(item: Any, index: int, source: str, now: datetime, seen: Counter[str]) -> Record:
    """One result object, checked field by field."""
    where = f"{source} results[{index}]"
    if not isinstance(item, dict):
        _fail(where, "must be an object")
    unknown = sorted(set(item) - KNOWN)
    if unknown:
        _fail(
            where,
            f"has unknown fields {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(KNOWN))}",
        )
    for field in TEXT_FIELDS:
        if item.get(field) is not None and not isinstance(item[field], str):
            _fail(f"{where}.{field}", f"{item[field]!r} is not text")
    if not item.get("name"):
        _fail(f"{where}.name", "is missing")
    status = str(item.get("status", "passed")).strip().lower()
    status = STATUS_WORDS.get(status, status)
    if status not in STATUSES:
        _fail(f"{where}.status", f"{item.get('status')!r} is not one of {', '.join(STATUSES)}")
    kind = item.get("kind")
    if kind is not None and kind not in KINDS:
        _fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    duration = item.get("duration_s")
    if duration is not None:
        duration = _number(duration, f"{where}.duration_s")
        if duration < 0:
            _fail(f"{where}.duration_s", f"{duration} is negative")
    batch = item.get("batch_size")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)):
        _fail(f"{where}.batch_size", f"{batch!r} is not a whole number")
    values = item.get("metrics") or {}
    if not isinstance(values, dict):
        _fail(f"{where}.metrics", "must be an object of {name: number}")
    for name, value in values.items():
        _number(value, f"{where}.metrics.{name}")
    extra = item.get("extra") or {}
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        _fail(f"{where}.extra", "must be an object of {name: text}")
    ts = _timestamp(item["ts"], f"{where}.ts") if item.get("ts") is not None else now
    identity = (
        item.get("result_id")
        or hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
    )
    seen[str(identity)] += 1
    worker = item.get("worker")
    run_key = item.get("run") or item.get("git_commit")
    return Record(
        key=(str(identity), seen[str(identity)]),
        name=item["name"],
        ts=ts,
        status=status,
        kind=kind or ("benchmark" if values else None),
        suite=item.get("suite"),
        duration_s=duration,
        message=item.get("message"),
        metrics={k: float(v) for k, v in values.items()},
        model=item.get("model"),
        model_family=item.get("model_family"),
        modality=item.get("modality"),
        hardware=item.get("hardware"),
        device=item.get("device"),
        batch_size=batch,
        precision=item.get("precision"),
        extra=dict(extra),
        run=RunInfo(
            key=run_key,
            name=item.get("run"),
            git_commit=item.get("git_commit"),
            git_branch=item.get("git_branch"),
        )
        if run_key
        else None,
        worker=WorkerInfo(
            worker,
            hostname=item.get("hostname") or worker,
            hardware=item.get("hardware"),
            device=item.get("device"),
            os=item.get("os"),
        )
        if worker
        else None,
        where=f"results[{index}]",
    )


def ingest(sink: Sink, payload: Any, source: str, now: datetime) -> None:
    """Check every result object; the bad ones are the sink's rejections (with ``strict``, the
    first fails the request before anything is written), the good ones are written."""
    found, metrics = records(
        payload, source, now, lambda exc: sink.reject(exc.where, exc.problem, exc.fix)
    )
    sink.define(metrics)
    for record in found:
        sink.add(record)
