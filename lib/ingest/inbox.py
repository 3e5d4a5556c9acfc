"""A watched inbox folder: drop a result file in, it is ingested, then moved out of the way.

A file that went in moves to ``processed/``; one that did not moves to ``failed/`` with
``<name>.error.txt`` beside it saying why: nothing is lost, nothing is ingested twice. A file
that went in with records left out or stored with stand-ins gets ``<name>.problems.txt``
beside it in ``processed/``, listing them. A file is
taken only once its size and modification time have held still for one scan, so a file still
being copied in is left alone; names starting with "." or ending in .tmp / .part are never taken
(write under such a name, then rename, to be safe). Only the process that owns the database may
watch: the dashboard (``DTD_INBOX`` / ``[dtd] inbox``) or ``dtd inbox``.
"""

from __future__ import annotations

import logging
import shutil
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

    def _candidates(self) -> list[Path]:
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and not p.name.lower().endswith(_IGNORED_SUFFIXES)
        )

    def scan(self, settle: bool = True) -> list[FileReport]:
        """Ingest every file that is complete; ``settle=False`` takes files at once (tests, CLI)."""
        reports = []
        current = {}
        for path in self._candidates():
            try:
                stat = path.stat()
            except FileNotFoundError:  # moved away meanwhile
                continue
            current[path] = (stat.st_size, stat.st_mtime)
            if settle and self._seen.get(path) != current[path]:
                continue  # new or still changing: look again next scan
            reports.append(self._take(path))
        self._seen = {p: sig for p, sig in current.items() if p.exists()}
        return reports

    def _take(self, path: Path) -> FileReport:
        report = ingest_source(self.store, Source.from_path(path), self.options)
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
