"""Reports that leave the dashboard: one self-contained HTML file, a PDF, or a ZIP bundle.

A report is built once (``build``: the same queries and chart builders as the pages) into a
``Report`` of sections holding text, tables and charts, then rendered:

- ``to_html``: one file with its styles inline and every chart as an inline PNG; it loads nothing
  from the network, and every string that came from data is escaped;
- ``to_pdf``: the same content through matplotlib (tables drawn, charts as images);
- ``to_zip``: the HTML and the PDF, a CSV of every table and a PNG of every chart.

The five types are the seed's: performance, regression, dimension, worker, test.
"""

from __future__ import annotations

import base64
import html
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import altair as alt
import duckdb
import pandas as pd

from lib import analysis, charts, health, performance, queries, regressions
from lib.config import REPORT_TYPES
from lib.export import chart_png, csv_bytes
from lib.spec import QuerySpec

TITLES = {
    "performance": "Performance report",
    "regression": "Regression report",
    "dimension": "Dimension comparison report",
    "worker": "Worker report",
    "test": "Test report",
}
MAX_ROWS = 200
"""Rows of a table shown in a report (the CSV in the bundle has them all)."""


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    charts: list[tuple[str, Callable[[], alt.TopLevelMixin], pd.DataFrame]] = field(
        default_factory=list
    )
    """(name, a function that draws the chart, its data): drawn when shown or exported, so
    building a report costs its queries, not Altair's spec validation."""


@dataclass
class Report:
    kind: str
    title: str
    scope: str
    """Time range and filters, in words."""
    generated: datetime
    sections: list[Section]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "item"


def _filters(spec: QuerySpec) -> str:
    return "; ".join(f"{name} = {', '.join(values)}" for name, values in spec.filters) or "none"


# ----------------------------------------------------------------------------- building


def build(
    cur: duckdb.DuckDBPyConnection,
    kind: str,
    spec: QuerySpec,
    now: datetime,
    metric: str | None = None,
    dimension: str = "hardware",
) -> Report:
    """A report of one type for the spec's window and filters. ValueError names a wrong type,
    metric or dimension; without a metric the performance pages' default is used."""
    if kind not in REPORT_TYPES:
        raise ValueError(f"report type must be one of {', '.join(REPORT_TYPES)}, not {kind!r}")
    performance.resolve_dimension(cur, dimension)
    if kind in ("performance", "dimension"):
        metric = performance.resolve_metric(cur, metric)
    builder = {
        "performance": _performance,
        "regression": _regression,
        "dimension": _dimension,
        "worker": _worker,
        "test": _test,
    }[kind]
    scope = f"{spec.describe(now)}; filters: {_filters(spec)}"
    sections = builder(cur, spec, now, metric, dimension)
    return Report(kind, TITLES[kind], scope, now, sections)


def _status_section(cur, spec, now) -> Section:
    counts = queries.status_counts(cur, spec, now)["current"]
    table = pd.DataFrame(
        [
            {
                "results": counts["results"],
                "passed": counts["passed"],
                "failed": counts["failed"],
                "error": counts["error"],
                "skipped": counts["skipped"],
                "pass_rate": None if counts["pass_rate"] is None else round(counts["pass_rate"], 4),
            }
        ]
    )
    over_time = queries.status_over_time(cur, spec, now)
    section = Section(
        "Results",
        "Pass rate = passed / (passed + failed + error).",
        tables=[("status_counts", table)],
    )
    if len(over_time):
        step = int(over_time.attrs.get("bucket_seconds", 3600))
        data = over_time[["bucket", "passed", "failed", "error", "skipped"]]
        section.charts.append(
            ("results_by_status", partial(charts.status_volume, data, step), data)
        )
    return section


def _performance(cur, spec, now, metric, dimension) -> list[Section]:
    info = performance.metric_info(cur, metric)
    sections = [_status_section(cur, spec, now)]
    trend = performance.metric_over_time(cur, spec, now, metric, dimension, relative=True)
    section = Section(
        f"{metric} over time",
        "Each value divided by its own series' median in the range (1.0 = usual), "
        f"then the median per bucket and {dimension}." + performance.statistic_note(trend),
    )
    if len(trend):
        section.charts.append(
            (
                f"trend_{metric}",
                partial(charts.trend, trend, info, "p25-p75", False, dimension, True),
                trend,
            )
        )
        section.tables.append(
            ("early_against_late", analysis.trend_summary(trend, info["direction"]))
        )
    sections.append(section)
    stats = performance.dimension_stats(cur, spec, now, metric, dimension)
    sections.append(
        Section(
            f"{metric} by {dimension}",
            performance.statistic_note(stats).strip(),
            tables=[(f"by_{dimension}", stats)],
        )
    )
    sections += _median_heatmap(cur, spec, now, metric, dimension, info, "Empty cells: never run.")
    return sections


