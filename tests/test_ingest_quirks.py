"""A corpus of real-world JUnit/xUnit quirks (issue 17), each report built here from a description
of what that tool writes (none is copied from anyone's files), and each checked against counts
taken from the same XML with ElementTree, independently of our parser.

The tools: jest-junit, Maven Surefire, pytest, unittest-xml-reporting, PHPUnit, nette/tester,
swift test --xunit-output, CPython's regrtest, .NET loggers, go-junit-report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime

import pytest

from lib.ingest import IngestOptions, ingest_bytes
from tests.conftest import table_counts


def _cases(data: bytes) -> list[ET.Element]:
    return [e for e in ET.fromstring(data).iter() if e.tag == "testcase"]


def _statuses(data: bytes) -> Counter:
    """Outcomes by the documented precedence: failure, then error, then skipped, else passed."""
    counts: Counter = Counter()
    for case in _cases(data):
        tags = {child.tag for child in case}
        for tag, status in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if tag in tags:
                counts[status] += 1
                break
        else:
            counts["passed"] += 1
    return counts


def _stored(store) -> list[tuple]:
    with store.cursor() as cur:
        return cur.execute(
            """SELECT s.file, s.suite, s.name, r.status, r.ts, r.duration_s
               FROM results AS r JOIN series AS s USING (series_id) ORDER BY r.ts, s.name"""
        ).fetchall()


# ------------------------------------------------------------------------------ jest (finding 1)


def jest_with_a_nameless_case(files: int = 40, per_file: int = 106) -> bytes:
    """jest-junit: a <testsuites> of one <testsuite> per test file, named by its path, whose
    test cases repeat describe titles across files; in one file a test that jest could not
    name comes out as <testcase classname="" name="">, and one case carries an odd time."""
    suites = []
    for f in range(files):
        path = f"e2e/__tests__/{'promiseReject' if f == 7 else f'spec{f:02d}'}.test.ts"
        cases = []
        for i in range(per_file):
            if f == 7 and i == 50:
                cases.append('<testcase classname="" name="" time="0.003"></testcase>')
                continue
            title = f"suite {i % 20} works {i % 35}"
            outcome = "<failure>Error: expected 1</failure>" if (f * per_file + i) % 97 == 0 else ""
            cases.append(
                f'<testcase classname="{title}" name="{title}" time="{(i % 9) / 100:.2f}">'
                f"{outcome}</testcase>"
            )
        suites.append(
            f'<testsuite name="{path}" errors="0" failures="0" skipped="0" '
            f'timestamp="2024-05-02T08:{f:02d}:00" time="1.2" tests="{len(cases)}">'
            + "".join(cases)
            + "</testsuite>"
        )
    return ('<testsuites name="jest tests" tests="0">' + "".join(suites) + "</testsuites>").encode()


def test_jest_report_with_a_nameless_test_goes_in_whole(empty_store) -> None:
    """Finding 1: a jest report of 4,240 test cases stored 0 because one had no name."""
    data = jest_with_a_nameless_case()
    cases = _cases(data)
    assert len(cases) == 4240
    report = ingest_bytes(empty_store, "jest-junit.xml", data)
    assert report.status == "ok", report.error
    assert (report.results, report.rejected, report.warnings) == (len(cases), 0, 1)
    assert {k: getattr(report, k) for k in ("passed", "failed")} == dict(_statuses(data))
    [warning] = report.problems
    assert warning["outcome"] == "kept"
    assert warning["where"] == (
        "jest-junit.xml test case 793 (::) in testsuite 'e2e/__tests__/promiseReject.test.ts'"
    )
    assert warning["problem"] == "has no name (name='')"
    assert "its testsuite's name, 'e2e/__tests__/promiseReject.test.ts'" in warning["fix"]
    stored = _stored(empty_store)
    assert len(stored) == len(cases)
    nameless = [row for row in stored if row[2] == "e2e/__tests__/promiseReject.test.ts"]
    assert len(nameless) == 1 and nameless[0][1] == "e2e/__tests__/promiseReject.test.ts"
    # Identity: one series per distinct (file, classname, name), counted by ElementTree.
    identities = {
        (suite.get("name"), case.get("classname"), case.get("name"))
        for suite in ET.fromstring(data).iter("testsuite")
        for case in suite.iter("testcase")
    }
    without_file = {(c, n) for _, c, n in identities}
    assert len(without_file) < len(identities)
    assert table_counts(empty_store)["series"] == len(identities)


def test_strict_keeps_all_or_nothing_for_the_nameless_test(empty_store) -> None:
    data = jest_with_a_nameless_case(files=8, per_file=60)
    report = ingest_bytes(empty_store, "jest-junit.xml", data, IngestOptions(strict=True))
    assert report.status == "error"
    assert "test case 471 (::) in testsuite 'e2e/__tests__/promiseReject.test.ts'" in report.error
    assert "has no name" in report.error and "--strict" in report.error
    assert table_counts(empty_store)["results"] == 0


def test_names_fall_back_to_the_nearest_name_the_report_gives(empty_store) -> None:
    data = b"""<testsuites>
      <testsuite name="Checkout">
        <testcase classname="CartTest" name=""/>
        <testcase classname="" name=" " file="spec/cart_spec.rb"/>
        <testcase name=""/>
      </testsuite>
      <testsuite><testcase name=""/></testsuite>
    </testsuites>"""
    report = ingest_bytes(empty_store, "names.xml", data)
    assert (report.status, report.results, report.warnings) == ("ok", 4, 4), report.error
    fixes = [p["fix"].split(";")[0] for p in report.problems]
    assert fixes == [
        "Stored under its classname, 'CartTest'",
        "Stored under its file, 'spec/cart_spec.rb'",
        "Stored under its testsuite's name, 'Checkout'",
        "Stored under its position in the file, 'test case 4'",
    ]
    assert sorted(row[2] for row in _stored(empty_store)) == sorted(
        ["CartTest", "spec/cart_spec.rb", "Checkout", "test case 4"]
    )


def test_one_bad_time_leaves_out_one_test_case(empty_store) -> None:
    data = jest_with_a_nameless_case(files=3, per_file=10).replace(
        b'name="suite 4 works 4" time="0.04"', b'name="suite 4 works 4" time="forever"', 1
    )
    report = ingest_bytes(empty_store, "jest.xml", data)
    assert (report.status, report.results, report.rejected) == ("partial", 29, 1)
    [bad] = [p for p in report.problems if p["outcome"] == "rejected"]
    assert bad["where"] == (
        "jest.xml test case 5 (suite 4 works 4::suite 4 works 4) in testsuite "
        "'e2e/__tests__/spec00.test.ts'"
    )
    assert bad["problem"] == "attribute time='forever' is not a number of seconds"
    assert "new run" in bad["fix"]  # re-ingesting a corrected copy would store it all again
    assert table_counts(empty_store)["results"] == 29


# ------------------------------------------------------------------------- timestamps (finding 2)

TIMESTAMPS = {
    # description: (timestamp as the tool writes it, naive UTC)
    "Surefire, zone as a word": ("2021-03-07T10:36:56 UTC", datetime(2021, 3, 7, 10, 36, 56)),
    "pytest, microseconds and an offset": (
        "2025-11-05T15:27:25.781816+01:00",
        datetime(2025, 11, 5, 14, 27, 25, 781816),
    ),
    "jest-junit and unittest-xml-reporting, no zone (UTC)": (
        "2021-03-07T10:36:56",
        datetime(2021, 3, 7, 10, 36, 56),
    ),
    "a space instead of T, Z": ("2023-09-09 11:11:33Z", datetime(2023, 9, 9, 11, 11, 33)),
    "Go, negative offset": ("2023-09-09T11:11:33-07:00", datetime(2023, 9, 9, 18, 11, 33)),
    "nanoseconds": ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456)),
    "an offset without a colon": ("2024-01-02T03:04:05+0530", datetime(2024, 1, 1, 21, 34, 5)),
    "GMT with an offset": ("2024-01-02 03:04:05 GMT+01:00", datetime(2024, 1, 2, 2, 4, 5)),
    "a comma before the fraction": ("2024-01-02T03:04:05,5", datetime(2024, 1, 2, 3, 4, 5, 500000)),
    "seconds since 1970": ("1615113416", datetime(2021, 3, 7, 10, 36, 56)),
}


@pytest.mark.parametrize("case", sorted(TIMESTAMPS))
def test_timestamps_in_the_forms_real_writers_emit(empty_store, case: str) -> None:
    stamp, expected = TIMESTAMPS[case]
    data = (
        f'<testsuite name="com.acme.FooTest" timestamp="{stamp}" hostname="ci-7">'
        '<testcase classname="com.acme.FooTest" name="a" time="1.5"/>'
        '<testcase classname="com.acme.FooTest" name="b" time="0.5"/></testsuite>'
    ).encode()
    report = ingest_bytes(empty_store, "TEST-com.acme.FooTest.xml", data)
    assert (report.status, report.results, report.warnings) == ("ok", 2, 0), report.error
    times = [row[4] for row in _stored(empty_store)]
    assert times[0] == expected
    assert (times[1] - times[0]).total_seconds() == 1.5  # b starts when a ends


def test_an_unreadable_time_falls_back_with_a_warning(empty_store) -> None:
    """A suite's unreadable timestamp: its cases take the enclosing suite's time; a test case's
    (.NET writes 0001-01-01 when it knows none): its suite's; without either, the file's."""
    data = b"""<testsuites>
      <testsuite name="outer" timestamp="2024-06-01T12:00:00Z">
        <testsuite name="inner" timestamp="yesterday">
          <testcase classname="c" name="a" time="2"/>
          <testcase classname="c" name="b" time="1" timestamp="0001-01-01T00:00:00"/>
        </testsuite>
      </testsuite>
      <testsuite name="alone" timestamp="soon"><testcase classname="c" name="z"/></testsuite>
    </testsuites>"""
    before = datetime.now(UTC).replace(tzinfo=None)
    report = ingest_bytes(empty_store, "dotnet.xml", data)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert (report.status, report.results, report.warnings) == ("ok", 3, 3), report.error
    where = [p["where"] for p in report.problems]
    assert where == [
        "dotnet.xml testsuite 'inner'",
        "dotnet.xml test case 2 (c::b) in testsuite 'inner'",
        "dotnet.xml testsuite 'alone'",
    ]
    assert "its enclosing suite's time (2024-06-01 12:00:00 UTC)" in report.problems[0]["fix"]
    assert "Dated by its suite instead (2024-06-01 12:00:02 UTC)" in report.problems[1]["fix"]
    assert "the file's time" in report.problems[2]["fix"]
    times = {row[2]: row[4] for row in _stored(empty_store)}
    assert times["a"] == datetime(2024, 6, 1, 12, 0, 0)
    assert times["b"] == datetime(2024, 6, 1, 12, 0, 2)
    assert before <= times["z"] <= after  # an upload's time is when it arrived


# ---------------------------------------------------------------------------- other writers

CORPUS = {
    "PHPUnit: nested suites, absolute file paths, data sets": (
        b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="Project Test Suite" tests="4" assertions="6" errors="0" failures="1" skipped="1" time="0.02">
    <testsuite name="Tests\\Unit\\MathTest" file="/home/runner/work/app/app/tests/Unit/MathTest.php" tests="4">
      <testcase name="testAdd" class="Tests\\Unit\\MathTest" classname="Tests.Unit.MathTest" file="/home/runner/work/app/app/tests/Unit/MathTest.php" line="12" assertions="1" time="0.001"/>
      <testsuite name="Tests\\Unit\\MathTest::testDivide" tests="2">
        <testcase name="testDivide with data set #0" class="Tests\\Unit\\MathTest" classname="Tests.Unit.MathTest" line="20" assertions="1" time="0.001"/>
        <testcase name="testDivide with data set #1" class="Tests\\Unit\\MathTest" classname="Tests.Unit.MathTest" line="20" assertions="1" time="0.001"><failure type="PHPUnit\\Framework\\ExpectationFailedException">Failed asserting that 2 is identical to 3.</failure></testcase>
      </testsuite>
      <testcase name="testSlow" classname="Tests.Unit.MathTest" time="0"><skipped/></testcase>
    </testsuite>
  </testsuite>
</testsuites>""",
        {"file": {"Tests\\Unit\\MathTest", "Tests\\Unit\\MathTest::testDivide"}},
    ),
    "nette/tester: the file is the test's name": (
        b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite errors="1" skipped="1" tests="4" time="0.31" timestamp="2023-05-01T10:00:00">
  <testcase classname="tests/Utils/Strings.phpt" name="tests/Utils/Strings.phpt"/>
  <testcase classname="tests/Utils/Arrays.phpt" name="tests/Utils/Arrays.phpt"><failure message="Failed: 1 should be 2"/></testcase>
  <testcase classname="tests/Utils/Json.phpt" name="tests/Utils/Json.phpt"><skipped/></testcase>
  <testcase classname="tests/Utils/Html.phpt" name="tests/Utils/Html.phpt"><error message="Exited with error code 255"/></testcase>
</testsuite>""",
        {"file": {None}},
    ),
    "swift test --xunit-output: one suite for everything": (
        b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="TestResults" errors="0" tests="3" failures="1" time="0.0122">
    <testcase classname="AppTests.MathTests" name="testAdd" time="0.0011"></testcase>
    <testcase classname="AppTests.MathTests" name="testSub" time="0.0010"><failure message="failed"></failure></testcase>
    <testcase classname="AppTests.StringTests" name="testTrim" time="0.0101"></testcase>
  </testsuite>
</testsuites>""",
        {"file": {"TestResults"}},
    ),
    "CPython regrtest: unnamed suites, no classname, repeated doctest names": (
        b"""<testsuites tests="4" errors="0" failures="1">
  <testsuite tests="2" errors="0" failures="0" start="2023-10-01 10:00:00.123456">
    <testcase name="test.test_doctest.test_doctest.doctests" status="run" result="completed" time="0.01"/>
    <testcase name="test.test_doctest.test_doctest.doctests" status="run" result="completed" time="0.02"/>
  </testsuite>
  <testsuite tests="2">
    <testcase name="test.test_os.FileTests.test_access" status="run" result="completed" time="0.001"/>
    <testcase name="test.test_os.FileTests.test_write" status="run" result="completed" time="0.002"><failure type="AssertionError" message="1 != 2">Traceback</failure></testcase>
  </testsuite>
</testsuites>""",
        {"file": {None}, "series": 3},
    ),
    "unittest-xml-reporting: run suffix on the suite name, file attribute": (
        b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="tests.test_api.ApiTest-20210307103656" tests="2" file="tests/test_api.py" time="0.2" timestamp="2021-03-07T10:36:56" failures="0" errors="1" skipped="0">
    <testcase classname="tests.test_api.ApiTest" name="test_get" time="0.1" timestamp="2021-03-07T10:36:56" file="tests/test_api.py" line="10"/>
    <testcase classname="tests.test_api.ApiTest" name="test_post" time="0.1" timestamp="2021-03-07T10:36:56" file="tests/test_api.py" line="20"><error type="KeyError" message="'id'"/></testcase>
  </testsuite>
</testsuites>""",
        {"file": {None}},
    ),
    "pytest: one suite named pytest, Windows file paths": (
        b"""<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="0" skipped="1" tests="3" time="1.2" timestamp="2025-11-05T15:27:25.781816+01:00" hostname="Jason"><testcase classname="pkg.tests.test_io.TestRead" name="test_empty" file="pkg\\tests\\test_io.py" line="4" time="0.1"/><testcase classname="pkg.tests.test_io.TestRead" name="test_big[10]" time="0.5"/><testcase classname="pkg.tests.test_io.TestRead" name="test_big[20]" time="0.6"><skipped type="pytest.skip" message="slow">skipped</skipped></testcase></testsuite></testsuites>""",
        {"file": {"pytest"}},
    ),
    "go-junit-report: times with units, properties": (
        b"""<testsuites><testsuite tests="2" failures="1" time="0.300s" name="github.com/acme/shop/cart">
  <properties><property name="go.version" value="go1.22.1 linux/amd64"></property></properties>
  <testcase classname="cart" name="TestAdd/empty" time="0.100s"></testcase>
  <testcase classname="cart" name="TestAdd" time="1,200.5"><failure message="Failed" type="">cart_test.go:12: boom</failure></testcase>
</testsuite></testsuites>""",
        {"file": {"github.com/acme/shop/cart"}},
    ),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corpus_report_goes_in_with_independent_counts(empty_store, case: str) -> None:
    data, expect = CORPUS[case]
    report = ingest_bytes(empty_store, "report.xml", data)
    assert report.status == "ok", (case, report.error)
    assert (report.rejected, report.warnings) == (0, 0), report.problems
    expected = _statuses(data)
    assert report.results == len(_cases(data))
    got = {"passed": report.passed, "failed": report.failed, "error": report.errors}
    got["skipped"] = report.skipped
    assert {k: v for k, v in got.items() if v} == dict(expected)
    stored = _stored(empty_store)
    assert len(stored) == len(_cases(data))
    assert {row[0] for row in stored} == expect["file"]
    if "series" in expect:
        assert table_counts(empty_store)["series"] == expect["series"]
    again = ingest_bytes(empty_store, "copy.xml", data)
    assert again.added == 0  # the same report twice adds nothing
