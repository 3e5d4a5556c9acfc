"""The seed framework's benchmark database: a DuckDB file with ``performance_results``.

The file is attached READ_ONLY to a private in-memory DuckDB (no extension is ever downloaded)
and detached afterwards, so its bytes are never touched. One benchmark result per
``performance_results`` row, joined with ``models``, ``hardware_platforms`` and ``test_runs``
(each optional); the rows then go through the same plan machinery as our own tables
(``lib.ingest.tabular``). docs/ingest-formats.md has the mapping table.

Refused: one of our own stores (it has ``dtd_meta``), and any DuckDB file without
``performance_results`` (the message names the tables it has).

Identity: the seed's ``result_id`` together with its ``created_at`` (so two seed databases whose
integer ids both start at 1 do not shadow each other); ingesting the same file twice adds
nothing.
"""

from __future__ import annotations

import duckdb

from lib.ingest.model import IngestError, MetricDef, Source
from lib.ingest.options import IngestOptions
from lib.ingest.sink import Sink
from lib.ingest.tabular import (
    Column,
    Plan,
    Reader,
    columns_of,
    connect,
    infer_metric,
    literal,
    local_path,
    quote,
    run_plan,
)

SEED = "seed"
"""The name the seed database is attached under."""

LATENCY_MEAN = MetricDef("latency_mean_ms", "ms", "lower", "Mean latency per batch")
COLUMN_METRICS = {
    "total_time_seconds": None,
    "average_latency_ms": LATENCY_MEAN,
    "throughput_items_per_second": None,
    "memory_peak_mb": None,
}
"""performance_results columns that are metrics: None keeps the column's name, which is in the
store's catalog (lib/schema.py); average_latency_ms becomes latency_mean_ms."""

_OPTIONAL_TABLES = {
    "models": ("model_id", "model_name", "model_family", "modality"),
    "hardware_platforms": ("hardware_id", "hardware_type", "device_name"),
    "test_runs": ("run_id", "test_name", "started_at", "success", "git_commit", "git_branch"),
}


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'main'",
        [SEED],
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def _column(
    tables: dict[str, set[str]], table: str, alias: str, column: str, kind: str = ""
) -> str:
    """``alias.column`` when the table has it, else a typed NULL."""
    if column in tables.get(table, set()):
        return f"{alias}.{quote(column)}"
    return f"NULL{'::' + kind if kind else ''}"


def _json_metric_keys(con: duckdb.DuckDBPyConnection, tables: dict[str, set[str]]) -> list[str]:
    """Top-level keys of the ``metrics`` JSON that hold a number somewhere."""
    if "metrics" not in tables["performance_results"]:
        return []
    rows = con.execute(
        f"""SELECT DISTINCT key FROM (
                SELECT unnest(json_keys(CAST(metrics AS JSON))) AS key, metrics
                FROM {SEED}.performance_results
                WHERE metrics IS NOT NULL AND json_valid(CAST(metrics AS VARCHAR))
                  AND json_type(CAST(metrics AS JSON)) = 'OBJECT')
            WHERE json_type(CAST(metrics AS JSON), '$.' || to_json(key)::VARCHAR)
                  IN ('DOUBLE', 'BIGINT', 'UBIGINT', 'HUGEINT')
            ORDER BY key"""  # noqa: S608
    ).fetchall()
    return [row[0] for row in rows]


