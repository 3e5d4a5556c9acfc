"""Our own results as tables: CSV (or TSV), Parquet, JSON Lines and a JSON array of objects.

Rows never pass through Python, not even as Arrow: everything runs in the store's own connection
(``sink.cur``), inside the file's transaction. One SQL query reads the file (``read_csv`` with
every column as text, ``read_parquet``, ``read_json``), parses and checks every value, computes
the canonical columns, the wide metric columns and each row's id, and writes them into a
temporary table; one aggregate over it says whether any row is bad or any id repeats (the
queries that find the rows run only then); ``Sink.add_relation`` then writes series, runs,
workers, the new results and their metric values with SQL. A bad row (a bad value, a repeated
result_id) is left out and listed with its line (or row, or record) and column, and the good rows
go in; with ``IngestOptions.strict`` the first bad row stops the file before anything is
written, and the driver's transaction leaves the store as it was. Memory: DuckDB streams the file and spills the
temporary table to disk when it outgrows memory; nothing is held in Python.

The columns, the accepted spellings and the mapping for foreign layouts are described for users
in docs/ingest-formats.md; ``lib.ingest.mlperf`` and ``lib.ingest.seed_db`` build their own
``Plan`` and run it through ``run_plan`` here.

Identity (``lib.ingest.sink.ROW_ID_SCHEME``): DuckDB's ``hash()`` of the format and a
``result_id`` column when there is one (it must not repeat within a file), otherwise of the
row's whole content (every column as written), plus an occurrence number for identical rows; so
the same file ingested twice, or a copy of it, adds nothing. ``hash()`` is fast but not promised
stable across DuckDB releases (duckdb is pinned): a store records a probe of it
(``ROW_HASH_PROBE``) and a release that hashes differently is reported in the log, because
files ingested before may then be added again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from lib.ingest.model import MAX_LISTED, IngestError, MetricDef, Source
from lib.ingest.options import IngestOptions
from lib.ingest.sink import IDENTITY, Sink, repeat_id_sql, row_id_sql
from lib.schema import DIRECTIONS, KINDS, STATUSES

REQUIRED = ("ts", "name", "status")
OPTIONAL = (
    "result_id",
    "kind",
    "suite",
    "duration_s",
    "message",
    "model",
    "model_family",
    "modality",
    "hardware",
    "device",
    "batch_size",
    "precision",
    "worker",
    "hostname",
    "os",
    "run",
    "git_commit",
    "git_branch",
)
FIELDS = REQUIRED + OPTIONAL
"""The columns with a meaning of their own; anything else is a metric or an extra dimension."""

STATUS_SPELLINGS: dict[str, tuple[str, ...]] = {
    "passed": ("passed", "pass", "ok", "success", "succeeded", "successful", "true"),
    "failed": ("failed", "fail", "failure", "false"),
    "error": ("error", "errored"),
    "skipped": ("skipped", "skip", "ignored", "disabled"),
}
"""Accepted status values, compared case-insensitively after trimming."""

METRIC_PREFIX = "metric."
CHUNK_ROWS = 2_000_000
"""Rows handed to the sink at a time (``IngestOptions.chunk_size`` when larger): a bigger file
is written in ranges of its rows, which bounds the size of each INSERT's joins."""
MAX_NAME = 4096
MAX_MESSAGE = 4000
MAX_EXTRA_VALUES = 10_000
EXTRA_WINDOW_ROWS = 250_000
"""Extra columns that take more than ``MAX_EXTRA_VALUES`` distinct values within one block of
this many rows (rows 1 to 250,000, 250,001 to 500,000, ...) are refused: extra columns are part
of a series' identity, and a per-row id there would make every row its own series."""
TS_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0}
"""Microseconds per unit of a numeric timestamp."""
EPOCH_MS_FROM = 1e11
"""Numeric timestamps at or above this are milliseconds (1e11 s is the year 5138)."""
MAPPING_KEYS = (
    "columns",
    "constants",
    "metrics",
    "extra",
    "ignore",
    "other_columns",
    "status_values",
    "ts_unit",
)

_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|FLOAT|DOUBLE|DECIMAL)")
_OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

# ---------------------------------------------------------------------------------- metric units

_LOWER_SUFFIXES = (
    ("_ms", "ms"),
    ("_us", "us"),
    ("_ns", "ns"),
    ("_seconds", "s"),
    ("_sec", "s"),
    ("_s", "s"),
    ("_min", "min"),
    ("_mb", "MB"),
    ("_gb", "GB"),
    ("_kb", "KB"),
    ("_bytes", "bytes"),
)


def infer_metric(name: str, description: str = "") -> MetricDef:
    """Unit and direction of a metric the store does not know yet, from its name's suffix.

    ``_ms``, ``_us``, ``_ns``, ``_s``, ``_sec``, ``_seconds``, ``_min``: time, lower is better;
    ``_mb``, ``_gb``, ``_kb``, ``_bytes``: size, lower; ``<what>_per_second`` or ``_per_s`` and
    anything containing ``throughput``: a rate, higher; anything else: no unit, direction "none".
    """
    low = name.lower()
    for suffix in ("_per_second", "_per_sec", "_per_s"):
        if low.endswith(suffix):
            what = low[: -len(suffix)].rsplit("_", 1)[-1] or "items"
            return MetricDef(name, f"{what}/s", "higher", description)
    if "throughput" in low:
        return MetricDef(name, "items/s", "higher", description)
    for suffix, unit in _LOWER_SUFFIXES:
        if low.endswith(suffix):
            return MetricDef(name, unit, "lower", description)
    return MetricDef(name, "", "none", description)


# ---------------------------------------------------------------------------------- SQL helpers


