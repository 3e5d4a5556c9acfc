"""Test health and worker health: which tests are broken or flaky, which machines are sick.

The order matters. A sick worker makes every test it runs fail now and then, which looks exactly
like flakiness; so workers are judged first, against what their peers see on the same tests, and
the results of a flagged worker are set aside when tests are judged.

Workers: for each worker, the failures it saw (failed or error) against the failures expected if
each of its executions failed as often as that test does on the other workers; a one-sided
normal approximation of the Poisson-binomial gives a p-value, Benjamini-Hochberg adjusts across
workers, and a worker is flagged when the adjusted p < 0.001, it saw at least twice the expected
failures and at least 5 more.

Tests (one row per test configuration, i.e. series), on executed results (skips excluded):
- flaky: both passed and failed on the same commit (Buildkite, Datadog, Trunk); or at least 0.2
  pass/fail transitions per run (and at least 2) over the last 20 runs with a failure rate
  between 5 % and 95 %;
- broken: the last 3 runs failed (and not flaky: three failures in a row happen to flaky tests);
  recovered: 3 or more failures in a row earlier, passing now.
The pass rate carries its Wilson 95 % interval.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sp

from lib.dimensions import series_label
from lib.queries import results_source, time_clause, where_clause
from lib.spec import QuerySpec
from lib.stats import benjamini_hochberg

FLIP_WINDOW = 20
RECENT = 50
"""Results per test read one by one: the last RECENT (history, durations, median duration)."""
FLIP_RATE = 0.2
MIN_FLIPS = 2
"""One pass-to-fail transition is a change of state (broken), not flakiness: it takes two."""
FLAKY_FAILURE_RANGE = (0.05, 0.95)
BROKEN_RUNS = 3
STRIP = 20
WORKER_ALPHA = 0.001
WORKER_MIN_RATIO = 2.0
WORKER_MIN_EXCESS = 5
_FAIL = ("failed", "error")


def wilson(
    successes: np.ndarray, trials: np.ndarray, z: float = 1.959963984540054
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (vectorised; NaN where there are no trials)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


_NORMALISE = [
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\b"),
        "<time>",
    ),
    (re.compile(r"0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"\b(?=\w*\d)(?=\w*[A-Za-z])\w{6,}\b"), "<id>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_message(message: str | None) -> str:
    """A failure message with what changes run to run (numbers, ids, paths, times) taken out,
    so failures with the same cause group together."""
    if not message:
        return "(no message)"
    text = message.strip().splitlines()[0][:500]
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text.strip()


# ----------------------------------------------------------------------------- workers


JUDGED_COLUMNS = (
    "worker_id",
    "executed",
    "failures",
    "failure_rate",
    "expected",
    "ratio",
    "p_adjusted",
    "flagged",
)
"""What ``worker_health`` says of each worker, as the fleet tables show it."""


def with_health(fleet: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """The fleet (one row per worker) with ``worker_health``'s verdict beside each worker;
    workers without results in the window keep empty verdict columns."""
    return fleet.merge(judged[list(JUDGED_COLUMNS)], on="worker_id", how="left")


def worker_health(cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime) -> pd.DataFrame:
    """Per worker: executions, failures, expected failures given the tests it ran, ratio, p-value
    (BH-adjusted) and whether it is flagged."""
    source, params = results_source(cur, spec, now)
    frame = cur.execute(
        f"""WITH done AS (
                SELECT worker_id, series_id, failed + error AS fails,
                       passed + failed + error AS runs
                FROM ({source}) WHERE worker_id IS NOT NULL AND passed + failed + error > 0
            ),
            per_series AS (SELECT series_id, sum(fails) AS fails, sum(runs) AS runs
                           FROM done GROUP BY ALL),
            per_pair AS (SELECT worker_id, series_id, sum(fails) AS fails, sum(runs) AS runs
                         FROM done GROUP BY ALL)
            SELECT p.worker_id, sum(p.runs) AS executed, sum(p.fails) AS failures,
                   sum(CASE WHEN s.runs > p.runs
                            THEN p.runs * (s.fails - p.fails) / (s.runs - p.runs) END) AS expected,
                   sum(CASE WHEN s.runs > p.runs
                            THEN p.runs * ((s.fails - p.fails) / (s.runs - p.runs))
                                 * (1 - (s.fails - p.fails) / (s.runs - p.runs)) END) AS variance,
                   sum(CASE WHEN s.runs > p.runs THEN p.runs ELSE 0 END) AS compared
            FROM per_pair AS p JOIN per_series AS s USING (series_id)
            GROUP BY ALL ORDER BY p.worker_id""",  # noqa: S608
        params,
    ).df()
    if frame.empty:
        return frame.assign(failure_rate=[], ratio=[], p_value=[], p_adjusted=[], flagged=[])
    frame["failure_rate"] = frame["failures"] / frame["executed"]
    expected = frame["expected"].fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["ratio"] = frame["failures"] / expected
        z = (frame["failures"] - expected) / np.sqrt(frame["variance"].fillna(0.0))
    p = sp.norm.sf(z.to_numpy(dtype=float))
    p[~np.isfinite(z.to_numpy(dtype=float))] = np.nan
    frame["p_value"] = p
    frame["p_adjusted"] = benjamini_hochberg(p)
    frame["flagged"] = (
        (frame["p_adjusted"] < WORKER_ALPHA)
        & (frame["failures"] >= WORKER_MIN_RATIO * expected)
        & (frame["failures"] - expected >= WORKER_MIN_EXCESS)
    )
    return frame


def flagged_workers(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime
) -> tuple[str, ...]:
    health = worker_health(cur, spec, now)
    return tuple(sorted(health.loc[health["flagged"], "worker_id"])) if len(health) else ()


# ----------------------------------------------------------------------------- tests


def _flip_rate(statuses: list[str]) -> float:
    """Pass/fail transitions per run among the last FLIP_WINDOW runs (newest first in)."""
    recent = [s in _FAIL for s in statuses[:FLIP_WINDOW]]
    if len(recent) < 2:
        return 0.0
    return sum(a != b for a, b in zip(recent, recent[1:], strict=False)) / (len(recent) - 1)


def test_health(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    exclude_workers: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per test configuration with its health; results of ``exclude_workers`` (workers
    flagged as sick) are left out, so their failures do not make tests look flaky.

    Counts and commits come from the hourly rollups (exact); the recent history (the last
    ``RECENT`` results of each test: flips, strip, durations, last status) and the longest run of
    failures (only for tests that could have one) from single results."""
    source, params = results_source(cur, spec, now)
    exclude, excluded = "", list(exclude_workers)
    if exclude_workers:
        exclude = f" AND coalesce(worker_id, '') NOT IN ({', '.join('?' * len(excluded))})"
    tests = "series_id IN (SELECT series_id FROM series WHERE kind <> 'benchmark')"
    counts = cur.execute(
        f"""WITH picked AS MATERIALIZED (
                SELECT * FROM ({source}) WHERE {tests}{exclude}
            ),
            mixed AS (
                SELECT series_id, count(*) AS mixed_commits FROM (
                    SELECT p.series_id, runs.git_commit FROM picked AS p JOIN runs USING (run_id)
                    WHERE runs.git_commit IS NOT NULL GROUP BY ALL
                    HAVING sum(p.passed) > 0 AND sum(p.failed + p.error) > 0
                ) GROUP BY ALL
            )
            SELECT p.series_id, {series_label()} AS test, s.kind,
                   concat_ws(' · ', s.hardware, s.device, s.model, s."precision") AS configuration,
                   sum(p.passed + p.failed + p.error + p.skipped)::BIGINT AS runs,
                   sum(p.passed)::BIGINT AS passed,
                   sum(p.failed + p.error)::BIGINT AS failures,
                   sum(p.skipped)::BIGINT AS skipped, max(p.last_ts) AS last_run,
                   min(p.at_ts) AS first_hour,
                   coalesce(any_value(mixed.mixed_commits), 0) AS mixed_commits
            FROM picked AS p JOIN series AS s USING (series_id)
            LEFT JOIN mixed USING (series_id)
            GROUP BY ALL""",  # noqa: S608
        [*params, *excluded],
    ).df()
    if counts.empty:
        return _judge(counts)
    start, end = spec.window(now)
    time_sql, time_params = time_clause(start, end, "r.ts")
    exclude_raw = exclude.replace("worker_id", "r.worker_id")
    # The recent results: from the hour where each test's last RECENT results begin.
    hours = cur.execute(
        f"""WITH per_hour AS (
                SELECT series_id, at_ts, sum(passed + failed + error + skipped) AS k
                FROM ({source}) WHERE {tests}{exclude} GROUP BY ALL
            ),
            running AS (
                SELECT series_id, at_ts, sum(k) OVER (PARTITION BY series_id ORDER BY at_ts DESC
                                                     ROWS UNBOUNDED PRECEDING) AS c
                FROM per_hour
            )
            SELECT series_id, coalesce(max(at_ts) FILTER (c >= ?), min(at_ts)) AS since
            FROM running GROUP BY ALL""",  # noqa: S608
        [*params, *excluded, RECENT],
    ).df()
    cur.register("_test_since", hours)
    try:
        recent = cur.execute(
            f"""WITH latest AS (
                    SELECT r.series_id, r.ts, r.status, r.duration_s FROM results AS r
                    JOIN _test_since AS t ON r.series_id = t.series_id
                        AND r.ts >= time_bucket(INTERVAL 1 HOUR, t.since)
                    WHERE r.ts >= time_bucket(INTERVAL 1 HOUR, ?::TIMESTAMP) {time_sql}{exclude_raw}
                    QUALIFY row_number() OVER (PARTITION BY r.series_id ORDER BY r.ts DESC) <= ?
                )
                SELECT series_id, arg_max(status, ts) AS last_status,
                       list(status ORDER BY ts DESC) FILTER (status <> 'skipped') AS history,
                       list(duration_s ORDER BY ts DESC)
                           FILTER (status <> 'skipped' AND duration_s IS NOT NULL) AS durations,
                       median(duration_s) FILTER (status <> 'skipped') AS median_duration_s
                FROM latest GROUP BY ALL""",  # noqa: S608
            [hours["since"].min(), *time_params, *excluded, RECENT],
        ).df()
    finally:
        cur.unregister("_test_since")
    frame = counts.merge(recent, on="series_id", how="left")
    frame["longest_failure_run"] = 0
    judged = _judge(frame)
    # Only a test that would otherwise pass as "passing" with 3 or more failures can have
    # recovered; the longest run of failures is read one by one for those alone.
    candidates = judged.loc[
        (judged["state"] == "passing") & (judged["failures"] >= BROKEN_RUNS), "series_id"
    ].tolist()
    if not candidates:
        return judged
    streaks = _longest_failure_runs(cur, candidates, time_sql, time_params, exclude_raw, excluded)
    frame["longest_failure_run"] = frame["series_id"].map(streaks).fillna(0).astype(int)
    return _judge(frame)


