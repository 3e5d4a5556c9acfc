"""JUnit ingest throughput: test cases per second into a fresh store (median of 3 runs).

    .venv/bin/python bench/ingest_junit.py [--cases 100000]

Prints a line per run and the median; the target in issue 3 is 20,000 test cases per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.ingest import ingest_paths  # noqa: E402
from lib.store import open_store  # noqa: E402


def write_report(path: Path, cases: int) -> None:
    """A pytest-style report: 50 suites, 2 % failures with messages, 3 % skips."""
    per_suite = cases // 50
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="bench">\n')
        for s in range(50):
            out.write(
                f'<testsuite name="suite{s}" timestamp="2026-11-01T10:00:00" '
                f'hostname="ci-{s % 8}" tests="{per_suite}">\n'
            )
            for i in range(per_suite):
                out.write(
                    f'<testcase classname="pkg.mod{s}.TestThing" name="test_{i}[param{i % 7}]" '
                    f'time="{(i % 97) / 1000:.3f}"'
                )
                if i % 50 == 0:
                    out.write(
                        '><failure message="AssertionError: 1 != 2">Traceback ...</failure>'
                        "</testcase>\n"
                    )
                elif i % 33 == 0:
                    out.write('><skipped message="needs gpu"/></testcase>\n')
                else:
                    out.write("/>\n")
            out.write("</testsuite>\n")
        out.write("</testsuites>\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        write_report(report, args.cases)
        rates = []
        for run in range(3):
            store = open_store(Path(tmp) / f"run{run}.duckdb")
            started = time.perf_counter()
            [result] = ingest_paths(store, [report])
            seconds = time.perf_counter() - started
            store.close()
            assert result.status == "ok", result.error
            rates.append(result.results / seconds)
            print(
                f"run {run + 1}: {result.results:,} test cases in {seconds:.2f} s "
                f"= {rates[-1]:,.0f} per second"
            )
        print(f"median: {statistics.median(rates):,.0f} test cases per second (target 20,000)")


if __name__ == "__main__":
    main()