def quote(identifier: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL string literal (everything is compared as text)."""
    return "'" + str(value).replace("'", "''") + "'"


def _is_numeric(kind: str) -> bool:
    return bool(_NUMERIC.match(kind))


@dataclass(frozen=True)
class Column:
    """Where one of our fields comes from: an expression over the chunk, with a label for
    messages ("column duration_s", "field Accelerator", "mapping constant kind")."""

    sql: str
    type: str
    label: str

    @classmethod
    def of(cls, name: str, kind: str, label: str | None = None) -> Column:
        return cls(quote(name), kind, label or f"column {name}")

    @classmethod
    def constant(cls, ours: str, value: Any) -> Column:
        return cls(literal(value), "VARCHAR", f"mapping constant {ours}")

    def value(self) -> str:
        """The text as written; an empty string is NULL (missing)."""
        if self.type == "VARCHAR":
            return f"NULLIF({self.sql}, '')"
        return f"NULLIF(CAST({self.sql} AS VARCHAR), '')"

    def text(self) -> str:
        """Trimmed text, NULL when empty (for values that are parsed: status, kind)."""
        return f"NULLIF(trim({self.value()}), '')"

    def number(self) -> str:
        """DOUBLE, NULL when missing or not a number (surrounding spaces are allowed)."""
        if _is_numeric(self.type):
            return f"CAST({self.sql} AS DOUBLE)"
        return f"TRY_CAST({self.value()} AS DOUBLE)"

    def blank(self) -> str:
        """True when the value is missing, empty or only spaces."""
        return _blank(self.value())


def _blank(text: str) -> str:
    """SQL: the text is NULL or only spaces (``trim`` removes spaces; most values do not start
    with one, so it rarely runs)."""
    return f"({text} IS NULL OR (starts_with({text}, ' ') AND trim({text}) = ''))"


@dataclass(frozen=True)
class Check:
    """A condition that makes a row bad, and how to say so (``{value}`` is the raw value)."""

    condition: str
    label: str
    problem: str
    value_sql: str | None = None


@dataclass
class Plan:
    """How a table's columns become results: built from the header (and a mapping), or by hand
    for a foreign source with a fixed layout (``lib.ingest.mlperf``)."""

    fields: dict[str, Column]
    metrics: list[tuple[MetricDef, Column]] = field(default_factory=list)
    extras: list[tuple[str, Column]] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    """Expressions whose text is a row's identity when it has no result_id."""
    status_values: dict[str, str] = field(default_factory=dict)
    """Extra spellings (lower case) -> status; the key "" is what a missing status means."""
    ts_unit: str | None = None
    checks: list[Check] = field(default_factory=list)
    """Checks beyond those every field gets (foreign layouts add their own)."""
    early_checks: list[Check] = field(default_factory=list)
    """Checks that come before every field's own, because their failure explains the others
    (MLPerf: an unknown round is why a record has no time)."""
    kind_default: str | None = None


# ---------------------------------------------------------------------------------- compiling


def _timestamp(column: Column, unit: str | None) -> str:
    """Naive UTC from ISO-8601 text (zone optional) or epoch seconds / milliseconds."""

    def epoch(value: str) -> str:
        if unit:
            micros = f"{value} * {TS_UNITS[unit]}"
        else:
            micros = f"{value} * CASE WHEN abs({value}) >= {EPOCH_MS_FROM} THEN 1e3 ELSE 1e6 END"
        return f"make_timestamp(TRY_CAST({micros} AS BIGINT))"

    kind = column.type
    if kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"make_timestamp(epoch_us({column.sql}))"  # UTC without a time zone lookup
    if kind.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({column.sql} AS TIMESTAMP)"
    if _is_numeric(kind):
        return epoch(f"CAST({column.sql} AS DOUBLE)")
    # Text that reads as a timestamp never reads as a number, so the (rarer) number is tried
    # only where the timestamp is not one.
    text = column.value()
    return (
        f"coalesce(make_timestamp(epoch_us(TRY_CAST({text} AS TIMESTAMPTZ))), "
        f"{epoch(f'TRY_CAST({text} AS DOUBLE)')})"
    )


def _status(column: Column, values: dict[str, str]) -> str:
    """The status, NULL when missing (unless the plan says what missing means) or unknown."""
    if column.type == "BOOLEAN":
        expr = f"CASE WHEN {column.sql} THEN 'passed' WHEN NOT {column.sql} THEN 'failed' END"
    else:
        spellings = {s: status for status, names in STATUS_SPELLINGS.items() for s in names}
        spellings.update({k.lower(): v for k, v in values.items() if k})
        cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in spellings.items())
        exact = ", ".join(literal(s) for s in STATUSES if spellings.get(s) == s)
        # Our own spellings as they are (the usual case) skip trim, lower and the long CASE.
        expr = (
            f"CASE WHEN {column.value()} IN ({exact}) THEN {column.value()} "
            f"ELSE CASE lower({column.text()}) {cases} END END"
        )
    if values.get(""):
        expr = f"coalesce({expr}, CASE WHEN {column.blank()} THEN {literal(values[''])} END)"
    return expr


_TEXT_FIELDS = (
    "suite",
    "model",
    "model_family",
    "modality",
    "hardware",
    "device",
    "precision",
    "hostname",
    "os",
    "worker",
)


