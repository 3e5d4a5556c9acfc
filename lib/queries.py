"""Questions the pages and the CLI ask of the store, answered by DuckDB in small frames.

Every function takes a cursor, a ``QuerySpec`` and ``now`` (naive UTC), so the same question gives
the same answer on every surface and tests can pin the clock. Aggregation happens in SQL;
Python receives at most a few thousand rows. Values are always bound as parameters.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from lib.dimensions import BUILTIN, Dimensions, column_sql
from lib.fleet import STATES, classify_workers
from lib.spec import QuerySpec

BUCKET_LADDER_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
PREVIOUS_COVERAGE_SLACK = 0.05


def _time_clause(
    start: datetime | None, end: datetime | None, column: str = "ts"
) -> tuple[str, list]:
    sql, params = "", []
    if start is not None:
        sql += f" AND {column} >= ?"
        params.append(start)
    if end is not None:
        sql += f" AND {column} < ?"
        params.append(end)
    return sql, params


def where_clause(
    spec: QuerySpec, now: datetime, alias: str = "", bucket_s: int | None = None
) -> tuple[str, list]:
    """``WHERE`` for the spec's window and filters (always starts with ``WHERE TRUE``).

    With ``bucket_s`` the window starts at the beginning of its first bucket, so a chart's
    first point covers a whole bucket instead of showing a false dip.
    """
    prefix = f"{alias}." if alias else ""
    start, end = spec.window(now)
    if start is not None and bucket_s:
        start = bucket_floor(start, bucket_s)
    time_sql, time_params = _time_clause(start, end, column=f"{prefix}ts")
    series_sql, series_params = spec.series_clause(f"{prefix}series_id")
    return "WHERE TRUE" + time_sql + series_sql, time_params + series_params


BUCKET_ORIGIN = datetime(2000, 1, 3)
"""DuckDB's default origin for ``time_bucket`` (a Monday): week buckets start on Mondays."""


