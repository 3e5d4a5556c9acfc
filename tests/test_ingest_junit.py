"""JUnit XML: every real report in ../shared/data goes in with the right counts; bad XML does not."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from lib.ingest import IngestOptions, ingest_bytes, ingest_paths
from lib.ingest.junit import parse_time
from lib.ingest.model import IngestError
from tests.conftest import table_counts


def _expected(path: Path) -> Counter:
    """Count test cases and outcomes straight from the XML, by the documented precedence."""
    counts: Counter = Counter()
    for case in ET.parse(path).getroot().iter():
        if case.tag.rsplit("}", 1)[-1] != "testcase":
            continue
        children = {child.tag.rsplit("}", 1)[-1] for child in case}
        counts["results"] += 1
        if "failure" in children:
            counts["failed"] += 1
        elif "error" in children:
            counts["errors"] += 1
        elif "skipped" in children:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def test_every_real_report_goes_in_with_independent_counts(shared_data: Path, empty_store) -> None:
    files = sorted((shared_data / "junit_xml").rglob("*.xml"))
    assert len(files) == 16
    reports = ingest_paths(empty_store, [shared_data / "junit_xml"])
    assert [r.status for r in reports] == ["ok"] * len(files), [r.error for r in reports]
    total: Counter = Counter()
    for report in reports:
        expected = _expected(Path(report.path))
        got = {k: getattr(report, k) for k in ("results", "passed", "failed", "errors", "skipped")}
        assert got == {k: expected[k] for k in got}, report.path
        total.update(expected)
    assert total["results"] == 1533  # PROVENANCE.md: 1,533 test cases
    with empty_store.cursor() as cur:
        stored = dict(cur.execute("SELECT status, count(*) FROM results GROUP BY ALL").fetchall())
        hosts = {r[0] for r in cur.execute("SELECT worker_id FROM workers").fetchall()}
    assert stored == {
        s: n
        for s, n in (
            ("passed", total["passed"]),
            ("failed", total["failed"]),
            ("error", total["errors"]),
            ("skipped", total["skipped"]),
        )
        if n
    }
    # Eleven horovod containers, each its own worker, plus the two named hosts.
    assert {"Jason", "fv-az60"} <= hosts and len(hosts) == 13


def test_details_of_one_report_survive(shared_data: Path, empty_store) -> None:
    path = shared_data / "junit_xml" / "hishtory_go_gotestsum" / "unit-tests.xml"
    [report] = ingest_paths(empty_store, [path])
    root = ET.parse(path).getroot()
    failing = next(c for c in root.iter("testcase") if c.find("failure") is not None)
    with empty_store.cursor() as cur:
        row = cur.execute(
            """SELECT r.status, r.duration_s, r.message, s.suite, r.ts
               FROM results r JOIN series s USING (series_id)
               WHERE s.name = ? AND s.suite = ? AND r.status = 'failed' LIMIT 1""",
            [failing.get("name"), failing.get("classname")],
        ).fetchall()[0]
    assert row[0] == "failed"
    assert row[1] == pytest.approx(float(failing.get("time")))
    first_line = (failing.find("failure").get("message") or failing.find("failure").text).strip()
    assert row[2].startswith(first_line[:40])
    assert row[4].year == 2023  # from the suite timestamp 2023-09-09T11:11:33-07:00, in UTC


def test_same_file_twice_and_a_copy_add_nothing(shared_data: Path, empty_store, tmp_path) -> None:
    path = shared_data / "junit_xml" / "conflowgen_pytest" / "junit.xml"
    [first] = ingest_paths(empty_store, [path])
    before = table_counts(empty_store)
    copy = tmp_path / "renamed.xml"
    copy.write_bytes(path.read_bytes())
    [again] = ingest_paths(empty_store, [path])
    [copied] = ingest_paths(empty_store, [copy])
    assert first.added == 478 and again.added == 0 and copied.added == 0
    assert table_counts(empty_store) == before


GOOD = b"""<?xml version="1.0"?>
<testsuites name="ci">
  <testsuite name="outer" timestamp="2026-11-01T10:00:00Z" hostname="worker-7">
    <properties><property name="hardware" value="cuda"/><property name="commit" value="abc123"/></properties>
    <testsuite name="inner">
      <testcase classname="pkg.Mod" name="test_a" time="0.100s"/>
      <testcase classname="pkg.Mod" name="test_a" time="1,234.5"/>
      <testcase classname="pkg.Mod" name="test_b"><failure message="boom">trace</failure><skipped/></testcase>
      <testcase classname="pkg.Mod" name="test_c"><error type="OSError">disk full</error></testcase>
      <testcase classname="pkg.Mod" name="test_d"><flakyFailure message="first try"/></testcase>
      <testcase classname="pkg.Mod" name="test_e"><skipped message="no gpu"/></testcase>
      <testcase classname="pkg.Mod" name="test_f"/>
    </testsuite>
  </testsuite>
