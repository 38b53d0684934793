"""Leak analysis over a recording or a snapshot series: the leak judge's verdict per counter, and the
figures a report prints beside it (pure; no I/O).

The verdict and its reasons are the judge's (pooltop.judge), over the series' last segment (a
pause longer than the judge's gap_intervals splits it; the gaps are reported): the same samples
get the same verdict in the live view, the report and the exporter. Beside it: Theil-Sen slopes of
bytes and of outstanding allocations, the share of intervals that grew, how well a straight line
explains the series, growth since the start, projected growth per day and, at that rate, time
until memory (or commit) runs out, which reclaimable memory never gets (the kernel frees it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.judge import (
    JudgeThresholds,
    LeakLevel,
    judge_matrix,
    reclaimable_rows,
    robust_r2,
    segments,
    theil_sen_slopes,
    trend_rows,
    under_memory_pressure,
)
from pooltop.model import U32, Pool, Totals
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import candidate_to_json

FloatArray = npt.NDArray[np.float64]

DAY = 86400.0
DEFAULT_THRESHOLDS = JudgeThresholds()


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
    reclaimable: bool = False  # the kernel frees it under memory pressure (Linux reclaim_account)

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


def analyse(
    seconds: FloatArray,
    keys: Sequence[tuple[str, int]],
    columns: Mapping[str, FloatArray],
    totals: Sequence[Totals] = (),
    thresholds: JudgeThresholds = DEFAULT_THRESHOLDS,
    owners: Mapping[tuple[str, int], Sequence[OwnerCandidate]] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    counter_bits: int = 32,
    has_alloc_counts: bool = True,
) -> list[CounterAnalysis]:
    """Analyse every counter; most serious first (verdict, then projected growth per day).

    `columns` holds bytes, diff and optionally allocs, frees and reclaimable (1/0, the source's
    column); only the last segment after a gap is judged (see gaps())."""
    th = thresholds
    t_count, n = columns["bytes"].shape
    if n == 0:
        return []
    tags = [k[0] for k in keys]
    recl_col = columns.get("reclaimable")
    reclaimable = reclaimable_rows(tags, None if recl_col is None or not len(recl_col)
                                   else np.nan_to_num(recl_col[-1]).astype(np.int64))
    start = judged_start(seconds, th)
    seconds, columns = seconds[start:], {k: v[start:] for k, v in columns.items()}
    totals = totals[start:] if len(totals) == t_count else totals
    bytes_ = columns["bytes"]
    judged = judge_matrix(seconds, bytes_, reclaimable=reclaimable,
                          under_pressure=_under_pressure(totals), thresholds=th)
    ev = judged.evidence
    picked = trend_rows(seconds, th.trend_points)
    t_p = seconds[picked]
    slope = theil_sen_slopes(t_p, bytes_[picked])
    slope_diff = theil_sen_slopes(t_p, columns["diff"][picked])
    r2 = robust_r2(t_p, bytes_[picked], slope)
    levels_off = ev.candidate & ~judged.criteria.still_growing
    growth = np.asarray(ev.growth)

    alloc_rate = free_rate = None
    if has_alloc_counts and "allocs" in columns and len(seconds) >= 2:
        span = seconds[-1] - seconds[0]
        if span > 0:

            def rate(col: FloatArray) -> FloatArray:
                out: FloatArray = _counted(col, counter_bits == 32) / span
                return out

            alloc_rate, free_rate = rate(columns["allocs"]), rate(columns["frees"])

    last_totals = totals[-1] if totals else Totals()
    start_vals = np.nan_to_num(ev.first)
    end_vals = np.nan_to_num(ev.last)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where((start_vals != 0), growth / np.where(start_vals != 0, start_vals, 1.0), np.nan)
    results: list[CounterAnalysis] = []
    for i, (tag, pool_value) in enumerate(keys):
        pool = Pool(pool_value)
        verdict = judged.level(i)
        s = float(slope[i])
        runs_out = verdict >= LeakLevel.SUSPECT and not reclaimable[i]
        results.append(
            CounterAnalysis(
                tag=tag,
                pool=pool,
                verdict=verdict,
                slope_bytes_per_s=s,
                slope_diff_per_s=float(slope_diff[i]),
                grew_share=float(ev.grew_share[i]),
                monotony=float(ev.monotony[i]) if ev.ups[i] + ev.downs[i] else 0.0,
                r2=float(r2[i]),
                growth_bytes=float(growth[i]),
                growth_share=None if np.isnan(share[i]) else float(share[i]),
                start_bytes=float(start_vals[i]),
                end_bytes=float(end_vals[i]),
                points=int(ev.samples[i]),
                levels_off=bool(levels_off[i]),
                projected_bytes_per_day=s * DAY,
                exhaustion_s=_exhaustion(pool, s, last_totals) if runs_out else None,
                alloc_rate=float(alloc_rate[i]) if alloc_rate is not None else None,
                free_rate=float(free_rate[i]) if free_rate is not None else None,
                owners=tuple((owners or {}).get((tag, pool_value), ())),
                aliases=tuple((aliases or {}).get(tag, ())),
                reasons=judged.reasons(i),
                reclaimable=bool(reclaimable[i]),
            )
        )
    results.sort(key=lambda a: (-int(a.verdict), -a.projected_bytes_per_day, a.tag))
    return results


def judged_start(seconds: FloatArray, thresholds: JudgeThresholds) -> int:
    """The first sample the judge looks at: the start of the last segment after a gap."""
    parts = segments(np.asarray(seconds, dtype=np.float64), thresholds.gap_intervals)
    return parts[-1][0] if parts else 0


def gaps(seconds: FloatArray, thresholds: JudgeThresholds) -> list[tuple[int, float]]:
    """(sample index after the gap, seconds of the pause) of every gap in the series: no slope,
    change or verdict is computed across one."""
    times = np.asarray(seconds, dtype=np.float64)
    return [(a, float(times[a] - times[a - 1])) for a, _ in segments(times, thresholds.gap_intervals)[1:]]


def _under_pressure(totals: Sequence[Totals]) -> bool:
    """Memory pressure over the judged samples (see judge.under_memory_pressure)."""
    if len(totals) < 2:
        return False
    available = np.array([np.nan if t.memory_available is None else t.memory_available for t in totals],
                         dtype=np.float64)
    stall = np.array([np.nan if t.memory_stall_us is None else t.memory_stall_us for t in totals],
                     dtype=np.float64)
    return under_memory_pressure(available, None if np.all(np.isnan(stall)) else stall)


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


def verdict_counts(results: Sequence[CounterAnalysis]) -> dict[str, int]:
    counts = {lvl.label: 0 for lvl in reversed(LeakLevel)}
    for r in results:
        counts[r.verdict.label] += 1
    return counts
