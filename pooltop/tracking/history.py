"""Time-ordered samples x rows, kept for the leak window and the since-start history."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.tracking.deltas import FloatArray, IndexArray, is_identity


class SeriesBuffer:
    """Time-ordered samples x rows, appended in amortised O(rows) (no copy of the whole window per tick).

    Rows follow the current snapshot's rows; `realign` moves them when counters appear or vanish
    (`fill`, NaN by default, marks samples where a row was absent). With `thin=True` a full buffer
    halves the resolution of its older half instead of forgetting it, so a since-start history fits
    in bounded memory. The storage holds `headroom` times the capacity, so the live samples are
    moved to its start only once every (headroom - 1) x capacity appends.
    """

    def __init__(self, capacity: int, dtype: type[np.number[Any]], thin: bool, fill: float = np.nan,
                 headroom: float = 2.0) -> None:
        self.capacity = capacity
        self.dtype = dtype
        self.thin = thin
        self.fill = fill
        self._rows = max(capacity + 1, int(capacity * headroom))
        self._buf: npt.NDArray[np.number[Any]] = np.zeros((self._rows, 0), dtype=dtype)
        self._times = np.zeros(self._rows, dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def values(self) -> npt.NDArray[np.number[Any]]:
        return self._buf[self._start : self._end]

    @property
    def times(self) -> FloatArray:
        return self._times[self._start : self._end]

    def realign(self, mapping: IndexArray, n_new: int) -> None:
        if self._buf.shape[1] == n_new and len(mapping) == n_new and is_identity(mapping):
            return
        new = np.full((self._buf.shape[0], n_new), self.fill, dtype=self.dtype)
        present = mapping >= 0
        if len(self) and self._buf.shape[1]:
            new[self._start : self._end, present] = self._buf[self._start : self._end, mapping[present]]
        self._buf = new

    def append(self, t: float, row: npt.NDArray[Any]) -> None:
        if self._end == self._buf.shape[0]:
            self._compact()
        self._buf[self._end] = row
        self._times[self._end] = t
        self._end += 1
        if len(self) > self.capacity:
            if self.thin:
                self._thin()
            else:
                self._start += 1

    def drop_first(self) -> None:
        self._start += 1

    def drop_last(self) -> None:
        self._end -= 1

    def clear(self) -> None:
        self._start = self._end = 0

    def _compact(self) -> None:
        live = len(self)
        self._buf[:live] = self._buf[self._start : self._end]
        self._times[:live] = self._times[self._start : self._end]
        self._start, self._end = 0, live

    def _thin(self) -> None:
        live = self.values
        half = len(live) // 2
        keep = np.r_[np.arange(0, half, 2), np.arange(half, len(live))]
        kept, kept_t = live[keep], self.times[keep]
        self._start, self._end = 0, len(keep)
        self._buf[: len(keep)] = kept
        self._times[: len(keep)] = kept_t