def _compile(
    plan: Plan, defaults: dict[str, str], relation: str, fmt: str
) -> tuple[str, str, list[Check]]:
    """One query over the relation for the temporary table: the canonical columns
    (``RELATION_COLUMNS``), metric values (``__m0``, ...) and the number of the first failed
    check (``__bad``), in levels so that each value is parsed once; and the columns a view over
    the table derives from them (cheaper than storing them).

    Text is taken as written (an empty string is missing); timestamps, statuses, kinds and
    numbers may carry surrounding spaces. ``result_id`` is the row's id before repeats are
    numbered (``row_id_sql``): from the result_id text, or from every column as written.
    """
    f = plan.fields
    inner: dict[str, str] = {}
    checks: list[Check] = []
    for index, early in enumerate(plan.early_checks):
        inner[f"__e{index}"] = early.condition
        checks.append(Check(f"__e{index}", early.label, early.problem, early.value_sql))

    def check(condition: str, column: Column, problem: str, with_value: bool = True) -> None:
        checks.append(Check(condition, column.label, problem, column.sql if with_value else None))

    # identity
    if "result_id" in f:
        inner["__rid"] = f["result_id"].value()
        inner["__key"] = row_id_sql(fmt, ["'id'", f["result_id"].value()])
        check("__rid IS NULL", f["result_id"], "is missing", False)
    else:
        inner["__key"] = row_id_sql(fmt, ["'row'", *plan.content])

    # required: ts, name, status
    # A "blank" check looks at the raw value (``__<field>_raw``) only where the parsed one is
    # NULL: on good rows it costs nothing.
    ts = f["ts"]
    inner["ts"] = _timestamp(ts, plan.ts_unit)
    inner["__ts_raw"] = ts.value() if ts.type == "VARCHAR" else ts.sql
    ts_blank = _blank("__ts_raw") if ts.type == "VARCHAR" else "__ts_raw IS NULL"
    check(f"ts IS NULL AND {ts_blank}", ts, "is missing (every result needs a time)", False)
    check(
        "ts IS NULL",
        ts,
        "{value} is not a timestamp (use ISO-8601 such as 2025-01-31T12:00:00Z, or epoch "
        "seconds or milliseconds)",
    )
    check(
        "ts < TIMESTAMP '1970-01-01' OR ts >= TIMESTAMP '2200-01-01'",
        ts,
        "{value} is outside the years 1970 to 2199",
    )
    name = f["name"]
    inner["name"] = name.value()
    check(_blank("name"), name, "is missing (every result needs a name)", False)
    check(f"length(name) > {MAX_NAME}", name, f"is longer than {MAX_NAME:,} characters", False)
    status = f["status"]
    inner["status"] = _status(status, plan.status_values)
    inner["__status_raw"] = status.value() if status.type != "BOOLEAN" else status.sql
    status_blank = _blank("__status_raw") if status.type != "BOOLEAN" else "__status_raw IS NULL"
    check(
        f"status IS NULL AND {status_blank}",
        status,
        "is missing (passed, failed, error or skipped)",
        False,
    )
    check(
        "status IS NULL",
        status,
        "{value} is not a status: use passed, failed, error or skipped (docs/ingest-formats.md "
        "lists the other spellings accepted)",
    )

    # optional text, as written
    for name_ in _TEXT_FIELDS:
        inner[name_] = f[name_].value() if name_ in f else "NULL::VARCHAR"
    if "suite" in f:
        check(
            f"length(suite) > {MAX_NAME}",
            f["suite"],
            f"is longer than {MAX_NAME:,} characters",
            False,
        )
    inner["message"] = f"left({f['message'].value()}, {MAX_MESSAGE})" if "message" in f else "NULL"
    for name_ in ("run", "git_commit", "git_branch"):
        value = f[name_].value() if name_ in f else "NULL::VARCHAR"
        if defaults.get(name_):
            value = f"coalesce({value}, {literal(defaults[name_])})"
        inner[name_] = value

    # kind
    if "kind" in f:
        kind = f["kind"]
        names = " ".join(f"WHEN {literal(k)} THEN {literal(k)}" for k in KINDS)
        inner["__kind"] = f"CASE replace(lower({kind.text()}), '-', '_') {names} END"
        inner["__kind_raw"] = kind.value()
        check(
            f"__kind IS NULL AND NOT {_blank('__kind_raw')}",
            kind,
            "{value} is not a kind (" + ", ".join(KINDS) + ")",
        )
    else:
        inner["__kind"] = "NULL::VARCHAR"

    # numbers: finite, not negative
    def number(alias: str, column: Column, what: str) -> None:
        inner[alias] = column.number()
        numeric = _is_numeric(column.type)
        inner[f"{alias}_raw"] = column.sql if numeric else column.value()
        blank = f"{alias}_raw IS NULL" if numeric else _blank(f"{alias}_raw")
        check(f"{alias} IS NULL AND NOT {blank}", column, "{value} is not a number")
        check(f"NOT isfinite({alias})", column, "{value} is not a finite number")
        check(f"{alias} < 0", column, "{value} is negative" + what)

    if "duration_s" in f:
        number("duration_s", f["duration_s"], " (a duration is never below 0)")
    else:
        inner["duration_s"] = "NULL::DOUBLE"
    if "batch_size" in f:
        number("__batch", f["batch_size"], "")
        check(
            "__batch <> floor(__batch) OR __batch < 1 OR __batch > 2147483647",
            f["batch_size"],
            "{value} is not a whole number from 1 up",
        )
    else:
        inner["__batch"] = "NULL::DOUBLE"
    for index, (_, column) in enumerate(plan.metrics):
        number(f"__m{index}", column, " (metric values must be 0 or more)")

    # extras: "k=v" joined by \x1f, sorted by key, missing values left out
    extra_parts = []
    for index, (dimension, column) in sorted(enumerate(plan.extras), key=lambda e: e[1][0]):
        inner[f"__x{index}"] = column.value()
        extra_parts.append(f"{literal(dimension + '=')} || replace(__x{index}, chr(31), ' ')")

    # The canonical columns, in two parts: those stored in the temporary table, and those the
    # view over it derives when they are read (every string stored costs time, read or not).
    stored = {
        "result_id": "__key",
        "ts": "ts",
        "suite": "suite",
        "name": "name",
        "status": "status",
        "duration_s": "duration_s",
        "message": "message",
        "model": "model",
        "model_family": "model_family",
        "modality": "modality",
        "hardware": "hardware",
        "device": "device",
        "batch_size": "TRY_CAST(__batch AS INTEGER)",
        "precision": "precision",
        "extra_key": (
            f"NULLIF(concat_ws(chr(31), {', '.join(extra_parts)}), '')" if extra_parts else "NULL"
        ),
        "hostname": "hostname",
        "os": "os",
        "run_name": "run",
        "git_commit": "git_commit",
        "git_branch": "git_branch",
        "__worker": "worker",
        "__kind": "__kind",
    }
    for index in range(len(plan.metrics)):
        stored[f"__m{index}"] = f"__m{index}"
    for index, extra_check in enumerate(plan.checks):
        inner[f"__c{index}"] = extra_check.condition
        checks.append(
            Check(f"__c{index}", extra_check.label, extra_check.problem, extra_check.value_sql)
        )
    bad = " ".join(f"WHEN {c.condition} THEN {i}" for i, c in enumerate(checks))
    stored["__bad"] = f"CASE {bad} END"

    # Columns that are NULL on every row are left out: the sink reads a missing one as NULL.
    def constant_null(expr: str) -> bool:
        expr = inner.get(expr, expr)
        return expr == "NULL" or expr.startswith("NULL::")

    stored = {alias: expr for alias, expr in stored.items() if not constant_null(expr)}

    def col(name: str) -> str:
        return quote(name) if name in stored else "NULL"

    metric_any = " OR ".join(f"__m{i} IS NOT NULL" for i in range(len(plan.metrics))) or "false"
    kind_default = defaults.get("kind") or plan.kind_default
    inferred = f"CASE WHEN {metric_any} THEN 'benchmark' ELSE 'unit_test' END"
    worker = f"coalesce({col('__worker')}, {col('hostname')})"
    derived = {
        "kind": f"coalesce({col('__kind')}, {literal(kind_default) if kind_default else inferred})",
        "worker_id": worker,
        "worker_hardware": f"CASE WHEN {worker} IS NOT NULL THEN {col('hardware')} END",
        "worker_device": f"CASE WHEN {worker} IS NOT NULL THEN {col('device')} END",
        # no run_key: the sink tells runs apart by run_name and git_commit
    }
    identity = ", ".join(derived["kind"] if c == "kind" else col(c) for c in IDENTITY)
    # Names are quoted and values are literals (quote, literal).
    stored_sql = ", ".join(f"{expr} AS {quote(alias)}" for alias, expr in stored.items())
    inner_sql = ", ".join(f"{expr} AS {quote(alias)}" for alias, expr in inner.items())
    table = (
        f"SELECT *, hash({identity}) AS series_key "  # noqa: S608
        f"FROM (SELECT {stored_sql} FROM (SELECT {inner_sql} FROM {relation}))"
    )
    view = ", ".join(f"{expr} AS {quote(alias)}" for alias, expr in derived.items())
    return table, view, checks


