"""The ways in besides the Python function: dtd ingest, the inbox folder, the Data page upload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.ingest.inbox import Inbox, watch
from lib.store import open_store, release
from tests.conftest import table_counts
from tests.test_ingest_junit import GOOD

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
DTD = shutil.which("dtd", path=str(Path(sys.executable).parent)) or "dtd"
BAD = b'<testsuite><testcase name="t" time="-3"/></testsuite>'


def _dtd(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    return subprocess.run([DTD, *args], capture_output=True, text=True, timeout=120, env=env)


def test_cli_ingest_reports_each_file_and_exits_1_when_any_failed(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.xml").write_bytes(GOOD)
    (tmp_path / "in" / "bad.xml").write_bytes(BAD)
    (tmp_path / "in" / "notes.md").write_text("ignored by the folder walk")
    db = tmp_path / "x.duckdb"
    out = _dtd(
        "ingest", "--db", str(db), "--json", str(tmp_path / "in"), str(tmp_path / "missing.xml")
    )
    assert out.returncode == 1, out.stderr
    reports = {Path(r["path"]).name: r for r in json.loads(out.stdout)}
    assert set(reports) == {"good.xml", "bad.xml", "missing.xml"}
    good, bad = reports["good.xml"], reports["bad.xml"]
    assert (good["status"], good["format"], good["results"], good["failed"]) == (
        "ok",
        "junit",
        7,
        1,
    )
    assert bad["status"] == "error" and "time='-3' is negative" in bad["error"]
    assert "no such file or folder" in reports["missing.xml"]["error"]
    assert set(good) >= {
        "path",
        "format",
        "results",
        "passed",
        "failed",
        "errors",
        "skipped",
        "status",
        "error",
    }
    again = _dtd("ingest", "--db", str(db), str(tmp_path / "in" / "good.xml"))
    assert again.returncode == 0 and ", 0 new," in again.stdout
    status = json.loads(_dtd("status", "--db", str(db), "--json").stdout)
    assert status["results"] == 7 and status["failed"] == 1


def test_cli_rejects_an_unknown_set_key(tmp_path: Path) -> None:
    out = _dtd("ingest", "--db", str(tmp_path / "x.duckdb"), "--set", "colour=red", "x.xml")
    assert out.returncode == 2 and "--set 'colour=red'" in out.stderr


def test_inbox_takes_settled_files_and_keeps_everything(empty_store, tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    inbox = Inbox(empty_store, folder)
    (folder / "good.xml").write_bytes(GOOD)
    (folder / "bad.xml").write_bytes(BAD)
    (folder / "copying.xml.part").write_bytes(GOOD)
    assert inbox.scan() == []  # first sight: wait until the files hold still
    reports = {Path(r.path).name: r for r in inbox.scan()}
    assert reports["good.xml"].status == "ok" and reports["bad.xml"].status == "error"
    assert (folder / "processed" / "good.xml").read_bytes() == GOOD
    assert (folder / "failed" / "bad.xml").read_bytes() == BAD
    error = (folder / "failed" / "bad.xml.error.txt").read_text()
    assert "bad.xml was not ingested" in error and "is negative" in error
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["copying.xml.part"]
    assert table_counts(empty_store)["results"] == 7
    # The same report dropped in again is taken, adds nothing, and keeps both copies.
    (folder / "good.xml").write_bytes(GOOD)
    [again] = inbox.scan(settle=False)
    assert again.added == 0 and (folder / "processed" / "good.1.xml").exists()


def test_inbox_watcher_thread_ingests_a_dropped_file(empty_store, tmp_path: Path) -> None:
    folder = tmp_path / "watched"
    thread = watch(empty_store, folder, interval_s=0.2)
    assert watch(empty_store, folder, interval_s=0.2) is thread  # one watcher per folder
    (folder / "report.xml").write_bytes(GOOD)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (folder / "processed" / "report.xml").exists():
        time.sleep(0.1)
    assert (folder / "processed" / "report.xml").exists()
    assert table_counts(empty_store)["results"] == 7


def test_data_page_upload_previews_then_ingests(monkeypatch, tmp_path: Path) -> None:
    db = tmp_path / "upload.duckdb"
    open_store(db)
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/9_Data.py").run()
    at.file_uploader(key="uploads").set_value(
        [
            ("good.xml", GOOD, "text/xml"),
            ("bad.xml", BAD, "text/xml"),
            ("notes.txt", b"hello", "text/plain"),
        ]
    ).run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "good\\.xml** · " in text and "JUnit XML" in text
    assert any("notes.txt: is not in a format dtd reads" in e.value for e in at.error)
    button = at.button(key="ingest")
    assert button.label == "Ingest 2 files"
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    successes = [s.value for s in at.success]
    assert any(
        "7 results (4 passed, 1 failed, 1 errors, 1 skipped)" in s and "7 new" in s
        for s in successes
    )
    assert any("bad.xml" in e.value and "is negative" in e.value for e in at.error)
    store = open_store(db)
    assert table_counts(store)["results"] == 7
    assert [m.value for m in at.metric][0] == "7"  # the page's own totals moved on
    release(db)


# A report with one bad record (a negative time) and one without a name, among five.
ODD = b"""<testsuites name="ci"><testsuite name="web/checkout.test.js" timestamp="2026-11-01T10:00:00 UTC">
<testcase classname="cart" name="adds" time="0.1"/>
<testcase classname="cart" name="removes" time="-3"/>
<testcase classname="" name=""/>
<testcase classname="cart" name="totals" time="0.2"><failure message="off by one"/></testcase>
<testcase classname="cart" name="empties" time="0.1"/>
</testsuite></testsuites>"""


def test_cli_json_lists_each_left_out_and_kept_record_and_strict_refuses(tmp_path: Path) -> None:
    """Finding 1 on the command line: the file goes in with its good records; each problem is
    reported with where, what and what to do; --strict keeps all-or-nothing."""
    path = tmp_path / "odd.xml"
    path.write_bytes(ODD)
    db = tmp_path / "x.duckdb"
    out = _dtd("ingest", "--db", str(db), "--json", str(path))
    assert out.returncode == 1, out.stderr  # something was left out
    [report] = json.loads(out.stdout)
    assert (report["status"], report["results"], report["rejected"], report["warnings"]) == (
        "partial",
        4,
        1,
        1,
    )
    assert (report["passed"], report["failed"]) == (3, 1)
    left_out, kept = report["problems"]
    assert left_out == {
        "where": f"{path} test case 2 (cart::removes) in testsuite 'web/checkout.test.js'",
        "problem": "attribute time='-3' is negative",
        "fix": left_out["fix"],
        "outcome": "rejected",
    }
    assert "other test cases went in" in left_out["fix"]
    assert kept["outcome"] == "kept" and "web/checkout.test.js" in kept["fix"]
    text = _dtd("ingest", "--db", str(db), str(path))
    assert "partial  " in text.stdout and "left out " in text.stdout and "kept " in text.stdout
    assert ", 0 new, 1 left out, 1 warnings" in text.stdout
    status = json.loads(_dtd("status", "--db", str(db), "--json").stdout)
    assert status["results"] == 4

    db2 = tmp_path / "strict.duckdb"
    strict = _dtd("ingest", "--db", str(db2), "--json", "--strict", str(path))
    assert strict.returncode == 1
    [refused] = json.loads(strict.stdout)
    assert refused["status"] == "error" and "time='-3' is negative" in refused["error"]
    assert json.loads(_dtd("status", "--db", str(db2), "--json").stdout)["results"] == 0


def test_inbox_keeps_a_partial_file_with_its_problems_beside_it(empty_store, tmp_path) -> None:
    folder = tmp_path / "inbox"
    inbox = Inbox(empty_store, folder)
    (folder / "odd.xml").write_bytes(ODD)
    [report] = inbox.scan(settle=False)
    assert report.status == "partial"
    assert (folder / "processed" / "odd.xml").read_bytes() == ODD
    note = (folder / "processed" / "odd.xml.problems.txt").read_text()
    assert "4 results, 1 records left out, 1 warnings" in note
    assert "\nleft out: " in note and "odd.xml test case 2 (cart::removes)" in note
    assert "\nkept: " in note
    assert table_counts(empty_store)["results"] == 4


def test_data_page_lists_left_out_records_and_all_or_nothing(monkeypatch, tmp_path) -> None:
    db = tmp_path / "upload.duckdb"
    open_store(db)
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/9_Data.py").run()
    at.file_uploader(key="uploads").set_value([("odd.xml", ODD, "text/xml")]).run()
    at.checkbox(key="ingest_strict").check().run()
    at.button(key="ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("time='-3' is negative" in e.value for e in at.error)
    assert table_counts(open_store(db))["results"] == 0
    at.checkbox(key="ingest_strict").uncheck().run()
    at.button(key="ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [warning] = [w.value for w in at.warning if "Ingested" in w.value]
    assert "4 results (3 passed, 1 failed" in warning
    assert "1 records left out and 1 stored with a stand-in" in warning
    assert "**left out**" in warning and "removes" in warning and "**kept**" in warning
    assert table_counts(open_store(db))["results"] == 4
    release(db)


SECRET_CSV = (
    "ts,name,status\n2026-01-01T00:00:00Z,secret_marker_7f3a,passed\n"
    "2026-01-01T00:01:00Z,root:x:0:0:secret_marker_7f3a,passed\n"
)


def _everything_written(folder: Path, store, secret: Path) -> bytes:
    """Every byte under the inbox and in the store's file (after a checkpoint), except the
    refused entries themselves (a link, or the secret's own inode moved by a rename)."""
    with store.cursor() as cur:
        cur.execute("CHECKPOINT")
    written = b"".join(
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and not os.path.samefile(p, secret)
    )
    return written + store.path.read_bytes()


def test_inbox_refuses_links_pipes_and_hard_links_unread(empty_store, tmp_path: Path) -> None:
    """Issue 18, finding 1: a symlink to a file the dropper cannot read (here a valid CSV of
    ours, which would ingest) is refused, and nothing of its target is written anywhere."""
    secret = tmp_path / "secret" / "passwd.csv"
    secret.parent.mkdir()
    secret.write_text(SECRET_CSV)
    folder = tmp_path / "inbox"
    inbox = Inbox(empty_store, folder)
    (folder / "passwd.csv").symlink_to(secret)
    (folder / "dangling.xml").symlink_to(tmp_path / "nowhere.xml")
    os.mkfifo(folder / "pipe.csv")
    os.link(secret, folder / "hardlink.csv")
    (folder / "good.csv").write_text(SECRET_CSV.replace("secret_marker_7f3a", "fine"))
    reports = {Path(r.path).name: r for r in inbox.scan(settle=False)}
    assert set(reports) == {"passwd.csv", "dangling.xml", "pipe.csv", "hardlink.csv", "good.csv"}
    assert reports["good.csv"].status == "ok" and reports["good.csv"].results == 2
    for name, kind in (
        ("passwd.csv", "a symbolic link"),
        ("dangling.xml", "a symbolic link"),
        ("pipe.csv", "a named pipe (FIFO)"),
        ("hardlink.csv", "a file with 2 hard links"),
    ):
        report = reports[name]
        assert report.status == "error" and f"it is {kind}, not a regular file" in report.error
        error_text = (folder / "failed" / f"{name}.error.txt").read_text()
        assert "refused unread" in error_text and "regular files only" in error_text
    failed = folder / "failed"
    assert (failed / "passwd.csv").is_symlink()  # moved as it is: still a link, not a copy
    assert os.readlink(failed / "passwd.csv") == str(secret)
    assert (failed / "pipe.csv").is_fifo()
    assert os.path.samefile(failed / "hardlink.csv", secret)  # renamed, never copied
    assert secret.read_text() == SECRET_CSV  # the target itself untouched
    assert sorted(p.name for p in folder.iterdir()) == ["failed", "processed"]
    with empty_store.cursor() as cur:
        names = [r[0] for r in cur.execute("SELECT name FROM series").fetchall()]
    assert sorted(names) == ["fine", "root:x:0:0:fine"]
    assert b"secret_marker_7f3a" not in _everything_written(folder, empty_store, secret)
    assert inbox.scan(settle=False) == []  # refused once, not again on every scan


def test_inbox_reads_through_the_opened_descriptor(empty_store, tmp_path: Path) -> None:
    """A regular file swapped for a link after it was opened: the opened file is what goes in."""
    import lib.ingest.inbox as inbox_module

    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET_CSV)
    folder = tmp_path / "inbox"
    inbox = Inbox(empty_store, folder)
    dropped = folder / "report.csv"
    dropped.write_text(SECRET_CSV.replace("secret_marker_7f3a", "dropped"))
    opened = inbox_module._source

    def swap_after_open(path: Path, handle: int):
        path.unlink()
        path.symlink_to(secret)  # the name now points elsewhere; the descriptor does not
        return opened(path, handle)

    inbox_module._source = swap_after_open
    try:
        [report] = inbox.scan(settle=False)
    finally:
        inbox_module._source = opened
    assert report.status == "ok" and report.results == 2
    with empty_store.cursor() as cur:
        names = sorted(r[0] for r in cur.execute("SELECT name FROM series").fetchall())
    assert names == ["dropped", "root:x:0:0:dropped"]


