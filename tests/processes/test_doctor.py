"""`pooltop doctor`'s model: findings, severities, exit codes and output, from scripted samples and the
recorded-format log fixtures; and the sampling loop over fake sources."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import pytest
from helpers import DATA
from proc_fakes import MiB, linux_process, process_snapshot, system_snapshot
from test_verdict import linux_pairs, windows_pairs

from pooltop.model import Snapshot, Totals
from pooltop.native import Source
from pooltop.processes.doctor import (
    EXIT_FINDINGS,
    DoctorThresholds,
    Severity,
    collect_samples,
    diagnose,
    format_report_text,
    run_doctor,
    sample_step,
)
from pooltop.processes.logs import LogText
from pooltop.processes.source import ProcessSource, ScanStats

EVENTS = os.path.join(DATA, "events")
GiB = 1 << 30
HEALTHY = Totals(slab_unreclaimable=100 * MiB, memory_total=8 * GiB, memory_available=6 * GiB,
                 swap_total=2 * GiB, swap_free=2 * GiB)


def log(source: str, *parts: str) -> LogText:
    with open(os.path.join(EVENTS, *parts), encoding="utf-8") as f:
        return LogText(source, f.read())


def with_totals(pairs: list[tuple[Snapshot, Snapshot]], totals: Totals, uptime: float | None = None
                ) -> list[tuple[Snapshot, Snapshot]]:
    out = []
    for s, p in pairs:
        host = dataclasses.replace(s.host, uptime_s=uptime) if uptime is not None else s.host
        slab = s.totals.slab_unreclaimable or totals.slab_unreclaimable
        t = dataclasses.replace(totals, slab_unreclaimable=slab)
        out.append((dataclasses.replace(s, totals=t, host=host), p))
    return out


def checks(report) -> dict[str, list[Severity]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Severity]] = {}
    for f in report.findings:
        out.setdefault(f.check, []).append(f.severity)
    return out


CLEAN = LogText("journalctl", "")
NOW = dt.datetime(2026, 1, 2, 6, 0, tzinfo=dt.UTC)


def test_a_healthy_machine_exits_0() -> None:
    report = diagnose(with_totals(linux_pairs(), HEALTHY), CLEAN, now=NOW)
    assert checks(report) == {"verdict": [Severity.OK], "kernel-memory": [Severity.OK],
                              "available-memory": [Severity.OK], "swap": [Severity.OK],
                              "kernel-log": [Severity.OK]}
    assert report.worst is Severity.OK and report.exit_code == 0
    assert report.samples == 10 and report.window_s == 9.0


def test_recent_oom_kills_are_critical_and_old_ones_history() -> None:
    journal = log("journalctl", "linux", "journalctl-short-iso-oom.txt")
    report = diagnose(with_totals(linux_pairs(), HEALTHY), journal, now=NOW)
    logs = [f for f in report.findings if f.check == "kernel-log"]
    assert [f.severity for f in logs] == [Severity.CRITICAL, Severity.WARNING, Severity.WARNING]
    oom = logs[0]
    assert oom.summary == ("the OOM killer killed processes: 1 in the kernel log (journalctl), "
                           "last 89 min ago (victims: postgres[48190])")
    assert "`pooltop record` and `pooltop report`" in oom.advice
    assert oom.details[0].startswith("Out of memory: Killed process 48190")
    assert "order 4" in logs[1].summary and "skbuff_head_cache" in logs[2].summary
    assert report.worst is Severity.CRITICAL and report.exit_code == EXIT_FINDINGS == 4
    later = diagnose(with_totals(linux_pairs(), HEALTHY), journal, now=NOW + dt.timedelta(days=30))
    assert {f.severity for f in later.findings if f.check == "kernel-log"} == {Severity.INFO}
    assert "30 days ago" in next(f for f in later.findings if f.check == "kernel-log").summary
    assert later.exit_code == 0


def test_dmesg_ages_come_from_uptime_and_the_slab_table_names_the_cache() -> None:
    dmesg = log("dmesg", "linux", "dmesg-unreclaimable-slab.txt")
    report = diagnose(with_totals(linux_pairs(), HEALTHY, uptime=8200.0), dmesg, now=NOW)
    first = next(f for f in report.findings if f.check == "kernel-log")
    assert first.severity is Severity.CRITICAL
    assert first.summary.startswith("OOM reports found unreclaimable slab larger than user memory: 1 in the "
                                    "kernel log (dmesg), last 77 s ago (top: kmalloc-1k 13.0 GiB")
    assert "`pooltop tags lookup kmalloc-1k`" in first.advice
    kinds = [f.summary.split(":")[0] for f in report.findings if f.check == "kernel-log"]
    assert kinds == ["OOM reports found unreclaimable slab larger than user memory",
                     "the OOM killer killed processes", "SLUB could not allocate memory", "vmalloc failures"]


def test_memcg_kills_are_warnings() -> None:
    dmesg = log("dmesg", "linux", "dmesg-memcg-old-kernel.txt")
    report = diagnose(with_totals(linux_pairs(), HEALTHY, uptime=13000.0), dmesg, now=NOW)
    by_summary = {f.summary.split(":")[0]: f.severity for f in report.findings if f.check == "kernel-log"}
    assert by_summary["memory cgroup limits killed processes"] is Severity.WARNING
    assert by_summary["the OOM killer killed processes"] is Severity.CRITICAL


@pytest.mark.parametrize(
    ("totals", "check", "severity"),
    [
        (Totals(slab_unreclaimable=int(1.6 * GiB), memory_total=8 * GiB), "kernel-memory", Severity.WARNING),
        (Totals(slab_unreclaimable=3 * GiB, memory_total=8 * GiB), "kernel-memory", Severity.CRITICAL),
        (Totals(memory_total=8 * GiB, memory_available=600 * MiB), "available-memory", Severity.WARNING),
        (Totals(memory_total=8 * GiB, memory_available=300 * MiB), "available-memory", Severity.CRITICAL),
        (Totals(swap_total=2 * GiB, swap_free=GiB - 1), "swap", Severity.WARNING),
        (Totals(swap_total=2 * GiB, swap_free=100 * MiB), "swap", Severity.CRITICAL),
        (Totals(swap_total=0, swap_free=0), "swap", Severity.OK),
    ],
)
def test_memory_signs(totals: Totals, check: str, severity: Severity) -> None:
    pairs = [(dataclasses.replace(s, totals=totals), p) for s, p in linux_pairs(n=3)]
    report = diagnose(pairs, CLEAN, now=NOW)
    assert checks(report)[check] == [severity]
    assert report.exit_code == (EXIT_FINDINGS if severity >= Severity.WARNING else 0)


def test_verdicts_become_findings() -> None:
    kernel = diagnose(with_totals(linux_pairs(slab_step=3 * MiB), HEALTHY), CLEAN, now=NOW)
    f = kernel.findings[0]
    assert (f.check, f.severity) == ("verdict", Severity.WARNING)
    assert f.summary == kernel.verdict.text and "pooltop tags lookup TAG" in f.advice
    process = diagnose(with_totals(linux_pairs(grow_step=10 * MiB), HEALTHY), CLEAN, now=NOW)
    assert process.findings[0].severity is Severity.WARNING
    assert "--include 'leaky*'" in process.findings[0].advice
    assert process.exit_code == 4
    single = diagnose(with_totals(linux_pairs(n=1), HEALTHY), CLEAN, now=NOW)
    assert single.findings[0].severity is Severity.INFO and single.exit_code == 0


def test_permission_gaps_are_one_info_finding() -> None:
    pairs = []
    for s, p in with_totals(linux_pairs(n=4), HEALTHY):
        slab_gap = "reading /proc/slabinfo needs root (run pooltop with sudo); showing system totals only"
        pairs.append((dataclasses.replace(s, warnings=(slab_gap,)),
                      dataclasses.replace(p, warnings=("3 processes read only in part (...); run as root",
                                                       "2 zombie processes (exited, ...) left out"))))
    denied = LogText("dmesg", error="dmesg: read kernel buffer failed: Operation not permitted", denied=True)
    report = diagnose(pairs, denied, now=NOW, stats=ScanStats(rows=3, partial=3, zombies=2))
    perms = [f for f in report.findings if f.check == "permissions"]
    assert len(perms) == 1 and perms[0].severity is Severity.INFO
    assert perms[0].summary == "some data was not readable (3 gaps)"
    assert [d.split(" ")[0] for d in perms[0].details] == ["reading", "3", "kernel"]
    assert checks(report)["zombies"] == [Severity.INFO]
    assert "kernel-log" not in checks(report)
    assert report.exit_code == 0
    many = diagnose(pairs, CLEAN, now=NOW, stats=ScanStats(zombies=500))
    assert checks(many)["zombies"] == [Severity.WARNING]
    broken = diagnose(pairs, LogText("dmesg", error="dmesg not found"), now=NOW)
    assert checks(broken)["kernel-log"] == [Severity.INFO]


# --- Windows ------------------------------------------------------------------------------------


def test_windows_srv_events_and_commit() -> None:
    pairs = windows_pairs(pool_step=0, agent_pool_step=0)
    events = log("wevtutil", "windows", "wevtutil-srv-concatenated.xml")
    now = dt.datetime(2026, 1, 2, 3, 0, tzinfo=dt.UTC)
    report = diagnose(pairs, events, now=now)
    ev = [f for f in report.findings if f.check == "event-log"]
    assert [f.severity for f in ev] == [Severity.CRITICAL, Severity.CRITICAL]
    assert ev[0].summary == ("srv event 2019: the server could not allocate from the nonpaged pool (3 of the "
                             "last 4 srv pool events; last 2026-01-02 02:51:07 UTC, 9 min ago)")
    assert "`pooltop snapshot --pool nonpaged --sort bytes --top 20`" in ev[0].advice
    assert "`pooltop tags lookup TAG`" in ev[0].advice
    assert ev[1].summary.startswith("srv event 2020: the server could not allocate from the paged pool (1 of")
    # commit 14.5 of 20.4 GB: fine; paged+nonpaged 1.4 of 16 GiB: fine
    assert checks(report)["commit"] == [Severity.OK] and checks(report)["kernel-memory"] == [Severity.OK]
    assert "swap" not in checks(report)
    old = diagnose(pairs, log("wevtutil", "windows", "wevtutil-srv-old-crlf.xml"), now=now)
    assert [f.severity for f in old.findings if f.check == "event-log"] == [Severity.INFO]
    cut = diagnose(pairs, log("wevtutil", "windows", "wevtutil-srv-truncated.xml"), now=now)
    assert [f.severity for f in cut.findings if f.check == "event-log"] == [Severity.CRITICAL, Severity.INFO]
    none = diagnose(pairs, LogText("wevtutil", ""), now=now)
    assert checks(none)["event-log"] == [Severity.OK]
    denied = diagnose(pairs, LogText("wevtutil", error="wevtutil: Failed to read events. Access is denied.",
                                     denied=True), now=now)
    assert "event-log" not in checks(denied)
    assert "event log not readable" in next(f for f in denied.findings if f.check == "permissions").details[0]
    full = [(dataclasses.replace(s, totals=dataclasses.replace(s.totals, commit=18 * GiB)), p)
            for s, p in pairs]
    assert checks(diagnose(full, None, now=now))["commit"] == [Severity.WARNING]


# --- output -------------------------------------------------------------------------------------


def test_text_and_json_output() -> None:
    journal = log("journalctl", "linux", "journalctl-short-iso-oom.txt")
    report = diagnose(with_totals(linux_pairs(slab_step=3 * MiB), HEALTHY), journal, now=NOW)
    text = format_report_text(report)
    lines = text.splitlines()
    assert lines[0].startswith("pooltop doctor: box  Linux 6.18.44  2026-01-02 06:00:00 UTC  window 9 s")
    assert lines[1] == f"verdict: {report.verdict.text}"
    assert any(ln.startswith("[critical] kernel-log") for ln in lines)
    assert any(ln.strip().startswith("-> find the growing tag") for ln in lines)
    assert lines[-1] == "status: critical (exit 4)"
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["schema"] == "pooltop.doctor/1" and doc["status"] == "critical" and doc["exit_code"] == 4
    assert doc["verdict"]["kind"] == "kernel" and doc["verdict"]["evidence"]["system_growth"] == 27 * MiB
    assert {f["severity"] for f in doc["findings"]} <= {"ok", "info", "warning", "critical"}
    assert doc["taken_at"] == "2026-01-02T06:00:00Z"


# --- the sampling run ---------------------------------------------------------------------------


class ScriptedSystem(Source):
    name = "linux-slab"

    def __init__(self) -> None:
        self.count = 0

    def sample(self) -> Snapshot:
        self.count += 1
        return system_snapshot(float(self.count), Totals(slab_unreclaimable=(100 + 3 * self.count) * MiB,
                                                         memory_total=8 * GiB))


def test_run_doctor_samples_the_window_and_reads_the_log_once() -> None:
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    procs = [linux_process(7, "app", rss=50 * MiB, shared=10 * MiB, uss=40 * MiB)]
    ticks = iter(range(10**6))
    process_source = ProcessSource("linux", process_iter=lambda: procs, totals=Totals,
                                   host=lambda: process_snapshot(0, []).host,
                                   monotonic_ns=lambda: next(ticks) * 1_000_000_000)
    asked: list[str] = []

    def reader(os_name: str) -> LogText:
        asked.append(os_name)
        return CLEAN

    system = ScriptedSystem()
    samples, stats = collect_samples(system, process_source, 10.0, sleep=sleep, monotonic=lambda: clock[0])
    assert len(samples) == 11 and clock[0] == 10.0 and stats is not None and stats.rows == 1
    report = run_doctor(4.0, system, process_source, log_reader=reader, sleep=lambda s: None)
    assert asked == ["linux"] and report.samples == 5 and report.window_s == 4.0
    assert report.verdict.kind.value == "kernel"  # +3 MiB a sample, every sample
    assert (sample_step(10), sample_step(2)) == (1.0, 0.5)
    assert len(collect_samples(system, process_source, 0.2, sleep=lambda s: None)[0]) == 5


def test_diagnose_needs_a_sample() -> None:
    with pytest.raises(ValueError):
        diagnose([], CLEAN)
    assert DoctorThresholds().verdict.min_ups == 3
