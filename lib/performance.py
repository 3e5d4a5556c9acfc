"""Queries behind the performance pages: trends, dimension comparison, heatmap, correlation.

Like ``lib.queries``: ``(cursor, spec, now, ...)`` in, a small frame out, aggregation in DuckDB,
values as parameters, names from ``lib.dimensions`` (extras checked against the store's keys).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from lib.dimensions import BUILTIN, Dimensions
from lib.queries import bucket_seconds, effective_window, metric_source, uses_hours, where_clause
from lib.spec import QuerySpec

SERIES = "series"
"""The "group by" choice that draws every series on its own."""
STATISTICS: dict[str, str] = {
    "median": "median(value)",
    "mean": "avg(value)",
    "p95": "quantile_cont(value, 0.95)",
    "min": "min(value)",
    "max": "max(value)",
    "count": "count(*)",
    "cv": "stddev_samp(value) / nullif(abs(avg(value)), 0)",
}
"""Heatmap statistics over single values: the allow-list of aggregate expressions."""
HOURLY_STATISTICS: dict[str, str] = {
    "median": "median(median)",
    "mean": "sum(sum) / sum(n)",
    "min": "min(min)",
    "max": "max(max)",
    "count": "sum(n)",
    "cv": "sqrt(greatest(sum(sumsq) - sum(sum) * sum(sum) / sum(n), 0) / nullif(sum(n) - 1, 0)) "
    "/ nullif(abs(sum(sum) / sum(n)), 0)",
}
"""The same statistics from hourly rollups: exact but for the median (of hourly medians); p95
needs single values."""
EXACT_WINDOW = timedelta(days=2)
"""Distribution statistics over single values for windows up to this long."""
EXACT = "values"
HOURLY = "hourly medians"
"""``attrs["statistic"]``: medians and quartiles over single values, or over each series' hourly
medians (the rollups: exact for counts, means, spreads, minima and maxima)."""
DETERMINED_BY = {"hardware": ("device",), "model": ("model_family", "modality")}
"""Dimensions that change with another: comparing hardware also changes the device."""
PREFERRED_METRICS = (
    "throughput_items_per_second",
    "latency_p50_ms",
    "time_median_s",
    "ops_per_second",
    "real_time_ns",
)
"""The metric shown when none is asked for: the first of these with values, else the commonest."""


def series_label_sql(alias: str = "s") -> str:
    """A readable name for a series: test or benchmark, model, platform, device, batch, precision,
    extras."""
    a = alias
    return (
        f"concat_ws(' · ', {a}.name, {a}.model, {a}.hardware, {a}.device, 'bs' || {a}.batch_size, "
        f"{a}.\"precision\", nullif(array_to_string(map_values({a}.extra), ' '), ''))"
    )


def metric_info(cur: duckdb.DuckDBPyConnection, metric: str) -> dict[str, str]:
    rows = cur.execute(
        "SELECT unit, direction, description FROM metrics WHERE name = ?", [metric]
    ).fetchall()
    unit, direction, description = rows[0] if rows else ("", "none", "")
    return {"name": metric, "unit": unit, "direction": direction, "description": description or ""}


def _group_sql(cur: duckdb.DuckDBPyConnection, by: str) -> str:
    if not by:
        return "'all'"
    if by == SERIES:
        return series_label_sql("s")
    return f"CAST({Dimensions.of(cur).sql(by, 's')} AS VARCHAR)"


def _picked(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    bucket_s: int | None = None,
    select: str = "",
) -> tuple[str, list]:
    """A CTE body: the metric's values in the spec's window and filters, joined to series."""
    where, params = where_clause(spec, now, alias="m", bucket_s=bucket_s)
    sql = (
        f"SELECT m.ts, m.value, m.series_id, m.result_id{', ' + select if select else ''} "  # noqa: S608
        f"FROM measurements AS m JOIN series AS s USING (series_id) {where} AND m.metric = ?"
    )
    return sql, [*params, metric]


def metric_over_time(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    by: str = "",
    relative: bool = False,
    max_points: int = 300,
    max_groups: int = 12,
) -> pd.DataFrame:
    """Per time bucket and group: median, quartiles, min, max and count of a metric.

    ``relative`` divides each value by its own series' median in the window first, so groups
    that mix configurations of very different speed share one scale (1.0 = usual). Buckets keep
    every line under ``max_points`` points (at most 2,000); the ``max_groups`` groups with the
    most values are drawn (``attrs["groups_total"]`` says how many there were).
    """
    start, end = effective_window(cur, spec, now)
    step = bucket_seconds(start, end, min(max_points, 2000))
    source, params = metric_source(cur, spec, now, metric, bucket_s=step)
    group = _group_sql(cur, by)
    # Rows are hourly rollups (buckets of whole hours) or single values (shorter buckets); the
    # same SQL gives exact statistics over values for the latter, and statistics over each
    # series' hourly medians for the former (attrs["statistic"] says which).
    picked = (
        f"SELECT r.at_ts, r.series_id, r.n, r.min, r.max, r.median, {group} AS grp "  # noqa: S608
        f"FROM ({source}) AS r JOIN series AS s USING (series_id)"
    )
    if relative:
        picked = (
            f"WITH raw AS MATERIALIZED ({picked}), typical AS (SELECT series_id, "  # noqa: S608
            "median(median) AS typical FROM raw GROUP BY ALL HAVING median(median) > 0) "
            "SELECT raw.at_ts, raw.series_id, raw.n, raw.min / typical AS min, "
            "raw.max / typical AS max, raw.median / typical AS median, raw.grp "
            "FROM raw JOIN typical USING (series_id)"
        )
    # MATERIALIZED: the filtered values are read once and reused by every part below.
    frame = cur.execute(
        f"""WITH picked AS MATERIALIZED ({picked}),
                 ranked AS (SELECT grp, sum(n) AS n FROM picked GROUP BY grp),
                 top AS (SELECT grp FROM ranked ORDER BY n DESC, grp LIMIT ?)
            SELECT time_bucket(to_seconds(?), at_ts) AS bucket, grp AS "group",
                   median(median) AS median, quantile_cont(median, 0.25) AS p25,
                   quantile_cont(median, 0.75) AS p75, min(min) AS min, max(max) AS max,
                   sum(n)::BIGINT AS n, (SELECT count(*) FROM ranked) AS groups_total
            FROM picked WHERE grp IN (SELECT grp FROM top)
            GROUP BY ALL ORDER BY "group", bucket""",  # noqa: S608
        [*params, max_groups, step],
    ).df()
    total = int(frame["groups_total"].iloc[0]) if len(frame) else 0
    frame = frame.drop(columns="groups_total")
    frame.attrs.update(
        bucket_seconds=step,
        groups_total=int(total),
        statistic=HOURLY if uses_hours(step) else EXACT,
    )
    return frame


def dimension_stats(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    dim: str,
    max_values: int = 50,
) -> pd.DataFrame:
    """Per value of a dimension: count, mean, median, p25, p75, p95, std and CV of a metric.

    Windows up to ``EXACT_WINDOW`` read single values; longer ones the hourly rollups: count,
    mean, std and CV stay exact, the quantiles are then over each series' hourly medians
    (``attrs["statistic"]``)."""
    start, end = effective_window(cur, spec, now)
    exact = end - start <= EXACT_WINDOW
    source, params = metric_source(cur, spec, now, metric, raw_only=exact)
    n = "sum(r.n)"
    mean = f"sum(r.sum) / {n}"
    std = f"sqrt(greatest(sum(r.sumsq) - sum(r.sum) * sum(r.sum) / {n}, 0) / nullif({n} - 1, 0))"
    frame = cur.execute(
        f"""SELECT coalesce({_group_sql(cur, dim)}, '(none)') AS value, {n}::BIGINT AS count,
                   {mean} AS mean, median(r.median) AS median,
                   quantile_cont(r.median, 0.25) AS p25, quantile_cont(r.median, 0.75) AS p75,
                   quantile_cont(r.median, 0.95) AS p95, {std} AS std,
                   {std} / nullif(abs({mean}), 0) AS cv
            FROM ({source}) AS r JOIN series AS s USING (series_id)
            GROUP BY ALL ORDER BY count DESC, value LIMIT ?""",  # noqa: S608
        [*params, max_values],
    ).df()
    frame.attrs["statistic"] = EXACT if exact else HOURLY
    return frame


def comparison_values(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    dim: str,
    a: str,
    b: str,
    per_series: int = 200,
) -> pd.DataFrame:
    """The latest ``per_series`` values of each series whose ``dim`` is ``a`` or ``b``, pooled
    per benchmark and side (one row each, the values as a list): a benchmark is every identity
    dimension except ``dim`` (and what changes with it, such as the device when comparing
    hardware)."""
    dims = Dimensions.of(cur)
    target = dims.sql(dim, "s")
    skip = {dim, *DETERMINED_BY.get(dim, ())}
    parts = {
        "suite": "s.suite",
        "benchmark": "s.name",
        "model": "s.model",
        "hardware": "s.hardware",
        "device": "s.device",
        "batch_size": "'bs' || s.batch_size",
        "precision": 's."precision"',
    }
    key_parts = [sql for name, sql in parts.items() if name not in skip]
    key_parts += [
        f"'{key}=' || {dims.sql('extra.' + key, 's')}"
        for key in dims.extras
        if f"extra.{key}" not in skip
    ]
    picked, params = _picked(
        cur,
        spec,
        now,
        metric,
        select=f"CAST({target} AS VARCHAR) AS side_value, "
        f"concat_ws(' · ', {', '.join(key_parts)}) AS benchmark",
    )
    # Only the hours holding the last ``per_series`` values of each compared series are read.
    source, source_params = metric_source(cur, spec, now, metric)
    since = cur.execute(
        f"""WITH per_hour AS (
                SELECT r.series_id, r.at_ts, sum(r.n) AS k FROM ({source}) AS r
                JOIN series AS s USING (series_id)
                WHERE CAST({target} AS VARCHAR) IN (?, ?) GROUP BY ALL
            ),
            running AS (
                SELECT series_id, at_ts, sum(k) OVER (PARTITION BY series_id ORDER BY at_ts DESC
                                                     ROWS UNBOUNDED PRECEDING) AS c
                FROM per_hour
            )
            SELECT min(since) FROM (
                SELECT coalesce(max(at_ts) FILTER (c >= ?), min(at_ts)) AS since
                FROM running GROUP BY series_id)""",  # noqa: S608
        [*source_params, a, b, per_series],
    ).fetchall()[0][0]
    if since is not None:
        picked += " AND m.ts >= time_bucket(INTERVAL 1 HOUR, ?::TIMESTAMP)"
        params = [*params, since]
    # max_by(value, ts, n) keeps the n latest values of each series without sorting them all.
    return cur.execute(
        f"""WITH picked AS ({picked}),
                 latest AS (
                     SELECT series_id, any_value(side_value) AS side_value,
                            any_value(benchmark) AS benchmark,
                            max_by(value, ts, ?) AS recent
                     FROM picked WHERE side_value IN (?, ?) GROUP BY series_id)
            SELECT CASE WHEN side_value = ? THEN 'A' ELSE 'B' END AS side, benchmark,
                   flatten(list(recent)) AS "values"
            FROM latest GROUP BY ALL ORDER BY benchmark, side""",  # noqa: S608
        [*params, per_series, a, b, a],
    ).df()


def dimension_values(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, metric: str, dim: str
) -> list[str]:
    """Values a dimension takes among the metric's values in the window (for the A/B pickers)."""
    source, params = metric_source(cur, spec, now, metric)
    rows = cur.execute(
        f"""WITH picked AS (SELECT {_group_sql(cur, dim)} AS grp
                            FROM ({source}) AS r JOIN series AS s USING (series_id))
            SELECT grp FROM picked WHERE grp IS NOT NULL
            GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 200""",  # noqa: S608
        params,
    ).fetchall()
    return [row[0] for row in rows]


