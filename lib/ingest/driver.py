"""Ingesting files: one transaction per file, a report per file, nothing half-written.

``ingest_paths`` is the one code path behind ``dtd ingest``, the Data page's upload area, the
watched inbox and the Python API: expand paths, detect each format, parse into a ``Sink`` inside
a transaction, and turn every problem into a ``FileReport`` with a precise message.

Problems belong to what has them. A file that is not its format at all (not XML, the wrong root
element, no header, ...) fails and leaves the store exactly as it was; the others still go in.
A record that is bad (a negative duration, a status no one can read) is left out and listed in
the report (``rejected``, ``problems``) while the file's other records go in (status
"partial"); a record that lacks something the report can stand in for (a name, a time) goes in
with the stand-in and a warning. ``IngestOptions.strict`` turns any of these into the file's
error, so the file goes in completely or not at all.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lib.ingest.formats import ASV_METADATA, INGESTIBLE_SUFFIXES, detect
from lib.ingest.model import IngestError, Source
from lib.ingest.options import IngestOptions
from lib.ingest.sink import Sink
from lib.store import Store, StoreError

log = logging.getLogger(__name__)


@dataclass
class FileReport:
    """What happened to one file (the ``--json`` output of ``dtd ingest``)."""

    path: str
    format: str | None
    results: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    measurements: int = 0
    added: int = 0
    """Results that were new to the store (0 when the file was ingested before)."""
    rejected: int = 0
    """Records left out because they were bad (the others went in)."""
    warnings: int = 0
    """Records (or suites) stored with a stand-in for what they lacked."""
    problems: list[dict] = field(default_factory=list)
    """The first ``MAX_LISTED`` problems: where, problem, fix, outcome (rejected / kept)."""
    status: str = "ok"
    """ok: every record went in; partial: some were rejected; error: nothing went in."""
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileReport]]:
    """Files, folders (recursively, ingestible extensions only) and globs, in a stable order."""
    files: list[Path] = []
    missing: list[FileReport] = []
    for raw in paths:
        text = str(raw)
        matches = (
            [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if glob.has_magic(text)
            else [Path(text)]
        )
        if not matches or not any(m.exists() for m in matches):
            missing.append(
                FileReport(text, None, status="error", error=f"{text}: no such file or folder")
            )
            continue
        for match in matches:
            if match.is_dir():
                files.extend(
                    p
                    for p in sorted(match.rglob("*"))
                    if p.is_file()
                    and p.suffix.lower() in INGESTIBLE_SUFFIXES
                    and p.name not in ASV_METADATA
                    and not p.name.startswith(".")
                )
            elif match.is_file():
                files.append(match)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, missing


def ingest_source(store: Store, source: Source, options: IngestOptions | None = None) -> FileReport:
    """Ingest one file or upload in a transaction of its own."""
    options = options or IngestOptions()
    started = time.perf_counter()
    report = FileReport(source.name, None)
    try:
        if source.size > options.max_bytes:
            raise IngestError(
                source.name,
                f"is {source.size / 1e6:,.1f} MB, over the limit of {options.max_bytes / 1e6:,.0f} MB",
                "Raise DTD_MAX_INGEST_MB, or split the file.",
            )
        fmt = detect(source)
        report.format = fmt.name
        parse = fmt.parser()
        with store.transaction() as cur:
            sink = Sink(
                cur, fmt.name, source.name, options.chunk_size, options.defaults, options.strict
            )
            parse(source, sink, options)
            counts = sink.finish()
        fill(report, counts)
    except IngestError as exc:
        report.status, report.error = "error", str(exc)
    except StoreError as exc:
        report.status, report.error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not become a traceback
        log.debug("ingest of %s failed", source.name, exc_info=True)
        report.status = "error"
        report.error = (
            f"{source.name}: could not be read as {report.format or 'any format'} "
            f"({type(exc).__name__}: {exc})"
        )
    report.seconds = time.perf_counter() - started
    return report


def fill(report: FileReport, counts: dict) -> None:
    """A report from ``Sink.finish``'s counts: partial when records were left out."""
    for key, value in counts.items():
        setattr(report, key, value)
    report.status = "partial" if report.rejected else "ok"


def ingest_paths(
    store: Store,
    paths: Iterable[str | Path],
    options: IngestOptions | None = None,
    progress: Callable[[int, int, FileReport], None] | None = None,
) -> list[FileReport]:
    """Ingest files, folders and globs; every file gets a report, in order."""
    files, reports = expand(paths)
    for index, path in enumerate(files, start=1):
        report = ingest_source(store, Source.from_path(path), options)
        reports.append(report)
        if progress:
            progress(index, len(files), report)
    return reports


def ingest_bytes(
    store: Store, name: str, data: bytes, options: IngestOptions | None = None
) -> FileReport:
    """Ingest an upload (the Data page) or a request body (the API)."""
    return ingest_source(store, Source.from_bytes(name, data), options)
