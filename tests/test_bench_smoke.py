"""The benchmark suite (bench/suite.py) runs end to end at 100,000 results.

A smoke test: every page, endpoint and ingest path gets a row with positive numbers. No duration
is asserted (the machine may be shared). The browser part (the server's peak memory) is left out
to keep this quick; `bench/suite.py --quick` alone includes it when Chromium is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lib.ui.sidebar import PAGES

PROJECT = Path(__file__).resolve().parent.parent
ENDPOINTS = (
    "/api/status",
    "/api/tests",
    "/api/workers",
    "/api/regressions",
    "/api/dimensions",
    "/api/dimensions?dimension=hardware",
    "/api/performance",
)
INGEST = ("JUnit XML", "CSV", "Parquet", "REST JSON batches")


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown tables by the heading above them: rows of cells (header and rule left out)."""
    tables: dict[str, list[list[str]]] = {}
    heading, rows = "", None
    for line in text.splitlines():
        if line.startswith("#"):
            heading, rows = line.lstrip("# ").strip(), None
        elif line.startswith("|"):
            if rows is None:
                rows = tables.setdefault(heading, [])
                rows.append([])  # the header, dropped below
            elif not set(line) <= set("|-: "):
                rows.append([cell.strip() for cell in line.strip("|").split("|")])
        else:
            rows = None
    return {name: found[1:] for name, found in tables.items()}


def _number(cell: str) -> float:
    found = re.match(r"^-?[0-9][0-9,]*(\.[0-9]+)?", cell)
    assert found, f"no number in {cell!r}"
    return float(found.group(0).replace(",", ""))


def _section(tables: dict, prefix: str) -> dict[str, list[str]]:
    matching = [rows for name, rows in tables.items() if name.startswith(prefix)]
    assert matching, f"no table under a heading starting {prefix!r}: {list(tables)}"
    return {row[0]: row[1:] for row in matching[0]}


def test_quick_suite_has_a_row_with_numbers_for_every_page_endpoint_and_ingest_path(
    tmp_path: Path,
) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [
            sys.executable,
            "bench/suite.py",
            "--quick",
            "--no-browser",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    text = out.read_text(encoding="utf-8")
    assert "bench/suite.py --quick" in text and "| CPU |" in text
    tables = _tables(text)

    pages = _section(tables, "Pages (100k)")
    assert set(pages) == {"Sidebar (every page)", *(label for _, label, _ in PAGES)}
    for name, cells in pages.items():
        queries, cold, uncached, warm = (_number(cell) for cell in cells[:4])
        assert queries >= 2 and cold > 0 and uncached > 0 and warm > 0, (name, cells)

    api = _section(tables, "API (100k)")
    assert set(api) == {f"GET {url}" for url in ENDPOINTS}
    for url, cells in api.items():
        assert all(_number(cell) > 0 for cell in cells[:4]), (url, cells)

    ingest = _section(tables, "Ingest")
    assert set(ingest) == set(INGEST)
    for path, cells in ingest.items():
        rows, rate = _number(cells[0]), _number(cells[2])
        assert rows > 0 and rate > 0, (path, cells)

    every_query = _section(tables, "Every query (100k")
    assert "Overview" in every_query
    changes = _section(tables, "Change-point detection (100k)")
    assert all(_number(cell) > 0 for cell in next(iter(changes.values()))[:2])
    naive = _section(tables, "Naive pandas")
    assert any(key.startswith("ours") for key in naive)
