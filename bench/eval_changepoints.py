"""Evaluate lib.regression.detect_change_points: TCPD quality, injected steps, speed, nulls.

    .venv/bin/python bench/eval_changepoints.py [--quick]     (about 2 minutes; --quick: 30 s)

(0) The F1 / covering code reproduces TCPDBench's published scores of its default runs.
(a) TCPD: F1 (margin 5) and segmentation covering exactly as TCPDBench computes them, per series,
    beside the paper's default-parameter methods (scores/default_*.json) on the same series.
(b) Steps of 1, 2, 5, 10, 20 % injected into stable stretches of real github-action-benchmark
    histories (safetensors, opentelemetry-cpp), false alarms on untouched stretches (batch and
    streaming), and recall against the noise level on synthetic series.
(c) Speed of the batch function and of the incremental update; tracker vs batch agreement.
(d) Change points per 1,000 points on change-free synthetic series (the calibration families).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu, norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.regression import ChangePointTracker, detect_change_points  # noqa: E402

DATA = Path("/work/shared/data")
TCPD = DATA / "tcpd"
SCORES = DATA / "tcpdbench_results" / "scores"
BENCHMARK_FILES = {
    "safetensors": DATA / "github_action_benchmark_safetensors" / "data.js",
    "otel-cpp": DATA / "github_action_benchmark_opentelemetry_cpp" / "data.js",
}


# ---------------------------------------------------------------------------------------------
# TCPDBench metrics (van den Burg & Williams 2020, section 4.1), re-implemented from the paper.
# ---------------------------------------------------------------------------------------------


def true_positives(truth: set[int], predicted: set[int], margin: int = 5) -> set[int]:
    """Points of ``truth`` matched by a prediction within ``margin``; one prediction per truth.

    Greedy: each true point, in Python's set iteration order (as the reference implementation
    iterates; sorted order changes 1 of the 85 published runs checked by ``check_metrics``), takes
    the closest unmatched prediction (the smaller index on a tie).
    """
    available = set(predicted)
    matched: set[int] = set()
    for tau in truth:
        close = sorted((abs(tau - x), x) for x in available if abs(tau - x) <= margin)
        if not close:
            continue
        matched.add(tau)
        available.remove(close[0][1])
    return matched


def f_measure(annotations: dict[str, list[int]], predictions: list[int], margin: int = 5) -> float:
    """F1: precision against the union of annotators, recall averaged over annotators.

    Index 0 counts as a change point in every annotation and in the prediction.
    """
    per_annotator = [set(cps) | {0} for cps in annotations.values()]
    predicted = set(predictions) | {0}
    union: set[int] = set()
    for cps in per_annotator:
        for tau in cps:
            union.add(tau)
    precision = len(true_positives(union, predicted, margin)) / len(predicted)
    recall = sum(len(true_positives(t, predicted, margin)) / len(t) for t in per_annotator) / len(
        per_annotator
    )
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def partition(cps: list[int], n_obs: int) -> list[tuple[int, int]]:
    """Segments [start, end) of 0..n_obs-1 cut at the change points."""
    bounds = sorted({c for c in cps if 0 < c < n_obs})
    starts = [0, *bounds]
    ends = [*bounds, n_obs]
    return list(zip(starts, ends, strict=True))


def covering_single(truth: list[tuple[int, int]], predicted: list[tuple[int, int]]) -> float:
    """C(G, G') = 1/T sum_{A in G} |A| max_{A' in G'} |A & A'| / |A | A'| (Arbelaez et al. 2011)."""
    total = sum(e - s for s, e in truth)
    score = 0.0
    for s, e in truth:
        best = 0.0
        for ps, pe in predicted:
            inter = max(0, min(e, pe) - max(s, ps))
            if inter:
                best = max(best, inter / (max(e, pe) - min(s, ps)))
        score += (e - s) * best
    return score / total


def covering(annotations: dict[str, list[int]], predictions: list[int], n_obs: int) -> float:
    """Covering of each annotator's segmentation by the prediction, averaged over annotators."""
    predicted = partition(predictions, n_obs)
    values = [covering_single(partition(cps, n_obs), predicted) for cps in annotations.values()]
    return sum(values) / len(values)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_tcpd() -> tuple[dict[str, np.ndarray], list[str], dict[str, dict[str, list[int]]]]:
    """Univariate real TCPD series present here, the skipped multivariate ones, annotations."""
    annotations = json.loads((TCPD / "annotations.json").read_text())
    series: dict[str, np.ndarray] = {}
    multivariate: list[str] = []
    for path in sorted((TCPD / "datasets").glob("*/*.json")):
        name = path.stem
        if name.startswith(
            "quality_control"
        ):  # synthetic; the paper's real-series tables skip them
            continue
        doc = json.loads(path.read_text())
        if doc["n_dim"] != 1:
            multivariate.append(name)
            continue
        raw = doc["series"][0]["raw"]
        series[name] = np.array([np.nan if v is None else float(v) for v in raw])
    return series, multivariate, annotations


def load_benchmarks() -> dict[str, np.ndarray]:
    """Every github-action-benchmark series with at least 60 points, keyed 'project/suite/name'."""
    out: dict[str, np.ndarray] = {}
    for project, path in BENCHMARK_FILES.items():
        text = path.read_text()
        doc = json.loads(text[text.index("=") + 1 :].strip().rstrip(";"))
        for suite, entries in doc["entries"].items():
            values: dict[str, list[float]] = {}
            for entry in entries:
                for bench in entry["benches"]:
                    values.setdefault(bench["name"], []).append(float(bench["value"]))
            for name, vals in values.items():
                if len(vals) >= 60:
                    out[f"{project}/{suite}/{name}"] = np.array(vals)
    return out


def robust_cv(x: np.ndarray) -> float:
    med = float(np.median(x))
    return 1.4826 * float(np.median(np.abs(x - med))) / abs(med) if med else float("inf")


def robust_stable(x: np.ndarray) -> bool:
    """Independent check that a stretch has no change: Mann-Whitney U of halves and of each third
    against the rest all have p >= 0.01, and the medians of the halves differ by < 5 %."""
    n = len(x)
    h, t = n // 2, n // 3
    if mannwhitneyu(x[:h], x[h:]).pvalue < 0.01:
        return False
    for a, b in ((0, t), (t, 2 * t), (2 * t, n)):
        if mannwhitneyu(x[a:b], np.concatenate([x[:a], x[b:]])).pvalue < 0.01:
            return False
    m1, m2 = float(np.median(x[:h])), float(np.median(x[h:]))
    return abs(m2 - m1) <= 0.05 * max(abs(m1), abs(m2))


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A markdown table; floats with 3 decimals."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "nan" if v != v else f"{v:.3f}"
        return str(v)

    body = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)
    ]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(cells: list[str]) -> str:
        out = []
        for c, w, a in zip(cells, widths, align, strict=True):
            out.append(c.ljust(w) if a == "l" else c.rjust(w))
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
            for w, a in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), sep, *(line(r) for r in body)])