def bucket_floor(moment: datetime, seconds: int) -> datetime:
    """The start of the ``time_bucket`` that holds ``moment``."""
    step = timedelta(seconds=seconds)
    return BUCKET_ORIGIN + ((moment - BUCKET_ORIGIN) // step) * step


def bucket_seconds(start: datetime, end: datetime, max_points: int = 200) -> int:
    """The finest bucket from the ladder that keeps a line under ``max_points`` points."""
    span = max((end - start).total_seconds(), 1.0)
    for seconds in BUCKET_LADDER_S:
        if span / seconds <= max_points:
            return seconds
    return BUCKET_LADDER_S[-1]


def data_span(cur: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    return tuple(cur.execute("SELECT min(ts), max(ts) FROM results").fetchall()[0])


def effective_window(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime
) -> tuple[datetime, datetime]:
    """The window with open ends closed by the data (for bucketing and captions)."""
    start, end = spec.window(now)
    if start is None:
        first, _ = data_span(cur)
        start = first or now - timedelta(days=1)
    return start, end or now


FILTERABLE = (
    "hardware",
    "model",
    "batch_size",
    "precision",
    "device",
    "model_family",
    "modality",
    "kind",
)
"""Built-in dimensions offered as filters (suite and benchmark names are too many to list)."""


def filter_options(cur: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Every value each filterable dimension takes (extras included), for the sidebar."""
    names = [*FILTERABLE, *Dimensions.of(cur).names[len(BUILTIN) :]]
    options = {}
    for name in names:
        column = column_sql(name, alias="")
        rows = cur.execute(
            f"SELECT DISTINCT {column} FROM series WHERE {column} IS NOT NULL ORDER BY 1"  # noqa: S608
        ).fetchall()
        if rows:
            options[name] = [row[0] for row in rows]
    return options


def status_counts(cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime) -> dict:
    """Counts per status and pass rate for the window, and for the one before it.

    ``previous`` is None when there is no earlier window ("all") or the data does not reach back
    to (within 5 % of) its start: a half-covered period would make every change look like growth.
    """
    start, end = spec.window(now)
    previous = spec.previous_window(now)
    first, _ = data_span(cur)
    if previous is not None and (
        first is None or first > previous[0] + (previous[1] - previous[0]) * PREVIOUS_COVERAGE_SLACK
    ):
        previous = None
    series_sql, series_params = spec.series_clause()
    time_sql, time_params = _time_clause(previous[0] if previous else start, end)
    rows = cur.execute(
        f"""SELECT {"ts >= ?" if previous else "TRUE"} AS current, status, count(*)
            FROM results WHERE TRUE {time_sql} {series_sql} GROUP BY ALL""",  # noqa: S608
        ([start] if previous else []) + time_params + series_params,
    ).fetchall()
    out: dict = {"current": None, "previous": None}
    for label, wanted in (("current", True), ("previous", False)):
        if label == "previous" and previous is None:
            continue
        counts = dict.fromkeys(("passed", "failed", "error", "skipped"), 0)
        for current, status, n in rows:
            if current == wanted:
                counts[status] = n
        executed = counts["passed"] + counts["failed"] + counts["error"]
        out[label] = {
            **counts,
            "results": sum(counts.values()),
            "pass_rate": counts["passed"] / executed if executed else None,
        }
    return out


def status_over_time(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime
) -> pd.DataFrame:
    """Results per time bucket by status, with the bucket's pass rate (skips excluded)."""
    start, end = effective_window(cur, spec, now)
    step = bucket_seconds(start, end)
    where, params = where_clause(spec, now, bucket_s=step)
    frame = cur.execute(
        f"""SELECT time_bucket(to_seconds(?), ts) AS bucket,
                   count(*) FILTER (status = 'passed') AS passed,
                   count(*) FILTER (status = 'failed') AS failed,
                   count(*) FILTER (status = 'error') AS error,
                   count(*) FILTER (status = 'skipped') AS skipped
            FROM results {where} GROUP BY ALL ORDER BY bucket""",  # noqa: S608
        [step, *params],
    ).df()
    executed = frame["passed"] + frame["failed"] + frame["error"]
    frame["results"] = executed + frame["skipped"]
    frame["pass_rate"] = (frame["passed"] / executed.where(executed > 0)).astype(float)
    frame.attrs["bucket_seconds"] = step
    return frame


def metric_index_over_time(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    by: str = "hardware",
    max_points: int = 100,
) -> pd.DataFrame:
    """A metric as an index per time bucket and group: 1.0 is each series' median in the window.

    Different models and batch sizes differ by orders of magnitude, so their raw values cannot
    share a line; the geometric mean of each result's ratio to its own series' median can
    (as Conbench compares benchmarks). A dip to 0.8 means 20 % below usual.
    """
    group = column_sql(by, alias="s")
    start, end = effective_window(cur, spec, now)
    step = bucket_seconds(start, end, max_points)
    where, params = where_clause(spec, now, alias="m", bucket_s=step)
    frame = cur.execute(
        f"""WITH picked AS MATERIALIZED (
                SELECT m.series_id, m.ts, m.value FROM measurements AS m
                {where} AND m.metric = ? AND m.value > 0
            ),
            typical AS (SELECT series_id, median(value) AS typical FROM picked GROUP BY ALL)
            SELECT time_bucket(to_seconds(?), picked.ts) AS bucket,
                   CAST({group} AS VARCHAR) AS "group",
                   exp(avg(ln(picked.value / typical.typical))) AS "index",
                   count(*) AS n
            FROM picked JOIN typical USING (series_id) JOIN series AS s USING (series_id)
            GROUP BY ALL ORDER BY bucket, "group" """,  # noqa: S608
        [*params, metric, step],
    ).df()
    frame.attrs["bucket_seconds"] = step
    return frame


def latest_failures(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, limit: int = 50
) -> pd.DataFrame:
    """The most recent failed or errored results with where they ran and what they said."""
    where, params = where_clause(spec, now, alias="r")
    return cur.execute(
        f"""SELECT r.ts AS time, r.status,
                   coalesce(s.suite || '::', '') || s.name AS test,
                   concat_ws(' · ', s.model, s.hardware, s.device, 'bs' || s.batch_size,
                             s."precision") AS configuration,
                   r.worker_id AS worker, left(runs.git_commit, 12) AS "commit", r.message
            FROM results AS r
            JOIN series AS s USING (series_id)
            LEFT JOIN runs USING (run_id)
            {where} AND r.status IN ('failed', 'error')
            ORDER BY r.ts DESC LIMIT ?""",  # noqa: S608
        [*params, limit],
    ).df()


def workers(
    cur: duckdb.DuckDBPyConnection, now: datetime, hardware: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Every worker with its last heartbeat and its state as of ``now``."""
    clause = f"WHERE w.hardware IN ({', '.join('?' * len(hardware))})" if hardware else ""
    frame = cur.execute(
        f"""WITH last AS (
                SELECT worker_id, max(ts) AS last_heartbeat, arg_max_null(current_task, ts) AS current_task
                FROM heartbeats GROUP BY ALL
            )
            SELECT w.worker_id, w.hostname, w.hardware, w.device, w.heartbeat_interval_s,
                   w.registered_at, last.last_heartbeat, last.current_task
            FROM workers AS w LEFT JOIN last USING (worker_id)
            {clause} ORDER BY w.worker_id""",  # noqa: S608
        list(hardware),
    ).df()
    return classify_workers(frame, now)


def summary(cur: duckdb.DuckDBPyConnection, now: datetime) -> dict:
    """Totals for ``dtd status`` and the Data page: everything in the store, unfiltered."""
    counts = dict(cur.execute("SELECT status, count(*) FROM results GROUP BY ALL").fetchall())
    by_status = {s: int(counts.get(s, 0)) for s in ("passed", "failed", "error", "skipped")}
    executed = by_status["passed"] + by_status["failed"] + by_status["error"]
    series, benchmark_series, test_cases = cur.execute(
        """SELECT count(*), count(*) FILTER (kind = 'benchmark'),
                  count(DISTINCT (suite, name)) FILTER (kind <> 'benchmark') FROM series"""
    ).fetchall()[0]
    first, last = data_span(cur)
    fleet = workers(cur, now)
    return {
        "results": sum(by_status.values()),
        **by_status,
        "pass_rate": by_status["passed"] / executed if executed else None,
        "series": int(series),
        "benchmark_series": int(benchmark_series),
        "test_cases": int(test_cases),
        "measurements": int(cur.execute("SELECT count(*) FROM measurements").fetchall()[0][0]),
        "runs": int(cur.execute("SELECT count(*) FROM runs").fetchall()[0][0]),
        "workers": {state: int((fleet["state"] == state).sum()) for state in STATES},
        "first_result": first,
        "last_result": last,
    }


def metrics_present(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Metrics that have values (name, unit, direction, description, values), most common first."""
    catalog = metric_catalog(cur)
    return catalog[catalog["values"] > 0].reset_index(drop=True)


def metric_catalog(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every known metric with its unit, direction and number of values."""
    return cur.execute(
        """WITH counted AS (SELECT metric, count(*) AS n FROM measurements GROUP BY metric)
           SELECT c.name, c.unit, c.direction, c.description, coalesce(n, 0) AS values
           FROM metrics AS c LEFT JOIN counted ON counted.metric = c.name
           ORDER BY values DESC, c.name"""
    ).df()


def demo_truth(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """What the demo generator injected, or None for a store without demo data."""
    exists = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'demo_truth'"
    ).fetchall()[0][0]
    if not exists:
        return None
    return cur.execute(
        """SELECT kind, subject, metric, changed_at, git_commit, change, note, series_id
           FROM demo_truth ORDER BY kind, changed_at NULLS LAST, subject, metric"""
    ).df()
