"""The installed ``dtd`` command, run as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

DTD = shutil.which("dtd", path=str(Path(sys.executable).parent)) or "dtd"


def _dtd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    environment.update(env or {})
    return subprocess.run(
        [DTD, *args], capture_output=True, text=True, timeout=120, env=environment
    )


def test_demo_then_status_agree_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cli.duckdb"
    made = _dtd("demo", "--db", str(path), "--results", "5000", "--days", "3", "--seed", "9")
    assert made.returncode == 0, made.stderr
    assert "spanning 3 days" in made.stdout and str(path) in made.stdout
    out = _dtd("status", "--db", str(path), "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    con = duckdb.connect(str(path), read_only=True)
    total, failed, skipped = con.execute(
        "SELECT count(*), count(*) FILTER (status = 'failed'), count(*) FILTER (status = 'skipped') "
        "FROM results"
    ).fetchall()[0]
    first = con.execute("SELECT min(ts) FROM results").fetchall()[0][0]
    con.close()
    assert (status["results"], status["failed"], status["skipped"]) == (total, failed, skipped)
    assert 4500 < total <= 5000
    assert status["first_result"] == first.isoformat()
    assert status["workers"]["dead"] == 1 and status["workers"]["stale"] == 2
    text = _dtd("status", env={"DTD_DB": str(path)})
    assert text.returncode == 0 and f"{total:,}" in text.stdout and "Pass rate" in text.stdout


@pytest.mark.parametrize(
    "setup, args, words",
    [
        ("foreign", ["status"], "not one this dashboard created"),
        ("foreign", ["demo", "--results", "10"], "not one this dashboard created"),
        ("none", ["status"], "There is no results database"),
        ("junk", ["status"], "not a DuckDB database"),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, setup: str, args: list, words: str
) -> None:
    path = tmp_path / "x.duckdb"
    if setup == "foreign":
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE hardware_platforms (hardware_id INTEGER)")
        con.close()
    elif setup == "junk":
        path.write_bytes(b"not a database at all" * 10)
    before = path.read_bytes() if path.exists() else None
    out = _dtd(*args, "--db", str(path))
    assert out.returncode == 2
    assert words in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert (path.read_bytes() if path.exists() else None) == before


def test_bad_arguments_are_named() -> None:
    out = _dtd("demo", "--results", "lots")
    assert out.returncode == 2 and "--results must be a whole number, got 'lots'" in out.stderr
    out = _dtd("demo", "--days", "0")
    assert out.returncode == 2 and "--days must be between" in out.stderr


HEAVY = ("pandas", "numpy", "scipy", "altair", "streamlit", "pyarrow", "matplotlib", "vl_convert")
"""Libraries whose import alone costs 0.1 to 1 s each (bench/startup.py measures them)."""


def _loaded_by(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``dtd ARGV`` in a fresh interpreter; return it and the modules it had imported."""
    code = (
        "import sys, json\n"
        "from lib.cli import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    modules = json.loads(done.stdout.rsplit("MODULES ", 1)[1])
    return done, set(modules)


@pytest.mark.parametrize("command", ["help", "status"])
def test_help_and_status_import_no_heavy_library(tmp_path: Path, command: str) -> None:
    """Issue 17 (finding 5): start-up is import time, so the fast commands must not load the
    analysis stack; bench/startup.py gives the wall times."""
    if command == "help":
        argv = ["--help"]
    else:
        path = tmp_path / "s.duckdb"
        assert _dtd("demo", "--db", str(path), "--results", "2000", "--days", "1").returncode == 0
        argv = ["status", "--db", str(path)]
    done, modules = _loaded_by(argv)
    assert "Usage" in done.stdout or "usage" in done.stdout or "Results" in done.stdout
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert heavy == [], f"dtd {argv[0]} imported {heavy}"
    assert not {m for m in modules if m.startswith(("lib.reports", "lib.ingest", "lib.demo"))}
    # A command that needs the stack still gets it (the lazy imports are wired up).
    if command == "status":
        done, modules = _loaded_by(
            ["report", "test", "--db", str(path), "--out", str(path) + ".html"]
        )
        assert "lib.reports" in modules and "altair" in modules, done.stderr
