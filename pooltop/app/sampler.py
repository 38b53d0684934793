"""The sampling side of the live view: it owns the source's calls and the Tracker.

The UI never touches the Tracker directly: it asks for a sample (run in a worker thread, one at a
time), for a baseline reset (applied before the next update) and for one counter's history; all
three go through here and are serialised by one lock, since Tracker is not thread-safe by design.

A replay (pooltop.record.replay: a source with seek/step/generation) is driven from here too: the
cursor moves under the source lock, and when its `generation` changes (a jump) the Tracker starts
over, so no delta is ever computed across a jump.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from pooltop.model import Snapshot
from pooltop.native import BigPoolAllocation, Source
from pooltop.tracking import TrackedSample, Tracker


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
    def __init__(self, source: Source, tracker: Tracker | None = None) -> None:
        self.source = source
        self.replay = as_replay(source)
        self._tracker = tracker or Tracker()
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
                self._tracker = Tracker(t.window, t.thresholds, t._history_capacity)
            if self._reset_requested.is_set():
                self._reset_requested.clear()
                # The sample on screen when the user asked becomes the baseline.
                self._tracker.reset_baseline()
            return self._tracker.update(snapshot)

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
            return self._tracker.history(tag, pool)

    def big_pool_allocations(self, tag: str) -> list[BigPoolAllocation]:
        with self._source_lock:
            return self.source.big_pool_allocations(tag)
