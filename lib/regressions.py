"""Regressions and improvements: change points turned into records people can act on.

Detection runs as data arrives, not when a page asks. ``pending`` finds each (series, metric)
whose newest value is newer than ``detection_state.analysed_until``; ``analyse`` runs
``lib.regression.detect_change_points`` on the latest ``MAX_POINTS`` values of each (a batch of
pairs read in one query) and stores what it finds, replacing the record of a change point it
finds again (the after-window has grown) and keeping those it no longer sees:

- the windows before and after the change (at most ``WINDOW`` points each, bounded by the
  neighbouring change points), their medians, the relative change of the median with a 95 %
  bootstrap interval, a Mann-Whitney p-value, and a Benjamini-Hochberg q-value over every stored
  change point (thousands of series are tested; DESIGN.md section 5);
- the direction-aware kind: a worse value of a higher-is-better metric is a regression, of a
  lower-is-better one an improvement, and so on; metrics without a direction are not analysed;
- severity by the size of the change, with the seed's cut-offs: under 5 % none, then minor,
  moderate (10 %), major (20 %), critical (30 %);
- ``unstable`` when the series' robust CV before the change exceeds 10 %: shown, never alarmed;
- the commit range: the last commit before the change and the first after it.

People review change points (open, acknowledged, expected, false positive, fixed); every review
is kept in ``change_reviews`` and the latest one counts, so the precision of alerts can be
measured over time. Pages and the API only read these tables.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sp

from lib import validation
from lib.dimensions import series_label
from lib.ids import stable_id
from lib.regression import detect_change_points
from lib.spec import QuerySpec
from lib.stats import benjamini_hochberg, ratio_of_medians
from lib.store import Store

log = logging.getLogger(__name__)

MAX_POINTS = 400
"""The detector sees the latest MAX_POINTS values of a series; changes found earlier stay."""
WINDOW = 50
MIN_AFTER = 3
UNSTABLE_CV = 0.10
SEVERITY_CUTS = ((0.30, "critical"), (0.20, "major"), (0.10, "moderate"), (0.05, "minor"))
BATCH = 50
"""Pairs analysed per transaction: writes stay short, pages stay responsive meanwhile."""


def severity(change: float) -> str:
    size = abs(change) if np.isfinite(change) else 0.0
    return next((label for cut, label in SEVERITY_CUTS if size >= cut), "none")


def kind_of(change: float, direction: str) -> str:
    if direction not in ("higher", "lower") or not np.isfinite(change) or change == 0:
        return "change"
    worse = change < 0 if direction == "higher" else change > 0
    return "regression" if worse else "improvement"


def robust_cv(values: np.ndarray) -> float:
    """1.4826 x MAD / |median|: the CV a Gaussian would have, unmoved by outliers."""
    if len(values) < 3:
        return float("nan")
    median = float(np.median(values))
    if median == 0:
        return float("inf")
    return 1.4826 * float(np.median(np.abs(values - median))) / abs(median)


def pending(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """(series, metric, direction) pairs with values newer than their last analysis."""
    return cur.execute(
        """SELECT m.series_id, m.metric, c.direction, max(m.last_ts) AS newest,
                  any_value(d.analysed_until) AS analysed_until
           FROM metric_hours AS m
           JOIN metrics AS c ON c.name = m.metric AND c.direction IN ('higher', 'lower')
           LEFT JOIN detection_state AS d ON d.series_id = m.series_id AND d.metric = m.metric
           GROUP BY m.series_id, m.metric, c.direction
           HAVING any_value(d.analysed_until) IS NULL
               OR max(m.last_ts) > any_value(d.analysed_until)
           ORDER BY m.metric, m.series_id"""
    ).df()


def _tails(cur: duckdb.DuckDBPyConnection, pairs: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The last MAX_POINTS values of each (series, metric) in ``pairs``, oldest first, with each
    value's commit: one query for the whole batch."""
    cur.register("_pairs", pairs[["series_id", "metric"]])
    try:
        # The hourly rollups say from which hour on each pair has its last MAX_POINTS values,
        # so only those hours of the raw table are read.
        since = cur.execute(
            """WITH running AS (
                   SELECT h.series_id, h.metric, h.hour,
                          sum(h.n) OVER (PARTITION BY h.series_id, h.metric ORDER BY h.hour DESC
                                         ROWS UNBOUNDED PRECEDING) AS c
                   FROM metric_hours AS h
                   SEMI JOIN _pairs AS p ON h.series_id = p.series_id AND h.metric = p.metric
               )
               SELECT min(since) FROM (
                   SELECT coalesce(max(hour) FILTER (c >= ?), min(hour)) AS since
                   FROM running GROUP BY series_id, metric)""",
            [MAX_POINTS],
        ).fetchall()[0][0]
        frame = cur.execute(
            """WITH ranked AS (
                   SELECT m.series_id, m.metric, m.ts, m.value, m.result_id,
                          row_number() OVER (PARTITION BY m.series_id, m.metric
                                             ORDER BY m.ts DESC) AS rn
                   FROM measurements AS m
                   SEMI JOIN _pairs AS p ON m.series_id = p.series_id AND m.metric = p.metric
                   WHERE m.ts >= coalesce(?::TIMESTAMP, '-infinity'::TIMESTAMP)
               )
               SELECT ranked.series_id, ranked.metric, ranked.ts, ranked.value,
                      runs.git_commit AS git_commit
               FROM ranked JOIN results AS r ON r.result_id = ranked.result_id
                   AND r.ts >= coalesce(?::TIMESTAMP, '-infinity'::TIMESTAMP)
               LEFT JOIN runs ON runs.run_id = r.run_id
               WHERE ranked.rn <= ?
               ORDER BY ranked.series_id, ranked.metric, ranked.ts""",
            [since, since, MAX_POINTS],
        ).df()
    finally:
        cur.unregister("_pairs")
    return {
        key: part.reset_index(drop=True)
        for key, part in frame.groupby(["series_id", "metric"], sort=False)
    }