# ---------------------------------------------------------------------------------- running


@dataclass
class Reader:
    """A source opened for reading: the relation to read and how to name a row."""

    relation: str
    """``FROM``-able SQL: read_csv(...), read_parquet(...), read_json(...)."""
    where: Callable[[int], str]
    """Row position (0-based, data rows only) -> "line 12", "row 12", "record 12"."""
    what: str
    """"CSV", "Parquet", ... for messages."""
    explain: Callable[[str], IngestError | None] | None = None
    """A better message for one of DuckDB's read errors, when the format can find one."""
    portable: bool = False
    """The relation names nothing but files, so the store's own connection can read it; else
    (a database attached to the private connection) its rows are streamed over as Arrow."""
    where_many: Callable[[list[int]], dict[int, str]] | None = None
    """``where`` for several positions in one pass over the file (CSV, JSON Lines)."""

    def places(self, positions: list[int]) -> dict[int, str]:
        if self.where_many is not None:
            return self.where_many(positions)
        return {position: self.where(position) for position in positions}


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for looking at sources: UTC, never downloads anything."""
    con = duckdb.connect(":memory:", config=dict(_OFFLINE))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")  # row positions come from the order
    return con


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a relation's columns."""
    query = f"DESCRIBE SELECT * FROM {relation}"  # noqa: S608
    return [(row[0], row[1]) for row in con.execute(query).fetchall()]


ROWS = "_dtd_rows"
"""The temporary table (in the store's connection) that holds a source's checked rows."""


def run_plan(
    con: duckdb.DuckDBPyConnection,
    reader: Reader,
    plan: Plan,
    source: Source,
    sink: Sink,
    options: IngestOptions,
) -> None:
    """Read, check, identify and write the relation's rows, all inside the store's connection
    (``sink.cur``, in the file's transaction); no row passes through Python.

    One query reads the source and computes every row's canonical columns, metric values, id
    and first failed check into a temporary table in the file's order (a row's position is its
    ``rowid``); DuckDB spills it to disk when it outgrows memory. One aggregate over it says
    whether any row is bad or any id repeats; only then do the slower queries find the row.
    Raises at the first bad row, before anything is written.
    """
    cur = sink.cur
    zone = cur.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
    cur.execute("SET TimeZone = 'UTC'")  # a time without a zone is UTC, whatever the machine's
    relation = reader.relation
    try:
        if not reader.portable:
            stream = con.sql(f"SELECT * FROM {relation}").to_arrow_reader()  # noqa: S608
            cur.register("_dtd_source", stream)
            relation = "_dtd_source"
        sql, derived, checks = _compile(plan, options.defaults, relation, sink.fmt)
        try:
            cur.execute(f"CREATE TEMP TABLE {ROWS} AS {sql}")
        except (duckdb.Error, pa.ArrowException) as exc:
            raise _read_error(exc, source, reader) from None
        _write_rows(con, reader, plan, derived, checks, source, sink, options)
    finally:
        # After a DuckDB error the transaction refuses everything until the rollback, which
        # drops the table too.
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"DROP TABLE IF EXISTS {ROWS}")
        if relation != reader.relation:
            with contextlib.suppress(duckdb.Error):
                cur.unregister("_dtd_source")
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"SET TimeZone = {literal(zone)}")


def _write_rows(
    con: duckdb.DuckDBPyConnection,
    reader: Reader,
    plan: Plan,
    derived: str,
    checks: list[Check],
    source: Source,
    sink: Sink,
    options: IngestOptions,
) -> None:
    cur = sink.cur
    counts = "".join(f", count(__m{i})" for i in range(len(plan.metrics)))
    totals = (
        "SELECT count(*), count(__bad), count(DISTINCT result_id), min(rowid), max(rowid)"  # noqa: S608
        f"{counts} FROM {ROWS}"
    )
    rows, bad, distinct, first, last, *measured = cur.execute(totals).fetchall()[0]
    span = rows  # positions run from 0 to span - 1; rows left out keep the others' positions
    pos, between = _positions(cur, rows, first, last)
    if bad:
        if sink.strict:
            _raise_first_bad(con, cur, pos, checks, source, reader)
        _reject_bad_rows(con, cur, pos, checks, source, reader, sink, bad)
        if bad == rows:
            return  # Sink.finish makes the first problem the file's error
        cur.execute(f"DELETE FROM {ROWS} WHERE __bad IS NOT NULL")  # noqa: S608
        rows, _, distinct, _, _, *measured = cur.execute(totals).fetchall()[0]
    if rows == 0:
        raise IngestError(
            f"{source.name} line 2" if reader.what == "CSV" else source.name,
            "holds no results (a header and no rows)"
            if reader.what == "CSV"
            else "holds no results",
            "Add rows, or leave the file out.",
        )
    if distinct < rows:
        dropped = _drop_repeated_ids(con, cur, pos, plan, source, reader, sink)
        if dropped:
            rows, _, distinct, _, _, *measured = cur.execute(totals).fetchall()[0]
    repeats = distinct < rows and _number_repeats(cur, pos)
    _check_extras(cur, pos, plan, source)
    measured_metrics = [
        (index, metric)
        for index, ((metric, _), n) in enumerate(zip(plan.metrics, measured, strict=True))
        if n
    ]
    new = [metric for _, metric in measured_metrics if not sink.knows(metric.name)]
    if new:
        sink.define(new)
    metrics = {metric.name: f"__m{index}" for index, metric in measured_metrics}
    size = max(options.chunk_size, CHUNK_ROWS)
    try:
        for start in range(0, span, size):
            where = f" WHERE {between(start, start + size)}" if span > size else ""
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW _dtd_view AS SELECT *, {derived} FROM {ROWS}{where}"  # noqa: S608
            )
            sink.add_relation("_dtd_view", metrics, distinct=repeats)
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.execute("DROP VIEW IF EXISTS _dtd_view")


