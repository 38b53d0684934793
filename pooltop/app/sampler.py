"""The sampling side of the live view: it owns the source's calls and the Tracker.

The UI never touches the Tracker directly: it asks for a sample (run in a worker thread, one at a
time), for a baseline reset (applied before the next update) and for one counter's history; all
three go through here and are serialised by one lock, since Tracker is not thread-safe by design.

A replay (pooltop.record.replay: a source with seek/step/generation) is driven from here too: the
cursor moves under the source lock, and when its `generation` changes (a jump) the Tracker starts
over, so no delta is ever computed across a jump.

Live, an optional process source (pooltop.processes.source.ProcessSource) is sampled here too (judge(),
after the pool sample is handed over), every `process_every_s` of the system source's clock (six
times less often while the verdict says nothing grows and no pool counter is suspect), and
each (system, processes) pair feeds a VerdictWindow: the header's one-line verdict, over the same
leak window as the pool table and told what the table's judge says (so the line names a leaking
row instead of saying nothing grows; pooltop's own process is never judged); the same
snapshots go through a second Tracker for the processes view (`P`). A failing process sample
costs only the verdict (None until the next good one), never the pool sample.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pooltop.model import CounterSet, Pool, Snapshot
from pooltop.native import BigPoolAllocation, Source
from pooltop.processes.source import split_tag
from pooltop.processes.verdict import PoolFindings, Verdict, VerdictKind, VerdictThresholds
from pooltop.processes.verdict_window import VerdictWindow
from pooltop.tracking import TrackedSample, Tracker

#: how often (seconds of the system source's clock) processes are sampled for the verdict
PROCESS_EVERY_S = 5.0
#: ... and how many times less often while the verdict says nothing grows and no counter is
#: suspect: reading every process costs far more than the pools (~0.15 ms a process here), and a
#: leak hunter left running on a quiet server should not be what loads it
PROCESS_QUIET_FACTOR = 6


@runtime_checkable
class ReplayCursor(Protocol):
    """What the live view needs of a replay source (ReplaySource, SequenceSource)."""

    speed: int
    generation: int

    def __len__(self) -> int: ...

    @property
    def position(self) -> int: ...

    @property
    def at_end(self) -> bool: ...

    def seek(self, index: int) -> None: ...

    def step(self, count: int = 1) -> None: ...

    def current(self) -> Snapshot: ...


def as_replay(source: Source) -> ReplayCursor | None:
    """`source` as a replay cursor, or None for a live source (duck-typed: seek, step, generation)."""
    if all(hasattr(source, name) for name in ("seek", "step", "generation", "current", "position")):
        return source  # type: ignore[return-value]
    return None


class Sampler:
    def __init__(
        self,
        source: Source,
        tracker: Tracker | None = None,
        processes: Source | None = None,
        process_every_s: float = PROCESS_EVERY_S,
        verdict_window: VerdictWindow | None = None,
        quiet_factor: float = PROCESS_QUIET_FACTOR,
    ) -> None:
        self.source = source
        self.replay = as_replay(source)
        # No process data in a recording: no verdict while replaying.
        self.processes = processes if self.replay is None else None
        self.process_every_s = process_every_s
        self.quiet_factor = quiet_factor
        self._pool_suspect = False  # the last pool sample had a suspect or leaking counter
        self._tracker = tracker or Tracker()
        # Processes are judged on the pools' evidence windows: a process just started is not growing
        # before a cache that started with it could be.
        self._verdicts = verdict_window or VerdictWindow(
            thresholds=VerdictThresholds(judge=self._tracker.thresholds), own_pid=os.getpid())
        self._process_at_ns: int | None = None  # system clock of the last process sample
        self.verdict: Verdict | None = None  # the latest; None without processes or after a failure
        self._last_system: Snapshot | None = None  # the live snapshot judge() pairs processes with
        self._pools: PoolFindings | None = None  # what the judge said of that snapshot's counters
        self._verdict_moved = False  # the verdict changed with the pools since it was handed over
        # pooltop's own row in the processes view is never judged (its history buffers fill for minutes)
        self._process_tracker = Tracker(self._tracker.thresholds, exempt=_own_process)
        self.process_sample: TrackedSample | None = None  # the latest tracked process snapshot
        self._tracker_lock = threading.Lock()
        self._source_lock = threading.Lock()
        self._reset_requested = threading.Event()
        self._generation = self.replay.generation if self.replay is not None else 0
        self._shown_at: tuple[int, int] | None = None  # (generation, position) of the replay sample shown
        self.shown_position = -1  # the replay index of the last sample taken (-1 live)

    def take(self, advance: bool = True) -> TrackedSample | None:
        """One snapshot, tracked. Called from the worker thread; raises what the source raises.

        For a replay, `advance` moves the cursor `speed` samples first (not before the first
        sample); without it, the sample under the cursor is shown (after a cursor key). None: the
        replay is at its end or paused, nothing new to show.
        """
        with self._source_lock:
            if self.replay is None:
                snapshot = self.source.sample()
                self._last_system = snapshot
            else:
                replay = self.replay
                if advance and self._shown_at is not None:
                    if replay.at_end or replay.speed <= 0:
                        return None
                    for _ in range(replay.speed):  # one step at a time: not a jump for the Tracker
                        if replay.at_end:
                            break
                        replay.step(1)
                generation = replay.generation
                shown_at = (generation, replay.position)
                if shown_at == self._shown_at:
                    return None  # already on screen: tracking it twice would be a zero-time delta
                self._shown_at = shown_at
                self.shown_position = shown_at[1]
                snapshot = replay.current()
        with self._tracker_lock:
            if self.replay is not None and generation != self._generation:
                self._generation = generation
                t = self._tracker
                self._tracker = Tracker(t.thresholds, t.history_capacity)
            if self._reset_requested.is_set():
                self._reset_requested.clear()
                # The sample on screen when the user asked becomes the baseline.
                self._tracker.reset_baseline()
            tracked = self._tracker.update(snapshot)
        if self.processes is not None:
            pools = PoolFindings.of(tracked.counters, tracked.leak)
            if self.verdict is not None and pools != self._pools:
                # The verdict line agrees with the table between process samples too.
                self.verdict = self._verdicts.with_pools(pools)
                self._verdict_moved = True
            self._pools = pools
            self._pool_suspect = pools is not None
        return tracked

    @property
    def quiet(self) -> bool:
        """The verdict says nothing grows: processes are sampled `quiet_factor` times less often
        until it (or a suspect pool counter) says otherwise."""
        return self.verdict is not None and self.verdict.kind is VerdictKind.NOTHING

    def judge(self) -> bool:
        """Sample processes when due and push the pair (the last system snapshot, processes) into
        the verdict window. Called from the sampling thread after the pool sample is on its way to
        the screen (a process sample can take a few hundred milliseconds: the first frame must not
        wait for it). True when `verdict` or `process_sample` is new."""
        system = self._last_system
        if self.processes is None or system is None:
            return False
        now = system.monotonic_ns
        every = self.process_every_s
        if self.quiet and not self._pool_suspect:
            every *= self.quiet_factor
        due = self._process_at_ns is None or now - self._process_at_ns >= every * 1e9
        moved, self._verdict_moved = self._verdict_moved, False
        if not due:
            return moved
        try:
            processes = self.processes.sample()
            self.verdict = self._verdicts.push(system, processes, self._pools)
            with self._tracker_lock:
                self.process_sample = self._process_tracker.update(processes)
        except Exception:  # the verdict is a bonus: never let it break the pool sampling
            self.verdict = None
        finally:
            self._process_at_ns = now
        return True

    def move(self, step: int | None = None, to: int | None = None) -> None:
        """Move the replay cursor by `step` samples or to index `to` (negative: from the end)."""
        if self.replay is None:
            return
        with self._source_lock:
            if to is not None:
                self.replay.seek(to)
            elif step:
                # One sample forward continues the tracking; anything else is a jump (generation).
                self.replay.step(step)

    def request_baseline(self) -> None:
        self._reset_requested.set()

    @property
    def baseline_pending(self) -> bool:
        return self._reset_requested.is_set()

    def history(self, tag: str, pool: int) -> tuple[list[float], list[float], list[float]]:
        with self._tracker_lock:
            tracker = self._process_tracker if pool == Pool.PROCESS else self._tracker
            return tracker.history(tag, pool)

    def big_pool_allocations(self, tag: str) -> list[BigPoolAllocation]:
        with self._source_lock:
            return self.source.big_pool_allocations(tag)


class SampleClock:
    """When the next sample is due: an interval after the last one started, now when asked, never
    while paused. Pure bookkeeping (the caller passes the time), so it is tested without threads.

    A request made while a sample is under way is kept and served right after it (one pending
    request at most: asking twice is asking once). Replaying, a request may say not to advance the
    time cursor (after a cursor key); two merged requests advance only if both did.
    """

    def __init__(self, interval: float, autorefresh: bool, paused: bool = False) -> None:
        self.interval = interval
        self.autorefresh = autorefresh
        self.paused = paused
        self.pending: bool | None = None  # a request's `advance`, None when nothing was asked
        self.busy = False
        self.last_started: float | None = None
        self.last_finished: float | None = None

    def request(self, advance: bool = True) -> None:
        self.pending = advance if self.pending is None else (self.pending and advance)

    def next_due(self, now: float) -> float | None:
        """The time the next sample should start (<= now: start it), None: wait to be asked."""
        if self.busy:
            return None
        if self.pending is not None:
            return now
        if self.paused or not self.autorefresh:
            return None
        if self.last_started is None or self.last_finished is None:
            return now
        # At least a moment between samples even when one took longer than the interval.
        return max(self.last_started + self.interval, self.last_finished + MIN_GAP_S)

    def start(self, now: float) -> bool:
        """A sample starts now; returns whether it advances the replay cursor."""
        advance = True if self.pending is None else self.pending
        self.pending = None
        self.busy = True
        self.last_started = now
        return advance

    def finish(self, now: float) -> None:
        self.busy = False
        self.last_finished = now

    @property
    def idle(self) -> bool:
        """Nothing under way and nothing asked for."""
        return not self.busy and self.pending is None


#: the shortest pause between the end of one sample and the start of the next
MIN_GAP_S = 0.01


class SamplingThread:
    """The one thread that samples for the live view, for as long as it runs.

    Textual's thread workers would cost a Worker, an executor hand-off, state-change messages and
    an asyncio timer per sample; at a 1 s interval that is noise, but a leak hunter watching
    50,000 tags wants every millisecond for the table. Here the thread sleeps on a condition
    until a sample is due or asked for, calls `run(advance)` (which posts the result to the UI)
    and goes back to sleep; samples never overlap and a slow one never blocks the UI.
    """

    def __init__(self, run: Callable[[bool], None], clock: SampleClock) -> None:
        self._run = run
        self.clock = clock
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="pooltop-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()

    def request(self, advance: bool = True) -> None:
        with self._cv:
            self.clock.request(advance)
            self._cv.notify_all()

    def update(self, *, interval: float | None = None, paused: bool | None = None,
               autorefresh: bool | None = None) -> None:
        with self._cv:
            if interval is not None:
                self.clock.interval = interval
            if paused is not None:
                self.clock.paused = paused
            if autorefresh is not None:
                self.clock.autorefresh = autorefresh
            self._cv.notify_all()

    @property
    def idle(self) -> bool:
        with self._cv:
            return self.clock.idle

    def _loop(self) -> None:
        clock, cv = self.clock, self._cv
        while True:
            with cv:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    due = clock.next_due(now)
                    if due is not None and due <= now:
                        advance = clock.start(now)
                        break
                    cv.wait(None if due is None else due - now)
            try:
                self._run(advance)
            except Exception:  # _run reports its own failures; the loop must outlive any bug in it
                pass
            finally:
                with cv:
                    clock.finish(time.monotonic())
                    cv.notify_all()


def _own_process(counters: CounterSet) -> npt.NDArray[np.bool_]:
    """pooltop's own row among process counters."""
    pid = os.getpid()
    return np.fromiter((split_tag(tag)[1] == pid for tag in counters.tags), dtype=np.bool_,
                       count=len(counters))
