"""Leak analysis over a recording: robust trends per counter and a verdict (pure; no I/O).

For each counter: Theil-Sen slope of bytes and of outstanding allocations, the share of intervals
that grew, how well a straight line explains the series (R^2 of the robust line), growth since
start, projected growth per day and, at that rate, time until memory (or commit) runs out.

What a leak looks like here: the series rises in most intervals, rarely falls, a line fits it
well, it has grown by a meaningful amount, and it is still growing at the end. A cache that warms
up and levels off fails the last test; alloc/free saw-tooth fails the first two; a single step
fails "most intervals" and usually the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.model import U32, Pool, Totals
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import candidate_to_json
from pooltop.tracking import LeakLevel, theil_sen_slopes

FloatArray = npt.NDArray[np.float64]

DAY = 86400.0


@dataclass(frozen=True)
class ReportThresholds:
    """Every number behind a verdict; `pooltop report` lets users change them."""

    min_points: int = 5
    leak_min_growth_bytes: int = 256 * 1024
    leak_min_growth_share: float = 0.02  # of the starting size, if that is larger
    leak_min_r2: float = 0.8
    leak_min_monotony: float = 0.75  # ups / (ups + downs)
    leak_min_grew_share: float = 0.2  # intervals that grew / all intervals
    suspect_min_r2: float = 0.5
    suspect_min_monotony: float = 0.6
    levelling_ratio: float = 0.25  # slope of the last third below this share of the overall slope


@dataclass(frozen=True)
class CounterAnalysis:
    tag: str
    pool: Pool
    verdict: LeakLevel
    slope_bytes_per_s: float
    slope_diff_per_s: float
    grew_share: float
    monotony: float
    r2: float
    growth_bytes: float
    growth_share: float | None  # relative to the first value; None when it started at 0
    start_bytes: float
    end_bytes: float
    points: int
    levels_off: bool
    projected_bytes_per_day: float
    exhaustion_s: float | None = None  # at this rate, until available memory / commit runs out
    alloc_rate: float | None = None  # allocations per second (wrap-safe), where the OS counts them
    free_rate: float | None = None
    owners: tuple[OwnerCandidate, ...] = ()
    aliases: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["pool"] = self.pool.label
        out["verdict"] = self.verdict.label
        out["owners"] = [candidate_to_json(o) for o in self.owners]
        out["aliases"] = list(self.aliases)
        out["reasons"] = list(self.reasons)
        for k, v in list(out.items()):
            if isinstance(v, float):
                out[k] = None if not math.isfinite(v) else round(v, 6)
        return out


def _counted(values: FloatArray, wrap32: bool) -> FloatArray:
    """How much a cumulative counter (NaN = absent) rose over the series; 32-bit counters wrap,
    so each step is taken mod 2^32."""
    steps = np.diff(values, axis=0)
    if wrap32:
        steps = np.mod(steps, U32)
    out: FloatArray = np.nansum(steps, axis=0)
    return out


def _nan_median(values: FloatArray) -> FloatArray:
    """Median of each column ignoring NaN (np.nanmedian loops per column in Python)."""
    rows = np.sort(values.T, axis=1)  # NaN sorts last
    valid = (~np.isnan(rows)).sum(axis=1)
    idx = np.arange(rows.shape[0])
    lo = np.maximum(valid - 1, 0) // 2
    hi = np.minimum(valid // 2, rows.shape[1] - 1)
    out: FloatArray = np.where(valid > 0, (rows[idx, lo] + rows[idx, hi]) / 2, np.nan)
    return out


def _first_last(values: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    valid = ~np.isnan(values)
    t_count, n = values.shape
    first_row = np.argmax(valid, axis=0)
    last_row = t_count - 1 - np.argmax(valid[::-1], axis=0)
    cols = np.arange(n)
    return values[first_row, cols], values[last_row, cols], valid.sum(axis=0)


def _r2(times: FloatArray, values: FloatArray, slope: FloatArray) -> FloatArray:
    """How much of the variance the robust line explains (0 for a flat or unexplained series)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            intercept = _nan_median(values - slope[None, :] * times[:, None])
            fitted = intercept[None, :] + slope[None, :] * times[:, None]
            ss_res = np.nansum((values - fitted) ** 2, axis=0)
            mean = np.nanmean(values, axis=0)
            ss_tot = np.nansum((values - mean[None, :]) ** 2, axis=0)
            r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
    out: FloatArray = np.clip(np.nan_to_num(r2, nan=0.0), -1.0, 1.0)
    return out


