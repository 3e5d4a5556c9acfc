"""What every parser produces and what can go wrong, independent of any file format.

A parser turns one source (a file or uploaded bytes) into ``Record`` objects and hands them to a
``Sink``; it names where each record came from (``where``) so that a bad value can be reported as
"junit.xml line 34, attribute time: ...". Identity is explicit: ``Record.key`` holds what makes a
result unique inside its format (never the file's path), so the same data ingested twice, or
from a copy of the file, adds nothing.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO


class IngestError(Exception):
    """A problem with the input, said for people: where it is, what is wrong, what to do."""

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"{where}: {problem}" + (f" {fix}" if fix else ""))


MAX_LISTED = 100
"""Problems listed per file (all are counted): enough to fix a report, short enough to read."""


@dataclass(frozen=True)
class Problem:
    """Something wrong with one record (or one element that several records share).

    ``outcome`` says what became of it: "rejected" (left out; the rest of the file went in) or
    "kept" (stored as ``fix`` says, e.g. under its suite's name or with the file's time).
    """

    where: str
    problem: str
    fix: str
    outcome: str

    def as_dict(self) -> dict[str, str]:
        return {
            "where": self.where,
            "problem": self.problem,
            "fix": self.fix,
            "outcome": self.outcome,
        }

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" + (f" {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class MetricDef:
    """A metric a format reports: stored once with its unit and direction, never guessed later."""

    name: str
    unit: str
    direction: str  # "higher", "lower" or "none"
    description: str = ""


@dataclass(frozen=True)
class RunInfo:
    """The CI build or launch a result belongs to; ``key`` is its identity within the format."""

    key: str
    name: str | None = None
    started_at: datetime | None = None
    git_commit: str | None = None
    git_branch: str | None = None


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    hostname: str | None = None
    hardware: str | None = None
    device: str | None = None
    os: str | None = None


@dataclass(slots=True)
class Record:
    """One result: a test case execution or a benchmark measurement."""

    key: tuple
    """What makes this result unique within its format (with the format's name it gives the id)."""
    name: str
    ts: datetime | None
    """Start time, naive UTC (``to_utc`` converts)."""
    kind: str | None = None
    """unit_test when neither the source nor the caller's defaults say otherwise."""
    status: str = "passed"
    suite: str | None = None
    duration_s: float | None = None
    message: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    model_family: str | None = None
    modality: str | None = None
    hardware: str | None = None
    device: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    """The file or testsuite the report puts the test in (part of its identity), if any."""
    run: RunInfo | None = None
    worker: WorkerInfo | None = None
    where: str = ""
    """Where in the source the record came from, for error messages ("line 34", "record 12")."""


def to_utc(moment: datetime) -> datetime:
    """Naive UTC from an aware datetime; a naive one is taken to be UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


_STAMP = re.compile(
    r"""(?P<date>\d{4}-\d{1,2}-\d{1,2})
        (?:(?:\s*T\s*|\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2})
            (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?
        \s*(?P<zone>Z|(?:UTC|GMT)?\s*[+-]\d{1,2}(?::?\d{2})?|UTC|GMT)?""",
    re.VERBOSE | re.IGNORECASE,
)
_ZONE = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
EARLIEST, LATEST = datetime(1970, 1, 1), datetime(2200, 1, 1)
"""Times outside these years are placeholders (.NET writes 0001-01-01), not times."""
TIMESTAMP_FORMS = (
    "2025-01-31T12:00:00Z, 2025-01-31 12:00:00.123456, 2025-01-31T12:00:00+02:00, "
    "2021-03-07T10:36:56 UTC, or seconds since 1970"
)


def read_timestamp(text: str) -> datetime | None:
    """Naive UTC from the forms real report writers use, or None when the text is none of them.

    A date with or without a time; ``T`` or spaces between; seconds optional, with any number
    of fractional digits (after ``.`` or ``,``; beyond microseconds they are cut); a zone of
    ``Z``, ``UTC``, ``GMT``, ``+02:00``, ``+0200``, ``+02`` or ``UTC+02:00``, or none, which
    means UTC. A plain number is seconds since 1970 (milliseconds from 1e11 up). Years outside
    1970 to 2199 are refused: writers put 0001-01-01 where they know no time.
    """
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        number = float(text)
        try:
            moment = from_epoch(number, "ms" if number >= 1e11 else "s")
        except (OverflowError, OSError, ValueError):
            return None
        return moment if EARLIEST <= moment < LATEST else None
    found = _STAMP.fullmatch(text)
    if not found:
        try:  # the rest of ISO-8601 (basic format, week dates, ...)
            moment = to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
        return moment if EARLIEST <= moment < LATEST else None
    try:
        year, month, day = (int(part) for part in found["date"].split("-"))
        fraction = (found["fraction"] or "")[:6].ljust(6, "0")
        moment = datetime(
            year,
            month,
            day,
            int(found["hour"] or 0),
            int(found["minute"] or 0),
            int(found["second"] or 0),
            int(fraction),
        )
    except ValueError:  # month 13, hour 25, ...
        return None
    zone = found["zone"]
    if zone and zone.upper() not in ("Z", "UTC", "GMT"):
        sign, hours, minutes = _ZONE.fullmatch(zone).groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset > timedelta(hours=18):
            return None
        moment -= offset if sign == "+" else -offset
    return moment if EARLIEST <= moment < LATEST else None


def parse_timestamp(text: str, where: str) -> datetime:
    """``read_timestamp``, or a precise error naming the forms that are read."""
    moment = read_timestamp(text)
    if moment is None:
        raise IngestError(
            where,
            f"{text!r} is not a time dtd can read (for example {TIMESTAMP_FORMS})",
        )
    return moment


def from_epoch(value: float, unit: str = "s") -> datetime:
    """Naive UTC from seconds or milliseconds since the epoch."""
    seconds = value / 1000.0 if unit == "ms" else value
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


class Source:
    """One input: a file on disk or uploaded bytes, with a name for messages."""

    def __init__(self, name: str, path: Path | None = None, data: bytes | None = None) -> None:
        if (path is None) == (data is None):
            raise ValueError("a source is either a path or bytes")
        self.name, self.path, self._data = name, path, data
        self._sha256: str | None = None

    @classmethod
    def from_path(cls, path: Path) -> Source:
        return cls(str(path), path=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> Source:
        return cls(name, data=data)

    @property
    def size(self) -> int:
        return len(self._data) if self._data is not None else self.path.stat().st_size

    def open(self) -> BinaryIO:
        return io.BytesIO(self._data) if self._data is not None else self.path.open("rb")

    def head(self, size: int = 4096) -> bytes:
        with self.open() as handle:
            return handle.read(size)

    def read_bytes(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def read_text(self) -> str:
        """The whole source as UTF-8 text (BOM allowed), or where the bytes stop being UTF-8."""
        data = self.read_bytes()
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise IngestError(
                f"{self.name} line {line}",
                f"byte {exc.start} (0x{data[exc.start]:02x}) is not valid UTF-8",
                "Save the file as UTF-8.",
            ) from None

    def lines(self) -> Iterator[tuple[int, str]]:
        """Numbered UTF-8 lines, decoded one at a time (bounded memory)."""
        with self.open() as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise IngestError(
                        f"{self.name} line {number}",
                        f"byte {exc.start + 1} of the line is not valid UTF-8",
                        "Save the file as UTF-8.",
                    ) from None

    @property
    def sha256(self) -> str:
        """Content hash: the identity of a file whose records carry none of their own."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            with self.open() as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256
