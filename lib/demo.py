"""Seeded, realistic demo data for a fleet of test and benchmark workers, with its ground truth.

The world (models x hardware x batch sizes x precisions, the tests, the workers, the injected
changes) follows the magnitudes in DESIGN.md section 4. ``generate`` writes a new database file;
``catch_up`` extends a live demo up to the present, so the shipped demo keeps looking alive. The
table ``demo_truth`` records what was injected (regressions, improvements, flaky and broken tests,
the bad worker, stale and dead workers, unstable series) so later features can be checked.
Everything is vectorised with numpy: a million results take seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from lib import store as store_mod
from lib.config import DEMO_DAYS, DEMO_RESULTS, DEMO_SEED
from lib.ids import mix_ids, series_id
from lib.writer import Batch, append_in

DEFAULT_RESULTS = DEMO_RESULTS
DEFAULT_DAYS = DEMO_DAYS
DEFAULT_SEED = DEMO_SEED

RUN_EVERY = timedelta(minutes=60)
"""CI cadence: one run an hour; every fourth run re-runs the previous commit."""
HEARTBEAT_INTERVAL_S = 30.0
HEARTBEAT_HISTORY = timedelta(hours=24)
BENCHMARK_SHARE = 0.45
BAD_WORKER_ERROR_RATE = 0.35
STALE_LAG = timedelta(seconds=180)
"""Stale workers last reported 6 intervals ago: past 3 missed beats, short of 10."""
DEAD_AGO = timedelta(hours=6)

_US = 1_000_000


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Model:
    name: str
    family: str
    modality: str
    params_m: float
    latency_ms: float
    """Median latency at batch 1, fp32, on an RTX 4090."""
    max_batch: int
    platforms: tuple[str, ...]
    task: str


_ALL = ("cuda", "cpu", "rocm", "mps", "openvino", "qnn", "webnn", "webgpu")
_NO_WEB = ("cuda", "cpu", "rocm", "mps", "openvino")

MODELS: tuple[Model, ...] = (
    Model("bert-base-uncased", "bert", "text", 110, 6.0, 64, _ALL, "text_embedding"),
    Model("t5-small", "t5", "text", 60, 9.0, 64, _ALL, "text2text_generation"),
    Model("facebook/opt-125m", "llama", "text", 125, 11.0, 32, _ALL, "text_generation"),
    Model(
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "llama",
        "text",
        1100,
        38.0,
        16,
        _NO_WEB,
        "text_generation",
    ),
    Model(
        "openai/clip-vit-base-patch32",
        "clip",
        "multimodal",
        151,
        8.5,
        32,
        _ALL,
        "image_text_matching",
    ),
    Model(
        "google/vit-base-patch16-224", "vit", "vision", 86, 7.0, 64, _ALL, "image_classification"
    ),
    Model(
        "laion/clap-htsat-unfused", "clap", "audio", 153, 14.0, 32, _NO_WEB, "audio_text_matching"
    ),
    Model("openai/whisper-tiny", "whisper", "audio", 39, 19.0, 32, _ALL, "speech_recognition"),
    Model("facebook/wav2vec2-base", "wav2vec2", "audio", 95, 12.0, 32, _ALL, "audio_embedding"),
    Model(
        "llava-hf/llava-1.5-7b-hf",
        "llava",
        "multimodal",
        7060,
        160.0,
        8,
        ("cuda", "cpu"),
        "visual_question_answering",
    ),
    Model(
        "microsoft/xclip-base-patch32",
        "xclip",
        "video",
        197,
        26.0,
        16,
        ("cuda", "cpu", "openvino"),
        "video_classification",
    ),
    Model(
        "Qwen/Qwen2-0.5B-Instruct",
        "qwen2",
        "text",
        494,
        24.0,
        32,
        _NO_WEB + ("qnn",),
        "text_generation",
    ),
    Model("facebook/detr-resnet-50", "detr", "vision", 41, 17.0, 32, _ALL, "object_detection"),
)


@dataclass(frozen=True)
class Device:
    name: str
    speed: float
    """Latency factor against the platform's reference device."""
    browser: str | None = None


@dataclass(frozen=True)
class Platform:
    speed: float
    """Latency factor against CUDA on an RTX 4090."""
    noise_cv: float
    precisions: tuple[str, ...]
    devices: tuple[Device, ...]
    os: str


PLATFORMS: dict[str, Platform] = {
    "cuda": Platform(
        1.0,
        0.02,
        ("fp32", "fp16", "int8"),
        (
            Device("NVIDIA H100 80GB", 0.55),
            Device("NVIDIA A100 80GB", 0.75),
            Device("NVIDIA RTX 4090", 1.0),
        ),
        "Ubuntu 22.04",
    ),
    "cpu": Platform(
        4.0,
        0.03,
        ("fp32", "int8"),
        (Device("Intel Xeon Platinum 8480+", 1.0), Device("AMD EPYC 9654", 0.9)),
        "Ubuntu 22.04",
    ),
    "rocm": Platform(
        1.15,
        0.03,
        ("fp32", "fp16"),
        (Device("AMD MI300X", 0.6), Device("AMD MI250", 0.95)),
        "Ubuntu 22.04",
    ),
    "mps": Platform(2.2, 0.04, ("fp32", "fp16"), (Device("Apple M2 Ultra", 1.0),), "macOS 14.6"),
    "openvino": Platform(
        2.6, 0.04, ("fp32", "int8"), (Device("Intel Xeon Platinum 8480+", 1.0),), "Ubuntu 22.04"
    ),
    "qnn": Platform(
        3.0, 0.05, ("fp16", "int8"), (Device("Qualcomm Snapdragon X Elite", 1.0),), "Windows 11"
    ),
    "webnn": Platform(
        3.4,
        0.12,
        ("fp32", "fp16"),
        (
            Device("Intel Core Ultra 7 155H", 1.0, "chrome"),
            Device("Intel Core Ultra 7 155H", 1.04, "edge"),
        ),
        "Windows 11",
    ),
    "webgpu": Platform(
        2.4,
        0.14,
        ("fp32", "fp16"),
        (
            Device("NVIDIA RTX 4090", 1.0, "chrome"),
            Device("NVIDIA RTX 4090", 1.2, "firefox"),
            Device("Apple M2 Ultra", 1.3, "safari"),
        ),
        "Windows 11",
    ),
}

