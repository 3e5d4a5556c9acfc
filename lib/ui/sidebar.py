"""The sidebar every page shares: navigation, time range, filters and refresh, all in the URL.

Each widget is bound to the query parameter of the same name (``bind="query-params"``), in the
forms ``QuerySpec.from_params`` reads, so a copied URL reproduces the view and other surfaces can
parse the same link. Streamlit drops link values a widget cannot take; ``_link_problems`` says
which ones and why, instead of letting them vanish silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import streamlit as st
from streamlit_autorefresh import st_autorefresh

from lib.aggregator import Aggregator
from lib.config import REFRESH_CHOICES, Settings
from lib.dimensions import Dimensions
from lib.spec import CUSTOM, DEFAULT_RANGE, PRIMARY_FILTERS, RANGE_CHOICES, QuerySpec, SpecError
from lib.store import Store
from lib.ui import safe

PAGES = (
    ("streamlit_app.py", "Overview", ":material/dashboard:"),
    ("pages/2_Trends.py", "Trends", ":material/show_chart:"),
    ("pages/3_Compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/4_Heatmap.py", "Heatmap", ":material/grid_on:"),
    ("pages/5_Correlation.py", "Correlation", ":material/scatter_plot:"),
    ("pages/6_Tests.py", "Tests", ":material/checklist:"),
    ("pages/7_Workers.py", "Workers", ":material/dns:"),
    ("pages/8_Regressions.py", "Regressions", ":material/trending_down:"),
    ("pages/10_Reports.py", "Reports", ":material/summarize:"),
    ("pages/9_Data.py", "Data", ":material/database:"),
)


@dataclass(frozen=True)
class View:
    """What the sidebar decided: which results, and how often to refresh."""

    spec: QuerySpec
    refresh_s: int
    aggregator: Aggregator


def render(store: Store, settings: Settings, default_refresh: str | None = None) -> View:
    """The sidebar; ``default_refresh`` overrides the configured interval on pages that should
    refresh even when the configuration says off (the Workers page)."""
    options = Aggregator(store, settings.auto_refresh).filter_options()
    problems = _link_problems(options)  # before any widget reads (and cleans) the link
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()
        if problems:
            st.warning(
                "Ignored in this link: " + "; ".join(problems) + ".", icon=":material/link_off:"
            )
        refresh_label = st.selectbox(
            "Auto-refresh",
            list(REFRESH_CHOICES),
            key="refresh",
            bind="query-params",
            index=list(REFRESH_CHOICES).index(
                settings.refresh_choice
                if settings.auto_refresh or not default_refresh
                else default_refresh
            ),
            help="Reload the data at this interval (Grafana's choices; never below 5 s).",
        )
        refresh_s = REFRESH_CHOICES[refresh_label]
        aggregator = Aggregator(store, refresh_s)
        spec = _filters(options)
        span = aggregator.summary()
        if span["last_result"] is not None:
            st.caption(
                f"Data from {span['first_result']:%Y-%m-%d %H:%M} to "
                f"{span['last_result']:%Y-%m-%d %H:%M} UTC · {span['results']:,} results"
            )
        st.caption(f"Database: {safe.md(store.path)}" + (" (read-only)" if store.read_only else ""))
        st.caption(
            f"Updated {datetime.now(UTC):%H:%M:%S} UTC"
            + (f" · refreshes every {refresh_label}" if refresh_s else "")
        )
    if refresh_s:
        st_autorefresh(interval=refresh_s * 1000, key="autorefresh")
    return View(spec=spec, refresh_s=refresh_s, aggregator=aggregator)


def _link_problems(options: dict[str, list]) -> list[str]:
    """What in the page's link cannot be shown (checked before the widgets read the link)."""
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    problems = []
    refresh = params.get("refresh", [])
    if refresh and refresh[-1] not in REFRESH_CHOICES:
        problems.append(f"refresh={refresh[-1]!r} is not one of {', '.join(REFRESH_CHOICES)}")
    try:
        spec = QuerySpec.from_params(params)
    except SpecError as exc:
        return [*problems, str(exc).rstrip(".")]
    for name, values in spec.filters:
        known = {str(value) for value in options.get(name, [])}
        unknown = [value for value in values if value not in known]
        if unknown:
            problems.append(f"{name}={', '.join(unknown)} matches nothing in this database")
    return problems


def _filters(options: dict[str, list]) -> QuerySpec:
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
        today = datetime.now(UTC).date()
        left, right = st.columns(2)
        # Any date a result can carry (the widget's own default allows only ten years back).
        bounds = {"min_value": date(1970, 1, 1), "max_value": today + timedelta(days=366)}
        start = left.date_input(
            "From", value=today - timedelta(days=7), key="from", bind="query-params", **bounds
        )
        end = right.date_input("To", value=today, key="to", bind="query-params", **bounds)
    labels = Dimensions(tuple(n.removeprefix("extra.") for n in options if n.startswith("extra.")))

    def pick(name: str) -> list:
        return st.multiselect(
            labels.label(name),
            options.get(name, []),
            key=name,
            bind="query-params",
            placeholder="All",
        )

    chosen = {name: pick(name) for name in PRIMARY_FILTERS}
    more = [name for name in options if name not in PRIMARY_FILTERS]
    if more:
        active = sum(
            bool(st.session_state.get(name) or st.query_params.get_all(name)) for name in more
        )
        with st.expander(f"More filters ({active} set)" if active else "More filters"):
            chosen.update({name: pick(name) for name in more})
    try:
        return QuerySpec.build(range_, start, end, **chosen)
    except SpecError as exc:
        st.warning(f"{exc} Showing the default range instead.", icon=":material/warning:")
        return QuerySpec.build(DEFAULT_RANGE, **chosen)
