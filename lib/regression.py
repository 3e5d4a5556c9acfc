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
   quarter of the failing candidates is removed, the rest re-tested, until all pass. The noise
   is AR(1), its variance and lag-1 correlation estimated from the semivariogram (lags 1..8) of
   pairs *within* the current segments, so the steps themselves do not inflate it; the variance
   of each contrast is exact under that model, so autocorrelated noise does not produce false
   alarms.
   - level test: difference of window means (at most ``window`` points a side) over its standard
     error, accepted when >= ``threshold``;
   - where both sides trend (blocked Mann-Kendall |z| > ``trend_z`` over 2 * ``window`` points a
     side, blocks split at the other candidates, so a neighbouring step is not a trend) a jump
     test replaces it: the gap between the local linear extrapolations of the two sides (block
     means), accepted when >= ``trend_threshold``. A smooth trend is not cut into steps.
   - a side shorter than ``confirm`` points must clear the threshold times
     sqrt(confirm / its length): a change near the end is reported as soon as it is clear, a
     borderline one waits for more points.
4. Two change points around a segment shorter than ``transient`` points, with no significant
   difference between the levels before and after it, are a burst, not a change: both go.
5. Each level change is finally placed where one change between its neighbours fits best under
   the AR(1) noise (generalised least squares, at most ``reach`` points away).

There is no floor on the size of a change: detection decides whether a change is real, and the
alert policy (``lib.policy``) decides whether it matters. A 2 % step that is 4 noise sigmas clear
is found.

The thresholds were chosen on synthetic performance series with known steps (bench/eval_regressions.py:
Gaussian, heavy-tailed, AR(1), spiky and bimodal noise) and on the TCPD benchmark; see the
document above.
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
        "threshold": 4.0,  # level test: |difference of window means| / standard error
        "trend_threshold": 4.0,  # jump test used where both sides trend
        "window": 90,  # points a side for the level test (twice that for the trend check)
        "candidate_threshold": 3.0,  # binary segmentation CUSUM threshold (liberal)
        "trend_z": 2.5,  # blocked Mann-Kendall z above which a side counts as trending
        "clip": 2.5,  # Huber clipping, in noise scales
        "median_halfwidth": 5,  # running median of 11 points
        "transient": 12,  # a segment shorter than this that returns to the old level is a burst
        "confirm": 20,  # a side shorter than this must clear threshold * sqrt(confirm / its length)
        "reach": 10,  # how far (points) the final placement may move a level change
    }
)

