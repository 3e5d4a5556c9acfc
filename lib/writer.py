"""Appending a batch of records to the store: one transaction, duplicates skipped by id.

Every source (demo data now; files and the REST API later) ends in ``append``. Each table's key
columns decide what "already there" means; rows whose key is present are skipped, so writing the
same batch twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import duckdb

from lib.store import Store

_KEYS: dict[str, tuple[str, ...]] = {
    "metrics": ("name",),
    "workers": ("worker_id",),
    "runs": ("run_id",),
    "series": ("series_id",),
    "results": ("result_id",),
    "measurements": ("result_id", "metric"),
    "heartbeats": ("worker_id", "ts"),
}
"""Tables in the order they are written (referenced rows first) with their identity columns."""

_TIME_ORDERED = {"results", "measurements", "heartbeats"}


@dataclass
class Batch:
    """Frames (pandas or Arrow) per table; columns are matched by name, missing ones are NULL."""

    metrics: Any = None
    workers: Any = None
    runs: Any = None
    series: Any = None
    results: Any = None
    measurements: Any = None
    heartbeats: Any = None


def append_in(cur: duckdb.DuckDBPyConnection, batch: Batch) -> dict[str, int]:
    """Insert the batch inside the caller's transaction; return rows added per table."""
    added: dict[str, int] = {}
    for field in fields(Batch):
        table = field.name
        frame = getattr(batch, table)
        if frame is None or len(frame) == 0:
            continue
        keys = _KEYS[table]
        view = f"_incoming_{table}"
        # Time order on disk keeps DuckDB's zone maps useful for time-range filters.
        order = " ORDER BY ts" if table in _TIME_ORDERED else ""
        cur.register(view, frame)
        # Table and key names come from _KEYS, never from input. On failure the caller's
        # transaction is rolled back and its cursor closed, which drops the registration too.
        # DuckDB answers an INSERT with the number of rows it inserted.
        added[table] = cur.execute(
            f"INSERT INTO {table} BY NAME "  # noqa: S608
            f"SELECT DISTINCT ON ({', '.join(keys)}) * FROM {view} AS incoming "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS existing WHERE "
            + " AND ".join(f"existing.{k} = incoming.{k}" for k in keys)
            + ")"
            + order
        ).fetchall()[0][0]
        cur.unregister(view)
    return added


def append(store: Store, batch: Batch) -> dict[str, int]:
    """Insert the batch in a transaction of its own: all of it or none of it."""
    with store.transaction() as cur:
        return append_in(cur, batch)
