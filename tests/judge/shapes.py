"""Synthetic counter series of the shapes issue 14 names, one sample a second, in bytes.

Sizes follow real slab caches on a small Linux machine: a filp-like cache of ~5 MiB whose objects
are 256 bytes, with churn noise of a few dozen objects per sample.
"""

from __future__ import annotations

import numpy as np

OBJ = 256
BASE = 5 * 1024 * 1024


def seconds(n: int) -> np.ndarray:
    return np.arange(float(n))


def noise(n: int, seed: int, objects: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(0.0, objects, n)) * OBJ


def steady_leak(n: int, objects_per_s: float, seed: int = 1, start: int = 0) -> np.ndarray:
    held = np.floor(np.maximum(np.arange(n) - start, 0) * objects_per_s) * OBJ
    return BASE + held + noise(n, seed)


def step(n: int, at: int, objects: int = 5000, seed: int = 2) -> np.ndarray:
    """A one-off allocation of thousands of objects, then held."""
    return BASE + np.where(np.arange(n) >= at, objects * OBJ, 0) + noise(n, seed)


def warm_up(n: int, seconds_: int = 60, objects: int = 40_000, seed: int = 3) -> np.ndarray:
    """A cache filling as a directory walk touches it, then levelling off."""
    t = np.arange(n)
    return BASE + np.floor(objects * (1 - np.exp(-t / (seconds_ / 3)))) * OBJ + noise(n, seed)


def saw_tooth(n: int, period: int = 10, objects: int = 400, seed: int = 4) -> np.ndarray:
    """Allocations that build up and are freed in one go, again and again."""
    return BASE + (np.arange(n) % period) * (objects // period) * OBJ + noise(n, seed)


def burst_freed(n: int, at: int, length: int = 30, objects: int = 20_000, seed: int = 5) -> np.ndarray:
    t = np.arange(n)
    up = np.clip((t - at) / length, 0, 1) * objects
    down = np.clip((t - at - length) / 5, 0, 1) * objects
    return BASE + np.floor(up - down) * OBJ + noise(n, seed)


def install(n: int, at: int, length: int = 50, objects: int = 30_000, kept: float = 0.4, seed: int = 6
            ) -> np.ndarray:
    """A package install: growth while it runs, most of it freed when it ends, some kept."""
    t = np.arange(n)
    up = np.clip((t - at) / length, 0, 1) * objects
    down = np.clip((t - at - length) / 10, 0, 1) * objects * (1 - kept)
    return BASE + np.floor(up - down) * OBJ + noise(n, seed)
