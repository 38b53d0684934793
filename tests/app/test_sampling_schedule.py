"""The sampling side of the live view without a screen: when samples and process samples are due."""

from __future__ import annotations

import itertools

from helpers import make_snapshot
from tui_fakes import ScriptedProcesses

from pooltop.app.sampler import MIN_GAP_S, SampleClock, Sampler
from pooltop.model import Pool, Snapshot
from pooltop.native import Source
from pooltop.processes.verdict import VerdictKind

NP = int(Pool.NONPAGED)


class StepSource(Source):
    """Two tags, one sample a second; from `leak_from` on, "Leak" grows 1 MiB a sample."""

    name = "windows-pooltag"

    def __init__(self, leak_from: int | None = None) -> None:
        self.leak_from = leak_from
        self.t = 0

    def sample(self) -> Snapshot:
        t = self.t
        self.t += 1
        grown = 0 if self.leak_from is None or t < self.leak_from else (t - self.leak_from + 1) << 20
        return make_snapshot([("Leak", NP, 1000, 10, (8 << 20) + grown), ("Flat", NP, 500, 5, 4 << 20)],
                             float(t), source=self.name)


def process_times(sampler: Sampler, seconds: int) -> list[int]:
    """The source seconds at which processes were sampled, one pool sample a second."""
    times = []
    for t in range(seconds):
        sampler.take()
        if sampler.judge():
            times.append(t)
    return times


def test_processes_back_off_while_nothing_grows() -> None:
    sampler = Sampler(StepSource(), processes=ScriptedProcesses(), process_every_s=1, quiet_factor=6)
    times = process_times(sampler, 40)
    assert sampler.verdict is not None and sampler.verdict.kind is VerdictKind.NOTHING
    gaps = [b - a for a, b in itertools.pairwise(times)]
    quiet_from = gaps.index(6)
    assert quiet_from >= 1 and set(gaps[:quiet_from]) == {1}  # every second until the verdict says so
    assert set(gaps[quiet_from:]) == {6}


def test_a_suspect_pool_counter_brings_the_process_samples_back() -> None:
    sampler = Sampler(StepSource(leak_from=20), processes=ScriptedProcesses(), process_every_s=1,
                      quiet_factor=6)
    times = process_times(sampler, 45)
    late = [b - a for a, b in itertools.pairwise(times) if a >= 30]
    assert 6 in [b - a for a, b in itertools.pairwise(times) if b <= 20]  # quiet before
    assert late and set(late) == {1}  # the leak is suspect by then: every second again


def test_clock_merges_requests_and_keeps_the_interval() -> None:
    clock = SampleClock(interval=1.0, autorefresh=True)
    assert clock.next_due(10.0) == 10.0  # nothing sampled yet: now
    assert clock.start(10.0) is True
    clock.request(advance=False)
    clock.request(advance=True)  # merged: advances only if every request did
    assert clock.next_due(10.2) is None  # busy
    clock.finish(10.3)
    assert clock.next_due(10.3) == 10.3  # the pending request, at once
    assert clock.start(10.3) is False
    clock.finish(10.4)
    assert clock.next_due(10.4) == 11.3  # an interval after the last start
    assert clock.start(11.3) is True
    clock.finish(12.5)  # slower than the interval
    assert clock.next_due(12.5) == 12.5 + MIN_GAP_S  # a moment's gap, not a pile-up
    clock.paused = True
    assert clock.next_due(20.0) is None
    clock.request()
    assert clock.next_due(20.0) == 20.0  # asked for while paused: still taken
    assert clock.idle is False
