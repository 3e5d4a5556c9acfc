"""Test and worker health: the demo's ground truth is found, and nothing else; the pages show it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import demo, health
from lib.ingest import ingest_bytes
from lib.spec import QuerySpec
from lib.store import open_store, release
from tests.conftest import NOW

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
ALL = QuerySpec.build("all")


@pytest.fixture()
def cur(demo_db: Path):
    with open_store(demo_db).cursor() as cursor:
        yield cursor


def _truth(raw, kind: str) -> set[int]:
    truth = raw["demo_truth"]
    return set(truth.loc[truth["kind"] == kind, "series_id"].astype("int64"))


def test_flags_match_the_ground_truth_exactly(cur, raw) -> None:
    sick = health.flagged_workers(cur, ALL, NOW)
    assert sick == (demo.BAD_WORKER,)
    tests = health.test_health(cur, ALL, NOW, sick)
    flagged = {
        state: set(tests.loc[tests["state"] == state, "series_id"])
        for state in ("flaky", "broken", "recovered")
    }
    assert flagged["flaky"] == _truth(raw, "flaky_test")
    assert flagged["broken"] == _truth(raw, "broken_test")
    assert flagged["recovered"] == _truth(raw, "recovered_test")


def test_without_setting_the_sick_worker_aside_every_test_it_ran_looks_flaky(cur, raw) -> None:
    tests = health.test_health(cur, ALL, NOW)
    flaky = set(tests.loc[tests["state"] == "flaky", "series_id"])
    assert flaky > _truth(raw, "flaky_test")  # the reason workers are judged first


def test_worker_expected_failures_follow_their_peers(cur, raw) -> None:
    judged = health.worker_health(cur, ALL, NOW).set_index("worker_id")
    done = raw["results"][raw["results"]["status"] != "skipped"].copy()
    done["fail"] = done["status"].isin(["failed", "error"]).astype(int)
    for worker in ("cpu-xeon-01", demo.BAD_WORKER):
        mine = done[done["worker_id"] == worker]
        others = (
            done[done["worker_id"] != worker].groupby("series_id")["fail"].agg(["sum", "count"])
        )
        rate = (others["sum"] / others["count"]).reindex(mine["series_id"])
        expected = rate.dropna().sum()
        assert judged.loc[worker, "failures"] == mine["fail"].sum()
        assert judged.loc[worker, "expected"] == pytest.approx(expected)
    assert judged.loc[demo.BAD_WORKER, "ratio"] > 5
    assert judged["flagged"].sum() == 1


def test_one_tests_numbers_match_pandas(cur, raw) -> None:
    tests = health.test_health(cur, ALL, NOW, (demo.BAD_WORKER,)).set_index("series_id")
    results = raw["results"]
    results = results[results["worker_id"] != demo.BAD_WORKER]
    sid = next(iter(_truth(raw, "flaky_test")))
    mine = results[results["series_id"] == sid].sort_values("ts")
    executed = mine[mine["status"] != "skipped"]
    passed = int((executed["status"] == "passed").sum())
    row = tests.loc[sid]
    assert row["runs"] == len(mine) and row["failures"] == len(executed) - passed
    assert row["pass_rate"] == pytest.approx(passed / len(executed))
    low, high = _wilson(passed, len(executed))
    assert (row["pass_rate_low"], row["pass_rate_high"]) == pytest.approx((low, high))
    last20 = list(executed["status"].iloc[::-1][:20])
    flips = sum(
        (a == "passed") != (b == "passed") for a, b in zip(last20, last20[1:], strict=False)
    )
    assert row["flip_rate"] == pytest.approx(flips / (len(last20) - 1))
    assert row["strip"] == "".join("✓" if s == "passed" else "✗" for s in reversed(last20))
    recent = mine.iloc[-health.RECENT :]  # the median duration is over the last RECENT results
    assert row["median_duration_s"] == pytest.approx(
        recent.loc[recent["status"] != "skipped", "duration_s"].median()
    )


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_interval_known_values() -> None:
    low, high = health.wilson(np.array([8, 0, 10]), np.array([10, 10, 10]))
    assert low[0] == pytest.approx(0.4902, abs=1e-4) and high[0] == pytest.approx(0.9433, abs=1e-4)
    assert low[1] == pytest.approx(0.0) and high[1] == pytest.approx(0.2775, abs=1e-4)
    assert high[2] == pytest.approx(1.0)
    assert all(np.isnan(health.wilson(np.array([0]), np.array([0]))))


@pytest.mark.parametrize(
    "a, b",
    [
        (
            "TimeoutError: worker gpu-h100-01 did not acknowledge task 4711 within 30.0s",
            "TimeoutError: worker gpu-h100-02 did not acknowledge task 12 within 30.0s",
        ),
        (
            "OSError: [Errno 28] No space left on device: '/tmp/pytest-of-ci/pytest-81/test_40'",
            "OSError: [Errno 28] No space left on device: '/tmp/pytest-of-ci/pytest-9/test_110'",
        ),
        (
            "expected 1 fetch of block Qm0a1fbafy, saw 2 at 2026-11-01T10:00:01Z (id 5f2c9a1b7e3d)",
            "expected 1 fetch of block Qm99ffbafy, saw 2 at 2026-11-03T11:22:33Z (id 0000aaaabbbb)",
        ),
    ],
)
def test_messages_that_differ_only_in_details_cluster_together(a: str, b: str) -> None:
    assert health.normalise_message(a) == health.normalise_message(b)


def test_different_causes_stay_apart() -> None:
    assert health.normalise_message("AssertionError: 1 != 2") != health.normalise_message(
        "KeyError: 'device'"
    )
    assert health.normalise_message(None) == "(no message)"


def test_failure_clusters_of_the_bad_worker(cur) -> None:
    failures = health.worker_failures(cur, ALL, NOW, demo.BAD_WORKER, limit=100_000)
    failures = failures[failures["status"] == "error"]  # its own; "failed" are flaky tests
    clusters = health.failure_clusters(failures.assign(worker=demo.BAD_WORKER))
    assert len(clusters) == 2  # no space left, connection reset: the two injected causes
    assert clusters["failures"].sum() == len(failures)


def test_paging_searching_and_sorting() -> None:
    frame = pd.DataFrame(
        {
            "test": [f"suite::test_{i}" for i in range(7)],
            "configuration": ["cpu"] * 6 + ["cuda"],
            "state": ["passing", "flaky", "broken", "passing", "failing", "passing", "flaky"],
            "pass_rate": [1.0, 0.8, 0.0, 1.0, 0.5, 1.0, 0.7],
        }
    )
    page, total, number = health.page_of(frame, page=1, page_size=3)
    assert total == 7 and number == 1 and list(page["state"]) == ["broken", "flaky", "flaky"]
    page, total, number = health.page_of(frame, page=9, page_size=3)
    assert number == 3 and len(page) == 1  # past the end: the last page
    page, total, _ = health.page_of(frame, search="CUDA", page_size=3)
    assert total == 1 and page.iloc[0]["test"] == "suite::test_6"
    page, _, _ = health.page_of(frame, sort_by="pass_rate", descending=False, page_size=2)
    assert list(page["pass_rate"]) == [0.0, 0.5]
    with pytest.raises(ValueError):
        health.page_of(frame, sort_by="1; DROP TABLE results")


# ----------------------------------------------------------------------------- pages


def _open(monkeypatch, db: Path, page: str, params: dict) -> AppTest:
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_tests_page_tiles_and_detail_view(monkeypatch, demo_db, raw) -> None:
    broken = sorted(_truth(raw, "broken_test"))[0]
    at = _open(monkeypatch, demo_db, "pages/6_Tests.py", {"range": "all", "test": str(broken)})
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Broken"] == str(len(_truth(raw, "broken_test")))
    assert tiles["Flaky"] == str(len(_truth(raw, "flaky_test")))
    assert tiles["Recovered"] == str(len(_truth(raw, "recovered_test")))
    assert tiles["Tests"] == str((raw["series"]["kind"] != "benchmark").sum())
    assert tiles["State"] == "broken"
    table = at.dataframe[0].value
    assert list(table["state"][:2]) == ["broken", "broken"]  # the worst first
    clusters = at.dataframe[1].value
    results = raw["results"]
    failing = results[
        (results["series_id"] == broken) & results["status"].isin(["failed", "error"])
    ]
    assert clusters["failures"].sum() == len(failing)
    assert len(at.get("vega_lite_chart")) == 1  # durations over time


def test_tests_page_search_filters_and_link(monkeypatch, demo_db) -> None:
    at = _open(
        monkeypatch,
        demo_db,
        "pages/6_Tests.py",
        {"range": "all", "q": "scheduler", "state": "flaky"},
    )
    table = at.dataframe[0].value
    assert len(table) == 1 and "test_backpressure_limits_inflight" in table.iloc[0]["test"]
    link = next(c.value for c in at.caption if c.value.startswith("Link to this view"))
    assert "q=scheduler" in link and "state=flaky" in link


def test_workers_page_flags_the_bad_worker_and_shows_its_detail(monkeypatch, demo_db) -> None:
    at = _open(
        monkeypatch, demo_db, "pages/7_Workers.py", {"range": "all", "worker": demo.BAD_WORKER}
    )
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Failing more than peers"] == "1"
    table = at.dataframe[0].value
    assert list(table.loc[table["flagged"], "worker_id"]) == [demo.BAD_WORKER]
    assert len(at.get("vega_lite_chart")) == 2  # results and resources over time
    assert any(demo.BAD_WORKER.replace("-", "\\-") in s.value for s in at.subheader)


HOSTILE = b"""<testsuite name="evil" timestamp="2026-11-01T10:00:00Z" hostname="&lt;b&gt;box&lt;/b&gt;">
<testcase classname="&lt;script&gt;alert(1)&lt;/script&gt;" name="x'); DROP TABLE results; --"/>
<testcase classname="md" name="[click](javascript:alert(1)) **bold** :red[red] $x$">
<failure message="&lt;img src=x onerror=alert(1)&gt;"/></testcase>
</testsuite>"""


def test_hostile_names_one_run_and_no_heartbeats_render_safely(monkeypatch, tmp_path) -> None:
    db = tmp_path / "hostile.duckdb"
    store = open_store(db)
    assert ingest_bytes(store, "evil.xml", HOSTILE).status == "ok"
    with store.cursor() as cur:
        ids = dict(cur.execute("SELECT name, series_id FROM series").fetchall())
    release(db)
    md_id = ids["[click](javascript:alert(1)) **bold** :red[red] $x$"]
    at = _open(monkeypatch, db, "pages/6_Tests.py", {"range": "all", "test": str(md_id)})
    table = at.dataframe[0].value
    # The testsuite ("evil") is part of the test's identity and its label.
    assert "evil › <script>alert(1)</script>::x'); DROP TABLE results; --" in set(table["test"])
    heading = at.subheader[0].value
    assert "\\[click\\]\\(javascript\\:alert\\(1\\)\\)" in heading and "\\*\\*bold\\*\\*" in heading
    assert "\\$x\\$" in heading and "\\:red\\[red\\]" in heading
    at = _open(monkeypatch, db, "pages/7_Workers.py", {"range": "all", "worker": "<b>box</b>"})
    workers = at.dataframe[0].value
    assert list(workers["state"]) == ["unknown"]  # known from the report only, no heartbeats
    assert "\\<b\\>box\\</b\\>" in at.subheader[0].value
    store = open_store(db)
    with store.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM results").fetchall()[0][0] == 2
    release(db)