def _read_error(exc: Exception, source: Source, reader: Reader) -> IngestError:
    text = str(exc)
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        located = locate_bad_utf8(source)
        if located:
            return located
    if reader.explain:
        explained = reader.explain(text)
        if explained:
            return explained
    first = text.split("\n", 1)[0].replace("Invalid Input Error: ", "")
    line = re.search(r"[Ll]ine:? (\d+)", text)
    where = f"{source.name} line {line.group(1)}" if line else source.name
    detail = ""
    for hint in ("Expected Number of Columns", "Actual Number of Columns", "Original Line"):
        found = re.search(rf"{hint}[^\n]*", text)
        if found:
            detail += " " + found.group(0).strip()
    return IngestError(
        where, f"cannot be read as {reader.what}: {first}{detail}", "Check the file's format."
    )


def locate_bad_utf8(source: Source) -> IngestError | None:
    """Where the bytes stop being UTF-8: line, byte, and (for delimited text) the column."""
    header: list[str] = []
    delimiter = ","
    with source.open() as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                column = ""
                fields = next(
                    csv.reader(io.StringIO(raw.decode("utf-8", "replace")), delimiter=delimiter), []
                )
                for index, value in enumerate(fields):
                    if "\ufffd" in value and index < len(header):
                        column = f", column {header[index].strip()}"
                        break
                return IngestError(
                    f"{source.name} line {number}{column}",
                    f"byte {exc.start + 1} of the line (0x{raw[exc.start]:02x}) is not valid UTF-8",
                    "Save the file as UTF-8.",
                )
            if number == 1:
                delimiter = "\t" if line.count("\t") > line.count(",") else ","
                header = next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
    return None


def _value_at(con: duckdb.DuckDBPyConnection, reader: Reader, sql: str, position: int) -> Any:
    """A value of the source's row at ``position``, read again (only to say what is wrong)."""
    lookup = con.cursor()
    try:
        found = lookup.execute(
            f"SELECT {sql} FROM {reader.relation} LIMIT 1 OFFSET {int(position)}"  # noqa: S608
        ).fetchall()
    finally:
        lookup.close()
    return found[0][0] if found else None


def _values_at(
    con: duckdb.DuckDBPyConnection, reader: Reader, sql: str, positions: list[int]
) -> dict[int, Any]:
    """Position -> value of the source's rows at ``positions`` (error path only)."""
    lookup = con.cursor()
    try:
        lookup.register("_dtd_positions", pa.table({"pos": pa.array(positions, pa.int64())}))
        found = lookup.execute(
            f"""SELECT pos, v FROM (
                    SELECT row_number() OVER () - 1 AS pos, {sql} AS v FROM {reader.relation})
                WHERE pos IN (SELECT pos FROM _dtd_positions)"""  # noqa: S608
        ).fetchall()
    finally:
        lookup.close()
    return dict(found)


def _positions(
    cur: duckdb.DuckDBPyConnection, rows: int, first: int | None, last: int | None
) -> tuple[str, Callable[[int, int], str]]:
    """SQL for a row's position in the source (0-based), and for "start <= position < stop".

    The temporary table holds the rows in the source's order with consecutive rowids, so a
    position is a rowid less the first (and a range of positions one of rowids, which DuckDB
    reads without scanning the rest); should a DuckDB release number them otherwise, a column
    of positions in rowid order is added.
    """
    if not rows or (first is not None and last is not None and last - first + 1 == rows):
        base = int(first or 0)
        return f"(rowid - {base})", lambda a, b: f"rowid >= {base + a} AND rowid < {base + b}"
    cur.execute(f"ALTER TABLE {ROWS} ADD COLUMN __pos BIGINT")
    cur.execute(
        f"""UPDATE {ROWS} SET __pos = p.n
            FROM (SELECT rowid AS r, row_number() OVER (ORDER BY rowid) - 1 AS n FROM {ROWS}) AS p
            WHERE {ROWS}.rowid = p.r"""  # noqa: S608
    )
    return "__pos", lambda a, b: f"__pos >= {a} AND __pos < {b}"


def _problem(
    con: duckdb.DuckDBPyConnection, reader: Reader, check: Check, position: int, value: Any = None
) -> str:
    """A failed check's message for the row at ``position``, with its raw value when it says
    ``{value}`` (read again from the source unless given)."""
    problem = check.problem
    if "{value}" in problem:
        if value is None and check.value_sql:
            value = _value_at(con, reader, f"CAST({check.value_sql} AS VARCHAR)", position)
        shown = repr(value if value is None or len(value) <= 80 else value[:77] + "...")
        problem = problem.replace("{value}", shown)
    return f"{check.label}: {problem}"


def _raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    cur: duckdb.DuckDBPyConnection,
    pos: str,
    checks: list[Check],
    source: Source,
    reader: Reader,
) -> None:
    position, index = cur.execute(
        f"SELECT min({pos}), arg_min(__bad, {pos}) FROM {ROWS} WHERE __bad IS NOT NULL"  # noqa: S608
    ).fetchall()[0]
    problem = _problem(con, reader, checks[index], position)
    raise IngestError(f"{source.name} {reader.where(position)}", problem)


def _reject_bad_rows(
    con: duckdb.DuckDBPyConnection,
    cur: duckdb.DuckDBPyConnection,
    pos: str,
    checks: list[Check],
    source: Source,
    reader: Reader,
    sink: Sink,
    bad: int,
) -> None:
    """List the first ``MAX_LISTED`` bad rows (place, column, value, problem) as the sink's
    rejections and count the rest; the caller deletes them."""
    found = cur.execute(
        f"SELECT {pos}, __bad FROM {ROWS} WHERE __bad IS NOT NULL ORDER BY 1 LIMIT {MAX_LISTED}"  # noqa: S608
    ).fetchall()
    positions = [position for position, _ in found]
    places = reader.places(positions)
    values: dict[tuple[int, int], Any] = {}
    for index in sorted({i for _, i in found}):
        check = checks[index]
        if "{value}" in check.problem and check.value_sql:
            wanted = [position for position, i in found if i == index]
            sql = f"CAST({check.value_sql} AS VARCHAR)"
            for position, value in _values_at(con, reader, sql, wanted).items():
                values[(position, index)] = value
    for position, index in found:
        problem = _problem(con, reader, checks[index], position, values.get((position, index)))
        sink.reject(f"{source.name} {places[position]}", problem)
    sink.count_rejected(bad - len(found))


