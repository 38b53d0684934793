"""The live header's verdict window: the (system, process) sample pairs of the leak judge's window,
judged again on every push (pooltop.processes.verdict.judge)."""

from __future__ import annotations

import dataclasses
from collections import deque

from pooltop.model import CounterSet, Snapshot
from pooltop.processes.verdict import Measures, PoolFindings, Verdict, VerdictThresholds, judged, rejudge


class VerdictWindow:
    """The (system, process) sample pairs of the judge's leak window and their verdict, for a live
    header: the same evidence window as the pool table's, so a process just started is judged on
    as much time as a cache. At most `size` pairs are kept.

    System snapshots are kept without their counters (a Windows box has tens of thousands of
    tags), unless `keep_counters`; the verdict then names the pool table's top row (`pools`) instead.
    `own_pid`: pooltop's process, never judged. Not thread-safe: one owner pushes; Verdicts are
    immutable.
    """

    def __init__(self, size: int = 256, thresholds: VerdictThresholds | None = None,
                 keep_counters: bool = False, own_pid: int | None = None) -> None:
        if size < 2:
            raise ValueError("the verdict window needs at least 2 samples")
        self.thresholds = thresholds or VerdictThresholds()
        self.keep_counters = keep_counters
        self.own_pid = own_pid
        self._pairs: deque[tuple[Snapshot, Snapshot]] = deque(maxlen=size)
        self._pools: PoolFindings | None = None
        self._measured: Measures | None = None  # the last push's measures

    def __len__(self) -> int:
        return len(self._pairs)

    def push(self, system: Snapshot, processes: Snapshot, pools: PoolFindings | None = None) -> Verdict:
        if not self.keep_counters and len(system.counters):
            system = dataclasses.replace(system, counters=CounterSet.empty(), aliases={})
        self._pairs.append((system, processes))
        horizon = processes.monotonic_ns - self.thresholds.judge.leak_window_s * 1e9
        while len(self._pairs) > 2 and self._pairs[1][1].monotonic_ns <= horizon:
            self._pairs.popleft()
        self._pools = pools
        return self.verdict()

    def verdict(self) -> Verdict:
        exclude = () if self.own_pid is None else (self.own_pid,)
        verdict, self._measured = judged(list(self._pairs), self.thresholds, self._pools, exclude)
        return verdict

    def with_pools(self, pools: PoolFindings | None) -> Verdict:
        """The verdict again with what the pool table says now, on the processes already measured
        (between two process samples the table moves every refresh; the line must agree with it)."""
        self._pools = pools
        if self._measured is None:
            return self.verdict()
        return rejudge(self._measured, self.thresholds, pools)

    def clear(self) -> None:
        self._pairs.clear()
        self._pools = None
        self._measured = None