PRECISION_SPEED = {"fp32": 1.0, "fp16": 0.7, "bf16": 0.72, "int8": 0.5, "int4": 0.4}
PRECISION_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}

# (worker id, platform, device index, count)
_FLEET: tuple[tuple[str, str, int, int], ...] = (
    ("gpu-h100", "cuda", 0, 2),
    ("gpu-a100", "cuda", 1, 2),
    ("gpu-4090", "cuda", 2, 1),
    ("cpu-xeon", "cpu", 0, 4),
    ("cpu-epyc", "cpu", 1, 2),
    ("rocm-mi300x", "rocm", 0, 1),
    ("rocm-mi250", "rocm", 1, 1),
    ("mac-m2u", "mps", 0, 2),
    ("ov-xeon", "openvino", 0, 1),
    ("qnn-xelite", "qnn", 0, 1),
    ("webnn-chrome", "webnn", 0, 1),
    ("webnn-edge", "webnn", 1, 1),
    ("web-chrome", "webgpu", 0, 1),
    ("web-firefox", "webgpu", 1, 1),
    ("web-safari", "webgpu", 2, 1),
)
BAD_WORKER = "cpu-xeon-03"
STALE_WORKERS = ("gpu-a100-02", "mac-m2u-02")
DEAD_WORKER = "rocm-mi250-01"
IDLE_WORKERS = ("cpu-epyc-02", "web-firefox-01")


@dataclass(frozen=True)
class Change:
    """A step injected at a commit into every benchmark series matching the selector."""

    label: str
    commit_fraction: float
    metric_group: str  # "speed" moves throughput and latency together; "memory" moves memory
    change: float  # relative change of throughput (speed) or of memory
    model: str | None = None
    platform: str | None = None
    precision: str | None = None


CHANGES: tuple[Change, ...] = (
    Change(
        "fp16 attention kernel slowdown",
        0.35,
        "speed",
        -0.18,
        model="bert-base-uncased",
        platform="cuda",
        precision="fp16",
    ),
    Change(
        "oneDNN upgrade slows whisper on cpu",
        0.50,
        "speed",
        -0.10,
        model="openai/whisper-tiny",
        platform="cpu",
    ),
    Change(
        "fused rotary embedding for qwen2",
        0.60,
        "speed",
        +0.25,
        model="Qwen/Qwen2-0.5B-Instruct",
        platform="cuda",
    ),
    Change("detr keeps feature maps alive", 0.70, "memory", +0.30, model="facebook/detr-resnet-50"),
    Change(
        "metal graph capture disabled for vit",
        0.80,
        "speed",
        -0.07,
        model="google/vit-base-patch16-224",
        platform="mps",
    ),
    Change(
        "int8 matmul path for t5 on openvino",
        0.45,
        "speed",
        +0.15,
        model="t5-small",
        platform="openvino",
        precision="int8",
    ),
)


@dataclass(frozen=True)
class TestCase:
    suite: str
    name: str
    kind: str
    platforms: tuple[str, ...]
    requires: str | None
    """Platform the test needs; elsewhere it is skipped."""
    duration_s: float


