"""Page controls bound to the URL: which metric, which dimension, and similar choices.

Every control here is a widget whose key is its query parameter, so the page's choices travel in
a shared link like the sidebar's filters do.
"""

from __future__ import annotations

import streamlit as st

from lib import queries
from lib.aggregator import Aggregator
from lib.dimensions import Dimensions
from lib.performance import PREFERRED_METRICS

NONE = "none"


def metric(
    agg: Aggregator,
    label: str = "Metric",
    key: str = "metric",
    default: str | None = None,
    container=st,
) -> dict | None:
    """A metric that has values, with its unit and direction; None (and a note) when none has."""
    catalog = agg.run(queries.metrics_present)
    if catalog.empty:
        st.info(
            "No metric values in this database yet: benchmarks bring them (see the Data "
            "page for what can be ingested).",
            icon=":material/query_stats:",
        )
        return None
    names = list(catalog["name"])
    preferred = [default] if default else []
    preferred += [m for m in PREFERRED_METRICS if m in names]
    index = names.index(preferred[0]) if preferred and preferred[0] in names else 0
    name = container.selectbox(label, names, index=index, key=key, bind="query-params")
    row = catalog[catalog["name"] == name].iloc[0]
    return {
        "name": name,
        "unit": row["unit"],
        "direction": row["direction"],
        "description": row["description"] or "",
    }


def dimensions(agg: Aggregator) -> Dimensions:
    return agg.run(Dimensions.of)


def dimension(
    agg: Aggregator, label: str, key: str, default: str, extra: tuple[str, ...] = (), container=st
) -> str:
    """A dimension name (or one of ``extra`` choices such as "none" / "series")."""
    dims = dimensions(agg)
    options = [*extra, *dims.names]
    index = options.index(default) if default in options else 0
    return container.selectbox(
        label,
        options,
        index=index,
        key=key,
        bind="query-params",
        help="Any dimension the data carries; extra.* come from the "
        "sources (a browser, an MLPerf scenario, a benchmark parameter).",
    )
