"""The Overview and Data pages in the real Streamlit runtime (AppTest), on real database files."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import config, demo
from lib.store import open_store, release

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(scope="module")
def fresh_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A demo ending now, so worker states seen by the app match the ones computed here."""
    path = tmp_path_factory.mktemp("app") / "app.duckdb"
    demo.generate(path, results=12_000, days=10, seed=11)
    store = open_store(path)
    with store.cursor() as cur:
        raw = {
            t: cur.execute(f"SELECT * FROM {t}").df()
            for t in ("results", "series", "heartbeats", "workers")
        }
    return path, raw


def _run(
    monkeypatch: pytest.MonkeyPatch,
    db: Path | str,
    params: dict | None = None,
    page: str | None = None,
) -> AppTest:
    monkeypatch.setenv("DTD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _tiles(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _expected_window(raw, first: str, last: str, **filters) -> pd.DataFrame:
    rows = raw["results"].merge(raw["series"], on="series_id")
    start = pd.Timestamp(first)
    end = pd.Timestamp(last) + pd.Timedelta(days=1)
    rows = rows[(rows["ts"] >= start) & (rows["ts"] < end)]
    for column, values in filters.items():
        rows = rows[rows[column].isin(values)]
    return rows


def _states(raw, hardware: set[str] | None = None) -> pd.Series:
    now = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    beats = raw["heartbeats"].sort_values("ts").drop_duplicates("worker_id", keep="last")
    workers = raw["workers"].merge(beats, on="worker_id", how="left")
    if hardware:
        workers = workers[workers["hardware"].isin(hardware)]
    age = (now - workers["ts"]).dt.total_seconds()
    return pd.Series(
        ["dead" if a > 300 else "stale" if a > 90 else "live" for a in age]
    ).value_counts()


def test_overview_kpis_match_an_independent_count(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    first = raw["results"]["ts"].min().date().isoformat()
    last = raw["results"]["ts"].max().date().isoformat()
    at = _run(monkeypatch, path, {"range": "custom", "from": first, "to": last})
    rows = _expected_window(raw, first, last)
    executed = rows[rows["status"] != "skipped"]
    tiles = _tiles(at)
    assert tiles["Results"] == f"{len(rows):,}"
    assert tiles["Pass rate"] == f"{(executed['status'] == 'passed').mean():.1%}"
    assert tiles["Failures"] == f"{rows['status'].isin(['failed', 'error']).sum():,}"
    states = _states(raw)
    assert tiles["Active workers"] == str(states.get("live", 0))
    assert tiles["Stale workers"] == str(states.get("stale", 0)) == "2"
    assert tiles["Dead workers"] == str(states.get("dead", 0)) == "1"
    assert [t.value for t in at.title] == ["Overview"]
    assert len(at.get("vega_lite_chart")) == 3
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("CSV") == 4 and labels.count("PNG") == 3


def test_url_parameters_filter_the_view_and_widgets_change_it(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    first = raw["results"]["ts"].min().date().isoformat()
    last = raw["results"]["ts"].max().date().isoformat()
    params = {
        "range": "custom",
        "from": first,
        "to": last,
        "hardware": ["cuda", "rocm"],
        "precision": "fp16",
    }
    at = _run(monkeypatch, path, params)
    assert at.multiselect(key="hardware").value == ["cuda", "rocm"]
    rows = _expected_window(raw, first, last, hardware=["cuda", "rocm"], precision=["fp16"])
    tiles = _tiles(at)
    assert tiles["Results"] == f"{len(rows):,}"
    states = _states(raw, {"cuda", "rocm"})
    assert tiles["Dead workers"] == str(states.get("dead", 0)) == "1"  # rocm-mi250-01

    assert (
        f"?range=custom&from={first}&to={last}&hardware=cuda&hardware=rocm&precision=fp16"
        in " ".join(c.value for c in at.caption)
    )
    at.multiselect(key="hardware").set_value(["cpu"]).run()
    assert not at.exception
    assert "&hardware=cpu&precision=fp16" in " ".join(c.value for c in at.caption)
    rows = _expected_window(raw, first, last, hardware=["cpu"], precision=["fp16"])
    assert len(rows) == 0 or _tiles(at)["Results"] == f"{len(rows):,}"
    at.multiselect(key="precision").set_value([]).run()
    rows = _expected_window(raw, first, last, hardware=["cpu"])
    assert _tiles(at)["Results"] == f"{len(rows):,}"


def test_hostile_url_values_are_dropped_not_run(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    at = _run(monkeypatch, path, {"hardware": "cuda') OR 1=1 --", "range": "all"})
    assert at.multiselect(key="hardware").value == []
    assert _tiles(at)["Results"] == f"{len(raw['results']):,}"


def test_latest_failures_table_lists_newest_failures(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    at = _run(monkeypatch, path, {"range": "all"})
    table = at.dataframe[0].value
    failures = raw["results"][raw["results"]["status"].isin(["failed", "error"])]
    newest = failures.sort_values("ts", ascending=False).head(len(table))
    assert len(table) == min(50, len(failures))  # max_items_per_page defaults to 50
    assert list(table["message"]) == list(newest["message"])


def test_data_page_shows_store_totals(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    at = _run(monkeypatch, path, page="pages/9_Data.py")
    tiles = _tiles(at)
    assert tiles["Results"] == f"{len(raw['results']):,}"
    assert tiles["Workers"] == str(len(raw["workers"]))
    assert [t.value for t in at.title] == ["Data"]
    assert len(at.dataframe) == 2  # metrics and the demo's ground truth


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_foreign_file_is_explained_and_left_alone(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "benchmark_db.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE models (model_id INTEGER)")
    con.close()
    before = path.read_bytes()
    at = _run(monkeypatch, path)
    [message] = _errors(at)
    assert str(path) in message and "not one this dashboard created" in message
    assert not at.metric
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmark_db.duckdb"]


def test_locked_file_is_explained(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    open_store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        at = _run(monkeypatch, path)
        [message] = _errors(at)
        assert f"in use by another process (PID {holder.pid})" in message
    finally:
        holder.kill()
        holder.wait()


def test_unwritable_and_corrupt_paths_are_explained(monkeypatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    at = _run(monkeypatch, blocker / "db.duckdb")
    assert "is not writable" in _errors(at)[0]
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"\x00\x01" * 4000)
    at = _run(monkeypatch, junk)
    assert "not a DuckDB database (8,000 bytes)" in _errors(at)[0]


def test_empty_store_says_how_to_fill_it(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    at = _run(monkeypatch, path)
    assert not _errors(at)
    assert any("holds no results yet" in i.value and "dtd demo --db" in i.value for i in at.info)
    release(path)


def test_bad_setting_is_explained(monkeypatch, fresh_db) -> None:
    monkeypatch.setenv("DTD_AUTO_REFRESH", "often")
    at = _run(monkeypatch, fresh_db[0])
    assert "DTD_AUTO_REFRESH: auto_refresh must be a whole number" in _errors(at)[0]


def test_first_run_without_configuration_creates_a_live_demo(monkeypatch, tmp_path: Path) -> None:
    default = tmp_path / "var" / "dashboard.duckdb"
    monkeypatch.setattr(config, "DEFAULT_DB_PATH", default)
    monkeypatch.delenv("DTD_DB", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert default.exists()
    meta = open_store(default).meta()
    assert meta["demo_live"] == "1"
    results = int(_tiles(at)["Results"].replace(",", ""))
    assert results > 10_000  # the last 7 days of a 30-day, 200,000-result demo
    # A second run a little later extends the live demo instead of rebuilding it.
    until = datetime.fromisoformat(meta["demo_until"])
    assert datetime.now(UTC).replace(tzinfo=None) - until < timedelta(minutes=5)
    release(default)


def test_link_values_that_cannot_be_shown_are_named(monkeypatch, fresh_db) -> None:
    path, raw = fresh_db
    at = _run(monkeypatch, path, {"hardware": ["cuda", "tpu"], "refresh": "7s"})
    [warning] = [w.value for w in at.warning]
    assert "hardware=tpu matches nothing in this database" in warning
    assert "refresh='7s' is not one of off, 5s" in warning
    assert at.multiselect(key="hardware").value == ["cuda"]
    at = _run(monkeypatch, path, {"range": "custom", "from": "yesterday", "to": "2026-11-02"})
    assert "from='yesterday' is not a date like 2026-01-31" in at.warning[0].value
