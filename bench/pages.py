"""Each page's queries, as the page runs them with its default choices, and the bench databases.

    .venv/bin/python bench/pages.py [--results 10000000] [--range 7d] [--repeat 3]

``PAGES`` maps every page of the app (``lib/ui/sidebar.py`` ``PAGES``) to a function that makes
the same calls as the page file with its widgets at their defaults: every ``agg.run(...)`` and
``agg.<method>(...)``, in page order, plus the sidebar's queries, plus the Python analysis the page
does on the answers (marked "analysis"). The calls go through a ``Runner``, which either calls
the lib function directly on a fresh cursor (no Streamlit cache, what a first page load costs) or
through ``lib.aggregator.Aggregator.run`` (the page cache), timing each call. So when a query's
internals change (rollups), this measures the new code; when a page changes what it calls, this
file has to follow it.

A page's first load computes each distinct query once (the sidebar's ``summary`` is a cache hit
when the Overview asks again), so the direct runner answers a repeated call from its own memo.

Run alone, this prints a quick table (first run in this process, then the median of the next runs
without the page cache); ``bench/suite.py`` is the full benchmark suite.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib import analysis, demo, health, performance, queries, regressions, reports, stats  # noqa: E402
from lib.aggregator import Aggregator, utc_now  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.dimensions import Dimensions  # noqa: E402
from lib.schema import SCHEMA_VERSION  # noqa: E402
from lib.spec import DEFAULT_RANGE, QuerySpec  # noqa: E402
from lib.store import Store, inspect_file, open_store  # noqa: E402

BENCH_DIR = ROOT / "var" / "bench"
MAX_AGE_HOURS = 24.0
"""A cached demo ends at the moment it was generated; pages ask about the last 7 days before
*now*, so a demo older than this is regenerated (after a week the default range would be empty)."""


# ----------------------------------------------------------------------------- databases


def bench_db(
    results: int,
    max_age_hours: float = MAX_AGE_HOURS,
    days: float = 30,
    folder: Path = BENCH_DIR,
) -> Path:
    """A demo database of ``results`` results over ``days`` days, generated on first use and kept
    in ``folder`` (var/bench/), keyed by size and schema version (a schema change makes a new
    file and removes the other versions' files of that size). Regenerated when older than
    ``max_age_hours`` (see ``MAX_AGE_HOURS``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"demo-{results}-schema{SCHEMA_VERSION}.duckdb"
    for old in folder.glob(f"demo-{results}-schema*.duckdb*"):
        if not old.name.startswith(f"demo-{results}-schema{SCHEMA_VERSION}"):
            old.unlink()  # an earlier schema's file (or its analysed copy): never read again
    if path.exists() and _age_hours(path) <= max_age_hours:
        return path
    why = "once" if not path.exists() else f"the cached one is over {max_age_hours:g} h old"
    print(f"generating {results:,} results into {path} ({why})...", flush=True)
    started = time.perf_counter()
    demo.generate(path, results=results, days=days)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def _age_hours(path: Path) -> float:
    until = inspect_file(path).meta.get("demo_until")
    if until is None:
        return float("inf")
    return (utc_now() - datetime.fromisoformat(until)).total_seconds() / 3600


def copy_db(source: Path, target: Path) -> Path:
    """A copy of a closed database file (and its WAL, if any)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


# ----------------------------------------------------------------------------- running


@dataclass
class Call:
    name: str
    ms: float
    kind: str  # "query" or "analysis"


@dataclass
class Runner:
    """Calls lib query functions the way a page does, timing each call.

    ``cached=False``: ``function(cursor, *args, now=..., **kwargs)`` on a fresh cursor, as
    ``Aggregator``'s cached function does on a miss; a call repeated within one page load is
    answered from a memo (the page's cache would hit). ``cached=True``: through
    ``Aggregator(store, refresh_s).run``.
    """

    store: Store
    cached: bool
    settings: Settings
    refresh_s: int = 0
    calls: list[Call] = field(default_factory=list)
    _memo: dict = field(default_factory=dict)

    def start_page(self) -> None:
        self.calls, self._memo, self.refresh_s = [], {}, self.settings.auto_refresh

    def __call__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.query(function, *args, **kwargs)

    def query(
        self,
        function: Callable[..., Any],
        *args: Any,
        label: str | None = None,
        refresh_s: int | None = None,
        **kwargs: Any,
    ) -> Any:
        name = label or f"{function.__module__.removeprefix('lib.')}.{function.__qualname__}"
        refresh = self.refresh_s if refresh_s is None else refresh_s
        key = (function, args, tuple(sorted(kwargs.items())), refresh)
        if not self.cached and key in self._memo:
            return self._memo[key]  # the page's cache would answer: nothing to time
        started = time.perf_counter()
        if self.cached:
            result = Aggregator(self.store, refresh).run(function, *args, **kwargs)
        else:
            options = dict(kwargs)
            if "now" in inspect.signature(function).parameters:
                options["now"] = utc_now()
            with self.store.cursor() as cur:
                result = function(cur, *args, **options)
            self._memo[key] = result
        self.calls.append(Call(name, (time.perf_counter() - started) * 1000, "query"))
        return result

    def analysis(
        self, name: str, function: Callable[..., Any], *args: Any, kind: str = "analysis"
    ) -> Any:
        """A step the page runs on every load outside the page cache: Python work on the
        answers ("analysis"), or a direct read of the store (``kind="query"``)."""
        started = time.perf_counter()
        result = function(*args)
        self.calls.append(Call(name, (time.perf_counter() - started) * 1000, kind))
        return result


def default_metric(catalog) -> dict:
    """``lib.ui.controls.metric`` with no choice made: the first preferred metric with values."""
    names = list(catalog["name"])
    preferred = [m for m in performance.PREFERRED_METRICS if m in names]
    name = preferred[0] if preferred else names[0]
    row = catalog[catalog["name"] == name].iloc[0]
    return {"name": name, "unit": row["unit"], "direction": row["direction"]}


# ----------------------------------------------------------------------------- the pages
# Each function mirrors its page file with default widget values; keep them in step.


def sidebar(q: Runner, spec: QuerySpec, default_refresh: int = 0) -> None:
    """lib/ui/sidebar.py ``render``: filter options at the configured interval, then the span
    at the chosen one (a page such as Workers defaults to refreshing)."""
    q(queries.filter_options, refresh_s=q.settings.auto_refresh)
    q.refresh_s = q.settings.auto_refresh or default_refresh
    q(queries.summary)


def overview(q: Runner, spec: QuerySpec) -> None:
    """streamlit_app.py"""
    sidebar(q, spec)
    q(queries.summary)
    q(queries.status_counts, spec)
    q(queries.workers, hardware=spec.filter_values("hardware"))
    q(queries.status_over_time, spec)
    q(queries.metric_index_over_time, spec, metric="throughput_items_per_second", by="hardware")
    q(queries.latest_failures, spec, limit=q.settings.max_items_per_page)


def trends(q: Runner, spec: QuerySpec) -> None:
    """pages/2_Trends.py: metric (preferred), group by hardware, relative values."""
    sidebar(q, spec)
    metric = default_metric(q(queries.metrics_present))
    q(Dimensions.of)
    frame = q(
        performance.metric_over_time, spec, metric=metric["name"], by="hardware", relative=True
    )
    if frame.empty:
        return
    q(regressions.changes_in, spec, metric=metric["name"])
    q.analysis("analysis.trend_summary", analysis.trend_summary, frame, metric["direction"])


def compare(q: Runner, spec: QuerySpec) -> None:
    """pages/3_Compare.py: metric (preferred) by hardware, A and B the first two values."""
    from lib.ui.context import cached_comparison

    sidebar(q, spec)
    metric = default_metric(q(queries.metrics_present))
    q(Dimensions.of)
    q(Dimensions.of)
    dim = "hardware"
    found = q(performance.dimension_stats, spec, metric=metric["name"], dim=dim)
    if found.empty:
        return
    values = q(performance.dimension_values, spec, metric=metric["name"], dim=dim)
    if len(values) < 2:
        return
    pairs = q(
        performance.comparison_values,
        spec,
        metric=metric["name"],
        dim=dim,
        a=values[0],
        b=values[1],
    )
    bootstrap = cached_comparison if q.cached else analysis.compare_benchmarks
    q.analysis("analysis.compare_benchmarks", bootstrap, pairs, metric["direction"])


def heatmap(q: Runner, spec: QuerySpec) -> None:
    """pages/4_Heatmap.py: model x hardware, median, not normalised."""
    sidebar(q, spec)
    metric = default_metric(q(queries.metrics_present))
    q(Dimensions.of)
    stat = next(iter(performance.STATISTICS))
    cells = q(
        performance.heatmap_cells,
        spec,
        metric=metric["name"],
        rows="model",
        cols="hardware",
        stat=stat,
    )
    q(Dimensions.of)
    if cells.empty:
        return
    q.analysis("analysis.heatmap_grid", analysis.heatmap_grid, cells, False, metric["direction"])


def correlation(q: Runner, spec: QuerySpec) -> None:
    """pages/5_Correlation.py: the first 8 metrics, Spearman; scatter of the first two by
    hardware."""
    sidebar(q, spec)
    catalog = q(queries.metrics_present)
    chosen = list(catalog["name"])[:8]
    if len(chosen) < 2:
        return
    sample = q(
        performance.metric_sample, spec, metrics=tuple(chosen), label="performance.metric_sample"
    )
    pairs = q.analysis("stats.correlation_matrix", stats.correlation_matrix, sample[chosen])
    if pairs["n"].max() < 3:
        return
    x, y = chosen[0], chosen[1]
    q(Dimensions.of)
    points = q(
        performance.metric_sample,
        spec,
        metrics=(x, y),
        color="hardware",
        size=5000,
        label="performance.metric_sample (scatter)",
    )
    points = points.rename(columns={x: "x", y: "y"}).dropna(subset=["x", "y"])
    if len(points) >= 2:
        q.analysis("stats.fit_line", stats.fit_line, points["x"], points["y"], False)


def tests(q: Runner, spec: QuerySpec) -> None:
    """pages/6_Tests.py: the first page of the table, no test picked."""
    sidebar(q, spec)
    sick = q(health.flagged_workers, spec)
    found = q(health.test_health, spec, exclude_workers=sick)
    if found.empty:
        return
    q.analysis(
        "health.page_of",
        health.page_of,
        found,
        "",
        health.SORTABLE[0],
        False,
        1,
        q.settings.max_items_per_page,
    )


def workers(q: Runner, spec: QuerySpec) -> None:
    """pages/7_Workers.py: refreshes every 30 s by default; no worker picked."""
    sidebar(q, spec, default_refresh=30)
    fleet = q(queries.workers, hardware=spec.filter_values("hardware"))
    if fleet.empty:
        return
    q(health.worker_health, spec)
    q(health.worker_throughput)


def regressions_page(q: Runner, spec: QuerySpec) -> None:
    """pages/8_Regressions.py: severities minor and up, any status, stable series; no change
    picked."""
    sidebar(q, spec)
    q(regressions.progress)
    common = dict(
        severities=("minor", "moderate", "major", "critical"),
        statuses=(),
        include_unstable=False,
        significant_only=False,
    )
    for kind in ("regression", "improvement"):
        q(regressions.listing, spec, kinds=(kind,), label=f"regressions.listing ({kind})", **common)


def reports_page(q: Runner, spec: QuerySpec) -> None:
    """pages/10_Reports.py: the first report type (performance), preferred metric, hardware;
    the report is built (queries and chart specs), no PNG is rendered."""
    sidebar(q, spec)
    kind = reports.REPORT_TYPES[0]
    metric = None
    if kind in ("performance", "dimension"):
        metric = default_metric(q(queries.metrics_present))["name"]
        q(Dimensions.of)
    q(reports.build, kind, spec, metric=metric, dimension="hardware")


def data(q: Runner, spec: QuerySpec) -> None:
    """pages/9_Data.py (the upload area queries nothing until a file is dropped)."""
    sidebar(q, spec)
    q(queries.summary)
    q.analysis("store.meta (uncached)", q.store.meta, kind="query")
    q(queries.metric_catalog)
    q(queries.demo_truth)


def sidebar_only(q: Runner, spec: QuerySpec) -> None:
    """What every page runs before its own queries."""
    sidebar(q, spec)


PAGES: dict[str, Callable[[Runner, QuerySpec], None]] = {
    "Sidebar (every page)": sidebar_only,
    "Overview": overview,
    "Trends": trends,
    "Compare": compare,
    "Heatmap": heatmap,
    "Correlation": correlation,
    "Tests": tests,
    "Workers": workers,
    "Regressions": regressions_page,
    "Reports": reports_page,
    "Data": data,
}
"""Page name (as in lib/ui/sidebar.py PAGES) -> its query set."""


def quiet_streamlit() -> None:
    """``st.cache_data`` outside a Streamlit runtime warns on every call; the cache still works."""
    os.environ.setdefault("STREAMLIT_GLOBAL_SHOW_WARNING_ON_DIRECT_EXECUTION", "false")
    for name in ("streamlit", "streamlit.runtime", "streamlit.runtime.caching"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import streamlit.logger

    streamlit.logger.set_log_level("error")


def run_page(q: Runner, name: str, spec: QuerySpec) -> list[Call]:
    q.start_page()
    PAGES[name](q, spec)
    return list(q.calls)


def total_ms(calls: list[Call], kind: str = "query") -> float:
    return sum(call.ms for call in calls if call.kind == kind)


# ----------------------------------------------------------------------------- alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, default=10_000_000)
    parser.add_argument("--range", default=DEFAULT_RANGE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="use this database instead of a generated one")
    args = parser.parse_args()
    quiet_streamlit()
    path = Path(args.db) if args.db else bench_db(args.results)
    store = open_store(path)
    settings = Settings(db_path=path, db_configured=True)
    spec = QuerySpec.build(args.range)
    q = Runner(store, cached=False, settings=settings)
    with store.cursor() as cur:
        total = cur.execute("SELECT count(*) FROM results").fetchall()[0][0]
    print(f"\n{total:,} results in {path}, range {args.range}, {datetime.now(UTC):%Y-%m-%d}\n")
    print("| page | first run (ms) | median of next runs (ms) | slowest query (first run) |")
    print("|---|---:|---:|---|")
    for name in PAGES:
        first = run_page(q, name, spec)
        times = [total_ms(run_page(q, name, spec)) for _ in range(args.repeat)]
        slow = max((c for c in first if c.kind == "query"), key=lambda c: c.ms)
        print(
            f"| {name} | {total_ms(first):,.0f} | {statistics.median(times):,.0f} | "
            f"{slow.name} {slow.ms:,.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