def heatmap_cells(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    rows: str,
    cols: str,
    stat: str = "median",
    max_values: int = 60,
) -> pd.DataFrame:
    """A statistic of a metric for every (row value, column value) that has values.

    Read from the hourly rollups except p95 (which needs single values): the median is then the
    median of each series' hourly medians (``attrs["statistic"]``), the rest are exact."""
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}")
    exact = stat not in HOURLY_STATISTICS
    source, params = metric_source(cur, spec, now, metric, raw_only=exact)
    expression = STATISTICS[stat].replace("value", "median") if exact else HOURLY_STATISTICS[stat]
    frame = cur.execute(
        f"""WITH picked AS MATERIALIZED (
                SELECT r.*, {_group_sql(cur, rows)} AS row_value,
                       {_group_sql(cur, cols)} AS col_value
                FROM ({source}) AS r JOIN series AS s USING (series_id)),
                 top_rows AS (SELECT row_value FROM picked GROUP BY ALL
                              ORDER BY sum(n) DESC, row_value LIMIT ?),
                 top_cols AS (SELECT col_value FROM picked GROUP BY ALL
                              ORDER BY sum(n) DESC, col_value LIMIT ?)
            SELECT coalesce(row_value, '(none)') AS "row", coalesce(col_value, '(none)') AS "col",
                   {expression} AS value, sum(n)::BIGINT AS n
            FROM picked
            WHERE row_value IN (SELECT row_value FROM top_rows)
              AND col_value IN (SELECT col_value FROM top_cols)
            GROUP BY ALL ORDER BY "row", "col" """,  # noqa: S608
        [*params, max_values, max_values],
    ).df()
    frame.attrs["statistic"] = EXACT if exact or stat != "median" else HOURLY
    return frame


