"""The formats dtd reads, and recognising which one a source is from its first bytes.

Detection looks at content first (magic bytes, root element, leading keys) and at the extension
only to break ties, so a wrongly named file still goes in and a wrongly shaped one gets a message
that says what it looked like. Parsers are imported on first use.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from lib.ingest.model import IngestError, Source


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    module: str
    """Module with ``parse(source, sink, options)``."""

    def parser(self) -> Callable:
        return importlib.import_module(self.module).parse


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("junit", "JUnit XML", "lib.ingest.junit"),
        Format("pytest-benchmark", "pytest-benchmark JSON", "lib.ingest.pytest_benchmark"),
        Format("google-benchmark", "Google Benchmark JSON", "lib.ingest.google_benchmark"),
        Format(
            "github-action-benchmark",
            "github-action-benchmark data.js",
            "lib.ingest.github_action_benchmark",
        ),
        Format("asv", "asv results (v2)", "lib.ingest.asv"),
        Format("csv", "CSV results", "lib.ingest.tabular"),
        Format("parquet", "Parquet results", "lib.ingest.tabular"),
        Format("jsonl", "JSON Lines results", "lib.ingest.tabular"),
        Format("json", "JSON array of results", "lib.ingest.tabular"),
        Format("mlperf-inference", "MLPerf Inference summary (JSON)", "lib.ingest.mlperf"),
        Format("mlperf-training", "MLPerf Training runs (CSV)", "lib.ingest.mlperf"),
        Format(
            "seed-db", "benchmark database of the seed framework (DuckDB)", "lib.ingest.seed_db"
        ),
    )
}

INGESTIBLE_SUFFIXES = (
    ".xml",
    ".json",
    ".js",
    ".csv",
    ".tsv",
    ".parquet",
    ".jsonl",
    ".ndjson",
    ".duckdb",
    ".db",
)
"""What a folder walk picks up; a file named explicitly is always tried."""
ASV_METADATA = ("machine.json", "benchmarks.json")
"""asv's supporting files: read together with the results beside them, not on their own."""

_ROOT = re.compile(rb"<(?!\?|!)([A-Za-z_][\w.:-]*)")


def _supported() -> str:
    return ", ".join(f.title for f in FORMATS.values())


def detect(source: Source) -> Format:
    """The source's format, or an error that says what it looked like instead."""
    head = source.head(65536)
    name = source.name.lower()
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise IngestError(source.name, "is empty", "There is nothing to ingest.")
    if head[8:12] == b"DUCK":
        return FORMATS["seed-db"]
    if head[:4] == b"PAR1":
        return FORMATS["parquet"]
    if stripped[:1] == b"<":
        root = _ROOT.search(stripped)
        tag = root.group(1).decode("utf-8", "replace") if root else "?"
        if tag.split(":")[-1] in ("testsuites", "testsuite"):
            return FORMATS["junit"]
        raise IngestError(
            source.name,
            f"is XML whose root element is <{tag}>, not <testsuites> or <testsuite>",
            "Only JUnit XML reports are read.",
        )
    text = stripped.decode("utf-8", "replace")
    if text.startswith("window.BENCHMARK_DATA"):
        return FORMATS["github-action-benchmark"]
    if text.startswith("{"):
        first_line = text.split("\n", 1)[0].strip()
        if name.endswith((".jsonl", ".ndjson")) or _is_json_object(first_line) and "\n{" in text:
            return FORMATS["jsonl"]
        if '"machine_info"' in text and '"benchmarks"' in text:
            return FORMATS["pytest-benchmark"]
        if '"context"' in text and '"benchmarks"' in text:
            return FORMATS["google-benchmark"]
        if '"result_columns"' in text or ('"commit_hash"' in text and '"env_name"' in text):
            return FORMATS["asv"]
        if '"entries"' in text and '"benches"' in text:
            return FORMATS["github-action-benchmark"]  # its plain-JSON output
        if name.endswith(ASV_METADATA):
            raise IngestError(
                source.name,
                "is asv's machine or benchmark description, not results",
                "Ingest the result files beside it; they read it themselves.",
            )
        raise IngestError(
            source.name, "is a JSON object dtd does not recognise", f"Supported: {_supported()}."
        )
    if text.startswith("["):
        if '"Performance_Result"' in text:
            return FORMATS["mlperf-inference"]
        return FORMATS["json"]
    first_line = text.split("\n", 1)[0]
    if "," in first_line or "\t" in first_line or name.endswith((".csv", ".tsv")):
        header = {column.strip().strip('"').lower() for column in re.split(r"[,\t]", first_line)}
        if {"submitter", "benchmark", "time_to_train_min"} <= header:
            return FORMATS["mlperf-training"]
        return FORMATS["csv"]
    raise IngestError(source.name, "is not in a format dtd reads", f"Supported: {_supported()}.")


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@dataclass(frozen=True)
class Preview:
    """What an upload looks like before it goes in: its format (or why none) and its start."""

    format: str | None
    problem: str | None
    head: str


def preview(source: Source, lines: int = 12) -> Preview:
    try:
        fmt = detect(source)
    except IngestError as exc:
        return Preview(None, str(exc), "")
    if fmt.name in ("parquet", "seed-db"):
        return Preview(fmt.title, None, f"(binary file, {source.size:,} bytes)")
    text = source.head(16384).decode("utf-8", "replace").splitlines()
    shown = [line if len(line) <= 200 else line[:200] + " ..." for line in text[:lines]]
    return Preview(fmt.title, None, "\n".join(shown))
