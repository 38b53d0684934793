"""The report's analysis on synthetic series with known shapes."""

from __future__ import annotations

import numpy as np
import pytest

from pooltop.judge import JudgeThresholds, LeakLevel
from pooltop.model import U32, Pool, Totals
from pooltop.report.analysis import analyse

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)
T = 120  # points, one a minute: two hours
SECONDS = np.arange(T, dtype=float) * 60.0
rng = np.random.default_rng(7)


def shapes() -> dict[str, np.ndarray]:
    i = np.arange(T, dtype=float)
    return {
        "Leak": 10e6 + 40_000 * i + rng.normal(0, 2_000, T),  # +40 KB a minute, some noise
        "Step": np.where(i < 60, 5e6, 9e6),  # one allocation burst, then flat
        "Saw ": 8e6 + np.where(i % 4 < 2, 3e6, 0.0),  # alloc/free cycles
        "Warm": 2e6 + 6e6 * (1 - np.exp(-i / 10)),  # a cache warming up to a plateau
        "Flat": np.full(T, 3e6),
        "Shrk": 9e6 - 20_000 * i,
    }


def run(series: dict[str, np.ndarray], **kw):  # type: ignore[no-untyped-def]
    keys = [(tag, NP) for tag in series]
    bytes_ = np.column_stack(list(series.values()))
    diff = bytes_ / 64
    cols = {"bytes": bytes_, "diff": diff, "allocs": np.zeros_like(bytes_), "frees": np.zeros_like(bytes_)}
    return {a.tag: a for a in analyse(SECONDS, keys, cols, **kw)}


def test_each_shape_gets_the_right_verdict() -> None:
    got = run(shapes())
    assert got["Leak"].verdict == LeakLevel.LEAK
    for tag in ("Step", "Saw ", "Warm", "Flat", "Shrk"):
        assert got[tag].verdict < LeakLevel.SUSPECT, (tag, got[tag])
    assert got["Flat"].verdict == LeakLevel.STABLE and got["Shrk"].verdict == LeakLevel.STABLE
    assert got["Warm"].levels_off


def test_leak_figures() -> None:
    leak = run(shapes(), totals=[Totals(memory_available=8 * 1024**3)])["Leak"]
    assert leak.slope_bytes_per_s == pytest.approx(40_000 / 60, rel=0.05)
    assert leak.projected_bytes_per_day == pytest.approx(40_000 * 60 * 24, rel=0.05)
    assert leak.growth_bytes == pytest.approx(40_000 * (T - 1), rel=0.05)
    assert leak.r2 > 0.95 and leak.monotony > 0.75
    assert leak.exhaustion_s == pytest.approx(8 * 1024**3 / (40_000 / 60), rel=0.05)
    assert leak.reasons


def test_most_serious_first() -> None:
    series = shapes()
    series["Big "] = 1e6 + 400_000 * np.arange(T, dtype=float)
    order = [
        a.tag
        for a in analyse(
            SECONDS,
            [(t, NP) for t in series],
            {"bytes": np.column_stack(list(series.values())), "diff": np.column_stack(list(series.values()))},
        )
    ]
    assert order[:2] == ["Big ", "Leak"]


def test_paged_pool_runs_out_of_commit_not_ram() -> None:
    i = np.arange(T, dtype=float)
    keys = [("Pgd ", PG)]
    b = (1e6 + 10_000 * i)[:, None]
    res = analyse(
        SECONDS,
        keys,
        {"bytes": b, "diff": b},
        totals=[Totals(memory_available=10**12, commit=900_000_000, commit_limit=1_000_000_000)],
    )
    assert res[0].exhaustion_s == pytest.approx(100_000_000 / (10_000 / 60), rel=0.05)


def test_allocation_rates_survive_a_32_bit_wrap() -> None:
    i = np.arange(T, dtype=float)
    allocs = np.mod(U32 - 5_000 + 100 * i, U32)  # wraps a few minutes in
    frees = np.mod(U32 - 5_000 + 90 * i, U32)
    b = (5e6 + 10_000 * i)[:, None]  # 10 outstanding 1 KB allocations more a minute
    res = analyse(
        SECONDS,
        [("Wrap", NP)],
        {"bytes": b, "diff": (allocs - frees)[:, None], "allocs": allocs[:, None], "frees": frees[:, None]},
    )
    assert allocs.min() < 5_000 < allocs.max()  # the fixture really wraps
    assert res[0].alloc_rate == pytest.approx(100 / 60)
    assert res[0].free_rate == pytest.approx(90 / 60)
    assert res[0].verdict == LeakLevel.LEAK


def test_thresholds_change_the_verdict() -> None:
    small = {"Smal": 1e6 + 1_000 * np.arange(T, dtype=float)}  # 119 KB over two hours
    # The judge's default leak growth is 64 KiB since issue 14 (the report's own 256 KiB is gone).
    assert run(small, thresholds=JudgeThresholds(leak_min_growth_bytes=256 * 1024))["Smal"].verdict \
        == LeakLevel.SUSPECT
    assert (
        run(small, thresholds=JudgeThresholds(leak_min_growth_bytes=64 * 1024))["Smal"].verdict
        == LeakLevel.LEAK
    )


def test_counters_that_come_and_go() -> None:
    series = shapes()
    late = series["Leak"].copy()
    late[:40] = np.nan  # appeared a third of the way in
    gone = series["Flat"].copy()
    gone[90:] = np.nan
    got = run({"Late": late, "Gone": gone})
    assert got["Late"].verdict == LeakLevel.LEAK and got["Late"].points == T - 40
    assert got["Gone"].verdict == LeakLevel.STABLE


def test_too_few_points_is_stable() -> None:
    keys = [("Tiny", NP)]
    b = np.array([[1.0], [1e7], [2e7]])
    assert analyse(np.arange(3.0), keys, {"bytes": b, "diff": b})[0].verdict == LeakLevel.STABLE


def test_json_is_plain() -> None:
    import json

    doc = run(shapes())["Leak"].to_json()
    assert doc["verdict"] == "leak" and doc["pool"] == "nonpaged"
    json.dumps(doc, allow_nan=False)
