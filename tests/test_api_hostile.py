"""Issue 18: every write path refuses what it should, and refusing changes nothing.

Each test replays one finding against the real API (Starlette's TestClient over a real store)
and checks the answer the issue asks for, plus that the store is exactly as before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.routing import Mount

from lib.api import ApiState, create_api
from lib.config import Settings
from lib.store import open_store
from tests.conftest import table_counts
from tests.test_api import AUTH, TOKEN, _client, _error, _ok

BINDER = "Binder"


def _fingerprint(db: Path) -> tuple:
    """Rows per table and the store's commit counter: a refused request moves neither."""
    store = open_store(db)
    with store.cursor() as cur:
        beats = cur.execute("SELECT count(*) FROM heartbeats").fetchall()[0][0]
        workers = cur.execute("SELECT * FROM workers ORDER BY worker_id").fetchall()
    return table_counts(store), beats, workers, store.data_version


@pytest.mark.parametrize("path", ["/api/results", "/api/heartbeat"])
def test_deeply_nested_json_is_a_400_not_a_500(tmp_path, path) -> None:
    """Finding 2: 100,000 nested '[' answered 500 (RecursionError)."""
    db = tmp_path / "w.duckdb"
    client = _client(db)
    before = _fingerprint(db)
    headers = {**AUTH, "Content-Type": "application/json"}
    for body in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b"[" * 40 + b"]" * 40):
        error = _error(client.post(path, content=body, headers=headers), 400, "bad_request")
        assert "nested" in error["message"] and "32 levels" in error["message"]
        assert "Recursion" not in error["message"]
    objects = b'{"a":' * 500 + b"1" + b"}" * 500
    _error(client.post(path, content=objects, headers=headers), 400, "bad_request")
    for broken in (b"{not json", b"\xff\xfe\x00", b'{"x": NaN}', b"[1e999999]" * 2):
        _error(client.post(path, content=broken, headers=headers), 400, "bad_request")
    assert _fingerprint(db) == before


@pytest.mark.parametrize("field", ["hostname", "hardware", "device", "os"])
def test_heartbeat_field_types_are_422_for_new_and_known_workers(tmp_path, field) -> None:
    """Finding 3: an object as hostname was stored for a new worker and a DuckDB BinderException
    (500) for a known one."""
    db = tmp_path / "w.duckdb"
    client = _client(db)
    bad = {"worker_id": "gpu-1", field: {"a": 1}}
    first = _error(client.post("/api/heartbeat", json=bad, headers=AUTH), 422, "invalid_results")
    assert f"{field}: {{'a': 1}} is not text" in first["message"]
    assert first["details"] == [{"where": field, "problem": "{'a': 1} is not text"}]
    assert table_counts(open_store(db))["workers"] == 0  # the new worker was not registered
    _ok(client.post("/api/heartbeat", json={"worker_id": "gpu-1", field: "x"}, headers=AUTH))
    before = _fingerprint(db)
    later = _error(client.post("/api/heartbeat", json=bad, headers=AUTH), 422, "invalid_results")
    assert BINDER not in later["message"] and later["message"] == first["message"]
    assert _fingerprint(db) == before


@pytest.mark.parametrize(
    "beat, where",
    [
        ({"worker_id": "w", "cpu_percent": 101}, "cpu_percent"),
        ({"worker_id": "w", "memory_percent": -1}, "memory_percent"),
        ({"worker_id": "w", "gpu_percent": True}, "gpu_percent"),
        ({"worker_id": "w", "power_watts": "200"}, "power_watts"),
        ({"worker_id": "w", "heartbeat_interval_s": 0}, "heartbeat_interval_s"),
        ({"worker_id": "w", "current_task": ["a"]}, "current_task"),
        ({"worker_id": " "}, "worker_id"),
        ({"worker_id": 7}, "worker_id"),
        ({"worker_id": "w", "colour": "red"}, "colour"),
        ({}, "worker_id"),
    ],
)
def test_heartbeat_values_are_checked(tmp_path, beat, where) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    _ok(client.post("/api/heartbeat", json={"worker_id": "w"}, headers=AUTH))
    before = _fingerprint(db)
    error = _error(client.post("/api/heartbeat", json=beat, headers=AUTH), 422, "invalid_results")
    assert [d["where"] for d in error["details"]] == [where]
    assert _fingerprint(db) == before


@pytest.mark.parametrize(
    "ts",
    ["9999-12-31T00:00:00Z", "1969-12-31T23:59:59Z", "2200-01-01", 1e10, 8e12, -1, "tomorrow"],
)
def test_times_outside_the_documented_years_are_422(tmp_path, ts) -> None:
    """Finding 4: year 9999 in a JSON batch was accepted (201)."""
    db = tmp_path / "w.duckdb"
    client = _client(db)
    before = _fingerprint(db)
    batch = [{"name": "t", "status": "passed", "ts": ts}]
    error = _error(client.post("/api/results", json=batch, headers=AUTH), 422, "invalid_results")
    assert error["details"][0]["where"] == "results[0].ts"
    if ts != "tomorrow":
        assert "outside the years 1970 to 2199" in error["message"]
    assert _fingerprint(db) == before


