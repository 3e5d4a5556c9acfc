"""Questions the pages and the CLI ask of the store, answered by DuckDB in small frames.

Every function takes a cursor, a ``QuerySpec`` and ``now`` (naive UTC), so the same question gives
the same answer on every surface and tests can pin the clock. Aggregation happens in SQL;
Python receives at most a few thousand rows. Values are always bound as parameters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from lib import rollups
from lib.dimensions import BUILTIN, Dimensions, column_sql, series_label
from lib.fleet import STATES, age_sql, state_sql
from lib.spec import QuerySpec

if TYPE_CHECKING:  # frames come from DuckDB's .df(); pandas itself is not needed here
    import pandas as pd

BUCKET_LADDER_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
PREVIOUS_COVERAGE_SLACK = 0.05


def time_clause(
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
    time_sql, time_params = time_clause(start, end, column=f"{prefix}ts")
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
    """First and last result (from the hourly rollup: a few rows per series and hour)."""
    behind_sql, params = rollups.unsettled(cur, "results")
    sql = (
        "SELECT min(first_ts) AS a, max(last_ts) AS b FROM result_hours "  # noqa: S608
        f"UNION ALL SELECT min(ts), max(ts) FROM results WHERE TRUE{behind_sql}"
    )
    return tuple(cur.execute(f"SELECT min(a), max(b) FROM ({sql})", params).fetchall()[0])  # noqa: S608


# ----------------------------------------------------------------------------- sources
#
# Additive answers (counts, sums, minima, maxima, geometric means) over a window come from the
# hourly rollups for the window's whole hours plus the raw rows of its partial hours at either
# end, so they are exact at any window; bucketed charts whose buckets are whole hours read the
# rollups only. See lib/rollups.py.

HOUR = timedelta(hours=1)
_RAW_TABLE = {"result_hours": "results", "metric_hours": "measurements"}

_RESULT_COLUMNS = (
    "series_id, worker_id, run_id, {at} AS at_ts, passed, failed, error, skipped, "
    "duration_sum, duration_n, last_ts"
)
_RESULT_RAW = (
    "SELECT series_id, worker_id, run_id, ts AS at_ts, (status = 'passed')::INTEGER AS passed, "
    "(status = 'failed')::INTEGER AS failed, (status = 'error')::INTEGER AS error, "
    "(status = 'skipped')::INTEGER AS skipped, duration_s AS duration_sum, "
    "(duration_s IS NOT NULL)::INTEGER AS duration_n, ts AS last_ts FROM results"
)
_METRIC_COLUMNS = "series_id, metric, {at} AS at_ts, n, sum, sumsq, min, max, median, log_sum, n_positive, last_ts"
_METRIC_RAW = (
    "SELECT series_id, metric, ts AS at_ts, 1 AS n, value AS sum, value * value AS sumsq, "
    "value AS min, value AS max, value AS median, "
    "CASE WHEN value > 0 THEN ln(value) END AS log_sum, (value > 0)::INTEGER AS n_positive, "
    "ts AS last_ts FROM measurements"
)


def _source(
    cur: duckdb.DuckDBPyConnection,
    rollup: str,
    columns: str,
    raw: str,
    spec: QuerySpec,
    now: datetime,
    bucket_s: int | None,
    extra: str = "",
    extra_params: tuple = (),
    window: tuple[datetime | None, datetime | None] | None = None,
    raw_only: bool = False,
) -> tuple[str, list]:
    start, end = window or spec.window(now)
    if start is not None and bucket_s:
        start = bucket_floor(start, bucket_s)
    series_sql, series_params = spec.series_clause("series_id")
    where_more = series_sql + extra
    more = [*series_params, *extra_params]
    if raw_only or (bucket_s is not None and bucket_s % 3600):
        time_sql, time_params = time_clause(start, end)
        return f"{raw} WHERE TRUE{time_sql}{where_more}", [*time_params, *more]
    h_start = None if start is None else bucket_floor(start, 3600)
    if h_start is not None and h_start < start:
        h_start += HOUR
    h_end = None if end is None else bucket_floor(end, 3600)
    if h_start is not None and h_end is not None and h_start >= h_end:
        time_sql, time_params = time_clause(start, end)  # under an hour: raw rows only
        return f"{raw} WHERE TRUE{time_sql}{where_more}", [*time_params, *more]
    hours_sql, hours_params = time_clause(h_start, h_end, column="hour")
    # Table and column names come from this module; values are parameters.
    rolled = f"SELECT {columns.format(at='hour')} FROM {rollup} WHERE TRUE"  # noqa: S608
    parts = [rolled + hours_sql + where_more]
    params: list = [*hours_params, *more]
    # A bulk write whose rollups are still being made: its raw rows (none otherwise).
    behind_sql, behind_params = rollups.unsettled(cur, _RAW_TABLE[rollup])
    ts_sql, ts_params = time_clause(h_start, h_end)
    parts.append(f"{raw} WHERE TRUE{ts_sql}{where_more}{behind_sql}")
    params += [*ts_params, *more, *behind_params]
    edges = []
    if h_start is not None and start < h_start:
        edges.append((start, h_start))
    if h_end is not None and h_end < end:
        edges.append((h_end, end))
    if edges:
        spans = " OR ".join("(ts >= ? AND ts < ?)" for _ in edges)
        parts.append(f"{raw} WHERE ({spans}){where_more}")
        params += [moment for edge in edges for moment in edge] + more
    return " UNION ALL ".join(parts), params


def results_source(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    bucket_s: int | None = None,
    window: tuple[datetime | None, datetime | None] | None = None,
) -> tuple[str, list]:
    """Result counts in the window (the spec's, or ``window``) and filters, as rows of
    (series_id, worker_id, run_id, at_ts, passed, failed, error, skipped, duration_sum, duration_n,
    last_ts): sum them for exact counts; bucket ``at_ts`` by ``bucket_s`` (the window then starts on
    a bucket boundary)."""
    return _source(
        cur, "result_hours", _RESULT_COLUMNS, _RESULT_RAW, spec, now, bucket_s, window=window
    )


def metric_source(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    bucket_s: int | None = None,
    raw_only: bool = False,
) -> tuple[str, list]:
    """One metric's values in the window and filters, as rows of (series_id, metric, at_ts, n, sum,
    sumsq, min, max, median, log_sum, n_positive, last_ts): hourly rollups for whole hours (with
    the hour's exact median), single values (n = 1) for the partial hours at the window's ends,
    or single values throughout with ``raw_only`` or buckets shorter than an hour."""
    return _source(
        cur,
        "metric_hours",
        _METRIC_COLUMNS,
        _METRIC_RAW,
        spec,
        now,
        bucket_s,
        " AND metric = ?",
        (metric,),
        raw_only=raw_only,
    )


def uses_hours(bucket_s: int | None) -> bool:
    """Whether a query bucketed by ``bucket_s`` reads the hourly rollups (medians then are
    medians of hourly medians)."""
    return bucket_s is None or bucket_s % 3600 == 0


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
    previous = spec.previous_window(now)
    first, _ = data_span(cur)
    if previous is not None and (
        first is None or first > previous[0] + (previous[1] - previous[0]) * PREVIOUS_COVERAGE_SLACK
    ):
        previous = None
    windows = {"current": spec.window(now)}
    if previous is not None:
        windows["previous"] = previous
    out: dict = {"current": None, "previous": None}
    for label, window in windows.items():
        source, params = results_source(cur, spec, now, window=window)
        passed, failed, error, skipped = cur.execute(
            f"""SELECT coalesce(sum(passed), 0), coalesce(sum(failed), 0),
                       coalesce(sum(error), 0), coalesce(sum(skipped), 0)
                FROM ({source})""",  # noqa: S608
            params,
        ).fetchall()[0]
        counts = {"passed": passed, "failed": failed, "error": error, "skipped": skipped}
        counts = {k: int(v) for k, v in counts.items()}
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
    source, params = results_source(cur, spec, now, bucket_s=step)
    frame = cur.execute(
        f"""SELECT time_bucket(to_seconds(?), at_ts) AS bucket,
                   sum(passed)::BIGINT AS passed, sum(failed)::BIGINT AS failed,
                   sum(error)::BIGINT AS error, sum(skipped)::BIGINT AS skipped
            FROM ({source}) GROUP BY ALL ORDER BY bucket""",  # noqa: S608
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
    source, params = metric_source(cur, spec, now, metric, bucket_s=step)
    # The typical value of a series is the median of its hourly medians in the window (its
    # exact median when buckets are shorter than an hour); the index is exact given it.
    frame = cur.execute(
        f"""WITH picked AS MATERIALIZED (SELECT * FROM ({source}) WHERE n_positive > 0),
            typical AS (SELECT series_id, ln(median(median)) AS log_typical FROM picked
                        WHERE median > 0 GROUP BY ALL)
            SELECT time_bucket(to_seconds(?), picked.at_ts) AS bucket,
                   CAST({group} AS VARCHAR) AS "group",
                   exp(sum(picked.log_sum - picked.n_positive * typical.log_typical)
                       / sum(picked.n_positive)) AS "index",
                   sum(picked.n_positive)::BIGINT AS n
            FROM picked JOIN typical USING (series_id) JOIN series AS s USING (series_id)
            GROUP BY ALL ORDER BY bucket, "group" """,  # noqa: S608
        [*params, step],
    ).df()
    frame.attrs["bucket_seconds"] = step
    return frame


def latest_failures(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, limit: int = 50
) -> pd.DataFrame:
    """The most recent failed or errored results with where they ran and what they said."""
    where, params = where_clause(spec, now, alias="r")
    # Only the hours that hold the last ``limit`` failures are read one by one.
    source, source_params = results_source(cur, spec, now)
    since = cur.execute(
        f"""WITH per_hour AS (
                SELECT time_bucket(INTERVAL 1 HOUR, at_ts) AS hour, sum(failed + error) AS k
                FROM ({source}) GROUP BY ALL HAVING sum(failed + error) > 0
            )
            SELECT max(hour) FILTER (c >= ?) FROM (
                SELECT hour, sum(k) OVER (ORDER BY hour DESC ROWS UNBOUNDED PRECEDING) AS c
                FROM per_hour)""",  # noqa: S608
        [*source_params, limit],
    ).fetchall()[0][0]
    if since is not None:
        where += " AND r.ts >= ?"
        params = [*params, since]
    return cur.execute(
        f"""SELECT r.ts AS time, r.status,
                   {series_label()} AS test,
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


_LAST_HEARTBEATS = """WITH last AS (
        SELECT worker_id, max(ts) AS last_heartbeat,
               arg_max_null(current_task, ts) AS current_task
        FROM heartbeats GROUP BY ALL
    )"""


def workers(
    cur: duckdb.DuckDBPyConnection, now: datetime, hardware: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Every worker with its last heartbeat, the seconds since, and its state as of ``now``."""
    clause = f"WHERE w.hardware IN ({', '.join('?' * len(hardware))})" if hardware else ""
    age = age_sql("last.last_heartbeat")
    state = state_sql("seconds_since_heartbeat", "heartbeat_interval_s", "current_task")
    return cur.execute(
        f"""{_LAST_HEARTBEATS}
            SELECT *, {state} AS state FROM (
                SELECT w.worker_id, w.hostname, w.hardware, w.device, w.heartbeat_interval_s,
                       w.registered_at, last.last_heartbeat, last.current_task,
                       {age} AS seconds_since_heartbeat
                FROM workers AS w LEFT JOIN last USING (worker_id)
                {clause})
            ORDER BY worker_id""",  # noqa: S608
        [now, *hardware],
    ).df()


def worker_states(cur: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, int]:
    """How many workers are in each state as of ``now`` (every state listed, zeros included)."""
    age = age_sql("last.last_heartbeat")
    state = state_sql("age", "heartbeat_interval_s", "current_task")
    found = dict(
        cur.execute(
            f"""{_LAST_HEARTBEATS}
                SELECT {state} AS state, count(*) FROM (
                    SELECT w.heartbeat_interval_s, last.current_task, {age} AS age
                    FROM workers AS w LEFT JOIN last USING (worker_id))
                GROUP BY ALL""",  # noqa: S608
            [now],
        ).fetchall()
    )
    return {s: int(found.get(s, 0)) for s in STATES}


def summary(cur: duckdb.DuckDBPyConnection, now: datetime) -> dict:
    """Totals for ``dtd status`` and the Data page: everything in the store, unfiltered."""
    behind_sql, params = rollups.unsettled(cur, "results")
    source = (  # noqa: S608 - a fixed condition; values are parameters
        "SELECT passed, failed, error, skipped FROM result_hours UNION ALL "
        "SELECT (status = 'passed')::INTEGER, (status = 'failed')::INTEGER, "
        "(status = 'error')::INTEGER, (status = 'skipped')::INTEGER FROM results WHERE TRUE"
    ) + behind_sql
    row = cur.execute(
        f"""SELECT coalesce(sum(passed), 0), coalesce(sum(failed), 0), coalesce(sum(error), 0),
                   coalesce(sum(skipped), 0) FROM ({source})""",  # noqa: S608
        params,
    ).fetchall()[0]
    by_status = dict(zip(("passed", "failed", "error", "skipped"), map(int, row), strict=True))
    executed = by_status["passed"] + by_status["failed"] + by_status["error"]
    series, benchmark_series, test_cases = cur.execute(
        """SELECT count(*), count(*) FILTER (kind = 'benchmark'),
                  count(DISTINCT (file, suite, name)) FILTER (kind <> 'benchmark') FROM series"""
    ).fetchall()[0]
    first, last = data_span(cur)
    return {
        "results": sum(by_status.values()),
        **by_status,
        "pass_rate": by_status["passed"] / executed if executed else None,
        "series": int(series),
        "benchmark_series": int(benchmark_series),
        "test_cases": int(test_cases),
        "measurements": int(cur.execute("SELECT count(*) FROM measurements").fetchall()[0][0]),
        "runs": int(cur.execute("SELECT count(*) FROM runs").fetchall()[0][0]),
        "workers": worker_states(cur, now),
        "first_result": first,
        "last_result": last,
    }


def metrics_present(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Metrics that have values (name, unit, direction, description, values), most common first."""
    catalog = metric_catalog(cur)
    return catalog[catalog["values"] > 0].reset_index(drop=True)


def metric_catalog(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every known metric with its unit, direction and number of values."""
    behind_sql, params = rollups.unsettled(cur, "measurements")
    source = (
        "SELECT metric, n FROM metric_hours UNION ALL "  # noqa: S608
        f"SELECT metric, 1 FROM measurements WHERE TRUE{behind_sql}"
    )
    return cur.execute(
        f"""WITH counted AS (SELECT metric, sum(n) AS n FROM ({source}) GROUP BY metric)
            SELECT c.name, c.unit, c.direction, c.description, coalesce(n, 0) AS values
            FROM metrics AS c LEFT JOIN counted ON counted.metric = c.name
            ORDER BY values DESC, c.name""",  # noqa: S608
        params,
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
