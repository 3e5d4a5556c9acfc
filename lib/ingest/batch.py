"""Results posted as JSON (the REST API): a list of objects in the documented columns.

Every field is checked by the one validation layer (``lib.validation.batch``: types, ranges, the
years 1970 to 2199), so an error names its place: ``results[3].metrics.latency_ms: 'fast' is not
a number``. Identity: ``result_id`` when the sender gives one, otherwise a hash of the object's
canonical JSON, so a worker that retries a request adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime
from typing import Any

from lib import validation
from lib.ingest.model import IngestError, MetricDef, Record, RunInfo, WorkerInfo
from lib.ingest.sink import Sink
from lib.ingest.tabular import infer_metric


def records(
    payload: Any, source: str, now: datetime, checked: validation.BatchIn | None = None
) -> tuple[list[Record], list[MetricDef]]:
    """Records and the metric definitions they need, from a decoded JSON payload: a list of
    result objects, or ``{"results": [...], "metrics": {name: {unit, direction}}}``.
    ``checked`` is the payload already validated (the API validates before it writes)."""
    batch = checked
    if batch is None:
        try:
            batch = validation.batch(payload)
        except validation.Invalid as exc:
            raise IngestError(source, str(exc)) from None
    items = payload if isinstance(payload, list) else payload["results"]
    out: list[Record] = []
    metrics: dict[str, MetricDef] = {}
    seen: Counter[str] = Counter()
    for index, (item, result) in enumerate(zip(items, batch.results, strict=True)):
        for name in result.metrics:
            if name not in metrics:
                spec = batch.metrics.get(name)
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


def ingest(
    sink: Sink,
    payload: Any,
    source: str,
    now: datetime,
    checked: validation.BatchIn | None = None,
) -> None:
    """Validate everything first, then write: a bad result anywhere writes nothing."""
    found, metrics = records(payload, source, now, checked)
    sink.define(metrics)
    for record in found:
        sink.add(record)
