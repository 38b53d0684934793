"""Messages from the sampling worker to the UI: small, immutable payloads (toolong's pattern)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from pooltop.native import BigPoolAllocation
from pooltop.processes.verdict import Verdict
from pooltop.tracking import TrackedSample


@dataclass
class SampleReady(Message):
    """A new sample, already tracked (deltas, baseline, leak levels) on the sampling side."""

    sample: TrackedSample
    elapsed_s: float  # how long the source took, shown when sampling is slow
    position: int = -1  # replaying: the index of this sample in the recording

    def can_replace(self, message: Message) -> bool:
        # A UI that fell behind shows the newest sample and drops the ones it never drew.
        return isinstance(message, SampleReady)


@dataclass
class ProcessesReady(Message):
    """A new process sample (every few seconds, after the pool sample it was paired with)."""

    verdict: Verdict | None  # driver or application? (None: no process data, or it failed)
    processes: TrackedSample | None  # the latest tracked process snapshot


@dataclass
class SampleFailed(Message):
    """The source raised: shown in the header; the UI stays up and sampling retries next tick."""

    reason: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SampleReady | SampleFailed)


@dataclass
class BigPoolReady(Message):
    """Big-pool allocations of one tag for the detail pane (or why there are none)."""

    tag: str
    allocations: tuple[BigPoolAllocation, ...]
    note: str | None
