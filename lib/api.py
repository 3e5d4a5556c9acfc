"""The REST API: the seed's endpoints, answered from the same queries as the pages.

Every answer has the seed's envelope ``{"status": "ok", "timestamp", "data", "api_version": "1.0"}``
and every error one shape ``{"status": "error", "timestamp", "error": {"code", "type", "message",
"details"}, "api_version": "1.0"}`` with the right HTTP status. Filters use the dashboard's link
parameters (``range``, ``from``, ``to``, ``hardware``, ``model``, ``batch_size``, ``precision``,
any other dimension), so a page's link and its JSON twin ask the same question. GET answers are
cached for ``api_cache_time`` seconds under a key of the path, every parameter and the store's
write token (a write is visible at once). Writes need ``Authorization: Bearer <api_token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from lib import dimensions, events, health, performance, queries, regressions, validation
from lib import openapi as document
from lib.config import Settings, load_settings, read_secrets_files
from lib.ingest import IngestOptions, ingest_bytes
from lib.ingest import batch as json_batch
from lib.ingest.driver import FileReport
from lib.ingest.driver import fill as fill_report
from lib.ingest.model import IngestError
from lib.ingest.sink import Sink
from lib.spec import DEFAULT_RANGE, RANGE_CHOICES, QuerySpec, SpecError
from lib.store import Store, StoreError, open_store

API_VERSION = document.API_VERSION
MAX_PAGE_SIZE = document.MAX_PAGE_SIZE
MAX_HEARTBEAT_BYTES = 1024 * 1024
"""A heartbeat is a few hundred bytes; a larger body is refused (413) before it is read."""
log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, code: int, message: str, details: Any = None, kind: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.kind = kind or {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
            422: "invalid_results",
            503: "unavailable",
        }.get(code, "error")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stamp() -> str:
    return events.now_iso()


def envelope(data: Any) -> dict:
    return {"status": "ok", "timestamp": _stamp(), "data": data, "api_version": API_VERSION}


def error_body(code: int, kind: str, message: str, details: Any = None) -> dict:
    return {
        "status": "error",
        "timestamp": _stamp(),
        "error": {"code": code, "type": kind, "message": message, "details": details},
        "api_version": API_VERSION,
    }


def jsonable(value: Any) -> Any:
    """JSON-safe: ISO-8601 times, plain numbers, null for NaN, ids as strings (64-bit ids do
    not survive JavaScript numbers)."""
    if isinstance(value, pd.DataFrame):
        frame = value.copy()
        for column in frame.columns:
            if str(column).endswith("_id") and frame[column].dtype.kind in "iu":
                frame[column] = frame[column].astype(str)
        return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ----------------------------------------------------------------------------- state


class _TTLCache:
    """A small LRU with expiry: enough for answers that live seconds."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class ApiState:
    """What the endpoints share: settings (re-read on every request), the store, a cache."""

    def __init__(self, settings: Callable[[], Settings] | None = None) -> None:
        self._settings = settings or (lambda: load_settings(secrets=read_secrets_files()))
        self.cache = _TTLCache()

    @property
    def settings(self) -> Settings:
        return self._settings()

    def store(self) -> Store:
        try:
            return open_store(self.settings.db_path)
        except StoreError as exc:
            raise ApiError(503, str(exc)) from None


# ----------------------------------------------------------------------------- parameters

_WHOLE = re.compile(r"-?[0-9]{1,19}")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw.strip()):
        raise ApiError(
            400,
            f"{name}={raw!r} is not a whole number",
            {"parameter": name, "allowed": f"{low} to {high}"},
        )
    value = int(raw.strip())
    if not low <= value <= high:
        raise ApiError(
            400,
            f"{name}={value} is out of range",
            {"parameter": name, "allowed": f"{low} to {high}"},
        )
    return value


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = request.query_params.get(name) or default
    if raw not in allowed:
        raise ApiError(
            400,
            f"{name}={raw!r} is not one of {', '.join(allowed)}",
            {"parameter": name, "allowed": list(allowed)},
        )
    return raw


