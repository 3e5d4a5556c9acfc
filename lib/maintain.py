"""Give back the space aborted writes left in a store's file (``dtd maintain``).

What DuckDB 2.0.1 does, measured (docs/architecture.md, "Reclaiming space"): a big transaction
writes its rows into new blocks of the file before it commits. When the process is killed
(SIGKILL) mid-way those rows are rightly gone, but the file keeps its length: two killed
ingests grew a 24.9 MB store to 69 MB with no row added. The blocks past the end of the
checkpointed database are not even on DuckDB's free list, so neither ``CHECKPOINT``,
``FORCE CHECKPOINT`` nor ``VACUUM`` shortens the file. Only a copy into a fresh file does.

So: settle the rollups, checkpoint, and compare the file's length with what DuckDB uses
(``pragma_database_size``: blocks in use x block size). When enough is unused, copy the whole
database (``COPY FROM DATABASE``) into a temporary file beside it, check that every table holds
the same rows in the same order (count and an order-sensitive hash of every row) and the same
definition, then rename the copy over the original. The original stays untouched until that
rename, and nobody can open the file in between (one process owns it, and the registry lock
keeps this process's own sessions out), so an interrupted run loses nothing.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lib import store as stores

HEADER_BYTES = 3 * 4096
"""DuckDB's file starts with one main header and two database headers of 4 KiB each."""
MIN_SHARE = 0.05
"""Copy only when at least this share of the file is unused (or ``force``)."""


@dataclass(frozen=True)
class MaintainReport:
    path: Path
    size_before: int
    size_after: int
    used_bytes: int
    copied: bool

    @property
    def reclaimed(self) -> int:
        return self.size_before - self.size_after

    def describe(self) -> str:
        mb = 1e6
        if not self.copied:
            return (
                f"{self.path}: {self.size_before / mb:,.1f} MB, of which DuckDB uses "
                f"{self.used_bytes / mb:,.1f} MB; less than {MIN_SHARE:.0%} to reclaim, so the "
                "file was left as it is."
            )
        return (
            f"{self.path}: reclaimed {self.reclaimed / mb:,.1f} MB ({self.size_before / mb:,.1f} MB "
            f"-> {self.size_after / mb:,.1f} MB); every table was checked against the original "
            "before the copy replaced it."
        )


def usage(cur: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, int]:
    """(file length, bytes DuckDB uses) after a checkpoint: the difference can be reclaimed."""
    cur.execute("CHECKPOINT")
    block_size, used = cur.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()[0]
    return path.stat().st_size, HEADER_BYTES + int(block_size) * int(used)


def maintain(path: str | os.PathLike[str], force: bool = False) -> MaintainReport:
    """Settle, checkpoint and, when worth it (or ``force``), compact the store at ``path``."""
    path = Path(path).expanduser().resolve()
    store = stores.open_store(path, create=False)  # the usual checks: ours, not in use
    if store.read_only:
        raise stores.StoreUnwritable(f"{path} is read-only here; it cannot be compacted.")
    while store.settle():
        pass
    with store.cursor() as cur:
        before, used = usage(cur, path)
    if not force and before - used < MIN_SHARE * before:
        return MaintainReport(path, before, before, used, copied=False)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with stores._registry_lock:  # no session of this process opens the file meanwhile
            stores.release(path)
            _copy(path, tmp)
            if path.with_name(path.name + ".wal").exists():
                raise stores.StoreError(
                    f"{path} still has a write-ahead log after closing; it was left unchanged."
                )
            os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    stores.inspect_file(path)  # the copy opens as a store of ours
    return MaintainReport(path, before, path.stat().st_size, used, copied=True)


def _copy(path: Path, tmp: Path) -> None:
    """Copy the database into ``tmp`` and prove the copy equal, table by table."""
    con = stores._connect(path, read_only=False)
    try:
        source = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute("ATTACH ? AS dtd_fresh", [str(tmp)])
        con.execute(f'COPY FROM DATABASE "{source}" TO dtd_fresh')
        tables = _tables(con, source)
        if tables != _tables(con, "dtd_fresh"):
            raise stores.StoreError(f"The copy of {path} has other tables; the file was kept.")
        for table in tables:
            original = _rows(con, source, table)
            if _rows(con, "dtd_fresh", table) != original:
                raise stores.StoreError(
                    f"The copy of {path} differs in table {table}; the file was left unchanged."
                )
        con.execute("DETACH dtd_fresh")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, str]:
    """Table name -> its CREATE statement (columns, types and constraints)."""
    rows = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
        [database],
    ).fetchall()
    return {name: sql for name, sql in rows}


def _rows(con: duckdb.DuckDBPyConnection, database: str, table: str) -> tuple:
    """Row count and an order-sensitive hash of every row (rowid with the whole row)."""
    # Names come from duckdb_tables() of our own file, quoted; nothing from outside.
    return con.execute(
        f'SELECT count(*), sum(hash(rowid, t)) FROM "{database}".main."{table}" t'  # noqa: S608
    ).fetchall()[0]
