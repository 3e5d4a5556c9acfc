"""Change-point detection for benchmark and test-duration series (pure numpy).

Public contract
---------------

    detect_change_points(values, **params) -> list[int]

``values`` is a sequence of floats in time order. NaN and +/-inf are skipped when judging; the
returned indices refer to the original sequence. The result lists, in increasing order, the indices
where a new segment begins (never 0). Default parameters are fixed (no tuning per series).

    find_change_points(values, **params) -> list[ChangePoint]

the same change points with their evidence: medians before/after, relative change, test statistic
and which test accepted them (for reporting effect sizes in the UI).

    ChangePointTracker(max_tail=400, **params)

the incremental entry point for "one new point arrived". It keeps the values of one series and the
change points settled so far; ``tracker.update(value)`` re-examines only the tail of the series
that starts at the last change point but one (at most ``max_tail`` points) and returns the change
points of the whole series; change points before the tail are settled and not revisited. The cost
of one update therefore does not grow with the history: about 2 ms median (3 ms p95) on a
300-400 point history, measured by ``bench/eval_changepoints.py``. ``tracker.extend(values)`` adds
many points and examines once. Its answers agree with ``detect_change_points`` on the same prefix
up to a point or two of location, or a change reported one update earlier or later.

Method (maths, references, calibration and measured results in ``docs/regression-detection.md``)
-----------------------------------------------------------------------------------------------

1. Finite values only. Strictly positive series (timings, throughputs) are analysed on the log
   scale, so a step is a ratio. Robust cleaning: each value is clipped to within ``clip`` noise
   scales of a running median of ``2 * median_halfwidth + 1`` points (a one-step Huber estimate
   of the local level); the noise scale is 1.4826 * MAD(first differences) / sqrt(2), which level
   shifts barely affect. A lone outlier therefore weighs at most ``clip`` noise scales.
2. Candidates: binary segmentation (Vostrikova 1981) with the CUSUM statistic standardised by the
   noise scale and a deliberately liberal threshold ``candidate_threshold``.
3. Pruning: every candidate is tested with windows that stop at its neighbours; the weakest
   failing candidates are removed until all pass. The noise is AR(1), its variance and lag-1
   correlation estimated from the semivariogram (lags 1..8) of pairs *within* the current
   segments, so the steps themselves do not inflate it; the variance of each contrast is exact
   under that model, so autocorrelated noise does not produce false alarms.
   - level test: difference of window means (at most ``window`` points a side) over its standard
     error, accepted when >= ``threshold``;
   - where both sides trend (Mann-Kendall |z| > ``trend_z`` over 2 * ``window`` points a side)
     a jump test replaces it: the gap between the local linear extrapolations of the two sides
     (block means), accepted when >= ``trend_threshold``. A smooth trend is not cut into steps.
   - a side shorter than ``confirm`` points must clear the threshold times
     sqrt(confirm / its length): a change near the end is reported as soon as it is clear, a
     borderline one waits for more points.
4. Two change points around a segment shorter than ``transient`` points, with no significant
   difference between the levels before and after it, are an excursion, not a change: both go.
5. Effect-size floor: on strictly positive series the medians of the two windows must differ by at
   least ``min_change`` (5 %) of the larger one. Other series are judged scale-free.
6. Each level change is finally placed where a single change between its neighbours fits best
   (within min_size // 2 points).

The thresholds were calibrated on change-free series (Gaussian, Student t, Cauchy, AR(1) 0.5 and
0.8, bimodal, log-normal, quantised, spiky) and on the TCPD benchmark; see the document above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "DEFAULTS",
    "ChangePoint",
    "ChangePointTracker",
    "detect_change_points",
    "find_change_points",
]

DEFAULTS = MappingProxyType(
    {
        "min_size": 5,  # shortest segment, in finite points
        "threshold": 5.0,  # level test: |difference of window means| / standard error
        "trend_threshold": 4.5,  # jump test used where both sides trend
        "min_change": 0.05,  # relative floor on strictly positive series
        "window": 60,  # points a side for the level test (twice that for the trend check)
        "candidate_threshold": 3.0,  # binary segmentation CUSUM threshold (liberal)
        "trend_z": 2.0,  # Kendall tau z-score above which a side counts as trending
        "clip": 3.0,  # Huber clipping, in noise scales
        "median_halfwidth": 5,  # running median of 11 points
        "transient": 15,  # a segment shorter than this that returns to the old level is an excursion
        "confirm": 20,  # a side shorter than this must clear threshold * sqrt(confirm / its length)
    }
)

_MAX_LAG = 8  # semivariogram lags used for the AR(1) noise model
_RHO_MAX = 0.99
_SHORT_SIDE = 20  # points; a shorter side cannot show a trend by itself
_MAD = 1.482602218505602  # 1 / Phi^-1(3/4)


@dataclass(frozen=True)
class ChangePoint:
    """One detected change: ``index`` is where the new segment begins (original indexing)."""

    index: int
    before: float  # median of the window before (original scale)
    after: float  # median of the window after
    relative_change: float  # (after - before) / |before|; nan when before == 0
    statistic: float  # test statistic (in standard errors)
    test: str  # "level" or "jump"


# ---------------------------------------------------------------------------------------------
# Preparation
# ---------------------------------------------------------------------------------------------


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median of x[i-half : i+half+1], windows truncated (not padded) at the ends."""
    n = len(x)
    if n == 0 or half <= 0:
        return x.copy()
    out = np.empty(n)
    width = 2 * half + 1
    if n >= width:
        out[half : n - half] = np.median(sliding_window_view(x, width), axis=1)
    for i in list(range(min(half, n))) + list(range(max(n - half, half), n)):
        out[i] = np.median(x[max(0, i - half) : i + half + 1])
    return out


