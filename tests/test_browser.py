"""End-to-end tests in a real browser: Debian's chromium driven by Playwright against `dtd serve`.

One server (UI, /api and /ws in one process) starts per module on a free loopback port, with its
own 20,000-result demo database made before it starts. The tests load every page in the light
and the dark theme (no exception element, no console error, charts drawn, a screenshot into
docs/screenshots/), change a sidebar filter and reload its link, download CSV and PNG files, switch
the theme from the settings menu, post results through the API and watch the Overview pick them up
on its own, and open a downloaded HTML report with the network blocked.

Without chromium (or playwright) the module is skipped with one message saying what to install;
with ``REQUIRE_BROWSER=1`` (set by ``.ci/run``) that is a failure instead. ``DTD_CHROMIUM`` picks
another executable (tests/browser_support.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from lib.config import REFRESH_CHOICES
from lib.ui.sidebar import PAGES
from tests import browser_support as bs

_MISSING = bs.missing_browser()
if _MISSING and not bs.browser_required():
    pytest.skip(_MISSING, allow_module_level=True)

TITLES = {"Trends": "Performance trends", "Compare": "Dimension comparison"}
"""Page titles that differ from the navigation label."""
CHARTED = {"Overview", "Trends", "Compare", "Heatmap", "Correlation", "Reports"}
"""Pages that draw Vega-Lite charts on first load with the demo data."""
LABELS = [label for _, label, _ in PAGES]
THEMES = tomllib.loads((bs.PROJECT / ".streamlit" / "config.toml").read_text())["theme"]


def _route(path: str) -> str:
    """The URL path of a page: the entry point is /, pages/2_Trends.py is /Trends."""
    return "" if path == "streamlit_app.py" else Path(path).stem.split("_", 1)[1]


ROUTES = {label: _route(path) for path, label, _ in PAGES}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if _MISSING:
        pytest.fail(f"REQUIRE_BROWSER is set, but {_MISSING}")
    folder = tmp_path_factory.mktemp("browser")
    db = folder / "demo.duckdb"
    bs.make_demo(db)
    srv = bs.Server(db=db, log_path=folder / "server.log", token=f"tok-{uuid.uuid4().hex}")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(server: bs.Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=bs.CHROMIUM, args=bs.CHROMIUM_FLAGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def contexts(browser):
    """One context per theme preference, shared by the page tests (the browser's cache keeps
    Streamlit's scripts between them). The app's config defines both themes, so the browser's
    colour-scheme preference picks the one people see first."""
    made = {
        theme: browser.new_context(viewport=bs.VIEWPORT, color_scheme=theme, accept_downloads=True)
        for theme in ("light", "dark")
    }
    yield made
    for context in made.values():
        context.close()


@pytest.fixture()
def open_page(server: bs.Server, contexts, browser):
    """open_page(path, theme="light", fresh=False) -> (page, watch), waiting until it is drawn;
    fresh=True uses a context of its own (own local storage)."""
    harmless = bs.harmless_deep_link_404(server.base, [r for r in ROUTES.values() if r])
    opened, own = [], []

    def open_(path: str, title: str | None = None, theme: str = "light", fresh: bool = False):
        if fresh:
            context = browser.new_context(
                viewport=bs.VIEWPORT, color_scheme=theme, accept_downloads=True
            )
            own.append(context)
        else:
            context = contexts[theme]
        page = context.new_page()
        page.set_default_timeout(60_000)
        watch = bs.Watch(page, harmless, server.base)
        opened.append(page)
        page.goto(server.base + path)
        bs.wait_ready(page, title)
        return page, watch

    yield open_
    for page in opened:
        page.close()
    for context in own:
        context.close()


def _screenshot(page, name: str) -> None:
    bs.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(bs.VIEWPORT["width"] - 2, bs.VIEWPORT["height"] - 2)  # hover nothing
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(bs.SCREENSHOTS / name), full_page=False, animations="disabled")


# --- every page, both themes -------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("label", LABELS)
def test_page_loads_cleanly_and_draws_its_charts(open_page, server, label: str, theme: str):
    page, watch = open_page("/" + ROUTES[label], TITLES.get(label, label), theme=theme)
    drawn = bs.charts(page)
    if label in CHARTED:
        assert drawn, f"{label}: no Vega-Lite chart on the page"
    assert all(c["drawn"] and c["inked"] for c in drawn), f"{label}: charts not drawn: {drawn}"
    colors = page.evaluate(
        r"""() => {
          const style = el => getComputedStyle(document.querySelector(el));
          const behind = sel => {  // the first opaque background at or above the element
            for (let el = document.querySelector(sel); el; el = el.parentElement) {
              const color = getComputedStyle(el).backgroundColor;
              if (!/^rgba\(.*, 0\)$/.test(color) && color !== 'transparent') return color;
            }
            return 'rgb(255, 255, 255)';
          };
          const label = '[data-testid="stSidebar"] [data-testid="stWidgetLabel"] p';
          return {
            app: behind('[data-testid="stMain"] h1'),
            sidebar: behind(label),
            title: style('[data-testid="stMain"] h1').color,
            text: style(label).color,
          };
        }"""
    )
    # The project's own themes (.streamlit/config.toml), not Streamlit's defaults.
    assert colors["app"] == bs.rgb(THEMES[theme]["backgroundColor"]), (theme, colors)
    assert colors["title"] == bs.rgb(THEMES[theme]["textColor"]), (theme, colors)
    background = bs.luminance(colors["app"])
    if theme == "dark":
        assert background < 0.05, f"{label}: the dark theme's background is not dark: {colors}"
        assert bs.luminance(colors["sidebar"]) < 0.05, colors
    else:
        assert background > 0.8, f"{label}: the light theme's background is not light: {colors}"
    # WCAG AAA for the title, AA for the sidebar's labels against their background.
    assert bs.contrast(colors["title"], colors["app"]) >= 7, colors
    assert bs.contrast(colors["text"], colors["sidebar"]) >= 4.5, colors
    watch.check(page)
    _screenshot(page, f"{label.lower()}-{theme}.png")


# --- the theme from the settings menu ----------------------------------------------------------


def test_settings_menu_switches_to_the_dark_theme_and_keeps_it(open_page):
    page, watch = open_page("/Heatmap", "Heatmap", theme="light", fresh=True)
    app_background = (
        "() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor"
    )
    assert bs.luminance(page.evaluate(app_background)) > 0.8
    page.locator('[data-testid="stMainMenu"]').click()
    page.locator('[data-testid="stMainMenuItem-theme-Dark"]').click()
    page.wait_for_function(
        f"() => {{ const c = ({app_background})().match(/\\d+/g).map(Number);"
        " return c[0] + c[1] + c[2] < 120; }"
    )
    page.keyboard.press("Escape")
    title = page.evaluate("() => getComputedStyle(document.querySelector('h1')).color")
    assert bs.contrast(title, page.evaluate(app_background)) >= 7
    page.reload()
    bs.wait_ready(page, "Heatmap")
    assert bs.luminance(page.evaluate(app_background)) < 0.05, "the choice did not survive a reload"
    watch.check(page)


# --- filters live in the link ------------------------------------------------------------------


def _status(server: bs.Server, query: str) -> dict:
    status, body = bs.http(f"{server.base}/api/status?{query}")
    assert status == 200, body
    return json.loads(body)["data"]["window"]["current"]


def _combobox(page, key: str) -> str:
    """The value a sidebar select box shows."""
    return page.locator(f'[data-testid="stSidebar"] .st-key-{key} [role="combobox"]').input_value()


def test_sidebar_filter_updates_link_and_content_and_reload_restores_both(open_page, server):
    page, watch = open_page("/?range=all", "Overview")
    everything = bs.as_int(bs.metric_value(page, "Results"))
    assert everything == _status(server, "range=all")["results"]

    hardware = page.locator('[data-testid="stSidebar"] .st-key-hardware')
    hardware.locator('[role="combobox"]').click()
    page.get_by_role("option", name="cuda", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"[?&]hardware=cuda(&|$)"))
    expected = _status(server, "range=all&hardware=cuda")["results"]
    assert 0 < expected < everything
    page.wait_for_function(
        """([label, value]) => Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
             .some(m => m.querySelector('[data-testid="stMetricLabel"]').innerText.trim() === label
                     && m.querySelector('[data-testid="stMetricValue"]').innerText.trim() === value)""",
        arg=["Results", f"{expected:,}"],
    )
    bs.wait_ready(page, "Overview")
    assert "range=all" in page.url and "hardware=cuda" in page.url
    share = page.get_by_text("Link to this view").first.inner_text()
    assert "hardware=cuda" in share and "range=all" in share, share

    link = page.url
    page.reload()
    bs.wait_ready(page, "Overview")
    assert page.url == link
    chips = [tag.get_attribute("aria-label") for tag in hardware.locator("[data-tag]").all()]
    assert chips == ["cuda"], chips
    assert _combobox(page, "range") == "all"
    assert bs.as_int(bs.metric_value(page, "Results")) == expected
    watch.check(page)


# --- downloads ---------------------------------------------------------------------------------


def _download(page, watch: bs.Watch, key: str) -> tuple[str, bytes]:
    """Click the download button with this key; the file's name and bytes."""
    with page.expect_download() as info:
        page.locator(f".st-key-{key} button").filter(visible=True).click()
    download = info.value
    watch.downloaded.add(download.url)
    assert download.failure() is None, download.failure()
    return download.suggested_filename, Path(download.path()).read_bytes()


def _decoded(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    Image.open(io.BytesIO(data)).verify()
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_csv_and_png_downloads_deliver_the_right_files(open_page, theme: str):
    page, watch = open_page("/?range=all", "Overview", theme=theme)
    results = bs.as_int(bs.metric_value(page, "Results"))

    name, data = _download(page, watch, "pass_rate_over_time-csv")
    assert name == "pass_rate_over_time.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert rows and list(rows[0]) == ["bucket", "pass_rate", "passed", "failed", "error", "skipped"]
    counted = sum(int(r[s]) for r in rows for s in ("passed", "failed", "error", "skipped"))
    assert counted == results, "the chart's CSV does not add up to the Results tile"
    assert all(r["pass_rate"] == "" or 0 <= float(r["pass_rate"]) <= 1 for r in rows)

    name, data = _download(page, watch, "latest_failures-csv")
    assert name == "latest_failures.csv"
    header = next(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert "message" in header and len(data.splitlines()) > 1, header

    name, data = _download(page, watch, "results_by_status-png")
    assert name == "results_by_status.png"
    image = _decoded(data)
    assert image.width > 200 and image.height > 100, image.size
    assert len(image.getcolors(maxcolors=1 << 20)) > 3, "the PNG is blank"
    corner = bs.luminance("rgb({}, {}, {})".format(*image.getpixel((2, 2))))
    # Exported pictures follow the viewer's theme.
    assert corner < 0.1 if theme == "dark" else corner > 0.8, (theme, image.getpixel((2, 2)))
    watch.check(page)


# --- new results show up on their own ------------------------------------------------------------


def test_posted_results_appear_on_the_overview_within_one_refresh_without_reload(open_page, server):
    label, seconds = min(((k, v) for k, v in REFRESH_CHOICES.items() if v), key=lambda kv: kv[1])
    page, watch = open_page(f"/?range=all&refresh={label}", "Overview")
    assert _combobox(page, "refresh") == label
    before = bs.as_int(bs.metric_value(page, "Results"))
    failures = bs.as_int(bs.metric_value(page, "Failures"))
    page.evaluate("window.__notReloaded = true")

    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch = [
        {
            "name": f"test_browser_e2e_{tag}_{i}",
            "suite": "browser-e2e",
            "kind": "unit_test",
            "status": "failed" if i < 3 else "passed",
            "message": "AssertionError: posted by the browser test" if i < 3 else None,
            "duration_s": 0.25,
            "worker": "e2e-worker",
            "hardware": "cpu",
            "ts": now,
        }
        for i in range(17)
    ]
    batch = [{k: v for k, v in r.items() if v is not None} for r in batch]
    status, body = bs.http(
        f"{server.base}/api/results",
        data=json.dumps({"results": batch}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    assert status == 201, body
    posted = time.monotonic()
    page.wait_for_function(
        """([label, value]) => Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
             .some(m => m.querySelector('[data-testid="stMetricLabel"]').innerText.trim() === label
                     && m.querySelector('[data-testid="stMetricValue"]').innerText.trim() === value)""",
        arg=["Results", f"{before + len(batch):,}"],
        timeout=(seconds + 10) * 1000,
    )
    waited = time.monotonic() - posted
    # One interval plus the time a rerun of the page takes on a slow machine.
    assert waited <= seconds + 5, f"took {waited:.1f} s with a {seconds} s refresh"
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    bs.wait_idle(page)
    assert bs.as_int(bs.metric_value(page, "Failures")) == failures + 3
    print(f"posted results shown after {waited:.1f} s (refresh every {seconds} s)")
    watch.check(page)


# --- a downloaded report opens offline ---------------------------------------------------------


def _open_offline(browser, path: Path) -> tuple[list[str], list[list], list[str]]:
    """Open an HTML file with every request except the file itself aborted; return the requests
    attempted, each image's (src prefix, complete, naturalWidth) and console errors."""
    url = path.as_uri()
    context = browser.new_context(viewport=bs.VIEWPORT, offline=True)
    attempted, errors = [], []
    try:

        def guard(route):
            if route.request.url == url:
                route.continue_()
            else:
                attempted.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("request", lambda r: r.url != url and attempted.append(r.url))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="load")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        images = page.evaluate(
            "() => Array.from(document.images).map(i => [i.src.slice(0, 22), i.complete,"
            " i.naturalWidth])"
        )
    finally:
        context.close()
    return sorted(set(attempted)), images, errors


def test_downloaded_html_report_opens_with_the_network_blocked(
    open_page, server, browser, tmp_path
):
    page, watch = open_page("/Reports?range=all", "Reports")
    name, html = _download(page, watch, "download-html")
    watch.check(page)
    assert name == "performance_report.html"
    assert b"<img" in html
    status, served = bs.http(f"{server.base}/report/performance?range=all")
    assert status == 200 and served.lstrip().lower().startswith(b"<!doctype html")

    # The guard itself: a page that does reach out is caught, and its image does not load.
    probe = tmp_path / "probe.html"
    probe.write_text('<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="s.css">')
    attempted, images, _ = _open_offline(browser, probe)
    assert attempted == sorted(["http://127.0.0.1:9/x.png", (tmp_path / "s.css").as_uri()])
    assert images and images[0][2] == 0

    for label, data in (("downloaded", html), ("served", served)):
        path = tmp_path / f"{label}.html"
        path.write_bytes(data)
        attempted, images, errors = _open_offline(browser, path)
        assert attempted == [], f"the {label} report asked the network for {attempted}"
        assert images, f"the {label} report has no images"
        broken = [image for image in images if not (image[1] and image[2] > 0)]
        assert not broken, f"the {label} report has images that did not load: {broken}"
        assert not errors, errors


def test_server_log_has_no_traceback(server):
    log = server.log(tail=10_000_000)
    at = log.find("Traceback")
    assert at < 0, "the server logged a traceback:\n" + log[max(0, at - 200) : at + 1500]
