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