# ---------------------------------------------------------------------------------------------
# (0) the metric code reproduces TCPDBench's own numbers
# ---------------------------------------------------------------------------------------------


def check_metrics() -> tuple[int, int]:
    """Recompute F1 and cover of the published default runs (9 series, 14 methods)."""
    doc = json.loads(
        (DATA / "tcpdbench_results" / "default_runs_cplocations_subset.json").read_text()
    )
    ok = total = 0
    for entry in doc.values():
        for runs in entry["default_runs"].values():
            for run in runs:
                if run["status"] != "SUCCESS":
                    continue
                total += 1
                f1 = f_measure(entry["annotations"], run["cplocations"])
                cov = covering(entry["annotations"], run["cplocations"], entry["dataset_nobs"])
                ok += (
                    abs(f1 - run["scores"]["f1"]) < 1e-9
                    and abs(cov - run["scores"]["cover"]) < 1e-9
                )
    return ok, total


# ---------------------------------------------------------------------------------------------
# (a) TCPD
# ---------------------------------------------------------------------------------------------


def evaluate_tcpd() -> tuple[float, float, dict[str, tuple[float, float]]]:
    series, multivariate, annotations = load_tcpd()
    f1_paper = json.loads((SCORES / "default_f1_scores.json").read_text())
    cover_paper = json.loads((SCORES / "default_cover_scores.json").read_text())
    methods = sorted(next(iter(f1_paper.values())))
    shown = ["binseg", "pelt", "amoc", "bocpd", "zero"]
    rows = []
    ours_f1, ours_cov = [], []
    for name, x in series.items():
        cps = detect_change_points(x)
        f1 = f_measure(annotations[name], cps)
        cov = covering(annotations[name], cps, len(x))
        ours_f1.append(f1)
        ours_cov.append(cov)
        row = [name, len(x), f1, cov]
        for m in shown:
            row += [f1_paper[name][m] or 0.0, cover_paper[name][m] or 0.0]
        row.append(",".join(map(str, cps)) or "-")
        rows.append(row)
    headers = ["series", "n", "ours F1", "ours cov"]
    for m in shown:
        headers += [f"{m} F1", f"{m} cov"]
    headers.append("our change points")
    print(
        "\n(a) TCPD, default parameters, margin 5: per series (paper's default runs beside; failures = 0)\n"
    )
    print(table(headers, rows, "l" + "r" * (len(headers) - 2) + "l"))
    names = list(series)
    means = {
        m: (
            statistics.fmean(f1_paper[n][m] or 0.0 for n in names),
            statistics.fmean(cover_paper[n][m] or 0.0 for n in names),
        )
        for m in methods
    }
    f1_mean, cov_mean = statistics.fmean(ours_f1), statistics.fmean(ours_cov)
    summary = sorted(
        [["ours (lib.regression)", f1_mean, cov_mean]] + [[m, f, c] for m, (f, c) in means.items()],
        key=lambda r: -r[1],
    )
    print(f"\nMeans over the {len(names)} univariate real TCPD series present here:\n")
    print(table(["method (default parameters)", "mean F1", "mean cover"], summary))
    best_f1 = max(means.items(), key=lambda kv: kv[1][0])
    best_cov = max(means.items(), key=lambda kv: kv[1][1])
    print(
        f"\nBest paper F1: {best_f1[0]} {best_f1[1][0]:.3f}; best paper cover: {best_cov[0]} "
        f"{best_cov[1][1]:.3f}. Ours: F1 {f1_mean:.3f}, cover {cov_mean:.3f} -> beats every "
        f"default method on both: {'YES' if f1_mean > best_f1[1][0] and cov_mean > best_cov[1][1] else 'NO'}"
    )
    print(
        f"Skipped: multivariate {', '.join(multivariate)}; synthetic quality_control_1..5 (the paper's"
        " real-series tables leave them out). uk_coal_employ has missing values (NaN here; most methods"
        " failed on it in the paper and score 0)."
    )
    return f1_mean, cov_mean, means


