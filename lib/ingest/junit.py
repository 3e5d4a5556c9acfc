"""JUnit XML from pytest, Maven Surefire, Jest, Go (gotestsum, go-junit-report) and ScalaTest.

Read as a stream (``iterparse``; each test case is dropped once read, so memory stays bounded)
through defusedxml, which refuses entity declarations and external entities: no billion laughs,
no file disclosure. Facts from the wild (DESIGN.md section 6):

- suites nest, and properties of an enclosing suite apply to everything inside it;
- one ``<testcase>`` can hold several outcome elements: failure, then error, then skipped decide,
  and a lone ``<flakyFailure>`` / ``<rerunFailure>`` means it passed on a retry;
- the same classname and name can occur several times in one file: each is a result of its own;
- ``time`` may carry a unit ("0.100s") or thousands separators, or be absent;
- ``timestamp`` comes in many forms (``2021-03-07T10:36:56 UTC`` from Surefire, fractional
  seconds, offsets, no zone at all: ``lib.ingest.model.read_timestamp``);
- names can be empty (jest writes ``<testcase classname="" name="">`` for some tests).

Problems belong to the test case (or suite) that has them: a test case with an unreadable
``time`` is left out and listed, the others go in; a test case without a name takes the nearest
name the report gives (its classname, its file, its testsuite, else its position) and an
unreadable ``timestamp`` the nearest readable time (its suite's, else the file's), each with a
warning. A file that is not well-formed XML, or not JUnit, fails as a whole.

Identity: a result's key is the file's content hash and the test case's position in the file,
so the same report ingested twice (or from a copy) adds nothing. A test's identity (its series)
is its suite (``classname``, else the testsuite's name) and name, plus the file or testsuite the
report puts it in (``_file``), so same-named tests in two files (jest, go-junit-report) are two
tests.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from lib.ingest.model import IngestError, Record, RunInfo, Source, WorkerInfo, read_timestamp
from lib.ingest.options import IngestOptions
from lib.ingest.sink import Sink

REJECTED_FIX = (
    "The report's other test cases went in. A corrected copy of this file would be a new run "
    "(every test case again), so fix what writes the report for the next runs."
)
MAX_MESSAGE = 4000
"""Characters of a failure message kept; full tracebacks belong in the CI log."""
_OUTCOMES = ("failure", "error", "skipped")
_RETRIED = ("flakyFailure", "flakyError", "rerunFailure", "rerunError")
_PROPERTY_FIELDS = {
    "hardware": "hardware",
    "platform": "hardware",
    "device": "device",
    "model": "model",
    "precision": "precision",
    "batch_size": "batch_size",
    "kind": "kind",
    "test_type": "kind",
}
_RUN_PROPERTIES = {
    "git_commit": "git_commit",
    "commit": "git_commit",
    "git_branch": "git_branch",
    "branch": "git_branch",
    "run": "run",
    "build": "run",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_time(text: str | None, where: str) -> float | None:
    """Seconds from "1.5", "0.100s", "1,234.5" or nothing; negative or NaN is an error."""
    if text is None or not text.strip():
        return None
    cleaned = text.strip().removesuffix("s").replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise IngestError(where, f"attribute time={text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise IngestError(where, f"attribute time={text!r} is not a finite number")
    if value < 0:
        raise IngestError(where, f"attribute time={text!r} is negative")
    return value


def _message(element: Element) -> str | None:
    text = element.get("message") or (element.text or "").strip()
    kind = element.get("type")
    if kind and text and not text.startswith(kind):
        text = f"{kind}: {text}"
    text = text or kind
    return text[:MAX_MESSAGE] if text else None


class _Suite:
    """A testsuite being read: what it contributes to the test cases inside it."""

    def __init__(
        self, element: Element, parent: _Suite | None, where: str, sink: Sink, file_time: datetime
    ) -> None:
        inherited = parent.properties if parent else {}
        self.properties: dict[str, str] = dict(inherited)
        self.name = element.get("name") or (parent.name if parent else None)
        self.file = element.get("file") or (parent.file if parent else None)
        self.hostname = element.get("hostname") or (parent.hostname if parent else None)
        self.start = parent.start if parent else None
        stamp = element.get("timestamp")
        if stamp and stamp.strip():
            moment = read_timestamp(stamp)
            if moment is None:
                fallback = "its enclosing suite's time" if self.start else "the file's time"
                sink.warn(
                    where,
                    f"timestamp={stamp!r} is not a time dtd can read",
                    f"Its test cases are dated by {fallback} "
                    f"({(self.start or file_time):%Y-%m-%d %H:%M:%S} UTC).",
                )
            else:
                self.start = moment
        self.elapsed = 0.0


def parse(source: Source, sink: Sink, options: IngestOptions) -> None:
    digest = source.sha256
    fallback = (
        datetime.fromtimestamp(source.path.stat().st_mtime, UTC).replace(tzinfo=None)
        if source.path
        else datetime.now(UTC).replace(tzinfo=None)
    )
    sink.reject_fix = REJECTED_FIX
    suites: list[_Suite] = []
    root_name: str | None = None
    index = 0
    seen_root = False
    case: dict | None = None
    with source.open() as handle:
        events = iterparse(
            handle,
            events=("start", "end"),
            forbid_dtd=False,
            forbid_entities=True,
            forbid_external=True,
        )
        try:
            for event, element in events:
                tag = _local(element.tag)
                if not seen_root:
                    seen_root = True
                    if tag not in ("testsuites", "testsuite"):
                        raise IngestError(
                            source.name,
                            f"root element is <{tag}>, not <testsuites> or <testsuite>",
                            "Only JUnit XML reports are read.",
                        )
                    root_name = element.get("name")
                if event == "start":
                    if tag == "testsuite":
                        suites.append(
                            _Suite(
                                element,
                                suites[-1] if suites else None,
                                f"{source.name} testsuite {element.get('name')!r}",
                                sink,
                                fallback,
                            )
                        )
                    elif tag == "testcase":
                        index += 1
                        case = {"outcomes": [], "retried": False}
                    continue
                # end events
                if tag == "property" and suites:
                    name, value = element.get("name"), element.get("value")
                    if name and value is not None:
                        target = (
                            case.setdefault("properties", {})
                            if case is not None
                            else suites[-1].properties
                        )
                        target[name] = value
                elif case is not None and tag in _OUTCOMES:
                    case["outcomes"].append((tag, _message(element)))
                elif case is not None and tag in _RETRIED:
                    case["retried"] = True
                elif tag == "testcase":
                    try:
                        record = _record(
                            source, sink, digest, index, element, case, suites, root_name, fallback
                        )
                    except IngestError as exc:
                        sink.reject(exc.where, exc.problem, exc.fix)
                    else:
                        sink.add(record)
                    case = None
                    element.clear()
                elif tag == "testsuite":
                    suites.pop()
                    element.clear()
        except ParseError as exc:
            line, column = getattr(exc, "position", (None, None))
            raise IngestError(
                f"{source.name} line {line}, column {column}" if line else source.name,
                f"is not well-formed XML ({str(exc).split(':')[0]})",
                "The file may be truncated or not XML at all.",
            ) from None
        except DefusedXmlException as exc:
            raise IngestError(
                source.name,
                f"declares XML entities or external references ({type(exc).__name__}), which "
                "are refused: they can expand without bound or read local files",
                "JUnit reports never need them.",
            ) from None
    if not seen_root:
        raise IngestError(source.name, "holds no XML elements")


_RUN_STAMP = re.compile(r"-\d{14}$")
"""unittest-xml-reporting appends the run's time (``-20210307103656``) to every testsuite name."""


