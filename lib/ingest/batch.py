"""Results posted as JSON (the REST API): a list of objects in the documented columns.

Every field is checked by the one validation layer (``lib.validation``: types, ranges, the years
1970 to 2199), object by object, so an error names its place: ``results[3].metrics.latency_ms:
'fast' is not a number``. A bad object is left out and listed (the sink's ``reject``) while the
others go in; a body that is not a list of results at all writes nothing, and so does any bad
object with ``strict``. Identity: ``result_id`` when the sender gives one, otherwise a hash of
the object's canonical JSON, so a worker that retries a request adds nothing (and a corrected
object sent again adds just itself).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lib import validation
from lib.ingest.model import IngestError, MetricDef, Record, RunInfo, WorkerInfo
from lib.ingest.sink import Sink
from lib.ingest.tabular import infer_metric


def records(
    payload: Any, source: str, now: datetime, reject: Callable[[IngestError], None] | None = None
) -> tuple[list[Record], list[MetricDef]]:
    """Records and the metric definitions they need, from a decoded JSON payload: a list of
    result objects, or ``{"results": [...], "metrics": {name: {unit, direction}}}``.

    A payload of the wrong shape raises; a bad result object raises too, unless ``reject``
    takes its error (then it is left out and the others are returned)."""
    try:
        items, declared = validation.batch_parts(payload)
    except validation.Invalid as exc:
        raise IngestError(source, str(exc)) from None
    out: list[Record] = []
    metrics: dict[str, MetricDef] = {}
    seen: Counter[str] = Counter()
    for index, item in enumerate(items):
        try:
            result = validation.result(item, f"results[{index}]")
        except validation.Invalid as exc:
            where, problem = exc.problems[0] if len(exc.problems) == 1 else ("", str(exc))
            error = IngestError(f"{source} {where}".strip(), problem)
            if reject is None:
                raise error from None
            reject(error)
            continue
        for name in result.metrics:
            if name not in metrics:
                spec = declared.get(name)
                metrics[name] = (
                    MetricDef(name, spec.unit, spec.direction) if spec else infer_metric(name)
                )
        identity = (
            result.result_id
            or hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
        )
        seen[identity] += 1
        run_key = result.run or result.git_commit
        out.append(
            Record(
                key=(identity, seen[identity]),
                name=result.name,
                ts=result.ts or now,
                status=result.status,
                kind=result.kind or ("benchmark" if result.metrics else None),
                suite=result.suite,
                duration_s=result.duration_s,
                message=result.message,
                metrics=dict(result.metrics),
                model=result.model,
                model_family=result.model_family,
                modality=result.modality,
                hardware=result.hardware,
                device=result.device,
                batch_size=result.batch_size,
                precision=result.precision,
                extra=dict(result.extra),
                run=RunInfo(
                    key=run_key,
                    name=result.run,
                    git_commit=result.git_commit,
                    git_branch=result.git_branch,
                )
                if run_key
                else None,
                worker=WorkerInfo(
                    result.worker,
                    hostname=result.hostname or result.worker,
                    hardware=result.hardware,
                    device=result.device,
                    os=result.os,
                )
                if result.worker
                else None,
                where=f"results[{index}]",
            )
        )
    return out, list(metrics.values())


def ingest(sink: Sink, payload: Any, source: str, now: datetime) -> None:
    """Check every result object; the bad ones are the sink's rejections (with ``strict``, the
    first fails the request before anything is written), the good ones are written."""
    found, metrics = records(
        payload, source, now, lambda exc: sink.reject(exc.where, exc.problem, exc.fix)
    )
    sink.define(metrics)
    for record in found:
        sink.add(record)