def _drop_repeated_ids(
    con: duckdb.DuckDBPyConnection,
    cur: duckdb.DuckDBPyConnection,
    pos: str,
    plan: Plan,
    source: Source,
    reader: Reader,
    sink: Sink,
) -> int:
    """A result_id names one result: a row that repeats an earlier row's result_id is an error
    (with ``strict``, the file's), otherwise left out and listed. Returns how many were left out.

    Rows are compared by their result_id text, not the 64-bit id, so two different result_ids
    that share an id are both kept (``_number_repeats`` gives the second its own).
    """
    if "result_id" not in plan.fields:
        return 0
    field = plan.fields["result_id"]
    listed = cur.execute(
        f"""SELECT {pos}, rowid FROM {ROWS} WHERE result_id IN (
                SELECT result_id FROM {ROWS} GROUP BY result_id HAVING count(*) > 1)
            ORDER BY 1"""  # noqa: S608
    ).fetchall()
    rowids = dict(listed)
    texts = _values_at(con, reader, field.value(), list(rowids))
    seen: dict[Any, int] = {}
    repeated: list[tuple[int, int]] = []
    for position in sorted(texts):
        if texts[position] in seen:
            repeated.append((position, seen[texts[position]]))
        else:
            seen[texts[position]] = position
    if not repeated:
        return 0
    places = reader.places(sorted({p for pair in repeated[:MAX_LISTED] for p in pair}))
    for position, first in repeated[:MAX_LISTED]:
        sink.reject(
            f"{source.name} {places[position]}",
            f"{field.label}: repeats the result_id of {places[first]}",
            "A result_id names one result: the first row with it went in, this one did not. "
            "Give each result its own result_id.",
        )
    sink.count_rejected(len(repeated) - min(len(repeated), MAX_LISTED))
    cur.register(
        "_dtd_drop", pa.table({"r": pa.array([rowids[p] for p, _ in repeated], pa.int64())})
    )
    try:
        cur.execute(f"DELETE FROM {ROWS} WHERE rowid IN (SELECT r FROM _dtd_drop)")  # noqa: S608
    finally:
        cur.unregister("_dtd_drop")
    return len(repeated)


def _number_repeats(cur: duckdb.DuckDBPyConnection, pos: str) -> bool:
    """Identical rows (same content) get ids of their own from their occurrence number
    (``repeat_id_sql``), so the first copy keeps its id and a longer file adds only its new
    rows; so do two different result_ids that share a 64-bit id (``_drop_repeated_ids`` has
    left out true repeats already).

    Returns whether ids still repeat (two different rows with one 64-bit hash: then one of
    them is kept).
    """
    repeated = f"""SELECT {pos} AS pos, rowid AS r, result_id FROM {ROWS} WHERE result_id IN (
                       SELECT result_id FROM {ROWS} GROUP BY result_id HAVING count(*) > 1)"""  # noqa: S608
    cur.execute(
        f"""UPDATE {ROWS} SET result_id = {repeat_id_sql("d.result_id", "d.n")}
            FROM (SELECT r, result_id,
                         CAST(row_number() OVER (PARTITION BY result_id ORDER BY pos) AS BIGINT)
                         AS n
                  FROM ({repeated})) AS d
            WHERE {ROWS}.rowid = d.r AND d.n > 1"""  # noqa: S608
    )
    rows, distinct = cur.execute(
        f"SELECT count(*), count(DISTINCT result_id) FROM {ROWS}"  # noqa: S608
    ).fetchall()[0]
    return distinct < rows


def _check_extras(cur: duckdb.DuckDBPyConnection, pos: str, plan: Plan, source: Source) -> None:
    """Extra columns whose values are per row (ids, free text) would make every row a series
    of its own: refused when one block of ``EXTRA_WINDOW_ROWS`` rows takes more than
    ``MAX_EXTRA_VALUES`` different values."""
    if not plan.extras:
        return
    total = cur.execute(f"SELECT count(DISTINCT extra_key) FROM {ROWS}").fetchall()[0][0]  # noqa: S608
    if total <= MAX_EXTRA_VALUES:
        return
    most = cur.execute(
        f"""SELECT max(n) FROM (SELECT count(DISTINCT extra_key) AS n FROM {ROWS}
                                GROUP BY {pos} // {int(EXTRA_WINDOW_ROWS)})"""  # noqa: S608
    ).fetchall()[0][0]
    if most <= MAX_EXTRA_VALUES:
        return
    names = ", ".join(column.label.removeprefix("column ") for _, column in plan.extras)
    raise IngestError(
        source.name,
        f"the extra columns ({names}) take more than {MAX_EXTRA_VALUES:,} different values "
        f"within {EXTRA_WINDOW_ROWS:,} rows: each would be a series of its own",
        "Drop per-row columns such as ids or free text, or list them under 'ignore' in a "
        "mapping (--mapping FILE).",
    )


# ---------------------------------------------------------------------------------- our tables


