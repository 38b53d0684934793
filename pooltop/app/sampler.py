"""The sampling side of the live view: it owns the source's calls and the Tracker.

The UI never touches the Tracker directly: it asks for a sample (run in a worker thread, one at a
time), for a baseline reset (applied before the next update) and for one counter's history; all
three go through here and are serialised by one lock, since Tracker is not thread-safe by design.
"""

from __future__ import annotations

import threading

from pooltop.native import BigPoolAllocation, Source
from pooltop.tracking import TrackedSample, Tracker


class Sampler:
    def __init__(self, source: Source, tracker: Tracker | None = None) -> None:
        self.source = source
        self._tracker = tracker or Tracker()
        self._tracker_lock = threading.Lock()
        self._source_lock = threading.Lock()
        self._reset_requested = threading.Event()

    def take(self) -> TrackedSample:
        """One snapshot, tracked. Called from the worker thread; raises what the source raises."""
        with self._source_lock:
            snapshot = self.source.sample()
        with self._tracker_lock:
            if self._reset_requested.is_set():
                self._reset_requested.clear()
                # The sample on screen when the user asked becomes the baseline.
                self._tracker.reset_baseline()
            return self._tracker.update(snapshot)

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
