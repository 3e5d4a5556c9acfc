"""Throughput of table-shaped ingest: CSV and Parquet, 1,000,000 rows each, through ingest_paths.

    .venv/bin/python bench/ingest_tabular.py [--rows N] [--repeat 3]

Writes both files (ISO timestamps, 50 benchmarks x 4 models x 3 platforms x 3 batch sizes x 2
precisions, 16 workers, 100 runs, 3 metrics per row) into a temporary folder, ingests each into a
fresh store ``--repeat`` times and prints the median rows per second. The goal is 500,000 rows/s
or more on the 2-core development machine.

A file this big commits its rows first (every answer counts them from then on) and its hourly
rollups right after (``lib.rollups``: ``Store.settle``, in the background in a server); both
rates are printed.

It also times the table stage alone (lib.ingest.tabular: read, check, identify into a temporary
table of an in-memory DuckDB; the sink only counts the rows), to show how the time divides
between parsing and writing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.ingest import IngestOptions, Source, ingest_paths, tabular  # noqa: E402
from lib.store import open_store  # noqa: E402


class CountingSink:
    """Takes the table stage's rows (in its own in-memory DuckDB) and only counts them."""

    def __init__(self, fmt: str) -> None:
        self.fmt, self.rows = fmt, 0
        self.cur = duckdb.connect()

    def knows(self, metric: str) -> bool:
        return metric in ("throughput_items_per_second", "latency_p50_ms", "memory_peak_mb")

    def define(self, metrics) -> None:
        pass

    def add_relation(self, relation: str, metrics: dict[str, str], distinct: bool = False) -> None:
        self.rows += self.cur.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]  # noqa: S608

    def close(self) -> None:
        self.cur.close()


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    """A CSV and a Parquet file of ``rows`` results in our own columns."""
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE results AS SELECT
            strftime(TIMESTAMP '2025-01-01' + to_seconds(i * 2), '%Y-%m-%dT%H:%M:%SZ') AS ts,
            'bench_' || (i % 50) AS name,
            CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'passed' END AS status,
            'suite_' || (i % 5) AS suite,
            round(random() * 10, 4) AS duration_s,
            ['bert-base-uncased', 't5-small', 'TinyLlama-1.1B', 'openai/whisper-tiny'][1 + i % 4]
                AS model,
            ['cuda', 'cpu', 'rocm'][1 + (i // 7) % 3] AS hardware,
            ['NVIDIA H100', 'Intel Xeon', 'AMD MI300X'][1 + (i // 7) % 3] AS device,
            [1, 8, 32][1 + (i // 11) % 3] AS batch_size,
            ['fp32', 'fp16'][1 + (i // 13) % 2] AS precision,
            'worker-' || (i % 16) AS worker,
            'run-' || (i // 10000) AS run,
            md5(CAST(i // 10000 AS VARCHAR))[:12] AS git_commit,
            round(100 + random() * 50, 3) AS "metric.throughput_items_per_second",
            round(5 + random() * 2, 3) AS "metric.latency_p50_ms",
            round(1000 + random() * 100, 1) AS "metric.memory_peak_mb"
        FROM range({int(rows)}) AS r(i)"""  # noqa: S608
    )
    csv_path, parquet_path = folder / "results.csv", folder / "results.parquet"
    con.execute(f"COPY results TO '{csv_path}' (HEADER)")
    con.execute(f"COPY results TO '{parquet_path}' (FORMAT parquet)")
    con.close()
    return csv_path, parquet_path


def timed_ingest(path: Path, db: Path) -> tuple[int, float, float]:
    """Ingest ``path`` into a fresh store at ``db``: (results, seconds until committed, seconds
    until the hourly rollups are settled too). A server settles in the background; here the
    settle runs right after, timed apart."""
    store = open_store(db)
    store.settle_in_background = False
    started = time.perf_counter()
    (report,) = ingest_paths(store, [path])
    seconds = time.perf_counter() - started
    store.settle()
    total = time.perf_counter() - started
    store.close()
    if report.status != "ok":
        raise SystemExit(f"ingest of {path.name} failed: {report.error}")
    return report.results, seconds, total


def measure(path: Path, folder: Path, repeat: int) -> tuple[list[float], list[float]]:
    """Rows per second until the rows are committed (and every answer counts them), and until
    their hourly rollups are settled too."""
    speeds, settled = [], []
    for attempt in range(repeat):
        rows, seconds, total = timed_ingest(path, folder / f"{path.suffix[1:]}-{attempt}.duckdb")
        speeds.append(rows / seconds)
        settled.append(rows / total)
        print(
            f"  {path.name}: {rows:,} rows committed in {seconds:.2f} s, "
            f"rollups settled {total - seconds:.2f} s later",
            flush=True,
        )
    return speeds, settled


def measure_stage(path: Path, repeat: int) -> list[float]:
    speeds = []
    for _ in range(repeat):
        sink = CountingSink(path.suffix[1:])
        started = time.perf_counter()
        tabular.parse(Source.from_path(path), sink, IngestOptions())
        speeds.append(sink.rows / (time.perf_counter() - started))
        sink.close()
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dtd-bench-") as tmp:
        folder = Path(tmp)
        csv_path, parquet_path = generate(folder, args.rows)
        print(
            f"{args.rows:,} rows: CSV {csv_path.stat().st_size / 1e6:.0f} MB, "
            f"Parquet {parquet_path.stat().st_size / 1e6:.0f} MB"
        )
        for path in (csv_path, parquet_path):
            speeds, settled = measure(path, folder, args.repeat)
            print(
                f"{path.suffix[1:]}: median {statistics.median(speeds):,.0f} rows/s committed "
                f"({statistics.median(settled):,.0f} rows/s with the rollups settled)"
            )
        for path in (csv_path, parquet_path):
            stage = statistics.median(measure_stage(path, args.repeat))
            print(f"{path.suffix[1:]}, table stage alone: median {stage:,.0f} rows/s")


if __name__ == "__main__":
    main()
