"""The live leak window: the last `leak_window_s` seconds of every counter's bytes, judged per refresh.

The judge could recount a T x N matrix every refresh (judge_matrix); at 50,000 counters that costs
more than the rest of a refresh, so the window keeps each row's up/down counts and adjusts them by
the step that enters and the one that leaves, and hands the judge only the evidence it cannot keep
incrementally (each row's ends, and the trend points of the few growing rows). A row's valid
samples are always a suffix of the window (a counter that vanishes is dropped; when it returns it
starts anew). Given the same samples, the levels equal judge_matrix's (tests/test_tracking.py).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pooltop.judge import (
    Judgements,
    JudgeThresholds,
    judge_evidence,
    measure_counts,
    under_memory_pressure,
    usual_interval,
)
from pooltop.model import Int64Array
from pooltop.tracking.deltas import BoolArray, IndexArray, is_identity
from pooltop.tracking.history import SeriesBuffer


class LeakWindow:
    """Samples of the last `thresholds.leak_window_s` seconds (the oldest kept is the last one at
    least that old, so a full window spans the whole leak window), at most one per
    `thresholds.min_interval_s`: a faster refresh replaces the newest sample instead of adding one,
    so memory stays at max_window_samples per counter (values as float32: exact to 16 MiB, and a
    rounding of a few bytes on larger caches changes no verdict). A pause longer than
    `gap_intervals` sampling intervals starts the window anew: nothing is judged across a gap.
    """

    def __init__(self, thresholds: JudgeThresholds) -> None:
        self.thresholds = thresholds
        # Samples at least min_interval_s apart over leak_window_s, the one before, the newest (which
        # a faster sample replaces) and a spare: the buffers never drop a sample on their own.
        cap = thresholds.max_window_samples + 3
        self.values = SeriesBuffer(cap, np.float32, thin=False, headroom=1.25)
        self.signs = SeriesBuffer(cap, np.int8, thin=False, fill=0, headroom=1.25)
        self.ups = np.zeros(0, dtype=np.int64)
        self.downs = np.zeros(0, dtype=np.int64)
        self.age = np.zeros(0, dtype=np.int64)  # samples in a row, including ones the window dropped
        self._last = np.zeros(0, dtype=np.int64)  # exact bytes of the newest sample
        self._before = np.zeros(0, dtype=np.int64)  # ... and of the one before it
        self._memory: deque[tuple[float, float, float]] = deque()  # (t, available, stall_us)

    def __len__(self) -> int:
        return len(self.values)

    def _gap_before(self, t: float) -> bool:
        times = self.values.times
        if len(times) < 2:
            return False
        steps = np.append(np.diff(times), t - times[-1])
        usual = usual_interval(steps)
        return usual > 0 and t - float(times[-1]) > self.thresholds.gap_intervals * usual

    def _clear(self) -> None:
        self.values.clear()
        self.signs.clear()
        self.ups[:] = 0
        self.downs[:] = 0
        self.age[:] = 0
        self._memory.clear()

    def _drop_newest(self) -> None:
        if len(self.signs):
            newest = self.signs.values[-1]
            self.ups -= newest > 0
            self.downs -= newest < 0
            self.signs.drop_last()
        self.values.drop_last()
        self.age = np.maximum(self.age - 1, 0)
        self._last = self._before
        if self._memory:
            self._memory.pop()

    def _drop_first(self) -> None:
        leaving = self.signs.values[0]
        self.ups -= leaving > 0
        self.downs -= leaving < 0
        self.signs.drop_first()
        self.values.drop_first()

    def _drop_oldest(self, t: float) -> None:
        horizon = t - self.thresholds.leak_window_s
        while len(self.values) >= 2 and self.values.times[1] <= horizon:
            self._drop_first()
        while len(self._memory) > 1 and self._memory[1][0] <= horizon:
            self._memory.popleft()

    def push(self, mapping: IndexArray, t: float, bytes_: Int64Array, reclaimable: BoolArray | None,
             available: int | None = None, stall_us: int | None = None,
             exempt: BoolArray | None = None) -> Judgements:
        n = len(bytes_)
        if not (len(self.age) == n and is_identity(mapping)):
            present = mapping >= 0
            safe = np.where(present, mapping, 0)
            self.ups, self.downs, self.age, self._last, self._before = (
                np.where(present, arr[safe], 0) if len(arr) else np.zeros(n, dtype=np.int64)
                for arr in (self.ups, self.downs, self.age, self._last, self._before)
            )
        self.values.realign(mapping, n)
        self.signs.realign(mapping, n)
        if self._gap_before(t):
            self._clear()
        elif len(self.values) >= 2 and (float(self.values.times[-1]) - float(self.values.times[-2])
                                         < self.thresholds.min_interval_s):
            # The newest is too close to the one before it to be kept: this sample takes its place.
            self._drop_newest()
        if len(self.values) == self.values.capacity:  # uneven sampling: make room, counts and all
            self._drop_first()
        if len(self.values):
            step = np.where(self.age > 0, np.sign(bytes_ - self._last), 0).astype(np.int8)
            self.signs.append(t, step)
            self.ups += step > 0
            self.downs += step < 0
        self.age += 1
        self.values.append(t, bytes_)
        self._last, self._before = bytes_, self._last
        self._memory.append((t, np.nan if available is None else float(available),
                             np.nan if stall_us is None else float(stall_us)))
        self._drop_oldest(t)
        return self._judge(bytes_, reclaimable, exempt)

    def _judge(self, bytes_: Int64Array, reclaimable: BoolArray | None, exempt: BoolArray | None
               ) -> Judgements:
        window = self.values.values
        rows = len(self.values)
        n = len(bytes_)
        samples = np.minimum(self.age, rows)
        # Most rows were present for the whole window: their first sample is the window's first
        # row; only the younger ones need a gather.
        first = window[0].astype(np.float64) if rows else np.zeros(n)
        young = np.flatnonzero(samples < rows)
        first_row = np.zeros(n, dtype=np.intp)
        if len(young):
            first_row[young] = rows - samples[young]
            first[young] = window[first_row[young], young]
        last_row = np.full(n, max(rows - 1, 0), dtype=np.intp)
        ev = measure_counts(self.values.times, window, samples, self.ups.copy(), self.downs.copy(),
                            first_row, last_row, reclaimable, self.thresholds,
                            first=first, last=bytes_.astype(np.float64))
        # Pressure compares the window's first and last memory readings.
        memory = np.array([self._memory[0], self._memory[-1]], dtype=np.float64)
        stall = memory[:, 2] if not np.all(np.isnan(memory[:, 2])) else None
        pressure = under_memory_pressure(memory[:, 1], stall)
        return judge_evidence(ev, under_pressure=pressure, thresholds=self.thresholds, exempt=exempt)
