"""The Tracker: feeds on successive snapshots of one source and returns, per refresh, the deltas
since the previous sample and since a baseline, the judge's verdicts over the leak window, and a
since-start history per counter.

Pure: no I/O, no clock. The live UI, `pooltop snapshot --interval`, the processes view and the
exporter feed snapshots in and read immutable results out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pooltop.judge import Judgements, JudgeThresholds
from pooltop.model import CounterSet, Snapshot
from pooltop.tracking.deltas import BoolArray, Deltas, IndexArray, align, compute_deltas
from pooltop.tracking.history import SeriesBuffer
from pooltop.tracking.window import LeakWindow


@dataclass(frozen=True, eq=False)
class TrackedSample:
    """Everything the UI or an export needs for one refresh. Immutable."""

    snapshot: Snapshot
    interval: Deltas  # against the previous sample
    since_baseline: Deltas
    baseline_taken_at_ns: int
    leak: Judgements
    sample_number: int

    @property
    def counters(self) -> CounterSet:
        return self.snapshot.counters

    def changes(self, since_baseline: bool) -> Deltas:
        return self.since_baseline if since_baseline else self.interval




class Tracker:
    """Feeds on successive snapshots of one source; keeps a baseline and a sliding leak window.

    Not thread-safe by design: one owner (the sampling loop) calls update(); what it returns is
    immutable and can be handed to any thread.
    """

    def __init__(self, thresholds: JudgeThresholds | None = None, history: int = 240,
                 exempt: Callable[[CounterSet], BoolArray] | None = None) -> None:
        """`exempt`: which rows of a sample the judge leaves alone (the processes view: pooltop's own)."""
        self.thresholds = thresholds or JudgeThresholds()
        self._exempt = exempt
        self._previous: Snapshot | None = None
        self._baseline: Snapshot | None = None
        self._baseline_map: tuple[CounterSet, IndexArray] | None = None
        self._window = LeakWindow(self.thresholds)
        self._history_capacity = max(history, 8)
        self._hist_bytes: SeriesBuffer | None = None
        self._hist_diff: SeriesBuffer | None = None
        self._count = 0
        self._reset_requested = False

    @property
    def history_capacity(self) -> int:
        """Samples of since-start history kept per counter (older ones are thinned)."""
        return self._history_capacity

    @property
    def window_samples(self) -> int:
        """Samples in the leak window now."""
        return len(self._window)

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
        totals = snap.totals
        exempt = self._exempt(counters) if self._exempt is not None else None
        leak = self._window.push(mapping, t, counters.bytes, _reclaimable(counters),
                                 totals.memory_available, totals.memory_stall_us, exempt)
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
            self._hist_bytes = SeriesBuffer(cap, np.float32, thin=True)
            self._hist_diff = SeriesBuffer(cap, np.float32, thin=True)
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





def _reclaimable(counters: CounterSet) -> BoolArray | None:
    """The source's reclaimable column (Linux slab: reclaim_account, kmalloc-rcl-*), if it has one."""
    column = counters.extra.get("reclaimable")
    return None if column is None else column != 0
