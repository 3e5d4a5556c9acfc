"""The query spec: one object for "which results", shared by the URL, the queries and exports.

A shared link reproduces a view because the sidebar's widgets, the URL's query parameters and
``QuerySpec`` use the same names and the same parsing (``from_params`` / ``to_params``). SQL is
built here only from allow-listed column names; every value travels as a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lib.dimensions import column_sql, is_wellformed

RELATIVE_RANGES: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
CUSTOM = "custom"
RANGE_CHOICES = (*RELATIVE_RANGES, CUSTOM)
DEFAULT_RANGE = "7d"

PRIMARY_FILTERS = ("hardware", "model", "batch_size", "precision")
"""Always in the sidebar; every other dimension (lib/dimensions.py) filters too, from
"More filters" or a link."""
INTEGER_FILTERS = {"batch_size"}
_INTEGER = re.compile(r"-?[0-9]+")


class SpecError(ValueError):
    """Query parameters that cannot be understood; the message names each one and why."""


@dataclass(frozen=True)
class QuerySpec:
    range: str = DEFAULT_RANGE
    start: date | None = None
    """First day of a custom range (UTC, inclusive)."""
    end: date | None = None
    """Last day of a custom range (UTC, inclusive)."""
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(dimension, allowed values) pairs, sorted; an absent dimension is not filtered."""

    def __post_init__(self) -> None:
        problems = []
        if self.range not in RANGE_CHOICES:
            problems.append(f"range={self.range!r} is not one of {', '.join(RANGE_CHOICES)}")
        if self.range == CUSTOM and (self.start is None or self.end is None):
            problems.append("range=custom needs both from=YYYY-MM-DD and to=YYYY-MM-DD")
        for name, day in (("from", self.start), ("to", self.end)):
            if day is not None and not 1970 <= day.year <= 2199:
                problems.append(f"{name}={day} is outside the years 1970 to 2199")
        if self.start and self.end and self.start > self.end:
            problems.append(f"from={self.start} is after to={self.end}")
        for dimension, values in self.filters:
            if not is_wellformed(dimension):
                problems.append(f"{dimension!r} is not a filterable dimension")
            if dimension in INTEGER_FILTERS:
                bad = [v for v in values if not _INTEGER.fullmatch(str(v))]
                if bad:
                    problems.append(f"{dimension} takes whole numbers, got {', '.join(bad)}")
                huge = [
                    v
                    for v in values
                    if v not in bad and (len(str(v)) > 11 or not -(2**31) < int(v) < 2**31)
                ]
                if huge:
                    problems.append(
                        f"{dimension} takes values between -2,147,483,647 and 2,147,483,647, "
                        f"got {', '.join(huge)}"
                    )
        if problems:
            raise SpecError("; ".join(problems) + ".")

    # ----------------------------------------------------------------- construction

    @classmethod
    def build(
        cls,
        range: str = DEFAULT_RANGE,
        start: date | None = None,
        end: date | None = None,
        **filters: Sequence[object],
    ) -> QuerySpec:
        """Normalise filters: strings, de-duplicated, sorted, empty ones dropped."""
        cleaned = tuple(
            sorted(
                (name, tuple(sorted({str(v) for v in values}, key=_natural)))
                for name, values in filters.items()
                if values
            )
        )
        if range != CUSTOM:
            start = end = None
        return cls(range=range, start=start, end=end, filters=cleaned)

    @classmethod
    def from_params(cls, params: Mapping[str, str | Sequence[str]]) -> QuerySpec:
        """Parse query parameters in the forms the sidebar writes: one value per repeated
        parameter (``hardware=cuda&hardware=rocm``); ``from``/``to`` dates only with
        ``range=custom``. Parameters that are not the spec's are someone else's business."""

        def values(name: str) -> list[str]:
            raw = params.get(name)
            items = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
            return [str(item).strip() for item in items if str(item).strip()]

        range_values = values("range")
        range_ = range_values[-1] if range_values else DEFAULT_RANGE
        dates: dict[str, date | None] = {"from": None, "to": None}
        problems = []
        for name in dates:
            given = values(name)
            if given and range_ == CUSTOM:
                try:
                    dates[name] = date.fromisoformat(given[-1])
                except ValueError:
                    problems.append(f"{name}={given[-1]!r} is not a date like 2026-01-31")
        if problems:
            raise SpecError("; ".join(problems) + ".")
        dimensions = [name for name in params if is_wellformed(name)]
        return cls.build(
            range_, dates["from"], dates["to"], **{name: values(name) for name in dimensions}
        )

    def to_params(self) -> dict[str, list[str]]:
        """Query parameters that reproduce this spec (defaults left out to keep links short)."""
        params: dict[str, list[str]] = {}
        if self.range != DEFAULT_RANGE:
            params["range"] = [self.range]
        if self.range == CUSTOM:
            params["from"] = [self.start.isoformat()]
            params["to"] = [self.end.isoformat()]
        for name, values in self.filters:
            params[name] = list(values)
        return params

    def filter_values(self, dimension: str) -> tuple[str, ...]:
        return dict(self.filters).get(dimension, ())

    # ----------------------------------------------------------------- time

    def window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """[start, end) in naive UTC; None means unbounded on that side."""
        if self.range == CUSTOM:
            return (
                datetime.combine(self.start, datetime.min.time()),
                datetime.combine(self.end + timedelta(days=1), datetime.min.time()),
            )
        span = RELATIVE_RANGES[self.range]
        return (None if span is None else now - span), None

    def previous_window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The window of the same length just before this one (None for "all")."""
        start, end = self.window(now)
        if start is None:
            return None
        end = end or now
        return start - (end - start), start

    def describe(self, now: datetime) -> str:
        """Human wording of the time range, for captions and report headers."""
        if self.range == CUSTOM:
            return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d} (UTC)"
        if self.range == "all":
            return "all time"
        return f"last {self.range} (since {self.window(now)[0]:%Y-%m-%d %H:%M} UTC)"

    # ----------------------------------------------------------------- SQL

    def series_clause(self, column: str = "series_id") -> tuple[str, list[object]]:
        """``AND column IN (matching series)`` with its parameters, or nothing when unfiltered."""
        conditions, params = [], []
        for name, values in self.filters:
            sql_column = column_sql(name, alias="")
            conditions.append(f"{sql_column} IN ({', '.join('?' * len(values))})")
            params.extend(int(v) if name in INTEGER_FILTERS else v for v in values)
        if not conditions:
            return "", []
        return (
            # Column names come from lib.dimensions' allow-list; values are parameters.
            f" AND {column} IN (SELECT series_id FROM series WHERE {' AND '.join(conditions)})",  # noqa: S608
            params,
        )


def _natural(value: str) -> tuple[int, int | str]:
    """Numbers in numeric order, before words in alphabetical order."""
    return (0, int(value)) if _INTEGER.fullmatch(value) and len(value) < 19 else (1, value)
