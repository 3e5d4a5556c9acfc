"""Issue 18, finding 6: ingests killed with SIGKILL mid-way add no rows but leave their blocks in
the file; `dtd maintain` gives the space back without changing a row."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

DTD = shutil.which("dtd", path=str(Path(sys.executable).parent)) or "dtd"
ROWS = 400_000


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}


def _dtd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DTD, *args], capture_output=True, text=True, timeout=300, env=_env(), check=False
    )


def _big_csv(path: Path) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["ts", "name", "status", "duration_s", "metric.latency_ms", "model"])
        for i in range(ROWS):
            out.writerow(
                [
                    f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z",
                    f"test_{i % 4000}",
                    "passed" if i % 17 else "failed",
                    (i % 100) / 10,
                    (i * 7) % 1000 / 3,
                    f"m{i % 13}",
                ]
            )


def _killed_mid_write(db: Path, data: Path) -> int:
    """Start `dtd ingest` and SIGKILL it once the file has grown by 8 MB (rows are being
    written, nothing is committed yet); returns the file's size at the kill."""
    start = db.stat().st_size
    process = subprocess.Popen(
        [DTD, "ingest", "--db", str(db), str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if db.stat().st_size > start + 8_000_000:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    return db.stat().st_size


def _content(db: Path) -> dict[str, tuple]:
    """Per table: row count and an order-sensitive hash of every row (read-only)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {
            t: con.execute(f'SELECT count(*), sum(hash(rowid, x)) FROM "{t}" x').fetchall()[0]
            for t in tables
        }
    finally:
        con.close()


def test_space_left_by_killed_ingests_is_reclaimed(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    made = _dtd("demo", "--db", str(db), "--results", "40000", "--days", "7")
    assert made.returncode == 0, made.stderr
    data = tmp_path / "big.csv"
    _big_csv(data)
    original = db.stat().st_size
    content = _content(db)
    for _ in range(2):
        _killed_mid_write(db, data)
    grown = db.stat().st_size
    assert grown > original + 16_000_000  # the finding: blocks of aborted writes stay
    status = json.loads(_dtd("status", "--db", str(db), "--json").stdout)
    assert status["results"] == content["results"][0]  # and no row went in

    out = _dtd("maintain", "--db", str(db))
    assert out.returncode == 0, out.stderr
    after = db.stat().st_size
    assert abs(after - original) <= 0.10 * original, (original, grown, after)
    reclaimed = (grown - after) / 1e6
    assert f"reclaimed {reclaimed:,.1f} MB" in out.stdout
    assert f"{grown / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB" in out.stdout
    assert _content(db) == content  # every row, in the same order
    assert not list(tmp_path.glob(".store.duckdb.*"))  # no temporary file left behind
    print(f"sizes: original {original:,}, after 2 killed ingests {grown:,}, maintained {after:,}")

    again = _dtd("maintain", "--db", str(db))  # nothing more to gain: the file stays
    assert again.returncode == 0 and "left as it is" in again.stdout
    assert db.stat().st_size == after
    small = tmp_path / "small.csv"
    small.write_text("ts,name,status\n2026-01-02T00:00:00Z,after_maintain,passed\n")
    ingest = _dtd("ingest", "--db", str(db), str(small))  # the compacted store takes writes
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert json.loads(_dtd("status", "--db", str(db), "--json").stdout)["results"] == (
        content["results"][0] + 1
    )


def test_maintain_refuses_what_it_must(tmp_path: Path) -> None:
    missing = _dtd("maintain", "--db", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2 and "There is no results database" in missing.stderr
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    size = foreign.stat().st_size
    out = _dtd("maintain", "--db", str(foreign), "--force")
    assert out.returncode == 2 and "not one this dashboard created" in out.stderr
    assert foreign.stat().st_size == size
