"""The store: creation, versions, refusal of foreign files, locking, cursors and transactions."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from lib import schema
from lib.store import (
    NotAStore,
    StoreError,
    StoreLocked,
    StoreTooNew,
    StoreUnwritable,
    open_store,
    release,
)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file in a folder with its content hash: proof that nothing was written."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_new_store_has_schema_version_and_metric_directions(tmp_path: Path) -> None:
    store = open_store(tmp_path / "sub" / "new.duckdb")
    try:
        meta = store.meta()
        assert meta["schema_version"] == str(schema.SCHEMA_VERSION)
        assert meta["application_id"] == schema.APPLICATION_ID
        with store.cursor() as cur:
            tables = {
                r[0]
                for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()
            }
            directions = dict(cur.execute("SELECT name, direction FROM metrics").fetchall())
        assert {
            "results",
            "series",
            "metrics",
            "runs",
            "workers",
            "heartbeats",
            "measurements",
            "dtd_meta",
        } <= tables
        assert directions["throughput_items_per_second"] == "higher"
        assert directions["latency_p99_ms"] == "lower"
        assert directions["memory_peak_mb"] == "lower"
        # No temporary files left behind by the atomic creation.
        assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["new.duckdb"]
    finally:
        store.close()


def test_same_path_gives_the_same_store_in_one_process(tmp_path: Path) -> None:
    first = open_store(tmp_path / "a.duckdb")
    try:
        assert open_store(str(tmp_path / "." / "a.duckdb")) is first
    finally:
        first.close()


def test_foreign_duckdb_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE performance_results (result_id INTEGER)")
    con.close()
    before = _fingerprint(tmp_path)
    with pytest.raises(NotAStore) as caught:
        open_store(path)
    message = str(caught.value)
    assert str(path) in message and "performance_results" in message
    assert "not one this dashboard created" in message
    assert _fingerprint(tmp_path) == before


def test_empty_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    before = _fingerprint(tmp_path)
    with pytest.raises(NotAStore, match="no tables at all"):
        open_store(path)
    assert _fingerprint(tmp_path) == before


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "an empty file (0 bytes)"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "a SQLite database, not a DuckDB one"),
        (b"\xff\xfe garbage " * 100, "not a DuckDB database"),
    ],
)
def test_corrupt_or_non_duckdb_file_is_refused(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.duckdb"
    path.write_bytes(content)
    before = _fingerprint(tmp_path)
    with pytest.raises(NotAStore) as caught:
        open_store(path)
    assert words in str(caught.value) and str(path) in str(caught.value)
    assert _fingerprint(tmp_path) == before


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAStore, match="is a directory"):
        open_store(tmp_path)


@pytest.mark.parametrize("where", ["file-as-parent", "proc"])
def test_unwritable_location_says_which_folder(tmp_path: Path, where: str) -> None:
    if where == "file-as-parent":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        path, folder = blocker / "db.duckdb", blocker
    else:
        path, folder = Path("/proc/dtd-test/db.duckdb"), Path("/proc/dtd-test")
    with pytest.raises(StoreUnwritable) as caught:
        open_store(path)
    assert f"the folder {folder} is not writable" in str(caught.value)
    assert not path.exists()


def test_missing_file_without_create_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="dtd demo --db"):
        open_store(tmp_path / "none.duckdb", create=False)
    assert not (tmp_path / "none.duckdb").exists()


def test_newer_schema_is_refused_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE dtd_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = _fingerprint(tmp_path)
    with pytest.raises(StoreTooNew, match="schema version 99"):
        open_store(path)
    assert _fingerprint(tmp_path) == before


def test_migrations_run_in_order_and_record_the_version(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    applied = []
    steps = {
        1: schema.MIGRATIONS[1],
        2: lambda c: (
            applied.append(2),
            c.execute("ALTER TABLE results ADD COLUMN attempt INTEGER"),
        ),
        3: lambda c: (applied.append(3), c.execute("CREATE TABLE notes (text VARCHAR)")),
    }
    con.execute("BEGIN")
    assert schema.migrate(con, 0, steps) == 3
    con.execute("COMMIT")
    assert applied == [2, 3]
    assert con.execute("SELECT value FROM dtd_meta WHERE key='schema_version'").fetchall() == [
        ("3",)
    ]
    assert "attempt" in [r[0] for r in con.execute("DESCRIBE results").fetchall()]
    con.close()


def test_file_locked_by_another_process_names_the_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    open_store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked) as caught:
            open_store(path)
        message = str(caught.value)
        assert f"PID {holder.pid}" in message and "in use by another process" in message
    finally:
        holder.kill()
        holder.wait()


def test_cursor_per_thread_reads_while_another_thread_writes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "threads.duckdb")
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, list[int]] = {}

    def writer() -> None:
        for i in range(200):
            with store.transaction() as cur:
                cur.execute("INSERT INTO runs (run_id, name) VALUES (?, ?)", [i, f"run {i}"])
        stop.set()

    def reader() -> None:
        mine = seen.setdefault(threading.current_thread().name, [])
        while not stop.is_set():
            try:
                with store.cursor() as cur:
                    mine.append(cur.execute("SELECT count(*) FROM runs").fetchall()[0][0])
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test below
                errors.append(exc)
                return

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        # Each reader saw only committed states, so its counts never go backwards.
        assert len(seen) == 3 and all(counts == sorted(counts) for counts in seen.values())
        with store.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 200
        assert store.data_version == 200
    finally:
        store.close()


def test_failed_transaction_leaves_nothing_and_keeps_the_cache_token(tmp_path: Path) -> None:
    store = open_store(tmp_path / "tx.duckdb")
    token = store.cache_token
    try:
        with pytest.raises(duckdb.ConstraintException), store.transaction() as cur:
            cur.execute("INSERT INTO runs (run_id, name) VALUES (1, 'ok')")
            cur.execute(
                "INSERT INTO results (result_id, series_id, ts, status) "
                "VALUES (1, 1, TIMESTAMP '2026-01-01', 'exploded')"
            )
        with store.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 0
        assert store.cache_token == token
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write any file; permissions mean nothing")
def test_read_only_file_opens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    open_store(path).close()
    path.chmod(0o444)
    store = open_store(path)
    try:
        assert store.read_only
        with pytest.raises(StoreUnwritable), store.transaction():
            pass
    finally:
        store.close()


def test_release_lets_another_process_open_the_file(tmp_path: Path) -> None:
    path = tmp_path / "handover.duckdb"
    open_store(path)
    release(path)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; duckdb.connect(sys.argv[1]).close(); print('ok')",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "ok", out.stderr


def _upgrade_by_one(monkeypatch: pytest.MonkeyPatch, step) -> int:
    """Pretend the next release adds ``step`` as the next migration; return its version."""
    version = schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", version)
    monkeypatch.setattr(schema, "MIGRATIONS", {**schema.MIGRATIONS, version: step})
    return version


def test_opening_an_older_file_migrates_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.duckdb"
    open_store(path).close()  # a file of the current version
    new = _upgrade_by_one(
        monkeypatch, lambda c: c.execute("ALTER TABLE results ADD COLUMN attempt INTEGER")
    )
    store = open_store(path)
    try:
        assert store.meta()["schema_version"] == str(new)
        with store.cursor() as cur:
            columns = [r[0] for r in cur.execute("DESCRIBE results").fetchall()]
        assert "attempt" in columns
    finally:
        store.close()


def test_a_failed_migration_leaves_the_file_at_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    open_store(path).close()

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE halfway (x INTEGER)")
        con.execute("SELECT * FROM no_such_table")

    old = schema.SCHEMA_VERSION
    new = _upgrade_by_one(monkeypatch, broken)
    with pytest.raises(
        StoreError, match=f"from schema {old} to {new} failed.*left at version {old}"
    ):
        open_store(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM dtd_meta WHERE key='schema_version'").fetchall() == [
        (str(old),)
    ]
    assert "halfway" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    con.close()


def test_a_version_1_file_gains_the_change_point_tables(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute("BEGIN")
    schema.migrate(con, 0, {1: schema.MIGRATIONS[1]})  # what release 1 wrote
    con.execute("INSERT INTO runs (run_id, name) VALUES (7, 'kept')")
    con.execute("COMMIT")
    con.close()
    store = open_store(path)
    try:
        assert store.meta()["schema_version"] == str(schema.SCHEMA_VERSION)
        with store.cursor() as cur:
            tables = {r[0] for r in cur.execute("SHOW TABLES").fetchall()}
            assert cur.execute("SELECT name FROM runs").fetchall() == [("kept",)]
        assert {"change_points", "change_reviews", "detection_state"} <= tables
    finally:
        store.close()


def test_memory_limit_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    store = open_store(tmp_path / "default.duckdb")
    with store.cursor() as cur:
        assert cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "488.2 MiB"
    monkeypatch.setenv("DTD_MEMORY_LIMIT", "1GB")
    store = open_store(tmp_path / "one.duckdb")
    with store.cursor() as cur:
        assert cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "953.6 MiB"
    monkeypatch.setenv("DTD_MEMORY_LIMIT", "lots")
    with pytest.raises(StoreError, match="DTD_MEMORY_LIMIT='lots' is not a memory size"):
        open_store(tmp_path / "bad.duckdb")
