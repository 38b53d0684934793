"""Tracking: what changed between snapshots, since a baseline, and which counters look like leaks.

Pure: no I/O, no clock. The live UI, `pooltop snapshot --interval`, the recorder and the report all
feed snapshots in and read immutable results out.

Arithmetic facts (see ../shared/DESIGN.md): Windows allocs/frees are 32-bit and wrap, so every
difference of them is taken mod 2^32; Linux has no cumulative counts, only active objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
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


_identity_map: IndexArray = np.zeros(0, dtype=np.intp)


def identity_mapping(n: int) -> IndexArray:
    """np.arange(n) as a mapping, the same read-only object while n stays: every step of a refresh
    asks whether rows moved, and identity answers that without reading the array."""
    global _identity_map
    found = _identity_map
    if len(found) != n:
        found = np.arange(n, dtype=np.intp)
        found.flags.writeable = False
        _identity_map = found
    return found


def align(reference: CounterSet, current: CounterSet) -> IndexArray:
    """For each row of `current`, its row in `reference`, or -1 where the counter is new."""
    if current.same_keys(reference):
        return identity_mapping(len(current))
    ref_index = reference.index()
    get = ref_index.get
    return np.fromiter(
        (get(k, -1) for k in zip(current.tags, current.pools.tolist(), strict=True)),
        dtype=np.intp,
        count=len(current),
    )


def _is_identity(mapping: IndexArray) -> bool:
    n = len(mapping)
    if n == 0 or mapping is _identity_map:
        return True
    return int(mapping[0]) == 0 and int(mapping[-1]) == n - 1 and bool(np.all(np.diff(mapping) == 1))


_LOW32 = U32 - 1


def _wrap32(d: Int64Array) -> Int64Array:
    # Two's complement: masking the low 32 bits is the non-negative mod 2^32 (5x faster than mod).
    out: Int64Array = d & _LOW32
    return out


def _signed32(d: Int64Array) -> Int64Array:
    """A mod-2^32 difference read as signed: frees may run ahead of allocs for a while."""
    out: Int64Array = ((d + (1 << 31)) & _LOW32) - (1 << 31)
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
    if mapping is None:
        identical = current.same_keys(reference)
        idx = identity_mapping(len(current)) if identical else align(reference, current)
    else:
        idx = mapping
        identical = len(reference) == len(current) and _is_identity(idx)
    present = np.ones(len(current), dtype=np.bool_) if identical else idx >= 0
    safe = idx if identical else np.where(present, idx, 0)

    def prior(column: Int64Array) -> Int64Array:
        if identical:
            # Same rows in the same order (the usual refresh): no gather needed.
            return column
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

    if identical:
        vanished = CounterSet.empty()
    else:
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


#: samples a robust slope uses, spread over the window (cost per counter stays bounded)
TREND_POINTS = 12


@lru_cache(maxsize=64)
def _thin_rows(t_count: int, max_points: int) -> IndexArray:
    """Which of `t_count` samples a robust slope uses: at most `max_points`, spread over the series,
    so a long window costs the same. (Read-only: cached, as the window's length rarely changes.)"""
    if t_count > max_points:
        rows = np.unique(np.linspace(0, t_count - 1, max_points).round().astype(np.intp))
    else:
        rows = np.arange(t_count, dtype=np.intp)
    rows.flags.writeable = False
    return rows


def _thinned(times: FloatArray, values: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    if len(times) > max_points:
        pick = _thin_rows(len(times), max_points)
        return times[pick], values[pick]
    return times, values


def theil_sen_slopes(times: FloatArray, values: FloatArray, max_points: int = 12) -> FloatArray:
    """Robust slope (median of pairwise slopes) of each column of `values` (shape T x N) over `times`.

    NaN samples (counter absent then) are ignored pair-wise. At most `max_points` samples, spread
    over the series, are used, so the cost per counter stays bounded for long windows.
    """
    t_count, n = values.shape
    if t_count < 2 or n == 0:
        return np.zeros(n, dtype=np.float64)
    times, values = _thinned(times, values, max_points)
    i, j = np.triu_indices(len(times), k=1)
    dt = times[j] - times[i]
    ok_t = dt > 0
    i, j, dt = i[ok_t], j[ok_t], dt[ok_t]
    if len(dt) == 0:
        return np.zeros(n, dtype=np.float64)
    # counters x pairs, contiguous per counter so the sort below runs along memory
    cols = np.ascontiguousarray(values.T)
    pair_slopes = (cols[:, j] - cols[:, i]) / dt
    pair_slopes.sort(axis=1)  # NaN sorts last
    valid = (~np.isnan(pair_slopes)).sum(axis=1)
    lo = np.maximum(valid - 1, 0) // 2
    hi = valid // 2
    rows = np.arange(n)
    med = (pair_slopes[rows, lo] + pair_slopes[rows, np.minimum(hi, pair_slopes.shape[1] - 1)]) / 2
    out: FloatArray = np.where(valid > 0, med, 0.0)
    return out


def theil_sen_rising(times: FloatArray, values: FloatArray, max_points: int = 12) -> BoolArray:
    """theil_sen_slopes(times, values, max_points) > 0, without sorting the pairwise slopes.

    Every pair's slope has the sign of its value difference (time only moves forward), so counting
    the pairs that rise, fall and count at all places the median: it is positive when more than
    half of the pairs rise, and not when half or fewer do. Only a tie (exactly half rise, an even
    number of pairs) needs the slopes themselves; those few columns get the exact computation.
    About 10x cheaper than the sort at 50,000 counters, where the live view scores thousands of
    candidates every refresh.
    """
    t_count, n = values.shape
    if t_count < 2 or n == 0:
        return np.zeros(n, dtype=np.bool_)
    times_p, values_p = _thinned(times, values, max_points)
    m = len(times_p)
    if not bool(np.all(np.diff(times_p) > 0)):
        return theil_sen_slopes(times, values, max_points) > 0  # repeated times: pairs drop out
    # Pairs where both ends are present: any two of a column's present samples.
    present = np.count_nonzero(~np.isnan(values_p), axis=0)
    pairs = present * (present - 1) // 2
    rises = np.zeros(n, dtype=np.int64)
    with np.errstate(invalid="ignore"):  # NaN compares as not rising, as its pairs drop out
        for lag in range(1, m):
            rises += (values_p[lag:] > values_p[:-lag]).sum(axis=0, dtype=np.int16)
    # With p valid pairs sorted, the median is (s[(p-1)//2] + s[p//2]) / 2; s[k] > 0 exactly when
    # at most k pairs do not rise.
    out: BoolArray = (pairs > 0) & (pairs - rises <= (pairs - 1) // 2)
    tie = np.flatnonzero((pairs > 0) & (pairs % 2 == 0) & (2 * rises == pairs))
    if len(tie):
        out[tie] = theil_sen_slopes(times, values[:, tie], max_points) > 0
    return out


@dataclass(frozen=True)
class _TrendSamples:
    """What a robust slope needs, kept for the candidate columns only: the thinned sample times and
    values (T x candidates) and which rows the candidates are."""

    times: FloatArray
    values: FloatArray
    rows: IndexArray  # ascending

    def slopes(self, n: int) -> FloatArray:
        out = np.zeros(n, dtype=np.float64)
        if len(self.rows):
            out[self.rows] = theil_sen_slopes(self.times, self.values)
        return out

    def slope_at(self, row: int) -> float:
        i = int(np.searchsorted(self.rows, row))
        if i >= len(self.rows) or int(self.rows[i]) != row:
            return 0.0
        return float(theil_sen_slopes(self.times, self.values[:, i : i + 1])[0])


@dataclass(frozen=True, eq=False)
class LeakScores:
    """Per-counter leak evidence over a window, row-aligned with the counters it was computed for."""

    levels: npt.NDArray[np.int8]
    score: FloatArray  # 0..1, for ranking and highlighting
    ups: Int64Array
    downs: Int64Array
    growth: FloatArray  # last - first valid sample in the window, bytes
    samples: Int64Array
    trend: _TrendSamples | None = field(default=None, repr=False)

    def level(self, row: int) -> LeakLevel:
        return LeakLevel(int(self.levels[row]))

    @cached_property
    def slope(self) -> FloatArray:
        """Bytes per second (Theil-Sen) of every candidate row, 0 elsewhere. Computed on first use:
        a refresh only needs each slope's sign, which classify() gets without sorting."""
        out = self.trend.slopes(len(self.levels)) if self.trend is not None \
            else np.zeros(len(self.levels), dtype=np.float64)
        out.flags.writeable = False
        return out

    def slope_at(self, row: int) -> float:
        """One row's slope, without computing the others (the detail pane)."""
        if "slope" in self.__dict__ or self.trend is None:
            return float(self.slope[row])
        return self.trend.slope_at(row)

    @classmethod
    def empty(cls, n: int) -> LeakScores:
        zi = np.zeros(n, dtype=np.int64)
        zf = np.zeros(n, dtype=np.float64)
        return cls(np.zeros(n, dtype=np.int8), zf, zi, zi, zf, zi)


def score_window(
    times: FloatArray,
    values: FloatArray,
    thresholds: LeakThresholds = LeakThresholds(),
) -> LeakScores:
    """Leak levels for each column of `values` (T samples x N counters of bytes, NaN = absent).

    A counter is a leak when it grows in most intervals it changes in, rarely shrinks, grows by a
    meaningful amount and has a positive robust slope. Saw-tooth alloc/free cycles have many
    downs and stay low; a cache that warmed up and stopped growing loses its ups as the window
    slides on. The Tracker computes the same counts incrementally (see _LeakWindow).
    """
    t_count, n = values.shape
    if t_count == 0 or n == 0:
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
    return classify(times, values, samples, ups, downs, first, last, thresholds)


def classify(
    times: FloatArray,
    values: FloatArray,
    samples: Int64Array,
    ups: Int64Array,
    downs: Int64Array,
    first: FloatArray,
    last: FloatArray,
    thresholds: LeakThresholds,
) -> LeakScores:
    """Levels and scores from per-counter window statistics (see score_window)."""
    n = len(samples)
    growth = np.where(samples > 0, last - first, 0.0)
    th = thresholds
    candidate = (samples >= th.min_samples) & (ups >= th.watch_min_ups) & (growth > 0) & (ups > downs)
    cand_idx = np.flatnonzero(candidate)
    levels = np.zeros(n, dtype=np.int8)
    score = np.zeros(n, dtype=np.float64)
    trend: _TrendSamples | None = None
    if len(cand_idx):
        # Only candidates can rise; the rest of the arithmetic runs on them alone (a few percent of
        # the rows at 50,000 counters). Thin the window's rows while gathering their columns.
        picked = _thin_rows(len(times), TREND_POINTS)
        t_thin = times[picked]
        cand_values = values[picked[:, None], cand_idx]
        rising = theil_sen_rising(t_thin, cand_values, TREND_POINTS)
        trend = _TrendSamples(t_thin, cand_values, cand_idx)
        rows = cand_idx[rising]
        c_ups, c_downs, c_growth, c_first = ups[rows], downs[rows], growth[rows], first[rows]
        monotony = c_ups / np.maximum(c_ups + c_downs, 1)  # ups > downs >= 0: never 0 / 0
        start = np.where(np.isnan(c_first), 0.0, np.abs(c_first))
        min_growth = np.maximum(th.leak_min_growth_bytes, th.leak_min_growth_share * start)
        suspect = (c_ups >= th.suspect_min_ups) & (monotony >= th.suspect_monotony)
        leak = (suspect & (c_ups >= th.leak_min_ups) & (monotony >= th.leak_monotony)
                & (c_growth >= min_growth))
        levels[rows] = np.where(leak, LeakLevel.LEAK, np.where(suspect, LeakLevel.SUSPECT, LeakLevel.WATCH))
        evidence = 1.0 - np.exp(-c_ups / 5.0)
        size = np.clip(c_growth / np.maximum(min_growth, 1.0), 0.0, 1.0)
        score[rows] = monotony * evidence * (0.5 + 0.5 * size)
    for arr in (levels, score, ups, downs, growth, samples):
        arr.flags.writeable = False
    return LeakScores(levels, score, ups, downs, growth, samples, trend)


class _LeakWindow:
    """The last `size` samples of every counter's bytes, with up/down counts kept incrementally.

    score_window() recounts a T x N matrix every call; at 50,000 counters that costs more than the
    rest of a refresh, so the tracker keeps the counts per row and adjusts them by the step that
    enters and the one that leaves the window. A row's valid samples are always a suffix of the
    window (a counter that vanishes is dropped; when it returns it starts anew).
    """

    def __init__(self, size: int) -> None:
        self.values = _SeriesBuffer(size, np.float64, thin=False)
        self.signs = _SeriesBuffer(size - 1, np.int8, thin=False, fill=0)
        self.ups = np.zeros(0, dtype=np.int64)
        self.downs = np.zeros(0, dtype=np.int64)
        self.age = np.zeros(0, dtype=np.int64)

    def push(self, mapping: IndexArray, t: float, bytes_: Int64Array, thresholds: LeakThresholds
             ) -> LeakScores:
        n = len(bytes_)
        identity = len(self.age) == n and _is_identity(mapping)
        if not identity:
            present = mapping >= 0
            safe = np.where(present, mapping, 0)
            self.ups, self.downs, self.age = (
                np.where(present, arr[safe], 0) if len(arr) else np.zeros(n, dtype=np.int64)
                for arr in (self.ups, self.downs, self.age)
            )
        self.values.realign(mapping, n)
        self.signs.realign(mapping, n)
        cur = bytes_.astype(np.float64)
        if len(self.values):
            with np.errstate(invalid="ignore"):
                step = np.sign(cur - self.values.values[-1])
            step = np.where(self.age > 0, step, 0.0).astype(np.int8)
        else:
            step = np.zeros(n, dtype=np.int8)
        if len(self.signs) == self.signs.capacity:
            leaving = self.signs.values[0]
            self.ups -= leaving > 0
            self.downs -= leaving < 0
        self.signs.append(t, step)
        self.ups += step > 0
        self.downs += step < 0
        self.age += 1
        self.values.append(t, bytes_)

        window = np.asarray(self.values.values, dtype=np.float64)
        rows = len(self.values)
        samples = np.minimum(self.age, rows)
        # Most rows were present for the whole window: their first sample is the window's first
        # row; only the younger ones need a gather.
        first = window[0].copy() if rows else np.zeros(n)
        young = np.flatnonzero(samples < rows)
        if len(young):
            first[young] = window[rows - samples[young], young]
        return classify(self.values.times, window, samples, self.ups.copy(), self.downs.copy(), first, cur,
                        thresholds)


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

    def __init__(self, capacity: int, dtype: type[np.number[Any]], thin: bool, fill: float = np.nan) -> None:
        self.capacity = capacity
        self.dtype = dtype
        self.thin = thin
        self.fill = fill
        self._buf: npt.NDArray[np.number[Any]] = np.zeros((2 * capacity, 0), dtype=dtype)
        self._times = np.zeros(2 * capacity, dtype=np.float64)
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
        if self._buf.shape[1] == n_new and len(mapping) == n_new and _is_identity(mapping):
            return
        new = np.full((self._buf.shape[0], n_new), self.fill, dtype=self.dtype)
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
        self._window = _LeakWindow(window)
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
        leak = self._window.push(mapping, t, counters.bytes, self.thresholds)
        self._record_history(mapping, n, t, counters)

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
