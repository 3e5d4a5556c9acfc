"""Property-based fuzzing of /api against its own OpenAPI document (schemathesis + hypothesis).

Schemathesis reads the served /api/openapi.json and generates requests for every operation:
positive ones (valid by the document) and negative ones (breaking it: wrong types, values out
of range, unknown enum values, missing fields). Every answer must be in the document (status,
media type, body shape, headers), none may be a 5xx, a request that breaks the document must be
refused, and a refused request must leave the store exactly as it was (row counts and the
store's commit counter). Bounded: a fixed number of examples per operation and mode, generated
deterministically (``derandomize``), so a run takes the same cases every time; no timing is
asserted. ``DTD_FUZZ_EXAMPLES`` raises the count for a longer local run.

Positive data acceptance (a valid request must be accepted) is checked for the heartbeat, whose
document says everything the server checks. Elsewhere validity depends on the data (a metric or
dimension the store does not hold is a documented 400 or 404, as is from after to) or on a
file's content (a raw report body), which no schema can say.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from lib import demo
from lib import openapi as document
from lib.api import ApiState, create_api
from lib.config import Settings
from lib.store import open_store
from tests.conftest import NOW, table_counts

TOKEN = "fuzz-token"
EXAMPLES = int(os.environ.get("DTD_FUZZ_EXAMPLES", "30"))
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in document.document()["paths"].items()
    for method in item
    if path != "/api/openapi.json"  # schemathesis leaves the document's own path out
]
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
]
TALLY = {"cases": 0, "refused": 0, "seconds": 0.0}
"""Read by tests/conftest.py's terminal summary: the suite's case count."""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):
    """A small real demo store behind the real API, loaded into schemathesis from the
    document the API serves."""
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb"
    demo.generate(db, results=4000, days=3, seed=18, now=NOW)
    state = ApiState(
        lambda: Settings(db_path=db, db_configured=True, api_token=TOKEN, api_cache_time=0)
    )
    app = Starlette(routes=[Mount("/api", app=create_api(state))])
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    yield app, db, operations


def _fingerprint(db: Path) -> tuple:
    store = open_store(db)
    with store.cursor() as cur:
        beats = cur.execute("SELECT count(*) FROM heartbeats").fetchall()[0][0]
    return table_counts(store), beats, store.data_version


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_in_the_document(target, label: str, mode: GenerationMode) -> None:
    app, db, operations = target
    operation = operations[label]
    checks = list(CHECKS)
    if label == "POST /api/heartbeat":
        checks.append(openapi_checks.positive_data_acceptance)
    started = time.perf_counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        before = _fingerprint(db)
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"}, checks=checks
        )
        TALLY["cases"] += 1
        if response.status_code >= 400:
            TALLY["refused"] += 1
            assert _fingerprint(db) == before, f"{label} answered {response.status_code} but wrote"

    try:
        run()
    finally:
        TALLY["seconds"] += time.perf_counter() - started


@pytest.mark.parametrize("path", list(document.document()["paths"]))
def test_other_methods_are_405_with_allow(target, path: str) -> None:
    """What schemathesis's coverage phase checks: an undeclared method gets 405 and an Allow
    header naming the declared ones, in the documented error shape."""
    app = target[0]
    client = TestClient(app)
    declared = {m.upper() for m in document.document()["paths"][path]}
    allowed = declared | ({"HEAD"} if "GET" in declared else set())
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
        response = client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        TALLY["cases"] += 1
        assert response.status_code == 405, (method, path, response.text)
        assert set(response.headers["allow"].split(", ")) == allowed
        body = response.json()
        assert body["status"] == "error" and body["error"]["type"] == "method_not_allowed"
        assert (
            "405" in document.document()["paths"][path][next(iter(declared)).lower()]["responses"]
        )
