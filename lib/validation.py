"""The one validation layer of every write: JSON bodies, result batches, heartbeats, verdicts.

Why one layer: before it, each write path checked what its author thought of, so a heartbeat's
``hostname`` could be an object (stored as text for a new worker, a DuckDB error for a known one)
and a batch's ``ts`` could be the year 9999. Here each write is a pydantic model in strict mode
(no "5" for 5, no true for 1, no unknown fields, finite numbers only, the documented ranges), and
the same models give the OpenAPI document its request schemas (``request_schema``), so what the
document promises and what the server accepts cannot drift apart. Every problem comes back as
``Invalid``: a list of ``where: problem`` lines for people, nothing written.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from lib.schema import DIRECTIONS, KINDS, REVIEW_STATUSES

MAX_DEPTH = 32
"""Deepest JSON nesting a write accepts; ours needs 4 (batch, results, result, metrics)."""
MAX_TEXT = 4096
"""Longest name, suite, dimension value or id (parametrised names run to hundreds of
characters, never to megabytes)."""
MAX_MESSAGE = 4000
"""A failure message is cut to this many characters (kept, not refused)."""
TS_FIRST = datetime(1970, 1, 1)
TS_END = datetime(2200, 1, 1)
"""Times are accepted from TS_FIRST up to, not including, TS_END (docs/ingest-formats.md)."""
EPOCH_MS_FROM = 1e11
"""Numeric times at or above this are milliseconds (1e11 s would be the year 5138)."""
_EPOCH_S_END = (TS_END - TS_FIRST).total_seconds()

STATUS_SPELLINGS: dict[str, str] = {
    "passed": "passed",
    "pass": "passed",
    "ok": "passed",
    "success": "passed",
    "succeeded": "passed",
    "successful": "passed",
    "failed": "failed",
    "fail": "failed",
    "failure": "failed",
    "error": "error",
    "errored": "error",
    "skipped": "skipped",
    "skip": "skipped",
    "ignored": "skipped",
    "disabled": "skipped",
}
"""A result's status as senders write it (any case, spaces around ignored) -> ours."""

ISO_PATTERN = (
    r"^(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?$"
)
"""The ISO-8601 forms a time may take: a date, or a date and time with an optional zone."""
_ISO = re.compile(ISO_PATTERN)
_ISO_ANY_YEAR = re.compile(r"^[0-9]{4}" + ISO_PATTERN.split(")", 1)[1])
EXTRA_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$"
"""Extra dimension keys (lib/dimensions.py): what can be filtered by as ``extra.<key>``."""


class Invalid(ValueError):
    """A write that breaks the rules: ``problems`` are (where, problem) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(
            f"{where}: {problem}" if where else problem for where, problem in problems[:5]
        )
        more = len(problems) - 5
        super().__init__(shown + (f" (and {more} more problems)" if more > 0 else ""))

    def details(self) -> list[dict[str, str]]:
        return [{"where": where, "problem": problem} for where, problem in self.problems]


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH (a 400: the body is not something we parse)."""


# ----------------------------------------------------------------------------- JSON bodies


def parse_json(body: bytes | str) -> Any:
    """Decode a JSON body, refusing nesting deeper than MAX_DEPTH and NaN / Infinity literals.

    Raises ``TooDeep`` or ``ValueError`` (with a message for people); never RecursionError.
    """
    try:
        value = json.loads(body or b"null", parse_constant=_no_constant)
    except RecursionError:
        raise TooDeep(
            f"The body is JSON nested far deeper than {MAX_DEPTH} levels; send at most "
            f"{MAX_DEPTH} levels of lists and objects."
        ) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"The body is not UTF-8 text (byte {exc.start}).") from None
    depth = _depth(value)
    if depth > MAX_DEPTH:
        raise TooDeep(
            f"The body is JSON nested {depth} levels deep; the limit is {MAX_DEPTH} levels of "
            "lists and objects."
        )
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send finite numbers or null")


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a scalar is 0, [] is 1)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest


# ----------------------------------------------------------------------------- field types


