"""Processes as counter rows: names, the Linux and Windows readers (fake psutil processes and the
recorded Windows fixture), the gaps (vanished, denied, zombies) and the table helpers."""

from __future__ import annotations

import numpy as np
import psutil
import pytest
from proc_fakes import (
    FakeProcess,
    MiB,
    linux_process,
    load_windows_fixture,
    process_snapshot,
    windows_processes,
)

from pooltop.errors import Unsupported
from pooltop.model import Pool, Totals
from pooltop.processes.source import (
    LINUX_SOURCE,
    UNKNOWN,
    WINDOWS_SOURCE,
    ProcessReading,
    ProcessSource,
    ScanStats,
    process_tag,
    read_linux_process,
    read_windows_process,
    scan_processes,
    split_tag,
)
from pooltop.processes.table import process_columns, process_view, sort_process_rows
from pooltop.query import select_rows
from pooltop.tracking import Tracker


@pytest.mark.parametrize(
    ("name", "pid", "tag"),
    [
        ("bash", 12, "bash[12]"),
        ("Web Content", 7, "Web Content[7]"),
        ("evil\x1b[31m", 3, "evil\\x1b[31m[3]"),
        ("back\\slash", 4, "back\\x5cslash[4]"),
        ("", 5, "?[5]"),
        ("a[1]", 2, "a[1][2]"),
        ("日本語", 9, "日本語[9]"),
        ("zero\u200bwidth", 6, "zero\\u200bwidth[6]"),
        ("x" * 100, 1, "x" * 64 + "[1]"),
    ],
)
def test_process_tags_are_readable_unique_and_safe(name: str, pid: int, tag: str) -> None:
    assert process_tag(name, pid) == tag
    assert all(ch.isprintable() for ch in tag)
    assert split_tag(tag)[1] == pid


def test_split_tag_of_something_else() -> None:
    assert split_tag("Leak") == ("Leak", None)
    assert split_tag("x[y]") == ("x[y]", None)


# --- Linux reader -------------------------------------------------------------------------------


def test_linux_reader_prefers_uss_and_falls_back_to_rss_minus_shared() -> None:
    own = read_linux_process(linux_process(10, "postgres", rss=100 * MiB, shared=30 * MiB, uss=60 * MiB,
                                           swap=2 * MiB, fds=40))
    assert own == ProcessReading(pid=10, name="postgres", private=60 * MiB, rss=100 * MiB, handles=40,
                                 swap=2 * MiB, private_is_uss=True, partial=False)
    other = read_linux_process(linux_process(11, "sshd", rss=8 * MiB, shared=5 * MiB, uss=None, fds=None))
    assert other is not None
    assert (other.private, other.private_is_uss, other.handles, other.swap, other.partial) == (
        3 * MiB, False, UNKNOWN, UNKNOWN, True)
    # Asked not to read smaps: the estimate, and the row is not partial for that.
    fast = read_linux_process(linux_process(12, "x", rss=8 * MiB, shared=2 * MiB, uss=1, fds=3),
                              exact_private=False)
    assert fast is not None and fast.private == 6 * MiB and not fast.private_is_uss and not fast.partial


def test_linux_reader_skips_kernel_threads_and_raises_for_zombies() -> None:
    assert read_linux_process(linux_process(2, "kthreadd", rss=0, shared=0, uss=0, vms=0)) is None
    with pytest.raises(psutil.ZombieProcess):
        read_linux_process(linux_process(99, "defunct", rss=0, shared=0, uss=0, vms=0,
                                         status=psutil.STATUS_ZOMBIE))