def test_the_edges_of_the_documented_years_go_in(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    edges = ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", 0, 7258118399, 7258118399999]
    batch = [{"name": f"t{i}", "ts": ts} for i, ts in enumerate(edges)]
    response = client.post("/api/results", json=batch, headers=AUTH)
    assert response.status_code == 201, response.text
    with open_store(db).cursor() as cur:
        years = sorted(r[0] for r in cur.execute("SELECT year(ts) FROM results").fetchall())
    assert years == [1970, 1970, 2199, 2199, 2199]


def test_other_formats_keep_the_same_years(tmp_path) -> None:
    """No record format stores a far-future time: a JUnit timestamp in year 9999 is not a time
    dtd can use, so (issue 17) the test case falls back to the file's time with a warning."""
    db = tmp_path / "w.duckdb"
    client = _client(db)
    junit = b'<testsuite name="s" timestamp="9999-01-01T00:00:00"><testcase name="t"/></testsuite>'
    response = client.post(
        "/api/results", content=junit, headers={**AUTH, "Content-Type": "application/xml"}
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["warnings"] == 1 and "9999-01-01" in data["files"][0]["problems"][0]["problem"]
    with open_store(db).cursor() as cur:
        [(year,)] = cur.execute("SELECT year(ts) FROM results").fetchall()
    assert 1970 <= year < 2200


def test_batch_values_are_checked_with_their_place(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    client = _client(db)
    before = _fingerprint(db)
    cases = {
        "results[0].name": {"name": {"a": 1}},
        "results[0].batch_size": {"name": "t", "batch_size": 0},
        "results[0].duration_s": {"name": "t", "duration_s": -1},
        "results[0].metrics.latency_ms": {"name": "t", "metrics": {"latency_ms": True}},
        "results[0].extra.bad key": {"name": "t", "extra": {"bad key": "v"}},
        "results[0].kind": {"name": "t", "kind": "smoke"},
        "results[0].status": {"name": "t", "status": "xfail"},
        "results[0].hardware": {"name": "t", "hardware": 5},
    }
    for where, item in cases.items():
        error = _error(
            client.post("/api/results", json=[item], headers=AUTH), 422, "invalid_results"
        )
        assert [d["where"] for d in error["details"]] == [where], error
    assert _fingerprint(db) == before


def test_unknown_query_parameters_are_400_naming_the_known_ones(analysed_db, raw) -> None:
    """Finding 7: /api/tests?nosuchdim=x returned unfiltered data."""
    client = _client(analysed_db)
    error = _error(client.get("/api/tests?nosuchdim=x"), 400, "bad_request")
    assert "'nosuchdim'" in error["message"] and "hardware" in error["message"]
    assert error["details"]["unknown"] == ["nosuchdim"]
    assert {"range", "hardware", "page", "state"} <= set(error["details"]["known"])
    for path in ("/api/status?hardwre=cuda", "/api/workers?pagesize=5", "/api/openapi.json?x=1"):
        _error(client.get(path), 400, "bad_request")
    missing = _error(client.get("/api/tests?extra.colour=red"), 400, "bad_request")
    assert "extra.browser" in missing["message"]  # the extra keys the store does hold
    _error(client.get("/api/tests?state=sleepy"), 400, "bad_request")
    # A known extra dimension filters for real: counts equal pandas on the raw tables.
    series = raw["series"]
    chrome = series[series["extra"].map(lambda e: dict(e or {}).get("browser") == "chrome")]
    expected = int(raw["results"]["series_id"].isin(chrome["series_id"]).sum())
    data = _ok(client.get("/api/status?range=all&extra.browser=chrome"))
    assert data["window"]["current"]["results"] == expected > 0


def test_a_crash_answers_internal_error_with_a_request_id(tmp_path, caplog) -> None:
    """Finding 7: a 500 body carried the database's error text. A route added through the
    API's own extension point (``app.add_route``) fails with a secret in its exception."""
    db = tmp_path / "w.duckdb"
    state = ApiState(lambda: Settings(db_path=db, db_configured=True, api_token=TOKEN))
    api = create_api(state)

    def broken(request: Request):
        raise RuntimeError("Binder Error: secret table xyz_internal")

    api.add_route("/custom", broken)
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    client = TestClient(Starlette(routes=[Mount("/api", app=api)]), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="lib.api"):
        response = client.get("/api/custom")
    error = _error(response, 500, "internal_error")
    request_id = error["details"]["request_id"]
    assert error["message"].startswith("internal error (request id ")
    assert request_id in error["message"] and response.headers["x-request-id"] == request_id
    assert "xyz_internal" not in response.text and "Binder" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and "xyz_internal" in str(logged[0].exc_info[1])


def test_405_names_the_allowed_methods(tmp_path) -> None:
    client = _client(tmp_path / "w.duckdb")
    wrong = client.get("/api/results")
    assert _error(wrong, 405, "method_not_allowed") and wrong.headers["allow"] == "POST"
    also = client.delete("/api/status")
    assert _error(also, 405, "method_not_allowed")
    assert set(also.headers["allow"].split(", ")) == {"GET", "HEAD"}
