"""Reports and the seed's generator API: self-contained, escaped, valid files whose numbers are the
queries' (checked against pandas on the raw tables), from Python, the CLI, the server and the page.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from lib import reports, visualization, web
from lib.api import ApiState
from lib.config import Settings
from lib.ingest import ingest_bytes
from lib.spec import QuerySpec
from lib.store import open_store, release
from tests.conftest import NOW, PROJECT

PNG = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert(1)</script>"
REMOTE = re.compile(
    r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<link\b|<script\b|<iframe\b""",
    re.IGNORECASE,
)
"""Anything that would make a browser fetch from elsewhere or run a script."""


def _png_ok(data: bytes) -> tuple[int, int]:
    """Valid PNG: the signature, and matplotlib can decode it; returns (height, width)."""
    import matplotlib.image as mpimg

    assert data[:8] == PNG
    picture = mpimg.imread(io.BytesIO(data), format="png")
    assert picture.shape[0] > 50 and picture.shape[1] > 50
    return picture.shape[:2]


def _pdf_text(data: bytes) -> str:
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    return "\n".join(page.extract_text() for page in reader.pages)


def _junit(ts: str, failing: bool) -> bytes:
    outcome = '<failure message="&lt;img src=x onerror=alert(1)&gt;"/>' if failing else ""
    return f"""<testsuite name="evil" timestamp="{ts}" hostname="&lt;b&gt;box&lt;/b&gt;">
<testcase classname="suite" name="&lt;script&gt;alert(1)&lt;/script&gt;">{outcome}</testcase>
<testcase classname="suite" name="fine"/></testsuite>""".encode()


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    """A test named <script>alert(1)</script> that broke (3 failures after a pass) on a worker
    named <b>box</b>."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    store = open_store(path)
    for day, failing in ((1, False), (2, True), (3, True), (4, True)):
        stamp = (NOW - timedelta(days=5 - day)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert ingest_bytes(store, f"run{day}.xml", _junit(stamp, failing)).status == "ok"
    release(path)
    return path


# ----------------------------------------------------------------------------- every type


@pytest.mark.parametrize("kind", reports.REPORT_TYPES)
def test_every_report_is_self_contained_and_its_files_are_valid(analysed_db, kind) -> None:
    with open_store(analysed_db).cursor() as cur:
        report = reports.build(cur, kind, QuerySpec.build("all"), NOW)
    pngs = reports.render_pngs(report)
    document = reports.to_html(report, pngs=pngs)
    assert not REMOTE.search(document), REMOTE.search(document).group(0)
    assert document.count("data:image/png;base64,") == len(pngs) >= 1
    assert reports.TITLES[kind] in document and "all time" in document
    for data in pngs.values():
        _png_ok(data)
    text = _pdf_text(reports.to_pdf(report, pngs))
    assert reports.TITLES[kind] in text and "filters: none" in text
    bundle = zipfile.ZipFile(io.BytesIO(reports.to_zip(report)))
    names = set(bundle.namelist())
    tables = {f"tables/{reports._slug(n)}.csv" for s in report.sections for n, _ in s.tables}
    charts = {f"charts/{reports._slug(n)}.png" for s in report.sections for n, _, _ in s.charts}
    assert {f"{kind}_report.html", f"{kind}_report.pdf"} | tables | charts <= names
    for name in charts:
        _png_ok(bundle.read(name))
    dark = reports.to_html(report, "dark", pngs)
    assert "--bg:#0d1117" in dark and "--bg:#ffffff" not in dark


def test_hostile_names_are_escaped_in_html_and_kept_in_pdf(hostile_db) -> None:
    with open_store(hostile_db).cursor() as cur:
        tests = reports.build(cur, "test", QuerySpec.build("all"), NOW)
        fleet = reports.build(cur, "worker", QuerySpec.build("all"), NOW)
        hostile = QuerySpec.build("all", hardware=[SCRIPT])
        filtered = reports.build(cur, "test", hostile, NOW)
    release(hostile_db)
    trouble = dict(tests.sections[0].tables)["tests_needing_attention"]
    assert list(trouble["state"]) == ["broken"] and SCRIPT in trouble["test"].iloc[0]
    for report in (tests, fleet, filtered):
        document = reports.to_html(report)
        assert SCRIPT not in document and "<img src=x" not in document and "<b>box" not in document
        assert not REMOTE.search(document)
    assert html.escape(SCRIPT) in reports.to_html(tests)
    assert "&lt;img src=x onerror=alert(1)&gt;" in reports.to_html(tests)  # failure cause
    assert "&lt;b&gt;box&lt;/b&gt;" in reports.to_html(fleet)
    assert html.escape(SCRIPT) in reports.to_html(filtered).split("</h1>")[1][:400]  # the scope
    assert "alert(1)" in _pdf_text(reports.to_pdf(tests))


# ----------------------------------------------------------------------------- numbers


def _window(raw) -> pd.DataFrame:
    rows = raw["results"].merge(raw["series"], on="series_id")
    return rows[rows["ts"] >= pd.Timestamp((NOW - timedelta(days=7)).date())]


def test_performance_report_numbers_are_the_queries(demo_db, raw) -> None:
    first, last = (NOW - timedelta(days=7)).date(), NOW.date()
    spec = QuerySpec.build("custom", first, last, precision=["fp16", "fp32"])  # whole hours
    with open_store(demo_db).cursor() as cur:
        report = reports.build(cur, "performance", spec, NOW, "latency_p50_ms", "hardware")
    rows = _window(raw)
    rows = rows[rows["precision"].isin(["fp16", "fp32"])]
    counts = dict(report.sections[0].tables)["status_counts"].iloc[0]
    assert counts["results"] == len(rows)
    assert counts["failed"] == (rows["status"] == "failed").sum()
    executed = rows["status"].isin(["passed", "failed", "error"]).sum()
    assert counts["pass_rate"] == pytest.approx((rows["status"] == "passed").sum() / executed, 1e-3)
    values = raw["measurements"].merge(raw["series"], on="series_id")
    values = values[
        (values["metric"] == "latency_p50_ms")
        & (values["ts"] >= pd.Timestamp(first))
        & values["precision"].isin(["fp16", "fp32"])
    ]
    # Over a week the medians are over each series' hourly medians (and the report says so).
    hourly = values.groupby(["hardware", "series_id", values["ts"].dt.floor("1h")])["value"]
    expected = pd.DataFrame(
        {
            "median": hourly.median().groupby("hardware").median(),
            "count": values.groupby("hardware").size(),
        }
    )
    assert "hourly medians" in report.sections[2].text
    table = dict(report.sections[2].tables)["by_hardware"].set_index("value")
    assert set(table.index) == set(expected.index)
    assert np.allclose(table.loc[expected.index, "median"], expected["median"])
    assert (table.loc[expected.index, "count"] == expected["count"]).all()
    document = reports.to_html(report)
    for median in expected["median"]:
        assert f"<td>{median:,.4g}</td>" in document
    bundle = zipfile.ZipFile(io.BytesIO(reports.to_zip(report)))
    shipped = pd.read_csv(io.BytesIO(bundle.read("tables/by_hardware.csv"))).set_index("value")
    assert np.allclose(shipped.loc[expected.index, "median"], expected["median"], rtol=1e-12)


def test_worker_and_test_reports_count_what_the_tables_hold(demo_db, raw) -> None:
    with open_store(demo_db).cursor() as cur:
        fleet = reports.build(cur, "worker", QuerySpec.build("all"), NOW)
        tests = reports.build(cur, "test", QuerySpec.build("all"), NOW)
    workers = dict(fleet.sections[0].tables)["workers"].set_index("worker_id")
    rows = raw["results"]
    executed = rows[rows["status"] != "skipped"].groupby("worker_id").size()
    failures = rows[rows["status"].isin(["failed", "error"])].groupby("worker_id").size()
    judged = workers.dropna(subset=["executed"])
    assert (judged["executed"] == executed.reindex(judged.index, fill_value=0)).all()
    assert (judged["failures"] == failures.reindex(judged.index, fill_value=0)).all()
    assert set(workers.index) == set(raw["workers"]["worker_id"])
    by_state = dict(tests.sections[0].tables)["tests_by_state"]
    tests_ = raw["series"][raw["series"]["kind"] != "benchmark"]["series_id"]
    assert by_state["tests"].sum() == rows[rows["series_id"].isin(tests_)]["series_id"].nunique()


def test_regression_report_lists_the_detected_changes(analysed_db) -> None:
    with open_store(analysed_db).cursor() as cur:
        report = reports.build(cur, "regression", QuerySpec.build("all"), NOW)
        expected = cur.execute(
            """SELECT count(*) FROM change_points
               WHERE kind = 'regression' AND NOT unstable
                 AND severity IN ('minor', 'moderate', 'major', 'critical')"""
        ).fetchall()[0][0]
    found = dict(report.sections[0].tables)["regressions"]
    assert len(found) == expected > 0
    by_severity = dict(report.sections[0].tables)["regressions_by_severity"]
    assert by_severity["regressions"].sum() == expected
    assert (found["change"] > 0).sum() + (found["change"] < 0).sum() == expected


# ----------------------------------------------------------------------------- surfaces


def test_dtd_report_writes_all_five_types_from_a_fresh_shell(tmp_path, demo_db) -> None:
    db = tmp_path / "copy.duckdb"
    with open_store(demo_db).cursor() as cur:
        cur.execute("CHECKPOINT")
    shutil.copy(demo_db, db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTD_")}
    outs = {
        "performance": "p.html",
        "regression": "r.pdf",
        "dimension": "d.zip",
        "worker": "w.html",
        "test": "t.pdf",
    }
    for kind, name in outs.items():
        done = subprocess.run(
            [sys.executable, "-m", "lib.cli", "report", kind, "--db", str(db)]
            + ["--out", str(tmp_path / name), "--range", "all", "--filter", "hardware=cuda,cpu"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert f"Wrote the {kind} report" in done.stdout and "hardware = cpu, cuda" in done.stdout
    page = (tmp_path / "p.html").read_text()
    assert "Performance report" in page and not REMOTE.search(page)
    assert "Regression report" in _pdf_text((tmp_path / "r.pdf").read_bytes())
    bundle = zipfile.ZipFile(tmp_path / "d.zip")
    with bundle.open("tables/throughput_items_per_second_by_hardware.csv") as table:
        hardware = {row["value"] for row in csv.DictReader(io.TextIOWrapper(table))}
    assert hardware == {"cuda", "cpu"}
    bad = subprocess.run(
        [sys.executable, "-m", "lib.cli", "report", "dimension", "--db", str(db)]
        + ["--out", str(tmp_path / "x.html"), "--metric", "no_such_metric"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and not (tmp_path / "x.html").exists()
    assert "metric 'no_such_metric' has no values" in bad.stderr and "Traceback" not in bad.stderr


def _web(db: Path) -> TestClient:
    state = ApiState(lambda: Settings(db_path=db, db_configured=True))
    return TestClient(Starlette(routes=web.routes(state)))


def test_server_answers_the_seeds_dashboard_report_and_visualization_routes(analysed_db) -> None:
    client = _web(analysed_db)
    page = client.get("/dashboard", params={"range": "all"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(reports.TITLES[k] in page.text for k in reports.REPORT_TYPES)
    assert not REMOTE.search(page.text)
    pdf = client.get("/report/test", params={"format": "pdf", "range": "all"})
    assert pdf.headers["content-type"] == "application/pdf" and "Test report" in _pdf_text(
        pdf.content
    )
    for kind in visualization.VISUALIZATION_TYPES:
        picture = client.get(f"/visualization/{kind}", params={"range": "all", "theme": "dark"})
        assert picture.status_code == 200, (kind, picture.text)
        _png_ok(picture.content)
    assert client.get("/report/nope").json()["error"]["code"] == 404
    wrong = client.get("/report/test", params={"format": "docx"})
    assert wrong.status_code == 400 and "format='docx'" in wrong.json()["error"]["message"]
    metric = client.get("/visualization/heatmap", params={"metric": "nope"})
    assert metric.status_code == 400 and "no values" in metric.json()["error"]["message"]


# ----------------------------------------------------------------------------- the seed's API


SEED_SERIES = {
    "time_series": {
        "model1": [(NOW - timedelta(hours=h), 150.0 + h) for h in range(24)],
        "model2": [(NOW - timedelta(hours=h), 120.0 - h) for h in range(24)],
    },
    "metric": "throughput",
    "title": "Model Throughput Comparison",
}


def test_visualization_engine_draws_every_type_as_png_and_html(tmp_path) -> None:
    rng = np.random.default_rng(1)
    steps = np.r_[rng.normal(100, 1, 40), rng.normal(120, 1, 40)]
    inputs = {
        "time_series": SEED_SERIES,
        "dimension_comparison": {
            "values": {"cuda": [10, 11, 12], "cpu": [3, 4, 5]},
            "metric": "throughput",
            "dimension": "hardware",
        },
        "regression_analysis": {"values": steps, "metric": "latency", "direction": "lower"},
        "correlation": {"metrics": {"a": rng.normal(size=50), "b": rng.normal(size=50)}},
        "heatmap": {
            "rows": ["bert", "vit"],
            "columns": ["cuda", "cpu"],
            "values": [[1, 2], [3, 4]],
        },
    }
    engine = visualization.VisualizationEngine(output_dir=tmp_path)
    for kind, data in inputs.items():
        _png_ok(Path(engine.create_visualization(kind, data)).read_bytes())
    engine.configure({"interactive": True, "theme": "dark"})
    page = Path(engine.create_visualization("time_series", SEED_SERIES)).read_text()
    assert page.endswith("</html>\n") or "</html>" in page
    assert "Model Throughput Comparison" in page and not re.search(r"src=\"https?://", page)
    drawn = engine.chart("regression_analysis", inputs["regression_analysis"]).to_dict()
    assert "regression" in str(drawn)  # the 20 % step in a lower-is-better metric is found
    with pytest.raises(ValueError, match="unknown visualization type 'pie'"):
        engine.create_visualization("pie", {})
    with pytest.raises(ValueError, match="unknown settings colour"):
        engine.configure({"colour": "red"})


def test_custom_visualizations_register_and_the_generator_reports_the_store(
    tmp_path, analysed_db
) -> None:
    engine = visualization.VisualizationEngine(output_dir=tmp_path)

    def bars(data, output_path, engine):
        Path(output_path).write_text(",".join(map(str, data)))
        return output_path

    engine.register("bars", bars)
    assert Path(engine.create_visualization("bars", [1, 2], tmp_path / "b.txt")).read_text() == (
        "1,2"
    )
    generator = visualization.DashboardGenerator(output_dir=tmp_path, db_path=analysed_db)
    generator.configure({"filters": {"range": "all"}, "theme": "dark"})
    board = Path(generator.generate_dashboard()).read_text()
    assert board.count('type="radio"') == 5 and not REMOTE.search(board)
    assert "--bg:#0d1117" in board
    report = Path(generator.generate_report("worker", {"hardware": ["cuda"]}, tmp_path / "w.pdf"))
    assert "Worker report" in _pdf_text(report.read_bytes())
    with pytest.raises(ValueError, match="default_report_type must be one of"):
        generator.configure({"default_report_type": "weekly"})


# ----------------------------------------------------------------------------- the page


def test_reports_page_previews_and_offers_three_downloads(monkeypatch, analysed_db, raw) -> None:
    monkeypatch.setenv("DTD_DB", str(analysed_db))
    at = AppTest.from_file(str(PROJECT / "streamlit_app.py"), default_timeout=120)
    at.query_params.update({"range": "all", "report": "dimension", "dimension": "precision"})
    at.switch_page("pages/10_Reports.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.subheader[0].value == "Dimension comparison report"
    assert len(at.get("vega_lite_chart")) == 2
    table = at.dataframe[0].value.set_index("value")
    values = raw["measurements"].merge(raw["series"], on="series_id")
    values = values[values["metric"] == "throughput_items_per_second"]
    hourly = values.groupby(["precision", "series_id", values["ts"].dt.floor("1h")])["value"]
    expected = hourly.median().groupby("precision").median()
    assert set(table.index) == set(expected.index) and len(expected) >= 3
    assert np.allclose(table.loc[expected.index, "median"], expected)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["HTML", "PDF", "ZIP bundle"]
    at.query_params["metric"] = "no_such_metric"
    at.run()
    assert not at.exception and at.subheader[0].value == "Dimension comparison report"
