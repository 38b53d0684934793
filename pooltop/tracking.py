"""Tracking: what changed between snapshots, since a baseline, and which counters look like leaks.

Pure: no I/O, no clock. The live UI, `pooltop snapshot --interval`, the recorder and the report all
feed snapshots in and read immutable results out.

Arithmetic facts (see ../shared/DESIGN.md): Windows allocs/frees are 32-bit and wrap, so every
difference of them is taken mod 2^32; Linux has no cumulative counts, only active objects.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.model import U32, CounterSet, Int64Array, Snapshot

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


class LeakLevel(enum.IntEnum):
    """How much a counter looks like a leak; ordered, so max() and sorting work."""

    STABLE = 0
    WATCH = 1
    SUSPECT = 2
    LEAK = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# --- alignment and deltas ---------------------------------------------------------------------


def align(reference: CounterSet, current: CounterSet) -> IndexArray:
    """For each row of `current`, its row in `reference`, or -1 where the counter is new."""
    if current.same_keys(reference):
        return np.arange(len(current), dtype=np.intp)
    ref_index = reference.index()
    get = ref_index.get
    return np.fromiter(
        (get(k, -1) for k in zip(current.tags, current.pools.tolist(), strict=True)),
        dtype=np.intp,
        count=len(current),
    )


def _wrap32(d: Int64Array) -> Int64Array:
    return np.mod(d, U32)


def _signed32(d: Int64Array) -> Int64Array:
    """A mod-2^32 difference read as signed: frees may run ahead of allocs for a while."""
    out: Int64Array = np.mod(d + (1 << 31), U32) - (1 << 31)
    return out


@dataclass(frozen=True, eq=False)
class Deltas:
    """Change of every counter of `current` against a reference snapshot, row-aligned with current."""

    allocs: Int64Array
    frees: Int64Array
    diff: Int64Array
    bytes: Int64Array
    is_new: BoolArray
    seconds: float
    vanished: CounterSet

    def rate(self, column: str) -> FloatArray:
        """Per-second change of allocs, frees, diff or bytes (0 when no time passed)."""
        values: Int64Array = getattr(self, column)
        if self.seconds <= 0:
            return np.zeros(len(values), dtype=np.float64)
        out: FloatArray = values / self.seconds
        return out

    @classmethod
    def zero(cls, current: CounterSet) -> Deltas:
        z = np.zeros(len(current), dtype=np.int64)
        z.flags.writeable = False
        return cls(z, z, z, z, np.zeros(len(current), dtype=np.bool_), 0.0, CounterSet.empty())


def compute_deltas(
    reference: CounterSet,
    current: CounterSet,
    seconds: float,
    mapping: IndexArray | None = None,
) -> Deltas:
    """Deltas of `current` against `reference`. New counters count from zero (their whole value).

    `counter_bits` of the current set says whether allocs/frees are 32-bit wrapping counters
    (Windows class 22) or wide ones (class 255, recordings); Linux sets have no alloc counts.
    """
    idx = align(reference, current) if mapping is None else mapping
    present = idx >= 0
    safe = np.where(present, idx, 0)

    def prior(column: Int64Array) -> Int64Array:
        out: Int64Array = np.where(present, column[safe] if len(column) else 0, 0)
        return out

    d_bytes = current.bytes - prior(reference.bytes)
    if current.has_alloc_counts:
        d_allocs = current.allocs - prior(reference.allocs)
        d_frees = current.frees - prior(reference.frees)
        if current.counter_bits == 32:
            d_allocs = _wrap32(d_allocs)
            d_frees = _wrap32(d_frees)
            # Outstanding = allocs - frees, so its change follows from the two wrap-safe deltas.
            d_diff = _signed32(d_allocs - d_frees)
        else:
            d_diff = current.diff - prior(reference.diff)
    else:
        d_allocs = np.zeros(len(current), dtype=np.int64)
        d_frees = d_allocs
        d_diff = current.diff - prior(reference.diff)

    gone = np.ones(len(reference), dtype=np.bool_)
    gone[idx[present]] = False
    vanished = reference.select(gone) if gone.any() else CounterSet.empty()
    for arr in (d_allocs, d_frees, d_diff, d_bytes):
        arr.flags.writeable = False
    is_new = ~present
    is_new.flags.writeable = False
    return Deltas(d_allocs, d_frees, d_diff, d_bytes, is_new, max(seconds, 0.0), vanished)


# --- leak scoring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakThresholds:
    """When a growing counter becomes watch / suspect / leak. Users can change every number."""

    min_samples: int = 5  # fewer samples than this in the window: always stable
    watch_min_ups: int = 2  # intervals that grew
    suspect_min_ups: int = 3
    suspect_monotony: float = 0.7  # ups / (ups + downs)
    leak_min_ups: int = 4
    leak_monotony: float = 0.9
    leak_min_growth_bytes: int = 64 * 1024  # net growth over the window
    leak_min_growth_share: float = 0.01  # ... or this share of the starting size, whichever is larger


def theil_sen_slopes(times: FloatArray, values: FloatArray) -> FloatArray:
    """Robust slope (median of pairwise slopes) of each column of `values` (shape T x N) over `times`.

    NaN samples (counter absent then) are ignored pair-wise. At most ~24 points are used, spread
    over the series, so the cost stays bounded for long windows.
    """
    t_count = len(times)
    if t_count < 2 or values.shape[1] == 0:
        return np.zeros(values.shape[1], dtype=np.float64)
    if t_count > 24:
        pick = np.unique(np.linspace(0, t_count - 1, 24).round().astype(np.intp))
        times = times[pick]
        values = values[pick]
    i, j = np.triu_indices(len(times), k=1)
    dt = times[j] - times[i]
    ok_t = dt > 0
    i, j, dt = i[ok_t], j[ok_t], dt[ok_t]
    if len(dt) == 0:
        return np.zeros(values.shape[1], dtype=np.float64)
    pair_slopes = (values[j] - values[i]) / dt[:, None]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(pair_slopes, axis=0)
    out: FloatArray = np.where(np.isnan(med), 0.0, med)
    return out


@dataclass(frozen=True, eq=False)
class LeakScores:
    """Per-counter leak evidence over a window, row-aligned with the counters it was computed for."""

    levels: npt.NDArray[np.int8]
    score: FloatArray  # 0..1, for ranking and highlighting
    slope: FloatArray  # bytes per second (Theil-Sen), 0 where not computed
    ups: Int64Array
    downs: Int64Array
    growth: FloatArray  # last - first valid sample in the window, bytes
    samples: Int64Array

    def level(self, row: int) -> LeakLevel:
        return LeakLevel(int(self.levels[row]))

    @classmethod
    def empty(cls, n: int) -> LeakScores:
        zi = np.zeros(n, dtype=np.int64)
        zf = np.zeros(n, dtype=np.float64)
        return cls(np.zeros(n, dtype=np.int8), zf, zf, zi, zi, zf, zi)


def score_window(
    times: FloatArray,
    values: FloatArray,
    thresholds: LeakThresholds = LeakThresholds(),
) -> LeakScores:
    """Leak levels for each column of `values` (T samples x N counters of bytes, NaN = absent).

    A counter is a leak when it grows in most intervals it changes in, rarely shrinks, grows by a
    meaningful amount and has a positive robust slope. Saw-tooth alloc/free cycles have many
    downs and stay low; a cache that warmed up and stopped growing loses its ups as the window
    slides on.
    """
    t_count, n = values.shape
    if t_count < 2 or n == 0:
        return LeakScores.empty(n)
    valid = ~np.isnan(values)
    samples = valid.sum(axis=0).astype(np.int64)
    steps = np.diff(values, axis=0)  # NaN where either side is absent
    with np.errstate(invalid="ignore"):
        ups = (steps > 0).sum(axis=0).astype(np.int64)
        downs = (steps < 0).sum(axis=0).astype(np.int64)
    first_row = np.argmax(valid, axis=0)
    last_row = t_count - 1 - np.argmax(valid[::-1], axis=0)
    cols = np.arange(n)
    first = values[first_row, cols]
    last = values[last_row, cols]
    growth = np.where(samples > 0, last - first, 0.0)

    th = thresholds
    candidate = (samples >= th.min_samples) & (ups >= th.watch_min_ups) & (growth > 0) & (ups > downs)
    slope = np.zeros(n, dtype=np.float64)
    cand_idx = np.flatnonzero(candidate)
    if len(cand_idx):
        slope[cand_idx] = theil_sen_slopes(times, values[:, cand_idx])

    changes = ups + downs
    monotony = np.where(changes > 0, ups / np.maximum(changes, 1), 0.0)
    start = np.where(np.isnan(first), 0.0, np.abs(first))
    min_growth = np.maximum(th.leak_min_growth_bytes, th.leak_min_growth_share * start)

    levels = np.zeros(n, dtype=np.int8)
    rising = candidate & (slope > 0)
    levels[rising] = LeakLevel.WATCH
    suspect = rising & (ups >= th.suspect_min_ups) & (monotony >= th.suspect_monotony)
    levels[suspect] = LeakLevel.SUSPECT
    leak = suspect & (ups >= th.leak_min_ups) & (monotony >= th.leak_monotony) & (growth >= min_growth)
    levels[leak] = LeakLevel.LEAK

    evidence = 1.0 - np.exp(-ups / 5.0)
    size = np.clip(growth / np.maximum(min_growth, 1.0), 0.0, 1.0)
    score = np.where(rising, monotony * evidence * (0.5 + 0.5 * size), 0.0)
    for arr in (levels, score, slope, ups, downs, growth, samples):
        arr.flags.writeable = False
    return LeakScores(levels, score, slope, ups, downs, growth, samples)


# --- the tracker --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrackedSample:
    """Everything the UI or an export needs for one refresh. Immutable."""

    snapshot: Snapshot
    interval: Deltas  # against the previous sample
    since_baseline: Deltas
    baseline_taken_at_ns: int
    leak: LeakScores
    sample_number: int

    @property
    def counters(self) -> CounterSet:
        return self.snapshot.counters

    def changes(self, since_baseline: bool) -> Deltas:
        return self.since_baseline if since_baseline else self.interval


class _SeriesBuffer:
    """Time-ordered samples x rows, appended in amortised O(rows) (no copy of the whole window per tick).

    Rows follow the current snapshot's rows; `realign` moves them when counters appear or vanish
    (NaN marks samples where a row was absent). With `thin=True` a full buffer halves the
    resolution of its older half instead of forgetting it, so a since-start history fits in
    bounded memory.
    """

    def __init__(self, capacity: int, dtype: type[np.floating[Any]], thin: bool) -> None:
        self.capacity = capacity
        self.dtype = dtype
        self.thin = thin
        self._buf: npt.NDArray[np.floating[Any]] = np.zeros((2 * capacity, 0), dtype=dtype)
        self._times = np.zeros(2 * capacity, dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def values(self) -> npt.NDArray[np.floating[Any]]:
        return self._buf[self._start : self._end]

    @property
    def times(self) -> FloatArray:
        return self._times[self._start : self._end]

    def realign(self, mapping: IndexArray, n_new: int) -> None:
        if self._buf.shape[1] == n_new and np.array_equal(mapping, np.arange(n_new)):
            return
        new = np.full((self._buf.shape[0], n_new), np.nan, dtype=self.dtype)
        present = mapping >= 0
        if len(self) and self._buf.shape[1]:
            new[self._start : self._end, present] = self._buf[self._start : self._end, mapping[present]]
        self._buf = new

    def append(self, t: float, row: Int64Array) -> None:
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


class Tracker:
    """Feeds on successive snapshots of one source; keeps a baseline and a sliding leak window.

    Not thread-safe by design: one owner (the sampling loop) calls update(); what it returns is
    immutable and can be handed to any thread.
    """

    def __init__(
        self,
        window: int = 30,
        thresholds: LeakThresholds | None = None,
        history: int = 240,
    ) -> None:
        if window < 2:
            raise ValueError("the leak window needs at least 2 samples")
        self.window = window
        self.thresholds = thresholds or LeakThresholds()
        self._previous: Snapshot | None = None
        self._baseline: Snapshot | None = None
        self._baseline_map: tuple[CounterSet, IndexArray] | None = None
        self._window = _SeriesBuffer(window, np.float64, thin=False)
        self._history_capacity = max(history, 8)
        self._hist_bytes: _SeriesBuffer | None = None
        self._hist_diff: _SeriesBuffer | None = None
        self._count = 0
        self._reset_requested = False

    @property
    def baseline(self) -> Snapshot | None:
        return self._baseline

    def reset_baseline(self) -> None:
        """The next update (or the last sample, if there is one) becomes the baseline."""
        if self._previous is not None:
            self._baseline = self._previous
            self._baseline_map = None
        else:
            self._reset_requested = True

    def update(self, snap: Snapshot) -> TrackedSample:
        prev = self._previous
        counters = snap.counters
        if prev is None:
            mapping = np.full(len(counters), -1, dtype=np.intp)
            interval = Deltas.zero(counters)
        else:
            mapping = align(prev.counters, counters)
            seconds = (snap.monotonic_ns - prev.monotonic_ns) / 1e9
            interval = compute_deltas(prev.counters, counters, seconds, mapping)
        if self._baseline is None or self._reset_requested:
            self._baseline = snap
            self._baseline_map = None
            self._reset_requested = False
        base = self._baseline
        if base is snap:
            since = Deltas.zero(counters)
        else:
            base_map = self._baseline_mapping(base.counters, counters, prev, mapping)
            since = compute_deltas(
                base.counters, counters, (snap.monotonic_ns - base.monotonic_ns) / 1e9, base_map
            )

        t = snap.monotonic_ns / 1e9
        n = len(counters)
        self._window.realign(mapping, n)
        self._window.append(t, counters.bytes)
        self._record_history(mapping, n, t, counters)
        window = np.asarray(self._window.values, dtype=np.float64)
        leak = score_window(self._window.times, window, self.thresholds)

        self._previous = snap
        self._count += 1
        return TrackedSample(
            snapshot=snap,
            interval=interval,
            since_baseline=since,
            baseline_taken_at_ns=base.monotonic_ns,
            leak=leak,
            sample_number=self._count,
        )

    def history(self, tag: str, pool: int) -> tuple[list[float], list[float], list[float]]:
        """(monotonic seconds, bytes, diff) of one counter since tracking began (thinned when long)."""
        if self._previous is None or self._hist_bytes is None or self._hist_diff is None:
            return [], [], []
        row = self._previous.counters.index().get((tag, pool))
        if row is None:
            return [], [], []
        hb, hd = self._hist_bytes, self._hist_diff
        return hb.times.tolist(), hb.values[:, row].tolist(), hd.values[:, row].tolist()

    def _record_history(self, mapping: IndexArray, n: int, t: float, counters: CounterSet) -> None:
        if self._hist_bytes is None:
            # Bound the history's memory (float32, two series) to ~32 MB whatever the tag count.
            cap = int(min(self._history_capacity, max(16, 4_000_000 // max(n, 1))))
            self._hist_bytes = _SeriesBuffer(cap, np.float32, thin=True)
            self._hist_diff = _SeriesBuffer(cap, np.float32, thin=True)
        assert self._hist_diff is not None
        for buf, column in ((self._hist_bytes, counters.bytes), (self._hist_diff, counters.diff)):
            buf.realign(mapping, n)
            buf.append(t, column)

    def _baseline_mapping(
        self, base: CounterSet, current: CounterSet, prev: Snapshot | None, mapping: IndexArray
    ) -> IndexArray:
        # Re-aligning against the baseline costs a dict lookup per row; when the row set did not
        # change since the last sample, the previous baseline mapping still holds.
        cached = self._baseline_map
        if cached is not None and prev is not None and cached[0] is prev.counters and current.same_keys(
            prev.counters
        ):
            result = cached[1]
        else:
            result = align(base, current)
        self._baseline_map = (current, result)
        return result


def order_rows(values: Sequence[float] | npt.NDArray[np.generic], descending: bool) -> IndexArray:
    """Stable sort order of a column (ties keep the table's previous order)."""
    arr = np.asarray(values)
    if descending:
        if arr.dtype.kind in "iuf":
            out: IndexArray = np.argsort(-arr, kind="stable")
            return out
        return np.argsort(arr, kind="stable")[::-1].copy()
    return np.argsort(arr, kind="stable")