def _noise_scale(x: np.ndarray) -> float:
    """Robust scale of the noise from first differences (level shifts barely affect it).

    1.4826 * MAD(diff) / sqrt(2); when more than half the differences are equal (quantised or
    piecewise-constant data) the mean absolute deviation of the differences * sqrt(pi / 2) /
    sqrt(2) instead; then the MAD and the standard deviation of the values.
    """
    if len(x) >= 2:
        d = np.diff(x)
        dev = np.abs(d - np.median(d))
        for s in (_MAD * float(np.median(dev)), math.sqrt(math.pi / 2) * float(np.mean(dev))):
            if s > 0:
                return s / math.sqrt(2)
    s = _MAD * float(np.median(np.abs(x - np.median(x))))
    if s > 0:
        return s
    return float(np.std(x))


def _clean(y: np.ndarray, clip: float, half: int) -> np.ndarray | None:
    """Log (if strictly positive), Huber-clip around a running median, scale to unit noise."""
    z = np.log(y) if np.all(y > 0) else y
    s = _noise_scale(z)
    if not s > 0 or not math.isfinite(s):
        return None
    level = _running_median(z, half)
    v = level + np.clip(z - level, -clip * s, clip * s)
    return (v - np.median(v)) / s


# ---------------------------------------------------------------------------------------------
# Candidates: binary segmentation with a liberal CUSUM threshold
# ---------------------------------------------------------------------------------------------


def _binseg(v: np.ndarray, min_size: int, threshold: float) -> list[int]:
    n = len(v)
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        m = b - a
        if m < 2 * min_size:
            continue
        seg = v[a:b]
        cusum = np.cumsum(seg - seg.mean())[:-1]
        k = np.arange(1, m)
        stat = np.abs(cusum) / np.sqrt(k * (m - k) / m)
        stat[: min_size - 1] = -1.0
        stat[m - min_size :] = -1.0
        j = int(np.argmax(stat))
        if stat[j] < threshold:
            continue
        cp = a + j + 1
        found.append(cp)
        stack.append((a, cp))
        stack.append((cp, b))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# AR(1) noise model and exact variances of block contrasts
