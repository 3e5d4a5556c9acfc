"""The one owner of the DuckDB file: opening, checking, migrating, cursors and transactions.

DuckDB lets one process hold a file read-write, and a connection must not be shared by threads
(docs/architecture.md, "Decisions"). So each process keeps one connection per file here, hands out a
fresh cursor for every unit of work (cheap: about 0.3 ms), and serialises writes with a lock.
Everything that can go wrong while opening becomes a ``StoreError`` whose message says what is
wrong, where, and what to do; a file this dashboard did not create is never written to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lib import rollups, schema

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A database problem explained for people; ``str(error)`` is the whole message."""


class StoreLocked(StoreError):
    pass


class StoreUnwritable(StoreError):
    pass


class NotAStore(StoreError):
    """The file is corrupt, not DuckDB at all, or a DuckDB file of someone else's."""


class StoreTooNew(StoreError):
    pass


_ELSEWHERE = "set DTD_DB (or [dtd] db in .streamlit/secrets.toml, or --db) to another path"
_POINT_AT_ANOTHER = "S" + _ELSEWHERE[1:]


def _explain_duckdb_error(path: Path, exc: Exception) -> StoreError:
    text = str(exc)
    if "Conflicting lock" in text or "Could not set lock" in text:
        pid = re.search(r"PID (\d+)", text)
        holder = f" (PID {pid.group(1)})" if pid else ""
        return StoreLocked(
            f"The results database {path} is in use by another process{holder}. DuckDB lets one "
            "process at a time open a file: stop that process, reach the data through it (the "
            f"dashboard server), or {_ELSEWHERE}."
        )
    if "not a valid DuckDB database" in text or "Invalid Input Error" in text:
        size = path.stat().st_size if path.exists() else 0
        what = "an empty file (0 bytes)" if size == 0 else f"not a DuckDB database ({size:,} bytes)"
        return NotAStore(
            f"{path} is {what}, so it cannot be a results database. It was left unchanged. "
            f"{_POINT_AT_ANOTHER}, or move the file away."
        )
    if "version number" in text or "newer version" in text or "storage version" in text:
        return NotAStore(
            f"{path} was written by a DuckDB release this dashboard cannot read ({text}). "
            "Open it with the DuckDB version that wrote it and export it, or "
            f"{_ELSEWHERE}."
        )
    if "Permission denied" in text or "Read-only file system" in text:
        return StoreUnwritable(
            f"Cannot write the results database {path}: permission denied. {_POINT_AT_ANOTHER} "
            "that this user can write."
        )
    return StoreError(f"Cannot open the results database {path}: {text}. {_POINT_AT_ANOTHER}.")


_DUCKDB_MAGIC = b"DUCK"
"""Bytes 8-11 of every DuckDB database file."""
_OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""DuckDB would otherwise download an extension to read, say, a SQLite file."""


def _check_magic(path: Path) -> None:
    """Refuse what is plainly not a DuckDB file before DuckDB tries to make sense of it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise StoreUnwritable(
            f"Cannot read the results database {path} ({exc.strerror or exc}). Give this user "
            f"read access, or {_ELSEWHERE}."
        ) from None
    if len(head) == 0:
        what = "an empty file (0 bytes)"
    elif head.startswith(b"SQLite format 3"):
        what = "a SQLite database, not a DuckDB one"
    elif head[8:12] != _DUCKDB_MAGIC:
        what = f"not a DuckDB database ({path.stat().st_size:,} bytes)"
    else:
        return
    raise NotAStore(
        f"{path} is {what}, so it cannot be a results database. It was left unchanged. "
        f"{_POINT_AT_ANOTHER}, or move the file away."
    )


