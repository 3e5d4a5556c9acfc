"""Synthetic performance series with known steps, and the scores of a detector on them.

The kinds of noise performance engineers see (issue 14): Gaussian, heavy-tailed (Student t,
3 degrees of freedom), autocorrelated (AR(1), phi 0.5), spiky (rare large one-sided outliers on
Gaussian noise: a GC pause, a noisy neighbour) and bimodal (two machine states, 70/30). Every
series has a positive level, a coefficient of variation between 0.5 % and 4 %, 60 to 400 points
and 0 to 3 steps of 1.5 to 10 noise sigmas, at least 15 points from each other and from the ends.

"Noise sigma" can be read two ways, and a detector should meet its targets under both:

- ``reading="unit"``: sigma is the standard deviation of the whole noise (for spiky noise that
  of its Gaussian part, the spikes come on top);
- ``reading="literal"``: sigma is the parameter a plain generator passes (the t scale, the AR(1)
  innovation, the within-mode sigma of the bimodal mixture, whose modes are 4 sigma apart).
  Every kind except Gaussian and spiky is harder this way.

CV, step sizes and lengths are uniform over the ranges above, step signs random.

    from bench.synthetic_series import make_corpus, score
    corpus = make_corpus(seed=7, per_kind=400)
    report = score(corpus, detect_change_points)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

KINDS = ("gaussian", "heavy_tailed", "ar1", "spiky", "bimodal")
READINGS = ("unit", "literal")
MARGIN = 5
MIN_GAP = 15
BIG = 3.0  # steps of at least this many sigmas have their own recall target


@dataclass(frozen=True)
class Series:
    kind: str
    values: np.ndarray
    steps: tuple[int, ...]  # index where each new level starts
    sizes: tuple[float, ...]  # |step| in noise sigmas
    cv: float


def _ar1(rng: np.random.Generator, n: int, phi: float, innovation_sd: float) -> np.ndarray:
    e = rng.standard_normal(n + 50) * innovation_sd
    x = np.empty(n + 50)
    x[0] = e[0] / np.sqrt(1 - phi * phi)
    for t in range(1, n + 50):
        x[t] = phi * x[t - 1] + e[t]
    return x[50:]


def noise(rng: np.random.Generator, kind: str, n: int, reading: str = "unit") -> np.ndarray:
    """Zero-centred noise of one kind, in units of its sigma (see the module docstring)."""
    unit = reading == "unit"
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "heavy_tailed":
        t = rng.standard_t(3, n)
        return t / np.sqrt(3.0) if unit else t
    if kind == "ar1":
        return _ar1(rng, n, 0.5, np.sqrt(1 - 0.25) if unit else 1.0)
    if kind == "spiky":
        base = rng.standard_normal(n)
        hit = rng.random(n) < 0.03
        base[hit] += rng.uniform(4, 15, hit.sum())
        return base
    if kind == "bimodal":
        state = rng.random(n) < 0.3
        x = rng.standard_normal(n) + 4.0 * state - 1.2
        return x / np.sqrt(1 + 0.21 * 16) if unit else x
    raise ValueError(f"unknown noise kind {kind!r}")


def make_series(
    rng: np.random.Generator, kind: str, reading: str = "unit", steps: int | None = None
) -> Series:
    n = int(rng.integers(60, 401))
    k = int(rng.integers(0, 4)) if steps is None else steps
    positions: list[int] = []
    for _ in range(200):  # rejection sampling of well-separated positions
        if k == 0:
            break
        cand = sorted(int(x) for x in rng.integers(MIN_GAP, n - MIN_GAP + 1, k))
        if np.all(np.diff([0, *cand, n]) >= MIN_GAP):
            positions = cand
            break
    cv = float(rng.uniform(0.005, 0.04))
    sizes = tuple(float(rng.uniform(1.5, 10.0)) for _ in positions)
    level = float(np.exp(rng.uniform(np.log(1.0), np.log(5000.0))))
    sigma = cv * level
    mean = np.full(n, level)
    for pos, size in zip(positions, sizes, strict=True):
        mean[pos:] += rng.choice([-1.0, 1.0]) * size * sigma
    values = mean + sigma * noise(rng, kind, n, reading)
    return Series(kind, values, tuple(positions), sizes, cv)


def make_corpus(
    seed: int, per_kind: int, reading: str = "unit", kinds: Sequence[str] = KINDS
) -> list[Series]:
    rng = np.random.default_rng(seed)
    return [make_series(rng, kind, reading) for kind in kinds for _ in range(per_kind)]


def null_corpus(
    seed: int, per_kind: int, reading: str = "unit", kinds: Sequence[str] = KINDS
) -> list[Series]:
    rng = np.random.default_rng(seed)
    return [make_series(rng, kind, reading, steps=0) for kind in kinds for _ in range(per_kind)]


def matches(truth: Sequence[int], found: Sequence[int], margin: int = MARGIN) -> list[bool]:
    """Which true steps a detection within ``margin`` points claims (one detection each,
    nearest first)."""
    free = sorted(found)
    hit = []
    for tau in truth:
        near = [(abs(x - tau), x) for x in free if abs(x - tau) <= margin]
        if near:
            free.remove(min(near)[1])
            hit.append(True)
        else:
            hit.append(False)
    return hit


@dataclass
class Scores:
    """Counts over many series; the rates are properties."""

    series: int = 0
    points: int = 0
    steps: int = 0
    found: int = 0
    true_positives: int = 0
    big_steps: int = 0
    big_found: int = 0
    null_points: int = 0
    null_alarms: int = 0
    misses: list[tuple[int, float]] = field(default_factory=list)  # (series number, size)

    @property
    def precision(self) -> float:
        return self.true_positives / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.steps if self.steps else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def big_recall(self) -> float:
        return self.big_found / self.big_steps if self.big_steps else 1.0

    @property
    def null_rate(self) -> float:
        """Change points reported per 1,000 points of change-free series."""
        return 1000 * self.null_alarms / self.null_points if self.null_points else 0.0

    def add(self, number: int, s: Series, found: Sequence[int]) -> None:
        hit = matches(s.steps, found)
        self.series += 1
        self.points += len(s.values)
        self.steps += len(s.steps)
        self.found += len(found)
        self.true_positives += sum(hit)
        for h, size in zip(hit, s.sizes, strict=True):
            if size >= BIG:
                self.big_steps += 1
                self.big_found += h
            if not h:
                self.misses.append((number, size))
        if not s.steps:
            self.null_points += len(s.values)
            self.null_alarms += len(found)


def score(
    corpus: Sequence[Series], detect: Callable[[np.ndarray], Sequence[int]]
) -> dict[str, Scores]:
    """Scores per noise kind and over all ("all")."""
    out: dict[str, Scores] = {"all": Scores()}
    for number, s in enumerate(corpus):
        found = list(detect(s.values))
        out.setdefault(s.kind, Scores()).add(number, s, found)
        out["all"].add(number, s, found)
    return out
