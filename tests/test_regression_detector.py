"""lib.regression: the change-point detector's contract, robustness and incremental path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib.regression import (
    DEFAULTS,
    ChangePointTracker,
    detect_change_points,
    find_change_points,
)


def noise(seed: int, n: int, cv: float = 0.02, level: float = 100.0) -> np.ndarray:
    return level * (1 + cv * np.random.default_rng(seed).standard_normal(n))


def ar1(seed: int, n: int, phi: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n + 200)
    x = np.zeros(n + 200)
    for i in range(1, n + 200):
        x[i] = phi * x[i - 1] + e[i]
    return x[200:]


def assert_contract(result: list[int], values) -> None:
    data = np.asarray(values, dtype=float)
    assert result == sorted(set(result))
    assert all(isinstance(c, int) for c in result)
    assert all(0 < c < len(data) for c in result)
    assert all(np.isfinite(data[c]) for c in result)


# --- degenerate input -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 9, 10, 11, 25, 500])
def test_constant_series_has_no_change(n):
    values = [42.0] * n
    assert detect_change_points(values) == []
    assert find_change_points(values) == []


@pytest.mark.parametrize("n", range(0, 16))
def test_very_short_series(n):
    values = noise(n, n, cv=0.3).tolist()
    result = detect_change_points(values)
    assert_contract(result, values)
    if n < 2 * DEFAULTS["min_size"]:
        assert result == []


def test_very_short_series_with_a_huge_step_is_found_once_both_sides_have_min_size():
    assert detect_change_points([1.0] * 5 + [2.0] * 4) == []
    assert detect_change_points([1.0] * 5 + [2.0] * 5) == [5]
    assert detect_change_points([1.0] * 6 + [2.0] * 6) == [6]


@pytest.mark.parametrize(
    "values",
    [
        [math.nan] * 50,
        [math.inf] * 30,
        [-math.inf, math.inf] * 20,
        [math.nan, math.inf, -math.inf] * 10,
        [1.0, math.nan, 2.0],
        [1.0, None, 2.0, None],
    ],
)
def test_non_finite_input_is_ignored_without_error(values):
    assert detect_change_points(values) == []
    tracker = ChangePointTracker()
    for v in values:
        assert tracker.update(math.nan if v is None else v) == []


def test_generators_and_integer_input_are_accepted():
    assert detect_change_points(iter([1] * 30 + [3] * 30)) == [30]
    assert detect_change_points(np.array([5] * 40, dtype=np.int64)) == []


def test_unknown_parameter_is_rejected():
    with pytest.raises(TypeError):
        detect_change_points([1.0] * 20, threshhold=3)


# --- no change: outliers, heavy tails, autocorrelation, bimodality, trends --------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("where", [0, 1, 60, 118, 119])
@pytest.mark.parametrize("factor", [10.0, 0.1])
def test_a_single_outlier_is_never_a_change(seed, where, factor):
    values = noise(seed, 120)
    values[where] *= factor
    assert detect_change_points(values) == []


@pytest.mark.parametrize("seed", range(5))
def test_a_burst_of_three_outliers_is_not_a_change(seed):
    values = noise(seed, 150)
    values[70:73] *= 3.0
    assert detect_change_points(values) == []


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dist", ["t2", "cauchy", "lognormal"])
def test_heavy_tailed_noise_without_change(seed, dist):
    rng = np.random.default_rng(100 + seed)
    n = 300
    if dist == "t2":
        values = 50 + rng.standard_t(2, size=n)
    elif dist == "cauchy":
        values = 50 + rng.standard_cauchy(size=n)
    else:
        values = np.exp(rng.normal(size=n))
    assert detect_change_points(values) == []


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("phi", [0.5, 0.8])
def test_autocorrelated_noise_without_change(seed, phi):
    values = 20 + ar1(200 + seed, 300, phi)
    assert detect_change_points(values) == []


@pytest.mark.parametrize("seed", range(6))
def test_bimodal_noise_without_change(seed):
    rng = np.random.default_rng(300 + seed)
    n = 300
    values = 10 + 0.3 * rng.normal(size=n) + 3.0 * (rng.random(n) < 0.3)
    assert detect_change_points(values) == []


@pytest.mark.parametrize("seed", range(4))
def test_a_smooth_trend_is_not_cut_into_steps(seed):
    t = np.arange(400)
    values = 100 + 0.5 * t + np.random.default_rng(400 + seed).normal(0, 2, size=400)
    assert detect_change_points(values) == []
    assert detect_change_points(1000 + 2.0 * t) == []  # noise-free


# --- changes are found where they are ------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("factor", [1.10, 0.90])
def test_clean_step_is_found_at_the_right_index(seed, factor):
    values = noise(seed, 200)
    values[100:] *= factor
    result = detect_change_points(values)
    assert len(result) == 1
    assert abs(result[0] - 100) <= 2


@pytest.mark.parametrize("seed", range(4))
def test_several_steps(seed):
    values = noise(500 + seed, 300, cv=0.02)
    values[80:] *= 1.15
    values[160:] *= 0.8
    values[240:] *= 1.3
    result = detect_change_points(values)
    assert len(result) == 3
    assert all(abs(r - t) <= 2 for r, t in zip(result, (80, 160, 240), strict=True))


def test_step_on_a_trend_is_found():
    t = np.arange(300, dtype=float)
    values = 100 + 0.2 * t + np.random.default_rng(7).normal(0, 1, size=300)
    values[150:] += 25
    result = detect_change_points(values)
    assert len(result) == 1 and abs(result[0] - 150) <= 3


def test_recent_step_is_found_before_many_points_arrive():
    values = noise(11, 110)
    values[100:] *= 1.25
    assert detect_change_points(values) == [100]


@pytest.mark.parametrize("seed", range(5))
def test_a_small_step_that_is_statistically_clear_is_found(seed):
    # 2 % step in 0.5 % noise: 4 noise sigmas. Detection has no relative floor (the alert
    # policy decides whether 2 % matters), so it is found, on positive and centred series alike.
    values = noise(12 + seed, 200, cv=0.005)
    values[100:] *= 1.02
    assert len(detect_change_points(values)) == 1
    assert abs(detect_change_points(values)[0] - 100) <= 2
    centred = values - np.median(values[:100])
    assert abs(detect_change_points(centred)[0] - 100) <= 2
    cp = find_change_points(values)[0]
    assert cp.relative_change == pytest.approx(0.02, abs=0.004)


def test_min_change_is_no_longer_a_detector_parameter():
    with pytest.raises(TypeError):
        detect_change_points(noise(1, 50), min_change=0.05)


def test_indices_refer_to_the_original_sequence_when_nans_are_present():
    clean = noise(13, 200)
    clean[100:] *= 1.2
    values = clean.copy()
    values[[3, 50, 99, 150]] = math.nan
    values[[10, 160]] = math.inf
    assert detect_change_points(values) == [100]
    # a NaN exactly where the new level begins: the change is reported at the next finite point
    values[100] = math.nan
    values[101] = -math.inf
    assert detect_change_points(values) == [102]
    # NaNs everywhere before the change do not shift it
    padded = np.concatenate([[math.nan] * 37, clean])
    assert detect_change_points(padded) == [137]


def test_find_change_points_reports_the_effect():
    values = noise(14, 200)
    values[120:] *= 1.2
    (cp,) = find_change_points(values)
    assert cp.index == 120
    assert cp.before == pytest.approx(100, rel=0.02)
    assert cp.after == pytest.approx(120, rel=0.02)
    assert cp.relative_change == pytest.approx(0.2, abs=0.03)
    assert cp.statistic >= DEFAULTS["threshold"]
    assert cp.test == "level"


def test_result_does_not_depend_on_scale_or_offset_of_non_positive_series():
    rng = np.random.default_rng(15)
    base = rng.normal(size=240)
    base[120:] += 2.0
    expected = detect_change_points(base)
    assert expected and abs(expected[0] - 120) <= 2
    assert detect_change_points(base * 1e6 - 3e6) == expected
    assert detect_change_points(base * 1e-6 - 1.0) == expected


# --- incremental path ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_tracker_agrees_with_batch_on_a_growing_series(seed):
    values = noise(600 + seed, 300)
    values[100:] *= 1.1
    values[200:] *= 0.9
    tracker = ChangePointTracker()
    disagreements = 0
    for i, v in enumerate(values):
        incremental = tracker.update(v)
        batch = detect_change_points(values[: i + 1])
        if incremental == batch:
            continue
        disagreements += 1
        # tolerated: the same changes a point or two apart, or a change so recent (fewer than
        # 2 * confirm points after it) that one path reports it a point or two before the other
        settled_a = [c for c in incremental if c <= i - 2 * DEFAULTS["confirm"]]
        settled_b = [c for c in batch if c <= i - 2 * DEFAULTS["confirm"]]
        assert len(settled_a) == len(settled_b)
        assert all(abs(a - b) <= 2 for a, b in zip(settled_a, settled_b, strict=True))
    assert disagreements <= 6
    assert tracker.change_points == detect_change_points(values) == [100, 200]


def test_tracker_extend_equals_updates_and_keeps_original_indices():
    values = noise(700, 260)
    values[130:] *= 1.3
    values[[5, 131, 200]] = math.nan
    one = ChangePointTracker()
    for v in values:
        one.update(v)
    many = ChangePointTracker()
    many.extend(values[:100])
    many.extend(values[100:])
    assert one.change_points == many.change_points == detect_change_points(values) == [130]


def test_tracker_tail_is_bounded_and_old_changes_are_kept():
    rng = np.random.default_rng(800)
    values = 100 * (1 + 0.02 * rng.standard_normal(1500))
    for at in (300, 700, 1100):
        values[at:] *= 1.2
    tracker = ChangePointTracker(max_tail=400)
    for v in values:
        tracker.update(v)
        assert len(tracker.values) - tracker._tail_start <= 400
    assert tracker.change_points == detect_change_points(values) == [300, 700, 1100]


@pytest.mark.parametrize("seed", range(5))
def test_step_is_found_in_heavy_tailed_noise(seed):
    rng = np.random.default_rng(900 + seed)
    values = 100 * (1 + 0.02 * rng.standard_cauchy(240))
    values = np.clip(values, 1, None)  # keep the series positive
    values[120:] *= 1.2
    result = detect_change_points(values)
    assert len(result) == 1 and abs(result[0] - 120) <= 2


@pytest.mark.parametrize("seed", range(5))
def test_a_short_excursion_that_returns_is_not_a_change(seed):
    values = noise(950 + seed, 200)
    values[90:100] *= 1.3  # ten points up, then back to the old level
    assert detect_change_points(values) == []
    values[100:] *= 1.3  # ... but if it stays, it is a change
    assert detect_change_points(values) == [90]