def test_scan_counts_gaps_once_instead_of_failing() -> None:
    procs = [
        linux_process(1, "init", rss=10 * MiB, shared=6 * MiB, uss=4 * MiB),
        linux_process(2, "kthreadd", rss=0, shared=0, uss=0, vms=0),
        linux_process(50, "gone", rss=1, shared=0, uss=1, error="NoSuchProcess"),
        linux_process(51, "zombie", rss=0, shared=0, uss=0, status=psutil.STATUS_ZOMBIE),
        linux_process(52, "other-user", rss=9 * MiB, shared=4 * MiB, uss=None, fds=None),
        linux_process(53, "other-user", rss=9 * MiB, shared=4 * MiB, uss=None, fds=None),
        linux_process(54, "hidden", rss=1, shared=0, uss=1, error="AccessDenied"),
        FakeProcess(55, error="ZombieProcess"),
        linux_process(56, "odd", rss=1, shared=0, uss=1, memory_full_info_error="Error"),
    ]
    readings, stats = scan_processes(procs, read_linux_process)
    assert [r.pid for r in readings] == [1, 52, 53]
    assert (stats.rows, stats.partial, stats.denied, stats.vanished, stats.zombies, stats.kernel_threads,
            stats.failed) == (3, 2, 1, 1, 2, 1, 1)
    warnings = stats.warnings("linux")
    assert len(warnings) == 4  # one line per kind of gap, never one per process
    assert warnings[0].startswith("2 processes read only in part") and "run as root" in warnings[0]
    assert warnings[1].startswith("1 process not readable")
    assert warnings[2].startswith("1 process not read (an error")
    assert warnings[3].startswith("2 zombie processes")
    assert "run as root" not in stats.warnings("linux", elevated=True)[0]


def test_linux_source_builds_process_rows_with_totals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 400 kB\nSUnreclaim: 50 kB\n")
    procs = [linux_process(30, "b", rss=5 * MiB, shared=1 * MiB, uss=3 * MiB, fds=7),
             linux_process(4, "a", rss=9 * MiB, shared=1 * MiB, uss=None, fds=None)]
    source = ProcessSource("linux", process_iter=lambda: procs, proc_root=str(tmp_path),
                           host=lambda: process_snapshot(0, []).host, monotonic_ns=lambda: 42, elevated=False)
    taken = source.sample_with_stats()
    snap = taken.snapshot
    assert snap.source == LINUX_SOURCE and snap.monotonic_ns == 42
    assert snap.totals.slab_unreclaimable == 50 * 1024 and snap.totals.memory_total == 1000 * 1024
    c = snap.counters
    assert c.tags == ("a[4]", "b[30]")  # ordered by pid
    assert set(c.pools.tolist()) == {Pool.PROCESS}
    assert not c.has_alloc_counts and c.counter_bits == 64
    assert c.bytes.tolist() == [8 * MiB, 3 * MiB] and c.diff.tolist() == [UNKNOWN, 7]
    assert c.extra["pid"].tolist() == [4, 30] and c.extra["private_is_uss"].tolist() == [0, 1]
    assert len(snap.warnings) == 1 and taken.stats.partial == 1


def test_unreadable_totals_are_a_warning_not_a_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = ProcessSource("linux", process_iter=list, proc_root=str(tmp_path / "missing"),
                           host=lambda: process_snapshot(0, []).host)
    snap = source.sample()
    assert snap.totals == Totals() and len(snap.counters) == 0
    assert any("system memory totals not read" in w for w in snap.warnings)


def test_other_platforms_are_unsupported() -> None:
    with pytest.raises(Unsupported, match="darwin"):
        ProcessSource("darwin")


# --- Windows reader (recorded psutil answers) ---------------------------------------------------


def test_windows_reader_from_the_recorded_fixture() -> None:
    doc = load_windows_fixture()
    readings, stats = scan_processes(windows_processes(doc), read_windows_process)
    by_name = {r.name: r for r in readings}
    agent = by_name["AcmeBackupAgent.exe"]
    raw = next(p for p in doc["processes"] if p["name"] == "AcmeBackupAgent.exe")["memory_info"]
    assert agent.private == raw["private"] and agent.rss == raw["wset"]
    assert (agent.paged_pool, agent.nonpaged_pool) == (raw["paged_pool"], raw["nonpaged_pool"])
    assert (agent.peak_paged_pool, agent.peak_nonpaged_pool, agent.peak_private) == (
        raw["peak_paged_pool"], raw["peak_nonpaged_pool"], raw["peak_pagefile"])
    assert agent.handles == 251377
    assert by_name["csrss.exe"].handles == UNKNOWN and by_name["csrss.exe"].partial
    assert "MsMpEng.exe" not in by_name and "short-lived.exe" not in by_name
    assert (stats.denied, stats.vanished, stats.partial) == (1, 1, 1)
    assert "elevated prompt" in stats.warnings("windows")[0]