def _file(element: Element, suite: _Suite | None, test_suite: str | None) -> str | None:
    """The file or testsuite a test case is in, as part of its identity.

    The innermost named testsuite (a jest test file, a Go package, a PHPUnit class; without
    unittest-xml-reporting's run-time suffix), else the test case's or testsuite's ``file``
    attribute (with backslashes as slashes). File attributes come second because pytest's point to
    where a test function is defined, which can be an installed package's path. None when it
    says no more than the suite already does (Surefire, gotestsum, ScalaTest), so those tests
    keep the identity they always had.
    """
    text = _RUN_STAMP.sub("", suite.name.strip()) if suite and suite.name else ""
    if not text:
        path = element.get("file") or (suite.file if suite else None) or ""
        text = path.strip().replace("\\", "/")
    if not text or text == test_suite:
        return None
    return text


def _place(index: int, element: Element, suite: _Suite | None) -> str:
    """Where a test case is, for people: its position, names and testsuite."""
    names = f"{element.get('classname') or ''}::{element.get('name') or ''}"
    inside = f" in testsuite {suite.name!r}" if suite and suite.name else ""
    return f"test case {index} ({names}){inside}"


def _name(sink: Sink, where: str, index: int, element: Element, suite: _Suite | None) -> str:
    """The test case's name, or the nearest name the report gives, with a warning."""
    name = (element.get("name") or "").strip()
    if name:
        return element.get("name") or ""
    candidates = (
        ("its classname", element.get("classname")),
        ("its file", element.get("file")),
        ("its testsuite's name", suite.name if suite else None),
        ("its testsuite's file", suite.file if suite else None),
    )
    said, stand_in = next(
        ((what, text.strip()) for what, text in candidates if text and text.strip()),
        ("its position in the file", f"test case {index}"),
    )
    sink.warn(
        where,
        f"has no name (name={element.get('name')!r})",
        f"Stored under {said}, {stand_in!r}; name the test in the report to keep it apart "
        "from others stored there.",
    )
    return stand_in


