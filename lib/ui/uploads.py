"""The Data page's upload area: preview each file, ingest on request, result beside each file."""

from __future__ import annotations

import streamlit as st

from lib.ingest import IngestOptions, ingest_bytes
from lib.ingest.formats import preview
from lib.ingest.model import Source
from lib.store import Store
from lib.ui import safe

_RESULTS = "upload_results"
"""Session key: per uploaded file (name, size), the report of its last ingest."""


def render(store: Store, options: IngestOptions) -> None:
    files = st.file_uploader(
        "Result files",
        accept_multiple_files=True,
        key="uploads",
        help="Up to 200 MB per file here; larger files: `dtd ingest`.",
    )
    if not files:
        return
    done = st.session_state.setdefault(_RESULTS, {})
    ready = []
    for upload in files:
        data = upload.getvalue()
        look = preview(Source.from_bytes(upload.name, data))
        key = (upload.name, len(data))
        with st.container(border=True):
            st.markdown(
                f"**{safe.md(upload.name)}** · {len(data):,} bytes · "
                + (look.format or "not a format dtd reads")
            )
            if look.problem:
                st.error(look.problem, icon=":material/error:")
            else:
                ready.append((upload.name, data, key))
                with st.expander("First lines"):
                    st.code(look.head or "(nothing to show)", language=None)
            report = done.get(key)
            if report is not None:
                if report.status == "ok":
                    st.success(
                        f"Ingested: {report.results:,} results ({report.passed:,} passed, "
                        f"{report.failed:,} failed, {report.errors:,} errors, {report.skipped:,} "
                        f"skipped), {report.measurements:,} metric values, {report.added:,} new.",
                        icon=":material/check_circle:",
                    )
                else:
                    st.error(report.error, icon=":material/error:")
    label = f"Ingest {len(ready)} file{'s' if len(ready) != 1 else ''}"
    if st.button(label, type="primary", disabled=not ready or store.read_only, key="ingest"):
        with st.spinner("Ingesting..."):
            for name, data, key in ready:
                done[key] = ingest_bytes(store, name, data, options)
        st.rerun()