def metric_sample(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metrics: tuple[str, ...],
    color: str = "",
    size: int = 20_000,
) -> pd.DataFrame:
    """Results with their values of ``metrics`` side by side (one row per result): a repeatable
    sample of at most ``size`` of the results that have the first metric. ``color`` adds a
    dimension column named "group"; ``attrs["results_total"]`` is the population."""
    if not metrics:
        return pd.DataFrame()
    source, source_params = metric_source(cur, spec, now, metrics[0])
    total = int(
        cur.execute(f"SELECT coalesce(sum(n), 0) FROM ({source})", source_params).fetchall()[0][0]  # noqa: S608
    )
    # A bottom-k sample by hash of the result id: repeatable, uniform, exactly ``size`` rows,
    # and one pass over the values (results whose hash is past a threshold set a little above
    # size / total are skipped while reading).
    share = 1.0 if total <= size else min(1.0, (1.3 * size + 100) / total)
    where, params = where_clause(spec, now, alias="m")
    picks = ", ".join(
        f'max(v.value) FILTER (WHERE v.metric = ?) AS "{i}"' for i in range(len(metrics))
    )
    color_sql = _group_sql(cur, color) if color else "NULL"
    placeholders = ", ".join("?" * len(metrics))
    frame = cur.execute(
        f"""WITH vals AS (
                SELECT m.result_id, m.series_id, m.metric, m.value,
                       hash(m.result_id, 42) AS h
                FROM measurements AS m
                {where} AND m.metric IN ({placeholders}) AND hash(m.result_id, 42) <= ?
            )
            SELECT any_value({color_sql}) AS "group", {picks}
            FROM vals AS v JOIN series AS s USING (series_id)
            GROUP BY v.result_id HAVING bool_or(v.metric = ?)
            ORDER BY any_value(v.h), v.result_id LIMIT ?""",  # noqa: S608
        [
            *params,
            *metrics,
            int(share * (2**64 - 1)),
            *metrics,
            metrics[0],
            int(size),
        ],
    ).df()
    frame.columns = ["group", *metrics]
    frame.attrs["results_total"] = total
    return frame


