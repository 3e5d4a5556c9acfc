"""Queries behind the performance pages: trends, dimension comparison, heatmap, correlation.

Like ``lib.queries``: ``(cursor, spec, now, ...)`` in, a small frame out, aggregation in DuckDB,
values as parameters, names from ``lib.dimensions`` (extras checked against the store's keys).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from lib.dimensions import BUILTIN, Dimensions
from lib.queries import bucket_seconds, effective_window, where_clause
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
"""Heatmap statistics: the allow-list of aggregate expressions."""
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
    picked, params = _picked(cur, spec, now, metric, step, f"{_group_sql(cur, by)} AS grp")
    if relative:
        picked = (
            f"WITH raw AS MATERIALIZED ({picked}), typical AS (SELECT series_id, "  # noqa: S608
            "median(value) AS typical FROM raw GROUP BY ALL HAVING median(value) > 0) "
            "SELECT raw.ts, raw.value / typical.typical AS value, raw.series_id, raw.grp "
            "FROM raw JOIN typical USING (series_id)"
        )
    # MATERIALIZED: the filtered values are read once and reused by every part below.
    frame = cur.execute(
        f"""WITH picked AS MATERIALIZED ({picked}),
                 ranked AS (SELECT grp, count(*) AS n FROM picked GROUP BY grp),
                 top AS (SELECT grp FROM ranked ORDER BY n DESC, grp LIMIT ?)
            SELECT time_bucket(to_seconds(?), ts) AS bucket, grp AS "group",
                   median(value) AS median, quantile_cont(value, 0.25) AS p25,
                   quantile_cont(value, 0.75) AS p75, min(value) AS min, max(value) AS max,
                   count(*) AS n, (SELECT count(*) FROM ranked) AS groups_total
            FROM picked WHERE grp IN (SELECT grp FROM top)
            GROUP BY ALL ORDER BY "group", bucket""",  # noqa: S608
        [*params, max_groups, step],
    ).df()
    total = int(frame["groups_total"].iloc[0]) if len(frame) else 0
    frame = frame.drop(columns="groups_total")
    frame.attrs.update(bucket_seconds=step, groups_total=int(total))
    return frame


def dimension_stats(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    metric: str,
    dim: str,
    max_values: int = 50,
) -> pd.DataFrame:
    """Per value of a dimension: count, mean, median, p25, p75, p95, std and CV of a metric."""
    picked, params = _picked(cur, spec, now, metric, select=f"{_group_sql(cur, dim)} AS grp")
    return cur.execute(
        f"""WITH picked AS ({picked})
            SELECT coalesce(grp, '(none)') AS value, count(*) AS count, avg(value) AS mean,
                   median(value) AS median, quantile_cont(value, 0.25) AS p25,
                   quantile_cont(value, 0.75) AS p75, quantile_cont(value, 0.95) AS p95,
                   stddev_samp(value) AS std,
                   stddev_samp(value) / nullif(abs(avg(value)), 0) AS cv
            FROM picked GROUP BY ALL ORDER BY count DESC, value LIMIT ?""",  # noqa: S608
        [*params, max_values],
    ).df()


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
    """The latest ``per_series`` values of each series whose ``dim`` is ``a`` or ``b``, with the
    benchmark they belong to: every identity dimension except ``dim`` (and what changes with
    it, such as the device when comparing hardware)."""
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
    # max_by(value, ts, n) keeps the n latest values of each series without sorting them all.
    return cur.execute(
        f"""WITH picked AS ({picked}),
                 latest AS (
                     SELECT series_id, any_value(side_value) AS side_value,
                            any_value(benchmark) AS benchmark,
                            max_by(value, ts, ?) AS recent
                     FROM picked WHERE side_value IN (?, ?) GROUP BY series_id)
            SELECT CASE WHEN side_value = ? THEN 'A' ELSE 'B' END AS side, benchmark,
                   unnest(recent) AS value
            FROM latest ORDER BY benchmark, side""",  # noqa: S608
        [*params, per_series, a, b, a],
    ).df()


def dimension_values(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, metric: str, dim: str
) -> list[str]:
    """Values a dimension takes among the metric's values in the window (for the A/B pickers)."""
    picked, params = _picked(cur, spec, now, metric, select=f"{_group_sql(cur, dim)} AS grp")
    rows = cur.execute(
        f"""WITH picked AS ({picked}) SELECT grp FROM picked WHERE grp IS NOT NULL
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
    """A statistic of a metric for every (row value, column value) that has values."""
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}")
    picked, params = _picked(
        cur,
        spec,
        now,
        metric,
        select=f"{_group_sql(cur, rows)} AS row_value, {_group_sql(cur, cols)} AS col_value",
    )
    return cur.execute(
        f"""WITH picked AS ({picked}),
                 top_rows AS (SELECT row_value FROM picked GROUP BY ALL
                              ORDER BY count(*) DESC, row_value LIMIT ?),
                 top_cols AS (SELECT col_value FROM picked GROUP BY ALL
                              ORDER BY count(*) DESC, col_value LIMIT ?)
            SELECT coalesce(row_value, '(none)') AS "row", coalesce(col_value, '(none)') AS "col",
                   {STATISTICS[stat]} AS value, count(*) AS n
            FROM picked
            WHERE row_value IN (SELECT row_value FROM top_rows)
              AND col_value IN (SELECT col_value FROM top_cols)
            GROUP BY ALL ORDER BY "row", "col" """,  # noqa: S608
        [*params, max_values, max_values],
    ).df()


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
    where, params = where_clause(spec, now, alias="m")
    picks = ", ".join(
        f'max(v.value) FILTER (WHERE v.metric = ?) AS "{i}"' for i in range(len(metrics))
    )
    color_sql = _group_sql(cur, color) if color else "NULL"
    placeholders = ", ".join("?" * len(metrics))
    # Sample after filtering (a sample clause on the table itself would sample first), then
    # fetch the sampled results' values with a semi-join before touching series.
    frame = cur.execute(
        f"""WITH base AS (
                SELECT result_id FROM (
                    SELECT m.result_id FROM measurements AS m {where} AND m.metric = ?
                ) USING SAMPLE reservoir({int(size)} ROWS) REPEATABLE (42)
            ),
            vals AS (
                SELECT m.result_id, m.series_id, m.metric, m.value
                FROM measurements AS m SEMI JOIN base USING (result_id)
                {where} AND m.metric IN ({placeholders})
            )
            SELECT any_value({color_sql}) AS "group", {picks}
            FROM vals AS v JOIN series AS s USING (series_id)
            GROUP BY v.result_id ORDER BY v.result_id""",  # noqa: S608
        [*params, metrics[0], *params, *metrics, *metrics],
    ).df()
    frame.columns = ["group", *metrics]
    total = cur.execute(
        f"SELECT count(*) FROM measurements AS m {where} AND m.metric = ?",  # noqa: S608
        [*params, metrics[0]],
    ).fetchall()[0][0]
    frame.attrs["results_total"] = int(total)
    return frame


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
]
