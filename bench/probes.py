"""The measurements of bench/suite.py that run in a process of their own.

    .venv/bin/python bench/probes.py pages --db FILE --names 'Overview|Trends' --repeat 5 --uncached 5
    .venv/bin/python bench/probes.py api --db FILE --names /api/status --repeat 5 --uncached 5
    .venv/bin/python bench/probes.py naive --db FILE
    .venv/bin/python bench/probes.py analyse --db FILE --out COPY
    .venv/bin/python bench/probes.py ingest --junit 100000 --tabular 1000000 --rest 100000 ...

Each prints one line ``RESULT {json}`` at the end (the suite reads it) and the process's peak
resident memory (VmHWM) with it. A fresh process is the only way to measure "cold": DuckDB has
read nothing of the file yet (the operating system's page cache may hold it; dropping that needs
root). The first run of a name in the process is the cold one; later runs are warm.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")
import streamlit.logger  # noqa: E402

# st.cache_data outside a Streamlit runtime warns when lib.aggregator is imported; it works.
streamlit.logger.set_log_level("error")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"
ENDPOINTS = (
    "/api/status",
    "/api/tests",
    "/api/workers",
    "/api/regressions",
    "/api/dimensions",
    "/api/dimensions?dimension=hardware",
    "/api/performance",
)
"""Every read endpoint of lib/api.py that answers from the store (openapi.json is a constant)."""
REST_BATCH = 10_000


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set) of a process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def bench_module(name: str) -> Any:
    """A script of bench/ as a module (by path: the app's pages/ folder shadows the name)."""
    key = f"bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def _emit(payload: dict) -> None:
    payload["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(payload), flush=True)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# ----------------------------------------------------------------------------- pages


def _warm_python(bench_pages: Any, names: list[str]) -> None:
    """Run the pages once on a small database of their own first, so "cold" is a cold database
    in a process that has imported and run its code, as a server has: Python's first-use costs
    (imports, Altair's schema, pandas' first conversions) are not the database's."""
    from lib import demo
    from lib.config import Settings
    from lib.spec import QuerySpec
    from lib.store import open_store

    with tempfile.TemporaryDirectory(prefix="dtd-bench-warm-") as tmp:
        small = Path(tmp) / "warm.duckdb"
        demo.generate(small, results=3000, days=3)
        store = open_store(small)
        runner = bench_pages.Runner(
            store, cached=False, settings=Settings(db_path=small, db_configured=True)
        )
        for name in names:
            bench_pages.run_page(runner, name, QuerySpec.build())
        store.close()


def pages(db: Path, names: list[str], repeat: int, uncached: int) -> dict:
    """For each page: the first run in this process without the page cache (cold), ``repeat``
    ``uncached`` runs without the cache (DuckDB warm), one run through the page cache to
    fill it, then ``repeat`` runs through it (warm)."""
    from lib.config import Settings
    from lib.spec import QuerySpec
    from lib.store import open_store

    bench_pages = bench_module("pages")
    bench_pages.quiet_streamlit()
    _warm_python(bench_pages, names)
    store = open_store(db)
    settings = Settings(db_path=db, db_configured=True)
    spec = QuerySpec.build()
    direct = bench_pages.Runner(store, cached=False, settings=settings)
    cached = bench_pages.Runner(store, cached=True, settings=settings)
    out = {}
    for name in names:
        cold = bench_pages.run_page(direct, name, spec)
        runs = [bench_pages.run_page(direct, name, spec) for _ in range(uncached)]
        bench_pages.run_page(cached, name, spec)  # fills the cache
        warm = [bench_pages.run_page(cached, name, spec) for _ in range(repeat)]
        out[name] = {
            "cold": [[c.name, c.ms, c.kind] for c in cold],
            "uncached": [[[c.name, c.ms, c.kind] for c in run] for run in runs],
            "warm": [[[c.name, c.ms, c.kind] for c in run] for run in warm],
        }
    return {"pages": out}


# ----------------------------------------------------------------------------- API


def _api_client(db: Path):
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from lib.api import ApiState, create_api
    from lib.config import Settings

    settings = Settings(db_path=db, db_configured=True, api_token=TOKEN, api_cache_time=600)
    state = ApiState(lambda: settings)
    client = TestClient(Starlette(routes=[Mount("/api", app=create_api(state))]))
    client.get("/api/openapi.json").raise_for_status()  # the store open, the client started
    return client


def _get(client, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = _ms(started)
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code} {response.text[:300]}")
    return elapsed, len(response.content)


def api(db: Path, names: list[str], repeat: int, uncached: int) -> dict:
    """For each endpoint: the first call in this process (DuckDB and the API cache cold),
    ``uncached`` calls each with an empty API cache, and ``repeat`` calls
    answered from the API cache (warm)."""
    client = _api_client(db)
    out = {}
    for url in names:
        cold, size = _get(client, url)
        misses = []
        for _ in range(uncached):
            misses.append(_get(_api_client(db), url)[0])
        warm = [_get(client, url)[0] for _ in range(repeat)]
        out[url] = {"cold": cold, "uncached": misses, "warm": warm, "bytes": size}
    return {"api": out}


# ----------------------------------------------------------------------------- naive


def naive(db: Path) -> dict:
    """What the Overview's first view costs without aggregating in the database: load the tables
    into pandas, then compute its answers there (status counts for the range and the one before,
    pass rate and results by status over time, the throughput index by hardware, the latest
    failures, the workers' states, the sidebar's totals)."""
    import duckdb
    import numpy as np

    from lib.aggregator import utc_now
    from lib.queries import bucket_seconds

    con = duckdb.connect(str(db), read_only=True)
    started = time.perf_counter()
    results = con.execute("SELECT * FROM results").df()
    measurements = con.execute("SELECT * FROM measurements").df()
    series = con.execute("SELECT * FROM series").df()
    runs = con.execute("SELECT * FROM runs").df()
    workers = con.execute("SELECT * FROM workers").df()
    heartbeats = con.execute("SELECT * FROM heartbeats").df()
    loaded = time.perf_counter()

    now = utc_now()
    start = now - timedelta(days=7)
    current = results[results["ts"] >= start]
    before = results[(results["ts"] >= start - timedelta(days=7)) & (results["ts"] < start)]
    counts = {
        "current": current["status"].value_counts().to_dict(),
        "previous": before["status"].value_counts().to_dict(),
    }
    step = bucket_seconds(start, now)
    buckets = current["ts"].dt.floor(f"{step}s")
    by_status = current.groupby([buckets, "status"]).size().unstack(fill_value=0)
    executed = by_status.drop(columns=["skipped"], errors="ignore").sum(axis=1)
    pass_rate = by_status.get("passed", 0) / executed.where(executed > 0)

    picked = measurements[
        (measurements["metric"] == "throughput_items_per_second") & (measurements["ts"] >= start)
    ].merge(series[["series_id", "hardware"]], on="series_id")
    picked = picked[picked["value"] > 0]
    usual = picked.groupby("series_id")["value"].transform("median")
    logs = np.log(picked["value"] / usual)
    index_step = bucket_seconds(start, now, 100)  # as queries.metric_index_over_time
    index = np.exp(
        logs.groupby([picked["ts"].dt.floor(f"{index_step}s"), picked["hardware"]]).mean()
    )

    failed = current[current["status"].isin(["failed", "error"])].nlargest(50, "ts")
    failed = failed.merge(series, on="series_id", how="left").merge(
        runs[["run_id", "git_commit"]], on="run_id", how="left"
    )
    last_beat = heartbeats.groupby("worker_id")["ts"].max()
    age = (now - last_beat).dt.total_seconds()
    interval = workers.set_index("worker_id")["heartbeat_interval_s"].reindex(age.index)
    states = np.select([age > 10 * interval, age > 3 * interval], ["dead", "stale"], "active")
    totals = {
        "results": len(results),
        "measurements": len(measurements),
        "first": results["ts"].min(),
        "last": results["ts"].max(),
        "series": series["kind"].value_counts().to_dict(),
        "runs": len(runs),
    }
    finished = time.perf_counter()
    con.close()
    return {
        "load_s": loaded - started,
        "compute_s": finished - loaded,
        "total_s": finished - started,
        "rows": {"results": len(results), "measurements": len(measurements)},
        "check": {
            "results_in_range": int(len(current)),
            "buckets": int(len(pass_rate)),
            "index_points": int(len(index)),
            "failures_listed": int(len(failed)),
            "workers": int(len(states)),
            "total_results": int(totals["results"]),
            "status": {k: int(v) for k, v in counts["current"].items()},
        },
    }


# ----------------------------------------------------------------------------- analysis


def analyse(db: Path, out: Path, budget_s: float | None = None) -> dict:
    """Change-point detection over every (series, metric) of a fresh copy of ``db`` (or as many
    as ``budget_s`` seconds allow)."""
    from lib import regressions
    from lib.store import open_store

    bench_module("pages").copy_db(db, out)
    store = open_store(out)
    with store.cursor() as cur:
        pending = len(regressions.pending(cur))
    started = time.perf_counter()
    pairs = regressions.analyse(store, budget_s=budget_s)
    seconds = time.perf_counter() - started
    with store.cursor() as cur:
        found = dict(
            cur.execute("SELECT kind, count(*) FROM change_points GROUP BY ALL").fetchall()
        )
    store.close()
    return {
        "pairs": pairs,
        "pending": pending,
        "seconds": seconds,
        "change_points": found,
        "max_points": getattr(regressions, "MAX_POINTS", None),
    }


# ----------------------------------------------------------------------------- ingest


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("nan")


def ingest_files(path: Path, folder: Path, repeat: int) -> dict:
    """``ingest_paths`` of one file into a fresh store, ``repeat`` times."""
    timed_ingest = bench_module("ingest_tabular").timed_ingest
    rates, settled, rows = [], [], 0
    for attempt in range(repeat):
        rows, seconds, total = timed_ingest(path, folder / f"{path.name}-{attempt}.duckdb")
        rates.append(_rate(rows, seconds))
        settled.append(_rate(rows, total))
    return {"rows": rows, "rates": rates, "settled": settled, "bytes": path.stat().st_size}


def rest_bodies(total: int, batch: int = REST_BATCH) -> list[bytes]:
    """JSON batches of benchmark results in the documented columns, 3 metrics each."""
    models = ("bert-base-uncased", "t5-small", "TinyLlama-1.1B", "openai/whisper-tiny")
    hardware = ("cuda", "cpu", "rocm")
    bodies = []
    for first in range(0, total, batch):
        items = []
        for i in range(first, min(total, first + batch)):
            hours, seconds = divmod(i * 2, 3600)
            items.append(
                {
                    "name": f"bench_{i % 50}",
                    "suite": "rest",
                    "ts": f"2026-01-{1 + hours // 24:02d}T{hours % 24:02d}:"
                    f"{seconds // 60:02d}:{seconds % 60:02d}Z",
                    "status": "failed" if i % 97 == 0 else "passed",
                    "duration_s": round((i % 89) / 10, 2),
                    "model": models[i % 4],
                    "hardware": hardware[(i // 7) % 3],
                    "batch_size": (1, 8, 32)[(i // 11) % 3],
                    "precision": ("fp32", "fp16")[(i // 13) % 2],
                    "worker": f"worker-{i % 16}",
                    "run": f"run-{i // 10000}",
                    "git_commit": f"{i // 10000:012x}",
                    "metrics": {
                        "throughput_items_per_second": 100 + (i % 50),
                        "latency_p50_ms": 5 + (i % 7) / 10,
                        "memory_peak_mb": 1000 + i % 100,
                    },
                }
            )
        bodies.append(json.dumps(items).encode())
    return bodies


def ingest_rest(total: int, folder: Path, repeat: int) -> dict:
    """POST /api/results with JSON batches into a fresh store, ``repeat`` times."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from lib.api import ApiState, create_api
    from lib.config import Settings
    from lib.store import release

    bodies = rest_bodies(total)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    rates = []
    for attempt in range(repeat):
        db = folder / f"rest-{attempt}.duckdb"
        settings = Settings(db_path=db, db_configured=True, api_token=TOKEN)
        state = ApiState(lambda settings=settings: settings)
        client = TestClient(Starlette(routes=[Mount("/api", app=create_api(state))]))
        client.get("/api/openapi.json").raise_for_status()
        added = 0
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/api/results", content=body, headers=headers)
            if response.status_code not in (200, 201):
                raise SystemExit(f"POST /api/results: {response.status_code} {response.text[:300]}")
            added += response.json()["data"]["added"]
        seconds = time.perf_counter() - started
        release(db)
        if added != total:
            raise SystemExit(f"POST /api/results added {added:,} of {total:,} results")
        rates.append(_rate(total, seconds))
    return {"rows": total, "rates": rates, "bytes": sum(map(len, bodies)), "batch": REST_BATCH}


def ingest(junit: int, tabular_rows: int, rest: int, repeat: int) -> dict:
    ingest_junit, ingest_tabular = bench_module("ingest_junit"), bench_module("ingest_tabular")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dtd-bench-ingest-") as tmp:
        folder = Path(tmp)
        report = folder / "junit.xml"
        ingest_junit.write_report(report, junit)
        out["junit"] = ingest_files(report, folder, repeat)
        csv_path, parquet_path = ingest_tabular.generate(folder, tabular_rows)
        out["csv"] = ingest_files(csv_path, folder, repeat)
        out["parquet"] = ingest_files(parquet_path, folder, repeat)
        out["rest"] = ingest_rest(rest, folder, repeat)
    for entry in out.values():
        entry["median"] = statistics.median(entry["rates"])
        if entry.get("settled"):
            entry["settled_median"] = statistics.median(entry["settled"])
    return {"ingest": out}


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("pages", "api", "naive", "analyse", "ingest"))
    parser.add_argument("--db", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--names", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--uncached", type=int, default=0, help="runs without any cache")
    parser.add_argument("--budget", type=float, help="analyse: stop after this many seconds")
    parser.add_argument("--junit", type=int, default=100_000)
    parser.add_argument("--tabular", type=int, default=1_000_000)
    parser.add_argument("--rest", type=int, default=100_000)
    args = parser.parse_args()
    names = [n for n in args.names.split("|") if n]
    if args.kind == "pages":
        _emit(pages(args.db, names, args.repeat, args.uncached))
    elif args.kind == "api":
        _emit(api(args.db, names or list(ENDPOINTS), args.repeat, args.uncached))
    elif args.kind == "naive":
        _emit(naive(args.db))
    elif args.kind == "analyse":
        _emit(analyse(args.db, args.out, args.budget))
    else:
        _emit(ingest(args.junit, args.tabular, args.rest, args.repeat))


if __name__ == "__main__":
    main()
