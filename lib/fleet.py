"""Worker liveness from heartbeats, by the Locust / ZeroMQ convention.

A worker is stale after 3 missed heartbeats and dead after 10 intervals without one; a live worker
is active when its last heartbeat names a task and idle otherwise. A worker that never sent a
heartbeat (one known only from result files, such as a JUnit report's hostname) is "unknown":
nothing says whether it is alive.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

STALE_AFTER_INTERVALS = 3
DEAD_AFTER_INTERVALS = 10
STATES = ("active", "idle", "stale", "dead", "unknown")


def classify_workers(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Add ``seconds_since_heartbeat`` and ``state`` to rows of workers and their last heartbeat."""
    frame = frame.copy()
    age = (pd.Timestamp(now) - pd.to_datetime(frame["last_heartbeat"])).dt.total_seconds()
    frame["seconds_since_heartbeat"] = age
    interval = frame["heartbeat_interval_s"].astype(float)
    busy = frame["current_task"].notna()
    frame["state"] = np.select(
        [
            age.isna(),
            age > DEAD_AFTER_INTERVALS * interval,
            age > STALE_AFTER_INTERVALS * interval,
            busy,
        ],
        ["unknown", "dead", "stale", "active"],
        default="idle",
    )
    return frame