_MAX_LAG = 8  # semivariogram lags used for the AR(1) noise model
_RHO_MAX = 0.99
_RHO_FIT = 0.85  # the AR(1) correction of the plateau goes no further (see _noise_model)
_SHORT_SIDE = 20  # points; a shorter side cannot show a trend by itself
_LEAN = 0.5  # ... but it contradicts a trending long side when it leans the other way this clearly
_BURST_KEEP = (
    1.25  # a pair around a short burst stays when the levels either side differ by this x threshold
)
_DROP_SHARE = 0.25  # share of the failing candidates removed per pruning round (weakest first)
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

    gamma(h) = E(x_{t+h} - x_t)^2 / 2 for lags 1..8. Under AR(1), gamma(h) = sigma^2 (1 - rho^h):
    the mean of the upper half of the lags is sigma^2 (1 - mean rho^h) and gamma(1) is
    sigma^2 (1 - rho); both are solved for by fixed-point iteration from the plateau estimate
    (rho = 0 at first). With strong dependence eight lags do not reach the plateau, and taking
    their mean as sigma^2 underestimated the variance of AR(1) 0.8 noise by a quarter (false
    alarms). The correction stops at rho = 0.85 (``_RHO_FIT``): beyond it a within-segment
    trend or season looks the same as dependence and would silence every test. Then the
    small-sample bias (1 + 3 rho) / N of a lag-1 estimate from N pairs and half its standard
    error sqrt((1 - rho^2) / N) are added (short histories otherwise gave streaming false
    alarms under AR(1) noise), at most 0.99.
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
    plateau = float(np.mean(gam[len(gam) // 2 :]))
    s2 = max(plateau, gam[0])
    rho = max(1.0 - gam[0] / s2, 0.0) if s2 > 0 else 0.0
    if gam[0] > 0 and rho < _RHO_FIT:
        upper = np.arange(len(gam) // 2 + 1, len(gam) + 1)
        for _ in range(5):
            fitted = plateau / max(1.0 - float(np.mean(rho**upper)), 1e-3)
            rho = min(max(1.0 - gam[0] / max(fitted, gam[0]), rho), _RHO_FIT)
        s2 = gam[0] / (1.0 - rho)
    rho += (1 + 3 * rho) / pairs  # small-sample bias of the lag-1 estimate (Marriott & Pope 1954)
    rho += 0.5 * math.sqrt(max(1 - rho * rho, 0.0) / pairs)  # and half its standard error
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


def _kendall_s(x: np.ndarray) -> tuple[float, float]:
    """Mann-Kendall S = sum_{i<j} sign(x_j - x_i) and its variance (no tie correction)."""
    m = len(x)
    if m < 3:
        return 0.0, 0.0
    s = float(np.sign(x[None, :] - x[:, None])[np.triu_indices(m, 1)].sum())
    return s, m * (m - 1) * (2 * m + 5) / 18


def _blocked_kendall_z(x: np.ndarray, cuts: Sequence[int]) -> float:
    """Mann-Kendall z over x with blocks split at ``cuts`` (Hirsch, Slack & Smith 1982): S and
    its variance are summed over blocks, so a level shift at another candidate is not a trend
    while a trend running through every block still is."""
    edges = [0, *cuts, len(x)]
    total = var = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        s, v = _kendall_s(x[a:b])
        total, var = total + s, var + v
    return total / math.sqrt(var) if var > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------


class _Scorer:
    """Scores candidates; caches everything that does not depend on the noise model."""

    def __init__(self, v: np.ndarray, p: dict) -> None:
        self.v = v
        self.cs = np.concatenate([[0.0], np.cumsum(v)])
        self.p = p
        self.trend_cache: dict[tuple, bool] = {}
        self.geom_cache: dict[tuple, tuple] = {}

    def _mean(self, a: int, b: int) -> float:
        return (self.cs[b] - self.cs[a]) / (b - a)

    def trending(self, k: int, cuts: tuple[int, ...]) -> bool:
        """Both sides trend (blocked Mann-Kendall |z| > trend_z over 2 * window points, blocks
        split at the other candidates); a short side
        (< 20 points) cannot show a trend by itself, so it only must not lean clearly against a
        trending long side."""
        key = (k, cuts)
        if key not in self.trend_cache:
            w2 = 2 * int(self.p["window"])
            a, b = max(0, k - w2), min(len(self.v), k + w2)
            zl = _blocked_kendall_z(self.v[a:k], [c - a for c in cuts if c < k])
            zr = _blocked_kendall_z(self.v[k:b], [c - k for c in cuts if c > k])
            self.trend_cache[key] = (zl, zr, min(k - a, b - k) >= _SHORT_SIDE, k - a > b - k)
        zl, zr, both_long, left_longer = self.trend_cache[key]
        tz = float(self.p["trend_z"])
        if both_long:
            return abs(zl) > tz and abs(zr) > tz
        z_long, z_short = (zl, zr) if left_longer else (zr, zl)
        against = z_long * z_short < 0 and abs(z_short) > _LEAN
        return abs(z_long) > tz and not against

    def geometry(self, k: int, big_p: int, big_q: int, jump: bool) -> tuple:
        """(test, contrast value, blocks) for candidate k; no noise model needed."""
        key = (k, big_p, big_q, jump)
        hit = self.geom_cache.get(key)
        if hit is not None:
            return hit
        w = int(self.p["window"])
        p, q = min(w, big_p), min(w, big_q)
        if jump:
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
            hit = ("jump", value, blocks)
        else:
            value = self._mean(k, k + q) - self._mean(k - p, k)
            blocks = [(k - p, k, -1.0 / p), (k, k + q, 1.0 / q)]
            hit = ("level", value, blocks)
        self.geom_cache[key] = hit
        return hit

    def score(
        self, k: int, big_p: int, big_q: int, cuts: tuple[int, ...], s2: float, rho: float
    ) -> tuple[float, float, str]:
        """(statistic / its limit, statistic, test): the candidate passes at >= 1."""
        jump = big_p >= 4 and big_q >= 4 and self.trending(k, cuts)
        test, value, blocks = self.geometry(k, big_p, big_q, jump)
        var = _contrast_var(blocks, s2, rho)
        stat = abs(value) / math.sqrt(max(var, 1e-300))
        limit = float(self.p["trend_threshold"] if test == "jump" else self.p["threshold"])
        shorter = min(big_p, big_q)
        confirm = float(self.p["confirm"])
        if shorter < confirm:
            limit *= math.sqrt(confirm / shorter)
        return stat / limit, stat, test


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
    scorer = _Scorer(v, p)
    # a noise-free series (all segments constant) still has a scale: 1e-6 of the cleaned spread
    s2_floor = 1e-12 * max(float(np.var(v)), 1e-300)
    w2 = 2 * int(p["window"])
    while True:
        found = _place(_prune(cands, scorer, n, w2, s2_floor), v, n, min_size, int(p["reach"]))
        kept = _drop_transients(found, scorer, n, w2, s2_floor, int(p["transient"]))
        if len(kept) == len(found):
            return found
        cands = [k for k, _, _ in kept]


def _split_sse(z: np.ndarray, rho: float, lo: int, hi: int) -> np.ndarray:
    """Residual sum of squares of "one mean before t, another from t on" under AR(1) errors,
    for every split t in [lo, hi] (generalised least squares, Prais-Winsten transform).

    After the transform the two regressors are sparse, so X'X and X'z come from prefix sums:
    with u = 1 - rho and c = sqrt(1 - rho^2), A = (c, u, ..., u, -rho, 0, ...) (the before
    column, -rho at t) and B = (0, ..., 0, 1, u, ..., u) (the after column, 1 at t).
    """
    m = len(z)
    c = math.sqrt(max(1.0 - rho * rho, 1e-12))
    u = 1.0 - rho
    w = np.empty(m)
    w[0] = c * z[0]
    w[1:] = z[1:] - rho * z[:-1]
    prefix = np.concatenate([[0.0], np.cumsum(w)])
    t = np.arange(lo, hi + 1)
    aa = c * c + (t - 1) * u * u + rho * rho
    bb = 1.0 + (m - 1 - t) * u * u
    ab = -rho
    az = c * w[0] + u * (prefix[t] - prefix[1]) - rho * w[t]
    bz = w[t] + u * (prefix[m] - prefix[t + 1])
    det = aa * bb - ab * ab
    fit = (bb * az * az - 2 * ab * az * bz + aa * bz * bz) / det
    return float(w @ w) - fit


def _place(
    found: list[tuple[int, float, str]], v: np.ndarray, n: int, min_size: int, reach: int
) -> list[tuple[int, float, str]]:
    """Put each level change where a single change between its neighbours fits best.

    Binary segmentation places a change while other changes are still unmodelled, and under
    autocorrelated noise the CUSUM maximum wanders; the split that minimises the generalised
    least-squares error under the fitted AR(1) noise, at most ``reach`` points away, is the
    maximum-likelihood placement (Gaussian errors). Jumps next to a trend keep their place.
    """
    cps = [k for k, _, _ in found]
    _, rho = _noise_model(v, [0, *cps, n])
    rho = min(max(rho, 0.0), _RHO_MAX)
    for j, k in enumerate(cps):
        if found[j][2] != "level":
            continue
        a = cps[j - 1] if j else 0
        b = cps[j + 1] if j + 1 < len(cps) else n
        lo = max(min_size, k - a - reach)
        hi = min(b - a - min_size, k - a + reach)
        if hi < lo:
            continue
        cps[j] = a + lo + int(np.argmin(_split_sse(v[a:b], rho, lo, hi)))
    return [(c, stat, test) for c, (_, stat, test) in zip(cps, found, strict=True)]


def _prune(
    cands: list[int], scorer: _Scorer, n: int, w2: int, s2_floor: float
) -> list[tuple[int, float, str]]:
    """Remove failing candidates, weakest first, until every remaining one passes its test.

    Only the weakest quarter of the failing ones (never two neighbours) goes per round: a real
    change surrounded by spurious candidates fails at first (its windows are short) and passes
    once they are gone, so it must not be removed together with them.
    """
    while cands:
        bounds = [0, *cands, n]
        s2, rho = _noise_model(scorer.v, bounds)
        s2 = max(s2, s2_floor)
        results = []
        for j, k in enumerate(cands):
            big_p = min(w2, k - bounds[j])
            big_q = min(w2, bounds[j + 2] - k)
            cuts = tuple(c for c in cands if c != k and abs(c - k) < w2)
            results.append(scorer.score(k, big_p, big_q, cuts, s2, rho))
        failing = sorted((r[0], j) for j, r in enumerate(results) if r[0] < 1.0)
        if not failing:
            return [(k, r[1], r[2]) for k, r in zip(cands, results, strict=True)]
        drop: set[int] = set()
        for _, j in failing[: max(1, math.ceil(_DROP_SHARE * len(failing)))]:
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
        if stat < _BURST_KEEP * float(scorer.p["threshold"]):
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
