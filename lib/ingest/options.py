"""Choices a caller makes for an ingest: defaults for missing fields, a column mapping, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SETTABLE = (
    "hardware",
    "device",
    "model",
    "precision",
    "batch_size",
    "kind",
    "worker",
    "git_commit",
    "git_branch",
    "run",
)
"""What ``--set key=value`` may fill in where a source does not say."""


@dataclass(frozen=True)
class IngestOptions:
    defaults: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, Any] | None = None
    """Column mapping for foreign tables (see lib/ingest/tabular.py)."""
    max_bytes: int = 512 * 1024 * 1024
    chunk_size: int = 20_000
    strict: bool = False
    """All or nothing: any record that would be left out, or stored only with a stand-in (a
    name or a time the report does not give), fails the whole file (``dtd ingest --strict``)."""
