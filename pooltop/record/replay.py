"""Replaying a recording through the same Source interface the live view uses, with a time cursor."""

from __future__ import annotations

import dataclasses
import threading

from pooltop.errors import BadInput
from pooltop.model import Snapshot
from pooltop.native import Source
from pooltop.record.codec import FrameState
from pooltop.record.reader import Recording, SampleRow


class ReplaySource(Source):
    """A recording played back sample by sample.

    `sample()` returns the sample under the cursor, then moves the cursor `speed` samples on
    (0 while paused). `seek()` jumps; each jump bumps `generation`, so a consumer that keeps
    history (the Tracker) knows to start over instead of computing deltas across the jump.
    Times are the recording's wall clock, so intervals and rates are those of the recording.
    """

    def __init__(self, path: str, start: int = 0, speed: int = 1) -> None:
        self.recording = Recording(path)
        self.info = self.recording.info
        self.name = self.info.source
        if self.info.samples == 0:
            self.recording.close()
            raise BadInput(f"{path} holds no samples")
        self._ids = self.recording.sample_ids()
        self._lock = threading.Lock()
        self.speed = speed
        self.generation = 0
        self._index = -1
        self._state: FrameState | None = None
        self._row: SampleRow | None = None
        self._seek_locked(self._clamp(start))

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def position(self) -> int:
        return self._index

    @property
    def at_end(self) -> bool:
        return self._index >= len(self._ids) - 1

    def _clamp(self, index: int) -> int:
        if index < 0:
            index += len(self._ids)
        return max(0, min(index, len(self._ids) - 1))

    def _seek_locked(self, index: int) -> None:
        self._state, self._row = self.recording.state_at(self._ids[index])
        self._index = index

    def _step_locked(self) -> None:
        """One sample forward: apply just the next frame."""
        assert self._state is not None
        self._row = self.recording.advance(self._state, self._ids[self._index + 1])
        self._index += 1

    def seek(self, index: int) -> None:
        with self._lock:
            target = self._clamp(index)
            if target != self._index:
                self._seek_locked(target)
                self.generation += 1

    def step(self, count: int = 1) -> None:
        """Move the cursor by `count` samples (negative goes back; a jump for the Tracker)."""
        if count == 1 and not self.at_end:
            with self._lock:
                self._step_locked()
        else:
            self.seek(self._index + count)

    def current(self) -> Snapshot:
        with self._lock:
            assert self._state is not None and self._row is not None
            snap = self.recording.snapshot(self._state, self._row)
        # The wall clock stands in for the monotonic one: a recording may span reboots.
        return dataclasses.replace(snap, monotonic_ns=int(snap.taken_at.timestamp() * 1e9))

    def sample(self) -> Snapshot:
        snap = self.current()
        with self._lock:
            for _ in range(self.speed):
                if self.at_end:
                    break
                self._step_locked()
        return snap

    def close(self) -> None:
        self.recording.close()


class SequenceSource(Source):
    """Snapshots already in memory (imported files, a few exports) played back like a recording."""

    def __init__(self, snapshots: list[Snapshot], speed: int = 1) -> None:
        if not snapshots:
            raise BadInput("nothing to replay: no snapshots")
        self._snaps = sorted(snapshots, key=lambda s: s.taken_at)
        self.name = self._snaps[0].source
        self.speed = speed
        self.generation = 0
        self._index = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._snaps)

    @property
    def position(self) -> int:
        return self._index

    @property
    def at_end(self) -> bool:
        return self._index >= len(self._snaps) - 1

    def seek(self, index: int) -> None:
        with self._lock:
            if index < 0:
                index += len(self._snaps)
            target = max(0, min(index, len(self._snaps) - 1))
            if target != self._index:
                self._index = target
                self.generation += 1

    def step(self, count: int = 1) -> None:
        if count == 1 and not self.at_end:
            with self._lock:
                self._index += 1
        else:
            self.seek(self._index + count)

    def current(self) -> Snapshot:
        snap = self._snaps[self._index]
        return dataclasses.replace(snap, monotonic_ns=int(snap.taken_at.timestamp() * 1e9))

    def sample(self) -> Snapshot:
        snap = self.current()
        with self._lock:
            self._index = min(self._index + self.speed, len(self._snaps) - 1)
        return snap