def _flag(request: Request, name: str) -> bool:
    raw = (request.query_params.get(name) or "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ApiError(400, f"{name}={raw!r} is not true or false", {"parameter": name})


def _spec(request: Request, own: tuple[str, ...] = ()) -> QuerySpec:
    """The query spec of the link parameters; ``own`` names the endpoint's parameters that
    share a name with a dimension (``kind`` of /api/regressions), which are not filters."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in own:
            params.setdefault(key, []).extend(v for v in value.split(",") if v)
    _choice(request, "range", RANGE_CHOICES, DEFAULT_RANGE)  # checked even when days wins
    days = request.query_params.get("days")
    if days:
        count = _int(request, "days", 7, 1, document.MAX_DAYS)
        today = _now().date()
        params.update(
            {"range": ["custom"], "from": [str(today - timedelta(days=count))], "to": [str(today)]}
        )
    for name in ("from", "to"):  # applied with range=custom only, but never malformed
        for value in request.query_params.getlist(name):
            try:
                date.fromisoformat(value.strip())
            except ValueError:
                raise ApiError(
                    400, f"{name}={value!r} is not a date like 2026-01-31", {"parameter": name}
                ) from None
    try:
        return QuerySpec.from_params(params)
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None


def _metric(cur: duckdb.DuckDBPyConnection, request: Request) -> str:
    """The ``metric`` parameter, checked against the metrics with values (default: the pages')."""
    try:
        return performance.resolve_metric(cur, request.query_params.get("metric"))
    except ValueError as exc:
        raise ApiError(400, str(exc), {"parameter": "metric"}) from None
    except LookupError as exc:
        raise ApiError(404, str(exc)) from None


def _paginate(
    request: Request,
    frame: pd.DataFrame,
    settings: Settings,
    sortable: tuple[str, ...],
    default_sort: str,
    descending: bool = False,
) -> dict:
    page_size = _int(request, "page_size", settings.max_items_per_page, 1, MAX_PAGE_SIZE)
    sort_by = _choice(request, "sort_by", sortable, default_sort)
    order = _choice(request, "sort_order", ("asc", "desc"), "desc" if descending else "asc")
    pages = max(1, -(-len(frame) // page_size))
    page = _int(request, "page", 1, 1, 10**9)
    if len(frame):
        frame = frame.sort_values(
            sort_by, ascending=order == "asc", kind="stable", na_position="last"
        )
    items = frame.iloc[(page - 1) * page_size : page * page_size]
    return {
        "items": items,
        "page": page,
        "page_size": page_size,
        "total": len(frame),
        "pages": pages,
        "sort_by": sort_by,
        "sort_order": order,
    }


def _check_parameters(request: Request, path: str) -> None:
    """Refuse parameters the path does not take: a typo must not return unfiltered data."""
    known = document.known_parameters(path)
    reads = request.method in ("GET", "HEAD") and path != "/openapi.json"
    unknown = [
        name
        for name in request.query_params
        if name not in known
        and not (
            reads and name.startswith(dimensions.EXTRA_PREFIX) and dimensions.is_wellformed(name)
        )
    ]
    for name, value in request.query_params.multi_items():
        if not value.strip() and document.takes_no_empty(path, name):
            raise ApiError(
                400,
                f"{name}= is empty: give a value, or leave {name} out for its default.",
                {"parameter": name},
            )
    if unknown:
        takes = ", ".join(known) if known else "no parameters"
        if reads:
            takes += f", and {dimensions.EXTRA_PREFIX}<key> for the store's extra dimensions"
        raise ApiError(
            400,
            f"/api{path} does not take {', '.join(map(repr, unknown))}: it takes {takes}. "
            "Check the spelling (see /api/openapi.json).",
            {"unknown": unknown, "known": list(known)},
        )


def _check_extras(request: Request, store: Store) -> None:
    """``extra.<key>`` filters name keys the store's series carry (else the answer is empty
    for a reason the caller cannot see)."""
    asked = [n for n in request.query_params if n.startswith(dimensions.EXTRA_PREFIX)]
    if not asked:
        return
    with store.cursor() as cur:
        keys = {dimensions.EXTRA_PREFIX + k for k in dimensions.extra_keys(cur)}
    unknown = [n for n in asked if n not in keys]
    if unknown:
        raise ApiError(
            400,
            f"{', '.join(map(repr, unknown))}: no series in this store carries that extra "
            f"dimension; known: {', '.join(sorted(keys)) or 'none'}.",
            {"unknown": unknown, "known": sorted(keys)},
        )


def _json_body(body: bytes) -> Any:
    """The decoded JSON body, or a 400 saying why not (too deep, not JSON, not UTF-8)."""
    try:
        return validation.parse_json(body)
    except validation.TooDeep as exc:
        raise ApiError(400, str(exc), {"max_depth": validation.MAX_DEPTH}) from None
    except ValueError as exc:
        raise ApiError(400, f"The body is not valid JSON ({exc}).") from None


# ----------------------------------------------------------------------------- app


def create_api(state: ApiState | None = None) -> Starlette:
    """The API as a Starlette app (mount it at /api); ``state`` shares settings and the store."""
    state = state or ApiState()

    def authorised(request: Request, write: bool) -> None:
        settings = state.settings
        token = settings.api_token if write else settings.api_read_token
        if not token:
            if write:
                raise ApiError(
                    403,
                    "Writes are disabled: no api_token is configured. Set "
                    "DTD_API_TOKEN (or [dtd] api_token in secrets) on the server.",
                )
            return
        given = request.headers.get("authorization", "")
        if not given.lower().startswith("bearer "):
            raise ApiError(401, "This needs a bearer token: send 'Authorization: Bearer <token>'.")
        if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
            raise ApiError(403, "The bearer token is not valid here.")

    def endpoint(function: Callable[[Request], Any], path: str) -> Callable:
        """Auth, known parameters, caching of GET answers, CSV on request, errors in one shape."""

        def handle(request: Request) -> Response:
            authorised(request, False)
            _check_parameters(request, path)
            wants_csv = request.query_params.get("format", "json")
            if wants_csv not in ("json", "csv"):
                raise ApiError(
                    400, f"format={wants_csv!r} is not json or csv", {"parameter": "format"}
                )
            store = state.store()
            key = None
            if request.method == "GET":
                key = (
                    request.url.path,
                    tuple(sorted(request.query_params.multi_items())),
                    store.cache_token,
                )
                cached = state.cache.get(key)
                if cached is not None:
                    body, media, headers = cached
                    return Response(body, media_type=media, headers=headers)
            _check_extras(request, store)
            data = function(request, store)
            if wants_csv == "csv":
                table = data.get("items") if isinstance(data, dict) else data
                if not isinstance(table, pd.DataFrame):
                    raise ApiError(
                        400,
                        "format=csv is offered where a table is returned",
                        {"parameter": "format"},
                    )
                body = io.StringIO()
                table.to_csv(body, index=False, date_format="%Y-%m-%dT%H:%M:%S")
                response: Response = Response(body.getvalue(), media_type="text/csv")
                if isinstance(data, dict) and "total" in data:
                    response.headers["X-Total-Count"] = str(data["total"])
            else:
                response = JSONResponse(envelope(jsonable(data)))
            if key is not None:
                headers = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() not in ("content-length", "content-type")
                }
                state.cache.put(
                    key,
                    (response.body, response.media_type, headers),
                    state.settings.api_cache_time,
                )
            return response

        return handle

    # ------------------------------------------------------------------ reads

    def status(request: Request, store: Store) -> dict:
        spec, now = _spec(request), _now()
        with store.cursor() as cur:
            summary = queries.summary(cur, now)
            window = queries.status_counts(cur, spec, now)
            found = cur.execute(
                """SELECT kind, count(*) FROM change_points
                   WHERE NOT unstable AND severity <> 'none' GROUP BY ALL"""
            ).fetchall()
        return {
            "database": str(store.path),
            "totals": summary,
            "window": window,
            "range": spec.describe(now),
            "filters": dict(spec.filters),
            "change_points": dict(found),
        }

    def tests(request: Request, store: Store) -> dict:
        spec, now = _spec(request), _now()
        with store.cursor() as cur:
            sick = health.flagged_workers(cur, spec, now)
            frame = health.test_health(cur, spec, now, sick)
        search = request.query_params.get("q", "").casefold()
        if search:
            frame = frame[frame["test"].str.casefold().str.contains(search, regex=False)]
        wanted = [v for raw in request.query_params.getlist("state") for v in raw.split(",") if v]
        strange = sorted(set(wanted) - set(document.TEST_STATES))
        if strange:
            raise ApiError(
                400,
                f"state={', '.join(strange)} is not a test state; use "
                f"{', '.join(document.TEST_STATES)}",
                {"parameter": "state", "allowed": list(document.TEST_STATES)},
            )
        if wanted:
            frame = frame[frame["state"].isin(wanted)]
        frame = frame.drop(columns=["recent_durations"]).assign(
            state_rank=frame["state"].map(health.STATE_ORDER)
        )
        page = _paginate(request, frame, state.settings, document.TEST_SORT, "state_rank")
        page["flagged_workers"] = list(sick)
        return page

    def workers(request: Request, store: Store) -> dict:
        spec, now = _spec(request), _now()
        with store.cursor() as cur:
            fleet = queries.workers(cur, now, spec.filter_values("hardware"))
            judged = health.worker_health(cur, spec, now)
        fleet = health.with_health(fleet, judged)
        return _paginate(request, fleet, state.settings, document.WORKER_SORT, "worker_id")

    def regressions_list(request: Request, store: Store) -> dict:
        spec, now = _spec(request, own=("kind",)), _now()
        kind = _choice(request, "kind", document.CHANGE_KINDS, "all")
        kinds = ("regression", "improvement") if kind == "all" else (kind,)
        with store.cursor() as cur:
            frame = regressions.listing(
                cur,
                spec,
                now,
                kinds=kinds,
                include_unstable=_flag(request, "include_unstable"),
                significant_only=_flag(request, "significant_only"),
            )
        frame = frame.assign(size=frame["change"].abs())
        return _paginate(
            request,
            frame,
            state.settings,
            document.REGRESSION_SORT,
            "size",
            descending=True,
        )

    def dimensions_list(request: Request, store: Store) -> Any:
        spec, now = _spec(request), _now()
        dimension = request.query_params.get("dimension")
        with store.cursor() as cur:
            if not dimension:
                return {
                    "dimensions": performance.dimension_names(cur),
                    "values": queries.filter_options(cur),
                }
            if dimension not in performance.dimension_names(cur):
                raise ApiError(
                    400,
                    f"dimension={dimension!r} is not a dimension of this store",
                    {"parameter": "dimension", "allowed": performance.dimension_names(cur)},
                )
            metric = _metric(cur, request)
            frame = performance.dimension_stats(cur, spec, now, metric, dimension)
        return {"items": frame, "dimension": dimension, "metric": metric, "total": len(frame)}

    def performance_history(request: Request, store: Store) -> dict:
        spec, now = _spec(request), _now()
        test_id = request.query_params.get("test_id")
        with store.cursor() as cur:
            metric = _metric(cur, request)
            info = performance.metric_info(cur, metric)
            if test_id:
                if not _WHOLE.fullmatch(test_id) or not -(2**63) <= int(test_id) < 2**63:
                    raise ApiError(
                        400,
                        f"test_id={test_id!r} is not a series id (a whole "
                        "number, as /api/tests lists)",
                        {"parameter": "test_id"},
                    )
                start, end = spec.window(now)
                frame = (
                    cur.execute(
                        """SELECT ts, value FROM measurements WHERE series_id = ? AND metric = ?
                       AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?)
                       ORDER BY ts DESC LIMIT 5000""",
                        [int(test_id), metric, start, start, end, end],
                    )
                    .df()
                    .sort_values("ts")
                )
            else:
                by = request.query_params.get("by", "")
                if by and by != performance.SERIES and by not in performance.dimension_names(cur):
                    raise ApiError(400, f"by={by!r} is not a dimension", {"parameter": "by"})
                frame = performance.metric_over_time(cur, spec, now, metric, by)
        return {"items": frame, "metric": info, "total": len(frame)}

    def openapi(request: Request) -> Response:
        authorised(request, False)
        _check_parameters(request, "/openapi.json")
        return JSONResponse(document.document())

    # ------------------------------------------------------------------ writes

    async def post_results(request: Request) -> Response:
        authorised(request, write=True)
        _check_parameters(request, "/results")
        if len(request.query_params.get("filename", "")) > document.MAX_FILENAME:
            raise ApiError(
                400,
                f"filename is longer than {document.MAX_FILENAME} characters.",
                {"parameter": "filename"},
            )
        settings = state.settings
        limit = settings.max_ingest_mb * 1024 * 1024
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(
                413,
                f"The request is {int(declared):,} bytes; the limit is {limit:,} (max_ingest_mb).",
            )
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        store = state.store()
        options = IngestOptions(max_bytes=limit, strict=_flag(request, "strict"))
        if kind == "multipart/form-data":
            form = await request.form(max_part_size=limit)
            uploads = [v for v in form.values() if hasattr(v, "read")]
            if not uploads:
                raise ApiError(400, "The form holds no file: send the report as a 'file' field.")
            reports = []
            for upload in uploads:
                data = await upload.read()
                reports.append(
                    await asyncio.to_thread(
                        ingest_bytes, store, upload.filename or "upload", data, options
                    )
                )
            return _ingested(reports)
        body = await request.body()
        if len(body) > limit:
            raise ApiError(413, f"The request is {len(body):,} bytes; the limit is {limit:,}.")
        if kind in ("application/json", ""):
            payload = _json_body(body)
            try:
                validation.batch_parts(payload)
            except validation.Invalid as exc:
                raise ApiError(422, f"Nothing was written: {exc}", exc.details()) from None
            report = await asyncio.to_thread(_ingest_json, store, payload, options.strict)
            if report.status == "error":  # every result bad (or one, with strict)
                raise ApiError(
                    422,
                    f"Nothing was written: {report.error}",
                    [{"where": p["where"], "problem": p["problem"]} for p in report.problems]
                    or None,
                )
            return _ingested([report])
        name = request.query_params.get("filename") or f"upload.{kind.split('/')[-1][:20]}"
        report = await asyncio.to_thread(ingest_bytes, store, name, body, options)
        return _ingested([report])

    def _ingest_json(store: Store, payload: Any, strict: bool) -> FileReport:
        report = FileReport("api", "json-batch")
        started = time.perf_counter()
        try:
            with store.transaction() as cur:
                sink = Sink(cur, "api", "request", strict=strict)
                json_batch.ingest(sink, payload, "request", _now())
                counts = sink.finish()
            fill_report(report, counts)
        except (IngestError, StoreError) as exc:  # anything else is ours: the 500 handler
            report.status, report.error = "error", str(exc)
            if isinstance(exc, IngestError):
                where = exc.where.removeprefix("request").strip()
                report.problems = [{"where": where, "problem": exc.problem, "fix": exc.fix}]
        report.seconds = time.perf_counter() - started
        return report

    def _ingested(reports: list[FileReport]) -> Response:
        """422 when a file went in not at all; otherwise what went in, and what was left out
        (``rejected``) or stored with a stand-in (``warnings``), each listed per file."""
        bad = [r for r in reports if r.status == "error"]
        if bad:
            raise ApiError(
                422,
                bad[0].error or "The results were not ingested.",
                [r.as_dict() for r in reports],
            )
        totals = {
            k: sum(getattr(r, k) for r in reports)
            for k in (
                "results",
                "passed",
                "failed",
                "errors",
                "skipped",
                "measurements",
                "added",
                "rejected",
                "warnings",
            )
        }
        events.hub.publish("results", {**totals, "files": [r.format for r in reports]})
        return JSONResponse(
            envelope({**totals, "files": [r.as_dict() for r in reports]}),
            status_code=201 if totals["added"] else 200,
        )

    async def post_heartbeat(request: Request) -> Response:
        authorised(request, write=True)
        _check_parameters(request, "/heartbeat")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_HEARTBEAT_BYTES:
            raise ApiError(
                413, f"A heartbeat is at most {MAX_HEARTBEAT_BYTES:,} bytes; this one is larger."
            )
        body = await request.body()
        if len(body) > MAX_HEARTBEAT_BYTES:
            raise ApiError(
                413, f"A heartbeat is at most {MAX_HEARTBEAT_BYTES:,} bytes; this one is larger."
            )
        try:
            beat = validation.check(validation.HeartbeatIn, _json_body(body))
        except validation.Invalid as exc:
            raise ApiError(422, f"Nothing was written: {exc}", exc.details()) from None
        data = await asyncio.to_thread(_heartbeat, state.store(), beat)
        return JSONResponse(envelope(data))

    # ------------------------------------------------------------------ errors

    def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            error_body(exc.code, exc.kind, exc.message, exc.details), status_code=exc.code
        )

    def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"No endpoint at {request.url.path}: see /api/openapi.json."
        elif exc.status_code == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path}; it takes "
                f"{headers.get('Allow', 'other methods')}."
            )
        else:
            message = str(exc.detail)
        return JSONResponse(
            error_body(exc.status_code, kind, message), status_code=exc.status_code, headers=headers
        )

    def on_crash(request: Request, exc: Exception) -> Response:
        """Nothing of the exception reaches the caller: the log has it under a request id."""
        request_id = uuid.uuid4().hex[:16]
        log.error(
            "internal error in %s %s (request id %s)",
            request.method,
            request.url.path,
            request_id,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return JSONResponse(
            error_body(
                500,
                "internal_error",
                f"internal error (request id {request_id}); the server log has the detail.",
                {"request_id": request_id},
            ),
            status_code=500,
            headers={"X-Request-Id": request_id},
        )

    routes = [
        Route("/status", endpoint(status, "/status")),
        Route("/tests", endpoint(tests, "/tests")),
        Route("/workers", endpoint(workers, "/workers")),
        Route("/regressions", endpoint(regressions_list, "/regressions")),
        Route("/dimensions", endpoint(dimensions_list, "/dimensions")),
        Route("/performance", endpoint(performance_history, "/performance")),
        Route("/openapi.json", openapi),
        Route("/results", post_results, methods=["POST"]),
        Route("/heartbeat", post_heartbeat, methods=["POST"]),
        WebSocketRoute("/ws", websocket_endpoint(state)),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )
    app.state.api = state
    return app


def _heartbeat(store: Store, beat: validation.HeartbeatIn) -> dict:
    """Record a worker's heartbeat (registering the worker on its first one)."""
    now = _now()
    with store.transaction() as cur:
        known = cur.execute(
            "SELECT count(*) FROM workers WHERE worker_id = ?", [beat.worker_id]
        ).fetchall()[0][0]
        if known:
            cur.execute(
                """UPDATE workers SET hostname = coalesce(?, hostname),
                          hardware = coalesce(?, hardware), device = coalesce(?, device),
                          os = coalesce(?, os), heartbeat_interval_s = ?
                   WHERE worker_id = ?""",
                [
                    beat.hostname,
                    beat.hardware,
                    beat.device,
                    beat.os,
                    beat.heartbeat_interval_s,
                    beat.worker_id,
                ],
            )
        else:
            cur.execute(
                "INSERT INTO workers VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    beat.worker_id,
                    beat.hostname or beat.worker_id,
                    beat.hardware,
                    beat.device,
                    beat.os,
                    beat.heartbeat_interval_s,
                    now,
                ],
            )
        cur.execute(
            "INSERT INTO heartbeats VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                beat.worker_id,
                now,
                beat.cpu_percent,
                beat.memory_percent,
                beat.gpu_percent,
                beat.power_watts,
                beat.current_task,
            ],
        )
    return {"worker_id": beat.worker_id, "received_at": now.isoformat(), "registered": not known}


