"""The Data page's upload area: preview each file, ingest on request, result beside each file.

A file's result says what went in and, record by record, what was left out or stored with a
stand-in (the report's ``problems``); "All or nothing" is ``dtd ingest --strict``.

It writes to the database like ``POST /api/results``, so it follows the same write policy
(``Settings.upload_policy``, set by ``uploads``): open ("on", the local demo's default), behind
the write token ("token", the default once an ``api_token`` is configured: a session signs in
with it), or "off". Nothing of the area is drawn before the policy allows it, so no widget of
it can be driven without the token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import streamlit as st

from lib.config import Settings
from lib.ingest import IngestOptions, ingest_bytes
from lib.ingest.formats import preview
from lib.ingest.model import Source
from lib.store import Store
from lib.ui import safe

_RESULTS = "upload_results"
"""Session key: per uploaded file (name, size), the report of its last ingest."""
_SIGNED_IN = "upload_signed_in"
"""Session key: a digest of the write token this session signed in with (a changed token
signs every session out)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def allowed(settings: Settings) -> bool:
    """Whether this session may write through the upload area now."""
    policy = settings.upload_policy
    if policy == "on":
        return True
    if policy == "off" or not settings.api_token:
        return False
    signed = st.session_state.get(_SIGNED_IN, "")
    return hmac.compare_digest(signed, _digest(settings.api_token))


def _sign_in(settings: Settings) -> None:
    """The token form; a right token signs this session in for uploads."""
    st.info(
        "Adding results here needs the server's write token (the one `POST /api/results` "
        "needs; `dtd serve` prints it). Sign in with it to upload files.",
        icon=":material/lock:",
    )
    with st.form("upload_sign_in"):
        given = st.text_input("Write token", type="password", key="upload_token")
        if st.form_submit_button("Sign in"):
            if hmac.compare_digest(_digest(given.strip()), _digest(settings.api_token)):
                st.session_state[_SIGNED_IN] = _digest(settings.api_token)
                st.rerun()
            st.error("That is not the write token; nothing was changed.", icon=":material/error:")


def render(store: Store, options: IngestOptions, settings: Settings) -> None:
    policy = settings.upload_policy
    if policy == "off":
        st.info(
            'Uploads are turned off on this server (`uploads = "off"`). Add results with '
            "`dtd ingest`, the inbox folder or `POST /api/results`.",
            icon=":material/block:",
        )
        return
    if policy == "token" and not settings.api_token:
        st.info(
            "Uploads need the write token, and this server has none configured (set "
            '`DTD_API_TOKEN`, or `uploads = "on"` for an open local demo).',
            icon=":material/block:",
        )
        return
    if not allowed(settings):
        _sign_in(settings)
        return
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
                _show(report)
    strict = st.checkbox(
        "All or nothing",
        key="ingest_strict",
        help="A bad record, or one that needs a stand-in name or time, fails its whole file "
        "(dtd ingest --strict). Otherwise bad records are left out and listed.",
    )
    label = f"Ingest {len(ready)} file{'s' if len(ready) != 1 else ''}"
    if st.button(label, type="primary", disabled=not ready or store.read_only, key="ingest"):
        chosen = replace(options, strict=strict)
        if allowed(settings):  # the policy is read again at the moment of writing
            with st.spinner("Ingesting..."):
                for name, data, key in ready:
                    done[key] = ingest_bytes(store, name, data, chosen)
        st.rerun()


SHOWN = 20
"""Problems shown per file; the rest are counted."""


def _show(report) -> None:
    """What became of one file: its counts, then each record left out or kept with a stand-in."""
    if report.status == "error":
        st.error(report.error, icon=":material/error:")
        return
    counts = (
        f"{report.results:,} results ({report.passed:,} passed, {report.failed:,} failed, "
        f"{report.errors:,} errors, {report.skipped:,} skipped), {report.measurements:,} metric "
        f"values, {report.added:,} new"
    )
    if report.status == "ok" and not report.warnings:
        st.success(f"Ingested: {counts}.", icon=":material/check_circle:")
        return
    said = []
    if report.rejected:
        said.append(f"{report.rejected:,} records left out")
    if report.warnings:
        said.append(f"{report.warnings:,} stored with a stand-in")
    lines = [
        f"- **{'left out' if p['outcome'] == 'rejected' else 'kept'}**: "
        f"{safe.md(p['where'])}: {safe.md(p['problem'])} {safe.md(p['fix'])}"
        for p in report.problems[:SHOWN]
    ]
    more = report.rejected + report.warnings - len(lines)
    if more > 0:
        lines.append(f"- ... and {more:,} more (`dtd ingest --json` lists the first 100)")
    st.warning(
        f"Ingested: {counts}; {' and '.join(said)}:\n\n" + "\n".join(lines),
        icon=":material/warning:",
    )
