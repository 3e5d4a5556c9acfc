"""Events for WebSocket clients: results ingested, regressions found, workers changed state.

Anything may publish from any thread; every connected client has its own bounded queue on the
server's event loop, so a slow client loses old events instead of slowing the server. A watcher
thread turns store changes into events: new change points, and worker state transitions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
QUEUE_SIZE = 256


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Hub:
    """Fan-out of events to subscribers (one asyncio queue each)."""

    def __init__(self) -> None:
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = {(lp, q) for lp, q in self._subscribers if q is not queue}

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: Any) -> None:
        """Send ``{"type": kind, "timestamp": ..., "data": data}`` to every client."""
        message = {"type": kind, "timestamp": now_iso(), "data": data}
        with self._lock:
            targets = list(self._subscribers)
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, message)
            except RuntimeError:  # the loop has closed: the client is gone
                self.unsubscribe(queue)


def _offer(queue: asyncio.Queue, message: dict) -> None:
    if queue.full():
        queue.get_nowait()  # drop the oldest
    queue.put_nowait(message)


hub = Hub()
"""The process's hub: the API publishes to it, /ws serves it."""


def watch_store(store: Any, interval_s: float = 2.0) -> threading.Thread:
    """Publish "regressions" when change points appear and "workers" when a worker's state
    changes (one daemon thread per store)."""
    from lib import queries

    def loop() -> None:
        seen_changes: int | None = None
        states: dict[str, str] | None = None
        while not store.closed:
            try:
                with store.cursor() as cur:
                    count = cur.execute("SELECT count(*) FROM change_points").fetchall()[0][0]
                    fleet = queries.workers(cur, datetime.now(UTC).replace(tzinfo=None))
                    if seen_changes is not None and count > seen_changes:
                        fresh = cur.execute(
                            """SELECT change_id, metric, kind, severity, change, changed_at
                               FROM change_points ORDER BY detected_at DESC, change_id LIMIT ?""",
                            [count - seen_changes],
                        ).df()
                        hub.publish(
                            "regressions",
                            {
                                "new": int(count - seen_changes),
                                "latest": [
                                    {
                                        **r,
                                        "change_id": str(r["change_id"]),
                                        "changed_at": r["changed_at"].isoformat(),
                                    }
                                    for r in fresh.to_dict("records")
                                ],
                            },
                        )
                    seen_changes = count
                now_states = dict(zip(fleet["worker_id"], fleet["state"], strict=True))
                if states is not None:
                    moved = [
                        {"worker_id": w, "from": states.get(w), "to": s}
                        for w, s in now_states.items()
                        if states.get(w) != s
                    ]
                    if moved:
                        hub.publish("workers", {"changed": moved})
                states = now_states
            except Exception:  # noqa: BLE001 - a closed store or a passing error: look again
                if store.closed:
                    return
                log.debug("store watch failed", exc_info=True)
            time.sleep(interval_s)

    thread = threading.Thread(target=loop, name=f"dtd-events:{store.path}", daemon=True)
    thread.start()
    return thread