def _test_catalog() -> list[TestCase]:
    cases: list[TestCase] = []
    small = (
        "bert-base-uncased",
        "t5-small",
        "facebook/opt-125m",
        "google/vit-base-patch16-224",
        "openai/whisper-tiny",
        "facebook/wav2vec2-base",
    )

    def add(
        suite: str,
        name: str,
        kind: str,
        platforms: tuple[str, ...],
        dur: float,
        requires: str | None = None,
    ) -> None:
        cases.append(TestCase(suite, name, kind, platforms, requires, dur))

    u, i, p = "unit_test", "integration_test", "performance_test"
    for m in small:
        add("tests.unit.test_tokenizers", f"test_encode_decode_roundtrip[{m}]", u, ("cpu",), 0.08)
        add(
            "tests.unit.test_model_loading",
            f"test_load_from_local_cache[{m}]",
            u,
            ("cpu", "cuda"),
            1.4,
        )
        add(
            "tests.unit.test_quantization",
            f"test_int8_matches_fp32_within_tolerance[{m}]",
            u,
            ("cpu", "cuda"),
            3.2,
        )
        add(
            "tests.integration.test_pipeline",
            f"test_end_to_end_inference[{m}]",
            i,
            ("cpu", "cuda", "rocm"),
            24.0,
        )
        add(
            "tests.integration.test_web_bridge",
            f"test_webnn_matches_reference[{m}]",
            i,
            ("webnn", "webgpu"),
            18.0,
        )
    for name in (
        "test_special_tokens_preserved",
        "test_padding_side_left",
        "test_truncation_long_input",
        "test_batch_encode_ragged",
        "test_unicode_normalisation",
    ):
        add("tests.unit.test_tokenizers", name, u, ("cpu",), 0.05)
    for name in (
        "test_missing_weights_raises",
        "test_config_only_load",
        "test_sharded_checkpoint",
        "test_safetensors_preferred",
        "test_revision_pinning",
    ):
        add("tests.unit.test_model_loading", name, u, ("cpu",), 0.6)
    for bits in (4, 8):
        for group in (32, 64, 128):
            add(
                "tests.unit.test_quantization",
                f"test_group_quant_shapes[int{bits}-g{group}]",
                u,
                ("cpu", "cuda"),
                0.4,
            )
    for name, req in (
        ("test_detect_cuda", "cuda"),
        ("test_detect_rocm", "rocm"),
        ("test_detect_mps", "mps"),
        ("test_detect_openvino", "openvino"),
    ):
        add(
            "tests.unit.test_hardware_detection", name, u, ("cpu", "cuda", "rocm", "mps"), 0.02, req
        )
    add(
        "tests.unit.test_hardware_detection",
        "test_fallback_to_cpu",
        u,
        ("cpu", "cuda", "mps"),
        0.02,
    )
    for name in (
        "test_priority_order",
        "test_requeue_on_worker_loss",
        "test_fair_share_across_models",
        "test_backpressure_limits_inflight",
        "test_cancel_running_task",
        "test_deadline_expiry",
    ):
        add("tests.unit.test_scheduler", name, u, ("cpu",), 0.15)
    for name in (
        "test_aggregate_by_hardware",
        "test_percentiles_match_numpy",
        "test_empty_window",
        "test_duplicate_results_ignored",
        "test_timezone_normalised",
    ):
        add("tests.unit.test_result_aggregator", name, u, ("cpu",), 0.1)
    for name in (
        "test_pin_and_fetch",
        "test_cache_eviction_lru",
        "test_corrupt_block_refetched",
        "test_concurrent_fetch_dedup",
    ):
        add("tests.unit.test_ipfs_cache", name, u, ("cpu",), 0.3)
    for name in (
        "test_coordinator_assigns_tasks",
        "test_worker_reconnect_after_restart",
        "test_result_upload_retry",
        "test_heartbeat_timeout_marks_stale",
        "test_parallel_workers_no_duplicate_work",
        "test_graceful_shutdown",
    ):
        add("tests.integration.test_distributed", name, i, ("cpu", "cuda"), 35.0)
    for m in ("bert-base-uncased", "openai/whisper-tiny", "google/vit-base-patch16-224"):
        add(
            "tests.performance.test_latency_budget",
            f"test_p99_within_budget[{m}]",
            p,
            ("cpu", "cuda"),
            45.0,
        )
    add(
        "tests.integration.test_cuda_graphs",
        "test_graph_capture_replay",
        i,
        ("cpu", "cuda"),
        12.0,
        "cuda",
    )
    return cases


TESTS: tuple[TestCase, ...] = tuple(_test_catalog())

FLAKY: dict[str, tuple[float, str]] = {
    "tests.integration.test_distributed::test_worker_reconnect_after_restart": (
        0.22,
        "TimeoutError: worker {host} did not acknowledge task {n} within 30.0s",
    ),
    "tests.unit.test_scheduler::test_backpressure_limits_inflight": (
        0.25,
        "AssertionError: assert {k} <= 8 (in-flight tasks after burst)",
    ),
    "tests.integration.test_distributed::test_result_upload_retry": (
        0.30,
        "ConnectionRefusedError: [Errno 111] Connection refused (coordinator at 10.0.{a}.{b}:8765)",
    ),
    "tests.unit.test_ipfs_cache::test_concurrent_fetch_dedup": (
        0.2,
        "AssertionError: expected 1 fetch of block Qm{h}, saw 2",
    ),
    "tests.integration.test_pipeline::test_end_to_end_inference[openai/whisper-tiny]": (
        0.18,
        "RuntimeError: decoder produced NaN logits at step {n} (beam search, 4 beams)",
    ),
}
"""Flaky tests: failure probability per execution and the message template of their failures."""

BROKEN: dict[str, tuple[float, float | None, str]] = {
    "tests.unit.test_quantization::test_int8_matches_fp32_within_tolerance[google/vit-base-patch16-224]": (
        0.72,
        None,
        "AssertionError: assert 0.97{d} >= 0.98 (top-1 agreement int8 vs fp32)",
    ),
    "tests.unit.test_model_loading::test_sharded_checkpoint": (
        0.40,
        0.55,
        "FileNotFoundError: [Errno 2] No such file or directory: "
        "'/cache/hf/model-0000{d}-of-00004.safetensors'",
    ),
}
"""Tests that start failing at a commit fraction and, when the second number is set, recover."""

_BAD_WORKER_MESSAGES = (
    "OSError: [Errno 28] No space left on device: '/tmp/pytest-of-ci/pytest-{n}/test_{k}0'",
    "ConnectionResetError: [Errno 104] Connection reset by peer (artifact upload {n})",
)


@dataclass
class World:
    """Everything fixed by the seed and the time window: catalog, fleet, series, changes."""

    seed: int
    start: datetime
    series: dict[str, np.ndarray] = field(default_factory=dict)
    workers: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)
    pools: np.ndarray | None = None
    pool_sizes: np.ndarray | None = None
    labels: np.ndarray | None = None
    changes: list[tuple[np.ndarray, int, str, float]] = field(default_factory=list)
    flaky_rate: np.ndarray | None = None
    fail_template: np.ndarray | None = None
    broken_from: np.ndarray | None = None
    broken_until: np.ndarray | None = None