def _data_page(monkeypatch, db: Path, **env: str) -> AppTest:
    open_store(db)
    monkeypatch.setenv("DTD_DB", str(db))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/9_Data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_area_is_behind_the_write_token_once_one_is_configured(
    monkeypatch, tmp_path: Path
) -> None:
    """Issue 18, finding 5: the upload area wrote with no token while the API needed one."""
    db = tmp_path / "upload.duckdb"
    at = _data_page(monkeypatch, db, DTD_API_TOKEN="s3cret-write-token")
    assert at.get("file_uploader") == []  # nothing to drive before signing in
    assert any("needs the server's write token" in i.value for i in at.info)
    at.text_input(key="upload_token").set_value("guess")  # submitted with the form
    at.button[0].click().run()  # the form's submit button
    assert any("not the write token" in e.value for e in at.error)
    assert at.get("file_uploader") == []
    at.text_input(key="upload_token").set_value("s3cret-write-token")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.file_uploader(key="uploads").set_value([("good.xml", GOOD, "text/xml")]).run()
    at.button(key="ingest").click().run()
    assert any("7 new" in s.value for s in at.success)
    store = open_store(db)
    assert table_counts(store)["results"] == 7
    release(db)


def test_upload_area_can_be_turned_off(monkeypatch, tmp_path: Path) -> None:
    db = tmp_path / "upload.duckdb"
    at = _data_page(monkeypatch, db, DTD_UPLOADS="off")
    assert at.get("file_uploader") == [] and at.get("text_input") == []
    assert any("Uploads are turned off" in i.value for i in at.info)
    assert table_counts(open_store(db))["results"] == 0
    release(db)


def test_upload_policy_setting_is_checked(monkeypatch, tmp_path: Path) -> None:
    from lib.config import ConfigError, load_settings

    assert load_settings(env={}).upload_policy == "on"  # the local demo
    assert load_settings(env={"DTD_API_TOKEN": "t"}).upload_policy == "token"
    assert load_settings(env={"DTD_API_TOKEN": "t", "DTD_UPLOADS": "on"}).upload_policy == "on"
    with pytest.raises(ConfigError, match="uploads must be one of auto, on, token, off"):
        load_settings(env={"DTD_UPLOADS": "maybe"})