def _median_heatmap(cur, spec, now, metric, dimension, info, text) -> list[Section]:
    """The metric's median by ``dimension`` against model (or hardware, when the dimension is
    model): one section, or none when nothing ran."""
    other = "model" if dimension != "model" else "hardware"
    cells = performance.heatmap_cells(cur, spec, now, metric, other, dimension, "median")
    if not len(cells):
        return []
    grid = analysis.heatmap_grid(cells, False, info["direction"])
    draw = partial(charts.heatmap, grid, other, dimension, f"median {metric}", ",.3~s")
    name = f"heatmap_{other}_{dimension}"
    return [
        Section(
            f"Median {metric}: {other} by {dimension}",
            text,
            charts=[(name, draw, grid.drop(columns="relative"))],
        )
    ]


def _regression(cur, spec, now, metric, dimension) -> list[Section]:
    found = regressions.listing(cur, spec, now, kinds=("regression",))
    better = regressions.listing(cur, spec, now, kinds=("improvement",))
    counts = (
        found.groupby("severity").size().rename("regressions").reset_index()
        if len(found)
        else pd.DataFrame(columns=["severity", "regressions"])
    )
    columns = [
        "changed_at",
        "severity",
        "change",
        "ci_low",
        "ci_high",
        "q_value",
        "metric",
        "test",
        "model",
        "hardware",
        "device",
        "batch_size",
        "precision",
        "commit_before",
        "commit_after",
        "status",
    ]
    sections = [
        Section(
            "Regressions",
            "Stable series only (robust CV at most 10 %); change = relative change of "
            "the median, with its 95 % bootstrap interval; q = Benjamini-Hochberg.",
            tables=[("regressions_by_severity", counts), ("regressions", found[columns])],
        ),
        Section("Improvements", tables=[("improvements", better[columns])]),
    ]
    if len(found) and found["commit_after"].notna().any():
        top = found.dropna(subset=["commit_after"]).iloc[0]
        reach = regressions.blast_radius(cur, top["commit_after"], top["metric"])
        grid = analysis.heatmap_grid(reach, False, "higher")
        sections.append(
            Section(
                f"Blast radius of commit {top['commit_after']}",
                f"Median change of {top['metric']} per model and hardware for every change point "
                "starting at this commit.",
                charts=[
                    (
                        "blast_radius",
                        partial(charts.heatmap, grid, "Model", "Hardware", "median change", "+.0%"),
                        grid.drop(columns="relative"),
                    )
                ],
            )
        )
    return sections


def _dimension(cur, spec, now, metric, dimension) -> list[Section]:
    info = performance.metric_info(cur, metric)
    stats = performance.dimension_stats(cur, spec, now, metric, dimension)
    section = Section(
        f"{metric} by {dimension}",
        "Bars span the 25th to 75th percentile; the tick is the median."
        + performance.statistic_note(stats),
        tables=[(f"{metric}_by_{dimension}", stats)],
    )
    if len(stats):
        section.charts.append(
            (
                f"{metric}_by_{dimension}",
                partial(charts.distribution, stats, info, dimension),
                stats,
            )
        )
    sections = [section]
    sections += _median_heatmap(cur, spec, now, metric, dimension, info, "")
    return sections


def _worker(cur, spec, now, metric, dimension) -> list[Section]:
    fleet = queries.workers(cur, now, spec.filter_values("hardware"))
    judged = health.worker_health(cur, spec, now)
    fleet = health.with_health(fleet, judged)
    states = fleet["state"].value_counts().rename_axis("state").rename("workers").reset_index()
    columns = [
        c
        for c in (
            "worker_id",
            "state",
            "seconds_since_heartbeat",
            "current_task",
            "hardware",
            "device",
            *health.JUDGED_COLUMNS[1:],  # the verdict, after worker_id
        )
        if c in fleet.columns
    ]
    section = Section(
        "Fleet",
        "Stale: 3 missed heartbeats; dead: 10. Flagged: failing more than peers on "
        "the same tests (Benjamini-Hochberg p < 0.001, at least twice the expected "
        "failures). In the chart the tick is the failure rate of the same tests elsewhere.",
        tables=[("workers_by_state", states), ("workers", fleet[columns])],
    )
    if "failure_rate" in fleet and fleet["failure_rate"].notna().any():
        data = fleet[columns]
        section.charts.append(("worker_failure_rates", partial(charts.worker_failures, data), data))
    return [section]


