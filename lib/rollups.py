"""Hourly rollups of results and metric values, kept exact as data arrives.

Pages over days or weeks ask for counts per status and statistics of a metric per time bucket;
reading tens of millions of raw rows for that on every view is what made the seed slow. Two
tables hold one row per series and hour (and per worker and run for results):

- ``result_hours``: passed, failed, error, skipped, the sum and count of durations, first and last
  timestamp;
- ``metric_hours``: n, sum, sum of squares, min, max, the exact median of the hour's values, and
  the sum of logarithms of the positive values (for geometric means).

Counts, sums, means, variances, minima, maxima and geometric means over any set of whole hours
are exact. Medians and quantiles over more than an hour are not composable; queries that use the
hourly medians say so in their output (``attrs["statistic"]``).

Maintenance needs no help from writers: ``Store.transaction`` notes how many rows ``results`` and
``measurements`` hold when it starts (both tables are append-only, so new rows are exactly those
with ``rowid`` at or past that mark) and, before committing, recomputes the rollup rows of every
(series, hour) those new rows touch, from the raw rows (``keep_up``). Whatever writes (files, the
API, the demo), the rollups commit with the data or not at all.

Except in bulk: a transaction that adds ``DEFER_ROWS`` rows or more commits its rows with a note
instead (``dtd_meta`` key ``rollup_pending``: the marks the rollups stopped at), and the store
brings the rollups up to date right after, in a transaction of its own (``settle``, run by a
background thread and by ``Store.close``). Until then every later transaction leaves the rollups
alone too, and readers add the raw rows past the marks to what the rollups say (``unsettled``),
so answers stay exact while a million-row file is being rolled up. The note and the rollups
change in the same commit, and readers read the note inside the statement that reads the
rollups, so a reader never counts a row twice or misses one.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

HOUR_S = 3600
PENDING = "rollup_pending"
DEFER_ROWS = 200_000
"""New results plus values in one transaction from which their rollups are left to ``settle``:
about 50,000 results with three metrics each. Smaller writes (API batches, JUnit files, live
demo extensions) roll up inside their transaction."""

TABLES = (
    """
    CREATE TABLE IF NOT EXISTS result_hours (
        series_id BIGINT NOT NULL,
        hour TIMESTAMP NOT NULL,
        worker_id VARCHAR,
        run_id BIGINT,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        error INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        duration_sum DOUBLE,
        duration_n INTEGER NOT NULL,
        first_ts TIMESTAMP NOT NULL,
        last_ts TIMESTAMP NOT NULL
    )""",
    """
    CREATE TABLE IF NOT EXISTS metric_hours (
        series_id BIGINT NOT NULL,
        metric VARCHAR NOT NULL,
        hour TIMESTAMP NOT NULL,
        n INTEGER NOT NULL,
        sum DOUBLE NOT NULL,
        sumsq DOUBLE NOT NULL,
        min DOUBLE NOT NULL,
        max DOUBLE NOT NULL,
        median DOUBLE NOT NULL,
        log_sum DOUBLE,
        n_positive INTEGER NOT NULL,
        last_ts TIMESTAMP NOT NULL
    )""",
)

_RESULT_SELECT = """
    SELECT r.series_id, time_bucket(INTERVAL 1 HOUR, r.ts) AS hour, r.worker_id, r.run_id,
           count(*) FILTER (r.status = 'passed')::INTEGER AS passed,
           count(*) FILTER (r.status = 'failed')::INTEGER AS failed,
           count(*) FILTER (r.status = 'error')::INTEGER AS error,
           count(*) FILTER (r.status = 'skipped')::INTEGER AS skipped,
           sum(r.duration_s) AS duration_sum, count(r.duration_s)::INTEGER AS duration_n,
           min(r.ts) AS first_ts, max(r.ts) AS last_ts
    FROM results AS r {where} GROUP BY ALL"""

_METRIC_SELECT = """
    WITH agg AS (
        SELECT m.series_id, m.metric, time_bucket(INTERVAL 1 HOUR, m.ts) AS hour,
               count(*)::INTEGER AS n, sum(m.value) AS sum, sum(m.value * m.value) AS sumsq,
               min(m.value) AS min, max(m.value) AS max,
               sum(ln(m.value)) FILTER (m.value > 0) AS log_sum,
               count(*) FILTER (m.value > 0)::INTEGER AS n_positive, max(m.ts) AS last_ts
        FROM measurements AS m {where} GROUP BY ALL),
    big AS (
        SELECT m.series_id, m.metric, time_bucket(INTERVAL 1 HOUR, m.ts) AS hour,
               median(m.value) AS median
        FROM measurements AS m
        SEMI JOIN (SELECT series_id, metric, hour FROM agg WHERE n > 2) AS g
          ON g.series_id = m.series_id AND g.metric = m.metric
         AND g.hour = time_bucket(INTERVAL 1 HOUR, m.ts)
        {where} GROUP BY ALL)
    SELECT agg.*, CASE WHEN agg.n <= 2 THEN (agg.min + agg.max) / 2 ELSE big.median END AS median
    FROM agg LEFT JOIN big USING (series_id, metric, hour)"""
"""Most hours of a series hold one or two values, whose median is (min + max) / 2; DuckDB's
median keeps a buffer per group, and two million groups under a 512 MB limit spill (14 s for
2.7M values, against 0.8 s when only the groups of three or more take the median). The WHERE
clause appears twice: pass its parameters twice (``_params``)."""


def _params(select: str, params: list) -> list:
    """The parameters of a select's WHERE clause, once per time the clause appears in it."""
    return params * select.count("{where}")