def change_records(
    frame: pd.DataFrame, series_id: int, metric: str, direction: str, now: datetime
) -> list[dict]:
    """Records for every change point the detector finds in one series' tail."""
    values = frame["value"].to_numpy(dtype=float)
    if len(values) < 2 * MIN_AFTER:
        return []
    points = detect_change_points(values)
    bounds = [0, *points, len(values)]
    records = []
    for i, index in enumerate(points):
        before = values[max(bounds[i], index - WINDOW) : index]
        after = values[index : min(bounds[i + 2], index + WINDOW)]
        before, after = before[np.isfinite(before)], after[np.isfinite(after)]
        if len(before) < MIN_AFTER or len(after) < MIN_AFTER:
            continue
        interval = ratio_of_medians(before, after)
        change = interval.estimate - 1.0
        try:
            p_value = float(sp.mannwhitneyu(before, after, alternative="two-sided").pvalue)
        except ValueError:  # identical samples
            p_value = 1.0
        changed_at = frame["ts"].iloc[index].to_pydatetime()
        commits = frame["git_commit"]
        records.append(
            {
                "change_id": stable_id("change", series_id, metric, changed_at.isoformat()),
                "series_id": int(series_id),
                "metric": metric,
                "changed_at": changed_at,
                "before_start": frame["ts"].iloc[index - len(before)].to_pydatetime(),
                "before_end": frame["ts"].iloc[index - 1].to_pydatetime(),
                "after_start": changed_at,
                "after_end": frame["ts"].iloc[index + len(after) - 1].to_pydatetime(),
                "before_n": len(before),
                "after_n": len(after),
                "before_median": float(np.median(before)),
                "after_median": float(np.median(after)),
                "change": change,
                "ci_low": interval.low - 1.0,
                "ci_high": interval.high - 1.0,
                "p_value": p_value,
                "q_value": None,
                "kind": kind_of(change, direction),
                "severity": severity(change),
                "unstable": bool(robust_cv(before) > UNSTABLE_CV),
                "commit_before": commits.iloc[index - 1]
                if pd.notna(commits.iloc[index - 1])
                else None,
                "commit_after": commits.iloc[index] if pd.notna(commits.iloc[index]) else None,
                "detected_at": now,
            }
        )
    return records