def _test(cur, spec, now, metric, dimension) -> list[Section]:
    sick = health.flagged_workers(cur, spec, now)
    tests = health.test_health(cur, spec, now, sick)
    states = tests["state"].value_counts().rename_axis("state").rename("tests").reset_index()
    columns = [
        "state",
        "test",
        "configuration",
        "pass_rate",
        "pass_rate_low",
        "pass_rate_high",
        "runs",
        "failures",
        "flaky_score",
        "last_status",
        "last_run",
        "strip",
    ]
    trouble = tests[tests["state"].isin(["broken", "flaky", "failing"])]
    over_time = queries.status_over_time(cur, spec, now)
    sections = [
        Section(
            "Test health",
            "Flaky: passed and failed on the same commit, or flips at least every "
            "fifth run of the last 20 with a failure rate of 5 to 95 %. Broken: the "
            "last 3 runs failed."
            + (f" Results of flagged workers ({', '.join(sick)}) are set aside." if sick else ""),
            tables=[("tests_by_state", states), ("tests_needing_attention", trouble[columns])],
        )
    ]
    if len(over_time):
        step = int(over_time.attrs.get("bucket_seconds", 3600))
        sections[0].charts.append(
            ("pass_rate", partial(charts.pass_rate, over_time, step), over_time)
        )
    clusters = []
    for row in trouble.itertuples():
        runs = health.test_runs(cur, spec, now, row.series_id)
        for cluster in health.failure_clusters(runs).itertuples():
            clusters.append(
                {
                    "test": row.test,
                    "configuration": row.configuration,
                    "cause": cluster.cluster,
                    "failures": cluster.failures,
                    "last_seen": cluster.last_seen,
                    "example": cluster.example,
                }
            )
    if clusters:
        sections.append(
            Section(
                "Failures by cause",
                "Messages with numbers, ids, paths and times taken out.",
                tables=[("failure_clusters", pd.DataFrame(clusters))],
            )
        )
    return sections


# ----------------------------------------------------------------------------- rendering

_CSS = {
    "light": "--bg:#ffffff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--head:#f3f5f8;",
    "dark": "--bg:#0d1117;--fg:#e6edf3;--muted:#8b949e;--line:#30363d;--head:#161b22;",
}


def _table_html(frame: pd.DataFrame) -> str:
    shown = frame.head(MAX_ROWS)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for record in shown.itertuples(index=False):
        cells = []
        for value in record:
            if isinstance(value, float):
                text = "" if value != value else f"{value:,.4g}"
            elif isinstance(value, datetime | pd.Timestamp):
                text = f"{value:%Y-%m-%d %H:%M}"
            else:
                text = "" if value is None else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    more = (
        f'<p class="muted">{len(frame) - MAX_ROWS:,} more rows in the CSV.</p>'
        if len(frame) > MAX_ROWS
        else ""
    )
    empty = '<p class="muted">Nothing here.</p>' if frame.empty else ""
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}{empty}"
    )


def render_pngs(report: Report, dark: bool = False) -> dict[str, bytes]:
    """Every chart of the report as a PNG, by name."""
    return {
        name: chart_png(draw(), dark=dark)
        for section in report.sections
        for name, draw, _ in section.charts
    }


