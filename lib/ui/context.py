"""What every page needs first: settings, the open store, and a clear stop when either fails."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import duckdb
import streamlit as st

from lib import analysis, demo, regressions
from lib.aggregator import utc_now  # noqa: F401 - pages read the clock through the context
from lib.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from lib.ingest import IngestOptions, inbox
from lib.store import Store, StoreError, inspect_file, is_open, open_store

PAGE_ICON = str(PROJECT_ROOT / "assets" / "icon.png")
"""A local file: a Material icon as favicon would be fetched from Google's servers."""
DEMO_MAX_AGE = timedelta(hours=12)
"""A live demo left idle longer than this is rebuilt instead of extended."""
_demo_lock = threading.Lock()


def page(title: str) -> None:
    """Page configuration shared by every page (call first)."""
    st.set_page_config(
        page_title=f"{title} · Distributed Testing Dashboard", page_icon=PAGE_ICON, layout="wide"
    )


def _secrets() -> dict[str, Any]:
    try:
        return {"dtd": st.secrets["dtd"]} if "dtd" in st.secrets else {}
    except FileNotFoundError as exc:  # Streamlit's "no secrets" and "cannot parse secrets"
        if "pars" in str(exc).lower():
            raise ConfigError(f"The Streamlit secrets could not be read: {exc}") from None
        return {}


@st.cache_data(max_entries=64, show_spinner=False)
def cached_comparison(pairs: Any, direction: str) -> Any:
    """The A/B bootstrap, cached on its input: it resamples thousands of times."""
    return analysis.compare_benchmarks(pairs, direction)


def stop_with(message: str) -> NoReturn:
    """Say what is wrong in one message and end this run: no traceback reaches the page."""
    st.error(message, icon=":material/error:")
    st.stop()


def _ensure_default_demo(settings: Settings) -> None:
    """Nobody chose a database: make the shipped live demo at the default path, or rebuild it
    when it has been idle for long (only before this process opens it, so no session is using
    it)."""
    if settings.db_configured or is_open(settings.db_path):
        return
    with _demo_lock:
        path = settings.db_path
        if is_open(path):
            return
        if path.exists():
            meta = inspect_file(path).meta
            until = meta.get("demo_until")
            if meta.get("demo_live") != "1" or until is None:
                return
            if (
                datetime.now(UTC).replace(tzinfo=None) - datetime.fromisoformat(until)
                < DEMO_MAX_AGE
            ):
                return
        with st.spinner("Creating the demo database (first run only, a few seconds)..."):
            demo.generate(path, live=True)


def ingest_options(settings: Settings) -> IngestOptions:
    return IngestOptions(max_bytes=settings.max_ingest_mb * 1024 * 1024)


def settings_or_stop() -> Settings:
    try:
        return load_settings(secrets=_secrets())
    except ConfigError as exc:
        stop_with(str(exc))


def store_or_stop(settings: Settings) -> Store:
    """The process's store for the configured database, live demo extended to now."""
    try:
        _ensure_default_demo(settings)
        store = open_store(settings.db_path)
    except StoreError as exc:
        stop_with(str(exc))
    if settings.inbox:
        try:
            inbox.watch(store, settings.inbox, options=ingest_options(settings))
        except OSError as exc:
            st.warning(
                f"The inbox folder {settings.inbox} cannot be watched: {exc}",
                icon=":material/warning:",
            )
    if not store.read_only:
        regressions.run_in_background(store)
    try:
        demo.catch_up(store)
    except (StoreError, duckdb.Error) as exc:
        st.warning(
            f"The live demo could not be extended, so it shows older data: {exc}",
            icon=":material/warning:",
        )
    return store
