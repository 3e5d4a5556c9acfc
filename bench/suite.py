"""The benchmark suite of issue 9 ("Fast at ten million results"), in one command.

    .venv/bin/python bench/suite.py                       # 1M and 10M results, writes docs/benchmarks.md
    .venv/bin/python bench/suite.py --quick               # 100k results, fewer repeats (CI smoke test)
    .venv/bin/python bench/suite.py --sizes 1000000 --repeat 3 --out /tmp/bench.md

For every size it measures, with medians over repeated runs:

- every page's query set (bench/pages.py mirrors each page file with default widget values):
  cold (no page cache, first run on the database in a fresh process: DuckDB has read nothing of
  the file yet; the process has run every page once on a small database of its own first, as a
  server has, so Python's first-use costs are not counted),
  uncached (no page cache, DuckDB's buffers warm: what a page costs when its cached answers
  expire) and warm (through ``lib.aggregator.Aggregator.run``, the page cache);
- every read endpoint of the REST API through Starlette's TestClient: cold (first call in a fresh
  process), uncached (an empty API cache) and warm (answered from the API cache);
- change-point detection over every series of a fresh copy (``lib.regressions.analyse``);
- the naive approach: the tables loaded into pandas and the Overview's first view computed there;

and once: ingest throughput (JUnit XML, CSV, Parquet, REST JSON batches) and the peak memory of
the real server (``dtd serve`` on the largest database, every endpoint called and every page
loaded in headless Chromium). Results are printed and written as markdown with the machine's
description, the command, and the issue's targets.

Demo databases are generated once into ``--cache-dir`` (var/bench/), keyed by size and schema
version, and regenerated when older than ``--max-age-hours`` (they end at the moment they were
made, and pages look at the last 7 days). Measurements run in subprocesses (bench/probes.py), one
at a time; the machine may be shared, so only ratios measured in the same run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import probes  # noqa: E402

from lib.schema import SCHEMA_VERSION  # noqa: E402

bench_pages = probes.bench_module("pages")

DEMO_DAYS = 30
"""Days of results in each bench database."""
TARGET_SIZE = 10_000_000
"""The issue's targets are stated at ten million results."""
TARGETS = {
    "page_cold_ms": 300.0,
    "page_warm_ms": 30.0,
    "api_ms": 300.0,
    "naive_ratio": 30.0,
    "server_rss_mb": 800.0,
    "bulk_rows_per_s": 500_000.0,
    "junit_rows_per_s": 20_000.0,
}
INGEST_LABELS = {
    "junit": "JUnit XML",
    "csv": "CSV",
    "parquet": "Parquet",
    "rest": "REST JSON batches",
}
CHROMIUM = "/usr/bin/chromium"


class BenchError(RuntimeError):
    """A measurement that failed; the suite notes it and goes on."""


