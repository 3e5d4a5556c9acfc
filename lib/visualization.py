"""The seed's Python API, working: ``VisualizationEngine`` and ``DashboardGenerator``.

Both reuse the pages' chart builders (``lib.charts``) and queries; the engine draws from data you
pass in, the generator reports from the store. Example::

    from lib.visualization import VisualizationEngine
    engine = VisualizationEngine(output_dir="./visualizations")
    path = engine.create_visualization("time_series", {
        "time_series": {"model1": [(datetime(2025, 3, 1), 156.7), (datetime(2025, 3, 2), 158.2)]},
        "metric": "throughput", "title": "Model Throughput Comparison"})

A custom type: ``engine.register("my_chart", fn)`` with ``fn(data, output_path, engine) -> path``
(the seed's ``engine._create_custom_visualization = fn`` still works for the type "custom").
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from lib import analysis, charts, regressions, reports, stats
from lib.config import load_settings, read_secrets_files
from lib.export import chart_png
from lib.spec import QuerySpec
from lib.store import open_store

VISUALIZATION_TYPES = (
    "time_series",
    "dimension_comparison",
    "regression_analysis",
    "correlation",
    "heatmap",
)
_ENGINE_KEYS = ("theme", "interactive", "scale", "output_format")


def _frame(data: Any, key: str) -> Any:
    value = data.get(key) if isinstance(data, dict) else data
    return value


def _metric(data: dict) -> dict:
    return {
        "name": str(data.get("metric", "value")),
        "unit": str(data.get("unit", "")),
        "direction": str(data.get("direction", "none")),
    }


class VisualizationEngine:
    """Charts from data, saved as PNG (matplotlib-free: rendered offline by vl-convert) or as a
    self-contained interactive HTML file."""

    def __init__(
        self,
        output_dir: str | Path = "./visualizations",
        theme: str = "light",
        interactive: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.config: dict[str, Any] = {
            "theme": theme,
            "interactive": interactive,
            "scale": 2.0,
            "output_format": "html" if interactive else "png",
        }
        self._custom: dict[str, Callable[..., str]] = {}

    def configure(self, config_updates: dict[str, Any]) -> None:
        unknown = sorted(set(config_updates) - set(_ENGINE_KEYS))
        if unknown:
            raise ValueError(
                f"unknown settings {', '.join(unknown)}; known: {', '.join(_ENGINE_KEYS)}"
            )
        if config_updates.get("theme", "light") not in ("light", "dark"):
            raise ValueError("theme must be 'light' or 'dark'")
        self.config.update(config_updates)
        if "interactive" in config_updates and "output_format" not in config_updates:
            self.config["output_format"] = "html" if config_updates["interactive"] else "png"

    def register(self, name: str, function: Callable[..., str]) -> None:
        """Add a visualization type: ``function(data, output_path, engine) -> path``."""
        self._custom[name] = function

    # ------------------------------------------------------------------ building

    def chart(self, visualization_type: str, data: Any) -> alt.TopLevelMixin:
        builders = {
            "time_series": self._time_series,
            "dimension_comparison": self._dimensions,
            "regression_analysis": self._regression,
            "correlation": self._correlation,
            "heatmap": self._heatmap,
        }
        if visualization_type not in builders:
            raise ValueError(
                f"unknown visualization type {visualization_type!r}; known: "
                f"{', '.join([*VISUALIZATION_TYPES, *self._custom])}"
            )
        chart = builders[visualization_type](data)
        title = data.get("title") if isinstance(data, dict) else None
        return chart.properties(title=str(title)) if title else chart

    def _time_series(self, data: Any) -> alt.TopLevelMixin:
        series = _frame(data, "time_series")
        if isinstance(series, dict):
            rows = [
                {"bucket": pd.Timestamp(ts), "group": str(name), "value": float(value)}
                for name, points in series.items()
                for ts, value in points
            ]
            frame = pd.DataFrame(rows, columns=["bucket", "group", "value"])
        else:
            frame = pd.DataFrame(series).rename(
                columns={"timestamp": "bucket", "ts": "bucket", "series": "group"}
            )
            if "group" not in frame:
                frame["group"] = "series"
        frame = frame.assign(
            median=frame["value"],
            p25=frame["value"],
            p75=frame["value"],
            min=frame["value"],
            max=frame["value"],
            n=1,
        )
        frame.attrs["bucket_seconds"] = 3600
        metric = _metric(data if isinstance(data, dict) else {})
        return charts.trend(frame, metric, "none", bool(_get(data, "log")), "series")

    def _dimensions(self, data: Any) -> alt.TopLevelMixin:
        values = _frame(data, "values")
        if isinstance(values, dict):
            frame = pd.DataFrame(
                [{"value": str(k), "v": float(x)} for k, xs in values.items() for x in xs]
            )
        else:
            frame = pd.DataFrame(_frame(data, "data")).rename(
                columns={"group": "value", "metric": "v"}
            )
        grouped = frame.groupby("value")["v"]
        table = pd.DataFrame(
            {
                "count": grouped.size(),
                "mean": grouped.mean(),
                "median": grouped.median(),
                "p25": grouped.quantile(0.25),
                "p75": grouped.quantile(0.75),
                "p95": grouped.quantile(0.95),
                "std": grouped.std(),
            }
        ).reset_index()
        table["cv"] = table["std"] / table["mean"].abs()
        return charts.distribution(table, _metric(data), str(_get(data, "dimension") or ""))

    def _regression(self, data: Any) -> alt.TopLevelMixin:
        values = np.asarray(_frame(data, "values"), dtype=float)
        stamps = _get(data, "timestamps")
        ts = (
            pd.to_datetime(list(stamps))
            if stamps is not None
            else pd.date_range("2000-01-01", periods=len(values), freq="h")
        )
        frame = pd.DataFrame({"ts": ts, "value": values, "git_commit": None})
        metric = _metric(data)
        found = regressions.change_records(
            frame, 0, metric["name"], metric["direction"], datetime.now(UTC).replace(tzinfo=None)
        )
        points = frame[["ts", "value"]]
        if not found:
            return charts.trend(
                points.rename(columns={"ts": "bucket"}).assign(
                    group="values",
                    median=values,
                    p25=values,
                    p75=values,
                    min=values,
                    max=values,
                    n=1,
                ),
                metric,
                "none",
                False,
                "series",
            )
        largest = max(found, key=lambda r: abs(r["change"]))
        record = {**largest, "unit": metric["unit"]}
        marks = pd.DataFrame(found)[["changed_at", "kind", "severity", "change"]]
        return charts.change_explained(points, record, marks)

    def _correlation(self, data: Any) -> alt.TopLevelMixin:
        metrics = _frame(data, "metrics")
        frame = pd.DataFrame(metrics)
        pairs = stats.correlation_matrix(frame)
        return charts.correlation_grid(pairs, str(_get(data, "method") or "spearman"))

    def _heatmap(self, data: Any) -> alt.TopLevelMixin:
        if isinstance(data, dict) and "values" in data and "rows" in data:
            cells = pd.DataFrame(
                [
                    {"row": str(r), "col": str(c), "value": data["values"][i][j], "n": 1}
                    for i, r in enumerate(data["rows"])
                    for j, c in enumerate(data["columns"])
                ]
            )
        else:
            cells = pd.DataFrame(_frame(data, "data")).assign(n=1)
        cells["value"] = pd.to_numeric(cells["value"], errors="coerce")
        grid = analysis.heatmap_grid(cells.dropna(subset=["value"]), False, "higher")
        return charts.heatmap(
            grid,
            str(_get(data, "rows_title") or "rows"),
            str(_get(data, "columns_title") or "columns"),
            str(_get(data, "metric") or "value"),
        )

    # ------------------------------------------------------------------ saving

    def create_visualization(
        self, visualization_type: str, data: Any, output_path: str | Path | None = None
    ) -> str:
        """Draw and save; returns the file's path (PNG, or HTML when interactive or asked)."""
        if visualization_type in self._custom:
            path = output_path or self._path(visualization_type, "png")
            return str(self._custom[visualization_type](data, path, self))
        legacy = getattr(self, f"_create_{visualization_type}_visualization", None)
        if visualization_type not in VISUALIZATION_TYPES and callable(legacy):
            path = output_path or self._path(visualization_type, "png")
            return str(legacy(data, path))
        chart = self.chart(visualization_type, data)
        path = Path(output_path or self._path(visualization_type, self.config["output_format"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".html":
            dark = self.config["theme"] == "dark"
            document = chart.to_html(inline=True, embed_options={"theme": "dark"} if dark else {})
            path.write_text(document, encoding="utf-8")
        else:
            path.write_bytes(
                chart_png(
                    chart, dark=self.config["theme"] == "dark", scale=float(self.config["scale"])
                )
            )
        return str(path)

    def _path(self, name: str, extension: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        return self.output_dir / f"{name}-{stamp}.{extension}"

    def create_performance_dashboard(
        self, data: dict | None = None, output_path: str | Path | None = None
    ) -> str:
        """The performance report of the store (``data`` may hold filters) as HTML."""
        generator = DashboardGenerator(output_dir=self.output_dir, theme=self.config["theme"])
        return generator.generate_report("performance", data, output_path)

    def create_regression_report(
        self, data: dict | None = None, output_path: str | Path | None = None
    ) -> str:
        generator = DashboardGenerator(output_dir=self.output_dir, theme=self.config["theme"])
        return generator.generate_report("regression", data, output_path)


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


# ----------------------------------------------------------------------------- reports


_GENERATOR_KEYS = ("theme", "default_report_type", "filters", "metric", "dimension")


class DashboardGenerator:
    """Reports of the store as files: one report, or a dashboard of all five in tabs.

    ``data`` is None (everything) or a dict of filters in the dashboard's link parameters
    (``{"range": "30d", "hardware": ["cuda"], "metric": ..., "dimension": ...}``)."""

    def __init__(
        self,
        result_aggregator: Any = None,
        output_dir: str | Path = "./dashboards",
        db_path: str | Path | None = None,
        theme: str = "light",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.db_path = db_path
        self.config: dict[str, Any] = {
            "theme": theme,
            "default_report_type": "performance",
            "filters": {},
            "metric": None,
            "dimension": "hardware",
        }

    def configure(self, config_updates: dict[str, Any]) -> None:
        unknown = sorted(set(config_updates) - set(_GENERATOR_KEYS))
        if unknown:
            raise ValueError(
                f"unknown settings {', '.join(unknown)}; known: {', '.join(_GENERATOR_KEYS)}"
            )
        report_type = config_updates.get("default_report_type", "performance")
        if report_type not in reports.REPORT_TYPES:
            raise ValueError(f"default_report_type must be one of {reports.REPORT_TYPES}")
        self.config.update(config_updates)

    def _build(self, kind: str, data: dict | None) -> reports.Report:
        filters = {**self.config["filters"], **(data or {})}
        metric = filters.pop("metric", self.config["metric"])
        dimension = filters.pop("dimension", self.config["dimension"])
        spec = QuerySpec.from_params(
            {k: v if isinstance(v, list) else [str(v)] for k, v in filters.items()}
        )
        settings = load_settings(secrets=read_secrets_files(), db_override=self.db_path)
        store = open_store(settings.db_path, create=False)
        with store.cursor() as cur:
            return reports.build(
                cur,
                kind,
                spec,
                datetime.now(UTC).replace(tzinfo=None),
                metric=metric,
                dimension=dimension,
            )

    def generate_report(
        self,
        report_type: str | None = None,
        data: dict | None = None,
        output_path: str | Path | None = None,
    ) -> str:
        """One report; the file's extension picks HTML (default), PDF or ZIP."""
        kind = report_type or self.config["default_report_type"]
        report = self._build(kind, data)
        path = Path(output_path or self.output_dir / f"{kind}_report.html")
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            path.write_bytes(reports.to_pdf(report))
        elif suffix == ".zip":
            path.write_bytes(reports.to_zip(report, self.config["theme"]))
        else:
            path.write_text(reports.to_html(report, self.config["theme"]), encoding="utf-8")
        return str(path)

    def generate_dashboard(
        self, data: dict | None = None, output_path: str | Path | None = None
    ) -> str:
        """All five reports in one self-contained HTML file, as tabs (no script needed)."""
        path = Path(output_path or self.output_dir / "dashboard.html")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            dashboard_html(
                [self._build(k, data) for k in reports.REPORT_TYPES], self.config["theme"]
            ),
            encoding="utf-8",
        )
        return str(path)


def dashboard_html(parts: list[reports.Report], theme: str = "light") -> str:
    """Reports as tabs: radio buttons and CSS only, so the file runs no script at all."""
    bodies, tabs = [], []
    for index, report in enumerate(parts):
        document = reports.to_html(report, theme)
        body = document.split("<body>", 1)[1].rsplit("</body>", 1)[0]
        checked = " checked" if index == 0 else ""
        tabs.append(
            f'<input type="radio" name="tab" id="tab{index}"{checked}>'
            f'<label for="tab{index}">{html.escape(report.title)}</label>'
        )
        bodies.append(f'<div class="panel" id="panel{index}">{body}</div>')
        if index == 0:
            head = document.split("<body>", 1)[0]
    selectors = " ".join(
        f"#tab{i}:checked ~ #panel{i} {{ display: block; }}" for i in range(len(parts))
    )
    style = (
        f"<style>.panel {{ display: none; }} {selectors} input[name=tab] {{ display: none; }}"
        " label { display: inline-block; padding: .4rem .9rem; margin-right: .3rem;"
        " border: 1px solid var(--line); border-radius: 6px 6px 0 0; cursor: pointer; }"
        " input[name=tab]:checked + label { background: var(--head); font-weight: 600; }"
        "</style>"
    )
    head = head.replace("</head>", f"{style}</head>").replace(
        f"<title>{html.escape(parts[0].title)}</title>", "<title>Dashboard</title>"
    )
    return f"{head}<body>{''.join(tabs)}{''.join(bodies)}</body></html>\n"


def from_store(
    visualization_type: str,
    cur: Any,
    spec: QuerySpec,
    now: datetime,
    metric: str | None = None,
    dimension: str = "hardware",
) -> alt.TopLevelMixin:
    """The seed's visualization types drawn from the store, as the pages draw them."""
    from lib import performance, queries

    performance.resolve_dimension(cur, dimension)
    if visualization_type in ("time_series", "dimension_comparison", "heatmap"):
        metric = performance.resolve_metric(cur, metric)
    info = performance.metric_info(cur, metric)
    if visualization_type == "time_series":
        frame = performance.metric_over_time(cur, spec, now, metric, dimension)
        if frame.empty:
            raise LookupError(f"no values of {metric} in this range")
        return charts.trend(frame, info, "p25-p75", False, dimension)
    if visualization_type == "dimension_comparison":
        table = performance.dimension_stats(cur, spec, now, metric, dimension)
        if table.empty:
            raise LookupError(f"no values of {metric} in this range")
        return charts.distribution(table, info, dimension)
    if visualization_type == "heatmap":
        cells = performance.heatmap_cells(cur, spec, now, metric, "model", dimension)
        if cells.empty:
            raise LookupError(f"no values of {metric} in this range")
        grid = analysis.heatmap_grid(cells, False, info["direction"])
        return charts.heatmap(grid, "model", dimension, f"median {metric}", ",.3~s")
    if visualization_type == "correlation":
        names = tuple(queries.metrics_present(cur)["name"][:8])
        sample = performance.metric_sample(cur, spec, now, names)
        if len(names) < 2 or sample.empty:
            raise LookupError("correlation needs two metrics with values")
        return charts.correlation_grid(stats.correlation_matrix(sample[list(names)]), "spearman")
    if visualization_type == "regression_analysis":
        found = regressions.listing(cur, spec, now)
        if found.empty:
            raise LookupError("no regression in this range")
        record = regressions.detail(cur, int(found["change_id"].iloc[0]))
        points = regressions.series_points(
            cur, int(record["series_id"]), record["metric"], record["changed_at"].to_pydatetime()
        )
        others = regressions.series_changes(cur, int(record["series_id"]), record["metric"])
        return charts.change_explained(points, record, others)
    raise ValueError(
        f"unknown visualization type {visualization_type!r}; known: "
        f"{', '.join(VISUALIZATION_TYPES)}"
    )