def _longest_failure_runs(
    cur: duckdb.DuckDBPyConnection,
    series_ids: list[int],
    time_sql: str,
    time_params: list,
    exclude: str,
    excluded: list[str],
) -> dict[int, int]:
    """The longest run of consecutive failures of each test in the window (gaps and islands)."""
    rows = cur.execute(
        f"""WITH executed AS (
                SELECT r.series_id, r.ts, r.status IN ('failed', 'error') AS fail
                FROM results AS r
                WHERE r.series_id IN (SELECT unnest(?::BIGINT[])) AND r.status <> 'skipped'
                {time_sql}{exclude}
            ),
            islands AS (
                SELECT series_id, fail,
                       row_number() OVER (PARTITION BY series_id ORDER BY ts)
                       - row_number() OVER (PARTITION BY series_id, fail ORDER BY ts) AS island
                FROM executed
            )
            SELECT series_id, max(n) FROM (
                SELECT series_id, island, count(*) AS n FROM islands WHERE fail GROUP BY ALL
            ) GROUP BY ALL""",  # noqa: S608
        [series_ids, *time_params, *excluded],
    ).fetchall()
    return {int(series): int(n) for series, n in rows}


def _judge(frame: pd.DataFrame) -> pd.DataFrame:
    """Flags and derived columns from the per-series aggregates (pure pandas)."""
    columns = [
        "series_id",
        "test",
        "kind",
        "configuration",
        "state",
        "flaky_score",
        "pass_rate",
        "pass_rate_low",
        "pass_rate_high",
        "runs",
        "failures",
        "skipped",
        "last_status",
        "last_run",
        "median_duration_s",
        "duration_trend",
        "strip",
        "recent_durations",
        "mixed_commits",
        "flip_rate",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.copy()
    history = frame["history"].map(_as_list)
    durations = frame["durations"].map(lambda d: [float(x) for x in _as_list(d)])
    executed = frame["passed"] + frame["failures"]
    frame["pass_rate"] = frame["passed"] / executed.where(executed > 0)
    low, high = wilson(frame["passed"].to_numpy(), executed.to_numpy())
    frame["pass_rate_low"], frame["pass_rate_high"] = low, high
    failure_rate = frame["failures"] / executed.where(executed > 0)
    frame["flip_rate"] = history.map(_flip_rate)
    lo_rate, hi_rate = FLAKY_FAILURE_RANGE
    transitions = frame["flip_rate"] * (history.map(lambda h: min(len(h), FLIP_WINDOW)) - 1)
    flips = (
        (frame["flip_rate"] >= FLIP_RATE)
        & (transitions.round() >= MIN_FLIPS)
        & failure_rate.between(lo_rate, hi_rate)
    )
    same_commit = frame["mixed_commits"] > 0
    frame["flaky"] = same_commit | flips
    frame["flaky_score"] = np.where(
        frame["flaky"],
        np.maximum(frame["flip_rate"], np.minimum(1.0, frame["mixed_commits"] / 3)),
        frame["flip_rate"],
    )
    broken = history.map(
        lambda h: len(h) >= BROKEN_RUNS and all(s in _FAIL for s in h[:BROKEN_RUNS])
    )
    recovered = history.map(lambda h: bool(h) and h[0] == "passed") & (
        frame["longest_failure_run"] >= BROKEN_RUNS
    )
    frame["state"] = np.select(
        [frame["flaky"], broken, recovered, executed == 0, frame["last_status"].isin(_FAIL)],
        ["flaky", "broken", "recovered", "skipped", "failing"],
        default="passing",
    )
    frame["strip"] = history.map(
        lambda h: "".join("✓" if s == "passed" else "✗" for s in reversed(h[:STRIP]))
    )
    frame["recent_durations"] = durations.map(lambda d: list(reversed(d[:STRIP])))
    frame["duration_trend"] = durations.map(_duration_trend)
    # A fixed order (GROUP BY has none), so pages of a listing never overlap.
    return frame[columns].sort_values(["test", "configuration", "series_id"], ignore_index=True)


def _as_list(value: object) -> list:
    """DuckDB lists arrive as lists or arrays, a missing one as NA."""
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []


def _duration_trend(durations: list[float]) -> float:
    """Median of the last 10 runs' durations over the median of the 10 before, minus 1."""
    recent, before = durations[:10], durations[10:20]
    if len(recent) < 3 or len(before) < 3:
        return float("nan")
    base = float(np.median(before))
    return float(np.median(recent)) / base - 1.0 if base > 0 else float("nan")


SORTABLE = (
    "state",
    "test",
    "pass_rate",
    "runs",
    "failures",
    "flaky_score",
    "last_run",
    "median_duration_s",
    "duration_trend",
)
STATE_ORDER = {"broken": 0, "flaky": 1, "failing": 2, "recovered": 3, "passing": 4, "skipped": 5}


def page_of(
    frame: pd.DataFrame,
    search: str = "",
    sort_by: str = "state",
    descending: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> tuple[pd.DataFrame, int, int]:
    """Filter by a case-insensitive search over test and configuration, sort, and cut a page.
    Returns the page, the number of matching rows, and the page actually shown."""
    if sort_by not in SORTABLE:
        raise ValueError(f"cannot sort by {sort_by!r}")
    rows = frame
    if search:
        needle = search.casefold()
        rows = rows[
            rows["test"].str.casefold().str.contains(needle, regex=False)
            | rows["configuration"].str.casefold().str.contains(needle, regex=False)
        ]
    key = rows["state"].map(STATE_ORDER) if sort_by == "state" else rows[sort_by]
    rows = (
        rows.assign(_key=key)
        .sort_values(["_key", "test"], ascending=[not descending, True], na_position="last")
        .drop(columns="_key")
    )
    total = len(rows)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    return rows.iloc[(page - 1) * page_size : page * page_size], total, page


# ----------------------------------------------------------------------------- one test


def test_runs(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, series_id: int, limit: int = 500
) -> pd.DataFrame:
    """A test configuration's results, newest first, with commit and worker."""
    where, params = where_clause(spec, now, alias="r")
    return cur.execute(
        f"""SELECT r.ts AS time, r.status, r.duration_s, r.worker_id AS worker,
                   left(runs.git_commit, 12) AS "commit", runs.name AS run, r.message
            FROM results AS r LEFT JOIN runs USING (run_id)
            {where} AND r.series_id = ? ORDER BY r.ts DESC LIMIT ?""",  # noqa: S608
        [*params, int(series_id), limit],
    ).df()


def test_identity(cur: duckdb.DuckDBPyConnection, series_id: int) -> dict | None:
    rows = cur.execute(
        f"""SELECT {series_label("")} AS test, kind,
                  concat_ws(' · ', hardware, device, model, "precision") AS configuration
           FROM series WHERE series_id = ?""",  # noqa: S608
        [int(series_id)],
    ).fetchall()
    return dict(zip(("test", "kind", "configuration"), rows[0], strict=True)) if rows else None


def failure_clusters(runs: pd.DataFrame) -> pd.DataFrame:
    """Failures grouped by normalised message: how many, first and last seen, on which workers,
    and one original message as an example."""
    failing = runs[runs["status"].isin(_FAIL)]
    if failing.empty:
        return pd.DataFrame(
            columns=["cluster", "failures", "first_seen", "last_seen", "workers", "example"]
        )
    failing = failing.assign(cluster=failing["message"].map(normalise_message))
    grouped = failing.groupby("cluster").agg(
        failures=("status", "size"),
        first_seen=("time", "min"),
        last_seen=("time", "max"),
        workers=("worker", lambda w: ", ".join(sorted({x for x in w if x}))),
        example=("message", "first"),
    )
    return grouped.reset_index().sort_values(["failures", "last_seen"], ascending=False)


def failure_places(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, series_id: int
) -> pd.DataFrame:
    """Where a test ran and failed: per worker and its hardware, runs and failures."""
    where, params = where_clause(spec, now, alias="r")
    return cur.execute(
        f"""SELECT r.worker_id AS worker, w.hardware, w.device,
                   count(*) FILTER (r.status <> 'skipped') AS runs,
                   count(*) FILTER (r.status IN ('failed', 'error')) AS failures
            FROM results AS r LEFT JOIN workers AS w USING (worker_id)
            {where} AND r.series_id = ? GROUP BY ALL
            ORDER BY failures DESC, runs DESC""",  # noqa: S608
        [*params, int(series_id)],
    ).df()


# ----------------------------------------------------------------------------- one worker


def worker_activity(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, worker_id: str, bucket_s: int
) -> pd.DataFrame:
    """Results per bucket on one worker, by status."""
    where, params = where_clause(spec, now, alias="r", bucket_s=bucket_s)
    return cur.execute(
        f"""SELECT time_bucket(to_seconds(?), r.ts) AS bucket,
                   count(*) FILTER (r.status = 'passed') AS passed,
                   count(*) FILTER (r.status = 'failed') AS failed,
                   count(*) FILTER (r.status = 'error') AS error,
                   count(*) FILTER (r.status = 'skipped') AS skipped
            FROM results AS r {where} AND r.worker_id = ? GROUP BY ALL ORDER BY bucket""",  # noqa: S608
        [bucket_s, *params, worker_id],
    ).df()


def worker_resources(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, worker_id: str, bucket_s: int
) -> pd.DataFrame:
    """Mean resource use per bucket from a worker's heartbeats, in long form."""
    start, end = spec.window(now)
    clause, params = "", []
    if start is not None:
        clause += " AND ts >= ?"
        params.append(start)
    if end is not None:
        clause += " AND ts < ?"
        params.append(end)
    frame = cur.execute(
        f"""SELECT time_bucket(to_seconds(?), ts) AS bucket, avg(cpu_percent) AS cpu_percent,
                   avg(memory_percent) AS memory_percent, avg(gpu_percent) AS gpu_percent,
                   avg(power_watts) AS power_watts, count(*) AS heartbeats
            FROM heartbeats WHERE worker_id = ?{clause} GROUP BY ALL ORDER BY bucket""",  # noqa: S608
        [bucket_s, worker_id, *params],
    ).df()
    return frame.melt(
        id_vars=["bucket", "heartbeats"], var_name="resource", value_name="value"
    ).dropna(subset=["value"])


def worker_failures(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, worker_id: str, limit: int = 50
) -> pd.DataFrame:
    where, params = where_clause(spec, now, alias="r")
    return cur.execute(
        f"""SELECT r.ts AS time, r.status, {series_label()} AS test,
                   r.message
            FROM results AS r JOIN series AS s USING (series_id)
            {where} AND r.worker_id = ? AND r.status IN ('failed', 'error')
            ORDER BY r.ts DESC LIMIT ?""",  # noqa: S608
        [*params, worker_id, limit],
    ).df()


def worker_throughput(
    cur: duckdb.DuckDBPyConnection, now: datetime, hours: int = 24
) -> pd.DataFrame:
    """Results per hour of each worker over the last ``hours``."""
    since = now - timedelta(hours=hours)
    return cur.execute(
        """SELECT worker_id, count(*) / ? AS results_per_hour FROM results
           WHERE ts >= ? AND worker_id IS NOT NULL GROUP BY ALL""",
        [float(hours), since],
    ).df()
