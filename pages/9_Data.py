"""Data: what the store holds, where it lives, which metrics it knows, and the demo's ground truth."""

from __future__ import annotations

import streamlit as st

from lib.ui import context, panels, sidebar, uploads

context.page("Data")

settings = context.settings_or_stop()
store = context.store_or_stop(settings)
view = sidebar.render(store, settings)
agg = view.aggregator

st.title("Data")
summary = agg.summary()
meta = store.meta()
size_mb = store.path.stat().st_size / 1e6 if store.path.exists() else 0.0
st.markdown(
    f"**Database** `{store.path}` · {size_mb:,.1f} MB · schema version "
    f"{meta.get('schema_version', '?')}" + (" · read-only" if store.read_only else "")
)
if "demo_seed" in meta:
    st.caption(
        f"Demo data (seed {meta['demo_seed']}), generated up to {meta['demo_until']} UTC"
        + (", extended live as time passes." if meta.get("demo_live") == "1" else ".")
    )

tiles = st.columns(6)
tiles[0].metric("Results", f"{summary['results']:,}")
tiles[1].metric("Metric values", f"{summary['measurements']:,}")
tiles[2].metric("Benchmark series", f"{summary['benchmark_series']:,}")
tiles[3].metric("Test cases", f"{summary['test_cases']:,}")
tiles[4].metric("Runs", f"{summary['runs']:,}")
tiles[5].metric("Workers", f"{sum(summary['workers'].values()):,}")

st.subheader("Add results")
st.caption(
    "JUnit XML, pytest-benchmark, Google Benchmark, github-action-benchmark (data.js), asv, "
    "CSV / TSV / Parquet / JSON Lines / JSON in the documented columns, MLPerf summaries, and the "
    "seed framework's benchmark database. A bad record is left out and listed while the file's "
    "other records go in (or tick *All or nothing*); a file that is not its format changes "
    "nothing; the same file twice adds nothing. From a script: `dtd ingest PATH...`."
)
uploads.render(store, context.ingest_options(settings), settings)

st.subheader("Metrics")
st.caption("Direction is stored, never guessed: it decides what counts as a regression.")
panels.table(agg.metric_catalog(), "metrics")

truth = agg.demo_truth()
if truth is not None:
    st.subheader("Demo ground truth")
    st.caption("What the generator injected, so detectors and flags can be checked against it.")
    panels.table(truth, "demo_ground_truth")