@contextlib.contextmanager
def local_path(source: Source, suffix: str) -> Iterator[Path]:
    """The source as a file DuckDB can read: its own path, or its bytes in a temporary file."""
    if source.path is not None:
        yield source.path
        return
    handle, name = tempfile.mkstemp(prefix="dtd-ingest-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out, source.open() as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                out.write(block)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def csv_delimiter(source: Source) -> str:
    """Tab, comma or semicolon, from the header line (a .tsv file is always tab-separated).

    Decided here rather than by DuckDB's sniffer, which can take a file whose rows have too few
    fields for a one-column file; with the delimiter fixed, such a row is an error with its line.
    """
    if source.name.lower().endswith(".tsv"):
        return "\t"
    header = b""
    with source.open() as handle:
        for raw in handle:
            if raw.strip():
                header = raw
                break
    counts = {d: header.count(d.encode()) for d in ("\t", ",", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record, as Python's csv module reads them."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quotechar='"')
        end = 0
        for row in reader:
            start, end = end + 1, reader.line_num
            if row and not (len(row) == 1 and not row[0].strip()):
                yield start, row


def csv_reader(con: duckdb.DuckDBPyConnection, path: Path, source: Source) -> Reader:
    """read_csv with the header read here and every column as text (so that a bad value is
    found and named by us, and DuckDB never guesses the layout)."""
    del con
    delimiter = csv_delimiter(source)
    try:
        header = next(_csv_records(path, delimiter), (1, []))[1]
    except csv.Error as exc:
        raise IngestError(f"{source.name} line 1 (the header)", f"is not CSV ({exc})") from None
    names = [name if name.strip() else f"column{i + 1}" for i, name in enumerate(header)]
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise IngestError(
                f"{source.name} line 1 (the header)",
                f"column {name}: appears twice",
                "Give every column its own name.",
            )
        seen.add(name.lower())
    columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in names)
    options = (
        f"header = true, auto_detect = false, delim = {literal(delimiter)}, quote = '\"', "
        f"escape = '\"', columns = {{{columns}}}"
    )
    relation = f"read_csv({literal(path)}, {options})"

    def where(pos: int) -> str:
        line = csv_line(path, delimiter, pos)
        return f"line {line}" if line else f"row {pos + 1}"

    def where_many(positions: list[int]) -> dict[int, str]:
        lines = csv_lines(path, delimiter, positions)
        return {p: f"line {lines[p]}" if p in lines else f"row {p + 1}" for p in positions}

    def explain(text: str) -> IngestError | None:
        if "Number of Columns" not in text:
            return None
        for line, row in _csv_records(path, delimiter):
            if len(row) != len(names):
                return IngestError(
                    f"{source.name} line {line}",
                    f"has {len(row)} fields where the header has {len(names)}",
                    "Every row needs a value (possibly empty) for every column.",
                )
        return None

    return Reader(relation, where, "CSV", explain, portable=True, where_many=where_many)


def csv_line(path: Path, delimiter: str, pos: int) -> int | None:
    """The line on which data row ``pos`` (0-based, after the header) starts; error path only."""
    for index, (line, _) in enumerate(_csv_records(path, delimiter)):
        if index == pos + 1:
            return line
    return None


def csv_lines(path: Path, delimiter: str, positions: list[int]) -> dict[int, int]:
    """``csv_line`` for several data rows in one pass (error path only)."""
    wanted, found = set(positions), {}
    last = max(wanted, default=-1)
    for index, (line, _) in enumerate(_csv_records(path, delimiter)):
        if index - 1 in wanted:
            found[index - 1] = line
        if index - 1 >= last:
            break
    return found


def jsonl_lines(path: Path, positions: list[int]) -> dict[int, int]:
    """``jsonl_line`` for several records in one pass (error path only)."""
    wanted, found = set(positions), {}
    last = max(wanted, default=-1)
    with path.open("rb") as handle:
        index = -1
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                index += 1
                if index in wanted:
                    found[index] = number
                if index >= last:
                    break
    return found


def jsonl_line(path: Path, pos: int) -> int | None:
    """The line holding JSON record ``pos`` (blank lines are skipped, as DuckDB does)."""
    with path.open("rb") as handle:
        index = -1
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                index += 1
                if index == pos:
                    return number
    return None


def _not_records(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, source: Source
) -> IngestError:
    """Why read_json found no objects: nothing at all, or values that are not objects."""
    try:
        count = con.execute(
            f"SELECT count(*) FROM read_json({literal(path)}, format = '{fmt}', records = false)"  # noqa: S608
        ).fetchall()[0][0]
    except duckdb.Error:
        count = None
    if count == 0:
        return IngestError(source.name, "holds no results (no JSON objects)", "Add results.")
    return IngestError(
        source.name,
        "holds JSON values that are not objects; each result must be an object such as "
        '{"ts": ..., "name": ..., "status": ...}',
    )


def json_reader(con: duckdb.DuckDBPyConnection, path: Path, source: Source, lines: bool) -> Reader:
    """read_json with every key as text; keys are found by reading the whole file once."""
    fmt = "newline_delimited" if lines else "array"
    what = "JSON Lines" if lines else "a JSON array of objects"
    probe = f"read_json({literal(path)}, format = '{fmt}', records = true, sample_size = -1)"
    try:
        names = [name for name, _ in columns_of(con, probe)]
    except duckdb.Error as exc:
        if "non-record" in str(exc):
            raise _not_records(con, path, fmt, source) from None
        raise _read_error(exc, source, Reader(probe, lambda p: "", what)) from None
    spec = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names)
    relation = f"read_json({literal(path)}, format = '{fmt}', records = true, columns = {{{spec}}})"
    if lines:

        def where(pos: int) -> str:
            line = jsonl_line(path, pos)
            return f"line {line}" if line else f"record {pos + 1}"

        def where_many(positions: list[int]) -> dict[int, str]:
            lines = jsonl_lines(path, positions)
            return {p: f"line {lines[p]}" if p in lines else f"record {p + 1}" for p in positions}

        return Reader(relation, where, what, portable=True, where_many=where_many)

    def where_record(pos: int) -> str:
        return f"record {pos + 1}"

    return Reader(relation, where_record, what, portable=True)


def parquet_reader(path: Path) -> Reader:
    relation = f"read_parquet({literal(path)})"
    return Reader(relation, lambda pos: f"row {pos + 1}", "Parquet", portable=True)


_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl", "json": ".json"}


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    fmt = sink.fmt if sink.fmt in _SUFFIX else "csv"
    suffix = ".tsv" if source.name.lower().endswith(".tsv") else _SUFFIX[fmt]
    with local_path(source, suffix) as path:
        con = connect()
        try:
            if fmt == "csv":
                reader = csv_reader(con, path, source)
            elif fmt == "parquet":
                reader = parquet_reader(path)
            else:
                reader = json_reader(con, path, source, lines=fmt == "jsonl")
            try:
                columns = columns_of(con, reader.relation)
            except duckdb.Error as exc:
                raise _read_error(exc, source, reader) from None
            plan = plan_for(columns, options.mapping, sink, source, reader)
            run_plan(con, reader, plan, source, sink, options)
        finally:
            con.close()


# ---------------------------------------------------------------------------------- planning


def _header_where(source: Source, reader: Reader) -> str:
    return f"{source.name} line 1 (the header)" if reader.what == "CSV" else source.name


def plan_for(
    columns: list[tuple[str, str]],
    mapping: dict[str, Any] | None,
    sink: Sink,
    source: Source,
    reader: Reader,
) -> Plan:
    """Which column is what: our names, ``metric.<name>`` and known metrics, a mapping's
    renames and constants, and everything else as extra dimensions (or as the mapping says)."""
    where = _header_where(source, reader)
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(MAPPING_KEYS))
    if unknown:
        raise IngestError(
            "mapping",
            f"unknown key {unknown[0]!r}",
            f"A mapping may hold: {', '.join(MAPPING_KEYS)} (docs/ingest-formats.md).",
        )
    types = {name: kind for name, kind in columns}
    by_lower: dict[str, str] = {}
    for name in types:
        by_lower.setdefault(name.strip().lower(), name)

    def theirs(value: Any, entry: str) -> str:
        if not isinstance(value, str) or not value:
            raise IngestError("mapping", f"{entry} must name a column, not {value!r}")
        if value in types:
            return value
        if value.strip().lower() in by_lower:
            return by_lower[value.strip().lower()]
        raise IngestError(
            where,
            f"mapping {entry}: the file has no column {value!r}",
            f"Its columns: {', '.join(types)}.",
        )

    def table(key: str) -> dict:
        value = mapping.get(key) or {}
        if not isinstance(value, dict):
            raise IngestError("mapping", f"{key} must be a table of name = value")
        return value

    used: set[str] = set()
    fields: dict[str, Column] = {}
    for ours, their in table("columns").items():
        if ours not in FIELDS:
            raise IngestError(
                "mapping",
                f"columns.{ours}: {ours!r} is not one of our columns",
                f"Ours: {', '.join(FIELDS)}.",
            )
        name = theirs(their, f"columns.{ours}")
        fields[ours] = Column.of(name, types[name], f"column {name} ({ours})")
        used.add(name)
    for ours, value in table("constants").items():
        if ours not in FIELDS or ours == "result_id":
            raise IngestError(
                "mapping",
                f"constants.{ours}: {ours!r} cannot be a constant",
                f"Use one of {', '.join(f for f in FIELDS if f != 'result_id')}.",
            )
        if not isinstance(value, str | int | float | bool):
            raise IngestError("mapping", f"constants.{ours} must be a single value")
        if ours in fields:
            raise IngestError("mapping", f"{ours} is both a column and a constant")
        fields[ours] = Column.constant(ours, value)
    metrics: list[tuple[MetricDef, Column]] = []
    for metric, spec in table("metrics").items():
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, dict) or "column" not in spec:
            raise IngestError("mapping", f"metrics.{metric} needs a column")
        name = theirs(spec["column"], f"metrics.{metric}.column")
        definition = _mapped_metric(metric, spec, sink)
        metrics.append((definition, Column.of(name, types[name], f"column {name} ({metric})")))
        used.add(name)
    extras: list[tuple[str, Column]] = []
    for dimension, their in table("extra").items():
        name = theirs(their, f"extra.{dimension}")
        extras.append((_dimension(dimension), Column.of(name, types[name])))
        used.add(name)
    ignore = mapping.get("ignore") or []
    if not isinstance(ignore, list):
        raise IngestError("mapping", "ignore must be a list of column names")
    used.update(theirs(name, "ignore") for name in ignore)
    others = mapping.get("other_columns", "extra")
    if others not in ("extra", "ignore", "error"):
        raise IngestError(
            "mapping", f"other_columns must be extra, ignore or error, not {others!r}"
        )
    status_values = {}
    for spelled, status in table("status_values").items():
        if status not in STATUSES:
            raise IngestError(
                "mapping",
                f"status_values.{spelled}: {status!r} is not one of {', '.join(STATUSES)}",
            )
        status_values[str(spelled).strip().lower()] = status
    ts_unit = mapping.get("ts_unit")
    if ts_unit is not None and ts_unit not in TS_UNITS:
        raise IngestError(
            "mapping", f"ts_unit must be one of {', '.join(TS_UNITS)}, not {ts_unit!r}"
        )

    metric_names = {m.name for m, _ in metrics}
    for name, kind in columns:
        if name in used:
            continue
        key = name.strip().lower()
        if key in FIELDS:
            if key in fields:
                if others == "ignore":
                    continue
                raise IngestError(
                    where,
                    f"column {name}: {key} is already given by {fields[key].label}",
                    "Rename one of them, or list it under 'ignore' in a mapping.",
                )
            fields[key] = Column.of(name, kind)
            continue
        if key.startswith(METRIC_PREFIX):
            metric = name.strip()[len(METRIC_PREFIX) :].strip()
            if not metric:
                raise IngestError(
                    where, f"column {name}: a metric column needs a name after 'metric.'"
                )
        elif sink.knows(name.strip()):
            metric = name.strip()
        else:
            if others == "ignore":
                continue
            if others == "error":
                raise IngestError(
                    where,
                    f"column {name}: is not one of ours, not a metric.<name>, and not mapped",
                    "Map it, or list it under 'ignore'.",
                )
            extras.append((_dimension(name), Column.of(name, kind)))
            continue
        if metric in metric_names:
            raise IngestError(where, f"column {name}: metric {metric} appears twice")
        metric_names.add(metric)
        metrics.append(
            (
                infer_metric(metric, f"from column {name.strip()}"),
                Column.of(name, kind),
            )
        )

    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        hint = (
            "Rename the columns, or give a mapping (dtd ingest --mapping FILE, "
            "docs/ingest-formats.md)."
        )
        if {"t_since_run_start_s", "eval_accuracy"} <= set(by_lower):
            hint = (
                "This looks like MLPerf Training's eval_curves.csv (convergence curves), which "
                "is not a table of results; ingest runs.csv beside it instead."
            )
        raise IngestError(
            where,
            f"column {missing[0]}: is missing (required: {', '.join(REQUIRED)}; the file has "
            f"{', '.join(types) or 'no columns'})",
            hint,
        )
    dimensions = [d for d, _ in extras]
    if len(set(dimensions)) != len(dimensions):
        dup = next(d for d in dimensions if dimensions.count(d) > 1)
        raise IngestError(where, f"extra dimension {dup!r} comes from two columns")
    return Plan(
        fields=fields,
        metrics=metrics,
        extras=extras,
        content=[quote(name) for name, _ in columns],
        status_values=status_values,
        ts_unit=ts_unit,
    )


