"""Where parsed records go: validated, identified and written in bulk, inside one transaction.

Three ways in. Record-by-record parsers (JUnit, benchmark JSON) call ``add``; a caller with
canonical Arrow chunks calls ``add_table``; both end in ``Sink._write``. Table-shaped inputs
(CSV, Parquet, JSON Lines, MLPerf, the seed's database) call ``add_relation`` with a table or
view that already sits in the store's own connection: series, runs, workers, the anti-join
against the results already stored and both INSERTs run in SQL there, so a million rows never
pass through Python, not even as Arrow. Everything happens inside the caller's transaction.

Ids are computed in bulk: ``series_id`` in Python for the few distinct configurations (the same
function the demo uses); ``run_id``, and ``result_id`` for ``add`` and ``add_table``, in DuckDB
from an md5 of the format and the record's key (stable across versions). Rows that come through
``add_relation`` carry their ``result_id`` already, made by ``row_id_sql`` (``ROW_ID_SCHEME``):
DuckDB's ``hash()``, several times faster than an md5 of the row's text, but not promised stable
across DuckDB releases (duckdb is pinned in pyproject.toml). The first table-shaped ingest into
a store records ``hash()`` of a fixed text in ``dtd_meta`` (``row_hash_probe``); an ingest
under a DuckDB that hashes differently still works, but logs a warning: table files ingested
before may then be added again (docs/ingest-formats.md, "Identity").
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lib.ids import series_id
from lib.ingest.model import (
    MAX_LISTED,
    IngestError,
    MetricDef,
    Problem,
    Record,
    RunInfo,
    WorkerInfo,
)
from lib.schema import DIRECTIONS, KINDS, STATUSES
from lib.validation import TS_END, TS_FIRST
from lib.writer import Batch, append_in

log = logging.getLogger(__name__)

CANONICAL: dict[str, pa.DataType] = {
    "result_key": pa.string(),
    "ts": pa.timestamp("us"),
    "kind": pa.string(),
    "suite": pa.string(),
    "name": pa.string(),
    "status": pa.string(),
    "duration_s": pa.float64(),
    "message": pa.string(),
    "model": pa.string(),
    "model_family": pa.string(),
    "modality": pa.string(),
    "hardware": pa.string(),
    "device": pa.string(),
    "batch_size": pa.int32(),
    "precision": pa.string(),
    "extra_key": pa.string(),
    "file": pa.string(),
    "worker_id": pa.string(),
    "hostname": pa.string(),
    "worker_hardware": pa.string(),
    "worker_device": pa.string(),
    "os": pa.string(),
    "run_key": pa.string(),
    "run_name": pa.string(),
    "run_started_at": pa.timestamp("us"),
    "git_commit": pa.string(),
    "git_branch": pa.string(),
}
"""The columns of a chunk of results, whichever parser made it."""
METRIC_COLUMNS: dict[str, pa.DataType] = {
    "result_key": pa.string(),
    "metric": pa.string(),
    "value": pa.float64(),
}
IDENTITY = (
    "kind",
    "suite",
    "name",
    "model",
    "hardware",
    "device",
    "batch_size",
    "precision",
    "extra_key",
    "file",
)
EXTRA_SEPARATOR = "\x1f"
MAX_NAME = 4096
"""Longest test or suite name accepted: parametrised names run to hundreds of characters,
never to megabytes."""


def extra_key(extra: dict[str, str]) -> str | None:
    """Extra dimensions as one canonical string (sorted), None when there are none."""
    if not extra:
        return None
    return EXTRA_SEPARATOR.join(f"{k}={extra[k]}" for k in sorted(extra))


def _extra_from_key(key: str | None) -> list[tuple[str, str]]:
    if not key:
        return []
    return [tuple(part.split("=", 1)) for part in key.split(EXTRA_SEPARATOR)]  # type: ignore[misc]


RELATION_COLUMNS: dict[str, str] = {
    "result_id": "BIGINT",
    "ts": "TIMESTAMP",
    "kind": "VARCHAR",
    "suite": "VARCHAR",
    "name": "VARCHAR",
    "status": "VARCHAR",
    "duration_s": "DOUBLE",
    "message": "VARCHAR",
    "model": "VARCHAR",
    "model_family": "VARCHAR",
    "modality": "VARCHAR",
    "hardware": "VARCHAR",
    "device": "VARCHAR",
    "batch_size": "INTEGER",
    "precision": "VARCHAR",
    "extra_key": "VARCHAR",
    "file": "VARCHAR",
    "worker_id": "VARCHAR",
    "hostname": "VARCHAR",
    "worker_hardware": "VARCHAR",
    "worker_device": "VARCHAR",
    "os": "VARCHAR",
    "run_key": "VARCHAR",
    "run_name": "VARCHAR",
    "run_started_at": "TIMESTAMP",
    "git_commit": "VARCHAR",
    "git_branch": "VARCHAR",
    "series_key": "UBIGINT",
}
"""The columns ``add_relation`` reads (any may be missing: NULL), with their SQL types.
``series_key`` is any 64-bit hash of the IDENTITY columns as they are before the defaults are
applied (missing: DuckDB's ``hash()`` of them after). Without ``run_key``, runs are told apart
by ``run_name`` and ``git_commit`` (the key "name|commit", "None" for a missing one, as the
table formats make it)."""
_SERIES_EXTRA = ("model_family", "modality")

ROW_ID_SCHEME = "CAST(hash('<format>', <part>, ...) >> 1 AS BIGINT)"
"""How a table-shaped row's ``result_id`` is made (``row_id_sql``): DuckDB's ``hash()`` of the
format's name and the row's identity (the tag 'id' and its result_id text, or the tag 'row' and
every column of the row as written), shifted into a non-negative BIGINT; the n-th copy (n > 1)
of an identical row gets ``CAST(hash(<id>, n) >> 1 AS BIGINT)`` (``repeat_id_sql``, n a
BIGINT). ``hash()`` is not promised stable across DuckDB releases: see ``ROW_HASH_PROBE``."""
ROW_HASH_PROBE = ("row_hash_probe", "distributed-testing-dashboard row id probe")
"""``dtd_meta`` key, and the text whose ``hash()`` is recorded there on the first table-shaped
ingest: a DuckDB whose ``hash()`` differs makes other ids for the same rows."""


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def row_id_sql(fmt: str, parts: list[str]) -> str:
    """SQL for a table row's result_id from SQL expressions of its identity (``ROW_ID_SCHEME``)."""
    return f"CAST(hash({_literal(fmt)}, {', '.join(parts)}) >> 1 AS BIGINT)"


def repeat_id_sql(row_id: str, occurrence: str) -> str:
    """SQL for the id of the ``occurrence``-th copy (2, 3, ...) of a row whose id is ``row_id``."""
    return f"CAST(hash({row_id}, {occurrence}) >> 1 AS BIGINT)"


def _id_sql(column: str) -> str:
    """A stable signed 64-bit id from ``prefix || column`` (prefix is the first parameter)."""
    return (
        f"CAST(CAST(md5_number_lower(? || chr(31) || {column}) AS HUGEINT) "
        "- 9223372036854775808 AS BIGINT)"
    )


class Sink:
    """Collects one source's results and writes them in chunks inside one transaction."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        fmt: str,
        source_name: str,
        chunk_size: int = 20_000,
        defaults: dict[str, str] | None = None,
        strict: bool = False,
    ) -> None:
        self.cur, self.fmt, self.source_name, self.chunk_size = cur, fmt, source_name, chunk_size
        self.defaults = dict(defaults or {})
        self.strict = strict
        self.problems: list[Problem] = []
        """The first ``MAX_LISTED`` problems; ``rejected`` and ``warnings`` count them all."""
        self.rejected = 0
        self.warnings = 0
        self.reject_fix = REJECTED_FIX
        self.parsed: Counter[str] = Counter()
        self.added: Counter[str] = Counter()
        self._columns: dict[str, list] = {name: [] for name in CANONICAL}
        self._metric_rows: dict[str, list] = {name: [] for name in METRIC_COLUMNS}
        self._metrics = {row[0] for row in cur.execute("SELECT name FROM metrics").fetchall()}
        self._probed = False

    # ------------------------------------------------------------------ definitions

    def define(self, metrics: Iterable[MetricDef]) -> None:
        """Make metrics known (unit and direction); one already in the store keeps its own."""
        new = [m for m in metrics if m.name not in self._metrics]
        for m in new:
            if m.direction not in DIRECTIONS:
                raise ValueError(f"metric {m.name}: direction {m.direction!r} not in {DIRECTIONS}")
        if new:
            table = pa.table(
                {
                    "name": [m.name for m in new],
                    "unit": [m.unit for m in new],
                    "direction": [m.direction for m in new],
                    "description": [m.description or None for m in new],
                }
            )
            self._count(append_in(self.cur, Batch(metrics=table)))
            self._metrics.update(m.name for m in new)

    def knows(self, metric: str) -> bool:
        return metric in self._metrics

    # ------------------------------------------------------------------ problems

    def where(self, place: str) -> str:
        """A place in this source, for messages ("junit.xml test case 12")."""
        return f"{self.source_name} {place}".strip()

    def reject(self, where: str, problem: str, fix: str = "") -> None:
        """Leave one record out and say why; with ``strict``, fail the whole file instead."""
        if self.strict:
            raise IngestError(where, problem, fix)
        self.rejected += 1
        self._list(Problem(where, problem, fix or self.reject_fix, "rejected"))

    def count_rejected(self, count: int) -> None:
        """Records left out beyond the listed ones (table formats list the first few)."""
        self.rejected += count

    def warn(self, where: str, problem: str, fix: str) -> None:
        """A record (or a part several share) stored with a stand-in for what it lacks; with
        ``strict``, a problem that fails the file, as before per-record tolerance."""
        if self.strict:
            raise IngestError(where, problem, "(--strict: the file was not ingested.)")
        self.warnings += 1
        self._list(Problem(where, problem, fix, "kept"))

    def _list(self, problem: Problem) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)

    # ------------------------------------------------------------------ records

    def _fail(self, record: Record, field: str, problem: str) -> None:
        raise IngestError(self.where(record.where), f"{field}: {problem}")

    def _apply_defaults(self, record: Record) -> None:
        d = self.defaults
        for field in ("hardware", "device", "model", "precision", "kind"):
            if getattr(record, field) is None and d.get(field):
                setattr(record, field, d[field])
        if record.batch_size is None and d.get("batch_size"):
            record.batch_size = int(d["batch_size"])
        if record.kind is None:
            record.kind = "unit_test"
        if record.worker is None and d.get("worker"):
            record.worker = WorkerInfo(d["worker"], hostname=d["worker"])
        if any(d.get(k) for k in ("run", "git_commit", "git_branch")):
            run = record.run or RunInfo(key=f"{d.get('run')}|{d.get('git_commit')}")
            record.run = replace(
                run,
                name=run.name or d.get("run"),
                git_commit=run.git_commit or d.get("git_commit"),
                git_branch=run.git_branch or d.get("git_branch"),
            )

    def add(self, record: Record) -> None:
        """Validate one record and buffer it (a bad one is rejected: left out and listed, or
        with ``strict`` the file's error); flushes a chunk when the buffer is full."""
        try:
            self._validate(record)
        except IngestError as exc:
            self.reject(exc.where, exc.problem, exc.fix)
            return
        self._buffer(record)

    def _validate(self, record: Record) -> None:
        self._apply_defaults(record)
        if not record.name or not str(record.name).strip():
            self._fail(record, "name", "is missing (every result needs a test or benchmark name)")
        for field in ("name", "suite"):
            value = getattr(record, field)
            if value is not None and len(str(value)) > MAX_NAME:
                self._fail(
                    record,
                    field,
                    f"is {len(str(value)):,} characters long; the limit is {MAX_NAME:,}",
                )
        if record.ts is None:
            self._fail(record, "timestamp", "is missing")
        if not TS_FIRST <= record.ts < TS_END:
            self._fail(record, "timestamp", f"{record.ts} is outside the years 1970 to 2199")
        if record.status not in STATUSES:
            self._fail(record, "status", f"{record.status!r} is not one of {', '.join(STATUSES)}")
        if record.kind not in KINDS:
            self._fail(record, "kind", f"{record.kind!r} is not one of {', '.join(KINDS)}")
        if record.duration_s is not None:
            if not math.isfinite(record.duration_s):
                self._fail(record, "duration", f"{record.duration_s} is not a finite number")
            if record.duration_s < 0:
                self._fail(record, "duration", f"{record.duration_s} is negative")
        for metric, value in record.metrics.items():
            if metric not in self._metrics:
                self._fail(
                    record, f"metric {metric}", "was never defined with a unit and direction"
                )
            if not isinstance(value, int | float) or not math.isfinite(value):
                self._fail(record, f"metric {metric}", f"{value!r} is not a finite number")

    def _buffer(self, record: Record) -> None:
        key = (
            self.fmt
            + "\x1f"
            + "\x1f".join("" if part is None else str(part) for part in record.key)
        )
        run, worker = record.run, record.worker
        values = {
            "result_key": key,
            "ts": record.ts,
            "kind": record.kind,
            "suite": record.suite,
            "name": str(record.name),
            "status": record.status,
            "duration_s": record.duration_s,
            "message": record.message,
            "model": record.model,
            "model_family": record.model_family,
            "modality": record.modality,
            "hardware": record.hardware,
            "device": record.device,
            "batch_size": record.batch_size,
            "precision": record.precision,
            "extra_key": extra_key(record.extra),
            "file": record.file,
            "worker_id": worker and worker.worker_id,
            "hostname": worker and worker.hostname,
            "worker_hardware": worker and worker.hardware,
            "worker_device": worker and worker.device,
            "os": worker and worker.os,
            "run_key": run and run.key,
            "run_name": run and run.name,
            "run_started_at": run and run.started_at,
            "git_commit": run and run.git_commit,
            "git_branch": run and run.git_branch,
        }
        for name, value in values.items():
            self._columns[name].append(value)
        for metric, value in record.metrics.items():
            self._metric_rows["result_key"].append(key)
            self._metric_rows["metric"].append(metric)
            self._metric_rows["value"].append(float(value))
        if len(self._columns["result_key"]) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._columns["result_key"]:
            return
        table = pa.table(
            {name: pa.array(values, CANONICAL[name]) for name, values in self._columns.items()}
        )
        metrics = pa.table(
            {
                name: pa.array(values, METRIC_COLUMNS[name])
                for name, values in self._metric_rows.items()
            }
        )
        self._columns = {name: [] for name in CANONICAL}
        self._metric_rows = {name: [] for name in METRIC_COLUMNS}
        self._write(table, metrics)

    def add_table(self, table: pa.Table, metrics: pa.Table | None = None) -> None:
        """Write a validated chunk in canonical columns (missing ones are NULL).

        ``result_key`` must already hold the format's identity; metrics come in long form.
        """
        columns = {}
        for name, kind in CANONICAL.items():
            if name in table.column_names:
                columns[name] = table.column(name).cast(kind)
            else:
                columns[name] = pa.nulls(table.num_rows, kind)
        columns = self._table_defaults(columns, table.num_rows)
        prefix = pa.scalar(self.fmt + "\x1f")
        columns["result_key"] = pc.binary_join_element_wise(prefix, columns["result_key"], "")
        if metrics is None:
            metrics = pa.table({n: pa.array([], t) for n, t in METRIC_COLUMNS.items()})
        else:
            metrics = metrics.set_column(
                0,
                "result_key",
                pc.binary_join_element_wise(prefix, metrics.column("result_key"), ""),
            )
        self._write(pa.table(columns), metrics)

    def _table_defaults(self, columns: dict[str, pa.Array], rows: int) -> dict[str, pa.Array]:
        """``add_table``'s version of ``_apply_defaults``: fill NULLs with the caller's values."""
        d = self.defaults
        for key, column in _DEFAULT_TARGETS.items():
            if d.get(key):
                value = pa.scalar(d[key]).cast(CANONICAL[column])
                columns[column] = pc.fill_null(columns[column], value)
        columns["kind"] = pc.fill_null(columns["kind"], pa.scalar("unit_test"))
        if d.get("worker"):
            columns["hostname"] = pc.fill_null(columns["hostname"], pa.scalar(d["worker"]))
        if any(d.get(k) for k in ("run", "git_commit")):
            run_key = pa.scalar(f"{d.get('run')}|{d.get('git_commit')}")
            columns["run_key"] = pc.fill_null(columns["run_key"], run_key)
        return columns

    # ------------------------------------------------------------------ writing

    def _count(self, added: dict[str, int]) -> None:
        self.added.update({k: v for k, v in added.items() if v})

    def _write(self, table: pa.Table, metrics: pa.Table) -> None:
        cur = self.cur
        cur.register("_in", table)
        cur.register("_in_metrics", metrics)
        for status, count in cur.execute(
            "SELECT status, count(*) FROM _in GROUP BY ALL"
        ).fetchall():
            self.parsed[status] += count
        self.parsed["results"] += table.num_rows
        self.parsed["measurements"] += metrics.num_rows

        series_table = continue_legacy(cur, self._series_table())
        cur.register("_series", series_table)
        runs = cur.sql(
            f"""SELECT run_key, {_id_sql("run_key")} AS run_id, any_value(run_name) AS name,
                       ? AS source, coalesce(min(run_started_at), min(ts)) AS started_at,
                       any_value(git_commit) AS git_commit, any_value(git_branch) AS git_branch
                FROM _in WHERE run_key IS NOT NULL GROUP BY run_key""",  # noqa: S608
            params=["run", self.fmt],
        ).to_arrow_table()
        cur.register("_runs", runs)
        join = " AND ".join(f"i.{c} IS NOT DISTINCT FROM s.{c}" for c in IDENTITY)
        unique = cur.execute("SELECT count(*) = count(DISTINCT result_key) FROM _in").fetchall()[0][
            0
        ]
        # Only the results the store does not hold yet, with the columns results need.
        cur.execute(
            f"""CREATE OR REPLACE TEMP TABLE _new AS
                SELECT {"" if unique else "DISTINCT ON (result_id) "}* FROM (
                    SELECT i.result_key, s.series_id, {_id_sql("i.result_key")} AS result_id,
                           r.run_id, i.worker_id, i.ts, i.status, i.duration_s, i.message
                    FROM _in AS i JOIN _series AS s ON {join}
                    LEFT JOIN _runs AS r USING (run_key)) AS k
                WHERE NOT EXISTS (SELECT 1 FROM results AS e WHERE e.result_id = k.result_id)""",  # noqa: S608
            [self.fmt],
        )
        # Series only for results that are new (the same report again adds no series either).
        used = pa.array(
            [r[0] for r in cur.execute("SELECT DISTINCT series_id FROM _new").fetchall()],
            pa.int64(),
        )
        series_table = series_table.filter(pc.is_in(series_table["series_id"], value_set=used))
        self._count(
            append_in(
                cur,
                Batch(
                    series=_series_batch(series_table),
                    runs=runs.drop_columns(["run_key"]),
                    workers=cur.sql(
                        """SELECT worker_id, any_value(hostname) AS hostname,
                          any_value(worker_hardware) AS hardware,
                          any_value(worker_device) AS device, any_value(os) AS os,
                          min(ts) AS registered_at
                   FROM _in WHERE worker_id IS NOT NULL GROUP BY worker_id"""
                    ).to_arrow_table(),
                ),
            )
        )
        added = cur.execute(
            """INSERT INTO results BY NAME
               SELECT result_id, series_id, run_id, worker_id, ts, status, duration_s, message
               FROM _new ORDER BY ts"""
        ).fetchall()[0][0]
        # A result's metric values are always written with it, so those of new results are new.
        distinct = "" if unique else "DISTINCT ON (n.result_id, m.metric) "
        measured = cur.execute(
            f"""INSERT INTO measurements BY NAME
                SELECT {distinct}n.result_id, n.series_id, n.ts, m.metric, m.value
                FROM _in_metrics AS m JOIN _new AS n USING (result_key) ORDER BY n.ts"""  # noqa: S608
        ).fetchall()[0][0]
        self._count({"results": added, "measurements": measured})
        for name in ("_in", "_in_metrics", "_series", "_runs"):
            cur.unregister(name)
        cur.execute("DROP TABLE _new")

    def _series_table(self) -> pa.Table:
        """The chunk's distinct configurations with their ids (computed in Python: few rows)."""
        identities = self.cur.execute(
            f"SELECT {', '.join(IDENTITY)}, any_value(model_family), any_value(modality) "  # noqa: S608
            "FROM _in GROUP BY ALL"
        ).fetchall()
        return _series_from(identities)

    # ------------------------------------------------------------------ relations

    def add_relation(self, relation: str, metrics: dict[str, str], distinct: bool = False) -> None:
        """Write the rows of a table or view that sits in the store's connection (``self.cur``).

        ``relation`` has columns named as in ``RELATION_COLUMNS`` (missing ones are NULL) with
        checked values, and a ``result_id`` that does not repeat within it unless ``distinct``
        is set (then one row per id is kept); ``metrics`` maps each metric (already defined) to
        the column holding its values (NULL: not measured). Only the rows whose ``result_id``
        the store does not hold yet are written, in the relation's order, with their values.
        """
        cur = self.cur
        self._probe_row_hash()
        present = {row[0] for row in cur.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}  # noqa: S608
        columns = self._relation_columns(present)
        values = {f"__v{i}": _quote(column) for i, column in enumerate(metrics.values())}
        body = ", ".join(
            f"{expr} AS {_quote(name)}" for name, expr in {**columns, **values}.items()
        )
        cur.execute(f"CREATE OR REPLACE TEMP VIEW _dtd_in AS SELECT {body} FROM {relation}")  # noqa: S608
        try:
            self._write_relation(list(metrics), list(values), distinct, "run_key" not in present)
        finally:
            cur.execute("DROP VIEW IF EXISTS _dtd_in")

    def _relation_columns(self, present: set[str]) -> dict[str, str]:
        """``_apply_defaults`` for a relation: each column's SQL, NULLs filled with defaults."""
        d = self.defaults
        columns = {
            name: _quote(name) if name in present else f"NULL::{kind}"
            for name, kind in RELATION_COLUMNS.items()
        }

        def fill(column: str, value: str) -> None:
            kind = RELATION_COLUMNS[column]
            columns[column] = f"coalesce({columns[column]}, CAST({_literal(value)} AS {kind}))"

        for key, column in _DEFAULT_TARGETS.items():
            if d.get(key):
                fill(column, d[key])
        fill("kind", "unit_test")
        if d.get("worker"):
            fill("hostname", d["worker"])
        if "run_key" in present and any(d.get(k) for k in ("run", "git_commit")):
            fill("run_key", f"{d.get('run')}|{d.get('git_commit')}")
        if "series_key" not in present:
            columns["series_key"] = f"hash({', '.join(columns[c] for c in IDENTITY)})"
        return columns

    def _write_relation(
        self, metrics: list[str], values: list[str], distinct: bool, by_name: bool
    ) -> None:
        cur = self.cur
        by_status = ", ".join(f"count(*) FILTER (WHERE status = {_literal(s)})" for s in STATUSES)
        measured = " + ".join(f"count({v})" for v in values) or "0"
        rows, *counts, measurements = cur.execute(
            f"SELECT count(*), {by_status}, {measured} FROM _dtd_in"  # noqa: S608
        ).fetchall()[0]
        self.parsed["results"] += rows
        self.parsed["measurements"] += measurements
        for status, count in zip(STATUSES, counts, strict=True):
            self.parsed[status] += count
        if not rows:
            return

        # Series: the distinct configurations, told apart by ``series_key`` (one number to
        # group and join on; two configurations with one 64-bit key are as unlikely as two
        # results with one id); their ids are computed in Python.
        identity = ", ".join(f"any_value({_quote(c)})" for c in (*IDENTITY, *_SERIES_EXTRA))
        found = cur.execute(
            f"SELECT series_key, {identity} FROM _dtd_in GROUP BY series_key"  # noqa: S608
        ).fetchall()
        series_table = _series_from([row[1:] for row in found])
        keys = pa.array([row[0] for row in found], pa.uint64())
        cur.register("_dtd_series", pa.table({"k": keys, "series_id": series_table["series_id"]}))
        if by_name:
            # The run's key is "name|commit" ("None" for a missing one), made once per run.
            key = "coalesce(run_name, 'None') || '|' || coalesce(git_commit, 'None')"
            runs_sql = f"""SELECT run_name AS k1, git_commit AS k2, {_id_sql(key)} AS run_id,
                                  run_name AS name, ? AS source,
                                  coalesce(min(run_started_at), min(ts)) AS started_at,
                                  git_commit, any_value(git_branch) AS git_branch
                           FROM _dtd_in WHERE run_name IS NOT NULL OR git_commit IS NOT NULL
                           GROUP BY run_name, git_commit"""  # noqa: S608
            run_join = (
                "r.k1 IS NOT DISTINCT FROM i.run_name AND r.k2 IS NOT DISTINCT FROM i.git_commit"
            )
        else:
            runs_sql = f"""SELECT run_key AS k1, NULL AS k2, {_id_sql("run_key")} AS run_id,
                                  any_value(run_name) AS name, ? AS source,
                                  coalesce(min(run_started_at), min(ts)) AS started_at,
                                  any_value(git_commit) AS git_commit,
                                  any_value(git_branch) AS git_branch
                           FROM _dtd_in WHERE run_key IS NOT NULL GROUP BY run_key"""  # noqa: S608
            run_join = "r.k1 = i.run_key"
        runs = cur.sql(runs_sql, params=["run", self.fmt]).to_arrow_table()
        cur.register("_dtd_runs", runs)
        try:
            workers = cur.sql(
                """SELECT worker_id, any_value(hostname) AS hostname,
                          any_value(worker_hardware) AS hardware,
                          any_value(worker_device) AS device, any_value(os) AS os,
                          min(ts) AS registered_at
                   FROM _dtd_in WHERE worker_id IS NOT NULL GROUP BY worker_id"""
            ).to_arrow_table()
            batch = Batch(
                series=_series_batch(series_table),
                runs=runs.drop_columns(["k1", "k2"]),
                workers=workers,
            )
            self._count(append_in(cur, batch))
            # The rows whose result the store does not hold yet, in the relation's order: no
            # sort, so a time-ordered file stays time-ordered on disk (zone maps stay useful).
            # One look at the store says how many it holds: usually none (a new file: no
            # anti-join below) or all (the same file again: nothing to write).
            held = cur.execute(
                "SELECT count(*) FROM _dtd_in AS i WHERE EXISTS "
                "(SELECT 1 FROM results AS e WHERE e.result_id = i.result_id)"
            ).fetchall()[0][0]
            if held == rows:
                return
            joined = "FROM _dtd_in AS i JOIN _dtd_series AS s ON s.k = i.series_key"
            new = (
                "WHERE NOT EXISTS (SELECT 1 FROM results AS e WHERE e.result_id = i.result_id)"
                if held
                else ""
            )
            one = "DISTINCT ON (i.result_id) " if distinct else ""
            # Metric values first, while the anti-join still sees the store without these
            # results: a result's values are always written with it, so these are all new.
            added_values = 0
            if values:
                named = ", ".join(
                    f"{v} AS {_literal(m)}" for v, m in zip(values, metrics, strict=True)
                )
                wide = ", ".join(f"i.{v}" for v in values)
                added_values = cur.execute(
                    f"""INSERT INTO measurements BY NAME
                        SELECT result_id, series_id, ts, metric, value FROM (
                            UNPIVOT (SELECT {one}i.result_id, s.series_id, i.ts, {wide}
                                     {joined} {new})
                            ON {named} INTO NAME metric VALUE value)"""  # noqa: S608
                ).fetchall()[0][0]
            added = cur.execute(
                f"""INSERT INTO results BY NAME
                    SELECT {one}i.result_id, s.series_id, r.run_id, i.worker_id, i.ts, i.status,
                           i.duration_s, i.message
                    {joined} LEFT JOIN _dtd_runs AS r ON {run_join} {new}"""  # noqa: S608
            ).fetchall()[0][0]
        finally:
            cur.unregister("_dtd_series")
            cur.unregister("_dtd_runs")
        self._count({"results": added, "measurements": added_values})

    def _probe_row_hash(self) -> None:
        """On the first table-shaped ingest, record ``hash()`` of a fixed text; later, warn
        when this DuckDB's differs (its ids for the same rows differ too)."""
        if self._probed:
            return
        self._probed = True
        key, text = ROW_HASH_PROBE
        now = str(self.cur.execute(f"SELECT hash({_literal(text)})").fetchall()[0][0])  # noqa: S608
        found = self.cur.execute("SELECT value FROM dtd_meta WHERE key = ?", [key]).fetchall()
        if not found:
            self.cur.execute("INSERT OR REPLACE INTO dtd_meta VALUES (?, ?)", [key, now])
        elif found[0][0] != now:
            log.warning(
                "DuckDB %s hashes differently from the release that first wrote table-shaped "
                "results into this store, so a table file ingested before (now: %s) may be "
                "added again: its rows get other ids (docs/ingest-formats.md, 'Identity').",
                duckdb.__version__,
                self.source_name,
            )

    def finish(self) -> dict[str, Any]:
        """Write what is buffered; return counts of what the source held and what was new,
        with the records left out and the problems listed.

        A source whose every record was rejected is the file's error: nothing of it is kept
        (the caller's transaction rolls back), and the message is the first problem's.
        """
        self.flush()
        if self.rejected and not self.parsed["results"]:
            first = self.problems[0]
            more = (
                f" None of its {self.rejected:,} records could be stored; "
                "the others are listed in the report."
                if self.rejected > 1
                else ""
            )
            raise IngestError(first.where, first.problem, (first.fix + more).strip())
        return {
            "rejected": self.rejected,
            "warnings": self.warnings,
            "problems": [p.as_dict() for p in self.problems],
            "results": self.parsed["results"],
            "passed": self.parsed["passed"],
            "failed": self.parsed["failed"],
            "errors": self.parsed["error"],
            "skipped": self.parsed["skipped"],
            "measurements": self.parsed["measurements"],
            "added": self.added["results"],
        }


REJECTED_FIX = (
    "The file's other records went in. Correct this one and ingest the file again: records "
    "already stored are not added twice."
)
"""What to do about a rejected record when the check says nothing more precise (formats whose
identity is the file's content as a whole, such as JUnit, set ``Sink.reject_fix``)."""

_DEFAULT_TARGETS = {
    "hardware": "hardware",
    "device": "device",
    "model": "model",
    "precision": "precision",
    "kind": "kind",
    "batch_size": "batch_size",
    "worker": "worker_id",
    "git_commit": "git_commit",
    "git_branch": "git_branch",
    "run": "run_name",
}
"""Defaults (``--set key=value``) -> the column whose NULLs they fill."""


def _series_from(identities: list[tuple]) -> pa.Table:
    """Distinct configurations (the IDENTITY columns, model_family, modality) with their ids."""
    columns: dict[str, list[Any]] = {n: [] for n in (*IDENTITY, "model_family", "modality")}
    ids = []
    for row in identities:
        for name, value in zip(columns, row, strict=True):
            columns[name].append(value)
        kind, suite, name, model, hardware, device, batch, precision, extra, file = row[:10]
        ids.append(
            series_id(
                kind,
                suite,
                name,
                model,
                hardware,
                device,
                batch,
                precision,
                dict(_extra_from_key(extra)),
                file,
            )
        )
    return pa.table(
        {
            "series_id": pa.array(ids, pa.int64()),
            **{
                name: pa.array(values, CANONICAL.get(name, pa.string()))
                for name, values in columns.items()
            },
        }
    )


LEGACY_TABLE = "legacy_series"
"""Series stored before test identity included the file (``lib.schema``), whose history a file
may continue: the first file that reports the same test takes the series' id."""


def continue_legacy(cur: duckdb.DuckDBPyConnection, series_table: pa.Table) -> pa.Table:
    """Give a test that now has a file the id of its series from before files were part of the
    identity, when that series was unique (``LEGACY_TABLE``): the first file to report the test
    takes it over (recorded there and in ``series.file``), and keeps it from then on.

    Two files of one chunk that both want the same series show that its history mixed them:
    neither takes it, and it is no longer offered. Series without a file are untouched (their
    ids never changed). A store with nothing listed (every store made since) skips all this.
    """
    files = series_table["file"].to_pylist()
    if not any(files):
        return series_table
    if not cur.execute(f"SELECT count(*) FROM {LEGACY_TABLE}").fetchall()[0][0]:  # noqa: S608
        return series_table
    columns = {name: series_table[name].to_pylist() for name in IDENTITY[:-1]}
    wanted: dict[int, set[str]] = {}
    legacy_ids: list[int | None] = []
    for row, file in enumerate(files):
        if file is None:
            legacy_ids.append(None)
            continue
        kind, suite, name, model, hardware, device, batch, precision, extra = (
            columns[c][row] for c in IDENTITY[:-1]
        )
        old = series_id(
            kind,
            suite,
            name,
            model,
            hardware,
            device,
            batch,
            precision,
            dict(_extra_from_key(extra)),
        )
        legacy_ids.append(old)
        wanted.setdefault(old, set()).add(file)
    cur.register("_dtd_legacy", pa.table({"old": pa.array(list(wanted), pa.int64())}))
    try:
        found = cur.execute(
            f"""SELECT l.series_id, l.file FROM {LEGACY_TABLE} AS l
                WHERE l.series_id IN (SELECT old FROM _dtd_legacy)"""  # noqa: S608
        ).fetchall()
    finally:
        cur.unregister("_dtd_legacy")
    owner: dict[int, str] = {}
    for old, file in found:
        if file is not None:
            owner[old] = file  # taken over before, by this file or another
        elif len(wanted[old]) == 1:
            owner[old] = next(iter(wanted[old]))
            taken = f"UPDATE {LEGACY_TABLE} SET file = ? WHERE series_id = ?"  # noqa: S608
            cur.execute(taken, [owner[old], old])
            cur.execute("UPDATE series SET file = ? WHERE series_id = ?", [owner[old], old])
        else:
            cur.execute(f"DELETE FROM {LEGACY_TABLE} WHERE series_id = ?", [old])  # noqa: S608
    if not owner:
        return series_table
    ids = series_table["series_id"].to_pylist()
    for row, (old, file) in enumerate(zip(legacy_ids, files, strict=True)):
        if old is not None and owner.get(old) == file:
            ids[row] = old
    return series_table.set_column(0, "series_id", pa.array(ids, pa.int64()))


def _series_batch(series_table: pa.Table) -> pa.Table:
    """The series as the store holds them: extras as a map."""
    return series_table.drop_columns(["extra_key"]).append_column(
        "extra",
        pa.array(
            [_extra_from_key(key) or None for key in series_table["extra_key"].to_pylist()],
            pa.map_(pa.string(), pa.string()),
        ),
    )
