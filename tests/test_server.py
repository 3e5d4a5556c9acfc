"""The whole server in one process: UI, API and WebSocket on one port (DashboardServer), and
`dtd serve` as a user starts it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from lib import config
from lib.config import ConfigError
from lib.server import DashboardServer

DTD = shutil.which("dtd", path=str(Path(sys.executable).parent)) or "dtd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture()
def overrides():
    saved = dict(config.OVERRIDES)
    yield config.OVERRIDES
    config.OVERRIDES.clear()
    config.OVERRIDES.update(saved)


def test_one_port_serves_ui_api_and_websocket(tmp_path, overrides) -> None:
    port = _free_port()
    server = DashboardServer(port=port, db_path=tmp_path / "srv.duckdb")
    server.configure({"api_token": "tok", "max_items_per_page": 7})
    with pytest.raises(ConfigError, match="unknown keys colour"):
        server.configure({"colour": "red"})
    with pytest.raises(ConfigError, match="theme must be"):
        server.configure({"theme": "neon"})
    assert server.settings.max_items_per_page == 7 and server.settings.theme == "light"
    thread = server.start_async()
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/_stcore/health")
        status, page = _get(f"{base}/")
        assert status == 200 and "<noscript>" in page  # the Streamlit UI
        status, body = _get(f"{base}/api/nope")
        assert status == 404 and json.loads(body)["error"]["type"] == "not_found"
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "status"
            rows = json.dumps([{"name": f"t{i}", "status": "passed"} for i in range(50)]).encode()
            status, body = _get(
                f"{base}/api/results",
                {"Authorization": "Bearer tok", "Content-Type": "application/json"},
                rows,
            )
            assert status == 201, body
            assert json.loads(ws.recv(timeout=10))["data"]["added"] == 50
            server.broadcast({"note": "deploy at 5"})
            message = json.loads(ws.recv(timeout=10))
            assert message["type"] == "broadcast" and message["data"] == {"note": "deploy at 5"}
        data = json.loads(_get(f"{base}/api/tests?range=all")[1])["data"]
        assert data["page_size"] == 7 and data["total"] == 50  # configure() reached the API
    finally:
        server.stop()
    assert not thread.is_alive()


def test_dtd_serve_takes_10000_results_and_reports_them(tmp_path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    env["DTD_API_TOKEN"] = "serve-token"
    process = subprocess.Popen(
        [DTD, "serve", "--db", str(tmp_path / "serve.duckdb"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/api/status")
        rows = [
            {
                "name": f"test_{i % 100}",
                "suite": "load",
                "worker": f"w{i % 8}",
                "status": "failed" if i % 25 == 0 else "passed",
                "duration_s": 0.5,
                "ts": 1795000000 + i,
            }
            for i in range(10_000)
        ]
        status, body = _get(
            f"{base}/api/results",
            {"Authorization": "Bearer serve-token", "Content-Type": "application/json"},
            json.dumps({"results": rows}).encode(),
        )
        assert status == 201, body
        totals = json.loads(_get(f"{base}/api/status?range=all")[1])["data"]["totals"]
        assert (totals["results"], totals["failed"]) == (10_000, 400)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