def _relation(tables: dict[str, set[str]], json_keys: list[str]) -> str:
    """One row per performance_results row with everything the plan needs, in a stable order."""
    p = "p"
    has = {name: name in tables for name in _OPTIONAL_TABLES}
    joins = []
    if has["models"] and "model_id" in tables["models"]:
        joins.append(f"LEFT JOIN {SEED}.models AS m ON m.model_id = p.model_id")
    else:
        has["models"] = False
    if has["hardware_platforms"] and "hardware_id" in tables["hardware_platforms"]:
        joins.append(f"LEFT JOIN {SEED}.hardware_platforms AS h ON h.hardware_id = p.hardware_id")
    else:
        has["hardware_platforms"] = False
    if has["test_runs"] and "run_id" in tables["test_runs"]:
        joins.append(f"LEFT JOIN {SEED}.test_runs AS r ON r.run_id = p.run_id")
    else:
        has["test_runs"] = False

    def col(table: str, alias: str, column: str, kind: str = "VARCHAR") -> str:
        if table != "performance_results" and not has[table]:
            return f"NULL::{kind}"
        return _column(tables, table, alias, column, kind)

    pr = "performance_results"
    selected = {
        "seed_result_id": f"CAST({col(pr, p, 'result_id')} AS VARCHAR)",
        "seed_created_at": f"CAST({col(pr, p, 'created_at')} AS VARCHAR)",
        "seed_run_id": f"CAST({col(pr, p, 'run_id')} AS VARCHAR)",
        "test_case": f"CAST({col(pr, p, 'test_case')} AS VARCHAR)",
        "test_name": f"CAST({col('test_runs', 'r', 'test_name')} AS VARCHAR)",
        "started_at": f"CAST({col('test_runs', 'r', 'started_at')} AS VARCHAR)",
        "success": f"TRY_CAST({col('test_runs', 'r', 'success')} AS BOOLEAN)",
        "git_commit": f"CAST({col('test_runs', 'r', 'git_commit')} AS VARCHAR)",
        "git_branch": f"CAST({col('test_runs', 'r', 'git_branch')} AS VARCHAR)",
        "model_name": f"CAST({col('models', 'm', 'model_name')} AS VARCHAR)",
        "model_family": f"CAST({col('models', 'm', 'model_family')} AS VARCHAR)",
        "modality": f"CAST({col('models', 'm', 'modality')} AS VARCHAR)",
        "hardware_type": f"CAST({col('hardware_platforms', 'h', 'hardware_type')} AS VARCHAR)",
        "device_name": f"CAST({col('hardware_platforms', 'h', 'device_name')} AS VARCHAR)",
        "batch_size": f"CAST({col(pr, p, 'batch_size')} AS VARCHAR)",
        "precision": f"CAST({col(pr, p, 'precision')} AS VARCHAR)",
        "is_simulated": f"TRY_CAST({col(pr, p, 'is_simulated')} AS BOOLEAN)",
    }
    for name in COLUMN_METRICS:
        # Through text: the seed stored FLOAT (32-bit); 13.3 must stay 13.3, not 13.30000019.
        selected[name] = f"TRY_CAST(CAST({col(pr, p, name)} AS VARCHAR) AS DOUBLE)"
    for index, key in enumerate(json_keys):
        path = literal("$." + _json_path_key(key))
        selected[f"json_metric_{index}"] = (
            f"TRY_CAST(json_extract_string(CAST(p.metrics AS JSON), {path}) AS DOUBLE)"
        )
    order = f"{col(pr, p, 'result_id')}, {col(pr, p, 'created_at')}"
    body = ", ".join(f"{expr} AS {quote(alias)}" for alias, expr in selected.items())
    return (
        f"(SELECT {body} FROM {SEED}.performance_results AS p {' '.join(joins)} "  # noqa: S608
        f"ORDER BY {order})"
    )


