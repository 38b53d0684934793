"""Process rows through the real Tracker: a steadily growing process gets a leak level, a saw-tooth one
does not, processes that start and exit are new / vanished rows, and rates are per second."""

from __future__ import annotations

import numpy as np
from proc_fakes import MiB, process_snapshot

from pooltop.judge import JudgeThresholds, LeakLevel
from pooltop.model import CounterSet
from pooltop.processes.source import ProcessReading
from pooltop.tracking import Tracker


def readings(i: int) -> list[ProcessReading]:
    out = [
        # leaks 2 MiB a sample, never frees
        ProcessReading(100, "leaky", private=50 * MiB + i * 2 * MiB, rss=80 * MiB, handles=20 + i),
        # allocates and frees in cycles: up, down, up, ...
        ProcessReading(200, "cache", private=(30 + (i % 2) * 4) * MiB, rss=40 * MiB, handles=10),
        ProcessReading(300, "idle", private=8 * MiB, rss=12 * MiB, handles=4),
    ]
    if 3 <= i < 7:
        out.append(ProcessReading(400, "cron-job", private=2 * MiB, rss=3 * MiB, handles=6))
    return out


def test_a_growing_process_becomes_a_leak_and_the_others_stay_stable() -> None:
    # A 20-second leak window (evidence is time since issue 14), so 18 s of it fit 10 samples.
    tracker = Tracker(JudgeThresholds(suspect_window_s=6, leak_window_s=18))
    levels: dict[str, list[LeakLevel]] = {}
    for i in range(12):
        sample = tracker.update(process_snapshot(i * 2.0, readings(i)))
        for row, tag in enumerate(sample.counters.tags):
            levels.setdefault(tag, []).append(sample.leak.level(row))
    assert levels["leaky[100]"][-1] is LeakLevel.LEAK
    assert levels["leaky[100]"][:3] == [LeakLevel.STABLE] * 3  # too few samples to call it yet
    assert set(levels["cache[200]"]) == {LeakLevel.STABLE}
    assert set(levels["idle[300]"]) == {LeakLevel.STABLE}
    row = sample.counters.tags.index("leaky[100]")
    assert sample.leak.slope[row] == 1 * MiB  # 2 MiB every 2 s
    assert sample.leak.growth[row] == 9 * 2 * MiB  # over the 10-sample window
    assert sample.since_baseline.bytes[row] == 11 * 2 * MiB
    assert sample.interval.rate("bytes")[row] == 1 * MiB
    assert sample.since_baseline.diff[row] == 11  # handles, as diff


def test_processes_that_start_and_exit_are_new_and_vanished_rows() -> None:
    tracker = Tracker()
    seen_new = seen_gone = False
    for i in range(9):
        sample = tracker.update(process_snapshot(float(i), readings(i)))
        tags = sample.counters.tags
        if i == 3:
            row = tags.index("cron-job[400]")
            assert sample.interval.is_new[row] and sample.interval.bytes[row] == 2 * MiB
            seen_new = True
        if i == 7:
            assert "cron-job[400]" not in tags
            assert sample.interval.vanished.tags == ("cron-job[400]",)
            seen_gone = True
    assert seen_new and seen_gone
    assert tracker.history("leaky[100]", 4)[1][-1] == 50 * MiB + 8 * 2 * MiB


def test_pooltops_own_row_is_never_judged() -> None:
    # The live view passes its own process as exempt: its history buffers fill for minutes.
    def own(counters: CounterSet) -> np.ndarray:
        return np.array([tag == "leaky[100]" for tag in counters.tags])

    tracker = Tracker(JudgeThresholds(suspect_window_s=6, leak_window_s=18), exempt=own)
    for i in range(12):
        sample = tracker.update(process_snapshot(i * 2.0, readings(i)))
    row = sample.counters.tags.index("leaky[100]")
    assert sample.leak.level(row) is LeakLevel.STABLE
    assert sample.leak.reasons(row) == ("not judged: pooltop's own process",)
