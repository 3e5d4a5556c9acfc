"""Shared fixtures: small real demo databases, raw table access, clean caches."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from lib import demo
from lib.store import close_all, open_store

PROJECT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
"""The demo fixtures end at the start of the test session."""


SHARED_DATA = PROJECT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout: real result files. CI always has it; elsewhere the
    tests that need it skip, saying why."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_DATA} is missing, but CI must have the shared data")
        pytest.skip(f"{SHARED_DATA} is not here (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture()
def empty_store(tmp_path: Path):
    """A new, empty store in a temporary folder, closed afterwards."""
    store = open_store(tmp_path / "ingest.duckdb")
    yield store
    store.close()


def table_counts(store) -> dict[str, int]:
    """Rows per table: compare before and after to prove a failed ingest changed nothing."""
    with store.cursor() as cur:
        return {
            t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("results", "series", "measurements", "runs", "workers", "metrics")
        }


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30,000-result, 14-day demo database (seed 7), shared read-only by most tests."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    demo.generate(path, results=30_000, days=14, seed=7, now=NOW)
    return path


@pytest.fixture(scope="session")
def raw(demo_db: Path) -> dict[str, pd.DataFrame]:
    """Whole tables of the small demo database, for computing expected values independently."""
    store = open_store(demo_db)
    tables = {}
    with store.cursor() as cur:
        for table in (
            "results",
            "series",
            "measurements",
            "runs",
            "workers",
            "heartbeats",
            "demo_truth",
            "metrics",
        ):
            tables[table] = cur.execute(f"SELECT * FROM {table}").df()
    return tables


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch):
    """Streamlit's caches outlive an AppTest; settings must not leak between tests."""
    import streamlit as st

    for name in list(os.environ):
        if name.startswith("DTD_"):
            monkeypatch.delenv(name)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="session", autouse=True)
def _release_files():
    yield
    close_all()


@pytest.fixture(scope="session")
def analysed_db(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Path:
    """A copy of the demo database with change points detected (the API and reports read
    them); tests may write to it."""
    import shutil

    from lib import regressions

    path = tmp_path_factory.mktemp("analysed") / "analysed.duckdb"
    with open_store(demo_db).cursor() as cur:
        cur.execute("CHECKPOINT")
    shutil.copy(demo_db, path)
    regressions.analyse(open_store(path))
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """The API fuzz suite's case count (issue 18 asks for it in the closing note)."""
    import sys

    fuzz = sys.modules.get("tests.test_api_fuzz")
    if fuzz is not None and fuzz.TALLY["cases"]:
        tally = fuzz.TALLY
        terminalreporter.write_line(
            f"API fuzz suite: {tally['cases']:,} cases ({tally['refused']:,} refused, store "
            f"unchanged by each), {tally['seconds']:.1f} s of generated requests"
        )