def _dimension(name: str) -> str:
    """An extra dimension's key: the column name, without the characters the key format uses."""
    return name.strip().replace("=", "_").replace("\x1f", " ")


def _mapped_metric(metric: str, spec: dict, sink: Sink) -> MetricDef:
    unit, direction = spec.get("unit"), spec.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise IngestError(
            "mapping",
            f"metrics.{metric}.direction: {direction!r} is not one of {', '.join(DIRECTIONS)}",
        )
    if sink.knows(metric):
        row = sink.cur.execute(
            "SELECT unit, direction FROM metrics WHERE name = ?", [metric]
        ).fetchall()
        if row:
            known_unit, known_direction = row[0]
            if (unit is not None and unit != known_unit) or (
                direction is not None and direction != known_direction
            ):
                raise IngestError(
                    "mapping",
                    f"metrics.{metric}: the store already has this metric in {known_unit!r}, "
                    f"{known_direction} is better; the mapping says {unit!r}, {direction}",
                    "Use another metric name, or the store's unit and direction.",
                )
        return MetricDef(
            metric, known_unit if row else unit or "", known_direction if row else "none"
        )
    inferred = infer_metric(metric, spec.get("description", ""))
    return MetricDef(
        metric,
        unit if unit is not None else inferred.unit,
        direction or inferred.direction,
        spec.get("description") or f"from column {spec['column']}",
    )


__all__ = [
    "FIELDS",
    "REQUIRED",
    "STATUS_SPELLINGS",
    "Check",
    "Column",
    "Plan",
    "Reader",
    "connect",
    "infer_metric",
    "parse",
    "run_plan",
]
