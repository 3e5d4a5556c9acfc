"""The OpenAPI 3.1 document of /api, and the query parameters each endpoint takes.

One list of parameters per path serves both the document and the API's check that refuses
parameters it does not know (a typo in a filter must not return unfiltered data). Request
bodies come from the validation layer's models (``lib.validation``), so the document and the
server agree on what a write may hold. The fuzz suite (tests/test_api_fuzz.py) holds the server
to this document: every answer's status, media type and shape must be in it.
"""

from __future__ import annotations

from typing import Any

from lib import health, validation
from lib.dimensions import BUILTIN, EXTRA_PREFIX
from lib.spec import RANGE_CHOICES

API_VERSION = "1.0"
MAX_PAGE_SIZE = 1000
MAX_DAYS = 36500
MAX_FILENAME = 255

TEST_SORT = (*health.SORTABLE, "state_rank")
WORKER_SORT = ("worker_id", "state", "hardware", "seconds_since_heartbeat", "failure_rate")
REGRESSION_SORT = ("size", "changed_at", "change", "q_value", "severity")
TEST_STATES = tuple(health.STATE_ORDER)
CHANGE_KINDS = ("regression", "improvement", "all")


def _param(name: str, description: str, schema: dict, repeat: bool = False) -> dict:
    if repeat:
        schema = {"type": "array", "items": schema}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **({"style": "form", "explode": True} if repeat else {}),
    }


