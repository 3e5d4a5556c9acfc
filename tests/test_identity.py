"""Test identity includes the file or testsuite (issue 17, finding 4), and the schema migration
that brings stored series along without changing their ids.

Expected identities are counted here with ElementTree from the XML the test writes; the old id
formula is recomputed here with hashlib, independently of lib.ids.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import duckdb

from lib import schema
from lib.dimensions import series_label
from lib.ingest import ingest_bytes
from lib.store import open_store

FILES = [f"e2e/__tests__/{name}.test.ts" for name in ("promiseReject", "watch", "config", "cli")]
SHARED = [("jest", "runs"), ("jest", "reports errors"), ("CLI", "prints help")]
"""(classname, name) pairs that several test files use: the collisions jest reports have."""


def jest_report(files: list[str], own: int = 3, stamp: str = "2026-11-01T10:00:00") -> bytes:
    """A jest-junit report: one testsuite per test file (named by its path), each with the
    shared test names and ``own`` tests of its own."""
    suites = []
    for path in files:
        cases = [(c, n) for c, n in SHARED] + [
            (path.rsplit("/", 1)[-1], f"case {i}") for i in range(own)
        ]
        body = "".join(
            f'<testcase classname="{c}" name="{n}" time="0.01"></testcase>' for c, n in cases
        )
        suites.append(
            f'<testsuite name="{path}" timestamp="{stamp}" tests="{len(cases)}">{body}</testsuite>'
        )
    return f'<testsuites name="jest tests">{"".join(suites)}</testsuites>'.encode()


def _identities(data: bytes) -> tuple[set, set]:
    """(file, classname, name) and (classname, name) of every test case, by ElementTree."""
    root = ET.fromstring(data)
    with_file, without = set(), set()
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            with_file.add((suite.get("name"), case.get("classname"), case.get("name")))
            without.add((case.get("classname"), case.get("name")))
    return with_file, without


def _series(store) -> list[tuple]:
    with store.cursor() as cur:
        return cur.execute(
            "SELECT series_id, file, suite, name FROM series ORDER BY series_id"
        ).fetchall()


def test_same_named_tests_in_different_files_stay_apart(empty_store) -> None:
    data = jest_report(FILES)
    with_file, without = _identities(data)
    assert len(without) < len(with_file)  # the report does have same-named tests
    report = ingest_bytes(empty_store, "jest.xml", data)
    assert report.status == "ok", report.error
    series = _series(empty_store)
    assert len(series) == len(with_file)
    assert {(f, s, n) for _, f, s, n in series} == with_file
    with empty_store.cursor() as cur:
        labels = {r[0] for r in cur.execute(f"SELECT {series_label()} FROM series AS s").fetchall()}
    assert f"{FILES[0]} › jest::runs" in labels and f"{FILES[1]} › jest::runs" in labels


def test_go_packages_with_the_same_last_name_stay_apart(empty_store) -> None:
    """go-junit-report names the testsuite by package path, the classname by its last part."""
    data = b"""<testsuites>
      <testsuite name="github.com/acme/api/amqp" tests="1"><testcase classname="amqp" name="TestSend" time="0.1s"/></testsuite>
      <testsuite name="github.com/acme/worker/amqp" tests="1"><testcase classname="amqp" name="TestSend" time="0.2s"/></testsuite>
    </testsuites>"""
    assert ingest_bytes(empty_store, "go.xml", data).results == 2
    assert {f for _, f, _, _ in _series(empty_store)} == {
        "github.com/acme/api/amqp",
        "github.com/acme/worker/amqp",
    }


def _old_id(kind: str, suite: str | None, name: str) -> int:
    """The series id formula before files were part of the identity (lib.ids at issue 16),
    written out here: blake2b-64 of the parts joined by \\x1f, None as \\x00."""
    parts = [kind, suite, name, None, None, None, None, None, ""]
    text = "\x1f".join("\x00" if p is None else str(p) for p in parts)
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True
    )


def test_a_suite_that_says_no_more_than_the_classname_keeps_its_old_id(empty_store) -> None:
    """Surefire, gotestsum and ScalaTest name the testsuite like the classname: no file, and
    the series id is exactly the one stored before (no history splits for them)."""
    data = b"""<testsuite name="com.acme.BarTest" timestamp="2021-03-07T10:36:56 UTC">
      <testcase classname="com.acme.BarTest" name="adds" time="0.01"/>
    </testsuite>"""
    assert ingest_bytes(empty_store, "TEST-com.acme.BarTest.xml", data).status == "ok"
    assert _series(empty_store) == [
        (_old_id("unit_test", "com.acme.BarTest", "adds"), None, "com.acme.BarTest", "adds")
    ]


def test_unittest_xml_reporting_run_suffix_is_not_identity(empty_store) -> None:
    """unittest-xml-reporting appends the run's time to each testsuite name: two runs are still
    one test."""
    for stamp in ("20210307103656", "20210308091502"):
        data = (
            f'<testsuite name="tests.test_api.ApiTest-{stamp}" file="tests/test_api.py">'
            '<testcase classname="tests.test_api.ApiTest" name="test_get" time="0.1"/>'
            "</testsuite>"
        ).encode()
        assert ingest_bytes(empty_store, f"TEST-{stamp}.xml", data).added == 1
    assert _series(empty_store) == [
        (
            _old_id("unit_test", "tests.test_api.ApiTest", "test_get"),
            None,
            *_series(empty_store)[0][2:],
        )
    ]


# ---------------------------------------------------------------------------- the migration

MIGRATION = next(v for v, step in schema.MIGRATIONS.items() if step is schema.identity_by_file)
"""The schema version that makes files part of the identity (renumbered freely at merges)."""


def _store_before_the_migration(path: Path, series: dict[str, list[int]]) -> dict[str, int]:
    """A store as the release before ``MIGRATION`` left it after ingesting JUnit reports:
    ``series[name]`` lists, for each result of the test ``jest::<name>``, the run (report) it
    came from. Returns name -> series id (the old formula)."""
    con = duckdb.connect(str(path))
    con.execute("BEGIN")
    schema.migrate(con, 0, {1: schema.MIGRATIONS[1]})
    runs = sorted({run for runs in series.values() for run in runs})
    for run in runs:
        con.execute(
            "INSERT INTO runs (run_id, name, source, started_at) VALUES (?, ?, 'junit', ?)",
            [run, f"jest tests {run}", datetime(2026, 10, run)],
        )
    con.execute(
        "INSERT INTO runs (run_id, name, source) VALUES (999, 'demo', 'demo')"
    )  # another format's run: its series are never offered to files
    ids = {}
    result = 0
    for name, in_runs in series.items():
        ids[name] = _old_id("unit_test", "jest", name)
        con.execute(
            "INSERT INTO series (series_id, kind, suite, name) VALUES (?, 'unit_test', 'jest', ?)",
            [ids[name], name],
        )
        for run in in_runs:
            result += 1
            con.execute(
                "INSERT INTO results (result_id, series_id, run_id, ts, status) "
                "VALUES (?, ?, ?, ?, 'passed')",
                [result, ids[name], run, datetime(2026, 10, run, 0, result)],
            )
    earlier = {v: step for v, step in schema.MIGRATIONS.items() if v < MIGRATION}
    schema.migrate(con, 1, earlier)
    con.execute("COMMIT")
    con.close()
    return ids


def test_the_migration_keeps_ids_and_continues_unique_histories(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    # "runs" was unique (one result per report); "reports errors" held two files' results
    # (two in report 2); "prints help" was unique, but the next report shows it in two files.
    ids = _store_before_the_migration(
        path, {"runs": [1, 2], "reports errors": [1, 2, 2], "prints help": [1, 2]}
    )
    store = open_store(path)
    try:
        assert store.meta()["schema_version"] == str(schema.SCHEMA_VERSION)
        with store.cursor() as cur:
            kept = dict(cur.execute("SELECT name, series_id FROM series").fetchall())
            offered = {
                r[0]
                for r in cur.execute(
                    "SELECT series_id FROM legacy_series WHERE file IS NULL"
                ).fetchall()
            }
            files = {r[0] for r in cur.execute("SELECT file FROM series").fetchall()}
        assert kept == ids  # no id changed
        assert offered == {ids["runs"], ids["prints help"]}  # the unique ones
        assert files == {None}

        # The next report: "runs" and "reports errors" in one file, "prints help" in two.
        data = (
            '<testsuites name="jest tests">'
            f'<testsuite name="{FILES[0]}" timestamp="2026-11-01T10:00:00">'
            '<testcase classname="jest" name="runs"/><testcase classname="jest" name="reports errors"/>'
            '<testcase classname="jest" name="prints help"/></testsuite>'
            f'<testsuite name="{FILES[1]}" timestamp="2026-11-01T10:05:00">'
            '<testcase classname="jest" name="prints help"/></testsuite></testsuites>'
        ).encode()
        report = ingest_bytes(store, "next.xml", data)
        assert (report.status, report.added) == ("ok", 4), report.error
        with store.cursor() as cur:
            rows = cur.execute(
                """SELECT s.name, s.file, r.series_id, count(*) FROM results r
                   JOIN series s USING (series_id) GROUP BY ALL"""
            ).fetchall()
            listed = dict(cur.execute("SELECT series_id, file FROM legacy_series").fetchall())
        by_key = {(name, file): (sid, n) for name, file, sid, n in rows}
        # The unique test continues its series: same id, now with its file, 2 + 1 results.
        assert by_key[("runs", FILES[0])] == (ids["runs"], 3)
        # The mixed history stays as it was; the new result starts the file's own series.
        assert by_key[("reports errors", None)] == (ids["reports errors"], 3)
        assert by_key[("reports errors", FILES[0])][1] == 1
        assert by_key[("reports errors", FILES[0])][0] != ids["reports errors"]
        # Two files want "prints help": neither takes its history, which stays as it was.
        assert by_key[("prints help", None)] == (ids["prints help"], 2)
        assert by_key[("prints help", FILES[0])][1] == by_key[("prints help", FILES[1])][1] == 1
        # "runs" is taken by its file; "prints help" is no longer offered.
        assert listed == {ids["runs"]: FILES[0]}

        # Later reports of the same file keep landing in the continued series.
        later = jest_report([FILES[0]], own=0, stamp="2026-11-02T10:00:00")
        assert ingest_bytes(store, "later.xml", later).status == "ok"
        with store.cursor() as cur:
            n = cur.execute(
                "SELECT count(*) FROM results WHERE series_id = ?", [ids["runs"]]
            ).fetchall()[0][0]
        assert n == 4
    finally:
        store.close()


def test_the_migration_offers_nothing_from_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("BEGIN")
    schema.migrate(con, 0, {v: s for v, s in schema.MIGRATIONS.items() if v < MIGRATION})
    con.execute("INSERT INTO runs (run_id, name, source) VALUES (1, 'r', 'csv')")
    con.execute("INSERT INTO series (series_id, kind, name) VALUES (5, 'benchmark', 'b')")
    con.execute(
        "INSERT INTO results (result_id, series_id, run_id, ts, status) "
        "VALUES (1, 5, 1, TIMESTAMP '2026-01-01', 'passed')"
    )
    con.execute("COMMIT")
    con.close()
    store = open_store(path)
    try:
        with store.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM legacy_series").fetchall() == [(0,)]
            assert cur.execute("SELECT series_id, file FROM series").fetchall() == [(5, None)]
    finally:
        store.close()