def _time(value: Any) -> datetime:
    """ISO-8601 text (no zone: UTC) or seconds / milliseconds since 1970, as naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if _ISO_ANY_YEAR.match(text) and not _ISO.match(text):
            raise ValueError(f"{_show(value)} is outside the years 1970 to 2199")
        if not _ISO.match(text):
            raise ValueError(
                f"{_show(value)} is not an ISO-8601 time such as 2026-01-31T12:00:00Z or 2026-01-31"
            )
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{_show(value)} is not a date that exists") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        seconds = value / 1000 if value >= EPOCH_MS_FROM else value
        if not 0 <= seconds < _EPOCH_S_END:
            raise ValueError(f"{value!r} is outside the years 1970 to 2199")
        moment = datetime.fromtimestamp(seconds, UTC)
    else:
        raise ValueError(
            f"{_show(value)} is not a time: send ISO-8601 text or seconds (milliseconds from "
            "100,000,000,000 up) since 1970"
        )
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if not TS_FIRST <= moment < TS_END:
        raise ValueError(f"{_show(value)} is outside the years 1970 to 2199")
    return moment


TIME_SCHEMA = {
    "description": "ISO-8601 (no zone: UTC) or seconds since 1970 (milliseconds from 1e11 up); "
    "years 1970 to 2199",
    "anyOf": [
        {"type": "string", "pattern": ISO_PATTERN},
        {"type": "number", "minimum": 0, "exclusiveMaximum": _EPOCH_S_END},
        {"type": "number", "minimum": EPOCH_MS_FROM, "exclusiveMaximum": _EPOCH_S_END * 1000},
    ],
}
Time = Annotated[datetime, BeforeValidator(_time), WithJsonSchema(TIME_SCHEMA)]


def _status(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in STATUS_SPELLINGS:
        return STATUS_SPELLINGS[value.strip().lower()]
    raise ValueError(f"{_show(value)} is not one of {', '.join(STATUS_SPELLINGS)}")


Status = Annotated[
    str,
    BeforeValidator(_status),
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(STATUS_SPELLINGS),
            "description": "any case; passed, failed, error, skipped or a spelling of one",
        }
    ),
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
Message = Annotated[str, BeforeValidator(lambda v: v[:MAX_MESSAGE] if isinstance(v, str) else v)]
MetricName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"\S")]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
ExtraKey = Annotated[str, StringConstraints(pattern=EXTRA_KEY_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ResultIn(_Strict):
    """One result of a JSON batch: the documented columns of docs/ingest-formats.md."""

    name: Name
    status: Status = "passed"
    ts: Time | None = Field(None, description="when it started (default: when received)")
    result_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)] | None = None
    kind: Literal[KINDS] | None = None
    suite: Text | None = None
    duration_s: Amount | None = None
    message: Message | None = None
    model: Text | None = None
    model_family: Text | None = None
    modality: Text | None = None
    hardware: Text | None = None
    device: Text | None = None
    batch_size: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    precision: Text | None = None
    worker: Text | None = None
    hostname: Text | None = None
    os: Text | None = None
    run: Text | None = None
    git_commit: Text | None = None
    git_branch: Text | None = None
    metrics: dict[MetricName, Amount] = Field(default_factory=dict)
    extra: dict[ExtraKey, Text] = Field(default_factory=dict)


class MetricSpec(_Strict):
    unit: Annotated[str, StringConstraints(max_length=64)] = ""
    direction: Literal[DIRECTIONS] = "none"


class BatchIn(_Strict):
    """A batch as an object: results plus the units and directions of new metrics."""

    results: Annotated[list[ResultIn], Field(min_length=1)]
    metrics: dict[MetricName, MetricSpec] = Field(default_factory=dict)


class HeartbeatIn(_Strict):
    """A worker's heartbeat; the first one registers the worker."""

    worker_id: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"\S")]
    hostname: Text | None = None
    hardware: Text | None = None
    device: Text | None = None
    os: Text | None = None
    heartbeat_interval_s: Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)] = 30.0
    cpu_percent: Percent | None = None
    memory_percent: Percent | None = None
    gpu_percent: Percent | None = None
    power_watts: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] | None = None
    current_task: Text | None = None


class VerdictIn(_Strict):
    """A person's verdict on a change point (the Regressions page)."""

    change_id: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    status: Literal[REVIEW_STATUSES]
    note: Annotated[str, StringConstraints(max_length=MAX_MESSAGE)] = ""
    reviewer: Annotated[str, StringConstraints(max_length=256)] = ""