def test_windows_source_rows_and_columns() -> None:
    doc = load_windows_fixture()
    source = ProcessSource("win32", process_iter=lambda: windows_processes(doc),
                           totals=lambda: Totals(**doc["totals"]),
                           host=lambda: process_snapshot(0, [], "windows").host)
    snap = source.sample()
    assert snap.source == WINDOWS_SOURCE
    c = snap.counters
    row = c.tags.index("AcmeBackupAgent.exe[3104]")
    assert c.diff[row] == 251377 and c.bytes[row] == 161062912
    assert "Tool With Spaces.exe[5012]" in c.tags
    assert set(c.extra) == {"pid", "rss", "paged_pool", "nonpaged_pool", "peak_paged_pool",
                            "peak_nonpaged_pool", "peak_private"}
    order = sort_process_rows(c, "pool")
    assert c.tags[order[0]] == "AcmeBackupAgent.exe[3104]"
    assert c.tags[sort_process_rows(c, "handles")[0]] == "AcmeBackupAgent.exe[3104]"
    view = process_view(snap, order[:2])
    assert [col.meta.key for col in view.columns] == [
        "process", "private", "paged_pool", "nonpaged_pool", "handles", "rss", "peak_paged_pool",
        "peak_nonpaged_pool", "peak_private"]
    first = next(view.records())
    assert first["process"] == "AcmeBackupAgent.exe[3104]" and first["paged_pool"] == 121634816


# --- columns, sorting, filters ------------------------------------------------------------------


def _three(t: float = 0.0, grow: int = 0) -> list[ProcessReading]:
    return [ProcessReading(10, "alpha", private=5 * MiB + grow, rss=9 * MiB, handles=3, swap=0),
            ProcessReading(20, "beta", private=9 * MiB, rss=10 * MiB, handles=300, swap=UNKNOWN),
            ProcessReading(30, "gamma", private=1 * MiB, rss=50 * MiB, handles=UNKNOWN, swap=4 * MiB)]


def test_sorting_reuses_the_query_keys_and_adds_process_ones() -> None:
    snap = process_snapshot(0, _three())
    c = snap.counters

    def names(key: str, descending: bool | None = None) -> list[str]:
        return [c.tags[i].partition("[")[0] for i in sort_process_rows(c, key, descending)]

    assert names("private") == names("bytes") == ["beta", "alpha", "gamma"]
    assert names("rss") == ["gamma", "beta", "alpha"]
    assert names("swap") == ["gamma", "alpha", "beta"]  # unknown (-1) last
    assert names("name") == names("tag") == ["alpha", "beta", "gamma"]
    assert names("pid") == ["alpha", "beta", "gamma"]
    assert names("fds", descending=False) == ["gamma", "alpha", "beta"]
    with pytest.raises(ValueError, match="needs two samples"):
        sort_process_rows(c, "dprivate")
    with pytest.raises(ValueError, match="unknown sort key"):
        sort_process_rows(c, "allocs")


def test_change_sorts_and_filters_work_on_tracked_process_samples() -> None:
    tracker = Tracker()
    first = process_snapshot(0, _three())
    tracker.update(first)
    second = process_snapshot(2, _three(grow=40 * MiB))
    sample = tracker.update(second)
    c = sample.counters
    order = sort_process_rows(c, "dprivate", deltas=sample.interval)
    assert c.tags[order[0]] == "alpha[10]" and sample.interval.bytes[order[0]] == 40 * MiB
    rows = select_rows(c, include=["b*", "g*"])
    assert [c.tags[i] for i in rows] == ["beta[20]", "gamma[30]"]
    view = process_view(second, order, sample.interval, first)
    assert [col.meta.key for col in view.columns] == ["process", "private", "d_private", "fds", "d_fds",
                                                      "rss", "swap"]
    rec = next(view.records())
    assert rec["d_private"] == 40 * MiB and rec["d_fds"] == 0
    gamma = list(view.records())[-1]
    assert gamma["fds"] is None and gamma["swap"] == 4 * MiB  # unknown shown as None, not -1


def test_columns_per_os() -> None:
    linux = {c.meta.key for c in process_columns("linux", changes=True)}
    windows = {c.meta.key for c in process_columns("windows", changes=False)}
    assert {"fds", "d_fds", "swap"} <= linux and not linux & {"handles", "paged_pool"}
    assert {"handles", "paged_pool", "nonpaged_pool", "peak_private"} <= windows
    assert not any(c.meta.is_change for c in process_columns("windows", changes=False))
    assert all(c.meta.help and c.meta.title for c in process_columns("windows", changes=True))


def test_scan_stats_default_is_quiet() -> None:
    assert ScanStats().warnings("linux") == ()
    assert np.array_equal(process_snapshot(0, []).counters.bytes, np.zeros(0))
