"""The leak judge's levels and every number behind them, in one place.

Evidence is measured in time, not in samples: a live view refreshing every 0.5 s and a recording
sampled every minute need the same seconds of growth before they call a counter a leak.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields


def seconds_text(s: float) -> str:
    """A duration as the judge words it: 45 s, 3 min, 2.5 h."""
    if s >= 7200:
        return f"{s / 3600:.1f} h"
    if s >= 120:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s"


class LeakLevel(enum.IntEnum):
    """How much a counter looks like a leak; ordered, so max() and sorting work."""

    STABLE = 0
    WATCH = 1
    SUSPECT = 2
    LEAK = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class JudgeThresholds:
    """When a growing counter becomes watch / suspect / leak. Users can change the windows.

    The defaults were tuned on real workloads of this kernel (issue 14): held pipes, UDP sockets
    and eventfds leaking at ~100 and ~2 objects/s reach suspect within 60 s and 5 min, while a
    directory walk, a file create/delete loop, a one-off allocation, a burst freed again and a
    `pip install` never reach leak.
    """

    #: seconds of growth a counter needs before it can be suspect (its samples must span this long)
    suspect_window_s: float = 30.0
    #: seconds a counter must have been watched, growing through every third of them, to be a leak;
    #: the live view keeps this much history, and rows younger than it cannot be a leak
    leak_window_s: float = 180.0
    #: fewer samples than this: no verdict at all ("too few samples")
    min_samples: int = 5
    #: intervals that grew, at least, before a counter is even watched
    watch_min_ups: int = 2
    #: net growth over the series a suspect needs, bytes
    suspect_min_growth_bytes: int = 16 * 1024
    #: net growth a leak needs: this many bytes ...
    leak_min_growth_bytes: int = 64 * 1024
    #: ... or this share of the starting size, whichever is larger
    leak_min_growth_share: float = 0.01
    #: ups / (ups + downs) over the intervals that changed: a saw-tooth sits near 0.5
    suspect_monotony: float = 0.5
    leak_monotony: float = 0.6
    #: share of sample pairs (the trend points) whose later value is higher: the rank correlation
    #: with time, robust to outliers and to quiet intervals; noise sits near 0.5
    suspect_rising_share: float = 0.65
    leak_rising_share: float = 0.75
    #: each third of the series must add at least this share of the growth to be a leak (a step,
    #: a warm-up or a burst puts its growth in one or two thirds); the last third must add this
    #: much for a counter to be "still growing at the end", which suspect needs
    min_third_share: float = 0.1
    #: a pause longer than this many median sampling intervals is a gap: the series is split there
    #: and only its last segment is judged
    gap_intervals: float = 3.0
    #: samples a trend (slope, rising pairs, thirds) uses, spread over the series by time
    trend_points: int = 12
    #: the most samples the live view keeps per counter for the leak window (a short refresh
    #: interval keeps every k-th sample instead)
    max_window_samples: int = 256

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (isinstance(value, float) and value != value):
                raise ValueError(f"{f.name} must be a number >= 0, not {value}")
        if self.suspect_window_s > self.leak_window_s:
            raise ValueError("the suspect window cannot be longer than the leak window")
        if self.min_samples < 2 or self.trend_points < 4 or self.max_window_samples < self.min_samples:
            raise ValueError("the judge needs 2 samples, 4 trend points and a window that holds them")

    @property
    def min_interval_s(self) -> float:
        """The live window keeps at most one sample per this many seconds."""
        return self.leak_window_s / max(self.max_window_samples - 1, 1)
