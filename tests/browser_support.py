"""Helpers of the browser tests (tests/test_browser.py): finding chromium, the real server in a
subprocess, waiting for Streamlit, and watching a page for console errors and failed requests.

Environment:

- ``DTD_CHROMIUM``: the chromium executable (default ``/usr/bin/chromium``, Debian's package;
  Playwright's own browser download does not work on the build machine).
- ``REQUIRE_BROWSER=1``: a missing browser fails the tests instead of skipping them (``.ci/run``
  sets it, so CI cannot pass without running them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SCREENSHOTS = PROJECT / "docs" / "screenshots"
DTD = shutil.which("dtd", path=str(Path(sys.executable).parent)) or "dtd"


def project_env() -> dict[str, str]:
    """The environment for a `dtd` subprocess: no DTD_* settings from the caller, and this
    checkout's code first on the path. An editable install elsewhere (another clone's .venv)
    would otherwise serve that checkout's pages, and a broken page here would pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    return env


CHROMIUM = os.environ.get("DTD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


def browser_required() -> bool:
    return os.environ.get("REQUIRE_BROWSER", "") not in ("", "0")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "browser tests need the playwright package, which is not installed: "
            "run `.venv/bin/pip install -e '.[test]'` (or `make test`)"
        )
    path = Path(CHROMIUM)
    if not (path.is_file() and os.access(path, os.X_OK)):
        return (
            f"browser tests need chromium, and there is no executable at {CHROMIUM}: install it "
            "with `sudo apt-get install -y chromium` (Debian/Ubuntu), or point DTD_CHROMIUM at a "
            "chromium or chrome binary. Set REQUIRE_BROWSER=1 to make this a failure (CI does)"
        )
    return None


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """`dtd serve` on a loopback port with its own demo database."""

    db: Path
    log_path: Path
    token: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def start(self, timeout: float = 90) -> None:
        env = project_env()
        env["DTD_API_TOKEN"] = self.token
        # Someone editing the checkout while the tests run would make Streamlit's file watcher
        # show "File change. Rerun" and could rerun pages mid-test. `dtd serve` is not the
        # streamlit CLI, so STREAMLIT_* variables do not reach the config; a config file in the
        # working directory does. The project's own .streamlit/config.toml (the themes) sits next
        # to the entry point, is read too and wins, and does not set the watcher.
        folder = self.log_path.parent / "cwd"
        (folder / ".streamlit").mkdir(parents=True, exist_ok=True)
        (folder / ".streamlit" / "config.toml").write_text('[server]\nfileWatcherType = "none"\n')
        with self.log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block it
            self.process = subprocess.Popen(
                [DTD, "serve", "--db", str(self.db), "--port", str(self.port)],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dtd serve exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if (
                    http(f"{self.base}/_stcore/health", timeout=5)[0] == 200
                    and http(f"{self.base}/api/status", timeout=30)[0] == 200
                ):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dtd serve did not answer within {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def make_demo(db: Path, results: int = 20_000, days: int = 14) -> None:
    """The demo database with its change points, written before the server starts (one process
    owns a DuckDB file). Analysed up front, the server has no background detection competing
    with the pages for the two cores, and the Regressions page shows its final state."""
    env = project_env()
    for command in (
        ["demo", "--db", str(db), "--results", str(results), "--days", str(days)],
        ["analyse", "--db", str(db)],
    ):
        done = subprocess.run(
            [DTD, *command], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        if done.returncode:
            raise RuntimeError(f"dtd {command[0]} failed: {done.stdout}{done.stderr}")


# --- Streamlit in the browser ----------------------------------------------------------------

IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app
    && app.dataset.testConnectionState === 'CONNECTED'
    && app.dataset.testScriptState === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]');
}"""
"""Connected, the script not running (no status widget) and every lazily loaded element drawn
(Streamlit shows a skeleton while a widget's code loads, which can outlast the run)."""

CHARTS_JS = """() => {
  const charts = Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]'));
  return charts.map(chart => {
    const drawn = Array.from(chart.querySelectorAll('canvas, svg')).filter(el => {
      const box = el.getBoundingClientRect();
      return box.width > 0 && box.height > 0;
    });
    let inked = false;
    for (const el of drawn) {
      if (el.tagName.toLowerCase() === 'svg') { inked = inked || el.querySelector('path, rect') !== null; continue; }
      const ctx = el.getContext('2d');
      const data = ctx.getImageData(0, 0, el.width, el.height).data;
      const first = data.slice(0, 4).join();
      for (let i = 0; i < data.length; i += 4 * 97) {
        if (data.slice(i, i + 4).join() !== first) { inked = true; break; }
      }
    }
    return {drawn: drawn.length, inked};
  });
}"""
"""Per Vega-Lite chart: how many canvas/svg elements have a non-zero size, and whether anything
was drawn on them (a canvas with more than one colour)."""


STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const skeletons = Array.from(document.querySelectorAll(
    '[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]'));
  return {
    connection: app && app.dataset.testConnectionState,
    script: app && app.dataset.testScriptState,
    statusWidget: (document.querySelector('[data-testid="stStatusWidget"]') || {}).innerText || null,
    skeletons: skeletons.map(s => (s.closest('[class*="st-key-"]') || s.parentElement).className),
    url: location.href,
  };
}"""


def wait_idle(page, timeout: float = 60_000) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(IDLE_JS, timeout=timeout, polling=100)
    except PlaywrightTimeout:
        raise AssertionError(
            f"Streamlit did not settle in {timeout / 1000:.0f} s: {page.evaluate(STATE_JS)}"
        ) from None


def exceptions(page) -> list[str]:
    """The text of every Streamlit exception element on the page."""
    found = page.locator('[data-testid="stException"]')
    return [found.nth(i).inner_text()[:1500] for i in range(found.count())]


def wait_ready(page, title: str | None = None, timeout: float = 60_000) -> None:
    """The page's script has run and everything is drawn: Streamlit is idle, no exception is
    shown, the page's title is there, and every chart has a canvas or svg of non-zero size with
    something drawn on it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wait_idle(page, timeout)
    shown = exceptions(page)
    assert not shown, f"Streamlit exception on {page.url}:\n" + "\n---\n".join(shown)
    if title is not None:
        page.locator("h1").filter(has_text=title).first.wait_for(timeout=10_000)
    try:
        page.wait_for_function(
            f"() => ({CHARTS_JS})().every(c => c.drawn > 0 && c.inked)",
            timeout=timeout,
            polling=200,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"charts not drawn on {page.url}: {charts(page)}") from None
    wait_idle(page, timeout)


def charts(page) -> list[dict]:
    return page.evaluate(CHARTS_JS)


def metric_value(page, label: str) -> str:
    """The shown value of the KPI tile with this label."""
    tile = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
    )
    return tile.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def as_int(text: str) -> int:
    return int(text.replace(",", "").strip())