def statistic_note(frame: pd.DataFrame) -> str:
    """A caption's sentence saying what the medians and quantiles are taken over."""
    if frame.attrs.get("statistic") == HOURLY:
        return (
            " Medians and percentiles are over each configuration's hourly medians (from the "
            "hourly rollups); counts, means, spreads, minima and maxima are over every value."
        )
    return ""


def resolve_metric(cur: duckdb.DuckDBPyConnection, metric: str | None) -> str:
    """The metric asked for when it has values, else the preferred one; ValueError naming the
    known metrics when the one asked for has none, LookupError when no metric has values."""
    from lib.queries import metrics_present

    names = list(metrics_present(cur)["name"])
    if metric:
        if metric not in names:
            known = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise ValueError(f"metric {metric!r} has no values in this database; known: {known}")
        return metric
    if not names:
        raise LookupError("no metric has values in this database yet")
    return next((m for m in PREFERRED_METRICS if m in names), names[0])


def resolve_dimension(cur: duckdb.DuckDBPyConnection, dimension: str) -> str:
    names = dimension_names(cur)
    if dimension not in names:
        raise ValueError(
            f"{dimension!r} is not a dimension of this store; known: {', '.join(names)}"
        )
    return dimension


def dimension_names(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Every dimension the store can group by: built-ins plus its extras."""
    return Dimensions.of(cur).names


__all__ = [
    "BUILTIN",
    "PREFERRED_METRICS",
    "SERIES",
    "STATISTICS",
    "comparison_values",
    "dimension_names",
    "dimension_stats",
    "dimension_values",
    "heatmap_cells",
    "metric_info",
    "metric_over_time",
    "metric_sample",
    "resolve_dimension",
    "resolve_metric",
    "series_label_sql",
    "statistic_note",
]