def websocket_endpoint(state: ApiState) -> Callable:
    """/ws: a status message on connect, "ping" answered with "pong", then events as they come."""

    async def endpoint(socket: WebSocket) -> None:
        await socket.accept()
        queue = events.hub.subscribe()
        try:
            store = state.store()
            with store.cursor() as cur:
                summary = queries.summary(cur, _now())
            await socket.send_json(
                {"type": "status", "timestamp": events.now_iso(), "data": jsonable(summary)}
            )
            while True:
                receiving = asyncio.ensure_future(socket.receive_text())
                forwarding = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {receiving, forwarding}, return_when=asyncio.FIRST_COMPLETED
                )
                if forwarding in done:
                    await socket.send_json(jsonable(forwarding.result()))
                else:
                    forwarding.cancel()
                if receiving in done:
                    text = receiving.result()
                    try:
                        message = validation.parse_json(text) if text.startswith("{") else None
                    except ValueError:
                        message = None
                    kind = message.get("type") if isinstance(message, dict) else text
                    if str(kind).strip().lower() == "ping":
                        await socket.send_json({"type": "pong", "timestamp": events.now_iso()})
                else:
                    receiving.cancel()
        except (WebSocketDisconnect, RuntimeError, ApiError):
            pass
        finally:
            events.hub.unsubscribe(queue)
            with contextlib.suppress(RuntimeError):
                await socket.close()

    return endpoint