def _commit_index(run_index: np.ndarray) -> np.ndarray:
    return run_index - (run_index + 1) // 4


def _commit_sha(seed: int, commit_index: int) -> str:
    return hashlib.blake2b(
        f"demo-commit|{seed}|{commit_index}".encode(), digest_size=20
    ).hexdigest()


_EPOCH = datetime(1970, 1, 1)


def _to_us(moment: datetime) -> int:
    """Microseconds since the epoch of a naive-UTC datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def build_world(seed: int, start: datetime, commits_in_window: int) -> World:
    """The fixed part of the demo; ``commits_in_window`` places the injected changes in time."""
    start = _naive_utc(start)
    world = World(seed=seed, start=start)
    rng = np.random.default_rng([seed, 1])

    workers = []
    for prefix, platform, device_index, count in _FLEET:
        device = PLATFORMS[platform].devices[device_index]
        for k in range(1, count + 1):
            worker_id = f"{prefix}-{k:02d}"
            workers.append(
                {
                    "worker_id": worker_id,
                    "hostname": f"{worker_id}.fleet.internal",
                    "hardware": platform,
                    "device": device.name,
                    "os": PLATFORMS[platform].os
                    + (f" / {device.browser}" if device.browser else ""),
                    "heartbeat_interval_s": HEARTBEAT_INTERVAL_S,
                    "registered_at": start,
                    "_pool": (platform, device_index),
                }
            )
    world.workers = workers
    pool_keys = sorted({w["_pool"] for w in workers})
    pool_members = [[i for i, w in enumerate(workers) if w["_pool"] == key] for key in pool_keys]
    width = max(len(m) for m in pool_members)
    world.pools = np.array([m + [m[0]] * (width - len(m)) for m in pool_members], dtype=np.int64)
    world.pool_sizes = np.array([len(m) for m in pool_members], dtype=np.int64)
    pool_of = {key: i for i, key in enumerate(pool_keys)}

    rows: dict[str, list] = {
        k: []
        for k in (
            "series_id",
            "kind",
            "suite",
            "name",
            "model",
            "model_family",
            "modality",
            "hardware",
            "device",
            "browser",
            "batch_size",
            "precision",
            "pool",
            "latency_ms",
            "params_m",
            "noise_cv",
            "requires",
            "test_key",
            "duration_s",
        )
    }

    def add(**values: object) -> None:
        for key in rows:
            rows[key].append(values.get(key))

    for model in MODELS:
        for platform_name in model.platforms:
            platform = PLATFORMS[platform_name]
            devices = platform.devices
            if platform_name == "cuda" and model.params_m > 1500:
                devices = devices[:2]
            precisions = list(platform.precisions)
            if platform_name == "cuda" and model.family in ("llama", "qwen2", "llava"):
                precisions.append("int4")
            if platform_name == "cpu" and model.modality == "text":
                precisions.append("bf16")
            if platform_name in ("webnn", "webgpu", "qnn"):
                batches = [1, 4]
            else:
                batches = [b for b in (1, 4, 16, 64) if b <= model.max_batch]
                if model.max_batch < 16:
                    batches = sorted({1, 4, model.max_batch})
            for d_index, device in enumerate(devices):
                for batch in batches:
                    for precision in precisions:
                        latency = (
                            model.latency_ms
                            * platform.speed
                            * device.speed
                            * PRECISION_SPEED[precision]
                            * batch**0.25
                        )
                        cv = platform.noise_cv * rng.uniform(0.6, 1.4)
                        sid = series_id(
                            "benchmark",
                            "benchmarks.inference",
                            model.task,
                            model.name,
                            platform_name,
                            device.name,
                            batch,
                            precision,
                            {"browser": device.browser} if device.browser else None,
                        )
                        add(
                            series_id=sid,
                            kind="benchmark",
                            suite="benchmarks.inference",
                            name=model.task,
                            model=model.name,
                            model_family=model.family,
                            modality=model.modality,
                            hardware=platform_name,
                            device=device.name,
                            browser=device.browser,
                            batch_size=batch,
                            precision=precision,
                            pool=pool_of[(platform_name, d_index)],
                            latency_ms=latency,
                            params_m=model.params_m,
                            noise_cv=cv,
                            duration_s=5.0 + model.params_m / 300,
                        )
    for case in TESTS:
        for platform_name in case.platforms:
            pools = [i for key, i in pool_of.items() if key[0] == platform_name]
            for pool in pools[:1]:
                sid = series_id(
                    case.kind, case.suite, case.name, None, platform_name, None, None, None
                )
                add(
                    series_id=sid,
                    kind=case.kind,
                    suite=case.suite,
                    name=case.name,
                    hardware=platform_name,
                    pool=pool,
                    requires=case.requires,
                    test_key=f"{case.suite}::{case.name}",
                    duration_s=case.duration_s,
                    noise_cv=0.1,
                )
    world.series = {k: np.array(v, dtype=object) for k, v in rows.items()}
    for key in ("series_id", "pool"):
        world.series[key] = world.series[key].astype(np.int64)
    for key in ("latency_ms", "params_m", "noise_cv", "duration_s"):
        world.series[key] = np.array([np.nan if v is None else v for v in rows[key]], dtype=float)
    world.labels = np.array(
        [_series_label(world.series, i) for i in range(len(rows["series_id"]))], dtype=object
    )
    world.truth = _inject(world, commits_in_window)
    return world


def _commit_time(world: World, commit_index: int) -> datetime:
    """Start of the first run that built this commit."""
    runs = np.arange(commit_index, 2 * commit_index + 2)
    first = runs[np.argmax(_commit_index(runs) >= commit_index)]
    return world.start + RUN_EVERY * int(first)


def _inject(world: World, commits: int) -> list[dict]:
    """Place the changes, flaky and broken tests on the series; return the ground truth rows."""
    s = world.series
    n_series = len(s["series_id"])
    truth: list[dict] = []
    bench = s["kind"] == "benchmark"
    for change in CHANGES:
        commit = int(round(change.commit_fraction * commits))
        at = _commit_time(world, commit)
        mask = bench.copy()
        for attr, column in (
            ("model", "model"),
            ("platform", "hardware"),
            ("precision", "precision"),
        ):
            wanted = getattr(change, attr)
            if wanted is not None:
                mask &= s[column] == wanted
        world.changes.append((mask, commit, change.metric_group, change.change))
        if change.metric_group == "speed":
            effects = {"throughput_items_per_second": change.change}
            for metric in (
                "latency_p50_ms",
                "latency_p95_ms",
                "latency_p99_ms",
                "total_time_seconds",
            ):
                effects[metric] = 1.0 / (1.0 + change.change) - 1.0
            worse = change.change < 0
        else:
            effects = {"memory_peak_mb": change.change}
            worse = change.change > 0
        for index in np.flatnonzero(mask):
            for metric, effect in effects.items():
                truth.append(
                    {
                        "kind": "regression" if worse else "improvement",
                        "subject": _series_label(s, index),
                        "series_id": int(s["series_id"][index]),
                        "metric": metric,
                        "changed_at": at,
                        "git_commit": _commit_sha(world.seed, commit),
                        "change": float(effect),
                        "note": change.label,
                    }
                )

    world.flaky_rate = np.zeros(n_series)
    world.fail_template = np.full(n_series, None, dtype=object)
    for key, (rate, template) in FLAKY.items():
        for index in np.flatnonzero(s["test_key"] == key):
            world.flaky_rate[index] = rate
            world.fail_template[index] = template
            truth.append(
                {
                    "kind": "flaky_test",
                    "subject": _series_label(s, index),
                    "series_id": int(s["series_id"][index]),
                    "change": rate,
                    "note": f"fails in about {rate:.0%} of executions",
                }
            )

    never = np.iinfo(np.int64).max
    world.broken_from = np.full(n_series, never, dtype=np.int64)
    world.broken_until = np.full(n_series, never, dtype=np.int64)
    for key, (begin, end, template) in BROKEN.items():
        first = int(round(begin * commits))
        last = never if end is None else int(round(end * commits))
        for index in np.flatnonzero(s["test_key"] == key):
            world.broken_from[index], world.broken_until[index] = first, last
            world.fail_template[index] = template
            truth.append(
                {
                    "kind": "broken_test" if end is None else "recovered_test",
                    "subject": _series_label(s, index),
                    "series_id": int(s["series_id"][index]),
                    "changed_at": _commit_time(world, first),
                    "git_commit": _commit_sha(world.seed, first),
                    "note": "fails on every run from this commit on"
                    if end is None
                    else f"failed from this commit until {_commit_sha(world.seed, last)[:12]}, "
                    f"which fixed it at {_commit_time(world, last):%Y-%m-%d %H:%M} UTC",
                }
            )

    truth.append(
        {
            "kind": "bad_worker",
            "subject": BAD_WORKER,
            "change": BAD_WORKER_ERROR_RATE,
            "note": f"about {BAD_WORKER_ERROR_RATE:.0%} of its executions end in an "
            "infrastructure error",
        }
    )
    for worker in STALE_WORKERS:
        truth.append(
            {
                "kind": "stale_worker",
                "subject": worker,
                "note": f"heartbeats lag {STALE_LAG.total_seconds():.0f} s behind",
            }
        )
    truth.append(
        {
            "kind": "dead_worker",
            "subject": DEAD_WORKER,
            "note": f"stopped {DEAD_AGO.total_seconds() / 3600:.0f} h before generation",
        }
    )
    for index in np.flatnonzero(bench & (s["noise_cv"] > 0.10)):
        truth.append(
            {
                "kind": "unstable_series",
                "subject": _series_label(s, index),
                "series_id": int(s["series_id"][index]),
                "change": float(s["noise_cv"][index]),
                "note": "run-to-run noise (CV) above 10 %",
            }
        )
    return truth


def _series_label(s: dict[str, np.ndarray], i: int) -> str:
    if s["kind"][i] != "benchmark":
        return f"{s['test_key'][i]} on {s['hardware'][i]}"
    browser = f" ({s['browser'][i]})" if s["browser"][i] else ""
    return (
        f"{s['model'][i]} {s['hardware'][i]} {s['device'][i]}{browser} "
        f"bs{s['batch_size'][i]} {s['precision'][i]}"
    )


# --------------------------------------------------------------------------- simulation

_RUN_US = RUN_EVERY // timedelta(microseconds=1)
_METRIC_ORDER = (
    "throughput_items_per_second",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "memory_peak_mb",
    "total_time_seconds",
)


def _format_messages(
    templates: np.ndarray, rng: np.random.Generator, hosts: np.ndarray
) -> list[str]:
    """Fill each template with fresh numbers, as real failures differ run to run."""
    out = []
    draws = rng.integers(0, 10_000, size=(len(templates), 5))
    for template, draw, host in zip(templates, draws, hosts, strict=True):
        out.append(
            template.format(
                host=host,
                n=int(draw[0]),
                k=9 + int(draw[1]) % 4,
                a=int(draw[2]) % 256,
                b=int(draw[3]) % 256,
                h=f"{int(draw[4]):04x}bafy",
                d=int(draw[1]) % 10,
            )
        )
    return out


def _worker_windows(
    world: World, t0_us: int, t1_us: int, dead_at_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per worker, the part of [t0, t1) in which it reports: cut short when dead, and shifted
    back by ``STALE_LAG`` when stale, so consecutive windows chain without gaps."""
    lo = np.full(len(world.workers), t0_us, dtype=np.int64)
    hi = np.full(len(world.workers), t1_us, dtype=np.int64)
    lag = STALE_LAG // timedelta(microseconds=1)
    for i, worker in enumerate(world.workers):
        if worker["worker_id"] == DEAD_WORKER:
            hi[i] = min(t1_us, dead_at_us)
        elif worker["worker_id"] in STALE_WORKERS:
            lo[i], hi[i] = t0_us - lag, t1_us - lag
    return lo, hi


