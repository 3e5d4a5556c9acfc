"""The dimensions results can be filtered, grouped and compared by: the allow-list for SQL names.

Built-in dimensions are columns of ``series``. Sources also carry their own (a browser, an MLPerf
scenario, a pytest parameter): those live in ``series.extra`` and are named ``extra.<key>``. Their
keys come from the data, so they are checked twice before reaching SQL: against a strict pattern
and against the keys the store actually holds; only then is the key written into the SQL text as
a quoted literal (a map key cannot be a bound parameter inside GROUP BY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

BUILTIN: dict[str, tuple[str, str]] = {
    "hardware": ("hardware", "Hardware"),
    "device": ("device", "Device"),
    "model": ("model", "Model"),
    "model_family": ("model_family", "Model family"),
    "modality": ("modality", "Modality"),
    "batch_size": ("batch_size", "Batch size"),
    "precision": ('"precision"', "Precision"),
    "kind": ("kind", "Kind"),
    "suite": ("suite", "Suite"),
    "benchmark": ("name", "Test or benchmark"),
}
"""Dimension name -> (column of ``series``, label)."""
EXTRA_PREFIX = "extra."
_EXTRA_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")


def series_label(alias: str = "s") -> str:
    """SQL: how a test is named for people, ``file › suite::name`` (the file or testsuite only
    where the report gave one), so same-named tests of two files read apart everywhere."""
    a = f"{alias}." if alias else ""
    return f"coalesce({a}file || ' › ', '') || coalesce({a}suite || '::', '') || {a}name"


class UnknownDimension(ValueError):
    pass


def is_wellformed(name: str) -> bool:
    """A built-in name, or ``extra.<key>`` with a key of safe characters."""
    if name in BUILTIN:
        return True
    key = name.removeprefix(EXTRA_PREFIX)
    return name.startswith(EXTRA_PREFIX) and bool(_EXTRA_KEY.fullmatch(key))


def extra_keys(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """The extra dimension keys the store's series carry, sorted."""
    rows = cur.execute(
        "SELECT DISTINCT unnest(map_keys(extra)) AS k FROM series WHERE extra IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows if _EXTRA_KEY.fullmatch(row[0])]


@dataclass(frozen=True)
class Dimensions:
    """The dimensions of one store: built-ins plus the extras its data carries."""

    extras: tuple[str, ...] = ()

    @classmethod
    def of(cls, cur: duckdb.DuckDBPyConnection) -> Dimensions:
        return cls(tuple(extra_keys(cur)))

    @property
    def names(self) -> list[str]:
        return [*BUILTIN, *(EXTRA_PREFIX + key for key in self.extras)]

    def label(self, name: str) -> str:
        if name in BUILTIN:
            return BUILTIN[name][1]
        return name.removeprefix(EXTRA_PREFIX).replace("_", " ")

    def sql(self, name: str, alias: str = "s") -> str:
        """The SQL expression of a dimension on a ``series`` row aliased ``alias``."""
        return column_sql(name, alias, self.extras)


def column_sql(name: str, alias: str = "s", extras: tuple[str, ...] | None = None) -> str:
    """SQL for a dimension; extras are checked against ``extras`` when it is given."""
    prefix = f"{alias}." if alias else ""
    if name in BUILTIN:
        return prefix + BUILTIN[name][0]
    if not is_wellformed(name):
        raise UnknownDimension(f"{name!r} is not a dimension")
    key = name.removeprefix(EXTRA_PREFIX)
    if extras is not None and key not in extras:
        raise UnknownDimension(f"no series carries the dimension {key!r}")
    return f"{prefix}extra['{key.replace(chr(39), chr(39) * 2)}']"
