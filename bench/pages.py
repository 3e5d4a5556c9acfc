"""How long each page's queries take on a big demo database, without Streamlit's cache.

    .venv/bin/python bench/pages.py [--results 10000000] [--range 7d] [--repeat 3]

The database is generated once into var/bench/ and reused. For every page, the script runs the
queries the page runs with its default choices: "first" is the first time in this process (DuckDB
has read nothing yet), "median" the median of ``--repeat`` further runs (DuckDB's buffers warm,
no answer cached). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import analysis, demo, performance, queries, stats  # noqa: E402
from lib.dimensions import Dimensions  # noqa: E402
from lib.spec import QuerySpec  # noqa: E402
from lib.store import open_store  # noqa: E402

BENCH_DIR = ROOT / "var" / "bench"


def bench_db(results: int) -> Path:
    """A demo database of ``results`` results, generated on first use and kept."""
    path = BENCH_DIR / f"demo-{results}.duckdb"
    if not path.exists():
        print(f"generating {results:,} results into {path} (once)...", flush=True)
        started = time.perf_counter()
        demo.generate(path, results=results)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def page_queries(cur, spec: QuerySpec, now: datetime) -> dict[str, Callable[[], object]]:
    throughput, latency = "throughput_items_per_second", "latency_p50_ms"

    def sidebar() -> None:
        queries.filter_options(cur)
        queries.summary(cur, now)

    def overview() -> None:
        sidebar()
        queries.status_counts(cur, spec, now)
        queries.status_over_time(cur, spec, now)
        queries.metric_index_over_time(cur, spec, now, throughput, "hardware")
        queries.latest_failures(cur, spec, now, 50)
        queries.workers(cur, now)

    def trends() -> None:
        sidebar()
        queries.metrics_present(cur)
        Dimensions.of(cur)
        frame = performance.metric_over_time(cur, spec, now, throughput, "hardware", relative=True)
        analysis.trend_summary(frame, "higher")

    def compare() -> None:
        sidebar()
        queries.metrics_present(cur)
        performance.dimension_stats(cur, spec, now, throughput, "hardware")
        performance.dimension_values(cur, spec, now, throughput, "hardware")
        pairs = performance.comparison_values(
            cur, spec, now, throughput, "hardware", "cuda", "rocm"
        )
        analysis.compare_benchmarks(pairs, "higher")

    def heatmap() -> None:
        sidebar()
        queries.metrics_present(cur)
        cells = performance.heatmap_cells(cur, spec, now, throughput, "model", "hardware", "median")
        analysis.heatmap_grid(cells, False, "higher")

    def correlation() -> None:
        sidebar()
        names = tuple(queries.metrics_present(cur)["name"][:8])
        sample = performance.metric_sample(cur, spec, now, names)
        stats.correlation_matrix(sample[list(names)])
        performance.metric_sample(cur, spec, now, (latency, throughput), "hardware", 5000)

    return {
        "Overview": overview,
        "Trends": trends,
        "Compare": compare,
        "Heatmap": heatmap,
        "Correlation": correlation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, default=10_000_000)
    parser.add_argument("--range", default="7d")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="use this database instead of a generated one")
    args = parser.parse_args()
    path = Path(args.db) if args.db else bench_db(args.results)
    store = open_store(path)
    now = datetime.now(UTC).replace(tzinfo=None)
    spec = QuerySpec.build(args.range)
    with store.cursor() as cur:
        total = cur.execute("SELECT count(*) FROM results").fetchall()[0][0]
        print(f"\n{total:,} results in {path}, range {args.range}\n")
        print("| page | first run (ms) | median of next runs (ms) |")
        print("|---|---:|---:|")
        for name, run in page_queries(cur, spec, now).items():
            started = time.perf_counter()
            run()
            first = (time.perf_counter() - started) * 1000
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                run()
                times.append((time.perf_counter() - started) * 1000)
            print(f"| {name} | {first:,.0f} | {statistics.median(times):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