def simulate(
    world: World,
    t0: datetime,
    t1: datetime,
    n: int,
    rng: np.random.Generator,
    dead_at: datetime,
    heartbeats_from: datetime | None = None,
) -> Batch:
    """About ``n`` results between ``t0`` and ``t1`` (fewer where a worker was down), and the
    heartbeats of the window after ``heartbeats_from`` (default: its last day)."""
    s = world.series
    start_us, t0_us, t1_us = _to_us(world.start), _to_us(t0), _to_us(t1)
    ts = np.sort(rng.integers(t0_us, t1_us, size=n))
    bench_ids = np.flatnonzero(s["kind"] == "benchmark")
    test_ids = np.flatnonzero(s["kind"] != "benchmark")
    is_bench = rng.random(n) < BENCHMARK_SHARE
    series = np.where(
        is_bench,
        bench_ids[rng.integers(len(bench_ids), size=n)],
        test_ids[rng.integers(len(test_ids), size=n)],
    )
    pool = s["pool"][series]
    worker = world.pools[pool, (rng.random(n) * world.pool_sizes[pool]).astype(np.int64)]
    lo, hi = _worker_windows(world, t0_us, t1_us, _to_us(dead_at))
    keep = (ts >= lo[worker]) & (ts < hi[worker])
    ts, is_bench, series, worker = ts[keep], is_bench[keep], series[keep], worker[keep]
    n = len(ts)

    run = (ts - start_us) // _RUN_US
    commit = _commit_index(run)
    hosts = np.array([w["worker_id"] for w in world.workers], dtype=object)
    status = np.full(n, "passed", dtype=object)
    message = np.full(n, None, dtype=object)

    requires = s["requires"][series]
    skipped = ~is_bench & (requires != None) & (requires != s["hardware"][series])  # noqa: E711
    status[skipped] = "skipped"
    message[skipped] = np.array(
        [f"Skipped: requires {r} hardware" for r in requires[skipped]], dtype=object
    )
    runnable = ~skipped
    failed = (
        runnable
        & ~is_bench
        & (
            (rng.random(n) < world.flaky_rate[series])
            | ((commit >= world.broken_from[series]) & (commit < world.broken_until[series]))
        )
    )
    status[failed] = "failed"
    message[failed] = _format_messages(
        world.fail_template[series[failed]], rng, hosts[worker[failed]]
    )
    bad = np.flatnonzero(hosts == BAD_WORKER)
    errored = runnable & np.isin(worker, bad) & (rng.random(n) < BAD_WORKER_ERROR_RATE)
    status[errored] = "error"
    templates = np.array(_BAD_WORKER_MESSAGES, dtype=object)[
        rng.integers(2, size=int(errored.sum()))
    ]
    message[errored] = _format_messages(templates, rng, hosts[worker[errored]])

    base = s["duration_s"][series]
    duration = base * np.exp(rng.normal(0.0, 0.15, size=n))
    duration[skipped] = 0.001
    duration[errored] *= rng.uniform(0.05, 0.6, size=int(errored.sum()))

    result_id = mix_ids(np.full(n, world.seed), s["series_id"][series], ts, worker)
    run_id = mix_ids(np.full(n, world.seed), run)

    # Benchmarks that ran: their metrics, moved by the injected changes.
    b = np.flatnonzero(is_bench & (status == "passed"))
    sb = series[b]
    speed = np.ones(len(b))
    memory = np.ones(len(b))
    for mask, change_commit, group, change in world.changes:
        hit = mask[sb] & (commit[b] >= change_commit)
        (speed if group == "speed" else memory)[hit] *= 1.0 + change
    cv = s["noise_cv"][sb]
    latency = s["latency_ms"][sb] / speed * np.exp(rng.normal(0.0, 1.0, size=len(b)) * cv)
    outlier = rng.random(len(b)) < 0.01
    latency[outlier] *= rng.uniform(1.3, 2.0, size=int(outlier.sum()))
    batch = s["batch_size"][sb].astype(float)
    params = s["params_m"][sb]
    bytes_per = np.array([PRECISION_BYTES[p] for p in s["precision"][sb]])
    p95 = latency * rng.uniform(1.05, 1.25, size=len(b))
    values = {
        "throughput_items_per_second": batch
        * 1000.0
        / latency
        * np.exp(rng.normal(0.0, 1.0, size=len(b)) * cv / 3),
        "latency_p50_ms": latency,
        "latency_p95_ms": p95,
        "latency_p99_ms": p95 * rng.uniform(1.03, 1.2, size=len(b)),
        "memory_peak_mb": (
            params * bytes_per * 1.15 + 40.0 * batch * np.sqrt(params / 100.0) + 350.0
        )
        * memory
        * np.exp(rng.normal(0.0, 0.005, size=len(b))),
        "total_time_seconds": latency * 110.0 / 1000.0,
    }
    duration[b] = values["total_time_seconds"] + base[b]

    k = len(_METRIC_ORDER)
    measurements = pa.table(
        {
            "result_id": np.tile(result_id[b], k),
            "series_id": np.tile(s["series_id"][sb], k),
            "ts": pa.array(np.tile(ts[b], k), pa.timestamp("us")),
            "metric": pa.DictionaryArray.from_arrays(
                np.repeat(np.arange(k, dtype=np.int32), len(b)), list(_METRIC_ORDER)
            ),
            "value": np.concatenate([values[m] for m in _METRIC_ORDER]),
        }
    )
    results = pa.table(
        {
            "result_id": result_id,
            "series_id": s["series_id"][series],
            "run_id": run_id,
            "worker_id": pa.array(hosts[worker], pa.string()).dictionary_encode(),
            "ts": pa.array(ts, pa.timestamp("us")),
            "status": pa.array(status, pa.string()).dictionary_encode(),
            "duration_s": duration,
            "message": pa.array(message, pa.string()),
        }
    )
    runs_in = np.unique(run)
    runs = pa.table(
        {
            "run_id": mix_ids(np.full(len(runs_in), world.seed), runs_in),
            "name": [f"ci #{1000 + int(r)}" for r in runs_in],
            "source": ["demo"] * len(runs_in),
            "started_at": pa.array(start_us + runs_in * _RUN_US, pa.timestamp("us")),
            "git_commit": [_commit_sha(world.seed, int(c)) for c in _commit_index(runs_in)],
            "git_branch": ["main"] * len(runs_in),
        }
    )
    return Batch(
        results=results,
        measurements=measurements,
        runs=runs,
        heartbeats=_heartbeats(
            world,
            t0_us,
            t1_us,
            _to_us(dead_at),
            rng,
            _to_us(heartbeats_from or t1 - HEARTBEAT_HISTORY),
        ),
    )