def _record(
    source: Source,
    sink: Sink,
    digest: str,
    index: int,
    element: Element,
    case: dict,
    suites: list[_Suite],
    root_name: str | None,
    fallback: datetime,
) -> Record:
    suite = suites[-1] if suites else None
    place = _place(index, element, suite)
    where = f"{source.name} {place}"
    duration = parse_time(element.get("time"), where)
    name = _name(sink, where, index, element, suite)
    properties = dict(suite.properties if suite else {})
    properties.update(case.get("properties", {}))

    status, message = "passed", None
    for wanted, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        found = [m for tag, m in case["outcomes"] if tag == wanted]
        if found:
            status, message = label, found[0]
            break

    ts = None
    stamp = element.get("timestamp")
    if stamp and stamp.strip():
        ts = read_timestamp(stamp)
    if ts is None:
        ts = suite.start + timedelta(seconds=suite.elapsed) if suite and suite.start else fallback
        if stamp and stamp.strip():
            sink.warn(
                where,
                f"timestamp={stamp!r} is not a time dtd can read",
                f"Dated by {'its suite' if suite and suite.start else 'the file'} instead "
                f"({ts:%Y-%m-%d %H:%M:%S} UTC).",
            )
    if suite:
        suite.elapsed += duration or 0.0
    fields = {
        ours: properties[theirs]
        for theirs, ours in _PROPERTY_FIELDS.items()
        if properties.get(theirs)
    }
    batch = fields.pop("batch_size", None)
    run_fields = {
        ours: properties[theirs]
        for theirs, ours in _RUN_PROPERTIES.items()
        if properties.get(theirs)
    }
    hostname = (suite.hostname if suite else None) or element.get("hostname")
    test_suite = element.get("classname") or (suite.name if suite else None)
    return Record(
        key=(digest, index),
        name=name,
        suite=test_suite,
        file=_file(element, suite, test_suite),
        ts=ts,
        status=status,
        duration_s=duration,
        message=message
        if status != "passed"
        else ("passed after a retry" if case["retried"] else None),
        batch_size=int(batch) if batch and batch.isdigit() else None,
        run=RunInfo(
            key=run_fields.get("run") or digest,
            name=run_fields.get("run") or root_name or source.name.rsplit("/", 1)[-1],
            started_at=suites[0].start if suites and suites[0].start else None,
            git_commit=run_fields.get("git_commit"),
            git_branch=run_fields.get("git_branch"),
        ),
        worker=WorkerInfo(hostname, hostname=hostname) if hostname else None,
        where=place,
        **fields,
    )