# ---------------------------------------------------------------------------------------------


def _noise_model(v: np.ndarray, bounds: list[int]) -> tuple[float, float]:
    """(sigma^2, rho) of AR(1) noise from the semivariogram of pairs inside segments.

    gamma(h) = E(x_{t+h} - x_t)^2 / 2 for lags 1..8; sigma^2 is the plateau (mean over the upper
    half of the lags, at least gamma(1)) and rho = 1 - gamma(1) / sigma^2, at least 0, plus the
    small-sample bias (1 + 3 rho) / N of a lag-1 estimate from N pairs, at most 0.99.
    """
    n = len(v)
    seg = np.searchsorted(np.asarray(bounds[1:-1]), np.arange(n), side="right")
    gam = []
    pairs = 0
    for h in range(1, min(_MAX_LAG, n - 1) + 1):
        same = seg[h:] == seg[:-h]
        if same.sum() < 3:
            break
        d = (v[h:] - v[:-h])[same]
        gam.append(float(np.mean(d * d)) / 2)
        pairs = pairs or int(same.sum())
    if not gam:
        return 0.0, 0.0
    s2 = max(float(np.mean(gam[len(gam) // 2 :])), gam[0])
    rho = 1.0 - gam[0] / s2 if s2 > 0 else 0.0
    rho = max(rho, 0.0)
    rho += (1 + 3 * rho) / pairs  # small-sample bias of the lag-1 estimate (Marriott & Pope 1954)
    return s2, min(rho, _RHO_MAX)


def _pair_sum(m: int, rho: float) -> float:
    """sum_{i,j < m} rho^|i-j|."""
    if rho <= 0:
        return float(m)
    return m * (1 + rho) / (1 - rho) - 2 * rho * (1 - rho**m) / (1 - rho) ** 2


def _cross_sum(a1: int, b1: int, a2: int, b2: int, rho: float) -> float:
    """sum_{i in [a1,b1), j in [a2,b2)} rho^(j-i) for b1 <= a2."""
    if rho <= 0:
        return 0.0
    g = 1 - rho
    return rho ** (a2 - b1 + 1) * (1 - rho ** (b1 - a1)) / g * (1 - rho ** (b2 - a2)) / g


def _contrast_var(blocks: list[tuple[int, int, float]], s2: float, rho: float) -> float:
    """Var(sum_b w_b * sum_{t in b} x_t) for AR(1) x; blocks sorted and disjoint."""
    total = 0.0
    for i, (a, b, w) in enumerate(blocks):
        total += w * w * _pair_sum(b - a, rho)
        for a2, b2, w2 in blocks[i + 1 :]:
            total += 2 * w * w2 * _cross_sum(a, b, a2, b2, rho)
    return s2 * total


def _kendall_z(x: np.ndarray) -> float:
    """Mann-Kendall trend statistic (no tie correction) as a z-score."""
    m = len(x)
    if m < 4:
        return 0.0
    s = float(np.sign(x[None, :] - x[:, None])[np.triu_indices(m, 1)].sum())
    return s / math.sqrt(m * (m - 1) * (2 * m + 5) / 18)


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------


class _Scorer:
    """Scores candidates; caches everything that does not depend on the noise model."""

    def __init__(self, y: np.ndarray, v: np.ndarray, p: dict) -> None:
        self.y = y
        self.v = v
        self.cs = np.concatenate([[0.0], np.cumsum(v)])
        self.p = p
        self.positive = bool(np.all(y > 0))
        self.trend_cache: dict[int, bool] = {}
        self.geom_cache: dict[tuple[int, int, int], tuple] = {}

    def _mean(self, a: int, b: int) -> float:
        return (self.cs[b] - self.cs[a]) / (b - a)

    def trending(self, k: int) -> bool:
        """Both sides trend (Mann-Kendall |z| > trend_z); a short side (< 20 points) only needs
        to lean the same way as a trending long side."""
        if k not in self.trend_cache:
            w2 = 2 * int(self.p["window"])
            left, right = self.v[max(0, k - w2) : k], self.v[k : k + w2]
            zl, zr = _kendall_z(left), _kendall_z(right)
            tz = float(self.p["trend_z"])
            if min(len(left), len(right)) >= _SHORT_SIDE:
                trend = abs(zl) > tz and abs(zr) > tz
            else:
                z_long, z_short = (zl, zr) if len(left) > len(right) else (zr, zl)
                trend = abs(z_long) > tz and z_long * z_short > 0
            self.trend_cache[k] = trend
        return self.trend_cache[k]

    def geometry(self, k: int, big_p: int, big_q: int) -> tuple:
        """(test, contrast value, blocks, floor_ok) for candidate k; no noise model needed."""
        key = (k, big_p, big_q)
        hit = self.geom_cache.get(key)
        if hit is not None:
            return hit
        w = int(self.p["window"])
        p, q = min(w, big_p), min(w, big_q)
        before = float(np.median(self.y[k - p : k]))
        after = float(np.median(self.y[k : k + q]))
        floor_ok = True
        if self.positive:
            floor_ok = abs(after - before) >= float(self.p["min_change"]) * max(before, after)
        if big_p >= 4 and big_q >= 4 and self.trending(k):
            # jump between the local linear extrapolations of both sides (block means)
            p2, q2 = big_p // 2, big_q // 2
            a1, b1, a2, b2 = k - big_p, k - p2, k - p2, k
            a3, b3, a4, b4 = k, k + q2, k + q2, k + big_q
            c1, c2 = (a1 + b1 - 1) / 2, (a2 + b2 - 1) / 2
            c3, c4 = (a3 + b3 - 1) / 2, (a4 + b4 - 1) / 2
            t0 = k - 0.5
            lam_l = (t0 - c2) / (c2 - c1)
            lam_r = (t0 - c3) / (c4 - c3)
            m1, m2, m3, m4 = (self._mean(a, b) for a, b in ((a1, b1), (a2, b2), (a3, b3), (a4, b4)))
            value = (m3 + lam_r * (m4 - m3)) - (m2 + lam_l * (m2 - m1))
            blocks = [
                (a1, b1, lam_l / (b1 - a1)),
                (a2, b2, -(1 + lam_l) / (b2 - a2)),
                (a3, b3, (1 - lam_r) / (b3 - a3)),
                (a4, b4, lam_r / (b4 - a4)),
            ]
            hit = ("jump", value, blocks, floor_ok)
        else:
            value = self._mean(k, k + q) - self._mean(k - p, k)
            blocks = [(k - p, k, -1.0 / p), (k, k + q, 1.0 / q)]
            hit = ("level", value, blocks, floor_ok)
        self.geom_cache[key] = hit
        return hit

    def score(
        self, k: int, big_p: int, big_q: int, s2: float, rho: float
    ) -> tuple[float, float, str]:
        test, value, blocks, floor_ok = self.geometry(k, big_p, big_q)
        var = _contrast_var(blocks, s2, rho)
        stat = abs(value) / math.sqrt(max(var, 1e-300))
        limit = float(self.p["trend_threshold"] if test == "jump" else self.p["threshold"])
        shorter = min(big_p, big_q)
        confirm = float(self.p["confirm"])
        if shorter < confirm:
            limit *= math.sqrt(confirm / shorter)
        return (stat / limit if floor_ok else 0.0), stat, test


def _segment(y: np.ndarray, p: dict) -> list[tuple[int, float, str]]:
    """Change points of a finite series: (index into y, statistic, test)."""
    n = len(y)
    min_size = max(2, int(p["min_size"]))
    if n < 2 * min_size or float(np.ptp(y)) == 0.0:
        return []
    v = _clean(y, float(p["clip"]), int(p["median_halfwidth"]))
    if v is None:
        return []
    cands = _binseg(v, min_size, float(p["candidate_threshold"]))
    if not cands:
        return []
    scorer = _Scorer(y, v, p)
    # a noise-free series (all segments constant) still has a scale: 1e-6 of the cleaned spread
    s2_floor = 1e-12 * max(float(np.var(v)), 1e-300)
    w2 = 2 * int(p["window"])
    while True:
        found = _prune(cands, scorer, n, w2, s2_floor)
        kept = _drop_transients(found, scorer, n, w2, s2_floor, int(p["transient"]))
        if len(kept) == len(found):
            return _refine(found, v, n, min_size)
        cands = [k for k, _, _ in kept]


def _refine(
    found: list[tuple[int, float, str]], v: np.ndarray, n: int, min_size: int
) -> list[tuple[int, float, str]]:
    """Put each change point where a single change between its neighbours fits best.

    Within (previous, next) the standardised CUSUM of the cleaned values is maximised over the
    points at most min_size // 2 away from the current estimate (binary segmentation places a
    change while other changes are still unmodelled, which can shift it by a point or two).
    """
    cps = [k for k, _, _ in found]
    reach = max(1, min_size // 2)
    for j, k in enumerate(cps):
        if found[j][2] != "level":
            continue  # next to a trend the best level split is not the jump
        a = cps[j - 1] if j else 0
        b = cps[j + 1] if j + 1 < len(cps) else n
        seg = v[a:b]
        m = b - a
        cusum = np.cumsum(seg - seg.mean())
        lo = max(min_size, k - a - reach)
        hi = min(m - min_size, k - a + reach)
        if hi < lo:
            continue
        t = np.arange(lo, hi + 1)
        stat = np.abs(cusum[t - 1]) / np.sqrt(t * (m - t) / m)
        cps[j] = a + lo + int(np.argmax(stat))
    return [(c, stat, test) for c, (_, stat, test) in zip(cps, found, strict=True)]


def _prune(
    cands: list[int], scorer: _Scorer, n: int, w2: int, s2_floor: float
) -> list[tuple[int, float, str]]:
    """Remove failing candidates, weakest first, until every remaining one passes its test."""
    while cands:
        bounds = [0, *cands, n]
        s2, rho = _noise_model(scorer.v, bounds)
        s2 = max(s2, s2_floor)
        results = []
        for j, k in enumerate(cands):
            big_p = min(w2, k - bounds[j])
            big_q = min(w2, bounds[j + 2] - k)
            results.append(scorer.score(k, big_p, big_q, s2, rho))
        failing = sorted((r[0], j) for j, r in enumerate(results) if r[0] < 1.0)
        if not failing:
            return [(k, r[1], r[2]) for k, r in zip(cands, results, strict=True)]
        # remove the weakest failing candidates that are not next to one another
        drop: set[int] = set()
        for _, j in failing:
            if j - 1 not in drop and j + 1 not in drop:
                drop.add(j)
        cands = [k for j, k in enumerate(cands) if j not in drop]
    return []


def _drop_transients(
    found: list[tuple[int, float, str]],
    scorer: _Scorer,
    n: int,
    w2: int,
    s2_floor: float,
    transient: int,
) -> list[tuple[int, float, str]]:
    """Drop pairs of change points around a short excursion that returns to the same level."""
    if len(found) < 2 or transient <= 0:
        return found
    cps = [k for k, _, _ in found]
    bounds = [0, *cps, n]
    s2, rho = _noise_model(scorer.v, bounds)
    s2 = max(s2, s2_floor)
    w = int(scorer.p["window"])
    drop: set[int] = set()
    for j in range(len(cps) - 1):
        a, b = cps[j], cps[j + 1]
        if b - a >= transient or j in drop:
            continue
        lo, hi = max(bounds[j], a - w), min(bounds[j + 3], b + w)
        value = scorer._mean(b, hi) - scorer._mean(lo, a)
        var = _contrast_var([(lo, a, -1.0 / (a - lo)), (b, hi, 1.0 / (hi - b))], s2, rho)
        stat = abs(value) / math.sqrt(max(var, 1e-300))
        if stat < float(scorer.p["threshold"]):
            drop.update((j, j + 1))
    return [f for j, f in enumerate(found) if j not in drop]


def _params(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return {**DEFAULTS, **overrides}


def _finite(values: Sequence[float] | Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(list(values) if not hasattr(values, "__len__") else values, dtype=float)
    data = data.reshape(-1)
    index = np.flatnonzero(np.isfinite(data))
    return index, data[index]


def find_change_points(values: Sequence[float], **params: float) -> list[ChangePoint]:
    """Change points with their evidence (see the module docstring for the parameters)."""
    p = _params(params)
    index, y = _finite(values)
    found = _segment(y, p)
    w = int(p["window"])
    out: list[ChangePoint] = []
    bounds = [0, *(k for k, _, _ in found), len(y)]
    for j, (k, stat, test) in enumerate(found):
        before = float(np.median(y[max(bounds[j], k - w) : k]))
        after = float(np.median(y[k : min(bounds[j + 2], k + w)]))
        rel = (after - before) / abs(before) if before != 0 else float("nan")
        out.append(ChangePoint(int(index[k]), before, after, rel, float(stat), test))
    return out


def detect_change_points(values: Sequence[float], **params: float) -> list[int]:
    """Indices where a new segment begins (see the module docstring)."""
    p = _params(params)
    index, y = _finite(values)
    return [int(index[k]) for k, _, _ in _segment(y, p)]


class ChangePointTracker:
    """Incremental detection for one series: call ``update(value)`` as each point arrives.

    The tracker re-runs the detector only on a tail of the series, so its cost does not grow with
    the history. The tail starts at the last change point but one (that point and everything
    before it are settled); when that would make the tail longer than ``max_tail`` points it
    starts ``max_tail`` points back instead, and change points in its first ``2 * window`` points
    (which no longer have their left-hand context) are kept as they were found. On a growing
    series it agrees with ``detect_change_points`` on the whole series up to a point or two of
    location (checked in tests/test_regression_detector.py).
    """

    def __init__(self, max_tail: int = 400, **params: float) -> None:
        self.params = _params(params)
        self.guard = 2 * int(self.params["window"])
        self.max_tail = max(int(max_tail), 2 * self.guard)
        self.values: list[float] = []
        self._frozen: list[int] = []  # settled change points (original indices)
        self._recent: list[int] = []  # change points found in the current tail
        self._tail_start = 0
        self._anchored = True  # the tail starts at a change point (or at 0)

    @property
    def change_points(self) -> list[int]:
        return self._frozen + self._recent

    def update(self, value: float) -> list[int]:
        """Add one point and return the change points of the whole series."""
        self.values.append(float(value))
        return self._examine()

    def extend(self, values: Iterable[float]) -> list[int]:
        """Add many points, then examine once."""
        self.values.extend(float(v) for v in values)
        return self._examine()

    def _examine(self) -> list[int]:
        n = len(self.values)
        start, anchored = self._tail_start, self._anchored
        if n - start > self.max_tail:
            start, anchored = n - self.max_tail, False
        found = [start + c for c in detect_change_points(self.values[start:], **self.params)]
        if not anchored:
            # the first `guard` points of a slid tail lack left context: keep what was known
            settled = start + self.guard
            self._frozen += [c for c in self._recent if c < settled]
            found = [c for c in found if c >= settled and c > (self._frozen or [-1])[-1]]
        if len(found) >= 2:
            anchor = found[-2]
            self._frozen += [c for c in found if c <= anchor]
            self._recent = [c for c in found if c > anchor]
            self._tail_start, self._anchored = anchor, True
        else:
            self._recent = found
            self._tail_start, self._anchored = start, anchored
        return self.change_points