# ----------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(message, flush=True)


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def probe(kind: str, *args: str, timeout: float = 7200) -> dict:
    """Run bench/probes.py in a fresh process and return its RESULT."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_LOGGER_LEVEL": "error"}
    command = [sys.executable, str(BENCH / "probes.py"), kind, *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{kind} probe: no answer in {timeout:.0f} s") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise BenchError(f"{kind} probe failed (exit {done.returncode}): {tail}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def fmt_ms(value: float) -> str:
    if value != value:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_int(value: float) -> str:
    return "–" if value != value else f"{value:,.0f}"


def size_label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size % 1_000 == 0:
        return f"{size // 1_000}k"
    return f"{size:,}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    os_name = platform.system()
    release = Path("/etc/os-release")
    if release.exists():
        found = re.search(r'^PRETTY_NAME="?([^"\n]*)', release.read_text(), re.M)
        os_name = found.group(1) if found else os_name
    versions = {}
    for package in ("duckdb", "streamlit", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lib", "pages", "streamlit_app.py"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.split("\n")
        changed = sorted({line[3:] for line in dirty if line.strip()})
    except OSError:
        commit, changed = "unknown", []
    return {
        "CPU": f"{cpu} × {os.cpu_count()} logical CPUs",
        "RAM": memory,
        "OS": f"{os_name} (Linux {platform.release()})",
        "Python": platform.python_version(),
        "DuckDB": versions["duckdb"],
        "Streamlit": versions["streamlit"],
        "pandas": versions["pandas"],
        "Code": (commit or "unknown")
        + (f" with uncommitted changes in {', '.join(changed)}" if changed else ""),
        "Load average at start": " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (1, 5, 15 min; other jobs share the machine)",
    }


def command_line() -> str:
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    script = Path(__file__).resolve().relative_to(ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- measuring


def measure_pages(db: Path, repeat: int, quick: bool) -> dict:
    """Per page: the probe's runs, one fresh process per cold sample (quick: one process for
    every page, so "cold" is the first run of each page in that process)."""
    names = list(bench_pages.PAGES)
    samples: dict[str, list[dict]] = {name: [] for name in names}
    if quick:
        args = ["--db", str(db), "--names", "|".join(names), "--repeat", str(repeat)]
        found = probe("pages", *args, "--uncached", str(repeat))["pages"]
        for name in names:
            samples[name].append(found[name])
        return {"samples": samples, "fresh": False}
    for name in names:
        for attempt in range(repeat):
            args = ["--db", str(db), "--names", name, "--repeat", str(repeat)]
            result = probe("pages", *args, "--uncached", str(repeat if attempt == 0 else 1))
            entry = result["pages"][name]
            entry["peak_rss_mb"] = result["peak_rss_mb"]
            samples[name].append(entry)
        log(f"    {name}: {summarise_page(samples[name])['cold']:,.0f} ms cold")
    return {"samples": samples, "fresh": True}


def _totals(runs: list[list], kind: str = "query") -> list[float]:
    return [sum(ms for _, ms, k in run if k == kind) for run in runs]


def _per_call(runs: list[list]) -> dict[str, list[float]]:
    """Call name -> its time in each run (calls of one name within a run added up)."""
    out: dict[str, list[float]] = {}
    for run in runs:
        seen: dict[str, float] = {}
        for name, ms, kind in run:
            if kind == "query":
                seen[name] = seen.get(name, 0.0) + ms
        for name, ms in seen.items():
            out.setdefault(name, []).append(ms)
    return out


def summarise_page(samples: list[dict]) -> dict:
    cold = [s["cold"] for s in samples]
    uncached = [run for s in samples for run in s["uncached"]]
    warm = [run for s in samples for run in s["warm"]]
    calls = {}
    cold_calls, uncached_calls, warm_calls = _per_call(cold), _per_call(uncached), _per_call(warm)
    for name in cold_calls:
        calls[name] = {
            "cold": median(cold_calls[name]),
            "uncached": median(uncached_calls.get(name, [])),
            "warm": median(warm_calls.get(name, [])),
        }
    slowest = max(calls.items(), key=lambda item: item[1]["cold"], default=(None, {}))
    analysed = any(kind == "analysis" for run in cold for _, _, kind in run)
    return {
        "cold": median(_totals(cold)),
        "uncached": median(_totals(uncached)),
        "warm": median(_totals(warm)),
        "analysis_cold": median(_totals(cold, "analysis")) if analysed else float("nan"),
        "analysis_warm": median(_totals(warm, "analysis")) if analysed else float("nan"),
        "queries": len(cold[0]) if cold else 0,
        "calls": calls,
        "slowest": slowest[0],
        "slowest_ms": slowest[1].get("cold", float("nan")),
        "peak_rss_mb": median(s.get("peak_rss_mb", float("nan")) for s in samples),
        "samples": len(samples),
    }


def measure_api(db: Path, repeat: int, quick: bool) -> dict:
    samples: dict[str, list[dict]] = {url: [] for url in probes.ENDPOINTS}
    if quick:
        args = ["--db", str(db), "--names", "|".join(probes.ENDPOINTS), "--repeat", str(repeat)]
        found = probe("api", *args, "--uncached", str(repeat))["api"]
        for url in probes.ENDPOINTS:
            samples[url].append(found[url])
        return {"samples": samples, "fresh": False}
    for url in probes.ENDPOINTS:
        for attempt in range(repeat):
            args = ["--db", str(db), "--names", url, "--repeat", str(repeat)]
            result = probe("api", *args, "--uncached", str(repeat if attempt == 0 else 1))
            samples[url].append(result["api"][url])
        log(f"    GET {url}: {median(s['cold'] for s in samples[url]):,.0f} ms cold")
    return {"samples": samples, "fresh": True}


def summarise_api(samples: list[dict]) -> dict:
    return {
        "cold": median(s["cold"] for s in samples),
        "uncached": median(ms for s in samples for ms in s["uncached"]),
        "warm": median(ms for s in samples for ms in s["warm"]),
        "bytes": samples[0]["bytes"] if samples else 0,
        "samples": len(samples),
    }


def measure_naive(db: Path, repeat: int) -> dict:
    runs = [probe("naive", "--db", str(db)) for _ in range(repeat)]
    return {
        "load_s": median(r["load_s"] for r in runs),
        "compute_s": median(r["compute_s"] for r in runs),
        "total_s": median(r["total_s"] for r in runs),
        "peak_rss_mb": median(r["peak_rss_mb"] for r in runs),
        "rows": runs[0]["rows"],
        "check": runs[0]["check"],
        "samples": len(runs),
    }


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _vm(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return float("nan")


def page_urls() -> list[tuple[str, str]]:
    """(label, path) of every page, from lib/ui/sidebar.py PAGES (the file name without its
    number prefix is Streamlit's URL path; the entry point is /)."""
    from lib.ui.sidebar import PAGES

    urls = []
    for path, label, _icon in PAGES:
        stem = Path(path).stem
        urls.append(
            (label, "/" if path == "streamlit_app.py" else "/" + re.sub(r"^\d+_", "", stem))
        )
    return urls


IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.dataset.testScriptState === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]');
}"""
"""Streamlit has run the page's script and is idle (the same test as tests/browser_support.py)."""