def analyse(
    seconds: FloatArray,
    keys: Sequence[tuple[str, int]],
    columns: Mapping[str, FloatArray],
    totals: Sequence[Totals] = (),
    thresholds: ReportThresholds = ReportThresholds(),
    owners: Mapping[tuple[str, int], Sequence[OwnerCandidate]] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    counter_bits: int = 32,
    has_alloc_counts: bool = True,
) -> list[CounterAnalysis]:
    """Analyse every counter; most serious first (verdict, then projected growth per day)."""
    th = thresholds
    bytes_ = columns["bytes"]
    diff = columns["diff"]
    t_count, n = bytes_.shape
    if n == 0:
        return []
    first, last, points = _first_last(bytes_)
    growth = np.where(points > 0, last - first, 0.0)
    slope = theil_sen_slopes(seconds, bytes_, max_points=40)
    slope_diff = theil_sen_slopes(seconds, diff, max_points=40)
    steps = np.diff(bytes_, axis=0)
    with np.errstate(invalid="ignore"):
        ups = (steps > 0).sum(axis=0)
        downs = (steps < 0).sum(axis=0)
    intervals = np.maximum(points - 1, 1)
    grew_share = ups / intervals
    monotony = np.where(ups + downs > 0, ups / np.maximum(ups + downs, 1), 0.0)
    r2 = _r2(seconds, bytes_, slope)

    # Still growing at the end? Compare the slope over the last third with the overall one.
    third = max(t_count // 3, 2)
    tail_slope = theil_sen_slopes(seconds[-third:], bytes_[-third:], max_points=20) if t_count >= 6 else slope
    levels_off = (slope > 0) & (tail_slope < th.levelling_ratio * slope)

    start_abs = np.where(np.isnan(first), 0.0, np.abs(first))
    min_growth = np.maximum(th.leak_min_growth_bytes, th.leak_min_growth_share * start_abs)
    enough = points >= th.min_points
    rising = enough & (slope > 0) & (growth > 0)
    watch = rising & (ups >= 2) & (monotony > 0.5)
    suspect = (
        watch & (ups >= 3) & (monotony >= th.suspect_min_monotony) & (r2 >= th.suspect_min_r2) & ~levels_off
    )
    leak = (
        suspect
        & (ups >= 5)
        & (monotony >= th.leak_min_monotony)
        & (r2 >= th.leak_min_r2)
        & (grew_share >= th.leak_min_grew_share)
        & (growth >= min_growth)
    )

    alloc_rate = free_rate = None
    if has_alloc_counts and "allocs" in columns and t_count >= 2:
        span = seconds[-1] - seconds[0]
        if span > 0:

            def rate(col: FloatArray) -> FloatArray:
                out: FloatArray = _counted(col, counter_bits == 32) / span
                return out

            alloc_rate, free_rate = rate(columns["allocs"]), rate(columns["frees"])

    last_totals = totals[-1] if totals else Totals()
    start_vals = np.nan_to_num(first)
    end_vals = np.nan_to_num(last)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where((start_vals != 0), growth / np.where(start_vals != 0, start_vals, 1.0), np.nan)
    results: list[CounterAnalysis] = []
    for i, (tag, pool_value) in enumerate(keys):
        pool = Pool(pool_value)
        verdict = (
            LeakLevel.LEAK
            if leak[i]
            else LeakLevel.SUSPECT
            if suspect[i]
            else LeakLevel.WATCH
            if watch[i]
            else LeakLevel.STABLE
        )
        s = float(slope[i])
        reasons = _reasons(
            verdict,
            bool(levels_off[i]),
            float(monotony[i]),
            float(r2[i]),
            float(grew_share[i]),
            float(growth[i]),
            float(min_growth[i]),
            th,
        )
        results.append(
            CounterAnalysis(
                tag=tag,
                pool=pool,
                verdict=verdict,
                slope_bytes_per_s=s,
                slope_diff_per_s=float(slope_diff[i]),
                grew_share=float(grew_share[i]),
                monotony=float(monotony[i]),
                r2=float(r2[i]),
                growth_bytes=float(growth[i]),
                growth_share=None if np.isnan(share[i]) else float(share[i]),
                start_bytes=float(start_vals[i]),
                end_bytes=float(end_vals[i]),
                points=int(points[i]),
                levels_off=bool(levels_off[i]),
                projected_bytes_per_day=s * DAY,
                exhaustion_s=_exhaustion(pool, s, last_totals) if verdict >= LeakLevel.SUSPECT else None,
                alloc_rate=float(alloc_rate[i]) if alloc_rate is not None else None,
                free_rate=float(free_rate[i]) if free_rate is not None else None,
                owners=tuple((owners or {}).get((tag, pool_value), ())),
                aliases=tuple((aliases or {}).get(tag, ())),
                reasons=reasons,
            )
        )
    results.sort(key=lambda a: (-int(a.verdict), -a.projected_bytes_per_day, a.tag))
    return results


def _exhaustion(pool: Pool, slope: float, totals: Totals) -> float | None:
    """Seconds until the resource this pool draws on runs out at `slope` bytes/s."""
    if slope <= 0:
        return None
    if pool is Pool.PAGED and totals.commit is not None and totals.commit_limit is not None:
        # Paged pool is backed by the page file: it ends when commit reaches its limit.
        room = totals.commit_limit - totals.commit
    elif totals.memory_available is not None:
        # Nonpaged pool and slab live in RAM.
        room = totals.memory_available
    else:
        return None
    return max(room, 0) / slope


def _reasons(
    verdict: LeakLevel,
    levels_off: bool,
    monotony: float,
    r2: float,
    grew_share: float,
    growth: float,
    min_growth: float,
    th: ReportThresholds,
) -> tuple[str, ...]:
    out = []
    if verdict >= LeakLevel.WATCH:
        out.append(f"grew in {grew_share:.0%} of intervals, {monotony:.0%} of its changes were up")
        out.append(f"a straight line explains {max(r2, 0):.0%} of it")
    if levels_off:
        out.append("levels off at the end (a cache warming up?)")
    if verdict == LeakLevel.SUSPECT and growth < min_growth:
        out.append(f"grew less than the {min_growth / 1024:.0f} KiB a leak verdict needs")
    return tuple(out)


def verdict_counts(results: Sequence[CounterAnalysis]) -> dict[str, int]:
    counts = {lvl.label: 0 for lvl in reversed(LeakLevel)}
    for r in results:
        counts[r.verdict.label] += 1
    return counts
