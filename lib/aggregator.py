"""The cached query layer the pages call: ``lib.queries`` behind ``st.cache_data``.

Cache keys hold every argument plus two freshness tokens: the store's ``cache_token`` (it changes
on every committed write in this process, so new results show at once) and the number of the
current refresh interval (so an answer lives for one refresh interval, 60 s when refresh is off,
and relative ranges like "last 24 h" move on). Each answer is computed as of the moment it is
computed. Entries are dropped after an hour or beyond ``max_entries``, whichever comes first.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from lib import queries
from lib.spec import QuerySpec
from lib.store import Store

DEFAULT_PERIOD_S = 60
"""How long an answer stays current when auto-refresh is off."""


def utc_now() -> datetime:
    """Naive UTC, the store's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


_OVERVIEW = frozenset(
    {
        "status_counts",
        "status_over_time",
        "metric_index_over_time",
        "latest_failures",
        "workers",
        "summary",
        "filter_options",
        "metric_catalog",
        "demo_truth",
    }
)


def _resolve(name: str) -> Callable[..., Any]:
    """``lib.x.y:function`` -> the function; only this project's modules."""
    module, _, qualname = name.partition(":")
    parts = qualname.split(".")
    if not module.startswith("lib.") or not all(part.isidentifier() for part in parts):
        raise KeyError(name)
    target: Any = importlib.import_module(module)
    for part in parts:
        target = getattr(target, part)
    return target


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _cached(
    token: str,
    tick: int,
    period: int,
    name: str,
    args: tuple,
    options: tuple[tuple[str, Any], ...],
    _store: Store,
) -> Any:
    function = _resolve(name)
    kwargs = dict(options)
    if "now" in inspect.signature(function).parameters:
        kwargs["now"] = utc_now()
    with _store.cursor() as cur:
        return function(cur, *args, **kwargs)


class Aggregator:
    """Cached answers for one store at one refresh interval."""

    def __init__(self, store: Store, refresh_s: int) -> None:
        self.store = store
        self.period = max(int(refresh_s), 5) if refresh_s else DEFAULT_PERIOD_S

    def _tick(self) -> int:
        return int(time.time() // self.period)

    def run(self, function: Callable[..., Any], *args: Any, **options: Any) -> Any:
        """``function(cursor, *args, now=..., **options)``, cached; any query function of
        ``lib`` whose arguments are hashable (specs, strings, numbers, tuples)."""
        return _cached(
            self.store.cache_token,
            self._tick(),
            self.period,
            f"{function.__module__}:{function.__qualname__}",
            args,
            tuple(sorted(options.items())),
            self.store,
        )

    def _run(self, name: str, *args: Any, **options: Any) -> Any:
        if name not in _OVERVIEW:
            raise KeyError(name)
        return self.run(getattr(queries, name), *args, **options)

    def status_counts(self, spec: QuerySpec) -> dict:
        return self._run("status_counts", spec)

    def status_over_time(self, spec: QuerySpec) -> pd.DataFrame:
        return self._run("status_over_time", spec)

    def metric_index_over_time(self, spec: QuerySpec, metric: str, by: str) -> pd.DataFrame:
        return self._run("metric_index_over_time", spec, metric=metric, by=by)

    def latest_failures(self, spec: QuerySpec, limit: int) -> pd.DataFrame:
        return self._run("latest_failures", spec, limit=limit)

    def workers(self, hardware: tuple[str, ...] = ()) -> pd.DataFrame:
        return self._run("workers", hardware=hardware)

    def summary(self) -> dict:
        return self._run("summary")

    def filter_options(self) -> dict[str, list]:
        return self._run("filter_options")

    def metric_catalog(self) -> pd.DataFrame:
        return self._run("metric_catalog")

    def demo_truth(self) -> pd.DataFrame | None:
        return self._run("demo_truth")


def clear() -> None:
    """Forget every cached answer (tests; after replacing a database file)."""
    _cached.clear()
