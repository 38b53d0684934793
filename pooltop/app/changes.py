"""When each value cell of the live table last went up or down, so its highlight can fade."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pooltop.model import CounterSet
from pooltop.tracking import IndexArray, TrackedSample, align


class ChangeMemory:
    """When each value cell last went up or down, so highlights can fade (as PoolMonX does).

    Kept per row of the current counters and moved along when rows appear or vanish.
    """

    COLUMNS = ("allocs", "frees", "diff", "bytes")
    NEVER = np.iinfo(np.int64).min // 2

    def __init__(self) -> None:
        self._counters: CounterSet | None = None
        # One row per column (COLUMNS order), one column per counter row: the table reads all four
        # columns of its visible rows with one gather.
        self._when = np.zeros((len(self.COLUMNS), 0), dtype=np.int64)
        self._direction = np.zeros((len(self.COLUMNS), 0), dtype=np.int8)
        self.when: dict[str, npt.NDArray[np.int64]] = {}
        self.direction: dict[str, npt.NDArray[np.int8]] = {}
        self.now_ns = 0

    def _views(self) -> None:
        self.when = {c: self._when[i] for i, c in enumerate(self.COLUMNS)}
        self.direction = {c: self._direction[i] for i, c in enumerate(self.COLUMNS)}

    def update(self, sample: TrackedSample) -> None:
        counters = sample.counters
        n = len(counters)
        now = sample.snapshot.monotonic_ns
        if self._counters is None:
            self._when = np.full((len(self.COLUMNS), n), self.NEVER, dtype=np.int64)
            self._direction = np.zeros((len(self.COLUMNS), n), dtype=np.int8)
            self._views()
        elif not counters.same_keys(self._counters):
            mapping = align(self._counters, counters)
            present = mapping >= 0
            safe = np.where(present, mapping, 0)
            if self._when.shape[1]:
                self._when = np.where(present, self._when[:, safe], self.NEVER)
                self._direction = np.where(present, self._direction[:, safe], 0).astype(np.int8)
            else:
                self._when = np.full((len(self.COLUMNS), n), self.NEVER, dtype=np.int64)
                self._direction = np.zeros((len(self.COLUMNS), n), dtype=np.int8)
            self._views()
        deltas = sample.interval
        any_new = bool(deltas.is_new.any())
        for i, c in enumerate(self.COLUMNS):
            d: npt.NDArray[np.int64] = getattr(deltas, c)
            changed = np.flatnonzero(d != 0)  # few rows change per sample (4x faster than on ints)
            if any_new:
                # A new row's whole value is its "change": the new marker says it.
                changed = changed[~deltas.is_new[changed]]
            if len(changed):
                self._when[i, changed] = now
                self._direction[i, changed] = np.sign(d[changed])
        self._counters = counters
        self.now_ns = now

    def state(self, column: str, row: int, fade_ns: int) -> int:
        """states() of one cell, for rows the memory may not have seen yet (0 then)."""
        when = self.when.get(column)
        if when is None or row >= len(when):
            return 0
        age = self.now_ns - int(when[row])
        if age > fade_ns:
            return 0
        direction = int(self.direction[column][row])
        return direction * (2 if age <= 0 else 1)

    def states(self, column: str, rows: IndexArray, fade_ns: int) -> npt.NDArray[np.int8]:
        """For each row: +2 went up this sample, +1 went up within the fade time, 0 no change,
        -1 / -2 the same for going down."""
        if column not in self.when or not len(rows):
            return np.zeros(len(rows), dtype=np.int8)
        out: npt.NDArray[np.int8] = self.all_states(rows, fade_ns)[self.COLUMNS.index(column)]
        return out

    def all_states(self, rows: IndexArray, fade_ns: int) -> npt.NDArray[np.int8]:
        """states() of every column (COLUMNS order) for `rows`, as a len(COLUMNS) x len(rows) array."""
        if self._when.shape[1] == 0 or not len(rows):
            return np.zeros((len(self.COLUMNS), len(rows)), dtype=np.int8)
        age = self.now_ns - self._when[:, rows]
        strength = (age <= 0).astype(np.int8) + (age <= fade_ns)
        out: npt.NDArray[np.int8] = strength * self._direction[:, rows]
        return out
