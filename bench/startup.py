"""How long `dtd` takes to start: wall time of whole commands and of importing the CLI module.

    .venv/bin/python bench/startup.py [--runs 7] [--db var/bench/startup-demo.duckdb]

Each command runs ``--runs`` times in a fresh process (the first run is a warm-up and is not
counted, so the page cache holds the files); the median and the range are printed. Measured:
``dtd --help``, ``dtd status --db DEMO`` (a default demo database of 200,000 results, made on the
first run and kept), ``python -c "import lib.cli"`` and ``python -X importtime`` on the same
import, whose ten largest cumulative entries say where the time goes. Issue 17's target is under
0.5 s for ``dtd --help`` and ``dtd status``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    """The caller's environment without dtd settings, with this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def timed(command: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh runs of ``command`` (after one uncounted warm-up)."""
    times = []
    for attempt in range(runs + 1):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT)
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
        if attempt:
            times.append(elapsed)
    return times


def import_profile(argv: list[str], top: int = 10) -> list[tuple[float, str]]:
    """The largest cumulative import times (seconds, module) of ``dtd ARGV`` in one process,
    counting only modules imported directly by ``lib`` modules or by the command itself."""
    code = f"import sys; from lib.cli import main; sys.exit(main({argv!r}))"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if found and len(found.group(2)) <= 3:  # imported at the top level of the process
            rows.append((int(found.group(1)) / 1e6, found.group(3)))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", default=str(ROOT / "var" / "bench" / "startup-demo.duckdb"))
    args = parser.parse_args()
    dtd = shutil.which("dtd", path=str(BIN)) or "dtd"
    db = Path(args.db)
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([dtd, "demo", "--db", str(db)], check=True, env=_env(), cwd=ROOT)
    commands = {
        "dtd --help": [dtd, "--help"],
        "dtd status": [dtd, "status", "--db", str(db)],
        "import lib.cli": [sys.executable, "-c", "import lib.cli"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    print(f"{'command':<16}{'median':>9}{'min':>9}{'max':>9}   ({args.runs} runs, warm)")
    for label, command in commands.items():
        times = timed(command, args.runs)
        print(f"{label:<16}{statistics.median(times):>8.3f}s{min(times):>8.3f}s{max(times):>8.3f}s")
    for argv in (["--help"], ["status", "--db", str(db)]):
        print(f"\nlargest top-level imports of `dtd {argv[0]}` (cumulative, one run):")
        for seconds, module in import_profile(argv):
            print(f"  {seconds:6.3f}s  {module}")


if __name__ == "__main__":
    main()