def measure_server(db: Path, folder: Path, chromium: str, timeout_s: float) -> dict:
    """Peak memory of the real server on a copy of ``db``: every endpoint, every page."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    copy = bench_pages.copy_db(db, folder / "serve.duckdb")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    env.update(DTD_API_TOKEN=probes.TOKEN, PYTHONPATH=str(ROOT), STREAMLIT_LOGGER_LEVEL="error")
    # No file watcher: an edit to the sources during the run would make Streamlit show "Source
    # file changed" and never go idle (production servers do not edit their code either).
    # `dtd serve` does not read STREAMLIT_* variables; a config file in its working directory
    # is read (the project's own, with the themes, still wins where both set a key).
    cwd = folder / "cwd"
    (cwd / ".streamlit").mkdir(parents=True, exist_ok=True)
    (cwd / ".streamlit" / "config.toml").write_text('[server]\nfileWatcherType = "none"\n')
    server_log = folder / "serve.log"
    # `dtd serve` is lib.cli:main; started through -m so that it runs this tree's code.
    command = [sys.executable, "-m", "lib.cli", "serve", "--db", str(copy), "--port", str(port)]
    with server_log.open("w") as out:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    result: dict[str, Any] = {"pages": {}, "api": {}, "db": str(db)}
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                health = urllib.request.urlopen(f"{base}/_stcore/health", timeout=5)
                with health as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the server did not start: {server_log.read_text()[-800:]}")
            time.sleep(0.3)
        result["rss_after_start_mb"] = _vm(server.pid, "VmRSS")
        for url in probes.ENDPOINTS:
            started = time.perf_counter()
            with urllib.request.urlopen(base + url, timeout=timeout_s) as answer:
                answer.read()
                result["api"][url] = {
                    "status": answer.status,
                    "ms": (time.perf_counter() - started) * 1000,
                }
        result["hwm_after_api_mb"] = _vm(server.pid, "VmHWM")
        with sync_playwright() as play:
            browser = play.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--headless=new"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for label, path in page_urls():
                started = time.perf_counter()
                try:
                    page.goto(base + path, wait_until="domcontentloaded", timeout=timeout_s * 1000)
                    page.wait_for_function(IDLE_JS, timeout=timeout_s * 1000)
                    time.sleep(1.0)  # a rerun (query parameters, auto-refresh) would start by now
                    page.wait_for_function(IDLE_JS, timeout=timeout_s * 1000)
                except PlaywrightError as exc:
                    result["pages"][label] = {"path": path, "s": float("nan"), "errors": 1}
                    result.setdefault("page_errors", {})[label] = [str(exc).splitlines()[0]]
                    log(f"    {label} ({path}): {str(exc).splitlines()[0]}")
                    continue
                seconds = time.perf_counter() - started - 1.0
                errors = page.locator(
                    '[data-testid="stException"], [data-testid="stAlertContentError"]'
                )
                texts = [e.inner_text()[:300] for e in errors.all()]
                result["pages"][label] = {"path": path, "s": seconds, "errors": len(texts)}
                if texts:
                    result.setdefault("page_errors", {})[label] = texts
                log(f"    {label} ({path}): {seconds:.1f} s")
            browser.close()
        pids = [server.pid, *_descendants(server.pid)]
        result["children"] = len(pids) - 1
        result["hwm_mb"] = _vm(server.pid, "VmHWM")
        result["hwm_children_mb"] = sum(_vm(pid, "VmHWM") for pid in pids[1:])
        result["rss_end_mb"] = _vm(server.pid, "VmRSS")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    text = server_log.read_text()
    result["tracebacks"] = text.count("Traceback")
    copy.unlink(missing_ok=True)
    return result


# ----------------------------------------------------------------------------- report


def naive_versus_ours(found: dict) -> dict | None:
    """The naive approach's time against the Overview's cold query set (the landing page's first
    view; the Overview does no Python analysis of its own)."""
    naive, overview = found.get("naive"), found.get("pages", {}).get("Overview")
    if not naive or not overview or not overview["cold"] > 0:
        return None
    ours = overview["cold"] + (overview["analysis_cold"] if overview["analysis_cold"] > 0 else 0)
    return {
        "ours_ms": ours,
        "ours_rss_mb": overview["peak_rss_mb"],
        "ratio": naive["total_s"] * 1000 / ours,
    }


def server_size(data: dict) -> int:
    """The nominal size (as in --sizes) of the database the server ran on."""
    server = data.get("server") or {}
    if "nominal" in server:
        return server["nominal"]
    for size, found in data["results"].items():
        if found.get("results") == server.get("size"):
            return size
    return server.get("size", 0)


def _slowest_section(data: dict, add) -> None:
    """Per page, its slowest query at the largest size: where pre-aggregation pays most."""
    size = max(data["sizes"])
    pages = data["results"].get(size, {}).get("pages")
    if not pages:
        return
    add(f"## Slowest query per page at {size_label(size)}")
    add("")
    add(
        "Median ms of the page's slowest query, cold; the page's other queries over 100 ms cold "
        "follow it (full list per size below)."
    )
    add("")
    add("| page | slowest query | cold (ms) | uncached (ms) | also over 100 ms cold |")
    add("|---|---|---:|---:|---|")
    for name, page in pages.items():
        calls = sorted(page["calls"].items(), key=lambda item: -item[1]["cold"])
        if not calls:
            continue
        (top, times), rest = calls[0], calls[1:]
        others = ", ".join(f"{n} {fmt_ms(t['cold'])}" for n, t in rest if t["cold"] > 100)
        add(
            f"| {name} | {top} | {fmt_ms(times['cold'])} | {fmt_ms(times['uncached'])} | "
            f"{others or '–'} |"
        )
    add("")


def _page_target(size: int, page: dict) -> str:
    if size < TARGET_SIZE:
        cold, warm = TARGETS["page_cold_ms"], TARGETS["page_warm_ms"]
        return f"(at 10M: ≤ {cold:.0f} ms cold, ≤ {warm:.0f} ms warm)"
    cold = page["cold"] <= TARGETS["page_cold_ms"]
    warm = page["warm"] <= TARGETS["page_warm_ms"]
    return (
        f"cold ≤ {TARGETS['page_cold_ms']:.0f} ms {verdict(cold)}; "
        f"warm ≤ {TARGETS['page_warm_ms']:.0f} ms {verdict(warm)}"
    )


def report(data: dict) -> str:
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(
        'Issue 9, "Fast at ten million results". Produced by `bench/suite.py`; regenerate this '
        "file with the command below (the databases are generated once into var/bench/). The "
        "machine is shared with other jobs: compare numbers within one run, not across runs."
    )
    add("")
    add("```sh")
    add(data["command"])
    add("```")
    add("")
    add(f"Run on {data['date']}, {data['minutes']:.1f} minutes in all.")
    if data.get("rendered"):
        add(
            f"The tables were written again from that run's JSON on {data['rendered']} "
            "(`bench/suite.py --render`); the numbers are the run's."
        )
    add("")
    add("| machine | |")
    add("|---|---|")
    for key, value in data["machine"].items():
        if value != "unknown":
            add(f"| {key} | {value} |")
    add("")
    _targets(data, add)
    _slowest_section(data, add)
    add("## How it is measured")
    add("")
    add(
        "- **Pages**: the queries each page runs with its default choices and the default range "
        "(last 7 days, no filter), read from the page files (`bench/pages.py` mirrors every "
        "`agg.run(...)` / `agg.<method>(...)` call and the sidebar's). *cold*: no page cache, the "
        "first run on this database in a fresh process (DuckDB has read nothing of it; the OS page "
        "cache may hold the file) that has first run every page once on a small database of its "
        "own, as a running server has long imported and run its code; a query a page asks twice counts once, as the page cache would answer the second. "
        "*uncached*: no page cache, DuckDB's buffers warm (what a page costs each minute when its "
        "cached answers expire). *warm*: through `Aggregator.run` (`st.cache_data`) with the "
        "answers cached. Times are the sum of the page's queries; *analysis* is the Python work "
        "the page does on the answers (bootstrap, correlation, paging), reported apart and not "
        "counted against the query targets. Reports: the report is built (its queries; "
        "a report's charts are drawn when shown or exported, like the other pages' charts, "
        "which no page time here includes)."
    )
    add(
        "- **API**: `GET` through Starlette's `TestClient` on `create_api(ApiState(...))`. "
        "*cold*: first call in a fresh process (API cache empty, DuckDB cold); *uncached*: "
        "an empty API cache, DuckDB warm; *warm*: answered from the API cache."
    )
    add(
        "- **Ingest**: into a fresh store each run; rows (results) per second of wall time, "
        "parsing and writing included. JUnit and CSV/Parquet through `ingest_paths` (files from "
        "`bench/ingest_junit.py` and `bench/ingest_tabular.py`); REST: `POST /api/results` with "
        f"JSON batches of {probes.REST_BATCH:,} results through `TestClient`."
    )
    add(
        "- **Naive**: `SELECT * FROM` each table into pandas, then the Overview's first view "
        "computed there (status counts for the range and the one before, pass rate and results "
        "by status over time, throughput index by hardware, latest failures, worker states, "
        "totals), in a fresh process; its peak memory is that process's VmHWM. The ratio divides "
        "its time by the Overview's cold query set."
    )
    add(
        "- **Server**: `dtd serve` (lib.cli) on a copy of the largest database; every endpoint "
        "called once, then every page loaded in headless Chromium until Streamlit is idle; "
        "VmHWM of the server process (and of its children, if any)."
    )
    add("")
    for size in data["sizes"]:
        _size_sections(data["results"][size], size, add)
    _ingest_section(data, add)
    _server_section(data, add)
    if data["errors"]:
        add("## Errors")
        add("")
        for error in data["errors"]:
            add(f"- {error}")
        add("")
    return "\n".join(lines).rstrip() + "\n"


def _slowest_row(target: str, found: dict[str, dict], key: str, limit_ms: float) -> str:
    """A row of the targets table: the slowest of ``found`` by ``key``, and any over the limit."""
    worst = max(found.items(), key=lambda item: item[1][key])
    over = [name for name, entry in found.items() if entry[key] > limit_ms]
    return (
        f"| {target.format(limit_ms)} | slowest: {worst[0]} {fmt_ms(worst[1][key])} ms"
        + (f"; over: {', '.join(over)}" if over else "")
        + f" | {verdict(not over)} |"
    )


def _targets(data: dict, add) -> None:
    add("## Targets")
    add("")
    sizes = [s for s in data["sizes"] if s >= TARGET_SIZE]
    if not sizes:
        add(
            f"The issue's targets are stated at {TARGET_SIZE:,} results; this run stopped at "
            f"{max(data['sizes']):,}, so none is judged here."
        )
        add("")
        return
    size = min(sizes)
    found = data["results"][size]
    add(f"At {found['results']:,} results (targets from issue 9).")
    add("")
    add("| target | measured | verdict |")
    add("|---|---|---|")
    pages = found.get("pages", {})
    if pages:
        add(
            _slowest_row(
                "every page's query set ≤ {:.0f} ms cold (median)",
                pages,
                "cold",
                TARGETS["page_cold_ms"],
            )
        )
        add(
            _slowest_row(
                "every page's query set ≤ {:.0f} ms warm (median)",
                pages,
                "warm",
                TARGETS["page_warm_ms"],
            )
        )
    api = found.get("api", {})
    if api:
        add(
            _slowest_row(
                "each API endpoint ≤ {:.0f} ms (cold, first call)", api, "cold", TARGETS["api_ms"]
            )
        )
    versus = naive_versus_ours(found)
    if versus:
        add(
            f"| first view ≥ {TARGETS['naive_ratio']:.0f}x faster than naive pandas | "
            f"{versus['ratio']:.0f}x ({found['naive']['total_s']:.1f} s against "
            f"{fmt_ms(versus['ours_ms'])} ms, the Overview's cold query set) | "
            f"{verdict(versus['ratio'] >= TARGETS['naive_ratio'])} |"
        )
    server = data.get("server") or {}
    if "hwm_mb" in server and server_size(data) >= TARGET_SIZE:
        total = server["hwm_mb"] + server.get("hwm_children_mb", 0.0)
        add(
            f"| server peak RSS ≤ {TARGETS['server_rss_mb']:.0f} MB | {total:,.0f} MB "
            f"| {verdict(total <= TARGETS['server_rss_mb'])} |"
        )
    elif data.get("server_skipped"):
        add(
            f"| server peak RSS ≤ {TARGETS['server_rss_mb']:.0f} MB | not measured "
            f"({data['server_skipped']}) | – |"
        )
    ingest = data.get("ingest") or {}
    for key in ("csv", "parquet"):
        if key in ingest:
            rate = ingest[key]["median"]
            settled = ingest[key].get("settled_median")
            also = "" if settled is None else f" committed ({settled:,.0f} with rollups settled)"
            add(
                f"| bulk ingest ≥ {TARGETS['bulk_rows_per_s']:,.0f} rows/s ({INGEST_LABELS[key]}) "
                f"| {rate:,.0f} rows/s{also} | {verdict(rate >= TARGETS['bulk_rows_per_s'])} |"
            )
    add("")


def _size_sections(found: dict, size: int, add) -> None:
    label = size_label(size)
    add(f"## {label}: {found['results']:,} results, {found['measurements']:,} metric values")
    add("")
    pages = found.get("pages")
    if pages:
        cold = "fresh process per sample" if found["pages_fresh"] else "first run in one process"
        add(f"### Pages ({label})")
        add("")
        add(
            f"Median ms; cold: {cold}, {next(iter(pages.values()))['samples']} samples. "
            "The sidebar's queries are part of every page's total."
        )
        add("")
        add(
            "| page | queries | cold (ms) | uncached (ms) | warm (ms) | analysis cold / warm (ms) "
            "| slowest query, cold (ms) | probe peak RSS (MB) | Targets |"
        )
        add("|---|---:|---:|---:|---:|---:|---|---:|---|")
        for name, page in pages.items():
            add(
                f"| {name} | {page['queries']} | {fmt_ms(page['cold'])} | "
                f"{fmt_ms(page['uncached'])} | {fmt_ms(page['warm'])} | "
                f"{fmt_ms(page['analysis_cold'])} / {fmt_ms(page['analysis_warm'])} | "
                f"{page['slowest']} {fmt_ms(page['slowest_ms'])} | "
                f"{fmt_int(page['peak_rss_mb'])} | {_page_target(size, page)} |"
            )
        add("")
        add(f"#### Every query ({label}, median ms)")
        add("")
        add("| page | query | cold | uncached | warm |")
        add("|---|---|---:|---:|---:|")
        for name, page in pages.items():
            for call, times in page["calls"].items():
                add(
                    f"| {name} | {call} | {fmt_ms(times['cold'])} | {fmt_ms(times['uncached'])} "
                    f"| {fmt_ms(times['warm'])} |"
                )
        add("")
    api = found.get("api")
    if api:
        cold = "fresh process per sample" if found["api_fresh"] else "first call in one process"
        add(f"### API ({label})")
        add("")
        add(f"Median ms; cold: {cold}.")
        add("")
        add("| endpoint | cold (ms) | uncached (ms) | warm (ms) | bytes | Targets |")
        add("|---|---:|---:|---:|---:|---|")
        for url, entry in api.items():
            if size >= TARGET_SIZE:
                target = (
                    f"≤ {TARGETS['api_ms']:.0f} ms {verdict(entry['cold'] <= TARGETS['api_ms'])}"
                )
            else:
                target = f"(at 10M: ≤ {TARGETS['api_ms']:.0f} ms)"
            add(
                f"| GET {url} | {fmt_ms(entry['cold'])} | {fmt_ms(entry['uncached'])} | "
                f"{fmt_ms(entry['warm'])} | {entry['bytes']:,} | {target} |"
            )
        add("")
    cpd = found.get("changepoints")
    if cpd:
        add(f"### Change-point detection ({label})")
        add("")
        add(
            "On a fresh copy of the database, `lib.regressions.analyse(store)`: every (series, "
            "metric) pair with a direction, in batches, each written in its own transaction."
            + (
                f" Stopped by `--analyse-budget` after {cpd['pairs']:,} of {cpd['pending']:,} pairs."
                if cpd["pairs"] < cpd["pending"]
                else ""
            )
            + (
                f" The detector sees each pair's latest {cpd['max_points']:,} values "
                "(`lib.regressions.MAX_POINTS`), here about "
                f"{DEMO_DAYS * cpd['max_points'] * max(cpd['pending'], 1) / found['measurements']:.1f}"
                f" days of the demo's {DEMO_DAYS}: the changes it injected earlier lie outside "
                "that window, so none is found."
                if cpd.get("max_points") and not cpd["change_points"]
                else ""
            )
        )
        add("")
        add("| series × metric pairs | seconds | pairs per second | change points found |")
        add("|---:|---:|---:|---|")
        points = ", ".join(f"{k} {v:,}" for k, v in sorted(cpd["change_points"].items()))
        add(
            f"| {cpd['pairs']:,} | {cpd['seconds']:.1f} | {cpd['pairs'] / cpd['seconds']:,.1f} "
            f"| {points or 'none'} |"
        )
        add("")
    naive = found.get("naive")
    if naive:
        add(f"### Naive pandas against ours, Overview's first view ({label})")
        add("")
        versus = naive_versus_ours(found)
        target = (
            f"≥ {TARGETS['naive_ratio']:.0f}x "
            f"{verdict(bool(versus) and versus['ratio'] >= TARGETS['naive_ratio'])}"
            if size >= TARGET_SIZE
            else f"(at 10M: ≥ {TARGETS['naive_ratio']:.0f}x)"
        )
        add("| approach | time | peak RSS (MB) | naive / ours | Targets |")
        add("|---|---:|---:|---:|---|")
        add(
            f"| naive: load {naive['rows']['results']:,} results and "
            f"{naive['rows']['measurements']:,} values into pandas ({naive['load_s']:.2f} s), "
            f"compute ({naive['compute_s']:.2f} s) | {naive['total_s']:.2f} s | "
            f"{fmt_int(naive['peak_rss_mb'])} | | |"
        )
        if versus:
            add(
                f"| ours: the Overview's query set, cold | {fmt_ms(versus['ours_ms'])} ms | "
                f"{fmt_int(versus['ours_rss_mb'])} | {versus['ratio']:.0f}x | {target} |"
            )
        add("")


def _ingest_section(data: dict, add) -> None:
    ingest = data.get("ingest")
    if not ingest:
        return
    add("## Ingest")
    add("")
    add(
        f"Into a fresh store each run; median of {data['ingest_repeat']} runs. *Committed*: "
        "until `ingest_paths` returns (the rows are in, and every answer counts them). A write "
        "of 200,000 rows or more leaves its hourly rollups to a second transaction right after "
        "(`Store.settle`, a background thread in the server; readers add the raw rows meanwhile, "
        "so answers stay exact): *with rollups* is the rate until that one commits too."
    )
    add("")
    add(
        "| path | rows per run | input size (MB) | rows/s committed (median) "
        "| rows/s with rollups (median) | Targets |"
    )
    add("|---|---:|---:|---:|---:|---|")
    for key, label in INGEST_LABELS.items():
        entry = ingest.get(key)
        if entry is None:
            continue
        if key in ("csv", "parquet"):
            target = (
                f"bulk ≥ {TARGETS['bulk_rows_per_s']:,.0f} rows/s "
                f"{verdict(entry['median'] >= TARGETS['bulk_rows_per_s'])}"
            )
        elif key == "junit":
            target = (
                f"(issue 3: ≥ {TARGETS['junit_rows_per_s']:,.0f} test cases/s "
                f"{verdict(entry['median'] >= TARGETS['junit_rows_per_s'])})"
            )
        else:
            target = f"(no target; batches of {entry.get('batch', probes.REST_BATCH):,})"
        settled = entry.get("settled_median")
        settled_text = "–" if settled is None else f"{settled:,.0f}"
        add(
            f"| {label} | {entry['rows']:,} | {entry['bytes'] / 1e6:,.1f} | "
            f"{entry['median']:,.0f} | {settled_text} | {target} |"
        )
    add("")


def _server_section(data: dict, add) -> None:
    server = data.get("server")
    add("## Server peak memory")
    add("")
    if not server:
        add(f"Not measured: {data.get('server_skipped') or 'see errors'}.")
        add("")
        return
    total = server["hwm_mb"] + server.get("hwm_children_mb", 0.0)
    if server_size(data) >= TARGET_SIZE:
        target = f"≤ {TARGETS['server_rss_mb']:.0f} MB {verdict(total <= TARGETS['server_rss_mb'])}"
    else:
        target = f"(at 10M: ≤ {TARGETS['server_rss_mb']:.0f} MB)"
    add(
        f"`dtd serve` on a copy of the {server['size']:,}-result database: RSS "
        f"{server['rss_after_start_mb']:,.0f} MB after start, peak {server['hwm_after_api_mb']:,.0f} "
        f"MB after every endpoint, {server['rss_end_mb']:,.0f} MB at the end; "
        f"{server['children']} child processes"
        + (f" (peak {server['hwm_children_mb']:,.0f} MB together)" if server["children"] else "")
        + f"; {server['tracebacks']} tracebacks in its log."
    )
    add("")
    add("| server | peak RSS, VmHWM (MB) | Targets |")
    add("|---|---:|---|")
    add(f"| dtd serve, every endpoint and page | {total:,.0f} | {target} |")
    add("")
    add("| page (browser) | path | load until idle (s) | error elements |")
    add("|---|---|---:|---:|")
    for label, entry in server["pages"].items():
        seconds = "–" if entry["s"] != entry["s"] else f"{entry['s']:.1f}"
        add(f"| {label} | {entry['path']} | {seconds} | {entry['errors']} |")
    add("")
    for label, texts in server.get("page_errors", {}).items():
        for text in texts:
            add(f"- {label}: {' '.join(text.split())}")
    if server.get("page_errors"):
        add("")


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", help="results per database, comma-separated (1000000,10000000)")
    parser.add_argument("--repeat", type=int, help="samples per measurement (default 5; quick 2)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100,000 results, 2 repeats, small ingest files, detection stopped after 3 s; "
        "the browser part only when Chromium is installed",
    )
    parser.add_argument("--out", type=Path, help="markdown output (default docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also write every number as JSON here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=bench_pages.BENCH_DIR,
        help="where the demo databases are kept between runs (default var/bench/)",
    )
    parser.add_argument(
        "--max-age-hours",
        type=float,
        default=bench_pages.MAX_AGE_HOURS,
        help="regenerate a cached database older than this (default %(default)s)",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the server's peak memory")
    parser.add_argument(
        "--analyse-budget",
        type=float,
        help="stop change-point detection after this many seconds (quick: 3; default: no limit)",
    )
    parser.add_argument("--chromium", default=CHROMIUM, help="Chromium executable")
    parser.add_argument("--label", help="a note recorded with the machine (which code, why)")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only write the markdown of an earlier --json"
    )
    parser.add_argument("--page-timeout", type=float, default=120, help="seconds per page load")
    args = parser.parse_args(argv)
    if args.sizes:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    else:
        args.sizes = [100_000] if args.quick else [1_000_000, 10_000_000]
    args.repeat = args.repeat or (2 if args.quick else 5)
    if args.analyse_budget is None and args.quick:
        args.analyse_budget = 3.0
    args.out = args.out or (
        args.cache_dir / "quick.md" if args.quick else ROOT / "docs" / "benchmarks.md"
    )
    if args.quick:
        args.junit, args.tabular, args.rest = 10_000, 50_000, 20_000
    else:
        args.junit, args.tabular, args.rest = 100_000, 1_000_000, 100_000
    return args


def run(args: argparse.Namespace) -> dict:
    began = time.monotonic()
    data: dict[str, Any] = {
        "command": command_line(),
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine(),
        "sizes": sorted(args.sizes),
        "results": {},
        "errors": [],
        "ingest_repeat": 1 if args.quick else args.repeat,
    }
    if args.label:
        data["machine"]["Note"] = args.label

    def attempt(what: str, function, *a):
        try:
            return function(*a)
        except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, not fatal
            data["errors"].append(f"{what}: {exc}")
            log(f"  FAILED {what}: {exc}")
            return None

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    analysed: dict[int, Path] = {}
    for size in data["sizes"]:
        label = size_label(size)
        log(f"[{label}] database")
        raw = bench_pages.bench_db(size, args.max_age_hours, DEMO_DAYS, args.cache_dir)
        found: dict[str, Any] = {}
        data["results"][size] = found
        log(f"[{label}] change-point detection on a fresh copy")
        target = args.cache_dir / f"demo-{size}-schema{SCHEMA_VERSION}-analysed.duckdb"
        scratch = target.with_name(target.name + ".tmp")
        for stale in (scratch, scratch.with_name(scratch.name + ".wal")):
            stale.unlink(missing_ok=True)
        budget = ["--budget", str(args.analyse_budget)] if args.analyse_budget else []
        analyse = ["analyse", "--db", str(raw), "--out", str(scratch), *budget]
        cpd = attempt(f"{label} change points", probe, *analyse)
        if cpd is None:
            continue
        found["changepoints"] = cpd
        for suffix in ("", ".wal"):
            part = scratch.with_name(scratch.name + suffix)
            if part.exists():
                part.replace(target.with_name(target.name + suffix))
            else:
                target.with_name(target.name + suffix).unlink(missing_ok=True)
        analysed[size] = target
        log(f"  {cpd['pairs']:,} pairs in {cpd['seconds']:.1f} s")
        counts = _counts(target)
        found.update(counts)
        log(f"[{label}] pages")
        pages = attempt(f"{label} pages", measure_pages, target, args.repeat, args.quick)
        if pages:
            found["pages"] = {n: summarise_page(s) for n, s in pages["samples"].items()}
            found["pages_fresh"] = pages["fresh"]
            _print_pages(found["pages"])
        log(f"[{label}] API")
        api = attempt(f"{label} API", measure_api, target, args.repeat, args.quick)
        if api:
            found["api"] = {u: summarise_api(s) for u, s in api["samples"].items()}
            found["api_fresh"] = api["fresh"]
            for url, entry in found["api"].items():
                log(f"    GET {url}: cold {fmt_ms(entry['cold'])}, warm {fmt_ms(entry['warm'])} ms")
        log(f"[{label}] naive pandas")
        naive = attempt(
            f"{label} naive", measure_naive, target, 1 if args.quick else min(args.repeat, 3)
        )
        if naive:
            found["naive"] = naive
            versus = naive_versus_ours(found)
            log(
                f"    {naive['total_s']:.2f} s, peak {naive['peak_rss_mb']:,.0f} MB"
                + (f"; {versus['ratio']:.0f}x the Overview's cold query set" if versus else "")
            )
    log("[ingest]")
    sizes = {"--junit": args.junit, "--tabular": args.tabular, "--rest": args.rest}
    options = [str(x) for pair in sizes.items() for x in pair]
    ingest = attempt("ingest", probe, "ingest", *options, "--repeat", str(data["ingest_repeat"]))
    if ingest:
        data["ingest"] = ingest["ingest"]
        for key, entry in data["ingest"].items():
            log(f"    {INGEST_LABELS[key]}: {entry['median']:,.0f} rows/s")
    largest = max(analysed) if analysed else None
    if args.no_browser:
        data["server_skipped"] = "--no-browser"
    elif not Path(args.chromium).exists() or shutil.which(args.chromium) is None:
        data["server_skipped"] = f"no Chromium at {args.chromium}"
    elif largest is None:
        data["server_skipped"] = "no database"
    else:
        log(f"[{size_label(largest)}] server peak memory")
        with tempfile.TemporaryDirectory(prefix="dtd-bench-serve-") as tmp:
            where = (analysed[largest], Path(tmp), args.chromium, args.page_timeout)
            server = attempt("server", measure_server, *where)
        if server:
            server["size"] = data["results"][largest].get("results", largest)
            server["nominal"] = largest
            data["server"] = server
            log(f"    peak {server['hwm_mb']:,.0f} MB")
    if data.get("server_skipped"):
        log(f"[server] skipped: {data['server_skipped']}")
    data["minutes"] = (time.monotonic() - began) / 60
    data["machine"]["Load average at end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return data


def _counts(db: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        results, values = con.execute(
            "SELECT (SELECT count(*) FROM results), (SELECT count(*) FROM measurements)"
        ).fetchall()[0]
    finally:
        con.close()
    return {"results": int(results), "measurements": int(values)}


def _print_pages(pages: dict) -> None:
    for name, page in pages.items():
        log(
            f"    {name}: cold {fmt_ms(page['cold'])}, uncached {fmt_ms(page['uncached'])}, "
            f"warm {fmt_ms(page['warm'])} ms; slowest {page['slowest']} {fmt_ms(page['slowest_ms'])}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text(encoding="utf-8"))
        data["sizes"] = [int(size) for size in data["sizes"]]
        data["results"] = {int(size): found for size, found in data["results"].items()}
        data["rendered"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    else:
        data = run(args)
    text = report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    if args.json and not args.render:
        args.json.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    print()
    print(text)
    print(f"written to {args.out}")
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
