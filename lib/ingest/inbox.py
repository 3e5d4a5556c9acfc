"""A watched inbox folder: drop a result file in, it is ingested, then moved out of the way.

A file that went in moves to ``processed/``; one that did not moves to ``failed/`` with
``<name>.error.txt`` beside it saying why: nothing is lost, nothing is ingested twice. A file
that went in with records left out or stored with stand-ins gets ``<name>.problems.txt``
beside it in ``processed/``, listing them. A file is
taken only once its size and modification time have held still for one scan, so a file still
being copied in is left alone; names starting with "." or ending in .tmp / .part are never taken
(write under such a name, then rename, to be safe). Only the process that owns the database may
watch: the dashboard (``DTD_INBOX`` / ``[dtd] inbox``) or ``dtd inbox``.

Only regular files are read. Whoever can drop files here could otherwise make this process read
what they cannot (``ln -s /etc/passwd inbox/passwd.csv``): symbolic links, named pipes, devices,
sockets and files with more than one hard link are refused unread and moved to ``failed/`` as
they are (a link stays a link), with an error text that names the kind of entry and nothing of
what it points to. A regular file is opened with ``O_NOFOLLOW``, checked again on the open
descriptor, and read through that descriptor, so swapping it for a link after the check reads
nothing else either.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from lib.ingest.driver import FileReport, ingest_source
from lib.ingest.model import Source
from lib.ingest.options import IngestOptions
from lib.store import Store

log = logging.getLogger(__name__)
PROCESSED, FAILED = "processed", "failed"
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".error.txt", ".problems.txt")


class Inbox:
    """One folder's scanner; ``scan`` is safe to call from one thread at a time."""

    def __init__(self, store: Store, folder: str | Path, options: IngestOptions | None = None):
        self.store = store
        self.folder = Path(folder).expanduser().resolve()
        self.options = options or IngestOptions()
        self._seen: dict[Path, tuple[int, float]] = {}
        for sub in (PROCESSED, FAILED):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)

    def _candidates(self) -> list[tuple[Path, os.stat_result]]:
        """Entries to take or refuse, with their own status (links are not followed)."""
        found = []
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith(".") or path.name.lower().endswith(_IGNORED_SUFFIXES):
                continue
            try:
                info = path.lstat()
            except FileNotFoundError:  # moved away meanwhile
                continue
            if not stat.S_ISDIR(info.st_mode):  # folders (processed/, failed/) are not entries
                found.append((path, info))
        return found

    def scan(self, settle: bool = True) -> list[FileReport]:
        """Ingest every file that is complete; ``settle=False`` takes files at once (tests, CLI)."""
        reports = []
        current = {}
        for path, info in self._candidates():
            refusal = _refusal(info)
            if refusal:
                reports.append(self._refuse(path, refusal))
                continue
            current[path] = (info.st_size, info.st_mtime)
            if settle and self._seen.get(path) != current[path]:
                continue  # new or still changing: look again next scan
            reports.append(self._take(path))
        self._seen = {p: sig for p, sig in current.items() if p.exists()}
        return reports

    def _take(self, path: Path) -> FileReport:
        try:
            handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return FileReport(str(path), None, status="error", error=f"{path.name}: vanished")
            kind = "a symbolic link" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
            return self._refuse(path, kind)
        try:
            refusal = _refusal(os.fstat(handle))  # what was opened, not what was looked at
            if refusal:
                return self._refuse(path, refusal)
            report = ingest_source(self.store, _source(path, handle), self.options)
        finally:
            os.close(handle)
        target_dir = self.folder / (FAILED if report.status == "error" else PROCESSED)
        target = _free_name(target_dir / path.name)
        shutil.move(str(path), target)
        report.path = str(target)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if report.status == "error":
            target.with_name(target.name + ".error.txt").write_text(
                f"{stamp}\n{path.name} was not ingested:\n{report.error}\n", encoding="utf-8"
            )
        elif report.problems:
            lines = [
                f"{'left out' if p['outcome'] == 'rejected' else 'kept'}: {p['where']}: "
                f"{p['problem']} {p['fix']}".rstrip()
                for p in report.problems
            ]
            listed = len(report.problems)
            if report.rejected + report.warnings > listed:
                lines.append(f"... the first {listed} of {report.rejected + report.warnings:,}")
            target.with_name(target.name + ".problems.txt").write_text(
                f"{stamp}\n{path.name} went in: {report.results:,} results, {report.rejected:,} "
                f"records left out, {report.warnings:,} warnings:\n" + "\n".join(lines) + "\n",
                encoding="utf-8",
            )
        log.info("inbox: %s -> %s", path.name, target)
        return report

    def _refuse(self, path: Path, kind: str) -> FileReport:
        """Move a non-regular entry to failed/ as it is (never read, never followed)."""
        reason = (
            f"{path.name}: refused unread: it is {kind}, not a regular file. The inbox reads "
            "regular files only (no symbolic links, named pipes, devices or files with several "
            "hard links); copy the file itself into the inbox."
        )
        target = _free_name(self.folder / FAILED / path.name)
        try:
            os.rename(path, target)  # renames the entry itself: a link is not followed
        except OSError as exc:
            log.warning("inbox: cannot move %s out of the way (%s)", path, exc)
            target = path
        else:
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            target.with_name(target.name + ".error.txt").write_text(
                f"{stamp}\n{reason}\n", encoding="utf-8"
            )
        log.warning("inbox: %s", reason)
        return FileReport(str(target), None, status="error", error=reason)


def _refusal(info: os.stat_result) -> str | None:
    """Why an entry is not read (None for a regular file with one link)."""
    mode = info.st_mode
    if stat.S_ISREG(mode):
        if info.st_nlink > 1:
            return f"a file with {info.st_nlink} hard links"
        return None
    for test, kind in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


_FD_PATHS = Path("/proc/self/fd")


def _source(path: Path, handle: int) -> Source:
    """The opened file as a source: read through its descriptor where the system offers that
    as a path (Linux), so the name can no longer be swapped for something else."""
    if _FD_PATHS.is_dir():
        return Source(str(path), path=_FD_PATHS / str(handle))
    return Source.from_path(path)


def _free_name(target: Path) -> Path:
    """``name``, or ``name.1``, ``name.2``... when a file of that name was handled before."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate


_watchers: dict[Path, threading.Thread] = {}
_watchers_lock = threading.Lock()


def watch(
    store: Store, folder: str | Path, interval_s: float = 2.0, options: IngestOptions | None = None
) -> threading.Thread:
    """Start (once per folder per process) a daemon thread that scans every ``interval_s``."""
    inbox = Inbox(store, folder, options)
    with _watchers_lock:
        running = _watchers.get(inbox.folder)
        if running is not None and running.is_alive():
            return running

        def loop() -> None:
            while True:
                try:
                    inbox.scan()
                except Exception:  # noqa: BLE001 - keep watching; the next scan may succeed
                    log.exception("inbox scan of %s failed", inbox.folder)
                time.sleep(interval_s)

        thread = threading.Thread(target=loop, name=f"dtd-inbox:{inbox.folder}", daemon=True)
        thread.start()
        _watchers[inbox.folder] = thread
        return thread