def to_html(report: Report, theme: str = "light", pngs: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML file: inline styles, inline PNG charts, escaped text."""
    pngs = pngs if pngs is not None else render_pngs(report, theme == "dark")
    parts = []
    for section in report.sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f'<p class="muted">{html.escape(section.text)}</p>')
        for name, _, _ in section.charts:
            encoded = base64.b64encode(pngs[name]).decode()
            parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">')
        for name, frame in section.tables:
            parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3>{_table_html(frame)}")
        parts.append("</section>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.title)}</title>
<style>
:root {{{_CSS.get(theme, _CSS["light"])}}}
body {{ background: var(--bg); color: var(--fg); margin: 2rem auto; max-width: 1200px;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; padding: 0 1rem; }}
h1 {{ margin-bottom: .2rem; }} h2 {{ border-bottom: 1px solid var(--line); padding-bottom: .2rem; }}
.muted {{ color: var(--muted); }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 12px; }}
th, td {{ border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: var(--head); }} img {{ max-width: 100%; margin: .5rem 0; }}
</style></head><body>
<h1>{html.escape(report.title)}</h1>
<p class="muted">{html.escape(report.scope)} · generated {report.generated:%Y-%m-%d %H:%M:%S} UTC
by the distributed testing dashboard</p>
{"".join(parts)}
</body></html>
"""


def to_pdf(report: Report, pngs: dict[str, bytes] | None = None) -> bytes:
    """The same content as a PDF drawn with matplotlib: a title page, then charts and tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    pngs = pngs if pngs is not None else render_pngs(report)
    out = io.BytesIO()
    with PdfPages(out) as pdf:
        page = plt.figure(figsize=(11.69, 8.27))
        page.text(0.05, 0.85, report.title, fontsize=24, weight="bold")
        page.text(0.05, 0.78, report.scope, fontsize=11, wrap=True)
        page.text(0.05, 0.74, f"generated {report.generated:%Y-%m-%d %H:%M:%S} UTC", fontsize=11)
        y = 0.66
        for section in report.sections:
            page.text(0.07, y, f"• {section.title}", fontsize=12)
            y -= 0.04
        pdf.savefig(page)
        plt.close(page)
        for section in report.sections:
            for name, _, _ in section.charts:
                figure = plt.figure(figsize=(11.69, 8.27))
                figure.suptitle(f"{section.title}: {name.replace('_', ' ')}", fontsize=13)
                axes = figure.add_axes((0.03, 0.03, 0.94, 0.88))
                axes.imshow(mpimg.imread(io.BytesIO(pngs[name]), format="png"))
                axes.axis("off")
                pdf.savefig(figure)
                plt.close(figure)
            for name, frame in section.tables:
                shown = frame.head(40)
                figure = plt.figure(figsize=(11.69, 8.27))
                figure.suptitle(f"{section.title}: {name.replace('_', ' ')}", fontsize=13)
                axes = figure.add_axes((0.02, 0.02, 0.96, 0.88))
                axes.axis("off")
                if shown.empty:
                    axes.text(0.0, 0.9, "Nothing here.", fontsize=11)
                else:
                    cells = [[_cell(v) for v in row] for row in shown.itertuples(index=False)]
                    table = axes.table(
                        cellText=cells,
                        colLabels=[str(c) for c in shown.columns],
                        loc="upper left",
                        cellLoc="left",
                    )
                    table.auto_set_font_size(False)
                    table.set_fontsize(6 if len(shown.columns) > 8 else 8)
                    table.auto_set_column_width(list(range(len(shown.columns))))
                    if len(frame) > len(shown):
                        axes.text(
                            0.0,
                            -0.02,
                            f"{len(frame) - len(shown):,} more rows in the CSV",
                            fontsize=8,
                            transform=axes.transAxes,
                        )
                pdf.savefig(figure)
                plt.close(figure)
        info = pdf.infodict()
        info["Title"] = report.title
        info["CreationDate"] = report.generated.replace(tzinfo=UTC)
    return out.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:,.4g}"
    if isinstance(value, datetime | pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M}"
    text = "" if value is None else str(value)
    return text if len(text) <= 48 else text[:45] + "..."


def to_zip(report: Report, theme: str = "light") -> bytes:
    """The report as HTML and PDF, a CSV of every table, a PNG of every chart."""
    pngs = render_pngs(report, theme == "dark")
    out = io.BytesIO()
    base = _slug(report.kind + "_report")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{base}.html", to_html(report, theme, pngs))
        bundle.writestr(f"{base}.pdf", to_pdf(report, pngs))
        for section in report.sections:
            for name, frame in section.tables:
                bundle.writestr(f"tables/{_slug(name)}.csv", csv_bytes(frame))
            for name, _, data in section.charts:
                bundle.writestr(f"charts/{_slug(name)}.png", pngs[name])
                bundle.writestr(f"charts/{_slug(name)}.csv", csv_bytes(data))
    return out.getvalue()
