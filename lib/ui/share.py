"""The view's link: the query string that reproduces what is on screen, for copying."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from lib.spec import QuerySpec


def query_string(spec: QuerySpec, **page: object) -> str:
    """Filters and time range, then the page's own choices (None and "" left out)."""
    params: dict[str, list[str]] = dict(spec.to_params())
    for name, value in page.items():
        if value is None or value == "" or value is False:
            continue
        params[name] = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return urlencode(params, doseq=True)


def link(spec: QuerySpec, **page: object) -> None:
    """Show the link under the page title; the browser's address bar holds the same thing."""
    query = query_string(spec, **page)
    st.caption(f"Link to this view: [`?{query}`](?{query})" if query else "Link to this view: `?`")