def analyse(
    store: Store,
    now: datetime | None = None,
    budget_s: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Analyse every pending (series, metric); return how many were analysed.

    Works in batches of ``BATCH`` pairs, each written in its own transaction, and stops early
    when ``budget_s`` runs out or ``stop`` is set (the rest stays pending for the next call).
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    started = time.monotonic()
    store.settle()  # pending pairs come from the rollups: a bulk write's must be in them
    with store.cursor() as cur:
        todo = pending(cur)
    done = 0
    for offset in range(0, len(todo), BATCH):
        if (budget_s is not None and time.monotonic() - started > budget_s) or (
            stop is not None and stop.is_set()
        ):
            break
        batch = todo.iloc[offset : offset + BATCH]
        records, state = [], []
        with store.cursor() as cur:
            tails = _tails(cur, batch)
        for row in batch.itertuples(index=False):
            frame = tails.get((row.series_id, row.metric))
            if frame is not None:
                records += change_records(frame, int(row.series_id), row.metric, row.direction, now)
            state.append((int(row.series_id), row.metric, row.newest.to_pydatetime()))
        _write(store, records, state)
        done += len(batch)
    if done:
        _refresh_q_values(store)
    return done


def _write(store: Store, records: list[dict], state: list[tuple]) -> None:
    with store.transaction() as cur:
        if records:
            cur.register("_found", pd.DataFrame.from_records(records))
            cur.execute("INSERT OR REPLACE INTO change_points BY NAME SELECT * FROM _found")
            cur.unregister("_found")
        cur.register(
            "_state", pd.DataFrame(state, columns=["series_id", "metric", "analysed_until"])
        )
        cur.execute("INSERT OR REPLACE INTO detection_state BY NAME SELECT * FROM _state")
        cur.unregister("_state")


def _refresh_q_values(store: Store) -> None:
    """Benjamini-Hochberg over every stored change point's p-value."""
    with store.transaction() as cur:
        frame = cur.execute("SELECT change_id, p_value FROM change_points").df()
        if frame.empty:
            return
        frame["q_value"] = benjamini_hochberg(frame["p_value"].to_numpy(dtype=float))
        cur.register("_q", frame)
        cur.execute("""UPDATE change_points SET q_value = _q.q_value FROM _q
                       WHERE change_points.change_id = _q.change_id""")
        cur.unregister("_q")


def review(
    store: Store,
    change_id: int,
    status: str,
    note: str = "",
    reviewer: str = "",
    now: datetime | None = None,
) -> None:
    """Record a person's verdict on a change point (the latest one counts); ValueError (a
    ``validation.Invalid``) naming each bad field, nothing written."""
    verdict = validation.check(
        validation.VerdictIn,
        {"change_id": change_id, "status": status, "note": note, "reviewer": reviewer},
    )
    change_id, status, note, reviewer = (
        verdict.change_id,
        verdict.status,
        verdict.note,
        verdict.reviewer,
    )
    now = now or datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as cur:
        exists = cur.execute(
            "SELECT count(*) FROM change_points WHERE change_id = ?", [int(change_id)]
        ).fetchall()[0][0]
        if not exists:
            raise ValueError(f"no change point has the id {change_id}")
        cur.execute(
            "INSERT INTO change_reviews VALUES (?, ?, ?, ?, ?)",
            [int(change_id), status, note or None, now, reviewer or None],
        )


# ----------------------------------------------------------------------------- background

_runners: dict[str, threading.Thread] = {}
_runners_lock = threading.Lock()


def run_in_background(store: Store, interval_s: float = 2.0) -> threading.Thread:
    """One daemon thread per store that analyses whatever became pending since its last pass
    (it looks again whenever the store's data changed)."""
    key = f"{store.path}|{id(store)}"
    with _runners_lock:
        running = _runners.get(key)
        if running is not None and running.is_alive():
            return running

        def loop() -> None:
            seen = None
            while not store.closed:
                token = store.cache_token
                if token != seen:
                    try:
                        analyse(store)
                    except Exception:  # noqa: BLE001 - keep analysing later data
                        if store.closed:
                            return
                        log.exception("change-point analysis of %s failed", store.path)
                    # Its own writes change the token too: one more (empty) pass settles it.
                    seen = token
                time.sleep(interval_s)

        thread = threading.Thread(target=loop, name=f"dtd-detect:{key}", daemon=True)
        thread.start()
        _runners[key] = thread
        return thread


# ----------------------------------------------------------------------------- reading

_LATEST_REVIEW = """
    SELECT change_id, arg_max(status, reviewed_at) AS status, arg_max(note, reviewed_at) AS note,
           max(reviewed_at) AS reviewed_at
    FROM change_reviews GROUP BY change_id"""


def listing(
    cur: duckdb.DuckDBPyConnection,
    spec: QuerySpec,
    now: datetime,
    kinds: tuple[str, ...] = ("regression",),
    severities: tuple[str, ...] = ("minor", "moderate", "major", "critical"),
    statuses: tuple[str, ...] = (),
    include_unstable: bool = False,
    significant_only: bool = False,
) -> pd.DataFrame:
    """Change points in the window and filters, worst first, with their review status."""
    start, end = spec.window(now)
    clause, params = "", []
    if start is not None:
        clause += " AND c.changed_at >= ?"
        params.append(start)
    if end is not None:
        clause += " AND c.changed_at < ?"
        params.append(end)
    series_sql, series_params = spec.series_clause("c.series_id")
    kinds_sql = ", ".join("?" * len(kinds)) or "NULL"
    severities_sql = ", ".join("?" * len(severities)) or "NULL"
    status_sql = ""
    if statuses:
        status_sql = f" AND coalesce(rv.status, 'open') IN ({', '.join('?' * len(statuses))})"
    frame = cur.execute(
        f"""WITH reviews AS ({_LATEST_REVIEW})
            SELECT c.change_id, c.changed_at, c.kind, c.severity, c.change, c.ci_low, c.ci_high,
                   c.p_value, c.q_value, c.metric, {series_label()} AS test,
                   s.model, s.hardware, s.device, s.batch_size, s."precision" AS "precision",
                   left(c.commit_before, 12) AS commit_before,
                   left(c.commit_after, 12) AS commit_after,
                   coalesce(rv.status, 'open') AS status, c.unstable, c.before_median,
                   c.after_median, c.series_id
            FROM change_points AS c JOIN series AS s USING (series_id)
            LEFT JOIN reviews AS rv USING (change_id)
            WHERE c.kind IN ({kinds_sql}) AND c.severity IN ({severities_sql})
              {clause} {series_sql} {status_sql}
              {"" if include_unstable else "AND NOT c.unstable"}
              {"AND c.q_value < 0.05" if significant_only else ""}
            ORDER BY abs(c.change) DESC, c.changed_at DESC""",  # noqa: S608
        [*kinds, *severities, *params, *series_params, *statuses],
    ).df()
    return frame


def detail(cur: duckdb.DuckDBPyConnection, change_id: int) -> dict | None:
    """One change point with its series, metric and review history."""
    rows = cur.execute(
        f"""SELECT c.*, {series_label()} AS test, s.kind AS series_kind,
                  concat_ws(' · ', s.model, s.hardware, s.device, 'bs' || s.batch_size,
                            s."precision") AS configuration,
                  m.unit, m.direction
           FROM change_points AS c JOIN series AS s USING (series_id)
           LEFT JOIN metrics AS m ON m.name = c.metric
           WHERE c.change_id = ?""",  # noqa: S608
        [int(change_id)],
    ).df()
    if rows.empty:
        return None
    record = rows.iloc[0].to_dict()
    record["reviews"] = cur.execute(
        """SELECT reviewed_at, status, note, reviewer FROM change_reviews
           WHERE change_id = ? ORDER BY reviewed_at DESC""",
        [int(change_id)],
    ).df()
    record["status"] = record["reviews"]["status"].iloc[0] if len(record["reviews"]) else "open"
    return record


def series_points(
    cur: duckdb.DuckDBPyConnection,
    series_id: int,
    metric: str,
    changed_at: datetime,
    points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Up to ``points`` values of a series around a change (more before than after)."""
    return cur.execute(
        """SELECT * FROM (
               (SELECT ts, value FROM measurements WHERE series_id = ? AND metric = ? AND ts < ?
                ORDER BY ts DESC LIMIT ?)
               UNION ALL
               (SELECT ts, value FROM measurements WHERE series_id = ? AND metric = ? AND ts >= ?
                ORDER BY ts LIMIT ?)
           ) ORDER BY ts""",
        [
            int(series_id),
            metric,
            changed_at,
            points * 2 // 3,
            int(series_id),
            metric,
            changed_at,
            points // 3,
        ],
    ).df()


def series_changes(cur: duckdb.DuckDBPyConnection, series_id: int, metric: str) -> pd.DataFrame:
    return cur.execute(
        """SELECT change_id, changed_at, kind, severity, change FROM change_points
           WHERE series_id = ? AND metric = ? ORDER BY changed_at""",
        [int(series_id), metric],
    ).df()


def blast_radius(cur: duckdb.DuckDBPyConnection, commit_after: str, metric: str) -> pd.DataFrame:
    """Every change of a metric that starts at the same commit: median change per model and
    hardware (how far one commit range reached)."""
    return cur.execute(
        """SELECT coalesce(s.model, '(none)') AS "row", coalesce(s.hardware, '(none)') AS "col",
                  median(c.change) AS value, count(*) AS n
           FROM change_points AS c JOIN series AS s USING (series_id)
           WHERE left(c.commit_after, 12) = left(?, 12) AND c.metric = ?
           GROUP BY ALL ORDER BY "row", "col" """,
        [commit_after, metric],
    ).df()


def progress(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How much of the store has been analysed (for a page's "analysis in progress" note)."""
    done, pairs = cur.execute(
        """SELECT (SELECT count(*) FROM detection_state),
                  (SELECT count(*) FROM (SELECT DISTINCT m.series_id, m.metric
                   FROM metric_hours AS m JOIN metrics AS c ON c.name = m.metric
                   AND c.direction IN ('higher', 'lower')))"""
    ).fetchall()[0]
    return {"analysed": int(done), "pairs": int(pairs)}


def changes_in(
    cur: duckdb.DuckDBPyConnection, spec: QuerySpec, now: datetime, metric: str, limit: int = 100
) -> pd.DataFrame:
    """Stable change points of a metric in the window and filters (largest first), with the
    series' label, for marking on a trend."""
    from lib.performance import series_label_sql  # a reader of the same series labels

    frame = listing(cur, spec, now, kinds=("regression", "improvement", "change"))
    frame = frame[frame["metric"] == metric].head(limit)
    if frame.empty:
        return frame.assign(label=pd.Series(dtype=str))
    ids = tuple(int(x) for x in frame["series_id"].unique())
    labels = dict(
        cur.execute(
            f"SELECT series_id, {series_label_sql('s')} FROM series AS s "  # noqa: S608
            f"WHERE series_id IN ({', '.join('?' * len(ids))})",
            list(ids),
        ).fetchall()
    )
    return frame.assign(label=frame["series_id"].map(labels))