def create(cur: duckdb.DuckDBPyConnection) -> None:
    for statement in TABLES:
        cur.execute(statement)


def rebuild(cur: duckdb.DuckDBPyConnection) -> None:
    """Every rollup row from the raw tables (a migration, or a repair)."""
    create(cur)
    cur.execute("DELETE FROM result_hours")
    cur.execute("DELETE FROM metric_hours")
    cur.execute("DELETE FROM dtd_meta WHERE key = ?", [PENDING])  # everything is rolled up below
    cur.execute(f"INSERT INTO result_hours BY NAME {_RESULT_SELECT.format(where='')}")
    cur.execute(f"INSERT INTO metric_hours BY NAME {_METRIC_SELECT.format(where='')}")


def marks(cur: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Rows in results and measurements now (a metadata lookup, not a scan)."""
    results = cur.execute("SELECT count(*) FROM results").fetchall()[0][0]
    values = cur.execute("SELECT count(*) FROM measurements").fetchall()[0][0]
    return int(results), int(values)


def pending(cur: duckdb.DuckDBPyConnection) -> tuple[int, int] | None:
    """The marks from which rows are not in the rollups yet, or None when they are all in."""
    rows = cur.execute("SELECT value FROM dtd_meta WHERE key = ?", [PENDING]).fetchall()
    if not rows:
        return None
    results, values = rows[0][0].split(",")
    return int(results), int(values)


def keep_up(cur: duckdb.DuckDBPyConnection, before: tuple[int, int]) -> bool:
    """Before a commit: roll up the rows added since ``before``, or leave them (and, while a note
    is pending, everything) to ``settle``. True when the rollups are left behind."""
    if pending(cur) is not None:
        return True
    after = marks(cur)
    if (after[0] - before[0]) + (after[1] - before[1]) < DEFER_ROWS:
        catch_up(cur, before)
        return False
    cur.execute(
        "INSERT OR REPLACE INTO dtd_meta VALUES (?, ?)", [PENDING, f"{before[0]},{before[1]}"]
    )
    return True


def settle(cur: duckdb.DuckDBPyConnection) -> bool:
    """Roll up every row past the pending note and remove the note (inside the caller's
    transaction); False when nothing was pending."""
    mark = pending(cur)
    if mark is None:
        return False
    catch_up(cur, mark)
    cur.execute("DELETE FROM dtd_meta WHERE key = ?", [PENDING])
    return True


def unsettled(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[str, list]:
    """A condition (`` AND ...``) and its parameters that pick the rows of ``table`` (results or
    measurements) the rollups do not hold: the raw rows past the pending note, none without one.

    The reader's statement reads the note again itself (each statement sees its own snapshot):
    rows from the note's mark on, and none when it has no note, so whatever committed between
    this call and that statement (a settle, a bulk write), it counts each row exactly once. The
    constant bound (the note's mark, or the table's size when there was none: a bulk write
    committing in between marks exactly there, one writer at a time) lets DuckDB skip every row
    group before it by ``rowid``."""
    part = {"results": 1, "measurements": 2}[table]  # the name is one of these two
    size, note = cur.execute(
        f"SELECT (SELECT count(*) FROM {table}), "  # noqa: S608
        "(SELECT value FROM dtd_meta WHERE key = ?)",
        [PENDING],
    ).fetchall()[0]
    since = int(note.split(",")[part - 1]) if note else int(size)
    return (
        f" AND {table}.rowid >= ? AND {table}.rowid >= (SELECT CAST(split_part(dtd_meta.value, "  # noqa: S608
        f"',', {part}) AS BIGINT) FROM dtd_meta WHERE dtd_meta.key = ?)",
        [since, PENDING],
    )


def catch_up(cur: duckdb.DuckDBPyConnection, before: tuple[int, int]) -> None:
    """Bring the rollups up to date with the rows added since ``before`` (see the module)."""
    after = marks(cur)
    if after[0] > before[0]:
        _refresh(cur, "results", "result_hours", _RESULT_SELECT, "r", before[0])
    if after[1] > before[1]:
        _refresh(cur, "measurements", "metric_hours", _METRIC_SELECT, "m", before[1])


def _refresh(
    cur: duckdb.DuckDBPyConnection, table: str, rollup: str, select: str, alias: str, mark: int
) -> None:
    """New rows in hours that had none: their aggregates go in as they are (one pass over the new
    rows only). New rows in hours that already had some: those hours are recomputed from the raw
    rows (a median cannot be merged)."""
    fresh, touched = f"_fresh_{rollup}", f"_touched_{rollup}"
    a = alias
    # Names come from this module only; the mark and times are parameters.
    newest = cur.execute(f"SELECT max(hour) FROM {rollup}").fetchall()[0][0]  # noqa: S608
    earliest = cur.execute(
        f"SELECT min({a}.ts) FROM {table} AS {a} WHERE {a}.rowid >= ?",  # noqa: S608
        [mark],
    ).fetchall()[0][0]
    if newest is None or earliest >= newest + timedelta(hours=1):
        # Every new row lies in an hour the rollup has not seen (a fresh store, or data that
        # arrives in time order): one pass, no temporary tables.
        cur.execute(
            f"INSERT INTO {rollup} BY NAME "  # noqa: S608
            + select.format(where=f"WHERE {a}.rowid >= ?"),
            _params(select, [mark]),
        )
        return
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {fresh} AS "  # noqa: S608
        + select.format(where=f"WHERE {a}.rowid >= ?"),
        _params(select, [mark]),
    )
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE {touched} AS
            SELECT DISTINCT f.series_id, f.hour FROM {fresh} AS f
            SEMI JOIN {rollup} AS h ON h.series_id = f.series_id AND h.hour = f.hour"""  # noqa: S608
    )
    cur.execute(
        f"INSERT INTO {rollup} BY NAME SELECT * FROM {fresh} AS f "  # noqa: S608
        f"ANTI JOIN {touched} AS t ON t.series_id = f.series_id AND t.hour = f.hour"
    )
    first, last = cur.execute(f"SELECT min(hour), max(hour) FROM {touched}").fetchall()[0]  # noqa: S608
    if first is not None:
        cur.execute(
            f"DELETE FROM {rollup} AS h USING {touched} AS t "  # noqa: S608
            "WHERE h.series_id = t.series_id AND h.hour = t.hour"
        )
        # The time bounds let DuckDB skip row groups by their zone maps before the semi-join.
        where = (
            f"WHERE {a}.ts >= ? AND {a}.ts < ? + INTERVAL 1 HOUR AND EXISTS (SELECT 1 FROM "  # noqa: S608
            f"{touched} AS t WHERE t.series_id = {a}.series_id "
            f"AND t.hour = time_bucket(INTERVAL 1 HOUR, {a}.ts))"
        )
        cur.execute(
            f"INSERT INTO {rollup} BY NAME {select.format(where=where)}",  # noqa: S608
            _params(select, [first, last]),
        )
    cur.execute(f"DROP TABLE {fresh}")
    cur.execute(f"DROP TABLE {touched}")