# --- what a page must not do -----------------------------------------------------------------


def harmless_deep_link_404(base: str, pages: list[str]) -> re.Pattern:
    """Streamlit's frontend, on a deep link such as /Trends, first asks /Trends/_stcore/health
    and /Trends/_stcore/host-config (404) before falling back to /_stcore/...: exactly these."""
    names = "|".join(re.escape(name) for name in pages)
    return re.compile(rf"^{re.escape(base)}/(?:{names})/_stcore/(?:health|host-config)$")


class Watch:
    """Records a page's console errors, uncaught exceptions, failed requests and HTTP errors,
    except the deep-link 404s above (the console line and the response, each by exact URL)."""

    def __init__(self, page, harmless: re.Pattern, base: str) -> None:
        self.harmless = harmless
        self.media = re.compile(rf"^{re.escape(base)}/media/[0-9a-f]+\.[a-z]+$")
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.failed: list[tuple[str, str, str]] = []
        self.downloaded: set[str] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        url = (message.location or {}).get("url", "")
        text = f"console {message.type}: {message.text} ({url})"
        if message.type == "error":
            if (
                message.text.startswith("Failed to load resource: the server responded with a ")
                and "404" in message.text
                and self.harmless.match(url)
            ):
                return
            self.problems.append(text)
        elif message.type == "warning":
            self.warnings.append(text)

    def _failed(self, request) -> None:
        self.failed.append((request.resource_type, request.url, request.failure or ""))

    def _response(self, response) -> None:
        if response.status >= 400 and not (
            response.status == 404 and self.harmless.match(response.url)
        ):
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def _cancelled_download(self, kind: str, url: str) -> bool:
        """Streamlit's download buttons fetch their file ahead of a click and cancel that fetch
        when a rerun replaces the button; a clicked download is a navigation Chromium turns into
        a download and reports as aborted. Both only for the app's own /media/<hash>.<ext>."""
        return bool(self.media.match(url)) and (kind == "fetch" or url in self.downloaded)

    def check(self, page) -> None:
        """No exception element on the page and nothing recorded."""
        shown = exceptions(page)
        assert not shown, f"Streamlit exception on {page.url}:\n" + "\n---\n".join(shown)
        failed = [
            f"request failed: {kind} {url}: {failure}"
            for kind, url, failure in self.failed
            if not (failure == "net::ERR_ABORTED" and self._cancelled_download(kind, url))
        ]
        problems = self.problems + failed
        assert not problems, "browser problems:\n" + "\n".join(problems)


def rgb(hex_color: str) -> str:
    """``#1f6feb`` as the browser computes it: ``rgb(31, 111, 235)``."""
    value = hex_color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(value[i : i + 2], 16) for i in (0, 2, 4)))


def luminance(rgb: str) -> float:
    """Relative luminance (WCAG) of a CSS ``rgb(...)``/``rgba(...)`` colour."""
    parts = [float(v) for v in re.findall(r"[\d.]+", rgb)[:3]]

    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
