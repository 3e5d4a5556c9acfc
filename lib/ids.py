"""Stable 64-bit ids: the same identity always gets the same id, so writing twice adds nothing."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_id(*parts: object) -> int:
    """A signed 64-bit id from the parts' text (None and '' differ; order matters)."""
    text = "\x1f".join("\x00" if part is None else str(part) for part in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix_ids(*columns: np.ndarray) -> np.ndarray:
    """Vectorised ids for many rows at once (splitmix64 over integer columns), as int64."""
    with np.errstate(over="ignore"):
        state = np.zeros(len(columns[0]), dtype=np.uint64)
        for column in columns:
            state = state ^ column.astype(np.int64).view(np.uint64)
            state = state + _GOLDEN
            state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            state = state ^ (state >> np.uint64(31))
    return state.view(np.int64)


def series_id(
    kind: str,
    suite: str | None,
    name: str,
    model: str | None,
    hardware: str | None,
    device: str | None,
    batch_size: int | None,
    precision: str | None,
    extra: dict[str, str] | None = None,
    file: str | None = None,
) -> int:
    """The identity of a test or benchmark configuration over time (Conbench's "fingerprint").

    ``file`` is the file or testsuite a report puts a test in (tests of the same name in two
    files are two tests). Without one the id is what it was before files were part of the
    identity, so every series stored then keeps its id."""
    extra_text = ",".join(f"{k}={v}" for k, v in sorted((extra or {}).items()))
    parts = (kind, suite, name, model, hardware, device, batch_size, precision, extra_text)
    return stable_id(*parts) if file is None else stable_id(*parts, file)
