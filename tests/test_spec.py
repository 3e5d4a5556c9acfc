"""The query spec: URL parameters in and out, windows, and SQL built from allow-lists only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from lib import queries
from lib.spec import QuerySpec, SpecError
from lib.store import open_store


def test_round_trip_through_url_parameters() -> None:
    spec = QuerySpec.from_params(
        {
            "hardware": ["rocm", "cuda", "cuda"],
            "batch_size": ["16", "4"],
            "range": "30d",
            "refresh": "5s",  # someone else's parameter: ignored
        }
    )
    assert spec.filter_values("hardware") == ("cuda", "rocm")
    assert spec.filter_values("batch_size") == ("4", "16")  # numeric order, not text order
    params = spec.to_params()
    assert params == {"range": ["30d"], "batch_size": ["4", "16"], "hardware": ["cuda", "rocm"]}
    assert QuerySpec.from_params(params) == spec


def test_custom_range_reads_dates_and_other_ranges_ignore_them() -> None:
    spec = QuerySpec.from_params(
        {"precision": ["fp16", "int8"], "range": "custom", "from": "2026-11-01", "to": "2026-11-07"}
    )
    assert spec.range == "custom" and spec.start == date(2026, 11, 1)
    assert spec.filter_values("precision") == ("fp16", "int8")
    start, end = spec.window(datetime(2026, 11, 29))
    assert (start, end) == (datetime(2026, 11, 1), datetime(2026, 11, 8))
    assert spec.previous_window(datetime(2026, 11, 29)) == (
        datetime(2026, 10, 25),
        datetime(2026, 11, 1),
    )
    # Like the sidebar: dates count only with range=custom, and commas are not separators.
    assert QuerySpec.from_params({"from": "2026-11-01", "to": "bad"}) == QuerySpec()
    assert QuerySpec.from_params({"model": "a,b"}).filter_values("model") == ("a,b",)


def test_defaults_stay_out_of_links() -> None:
    assert QuerySpec().to_params() == {}
    assert QuerySpec.from_params({}) == QuerySpec()


@pytest.mark.parametrize(
    "params, words",
    [
        ({"range": "2w"}, "range='2w' is not one of"),
        ({"range": "custom", "from": "yesterday"}, "from='yesterday' is not a date"),
        (
            {"range": "custom", "from": "2026-11-09", "to": "2026-11-01"},
            "from=2026-11-09 is after to=2026-11-01",
        ),
        ({"batch_size": "eight"}, "batch_size takes whole numbers, got eight"),
        ({"batch_size": ["8", "²"]}, "batch_size takes whole numbers, got ²"),
        ({"range": "custom"}, "range=custom needs both"),
    ],
)
def test_bad_parameters_are_named_precisely(params: dict, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        QuerySpec.from_params(params)


def test_relative_window_and_previous_period() -> None:
    now = datetime(2026, 11, 29, 12, 0)
    spec = QuerySpec.build("24h")
    assert spec.window(now) == (now - timedelta(hours=24), None)
    assert spec.previous_window(now) == (now - timedelta(hours=48), now - timedelta(hours=24))
    assert QuerySpec.build("all").previous_window(now) is None


def test_hostile_filter_values_are_only_ever_values(demo_db: Path) -> None:
    hostile = "cuda') OR 1=1; DROP TABLE results; --"
    spec = QuerySpec.build("all", hardware=[hostile, "<script>alert(1)</script>"])
    store = open_store(demo_db)
    with store.cursor() as cur:
        total = cur.execute("SELECT count(*) FROM results").fetchall()[0][0]
        counts = queries.status_counts(cur, spec, datetime(2030, 1, 1))
        assert counts["current"]["results"] == 0
        assert cur.execute("SELECT count(*) FROM results").fetchall()[0][0] == total


def test_unknown_dimension_cannot_reach_sql() -> None:
    with pytest.raises(SpecError, match="not a filterable dimension"):
        QuerySpec(filters=(("1=1; --", ("x",)),))


def test_extra_dimensions_filter_through_the_map(demo_db: Path) -> None:
    spec = QuerySpec.from_params({"extra.browser": ["safari"], "range": "all", "colour": "red"})
    assert spec.filters == (("extra.browser", ("safari",)),)
    store = open_store(demo_db)
    with store.cursor() as cur:
        counts = queries.status_counts(cur, spec, datetime(2030, 1, 1))["current"]["results"]
        expected = cur.execute(
            """SELECT count(*) FROM results JOIN series USING (series_id)
               WHERE extra['browser'] = 'safari'"""
        ).fetchall()[0][0]
        options = queries.filter_options(cur)
    assert counts == expected > 0
    assert options["extra.browser"] == ["chrome", "edge", "firefox", "safari"]
    with pytest.raises(SpecError, match="not a filterable dimension"):
        QuerySpec(filters=(("extra.x'] OR 1=1 --", ("y",)),))
