"""The real server: `streamlit run streamlit_app.py` answers its health check and serves the app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lib import demo

PROJECT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return response.status, response.read().decode("utf-8", "replace")


def test_server_answers_health_and_serves_the_page(tmp_path: Path) -> None:
    db = tmp_path / "serve.duckdb"
    demo.generate(db, results=2000, days=2, seed=4)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    env["DTD_DB"] = str(db)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and health != "ok":
            try:
                health = _get(f"http://127.0.0.1:{port}/_stcore/health")[1]
            except OSError:
                time.sleep(0.3)
        assert health == "ok"
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<noscript>" in body
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
