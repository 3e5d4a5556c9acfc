"""The REST API and the WebSocket, in-process through Starlette's TestClient, on real stores."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from lib import events
from lib.api import ApiState, create_api
from lib.config import Settings
from lib.store import open_store
from tests.conftest import table_counts
from tests.test_ingest_junit import GOOD

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _client(db: Path, **settings) -> TestClient:
    values = {"api_token": TOKEN, "api_cache_time": 10, **settings}
    state = ApiState(lambda: Settings(db_path=db, db_configured=True, **values))
    return TestClient(Starlette(routes=[Mount("/api", app=create_api(state))]))


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["api_version"] == "1.0"
    assert body["timestamp"].endswith("Z")
    return body["data"]


def _error(response, code: int, kind: str) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == code
    assert body["error"]["type"] == kind and body["error"]["message"]
    return body["error"]


def test_status_counts_match_the_store(analysed_db, raw) -> None:
    data = _ok(_client(analysed_db).get("/api/status?range=all"))
    results = raw["results"]
    assert data["totals"]["results"] == len(results)
    assert data["window"]["current"]["failed"] == int((results["status"] == "failed").sum())
    assert data["totals"]["workers"]["dead"] == 1
    cuda = _ok(_client(analysed_db).get("/api/status?range=all&hardware=cuda"))
    joined = results.merge(raw["series"], on="series_id")
    assert cuda["window"]["current"]["results"] == int((joined["hardware"] == "cuda").sum())


def test_tests_pages_differ_and_totals_are_right(analysed_db, raw) -> None:
    client = _client(analysed_db)
    first = _ok(client.get("/api/tests?range=all&page=1&page_size=10"))
    second = _ok(client.get("/api/tests?range=all&page=2&page_size=10"))
    expected = int((raw["series"]["kind"] != "benchmark").sum())
    assert first["total"] == second["total"] == expected
    assert first["pages"] == -(-expected // 10)
    assert len(first["items"]) == len(second["items"]) == 10
    assert {i["series_id"] for i in first["items"]}.isdisjoint(
        i["series_id"] for i in second["items"]
    )
    assert [i["state"] for i in first["items"][:2]] == ["broken", "broken"]  # worst first
    flaky = _ok(client.get("/api/tests?range=all&state=flaky&page_size=100"))
    truth = raw["demo_truth"]
    assert flaky["total"] == int((truth["kind"] == "flaky_test").sum())
    ordered = _ok(client.get("/api/tests?range=all&sort_by=pass_rate&sort_order=asc"))
    rates = [i["pass_rate"] for i in ordered["items"] if i["pass_rate"] is not None]
    assert rates == sorted(rates)


def test_csv_has_the_same_rows(analysed_db) -> None:
    client = _client(analysed_db)
    page = _ok(client.get("/api/workers?page_size=5"))
    response = client.get("/api/workers?page_size=5&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(response.text))
    assert list(frame["worker_id"]) == [w["worker_id"] for w in page["items"]]
    assert response.headers["x-total-count"] == str(page["total"])
    _error(client.get("/api/status?format=csv"), 400, "bad_request")


def test_regressions_dimensions_and_performance(analysed_db, raw) -> None:
    client = _client(analysed_db)
    every = _ok(client.get("/api/regressions?range=all&page_size=1000"))
    significant = _ok(client.get("/api/regressions?range=all&significant_only=true&page_size=1000"))
    assert every["total"] >= significant["total"] > 0
    assert all(i["q_value"] < 0.05 for i in significant["items"])
    dims = _ok(client.get("/api/dimensions"))
    assert "extra.browser" in dims["dimensions"]
    stats = _ok(client.get("/api/dimensions?range=all&dimension=precision&metric=latency_p50_ms"))
    m = raw["measurements"].merge(raw["series"], on="series_id")
    m = m[m["metric"] == "latency_p50_ms"]
    assert {i["value"]: i["count"] for i in stats["items"]} == m.groupby(
        "precision"
    ).size().to_dict()
    series_id = int(m["series_id"].iloc[0])
    history = _ok(
        client.get(f"/api/performance?range=all&test_id={series_id}&metric=latency_p50_ms")
    )
    assert len(history["items"]) == int((m["series_id"] == series_id).sum())
    assert history["metric"]["direction"] == "lower"
    days = _ok(client.get("/api/performance?days=3&by=hardware"))
    assert days["total"] > 0


@pytest.mark.parametrize(
    "path, code, kind",
    [
        ("/api/tests?page=abc", 400, "bad_request"),
        ("/api/tests?page_size=0", 400, "bad_request"),
        ("/api/tests?sort_by=password", 400, "bad_request"),
        ("/api/status?range=2w", 400, "bad_request"),
        ("/api/dimensions?dimension=colour", 400, "bad_request"),
        ("/api/performance?test_id=abc", 400, "bad_request"),
        ("/api/nope", 404, "not_found"),
        ("/api/status/extra", 404, "not_found"),
    ],
)
def test_errors_have_one_shape(analysed_db, path, code, kind) -> None:
    error = _error(_client(analysed_db).get(path), code, kind)
    if code == 400:
        assert error["details"] is None or "parameter" in error["details"] or kind == "bad_request"


def test_openapi_is_the_bare_document_of_every_endpoint(analysed_db) -> None:
    response = _client(analysed_db).get("/api/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0" and "status" not in document  # no envelope
    assert {
        "/api/status",
        "/api/tests",
        "/api/workers",
        "/api/regressions",
        "/api/dimensions",
        "/api/performance",
        "/api/results",
        "/api/heartbeat",
    } <= set(document["paths"])


def test_writes_need_the_token(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    batch = [{"name": "t", "status": "passed"}]
    _error(client.post("/api/results", json=batch), 401, "unauthorized")
    _error(
        client.post("/api/results", json=batch, headers={"Authorization": "Bearer nope"}),
        403,
        "forbidden",
    )
    _error(
        _client(db, api_token="").post("/api/results", json=batch, headers=AUTH), 403, "forbidden"
    )
    assert table_counts(open_store(db))["results"] == 0
    _error(_client(db, api_read_token="r").get("/api/status"), 401, "unauthorized")
    _ok(_client(db, api_read_token="r").get("/api/status", headers={"Authorization": "Bearer r"}))


def test_posted_results_are_idempotent_and_validated(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    batch = {
        "results": [
            {
                "name": "bench",
                "kind": "benchmark",
                "hardware": "cuda",
                "ts": "2026-11-01T10:00:00Z",
                "metrics": {"latency_p50_ms": 5.0, "tokens_per_second": 90.0},
                "git_commit": "abc",
                "worker": "gpu-1",
            },
            {
                "name": "test_x",
                "status": "fail",
                "message": "boom",
                "result_id": "r-2",
                "ts": 1793527200,
            },
        ],
        "metrics": {"tokens_per_second": {"unit": "tokens/s", "direction": "higher"}},
    }
    first = client.post("/api/results", json=batch, headers=AUTH)
    assert first.status_code == 201, first.text
    assert first.json()["data"]["added"] == 2 and first.json()["data"]["failed"] == 1
    again = client.post("/api/results", json=batch, headers=AUTH)
    assert again.status_code == 200 and again.json()["data"]["added"] == 0
    store = open_store(db)
    with store.cursor() as cur:
        unit = cur.execute(
            "SELECT unit, direction FROM metrics WHERE name = 'tokens_per_second'"
        ).fetchall()
        worker = cur.execute("SELECT worker_id FROM results WHERE worker_id IS NOT NULL").fetchall()
    assert unit == [("tokens/s", "higher")] and worker == [("gpu-1",)]
    before = table_counts(store)
    bad = [{"name": "ok"}, {"name": "bad", "metrics": {"latency_p50_ms": "fast"}}]
    error = _error(
        client.post("/api/results?strict=true", json=bad, headers=AUTH), 422, "invalid_results"
    )
    assert "results[1].metrics.latency_p50_ms" in error["message"]
    _error(
        client.post(
            "/api/results",
            content=b"{not json",
            headers={**AUTH, "Content-Type": "application/json"},
        ),
        400,
        "bad_request",
    )
    assert table_counts(store) == before  # nothing of a bad batch is written when strict
    _error(client.post("/api/results?strict=maybe", json=bad, headers=AUTH), 400, "bad_request")
    # Without strict, the good result goes in and the bad one is listed: where, what, what to do.
    partial = client.post("/api/results", json=bad, headers=AUTH)
    assert partial.status_code == 201, partial.text
    data = partial.json()["data"]
    assert (data["results"], data["added"], data["rejected"]) == (1, 1, 1)
    [problem] = data["files"][0]["problems"]
    assert problem["where"] == "request results[1].metrics.latency_p50_ms"
    assert problem["problem"] == "'fast' is not a number" and problem["outcome"] == "rejected"
    assert "not added twice" in problem["fix"]
    assert data["files"][0]["status"] == "partial"
    assert table_counts(store)["results"] == before["results"] + 1


def test_report_files_post_as_upload_or_body(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    upload = client.post(
        "/api/results", files={"file": ("junit.xml", GOOD, "text/xml")}, headers=AUTH
    )
    assert upload.status_code == 201 and upload.json()["data"]["results"] == 7
    raw = client.post("/api/results", content=GOOD, headers={**AUTH, "Content-Type": "text/xml"})
    assert raw.status_code == 200 and raw.json()["data"]["added"] == 0  # same report
    small = _client(db, max_ingest_mb=1)
    huge = small.post(
        "/api/results",
        content=b"x" * (2 * 1024 * 1024),
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    _error(huge, 413, "payload_too_large")


def test_heartbeats_register_and_update_workers(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    first = _ok(
        client.post(
            "/api/heartbeat",
            json={
                "worker_id": "gpu-9",
                "hardware": "cuda",
                "cpu_percent": 40,
                "current_task": "bench",
            },
            headers=AUTH,
        )
    )
    assert first["registered"] is True
    assert (
        _ok(client.post("/api/heartbeat", json={"worker_id": "gpu-9"}, headers=AUTH))["registered"]
        is False
    )
    workers = _ok(client.get("/api/workers"))["items"]
    assert [(w["worker_id"], w["state"], w["hardware"]) for w in workers] == [
        ("gpu-9", "idle", "cuda")
    ]  # its last beat names no task
    _error(
        client.post("/api/heartbeat", json={"worker_id": "x", "cpu_percent": "hot"}, headers=AUTH),
        422,
        "invalid_results",
    )
    _error(
        client.post("/api/heartbeat", json={"cpu_percent": 1}, headers=AUTH), 422, "invalid_results"
    )


def test_answers_are_cached_per_parameters_and_follow_writes(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db, api_cache_time=3600)
    batch = [{"name": f"t{i}", "status": "passed", "ts": "2026-11-01T10:00:00Z"} for i in range(3)]
    client.post("/api/results", json=batch[:2], headers=AUTH)
    page1 = _ok(client.get("/api/tests?range=all&page_size=1&page=1"))
    page2 = _ok(client.get("/api/tests?range=all&page_size=1&page=2"))
    assert page1["items"][0]["test"] != page2["items"][0]["test"]  # every parameter in the key
    store = open_store(db)
    with store.cursor() as cur:  # a write behind the store's back: the cache still answers
        cur.execute("DELETE FROM results")
        cur.execute("DELETE FROM result_hours")
    assert _ok(client.get("/api/status?range=all"))["totals"]["results"] == 0  # first ask
    cached = _ok(client.get("/api/tests?range=all&page_size=1&page=1"))
    assert cached == page1
    client.post("/api/results", json=batch[2:], headers=AUTH)  # a write through the store
    assert _ok(client.get("/api/status?range=all"))["totals"]["results"] == 1


def test_websocket_status_ping_and_events(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    with client.websocket_connect("/api/ws") as socket:
        hello = socket.receive_json()
        assert hello["type"] == "status" and hello["data"]["results"] == 0
        socket.send_text("ping")
        assert socket.receive_json()["type"] == "pong"
        socket.send_text(json.dumps({"type": "ping"}))
        assert socket.receive_json()["type"] == "pong"
        client.post("/api/results", json=[{"name": "t", "status": "passed"}], headers=AUTH)
        event = socket.receive_json()
        assert event["type"] == "results" and event["data"]["added"] == 1
        events.hub.publish("broadcast", {"hello": "all"})
        message = socket.receive_json()
        assert message["type"] == "broadcast" and message["data"] == {"hello": "all"}


def test_eight_writers_and_readers_lose_and_duplicate_nothing(tmp_path) -> None:
    db = tmp_path / "busy.duckdb"
    client = _client(db, api_cache_time=0)
    errors: list[str] = []

    def writer(n: int) -> None:
        for batch in range(5):
            rows = [
                {
                    "name": f"w{n}",
                    "result_id": f"{n}-{batch}-{i}",
                    "status": "passed",
                    "ts": "2026-11-01T10:00:00Z",
                    "metrics": {"latency_p50_ms": float(i)},
                }
                for i in range(40)
            ]
            response = client.post("/api/results", json=rows, headers=AUTH)
            if response.status_code not in (200, 201):
                errors.append(response.text)
            again = client.post("/api/results", json=rows[:10], headers=AUTH)  # a retry
            if again.status_code != 200:
                errors.append(again.text)

    def reader() -> None:
        for _ in range(10):
            for path in ("/api/status", "/api/tests", "/api/workers", "/api/regressions"):
                response = client.get(path)
                if response.status_code != 200:
                    errors.append(response.text)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    store = open_store(db)
    with store.cursor() as cur:
        total, distinct = cur.execute(
            "SELECT count(*), count(DISTINCT result_id) FROM results"
        ).fetchall()[0]
        values = cur.execute("SELECT count(*) FROM measurements").fetchall()[0][0]
    assert total == distinct == 8 * 5 * 40 and values == total


def test_a_report_with_a_bad_record_goes_in_and_the_answer_lists_it(tmp_path) -> None:
    """Issue 17 on the API: the good records of a posted report go in; the answer says which
    record was left out and why; strict=true refuses the file whole."""
    from tests.test_ingest_surfaces import ODD

    client = _client(tmp_path / "w.duckdb")
    strict = client.post(
        "/api/results?strict=true", files={"file": ("odd.xml", ODD, "text/xml")}, headers=AUTH
    )
    error = _error(strict, 422, "invalid_results")
    assert "time='-3' is negative" in error["message"]
    answer = client.post("/api/results", files={"file": ("odd.xml", ODD, "text/xml")}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert (data["results"], data["added"], data["rejected"], data["warnings"]) == (4, 4, 1, 1)
    [file] = data["files"]
    assert file["status"] == "partial"
    assert [p["outcome"] for p in file["problems"]] == ["rejected", "kept"]
    assert file["problems"][0]["where"].startswith("odd.xml test case 2 (cart::removes)")