def _heartbeats(
    world: World,
    t0_us: int,
    t1_us: int,
    dead_at_us: int,
    rng: np.random.Generator,
    since_us: int,
) -> pa.Table | None:
    """Heartbeats with resource use after ``since_us`` within the window, on a 30 s grid."""
    step = int(HEARTBEAT_INTERVAL_S * _US)
    lag = STALE_LAG // timedelta(microseconds=1)
    lo, hi = _worker_windows(world, t0_us, t1_us, dead_at_us)
    s = world.series
    frames = []
    for i, worker in enumerate(world.workers):
        shift = lag if world.workers[i]["worker_id"] in STALE_WORKERS else 0
        first = max(lo[i], since_us - shift)
        grid = np.arange(-(-first // step) * step, hi[i], step, dtype=np.int64)
        if not len(grid):
            continue
        grid = np.minimum(grid + rng.integers(0, 2 * _US, size=len(grid)), hi[i] - 1)
        busy = rng.random(len(grid)) < 0.8
        if worker["worker_id"] in IDLE_WORKERS:
            busy &= grid < t1_us - 600 * _US
        gpu = worker["hardware"] in ("cuda", "rocm", "mps")
        my_pools = np.flatnonzero((world.pools == i).any(axis=1))
        candidates = world.labels[np.isin(s["pool"], my_pools)]
        task = np.where(busy, candidates[rng.integers(len(candidates), size=len(grid))], None)
        frames.append(
            pa.table(
                {
                    "worker_id": [worker["worker_id"]] * len(grid),
                    "ts": pa.array(grid, pa.timestamp("us")),
                    "cpu_percent": np.where(
                        busy, rng.uniform(55, 97, len(grid)), rng.uniform(1, 9, len(grid))
                    ),
                    "memory_percent": rng.uniform(28, 72, len(grid)),
                    "gpu_percent": pa.array(
                        np.where(busy, rng.uniform(60, 99, len(grid)), rng.uniform(0, 4, len(grid)))
                        if gpu
                        else np.full(len(grid), np.nan),
                        from_pandas=True,
                    ),
                    "power_watts": np.where(
                        busy,
                        rng.uniform(280, 650, len(grid))
                        if gpu
                        else rng.uniform(150, 320, len(grid)),
                        rng.uniform(60, 110, len(grid)),
                    ),
                    "current_task": pa.array(task, pa.string()),
                }
            )
        )
    return pa.concat_tables(frames) if frames else None


# --------------------------------------------------------------------------- writing

_TRUTH_DDL = """
CREATE TABLE IF NOT EXISTS demo_truth (
    kind VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    series_id BIGINT,
    metric VARCHAR,
    changed_at TIMESTAMP,
    git_commit VARCHAR,
    change DOUBLE,
    note VARCHAR
)"""
_TRUTH_COLUMNS = (
    "kind",
    "subject",
    "series_id",
    "metric",
    "changed_at",
    "git_commit",
    "change",
    "note",
)
CATCH_UP_LIMIT = timedelta(days=30)
CATCH_UP_EVERY = timedelta(seconds=10)
GENERATE_CHUNK = 500_000


def _catalog(world: World) -> Batch:
    s = world.series
    extra = [[("browser", b)] if b else [] for b in s["browser"]]
    series = pa.table(
        {
            "series_id": s["series_id"],
            **{
                k: pa.array(s[k], pa.string())
                for k in (
                    "kind",
                    "suite",
                    "name",
                    "model",
                    "model_family",
                    "modality",
                    "hardware",
                    "device",
                    "precision",
                )
            },
            "batch_size": pa.array(s["batch_size"], pa.int32()),
            "extra": pa.array(extra, pa.map_(pa.string(), pa.string())),
        }
    )
    workers = pa.Table.from_pylist(
        [{k: v for k, v in w.items() if not k.startswith("_")} for w in world.workers]
    )
    return Batch(series=series, workers=workers)


def _window(now: datetime, days: float) -> tuple[datetime, datetime, int]:
    start = now - timedelta(days=days)
    commits = int(_commit_index(np.array([(now - start) // RUN_EVERY]))[0])
    return start, now, commits


def generate(
    path: str | os.PathLike[str],
    results: int = DEFAULT_RESULTS,
    days: float = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    live: bool = False,
) -> dict[str, int]:
    """Write a new demo database at ``path``, replacing only an earlier demo database.

    The file is built under a temporary name and renamed into place, so readers never see half
    of it. ``live`` marks it for ``catch_up``. Returns the rows written per table.
    """
    if results < 1 or days <= 0:
        raise ValueError("a demo needs at least 1 result and a positive number of days")
    path = Path(path).expanduser().resolve()
    if store_mod.is_open(path) or path.exists():
        info = store_mod.inspect_file(path)
        if "demo_seed" not in info.meta and info.results > 0:
            raise store_mod.StoreError(
                f"{path} already holds {info.results:,} results that are not demo data; the demo "
                "generator only replaces an earlier demo or an empty store. Choose another path "
                "with --db, or move the file away."
            )
    now = _naive_utc(now or datetime.now(UTC)).replace(microsecond=0)
    start, now, commits = _window(now, days)
    world = build_world(seed, start, commits)
    added: Counter[str] = Counter()
    slices = max(1, -(-results // GENERATE_CHUNK))
    edges = [start + (now - start) * k / slices for k in range(slices + 1)]

    def fill(store: store_mod.Store) -> None:
        # The file is built under a temporary name and renamed into place only when complete,
        # so each time slice (at most GENERATE_CHUNK results) can commit on its own: memory
        # stays bounded by a slice, not by the whole demo.
        with store.transaction() as cur:
            added.update(append_in(cur, _catalog(world)))
        for k in range(slices):
            share = results // slices + (1 if k < results % slices else 0)
            batch = simulate(
                world,
                edges[k],
                edges[k + 1],
                share,
                np.random.default_rng([seed, 2, k]),
                dead_at=now - DEAD_AGO,
                heartbeats_from=now - HEARTBEAT_HISTORY,
            )
            with store.transaction() as cur:
                added.update(append_in(cur, batch))
            store.settle()  # each slice's rollups on their own: bounded memory again
        with store.transaction() as cur:
            cur.execute(_TRUTH_DDL)
            truth = pa.Table.from_pylist(
                [{k: row.get(k) for k in _TRUTH_COLUMNS} for row in world.truth]
            )
            cur.register("_truth", truth)
            cur.execute("INSERT INTO demo_truth BY NAME SELECT * FROM _truth")
            cur.unregister("_truth")
            store.set_meta(
                cur,
                {
                    "demo_seed": seed,
                    "demo_start": start.isoformat(),
                    "demo_commits": commits,
                    "demo_until": now.isoformat(),
                    "demo_dead_at": (now - DEAD_AGO).isoformat(),
                    "demo_rate_per_s": results / (days * 86400.0),
                    "demo_live": int(live),
                },
            )

    store_mod.create_file(path, fill)
    added["demo_truth"] = len(world.truth)
    return dict(added)


_worlds: dict[tuple[int, str, int], World] = {}


def catch_up(store: store_mod.Store, now: datetime | None = None) -> int:
    """Extend a live demo to ``now`` so it keeps looking alive; return the results added.

    Does nothing for other databases, or when the last extension is under ``CATCH_UP_EVERY``
    old (each write refreshes every cached answer). The write lock and a re-read of
    ``demo_until`` inside the transaction keep two sessions from extending the same window.
    """
    now = _naive_utc(now or datetime.now(UTC)).replace(microsecond=0)
    meta = store.meta()
    if meta.get("demo_live") != "1" or store.read_only:
        return 0
    if now - datetime.fromisoformat(meta["demo_until"]) < CATCH_UP_EVERY:
        return 0
    seed, commits = int(meta["demo_seed"]), int(meta["demo_commits"])
    key = (seed, meta["demo_start"], commits)
    if key not in _worlds:
        _worlds[key] = build_world(seed, datetime.fromisoformat(meta["demo_start"]), commits)
    world = _worlds[key]
    with store.transaction() as cur:
        until = datetime.fromisoformat(
            cur.execute("SELECT value FROM dtd_meta WHERE key = 'demo_until'").fetchall()[0][0]
        )
        t0 = max(until, now - CATCH_UP_LIMIT)
        if now - t0 < CATCH_UP_EVERY:
            return 0
        rng = np.random.default_rng([seed, 3, _to_us(t0)])
        n = int(rng.poisson(float(meta["demo_rate_per_s"]) * (now - t0).total_seconds()))
        batch = simulate(
            world, t0, now, n, rng, dead_at=datetime.fromisoformat(meta["demo_dead_at"])
        )
        added = append_in(cur, batch)
        store.set_meta(cur, {"demo_until": now.isoformat()})
    return added.get("results", 0)