# ---------------------------------------------------------------------------------------------
# (b) steps injected into stable stretches of real benchmark histories
# ---------------------------------------------------------------------------------------------


def first_detection(y: np.ndarray, t: int, margin: int) -> int | None:
    """Points after t the detector needs (run on prefixes) to report a change within margin.

    Bisection over the prefix length, assuming a detection persists once points are added.
    """

    def hit(m: int) -> bool:
        return any(abs(c - t) <= margin for c in detect_change_points(y[: t + m]))

    lo, hi = 1, len(y) - t
    if not hit(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if hit(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def streaming_alarms(x: np.ndarray, margin: int) -> int:
    """Distinct change points ever reported while the stretch arrives one point at a time."""
    tracker = ChangePointTracker()
    seen: list[int] = []
    for value in x:
        for c in tracker.update(value):
            if all(abs(c - s) > margin for s in seen):
                seen.append(c)
    return len(seen)


def evaluate_injections(quick: bool) -> None:
    length, margin, reps = 120, 5, (2 if quick else 6)
    sizes = (0.01, 0.02, 0.05, 0.10, 0.20)
    rng = np.random.default_rng(20240601)
    stretches = []
    for key, x in load_benchmarks().items():
        for start in range(0, len(x) - length + 1, length):
            stretches.append((key, start, x[start : start + length]))
    robust = [s for s in stretches if robust_stable(s[2])]
    robust_alarms = sum(len(detect_change_points(s[2])) for s in robust)
    stable = [s for s in robust if not detect_change_points(s[2])]
    print(
        f"\n(b) Injected steps. {len(stretches)} stretches of {length} points cut from "
        f"{len(BENCHMARK_FILES)} github-action-benchmark histories; {len(robust)} pass the robust "
        f"check (Mann-Whitney U on halves and thirds, p >= 0.01, medians of halves within 5 %); "
        f"{len(stable)} of them have no change point from the detector either and receive the "
        f"injections. Each injection multiplies the values from a random point t in [30, 90) by "
        f"1 +/- step (random sign); seed 20240601; {reps} injections per stretch and size. Detected"
        f" = a change point within {margin} points of t. Delay = points after t the detector needs "
        f"(run on the prefix) before it reports the change."
    )
    rows, by_noise = [], []
    cv_bins = [(0.0, 0.05, "CV < 5 %"), (0.05, 0.15, "5-15 %"), (0.15, 9.9, "CV >= 15 %")]
    for size in sizes:
        tp = fp = total = 0
        delays = []
        oracle = 0
        per_bin = {b[2]: [0, 0] for b in cv_bins}
        for _, _, x in stable:
            cv = robust_cv(x)
            label = next(b[2] for b in cv_bins if b[0] <= cv < b[1])
            for _ in range(reps):
                t = int(rng.integers(30, length - 30))
                y = x.copy()
                y[t:] *= 1 + float(rng.choice([-1.0, 1.0])) * size
                cps = detect_change_points(y)
                ok = any(abs(c - t) <= margin for c in cps)
                tp += ok
                fp += len(cps) - ok
                total += 1
                per_bin[label][0] += ok
                per_bin[label][1] += 1
                p = mannwhitneyu(y[:t], y[t:]).pvalue
                oracle += bool(norm.isf(p / 2) >= 5.0)
                if ok:
                    d = first_detection(y, t, margin)
                    if d is not None:
                        delays.append(d)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        rows.append(
            [
                f"{size:.0%}",
                total,
                precision,
                tp / total,
                oracle / total,
                statistics.median(delays) if delays else float("nan"),
                float(np.percentile(delays, 90)) if delays else float("nan"),
            ]
        )
        by_noise.append(
            [f"{size:.0%}"]
            + [f"{v[0] / v[1]:.2f} ({v[1]})" if v[1] else "-" for v in per_bin.values()]
        )
    print()
    print(
        table(
            [
                "step",
                "injections",
                "precision",
                "recall",
                "oracle z>=5",
                "median delay",
                "p90 delay",
            ],
            rows,
        )
    )
    print(
        "\n'oracle z>=5': share of injections where a Wilcoxon rank-sum test at the TRUE step "
        "(no search) reaches |z| >= 5, i.e. what a detector with that threshold could at best find"
        " in these noisy series."
    )
    print(
        "\nRecall by the robust CV (1.4826 MAD / median) of the stretch (number of injections):\n"
    )
    print(table(["step", *(b[2] for b in cv_bins)], by_noise))
    points = sum(len(s[2]) for s in stable)
    streamed = sum(streaming_alarms(s[2], margin) for s in stable)
    rpoints = sum(len(s[2]) for s in robust)
    print(
        f"\nFalse alarms on untouched stretches:\n"
        f"- streaming (ChangePointTracker fed one point at a time, every change point ever reported "
        f"counts): {streamed} on {points} points = {1000 * streamed / points:.2f} per 1,000 points\n"
        f"- batch on every stretch that passes the robust check (detector not used to select): "
        f"{robust_alarms} on {rpoints} points = {1000 * robust_alarms / rpoints:.2f} per 1,000 points"
    )


def evaluate_synthetic_steps(quick: bool) -> None:
    """Recall against the noise level: steps in synthetic heavy-tailed noise of known CV."""
    rng = np.random.default_rng(77)
    reps = 20 if quick else 60
    length, margin = 120, 5
    sizes = (0.01, 0.02, 0.05, 0.10, 0.20)
    cvs = (0.01, 0.02, 0.05, 0.10, 0.20)
    rows = []
    for cv in cvs:
        row: list = [f"{cv:.0%}"]
        for size in sizes:
            hits = 0
            for _ in range(reps):
                # Student t with 3 df scaled so that its robust CV (1.4826 MAD / median) is cv
                x = 100 * (1 + cv * rng.standard_t(3, size=length) / 1.1341)
                t = int(rng.integers(30, length - 30))
                x[t:] *= 1 + float(rng.choice([-1.0, 1.0])) * size
                hits += any(abs(c - t) <= margin for c in detect_change_points(x))
            row.append(hits / reps)
        rows.append(row)
    print(
        f"\nRecall of steps in synthetic series ({length} points, Student t 3 df noise with the given"
        f" robust CV, step at a random point in [30, 90), {reps} per cell):\n"
    )
    print(table(["noise CV", *(f"step {s:.0%}" for s in sizes)], rows))


# ---------------------------------------------------------------------------------------------
# (c) speed, (d) change-free synthetic series
# ---------------------------------------------------------------------------------------------


def synthetic_series(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        n = int(rng.integers(60, 401))
        x = 100 * (1 + 0.05 * rng.standard_t(3, size=n))
        for _ in range(int(rng.integers(0, 3))):
            t = int(rng.integers(5, n - 5))
            x[t:] *= 1 + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.05, 0.3))
        out.append(x)
    return out


def tracker_agreement() -> tuple[int, int, int]:
    """Feed every real history to a tracker point by point; compare with one batch call."""
    same = near = 0
    histories = load_benchmarks()
    for x in histories.values():
        tracker = ChangePointTracker()
        for value in x:
            tracker.update(value)
        inc, batch = tracker.change_points, detect_change_points(x)
        same += inc == batch
        near += len(inc) == len(batch) and all(
            abs(a - b) <= 5 for a, b in zip(inc, batch, strict=True)
        )
    return same, near, len(histories)


def evaluate_speed(quick: bool) -> None:
    rng = np.random.default_rng(1)
    series = synthetic_series(rng, 400)
    started = time.perf_counter()
    for x in series:
        detect_change_points(x)
    batch = time.perf_counter() - started
    # incremental: a 300-point real history with changes, then 100 more points one at a time
    history = load_benchmarks()["safetensors/Benchmark/benches/test_pt.py::test_pt_sf_load_cpu"]
    tracker = ChangePointTracker()
    tracker.extend(history[:300])
    times = []
    for value in history[300:400]:
        t0 = time.perf_counter()
        tracker.update(value)
        times.append(1000 * (time.perf_counter() - t0))
    full = []
    for m in range(300, 400, 10):
        t0 = time.perf_counter()
        detect_change_points(history[:m])
        full.append(1000 * (time.perf_counter() - t0))
    print("\n(c) Speed (this machine)\n")
    print(
        table(
            ["what", "result"],
            [
                ["batch: 400 synthetic series of 60-400 points (total)", f"{batch:.2f} s"],
                ["batch: per series (mean)", f"{1000 * batch / 400:.2f} ms"],
                [
                    "incremental update, 300-400 point history (median)",
                    f"{statistics.median(times):.2f} ms",
                ],
                ["incremental update (p95)", f"{float(np.percentile(times, 95)):.2f} ms"],
                [
                    "full batch re-run on 300-400 points (median)",
                    f"{statistics.median(full):.2f} ms",
                ],
            ],
        )
    )
    if not quick:
        same, near, total = tracker_agreement()
        print(
            f"\nTracker fed each of the {total} real histories point by point, compared with one batch"
            f" call on the whole history: identical for {same}, same number of change points within"
            f" 5 points for {near}."
        )


def ar1(rng: np.random.Generator, n: int, phi: float, innovations) -> np.ndarray:
    e = innovations(n + 200)
    x = np.zeros(n + 200)
    for i in range(1, n + 200):
        x[i] = phi * x[i - 1] + e[i]
    return x[200:]


def evaluate_null(quick: bool) -> None:
    rng = np.random.default_rng(3)
    reps = 20 if quick else 100
    lengths = (40, 100, 250)
    noises = {
        "Gaussian": lambda n: rng.normal(size=n),
        "Student t, 2 df": lambda n: rng.standard_t(2, size=n),
        "Cauchy": lambda n: rng.standard_cauchy(size=n),
        "AR(1) 0.5": lambda n: ar1(rng, n, 0.5, lambda m: rng.normal(size=m)),
        "AR(1) 0.8": lambda n: ar1(rng, n, 0.8, lambda m: rng.normal(size=m)),
        "AR(1) 0.5, t 3 df": lambda n: ar1(rng, n, 0.5, lambda m: rng.standard_t(3, size=m)),
        "bimodal 70/30": lambda n: 0.3 * rng.normal(size=n) + 3.0 * (rng.random(n) < 0.3),
        "bimodal 90/10": lambda n: 0.3 * rng.normal(size=n) + 5.0 * (rng.random(n) < 0.1),
        "log-normal": lambda n: np.exp(rng.normal(size=n)),
        "quantised": lambda n: np.round(1.5 * rng.normal(size=n)),
        "spikes (8 %)": lambda n: (
            0.2 * rng.normal(size=n) + (rng.random(n) < 0.08) * rng.exponential(8.0, size=n)
        ),
    }
    rows = []
    for name, make in noises.items():
        batch = stream = points = 0
        for n in lengths:
            for r in range(reps):
                x = 10.0 + make(n)
                batch += len(detect_change_points(x))
                if r < reps // 5:
                    stream += streaming_alarms(x, 5)
                points += n
        rows.append([name, points, 1000 * batch / points, 1000 * stream / (points / 5)])
    print(
        f"\n(d) Change-free synthetic series (level 10, unit noise scale, lengths {lengths}, "
        f"{reps} each; streaming on a fifth of them): change points per 1,000 points\n"
    )
    print(table(["noise", "points", "batch", "streaming"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer injections and null series")
    args = parser.parse_args()
    ok, total = check_metrics()
    print(
        f"(0) Metric check: F1 and cover recomputed for {ok} of {total} published TCPDBench default "
        f"runs (9 series with stored change-point locations), exact to 1e-9."
    )
    evaluate_tcpd()
    evaluate_injections(args.quick)
    evaluate_synthetic_steps(args.quick)
    evaluate_speed(args.quick)
    evaluate_null(args.quick)


if __name__ == "__main__":
    main()
