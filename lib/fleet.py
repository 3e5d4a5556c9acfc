"""Worker liveness from heartbeats, by the Locust / ZeroMQ convention.

A worker is stale after 3 missed heartbeats and dead after 10 intervals without one; a live worker
is active when its last heartbeat names a task and idle otherwise. A worker that never sent a
heartbeat (one known only from result files, such as a JUnit report's hostname) is "unknown":
nothing says whether it is alive.

The rule is one SQL expression (``state_sql``), so the workers table and the counts of
``dtd status`` come from the same place, and neither needs pandas (``dtd status`` starts fast).
"""

from __future__ import annotations

STALE_AFTER_INTERVALS = 3
DEAD_AFTER_INTERVALS = 10
STATES = ("active", "idle", "stale", "dead", "unknown")


def age_sql(last_heartbeat: str) -> str:
    """SQL: seconds from ``last_heartbeat`` to the first parameter (``now``); NULL without one."""
    return f"(date_diff('microsecond', {last_heartbeat}, CAST(? AS TIMESTAMP)) / 1e6)"


def state_sql(age: str, interval: str, task: str) -> str:
    """SQL: a worker's state from its heartbeat age (seconds), interval and current task."""
    return (
        f"CASE WHEN {age} IS NULL THEN 'unknown' "
        f"WHEN {age} > {DEAD_AFTER_INTERVALS} * CAST({interval} AS DOUBLE) THEN 'dead' "
        f"WHEN {age} > {STALE_AFTER_INTERVALS} * CAST({interval} AS DOUBLE) THEN 'stale' "
        f"WHEN {task} IS NOT NULL THEN 'active' ELSE 'idle' END"
    )