def _json_path_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plan(json_keys: list[str]) -> Plan:
    def c(name: str, label: str | None = None, kind: str = "VARCHAR") -> Column:
        return Column(quote(name), kind, label or f"performance_results.{name}")

    status = (
        "CASE WHEN success IS NULL OR success THEN 'passed' ELSE 'failed' END"  # no run: passed
    )
    fields = {
        "result_id": Column(
            "seed_result_id || '|' || coalesce(seed_created_at, '')",
            "VARCHAR",
            "performance_results.result_id",
        ),
        "ts": Column(
            "coalesce(started_at, seed_created_at)",
            "VARCHAR",
            "test_runs.started_at (or performance_results.created_at)",
        ),
        "name": Column(
            "coalesce(NULLIF(test_case, ''), test_name)",
            "VARCHAR",
            "performance_results.test_case (or test_runs.test_name)",
        ),
        "kind": Column("'benchmark'", "VARCHAR", "kind"),
        "status": Column(status, "VARCHAR", "test_runs.success"),
        "duration_s": c("total_time_seconds", kind="DOUBLE"),
        "message": Column(
            "CASE WHEN success = false THEN 'test run ' || coalesce(test_name, seed_run_id, '') "
            "|| ' failed' END",
            "VARCHAR",
            "test_runs.success",
        ),
        "model": c("model_name", "models.model_name"),
        "model_family": c("model_family", "models.model_family"),
        "modality": c("modality", "models.modality"),
        "hardware": c("hardware_type", "hardware_platforms.hardware_type"),
        "device": c("device_name", "hardware_platforms.device_name"),
        "batch_size": c("batch_size"),
        "precision": c("precision"),
        "run": Column(
            "CASE WHEN seed_run_id IS NOT NULL THEN coalesce(test_name, 'seed run') "
            "|| ' (run ' || seed_run_id || ')' END",
            "VARCHAR",
            "performance_results.run_id",
        ),
        "git_commit": c("git_commit", "test_runs.git_commit"),
        "git_branch": c("git_branch", "test_runs.git_branch"),
    }
    metrics = []
    for name, definition in COLUMN_METRICS.items():
        metrics.append((definition or infer_metric(name), c(name, kind="DOUBLE")))
    taken = {m.name for m, _ in metrics}
    for index, key in enumerate(json_keys):
        if key in taken or key in COLUMN_METRICS:
            continue
        taken.add(key)
        metrics.append(
            (
                infer_metric(key, "from the seed's metrics JSON"),
                Column(
                    quote(f"json_metric_{index}"), "DOUBLE", f"performance_results.metrics.{key}"
                ),
            )
        )
    extras = [
        (
            "simulated",
            Column("CASE WHEN is_simulated THEN 'true' END", "VARCHAR", "is_simulated"),
        )
    ]
    return Plan(fields=fields, metrics=metrics, extras=extras)


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    with local_path(source, ".duckdb") as path:
        con = connect()
        attached = False
        try:
            try:
                con.execute(f"ATTACH {literal(path)} AS {SEED} (READ_ONLY)")
                attached = True
            except duckdb.Error as exc:
                first = str(exc).split("\n", 1)[0]
                if "already attached" in first:
                    raise IngestError(
                        source.name,
                        "is a database this process has open (a results store of this "
                        "dashboard?), not the seed framework's benchmark database; it was left "
                        "unchanged",
                        "A store is never ingested into another store.",
                    ) from None
                raise IngestError(
                    source.name,
                    f"looks like a DuckDB database but cannot be opened read-only ({first})",
                    "Close the program that has it open, or export it with the DuckDB version "
                    "that wrote it.",
                ) from None
            tables = _tables(con)
            if "dtd_meta" in tables:
                raise IngestError(
                    source.name,
                    "is a results database of this dashboard, not the seed framework's benchmark "
                    "database; it was left unchanged",
                    "Point the dashboard at it (--db / DTD_DB) instead of ingesting it.",
                )
            if "performance_results" not in tables:
                listed = ", ".join(sorted(tables)) or "no tables at all"
                raise IngestError(
                    source.name,
                    "is a DuckDB database without a performance_results table, so it is not the "
                    f"seed framework's benchmark database (it holds {listed}); it was left "
                    "unchanged",
                    "Only that database is read from DuckDB files.",
                )
            if "result_id" not in tables["performance_results"]:
                raise IngestError(
                    source.name,
                    "performance_results has no result_id column",
                    "The seed framework's database always has one; is this another schema?",
                )
            json_keys = _json_metric_keys(con, tables)
            relation = _relation(tables, json_keys)
            columns_of(con, relation)  # binds now: a schema surprise is reported here

            def where(pos: int) -> str:
                lookup = con.cursor()  # the stream still holds ``con``
                try:
                    found = lookup.execute(
                        f"SELECT seed_result_id FROM {relation} "  # noqa: S608
                        f"LIMIT 1 OFFSET {int(pos)}"
                    ).fetchall()
                finally:
                    lookup.close()
                ident = found[0][0] if found else "?"
                return f"performance_results row {pos + 1} (result_id {ident})"

            reader = Reader(relation, where, "the seed's benchmark database")
            run_plan(con, reader, _plan(json_keys), source, sink, options)
        finally:
            if attached:
                con.execute(f"DETACH {SEED}")
            con.close()