# ----------------------------------------------------------------------------- checking


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(loc: tuple, prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem(error: dict) -> str:
    """One pydantic error said for people."""
    kind, given = error["type"], error.get("input")
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind == "string_type":
        return f"{_show(given)} is not text"
    if kind in ("float_type", "float_parsing"):
        return f"{_show(given)} is not a number"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"{_show(given)} is not a whole number"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{_show(given)} must be an object"
    if kind == "list_type":
        return f"{_show(given)} must be a list"
    if kind == "too_short":
        return f"must hold at least {error['ctx']['min_length']} item"
    if kind == "finite_number":
        return f"{_show(given)} is not a finite number"
    if kind == "string_too_long":
        return f"is {len(given):,} characters long; the limit is {error['ctx']['max_length']:,}"
    if kind == "string_pattern_mismatch" and error["loc"] and isinstance(error["loc"][-1], str):
        if error["ctx"]["pattern"] == EXTRA_KEY_PATTERN:
            return f"{_show(given)} is not a dimension key (letters, digits, _ . : -; at most 64)"
        return "is empty" if not str(given).strip() else f"{_show(given)} is not allowed here"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return message
    return f"{_show(given)}: {message[:1].lower()}{message[1:]}"


def _problems(exc: ValidationError, model: type[BaseModel], prefix: str) -> list[tuple[str, str]]:
    found = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "string_pattern_mismatch" and len(loc) >= 2 and loc[-1] == "[key]":
            loc = loc[:-1]
        loc = tuple(p for p in loc if p != "[key]")
        problem = _problem(error)
        if error["type"] == "extra_forbidden":
            fields = sorted(_fields_at(model, loc[:-1]))
            problem += f"; known: {', '.join(fields)}" if fields else ""
        found.append((_where(loc, prefix), problem))
    return found


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The fields of the model that sits at ``loc`` (for "known: ..." in messages)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def check(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """``data`` as a valid ``model``, or ``Invalid`` naming every problem."""
    if not isinstance(data, dict):
        raise Invalid([(where, f"must be a JSON object, not {_json_type(data)}")])
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_problems(exc, model, where)) from None
    return value


_METRICS = TypeAdapter(dict[MetricName, MetricSpec])


def batch_parts(payload: Any) -> tuple[list[Any], dict[str, MetricSpec]]:
    """The result objects of a JSON batch (each still to be checked with ``result``, so one bad
    object is that object's problem) and the metrics it declares: a list of results, or
    ``{"results": [...], "metrics": {...}}``. A payload of another shape is ``Invalid``."""
    if isinstance(payload, dict):
        unknown = sorted(set(payload) - {"results", "metrics"})
        if unknown:
            raise Invalid(
                [
                    (key, "is not a field of this request; known: metrics, results")
                    for key in unknown
                ]
            )
        items = payload.get("results")
        if not isinstance(items, list):
            raise Invalid([("results", "is missing" if items is None else "must be a list")])
        try:
            metrics = _METRICS.validate_python(payload.get("metrics") or {}, strict=True)
        except ValidationError as exc:
            raise Invalid(_problems(exc, MetricSpec, "metrics")) from None
    elif isinstance(payload, list):
        items, metrics = payload, {}
    else:
        raise Invalid(
            [
                (
                    "",
                    f'must be a list of results, or an object with "results": [...], not '
                    f"{_json_type(payload)}",
                )
            ]
        )
    if not items:
        raise Invalid([("results", "holds no results")])
    return items, metrics


def result(item: Any, where: str) -> ResultIn:
    """One result object of a batch, or ``Invalid`` naming each of its problems."""
    return check(ResultIn, item, where)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true or false", str: "text", int: "a number", float: "a number"}.get(
        type(value), "a list" if isinstance(value, list) else type(value).__name__
    )


def request_schema(model: type[BaseModel]) -> dict:
    """The model's JSON Schema for the OpenAPI document (definitions inlined, no titles)."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})
    return _clean(_inline(schema, defs))


def batch_schema() -> dict:
    results = request_schema(BatchIn)
    return {
        "oneOf": [
            {**results["properties"]["results"], "description": "a list of results"},
            {**results, "description": "results plus the unit and direction of new metrics"},
        ]
    }


def _inline(node: Any, defs: dict) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _clean(node: Any) -> Any:
    """No titles; a dict whose keys follow a pattern takes no other keys (pydantic writes
    patternProperties, which alone would let any key through)."""
    if isinstance(node, dict):
        out = {k: _clean(v) for k, v in node.items() if k != "title"}
        if "patternProperties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node