DEFAULT_MEMORY_LIMIT = "512MB"
"""DuckDB's buffer pool for this process (DTD_MEMORY_LIMIT overrides): its default, 80 % of the
machine, would let a server on a shared host grow to gigabytes caching pages. Operators spill
to disk beyond it."""


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    limit = os.environ.get("DTD_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=_OFFLINE)
    except duckdb.Error as exc:
        raise _explain_duckdb_error(path, exc) from None
    try:
        con.execute("SET memory_limit = ?", [limit])
    except duckdb.Error:
        con.close()
        raise StoreError(
            f"DTD_MEMORY_LIMIT={limit!r} is not a memory size DuckDB understands; write it like "
            "512MB or 2GB."
        ) from None
    return con


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:
        raise StoreUnwritable(
            f"Cannot look at {path} ({exc.strerror or exc}): the folder {path.parent} is not "
            f"readable by this user. {_POINT_AT_ANOTHER}."
        ) from None


@dataclass(frozen=True)
class FileInfo:
    """What a read-only look at an existing store found."""

    meta: dict[str, str]
    results: int

    @property
    def version(self) -> int:
        return int(self.meta["schema_version"])


def inspect_file(path: str | os.PathLike[str]) -> FileInfo:
    """Look at an existing store without writing; refuse anything this dashboard did not create."""
    path = Path(path).expanduser().resolve()
    with _registry_lock:
        held = _registry.get(path)
    if held is not None:
        with held.cursor() as cur:
            return FileInfo(
                held.meta(), cur.execute("SELECT count(*) FROM results").fetchall()[0][0]
            )
    if path.is_dir():
        raise NotAStore(f"{path} is a directory, not a database file. {_POINT_AT_ANOTHER}.")
    _check_magic(path)
    con = _connect(path, read_only=True)
    try:
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if "dtd_meta" not in tables:
            listed = ", ".join(sorted(tables)[:8]) or "no tables at all"
            raise NotAStore(
                f"{path} is a DuckDB database, but not one this dashboard created (it holds "
                f"{listed}). It was left unchanged. {_POINT_AT_ANOTHER}."
            )
        meta = dict(con.execute("SELECT key, value FROM dtd_meta").fetchall())
        results = con.execute("SELECT count(*) FROM results").fetchall()[0][0]
    finally:
        con.close()
    if meta.get("application_id") != schema.APPLICATION_ID:
        raise NotAStore(
            f"{path} has a dtd_meta table but no application id of this dashboard; it was left "
            f"unchanged. {_POINT_AT_ANOTHER}."
        )
    version = meta.get("schema_version", "")
    if not version.isdigit():
        raise NotAStore(
            f"{path} records an unreadable schema version ({version!r}); it was left unchanged. "
            f"{_POINT_AT_ANOTHER}."
        )
    if int(version) > schema.SCHEMA_VERSION:
        raise StoreTooNew(
            f"{path} uses schema version {version}, newer than this dashboard understands "
            f"(up to {schema.SCHEMA_VERSION}). Upgrade the dashboard; the file was left unchanged."
        )
    return FileInfo(meta, results)


def prepare_folder(path: Path) -> None:
    """Make sure a new database can be written at ``path``, or say why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.probe")
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise StoreUnwritable(
            f"Cannot create the results database {path}: the folder {path.parent} is not "
            f"writable ({exc.strerror or exc}). {_POINT_AT_ANOTHER} that this user can write."
        ) from None


def create_file(path: str | os.PathLike[str], fill: Callable[[Store], None] | None = None) -> None:
    """Build a new store under a temporary name, let ``fill`` write to it, rename it into place.

    Nobody ever sees half a file. If this process holds a store at ``path`` (an earlier demo),
    its handle is closed and the file replaced while the registry is locked, so no session can
    open the old file in between.
    """
    path = Path(path).expanduser().resolve()
    prepare_folder(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    con = _connect(tmp, read_only=False)
    try:
        con.execute("BEGIN TRANSACTION")
        schema.migrate(con, 0)
        con.execute("COMMIT")
        if fill is not None:
            building = Store(tmp, con, read_only=False)
            building.settle_in_background = False
            fill(building)
            building.settle()
        con.close()
        with _registry_lock:
            held = _registry.pop(path, None)
            if held is not None:
                held.closed = True  # its background workers stop; no settle: it is replaced
                locked = held._write_lock.acquire(timeout=30)  # a writer or settle finishes
                try:
                    held._released = True
                    held._con.close()
                finally:
                    if locked:
                        held._write_lock.release()
            os.replace(tmp, path)
    finally:
        con.close()
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


class Store:
    """One process's handle on one results database."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._con = con
        self._write_lock = threading.Lock()
        self.settle_in_background = True
        """Bulk writes leave their rollups to a background thread (``settle``); a store being
        built by ``create_file`` settles in its own time instead."""
        self._released = False
        self._settler: threading.Thread | None = None
        self._settle_wanted = False
        self._settler_lock = threading.Lock()
        self._opened = uuid.uuid4().hex[:12]
        self.data_version = 0
        """Counts committed writes in this process; part of every cache key."""
        self.closed = False
        """Set by ``close``: background workers holding this store stop."""

    @property
    def cache_token(self) -> str:
        """Changes whenever the data may have changed, so cached answers are never stale."""
        return f"{self.path}|{self._opened}|{self.data_version}"

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one unit of reading work, safe in any thread."""
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All of it or none of it; one writer at a time inside this process."""
        if self.read_only:
            raise StoreUnwritable(f"The results database {self.path} is open read-only.")
        with self._write_lock, self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                before = rollups.marks(cur)
                yield cur
                behind = rollups.keep_up(cur, before)  # rollups commit with the rows, or settle
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            self.data_version += 1
        if behind and self.settle_in_background:
            self._settle_soon()

    def settle(self) -> bool:
        """Bring rollups left behind by a bulk write up to date now (``lib.rollups.settle``);
        False when there was nothing to do."""
        if self.read_only:
            return False
        with self._write_lock:
            if self._released:
                return False
            with self.cursor() as cur:
                return self._settle_in(cur)

    def _settle_in(self, cur: duckdb.DuckDBPyConnection) -> bool:
        cur.execute("BEGIN TRANSACTION")
        try:
            done = rollups.settle(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        if done:
            self.data_version += 1
        return done

    def _settle_soon(self) -> None:
        """One background thread at a time settles; readers stay exact meanwhile. The thread
        looks for more work under the same lock before it ends, so no request is lost."""
        with self._settler_lock:
            self._settle_wanted = True
            if self._settler is None:
                self._settler = threading.Thread(
                    target=self._settle_quietly, name="dtd-rollups", daemon=True
                )
                self._settler.start()

    def _settle_quietly(self) -> None:
        while True:
            with self._settler_lock:
                if not self._settle_wanted or self.closed:
                    self._settler = None
                    return
                self._settle_wanted = False
            try:
                while not self.closed and self.settle():
                    pass
            except Exception:  # noqa: BLE001 - readers stay exact; close and the next open retry
                log.exception("rolling up %s failed; retried when the store is closed", self.path)

    def meta(self) -> dict[str, str]:
        with self.cursor() as cur:
            return dict(cur.execute("SELECT key, value FROM dtd_meta").fetchall())

    def set_meta(self, cur: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
        """Record facts about the file (inside the caller's transaction)."""
        for key, value in values.items():
            cur.execute("INSERT OR REPLACE INTO dtd_meta VALUES (?, ?)", [key, str(value)])

    def close(self) -> None:
        if not self.read_only and not self._released:
            # The file never stays behind when this process lets go; settled while still
            # registered, so nobody opens the file a second time meanwhile.
            try:
                self.settle()
            except Exception:  # noqa: BLE001 - readers stay exact; the next open retries
                log.exception("rolling up %s before closing failed", self.path)
        with _registry_lock:
            if _registry.get(self.path) is self:
                del _registry[self.path]
        self.closed = True  # background workers stop at their next check
        # A writer finishing its transaction holds the write lock: let it commit first.
        locked = self._write_lock.acquire(timeout=30)
        try:
            for _ in range(200):  # a reader's query on a cursor finishes first (up to 10 s)
                try:
                    self._con.close()
                    self._released = True
                    return
                except Exception as exc:  # noqa: BLE001 - DuckDB's "busy" is no duckdb.Error
                    if "already closed" in str(exc):
                        self._released = True
                        return
                    if "busy" not in str(exc):
                        raise
                    time.sleep(0.05)
            self._con.close()
        finally:
            if locked:
                self._write_lock.release()


_registry: dict[Path, Store] = {}
_registry_lock = threading.RLock()


def is_open(path: str | os.PathLike[str]) -> bool:
    """Whether this process holds the store at ``path``."""
    with _registry_lock:
        return Path(path).expanduser().resolve() in _registry


def open_store(path: str | os.PathLike[str], create: bool = True) -> Store:
    """This process's store for ``path``, opened (and created or migrated) on first use."""
    path = Path(path).expanduser().resolve()
    with _registry_lock:  # re-entrant: inspect_file and create_file take it too
        store = _registry.get(path)
        if store is not None:
            return store
        if _exists(path):
            version = inspect_file(path).version
        elif create:
            create_file(path)
            version = schema.SCHEMA_VERSION
        else:
            raise StoreError(
                f"There is no results database at {path}. Create one with "
                f"`dtd demo --db {path}`, or {_ELSEWHERE}."
            )
        # DuckDB writes a .wal file beside the database: the folder must be writable too.
        read_only = not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
        if read_only and version < schema.SCHEMA_VERSION:
            raise StoreUnwritable(
                f"{path} uses schema version {version} and needs an upgrade to "
                f"{schema.SCHEMA_VERSION}, but it cannot be written here. Make it and its folder "
                "writable once."
            )
        con = _connect(path, read_only=read_only)
        if version < schema.SCHEMA_VERSION:
            try:
                con.execute("BEGIN TRANSACTION")
                schema.migrate(con, version)
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                con.close()
                raise StoreError(
                    f"Upgrading {path} from schema {version} to {schema.SCHEMA_VERSION} failed "
                    f"({str(exc).splitlines()[0]}); the file was left at version {version}."
                ) from None
        store = Store(path, con, read_only)
        _registry[path] = store
        if not read_only:
            with store.cursor() as cur:
                behind = rollups.pending(cur) is not None
            if behind:  # a process stopped before its rollups were up to date
                store._settle_soon()
        return store


def release(path: str | os.PathLike[str]) -> None:
    """Close this process's handle on ``path``, if it has one."""
    with _registry_lock:
        store = _registry.get(Path(path).expanduser().resolve())
    if store is not None:
        store.close()


def close_all() -> None:
    """Release every file this process holds (tests, and the CLI before it exits)."""
    for store in list(_registry.values()):
        store.close()