</testsuites>"""


def test_nested_suites_precedence_repeats_units_and_properties(empty_store) -> None:
    report = ingest_bytes(
        empty_store, "good.xml", GOOD, IngestOptions(defaults={"git_branch": "main"})
    )
    assert report.status == "ok", report.error
    assert (report.results, report.passed, report.failed, report.errors, report.skipped) == (
        7,
        4,
        1,
        1,
        1,
    )
    with empty_store.cursor() as cur:
        rows = cur.execute(
            """SELECT s.name, r.status, r.duration_s, r.message, s.hardware, r.worker_id, r.ts,
                      runs.git_commit, runs.git_branch
               FROM results r JOIN series s USING (series_id) JOIN runs USING (run_id)
               ORDER BY r.ts, s.name"""
        ).fetchall()
    by_name = {}
    for row in rows:
        by_name.setdefault(row[0], []).append(row)
    assert [r[2] for r in by_name["test_a"]] == [0.1, 1234.5]  # two results, one series
    assert by_name["test_b"][0][1:4:2] == ("failed", "boom")
    assert by_name["test_c"][0][3] == "OSError: disk full"
    assert by_name["test_d"][0][1] == "passed" and by_name["test_d"][0][3] == "passed after a retry"
    assert {r[4] for r in rows} == {"cuda"} and {r[5] for r in rows} == {"worker-7"}
    assert {(r[7], r[8]) for r in rows} == {("abc123", "main")}
    # Start times follow each other within the suite.
    assert rows[0][6].isoformat() == "2026-11-01T10:00:00"
    assert str(by_name["test_a"][1][6]) == "2026-11-01 10:00:00.100000"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite name="x"><testcase name="&lol3;"/></testsuite>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite name="x"><testcase name="&secret;"/></testsuite>"""

MALFORMED = {
    # Files that are not JUnit (or not XML) at all, and files whose every test case is bad
    # (then nothing of them goes in either, and the first problem is the file's error).
    "truncated.xml": (GOOD[: len(GOOD) // 2], "line"),
    "bomb.xml": (BOMB, "declares XML entities"),
    "xxe.xml": (XXE, "declares XML entities"),
    "wrong-root.xml": (b"<html><body>not a report</body></html>", "root element is <html>"),
    "wrong-type.xml": (
        b'<testsuite><testcase name="t" time="fast"/></testsuite>',
        "time='fast' is not a number of seconds",
    ),
    "nan.xml": (b'<testsuite><testcase name="t" time="NaN"/></testsuite>', "not a finite number"),
    "negative.xml": (b'<testsuite><testcase name="t" time="-1.5"/></testsuite>', "is negative"),
    "huge.xml": (
        b'<testsuite><testcase name="' + b"x" * 5_000_000 + b'"/></testsuite>',
        "characters long; the limit is 4,096",
    ),
    "latin1.xml": (
        '<?xml version="1.0" encoding="utf-8"?><testsuite><testcase name="caf\u00e9"/>'
        "</testsuite>".encode("latin-1"),
        "not well-formed",
    ),
    "empty.xml": (b"", "is empty"),
    "picture.xml": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not in a format dtd reads"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_refused_precisely_and_changes_nothing(empty_store, name: str) -> None:
    ingest_bytes(empty_store, "good.xml", GOOD)
    before = table_counts(empty_store)
    data, words = MALFORMED[name]
    report = ingest_bytes(empty_store, name, data)
    assert report.status == "error"
    assert report.error.startswith(name) and words in report.error, report.error
    assert table_counts(empty_store) == before


def test_content_decides_the_format_not_the_extension(empty_store, tmp_path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(GOOD)
    [report] = ingest_paths(empty_store, [path])
    assert report.status == "ok" and report.format == "junit" and report.results == 7


def test_size_limit_is_enforced_before_reading(empty_store) -> None:
    report = ingest_bytes(empty_store, "big.xml", GOOD, IngestOptions(max_bytes=100))
    assert report.status == "error" and "over the limit of 0 MB" in report.error
    assert table_counts(empty_store)["results"] == 0


def test_time_attribute_forms() -> None:
    assert parse_time("0.100s", "x") == 0.1
    assert parse_time("1,234.5", "x") == 1234.5
    assert parse_time(None, "x") is None and parse_time(" ", "x") is None
    with pytest.raises(IngestError, match="is negative"):
        parse_time("-0.5", "x")
