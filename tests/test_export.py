"""Downloads: the CSV holds exactly the plotted rows; the PNG is a real image in either theme."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta

import pandas as pd

from lib import charts
from lib.export import PNG_WIDTH, chart_png, csv_bytes


def _frame() -> pd.DataFrame:
    start = datetime(2026, 11, 1)
    return pd.DataFrame(
        {
            "bucket": [start + timedelta(hours=i) for i in range(5)],
            "pass_rate": [0.9, 0.95, 1.0, 0.85, 0.92],
            "passed": [9, 19, 10, 17, 23],
            "failed": [1, 1, 0, 3, 2],
            "error": [0, 0, 0, 0, 0],
            "skipped": [2, 0, 1, 0, 0],
        }
    )


def test_csv_round_trips_with_iso_timestamps() -> None:
    frame = _frame()
    text = csv_bytes(frame).decode("utf-8")
    assert text.splitlines()[1].startswith("2026-11-01T00:00:00,0.9,9,1,0,2")
    back = pd.read_csv(io.StringIO(text), parse_dates=["bucket"])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_chart_carries_exactly_the_exported_rows() -> None:
    frame = _frame()
    spec = charts.pass_rate(frame, 3600).to_dict()
    [rows] = spec["datasets"].values()
    assert len(rows) == len(frame)
    assert [r["pass_rate"] for r in rows] == list(frame["pass_rate"])
    assert charts.time_axis_title(3600) == "Time (UTC, 1-hour buckets)"
    assert charts.time_axis_title(6 * 3600) == "Time (UTC, 6-hour buckets)"


def test_png_is_a_real_image_and_dark_differs_from_light() -> None:
    chart = charts.pass_rate(_frame(), 3600)
    light, dark = chart_png(chart), chart_png(chart, dark=True)
    for png in (light, dark):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width >= PNG_WIDTH * 2 and height > 200  # scale 2
    assert light != dark
