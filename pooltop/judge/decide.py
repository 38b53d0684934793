"""Decide: levels from evidence and thresholds. Every criterion is one named boolean column, so the
words (words.py) can say which one held a counter back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.judge.evidence import Evidence
from pooltop.judge.thresholds import JudgeThresholds, LeakLevel
from pooltop.judge.trend import BoolArray, FloatArray, IndexArray


@dataclass(frozen=True, eq=False)
class Criteria:
    """Which test each row passes (row-aligned booleans)."""

    enough_samples: BoolArray
    growing: BoolArray  # more ups than downs, net growth, positive robust slope
    long_enough_to_suspect: BoolArray
    long_enough_to_leak: BoolArray
    suspect_growth: BoolArray
    leak_growth: BoolArray
    suspect_steady: BoolArray  # monotony and rising pairs
    leak_steady: BoolArray
    still_growing: BoolArray  # the last third added its share
    #: growing steadily lately: over the last suspect_window_s (each of its thirds added its share,
    #: its values mostly rising), or over the whole series (its last two thirds did, and so on);
    #: the first sees a leak that just started in a row watched for long, the second a slow leak
    #: under noise larger than what it adds in a suspect window
    lately_sustained: BoolArray
    sustained: BoolArray  # every third did
    capped: BoolArray  # reclaimable and no memory pressure: at most watch
    exempt: BoolArray  # not judged at all (pooltop's own process)
    min_leak_growth: FloatArray  # bytes a leak needs, per row


def criteria(ev: Evidence, th: JudgeThresholds, under_pressure: bool,
             exempt: BoolArray | None = None) -> Criteria:
    """Every test per row. Only growing rows can pass any beyond the first two, so the rest are
    computed for those alone (a few percent of the rows at 50,000 counters) and left False elsewhere."""
    n = len(ev)
    growing = ev.candidate & ev.rising
    rows = np.flatnonzero(growing)
    growth = ev.growth[rows]
    first = ev.first[rows]
    share = th.min_third_share * growth
    min_leak = np.maximum(float(th.leak_min_growth_bytes),
                          th.leak_min_growth_share * np.where(np.isnan(first), 0.0, np.abs(first)))
    monotony = ev.ups[rows] / np.maximum(ev.ups[rows] + ev.downs[rows], 1)
    thirds = ev.thirds[rows]
    span = ev.span_s[rows]

    def spread(values: npt.NDArray[np.generic], dtype: type = np.bool_) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = np.zeros(n, dtype=dtype)
        out[rows] = values
        return out

    # A counter sampled every second has samples spanning a hair under the window the live view
    # keeps; allow one part in a thousand.
    return Criteria(
        enough_samples=ev.samples >= th.min_samples,
        growing=growing,
        long_enough_to_suspect=spread(span >= th.suspect_window_s * 0.999),
        long_enough_to_leak=spread(span >= th.leak_window_s * 0.999),
        suspect_growth=spread((ev.recent_growth[rows] >= th.suspect_min_growth_bytes)
                              | (growth >= th.suspect_min_growth_bytes)),
        leak_growth=spread(growth >= min_leak),
        suspect_steady=spread(monotony >= th.suspect_monotony),
        leak_steady=spread((monotony >= th.leak_monotony)
                           & (ev.rises[rows] >= th.leak_rising_share * np.maximum(ev.pairs[rows], 1))),
        still_growing=spread(thirds[:, 2] >= share),
        lately_sustained=spread(_lately(ev, rows, th)),
        sustained=spread(_each(thirds, share)),
        capped=ev.reclaimable & (not under_pressure),
        exempt=np.zeros(n, dtype=np.bool_) if exempt is None else np.asarray(exempt, dtype=np.bool_),
        min_leak_growth=spread(min_leak, np.float64),
    )


def _lately(ev: Evidence, rows: IndexArray, th: JudgeThresholds) -> BoolArray:
    recent = ev.recent_growth[rows]
    recent_ok = ((recent >= th.suspect_min_growth_bytes)
                 & _each(ev.recent_thirds[rows], th.min_third_share * recent)
                 & (ev.recent_rises[rows] >= th.suspect_rising_share * np.maximum(ev.recent_pairs[rows], 1)))
    growth = ev.growth[rows]
    whole_ok = ((growth >= th.suspect_min_growth_bytes)
                & _each(ev.thirds[rows, 1:], th.min_third_share * growth)
                & (ev.rises[rows] >= th.suspect_rising_share * np.maximum(ev.pairs[rows], 1)))
    out: BoolArray = recent_ok | whole_ok
    return out


def _each(parts: FloatArray, floor: FloatArray) -> BoolArray:
    """Every column of `parts` (rows x a few) reaches the row's floor (np.all is slower on 2-3 columns)."""
    out: BoolArray = parts[:, 0] >= floor
    for k in range(1, parts.shape[1]):
        out &= parts[:, k] >= floor
    return out


def decide(c: Criteria) -> npt.NDArray[np.int8]:
    """watch: growing at all; suspect: for long enough, by enough, steadily, still at the end;
    leak: suspect over the whole leak window, by more, steadier, in every third of it."""
    watch = c.enough_samples & c.growing
    suspect = watch & c.long_enough_to_suspect & c.suspect_growth & c.suspect_steady & c.lately_sustained
    leak = suspect & c.long_enough_to_leak & c.leak_growth & c.leak_steady & c.sustained
    # Each level needs the one below, so the level is how many of the three hold.
    levels = watch.astype(np.int8)
    levels += suspect
    levels += leak
    held = np.flatnonzero(c.capped & suspect)
    levels[held] = LeakLevel.WATCH
    levels[c.exempt] = LeakLevel.STABLE
    levels.flags.writeable = False
    return levels


def scores(ev: Evidence, c: Criteria, levels: npt.NDArray[np.int8]) -> FloatArray:
    """0..1 for ranking and highlighting: steadier, longer and larger growth ranks higher."""
    out: FloatArray = np.zeros(len(levels), dtype=np.float64)
    rows = np.flatnonzero(levels)
    ups, downs = ev.ups[rows], ev.downs[rows]
    evidence = 1.0 - np.exp(-ups / 5.0)
    size = np.clip(ev.growth[rows] / np.maximum(c.min_leak_growth[rows], 1.0), 0.0, 1.0)
    out[rows] = ups / np.maximum(ups + downs, 1) * evidence * (0.5 + 0.5 * size)
    out.flags.writeable = False
    return out


def under_memory_pressure(available: FloatArray, stall_us: FloatArray | None = None) -> bool:
    """Whether the kernel was short of memory over a window: MemAvailable fell from its first to its
    last sample and, where the kernel has pressure stall information (/proc/pressure/memory, Linux
    4.20+), tasks stalled on memory during the window (its `some` total grew). Reclaimable caches
    that keep growing then are not being given back: they may be leaking."""
    avail = available[~np.isnan(available)] if len(available) else available
    if len(avail) < 2 or not avail[-1] < avail[0]:
        return False
    if stall_us is None:
        return True
    stall = stall_us[~np.isnan(stall_us)]
    return len(stall) < 2 or bool(stall[-1] > stall[0])