_TEXT = {"type": "string"}
_FILTERS = [
    _param(
        "range",
        "time range up to now, or custom (then from and to)",
        {"type": "string", "enum": list(RANGE_CHOICES)},
    ),
    _param("from", "first day of a custom range (UTC)", {"type": "string", "format": "date"}),
    _param("to", "last day of a custom range (UTC)", {"type": "string", "format": "date"}),
    _param(
        "days",
        "the last N days (the seed's parameter)",
        {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
    ),
    *[
        _param(
            name,
            f"only these {name} values (repeat the parameter, or separate with commas)",
            {"type": "integer", "minimum": -(2**31) + 1, "maximum": 2**31 - 1}
            if name == "batch_size"
            else _TEXT,
            repeat=True,
        )
        for name in BUILTIN
    ],
]
_FORMAT = _param(
    "format", "json (the envelope) or csv (the table)", {"type": "string", "enum": ["json", "csv"]}
)


def _paging(sortable: tuple[str, ...]) -> list[dict]:
    return [
        _param("page", "page number, from 1", {"type": "integer", "minimum": 1, "maximum": 10**9}),
        _param(
            "page_size",
            "rows per page (default max_items_per_page)",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        ),
        _param("sort_by", "column to sort by", {"type": "string", "enum": list(sortable)}),
        _param("sort_order", "asc or desc", {"type": "string", "enum": ["asc", "desc"]}),
        _FORMAT,
    ]


_FLAG = {"type": "boolean"}
PARAMETERS: dict[str, list[dict]] = {
    "/status": _FILTERS,
    "/tests": [
        *_FILTERS,
        *_paging(TEST_SORT),
        _param("q", "search in test names", _TEXT),
        _param(
            "state",
            "only tests in these states",
            {"type": "string", "enum": list(TEST_STATES)},
            repeat=True,
        ),
    ],
    "/workers": [*_FILTERS, *_paging(WORKER_SORT)],
    "/regressions": [
        *[p for p in _FILTERS if p["name"] != "kind"],  # kind: the change's, below
        *_paging(REGRESSION_SORT),
        _param("significant_only", "true: BH q < 0.05 only", _FLAG),
        _param(
            "kind", "regression, improvement or all", {"type": "string", "enum": list(CHANGE_KINDS)}
        ),
        _param("include_unstable", "true: unstable series too", _FLAG),
    ],
    "/dimensions": [
        *_FILTERS,
        _param("dimension", "a dimension (see the answer without it), e.g. hardware", _TEXT),
        _param("metric", "metric name (default: the pages' preferred metric)", _TEXT),
        _FORMAT,
    ],
    "/performance": [
        *_FILTERS,
        _param(
            "test_id",
            "series id from /api/tests",
            {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        ),
        _param("metric", "metric name (default: the pages' preferred metric)", _TEXT),
        _param("by", "a dimension to group by, or series", _TEXT),
        _FORMAT,
    ],
    "/openapi.json": [],
    "/results": [
        _param(
            "filename",
            "name of a raw report body, for messages and format detection",
            {"type": "string", "maxLength": MAX_FILENAME},
        ),
        _param(
            "strict",
            "true: a bad record fails its whole file (all or nothing); default: bad records "
            "are left out and listed while the others go in",
            _FLAG,
        ),
    ],
    "/heartbeat": [],
}
"""Query parameters per path (below /api); any other is refused with 400. Every read path also
takes ``extra.<key>`` for each extra dimension key the store holds."""


def known_parameters(path: str) -> tuple[str, ...]:
    return tuple(p["name"] for p in PARAMETERS.get(path, ()))


def takes_no_empty(path: str, name: str) -> bool:
    """Whether an empty value is a mistake: everything but free text (a number, a choice, a
    flag, a date)."""
    for param in PARAMETERS.get(path, ()):
        if param["name"] == name:
            schema = param["schema"].get("items", param["schema"])
            return schema.get("type") != "string" or "format" in schema or "enum" in schema
    return False


# ----------------------------------------------------------------------------- responses

_ENVELOPE = {
    "type": "object",
    "required": ["status", "timestamp", "data", "api_version"],
    "properties": {
        "status": {"const": "ok"},
        "timestamp": {"type": "string"},
        "data": {},
        "api_version": {"const": API_VERSION},
    },
}
_ERROR = {
    "type": "object",
    "required": ["status", "timestamp", "error", "api_version"],
    "properties": {
        "status": {"const": "error"},
        "timestamp": {"type": "string"},
        "error": {
            "type": "object",
            "required": ["code", "type", "message", "details"],
            "properties": {
                "code": {"type": "integer"},
                "type": {"type": "string"},
                "message": {"type": "string", "minLength": 1},
                "details": {},
            },
        },
        "api_version": {"const": API_VERSION},
    },
}
_ERRORS = {
    "400": "a bad parameter or body: unknown parameter, bad value, JSON that is not valid or "
    "nested too deep",
    "401": "no bearer token where one is needed",
    "403": "a bearer token that is not valid here, or writes are disabled",
    "405": "a method the path does not take (the Allow header lists those it does)",
    "500": "internal error: the body carries a request id; the detail is in the server log",
    "503": "the database cannot be opened",
}


def _responses(ok: dict[str, str], errors: tuple[str, ...], csv: bool = False) -> dict:
    out: dict[str, Any] = {}
    for code, description in ok.items():
        content = {"application/json": {"schema": _ENVELOPE}}
        if csv:
            content["text/csv"] = {"schema": {"type": "string"}}
        out[code] = {"description": description, "content": content}
    for code in errors:
        out[code] = {
            "description": _ERRORS.get(code) or _EXTRA_ERRORS[code],
            "content": {"application/json": {"schema": _ERROR}},
        }
    return out


_EXTRA_ERRORS = {
    "404": "nothing of that name (a metric without values, no metric at all)",
    "413": "the body is larger than max_ingest_mb",
    "422": "the results or heartbeat break the rules; details name each problem; nothing written",
}
_READ_ERRORS = ("400", "401", "403", "404", "405", "500", "503")


def _get(summary: str, path: str, csv: bool = True) -> dict:
    return {
        "get": {
            "summary": summary,
            "parameters": PARAMETERS[path],
            "responses": _responses({"200": "the envelope with data"}, _READ_ERRORS, csv=csv),
        }
    }


def document() -> dict:
    """The whole document (served bare at /api/openapi.json)."""
    write_errors = ("400", "401", "403", "405", "413", "422", "500", "503")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Distributed Testing Dashboard API",
            "version": API_VERSION,
            "description": "Every answer: {status: ok, timestamp, data, api_version}. Errors: "
            "{status: error, timestamp, error: {code, type, message, details}, api_version}. "
            "Reads take the dashboard's link parameters; unknown parameters are refused (400). "
            f"Read paths also take {EXTRA_PREFIX}<key>=value for the store's extra dimensions.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/status": _get(
                "Totals, the window's counts by status, workers by state", "/status", csv=False
            ),
            "/api/tests": _get("Tests with health, flaky and broken flags (paged)", "/tests"),
            "/api/workers": _get(
                "Workers with liveness and failure rate against peers (paged)", "/workers"
            ),
            "/api/regressions": _get(
                "Detected regressions and improvements (paged)", "/regressions"
            ),
            "/api/dimensions": _get(
                "Dimensions and their values, or a metric per dimension value", "/dimensions"
            ),
            "/api/performance": _get(
                "A metric over time, per series (test_id) or per group", "/performance"
            ),
            "/api/results": {
                "post": {
                    "summary": "Add results: a JSON batch, or a report file (multipart 'file', or "
                    "the raw body with its content type). Bad records are left out and listed "
                    "(rejected, problems) while the others go in; strict=true makes each file "
                    "all or nothing",
                    "security": [{"bearer": []}],
                    "parameters": PARAMETERS["/results"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": validation.batch_schema()},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            },
                            "application/xml": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": _responses(
                        {
                            "201": "ingested, some results new (see rejected and warnings)",
                            "200": "ingested, nothing new (the same results were sent before)",
                        },
                        write_errors,
                    ),
                }
            },
            "/api/heartbeat": {
                "post": {
                    "summary": "A worker's heartbeat: worker_id, resource use, current task; the "
                    "first one registers the worker",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": validation.request_schema(validation.HeartbeatIn)
                            }
                        },
                    },
                    "responses": _responses({"200": "recorded"}, write_errors),
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document (bare, not in the envelope)",
                    "parameters": [],
                    "responses": {
                        "200": {
                            "description": "the OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **{
                            k: v
                            for k, v in _responses({}, ("400", "401", "403", "405", "500")).items()
                        },
                    },
                }
            },
        },
    }
