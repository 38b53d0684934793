"""Decide: levels from evidence and thresholds. Every criterion is one named boolean column, so the
words (words.py) can say which one held a counter back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.judge.evidence import Evidence
from pooltop.judge.thresholds import JudgeThresholds, LeakLevel
from pooltop.judge.trend import BoolArray, FloatArray


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
    min_leak_growth: FloatArray  # bytes a leak needs, per row


def criteria(ev: Evidence, th: JudgeThresholds, under_pressure: bool) -> Criteria:
    growth = ev.growth
    share = th.min_third_share * growth
    start = np.where(np.isnan(ev.first), 0.0, np.abs(ev.first))
    min_leak = np.maximum(float(th.leak_min_growth_bytes), th.leak_min_growth_share * start)
    # A counter sampled every second has samples spanning a hair under the window the live view
    # keeps; allow one part in a thousand.
    return Criteria(
        enough_samples=ev.samples >= th.min_samples,
        growing=ev.candidate & ev.rising,
        long_enough_to_suspect=ev.span_s >= th.suspect_window_s * 0.999,
        long_enough_to_leak=ev.span_s >= th.leak_window_s * 0.999,
        suspect_growth=(ev.recent_growth >= th.suspect_min_growth_bytes)
        | (growth >= th.suspect_min_growth_bytes),
        leak_growth=growth >= min_leak,
        suspect_steady=ev.monotony >= th.suspect_monotony,
        leak_steady=(ev.monotony >= th.leak_monotony) & (ev.rising_share >= th.leak_rising_share),
        still_growing=ev.thirds[:, 2] >= share,
        lately_sustained=_lately(ev, th),
        sustained=np.all(ev.thirds >= share[:, None], axis=1),
        capped=ev.reclaimable & (not under_pressure),
        min_leak_growth=min_leak,
    )


def _lately(ev: Evidence, th: JudgeThresholds) -> BoolArray:
    recent = ev.recent_growth
    recent_ok = ((recent >= th.suspect_min_growth_bytes)
                 & np.all(ev.recent_thirds >= th.min_third_share * recent[:, None], axis=1)
                 & (ev.recent_rising_share >= th.suspect_rising_share))
    growth = ev.growth
    whole_ok = ((growth >= th.suspect_min_growth_bytes)
                & np.all(ev.thirds[:, 1:] >= th.min_third_share * growth[:, None], axis=1)
                & (ev.rising_share >= th.suspect_rising_share))
    out: BoolArray = recent_ok | whole_ok
    return out


def decide(c: Criteria) -> npt.NDArray[np.int8]:
    """watch: growing at all; suspect: for long enough, by enough, steadily, still at the end;
    leak: suspect over the whole leak window, by more, steadier, in every third of it."""
    watch = c.enough_samples & c.growing
    suspect = watch & c.long_enough_to_suspect & c.suspect_growth & c.suspect_steady & c.lately_sustained
    leak = suspect & c.long_enough_to_leak & c.leak_growth & c.leak_steady & c.sustained
    levels = np.where(leak, LeakLevel.LEAK, np.where(suspect, LeakLevel.SUSPECT,
                                                     np.where(watch, LeakLevel.WATCH, LeakLevel.STABLE)))
    levels = np.where(c.capped, np.minimum(levels, LeakLevel.WATCH), levels).astype(np.int8)
    levels.flags.writeable = False
    return levels


def scores(ev: Evidence, c: Criteria, levels: npt.NDArray[np.int8]) -> FloatArray:
    """0..1 for ranking and highlighting: steadier, longer and larger growth ranks higher."""
    evidence = 1.0 - np.exp(-ev.ups / 5.0)
    size = np.clip(ev.growth / np.maximum(c.min_leak_growth, 1.0), 0.0, 1.0)
    out: FloatArray = np.where(levels > 0, ev.monotony * evidence * (0.5 + 0.5 * size), 0.0)
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
