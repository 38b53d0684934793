"""The verdict as a pure function of (system, process) snapshot pairs: kernel leak, growing process,
nothing, not enough samples; Windows attribution through the processes' pool charge."""

from __future__ import annotations

import dataclasses
import json

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings
from proc_fakes import MiB, load_windows_fixture, process_snapshot, system_snapshot, windows_processes

from pooltop.judge import JudgeThresholds, LeakLevel
from pooltop.model import Snapshot, Totals
from pooltop.processes.source import ProcessReading, read_windows_process, scan_processes
from pooltop.processes.verdict import (
    PoolFindings,
    Verdict,
    VerdictKind,
    VerdictThresholds,
    fitted_to,
)
from pooltop.processes.verdict import judge as judge_pairs
from pooltop.processes.verdict_window import VerdictWindow

Pairs = list[tuple[Snapshot, Snapshot]]


def judge(pairs: Pairs, th: VerdictThresholds | None = None, **kw: object) -> Verdict:
    """These series are short looks (9 to 70 s): judged as `pooltop doctor` judges its window, with
    the judge's evidence windows fitted to the look (the live header uses the full windows)."""
    th = th or VerdictThresholds()
    seconds = (pairs[-1][1].monotonic_ns - pairs[0][1].monotonic_ns) / 1e9 if pairs else 0.0
    return judge_pairs(pairs, fitted_to(th, seconds) if seconds > 0 else th, **kw)  # type: ignore[arg-type]


def linux_pairs(n: int = 10, slab_step: int = 0, grow_step: int = 0, noise: int = 0,
                step_s: float = 1.0, fds_step: int = 0) -> Pairs:
    pairs = []
    for i in range(n):
        procs = [
            ProcessReading(100, "leaky", private=200 * MiB + i * grow_step, rss=300 * MiB, handles=12),
            ProcessReading(200, "pipes", private=30 * MiB + i * 100_000, rss=40 * MiB,
                           handles=10 + i * fds_step),
            ProcessReading(300, "sawtooth", private=(100 + (i % 2) * 20) * MiB, rss=200 * MiB, handles=8),
        ]
        sunreclaim = 100 * MiB + i * slab_step + (noise if i % 2 else 0)
        caches = {"filp": 10 * MiB + i * slab_step // 2, "kmalloc-1k": 8 * MiB + i * slab_step // 2,
                  "dentry": 20 * MiB}
        pairs.append((system_snapshot(i * step_s, Totals(slab_unreclaimable=sunreclaim, memory_total=8 << 30),
                                      caches=caches),
                      process_snapshot(i * step_s, procs)))
    return pairs


def test_slab_growth_without_a_growing_process_is_a_kernel_leak() -> None:
    v = judge(linux_pairs(slab_step=3 * MiB, fds_step=2000))
    assert v.kind is VerdictKind.KERNEL and v.subject is None
    assert v.text == ("kernel/driver leak: unreclaimable slab +27.0 MiB in 9.0 s; top cache filp +13.5 MiB; "
                      "pipes[200] opened +18,000 files (kernel objects it holds)")
    ev = v.evidence
    assert ev.system_growing and ev.system_growth == 27 * MiB and ev.system_rate == 3 * MiB
    assert ev.attributed_growth is None  # Linux charges no slab to processes
    assert [c.tag for c in ev.top_counters] == ["filp", "kmalloc-1k"]
    assert ev.growing_processes == ()
    assert [h.tag for h in ev.handle_growers] == ["pipes[200]"]
    assert "\n" not in v.text


def test_a_growing_process_is_named() -> None:
    v = judge(linux_pairs(grow_step=10 * MiB))
    assert v.kind is VerdictKind.PROCESS and v.subject == "leaky[100]"
    assert v.text == "process leaky[100] is growing: private memory +90.0 MiB in 9.0 s (10.0 MiB/s)"
    g = v.evidence.growing_processes[0]
    assert (g.name, g.pid, g.private_growth, g.growing) == ("leaky", 100, 90 * MiB, True)


def test_kernel_growth_wins_and_still_mentions_the_growing_process() -> None:
    v = judge(linux_pairs(slab_step=3 * MiB, grow_step=10 * MiB))
    assert v.kind is VerdictKind.KERNEL
    assert v.text.endswith("; user memory also growing: leaky[100] +90.0 MiB")


