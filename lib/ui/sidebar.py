"""The sidebar every page shares: navigation, time range, filters and refresh, all in the URL.

Each widget is bound to the query parameter of the same name (``bind="query-params"``), and those
names are the ones ``QuerySpec.from_params`` reads, so a copied URL reproduces the view and the
API (later) accepts the same link parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st
from streamlit_autorefresh import st_autorefresh

from lib.aggregator import Aggregator
from lib.config import REFRESH_CHOICES, Settings
from lib.spec import CUSTOM, DEFAULT_RANGE, FILTER_COLUMNS, RANGE_CHOICES, QuerySpec, SpecError
from lib.store import Store

PAGES = (
    ("streamlit_app.py", "Overview", ":material/dashboard:"),
    ("pages/1_Data.py", "Data", ":material/database:"),
)
LABELS = {
    "hardware": "Hardware",
    "model": "Model",
    "batch_size": "Batch size",
    "precision": "Precision",
}


@dataclass(frozen=True)
class View:
    """What the sidebar decided: which results, and how often to refresh."""

    spec: QuerySpec
    refresh_s: int
    aggregator: Aggregator


def render(store: Store, settings: Settings) -> View:
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()
        refresh_label = st.selectbox(
            "Auto-refresh",
            list(REFRESH_CHOICES),
            key="refresh",
            bind="query-params",
            index=list(REFRESH_CHOICES).index(settings.refresh_choice),
            help="Reload the data at this interval (Grafana's choices; never below 5 s).",
        )
        refresh_s = REFRESH_CHOICES[refresh_label]
        aggregator = Aggregator(store, refresh_s)
        spec = _filters(aggregator)
        span = aggregator.summary()
        if span["last_result"] is not None:
            st.caption(
                f"Data from {span['first_result']:%Y-%m-%d %H:%M} to "
                f"{span['last_result']:%Y-%m-%d %H:%M} UTC · {span['results']:,} results"
            )
        st.caption(f"Database: `{store.path}`" + (" (read-only)" if store.read_only else ""))
    if refresh_s:
        st_autorefresh(interval=refresh_s * 1000, key="autorefresh")
    return View(spec=spec, refresh_s=refresh_s, aggregator=aggregator)


def _filters(aggregator: Aggregator) -> QuerySpec:
    range_ = st.selectbox(
        "Time range",
        RANGE_CHOICES,
        index=RANGE_CHOICES.index(DEFAULT_RANGE),
        key="range",
        bind="query-params",
        help="Relative to now (UTC), or pick dates with 'custom'.",
    )
    start = end = None
    if range_ == CUSTOM:
        today = date.today()
        left, right = st.columns(2)
        start = left.date_input(
            "From", value=today - timedelta(days=7), key="from", bind="query-params"
        )
        end = right.date_input("To", value=today, key="to", bind="query-params")
    options = aggregator.filter_options()
    chosen = {
        name: st.multiselect(
            LABELS[name], options.get(name, []), key=name, bind="query-params", placeholder="All"
        )
        for name in FILTER_COLUMNS
    }
    try:
        return QuerySpec.build(range_, start, end, **chosen)
    except SpecError as exc:
        st.warning(f"{exc} Showing the default range instead.", icon=":material/warning:")
        return QuerySpec.build(DEFAULT_RANGE, **chosen)