def test_nothing_growing_and_noise_is_not_growth() -> None:
    v = judge(linux_pairs())
    assert v.kind is VerdictKind.NOTHING
    assert v.text.startswith("nothing is growing: unreclaimable slab 0 B in 9.0 s")
    # Up 6 MiB, down 4 MiB, ...: net growth above the threshold but not steady.
    noisy = []
    for i, (s, p) in enumerate(linux_pairs()):
        level = 100 * MiB + (i // 2) * 2 * MiB + (6 * MiB if i % 2 else 0)
        noisy.append((dataclasses.replace(s, totals=Totals(slab_unreclaimable=level)), p))
    v = judge(noisy)
    assert v.evidence.system_growth is not None and v.evidence.system_growth >= 4 * MiB
    assert v.kind is VerdictKind.NOTHING


def test_fewer_samples_than_the_judge_needs_give_no_verdict() -> None:
    # Issue 14: "too few samples for a verdict (at least N)" everywhere (two samples used to do).
    pairs = linux_pairs(n=5, grow_step=20 * MiB)
    assert judge(pairs).subject == "leaky[100]"
    four = judge(pairs[:4])
    assert four.kind is VerdictKind.UNKNOWN and four.text == "too few samples for a verdict (at least 5)"
    assert judge(pairs[:1]).kind is VerdictKind.UNKNOWN
    assert judge([]).kind is VerdictKind.UNKNOWN


def test_a_process_that_exited_is_not_named() -> None:
    pairs = linux_pairs(grow_step=10 * MiB)
    last_sys, last_proc = pairs[-1]
    keep = [r for r in range(len(last_proc.counters)) if last_proc.counters.tags[r] != "leaky[100]"]
    pairs[-1] = (last_sys, dataclasses.replace(last_proc, counters=last_proc.counters.select(keep)))
    assert judge(pairs).kind is VerdictKind.NOTHING


def test_without_system_totals_processes_are_still_judged() -> None:
    pairs = [(dataclasses.replace(s, totals=Totals()), p) for s, p in linux_pairs(grow_step=10 * MiB)]
    v = judge(pairs)
    assert v.kind is VerdictKind.PROCESS and v.text.endswith("(unreclaimable slab not readable)")
    flat = [(dataclasses.replace(s, totals=Totals()), p) for s, p in linux_pairs()]
    assert "cannot be told" in judge(flat).text


def test_thresholds_are_the_callers() -> None:
    pairs = linux_pairs(slab_step=1 * MiB)
    assert judge(pairs).kind is VerdictKind.KERNEL  # 9 MiB >= 4 MiB
    assert judge(pairs, VerdictThresholds(system_min_growth_bytes=16 * MiB)).kind is VerdictKind.NOTHING


# --- Windows ------------------------------------------------------------------------------------


def windows_pairs(pool_step: int, agent_pool_step: int, agent_private_step: int = 0, n: int = 8) -> Pairs:
    doc = load_windows_fixture()
    base, _ = scan_processes(windows_processes(doc), read_windows_process)
    pairs = []
    for i in range(n):
        readings = [
            dataclasses.replace(r, paged_pool=r.paged_pool + i * agent_pool_step,
                                private=r.private + i * agent_private_step, handles=r.handles + i * 5000)
            if r.name == "AcmeBackupAgent.exe" else r
            for r in base
        ]
        totals = Totals(**{**doc["totals"], "paged_pool": doc["totals"]["paged_pool"] + i * pool_step})
        t = i * 10.0
        pairs.append((system_snapshot(t, totals, "windows"), process_snapshot(t, readings, "windows")))
    return pairs


def test_windows_pool_growth_charged_to_a_process_names_the_process() -> None:
    v = judge(windows_pairs(pool_step=2 * MiB, agent_pool_step=2 * MiB))
    assert v.kind is VerdictKind.PROCESS and v.subject == "AcmeBackupAgent.exe[3104]"
    assert v.text == ("process AcmeBackupAgent.exe[3104] is growing: its pool +14.0 MiB (handles +35,000) is "
                      "100% of the paged+nonpaged pool's +14.0 MiB in 70 s")
    assert v.evidence.attributed_growth == 14 * MiB


def test_windows_pool_growth_nobody_is_charged_for_is_a_driver_leak() -> None:
    v = judge(windows_pairs(pool_step=2 * MiB, agent_pool_step=0))
    assert v.kind is VerdictKind.KERNEL
    assert v.text.startswith(
        "kernel/driver leak: paged+nonpaged pool +14.0 MiB in 70 s, processes' pool only 0 B")
    assert v.evidence.system_measure == "paged+nonpaged pool"


def test_windows_private_bytes_growth_with_a_flat_pool() -> None:
    v = judge(windows_pairs(pool_step=0, agent_pool_step=0, agent_private_step=50 * MiB))
    assert v.kind is VerdictKind.PROCESS
    assert v.text.startswith("process AcmeBackupAgent.exe[3104] is growing: private bytes +350.0 MiB in 70 s")


# --- the live window, and properties ------------------------------------------------------------


def test_verdict_window_slides_and_drops_counters() -> None:
    short = fitted_to(VerdictThresholds(), 4.0)
    window = VerdictWindow(size=5, thresholds=short)
    pairs = linux_pairs(slab_step=3 * MiB)
    for system, procs in pairs:
        v = window.push(system, procs)
    assert len(window) == 5
    assert v.kind is VerdictKind.KERNEL and v.evidence.samples == 5 and v.evidence.system_growth == 12 * MiB
    assert v.evidence.top_counters == ()  # counters are not kept unless asked
    kept = VerdictWindow(size=5, thresholds=short, keep_counters=True)
    for system, procs in pairs:
        v = kept.push(system, procs)
    assert v.evidence.top_counters[0].tag == "filp"
    json.dumps(v.to_json())
    window.clear()
    assert window.verdict().kind is VerdictKind.UNKNOWN


@settings(max_examples=60, deadline=None)
@given(
    slab=st.lists(st.integers(0, 1 << 34), min_size=1, max_size=12),
    private=st.lists(st.lists(st.integers(0, 1 << 34), min_size=3, max_size=3), min_size=1, max_size=12),
    present=st.lists(st.booleans(), min_size=36, max_size=36),
)
def test_any_series_gives_one_line_and_a_consistent_kind(slab: list[int], private: list[list[int]],
                                                         present: list[bool]) -> None:
    n = min(len(slab), len(private))
    pairs = []
    for i in range(n):
        readings = [ProcessReading(pid, f"p{pid}", private=private[i][pid], rss=0, handles=pid)
                    for pid in range(3) if present[i * 3 + pid]]
        pairs.append((system_snapshot(float(i), Totals(slab_unreclaimable=slab[i])),
                      process_snapshot(float(i), readings)))
    v = judge(pairs)
    assert "\n" not in v.text and v.text
    json.dumps(v.to_json())
    if n < 5:
        assert v.kind is VerdictKind.UNKNOWN
    if v.kind is VerdictKind.PROCESS:
        assert v.subject in pairs[-1][1].counters.tags
    if v.kind is VerdictKind.KERNEL:
        assert v.evidence.system_growing


# --- issue 14: the verdict agrees with the pool table, on the pools' evidence window ---------------


def test_a_leaking_pool_row_is_named_when_the_totals_do_not_grow() -> None:
    # The live header used to say "nothing is growing" while a row said LEAK.
    pools = PoolFindings("filp", "slab", LeakLevel.LEAK, 2 * MiB, 180.0, leaks=2, suspects=5)
    v = judge(linux_pairs(), pools=pools)
    assert v.kind is VerdictKind.KERNEL
    assert v.text == "kernel/driver leak: cache filp is leak (+2.0 MiB in 3 min; 2 leak, 5 suspect)"
    suspect = PoolFindings("Leak", "nonpaged", LeakLevel.SUSPECT, 300_000, 40.0, leaks=0, suspects=1)
    line = judge(linux_pairs(n=1), pools=suspect).text
    assert line.startswith("kernel/driver suspect: tag Leak is suspect")


def test_pool_findings_take_the_top_row_of_the_judge() -> None:
    from helpers import make_snapshot

    from pooltop.tracking import Tracker

    tracker = Tracker(JudgeThresholds(suspect_window_s=5, leak_window_s=10))
    for i in range(12):
        sample = tracker.update(make_snapshot([("Flat", 0, 0, 0, 1000), ("Grow", 0, 0, 0, 100_000 * (i + 1))],
                                              float(i), diff=[0, 0]))
    found = PoolFindings.of(sample.counters, sample.leak)
    assert found is not None and (found.tag, found.level, found.leaks) == ("Grow", LeakLevel.LEAK, 1)
    flat = np.flatnonzero(np.array(sample.counters.tags) == "Flat")
    assert sample.leak.level(int(flat[0])) is LeakLevel.STABLE
    quiet = Tracker().update(make_snapshot([("Flat", 0, 0, 0, 1000)], 0.0, diff=[0]))
    assert PoolFindings.of(quiet.counters, quiet.leak) is None


def test_a_process_warming_up_is_not_growing_on_the_live_window() -> None:
    # 20 s of steady growth from start: the live header (full evidence windows) waits for the suspect
    # window; a doctor-style look fitted to those 20 s calls it growing.
    pairs = linux_pairs(n=21, grow_step=10 * MiB)
    assert judge_pairs(pairs).kind is VerdictKind.NOTHING
    assert judge(pairs).kind is VerdictKind.PROCESS


def test_pooltops_own_process_is_never_judged() -> None:
    pairs = linux_pairs(grow_step=10 * MiB)
    assert judge(pairs).subject == "leaky[100]"
    assert judge(pairs, exclude_pids=(100,)).kind is VerdictKind.NOTHING
    window = VerdictWindow(thresholds=fitted_to(VerdictThresholds(), 9.0), own_pid=100)
    for system, procs in pairs:
        v = window.push(system, procs)
    assert v.kind is VerdictKind.NOTHING


def test_the_window_follows_the_pool_table_between_process_samples() -> None:
    window = VerdictWindow(thresholds=fitted_to(VerdictThresholds(), 9.0))
    for system, procs in linux_pairs():
        v = window.push(system, procs)
    assert v.kind is VerdictKind.NOTHING
    pools = PoolFindings("filp", "slab", LeakLevel.SUSPECT, 300_000, 40.0, leaks=0, suspects=1)
    moved = window.with_pools(pools)  # no new process sample: the measures are reused
    assert moved.kind is VerdictKind.KERNEL and "cache filp is suspect" in moved.text
    assert window.with_pools(None).text == v.text
