"""`pooltop doctor`: a one-shot health check for kernel (and process) memory leaks.

It looks at the classic signs: the verdict over a short sampling window (is the kernel pool / slab
growing, or a process?), kernel memory against physical memory, available memory, swap or commit
use, and what the logs say (srv 2019/2020 on Windows; allocation failures and OOM kills in the
Linux kernel log). Every finding has a severity and says what to do next.

diagnose() is pure (samples, log text, clock in; report out); run_doctor() does the sampling and
the reading.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pooltop import __version__
from pooltop.model import HostInfo, Snapshot, Totals, human_bytes, utc_now
from pooltop.native import Source
from pooltop.processes.logs import (
    SRV_NONPAGED_EMPTY,
    KernelEvent,
    KernelEventKind,
    LogText,
    WindowsEvent,
    parse_event_xml,
    parse_kernel_log,
    read_kernel_log,
    read_srv_events,
    srv_pool_events,
)
from pooltop.processes.source import ProcessOS, ProcessSource, ScanStats, plural, process_os
from pooltop.processes.verdict import (
    Verdict,
    VerdictKind,
    VerdictThresholds,
    fitted_to,
    judge,
    system_measure,
)

DOCTOR_SCHEMA = "pooltop.doctor/1"

#: exit code of `pooltop doctor` when a finding is at warning or worse (0: all ok or info;
#: 1: pooltop itself failed; 2: usage error)
EXIT_FINDINGS = 4


class Severity(enum.IntEnum):
    OK = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    check: str  # stable id: verdict, kernel-memory, available-memory, swap, commit, kernel-log, ...
    severity: Severity
    summary: str  # one line
    advice: str = ""  # what to do next
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity.label, "summary": self.summary,
                "advice": self.advice, "details": list(self.details)}


@dataclass(frozen=True)
class DoctorThresholds:
    kernel_share_warning: float = 0.15  # kernel pool / unreclaimable slab, of physical memory
    kernel_share_critical: float = 0.30
    available_warning: float = 0.10  # available memory, of physical memory
    available_critical: float = 0.05
    swap_warning: float = 0.50  # swap in use, of swap
    swap_critical: float = 0.80
    commit_warning: float = 0.90  # Windows commit charge, of the commit limit
    commit_critical: float = 0.97
    log_recent_s: float = 24 * 3600.0  # log events older than this are history (info)
    zombies_warning: int = 100
    verdict: VerdictThresholds = field(default_factory=VerdictThresholds)


@dataclass(frozen=True)
class DoctorReport:
    host: HostInfo
    taken_at: dt.datetime
    os: ProcessOS
    window_s: float
    samples: int
    verdict: Verdict
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.OK)

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.worst >= Severity.WARNING else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DOCTOR_SCHEMA,
            "generator": f"pooltop {__version__}",
            "taken_at": self.taken_at.isoformat().replace("+00:00", "Z"),
            "host": self.host.to_json(),
            "window_s": round(self.window_s, 3),
            "samples": self.samples,
            "status": self.worst.label,
            "exit_code": self.exit_code,
            "verdict": self.verdict.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


# --- advice ---------------------------------------------------------------------------------------

FIND_GROWING_TAG = ("find the growing tag / cache with `pooltop` (live) or `pooltop snapshot --interval 10 "
                    "--sort dbytes --top 10`, name its owner with `pooltop tags lookup TAG`, and keep the "
                    "evidence with `pooltop record` and `pooltop report`")
FIND_BIGGEST = ("see who holds memory: `pooltop snapshot --sort bytes --top 20` (kernel) and "
                "`pooltop processes --sort private --top 10` (processes)")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "since boot"
    s = max(seconds, 0.0)
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} days ago"


# --- the checks -----------------------------------------------------------------------------------


def verdict_finding(v: Verdict) -> Finding:
    if v.kind is VerdictKind.KERNEL:
        return Finding("verdict", Severity.WARNING, v.text, FIND_GROWING_TAG)
    if v.kind is VerdictKind.PROCESS:
        name = v.subject.rpartition("[")[0] if v.subject else "NAME"
        pool = v.evidence.os == "windows" and "its pool" in v.text
        what = ("its handles hold kernel pool: watch `pooltop processes --interval 10 --sort dhandles`"
                if pool else
                f"watch it: `pooltop processes --interval 10 --sort dprivate --include '{name}*'`")
        return Finding("verdict", Severity.WARNING, v.text,
                       f"{what}; if it keeps growing, restart it and report the leak to its vendor")
    if v.kind is VerdictKind.UNKNOWN:
        return Finding("verdict", Severity.INFO, v.text, "sample for longer: `pooltop doctor --window 30`")
    return Finding("verdict", Severity.OK, v.text)


def _graded(kind: str, value: float, warning: float, critical: float, summary: str,
            strict: bool = False) -> Finding:
    """OK, WARNING or CRITICAL by two thresholds (reached at >=, or > with strict); the worse two
    point at the next step."""
    def reached(limit: float) -> bool:
        return value > limit if strict else value >= limit

    if reached(critical):
        return Finding(kind, Severity.CRITICAL, summary, FIND_BIGGEST)
    if reached(warning):
        return Finding(kind, Severity.WARNING, summary, FIND_BIGGEST)
    return Finding(kind, Severity.OK, summary)


def kernel_memory_finding(totals: Totals, os_name: ProcessOS, th: DoctorThresholds) -> Finding | None:
    label, measure = system_measure(os_name)
    used = measure(totals)
    if used is None or not totals.memory_total:
        return None
    share = used / totals.memory_total
    summary = f"{label} {human_bytes(used)} is {_pct(share)} of {human_bytes(totals.memory_total)} memory"
    return _graded("kernel-memory", share, th.kernel_share_warning, th.kernel_share_critical, summary)


def available_memory_finding(totals: Totals, th: DoctorThresholds) -> Finding | None:
    if totals.memory_available is None or not totals.memory_total:
        return None
    share = totals.memory_available / totals.memory_total
    summary = f"available memory {human_bytes(totals.memory_available)} ({_pct(share)} of " \
              f"{human_bytes(totals.memory_total)})"
    # less is worse here: grade the share that is gone
    return _graded("available-memory", -share, -th.available_warning, -th.available_critical, summary,
                   strict=True)


def swap_finding(totals: Totals, th: DoctorThresholds) -> Finding | None:
    if totals.swap_total is None:
        return None
    if totals.swap_total == 0:
        return Finding("swap", Severity.OK, "no swap configured")
    used = totals.swap_total - (totals.swap_free or 0)
    share = used / totals.swap_total
    summary = f"swap in use {human_bytes(used)} of {human_bytes(totals.swap_total)} ({_pct(share)})"
    return _graded("swap", share, th.swap_warning, th.swap_critical, summary)


def commit_finding(totals: Totals, th: DoctorThresholds) -> Finding | None:
    """Windows: the commit charge against the commit limit (RAM + page files)."""
    if totals.commit is None or not totals.commit_limit:
        return None
    share = totals.commit / totals.commit_limit
    summary = (f"commit charge {human_bytes(totals.commit)} of {human_bytes(totals.commit_limit)} limit "
               f"({_pct(share)}; the page file is filling)" if share >= th.commit_warning else
               f"commit charge {human_bytes(totals.commit)} of {human_bytes(totals.commit_limit)} limit "
               f"({_pct(share)})")
    return _graded("commit", share, th.commit_warning, th.commit_critical, summary)


def _kernel_event_age(ev: KernelEvent, now: dt.datetime, uptime_s: float | None) -> float | None:
    if ev.time is not None:
        return (now - ev.time).total_seconds()
    if ev.uptime_s is not None and uptime_s is not None:
        return uptime_s - ev.uptime_s
    return None


_OOM_ADVICE = ("find what grew: `pooltop processes --interval 10 --sort dprivate` (processes) and "
               "`pooltop snapshot --interval 10 --sort dbytes` (slab caches); keep the evidence with "
               "`pooltop record` and `pooltop report`")


def kernel_log_findings(
    events: Sequence[KernelEvent], source: str, now: dt.datetime, uptime_s: float | None,
    th: DoctorThresholds,
) -> list[Finding]:
    """Findings from parsed kernel messages (one per kind of trouble), or one ok finding."""
    out: list[Finding] = []

    def group(kind: KernelEventKind, pred: Callable[[KernelEvent], bool] = lambda e: True
              ) -> list[KernelEvent]:
        return [e for e in events if e.kind is kind and pred(e)]

    def finding(evs: list[KernelEvent], severity: Severity, what: str, advice: str,
                extra: str = "") -> None:
        ages = [a for a in (_kernel_event_age(e, now, uptime_s) for e in evs) if a is not None]
        last_age = min(ages) if ages else None
        recent = last_age is None or last_age <= th.log_recent_s
        sev = severity if recent else Severity.INFO
        summary = f"{what}: {len(evs)} in the kernel log ({source}), last {_ago(last_age)}{extra}"
        out.append(Finding("kernel-log", sev, summary, advice, tuple(e.line for e in evs[-5:])))

    dumps = group(KernelEventKind.UNRECLAIMABLE_SLAB)
    if dumps:
        caches = dumps[-1].caches[:3]
        top = ", ".join(f"{name} {human_bytes(used)}" for name, used, _ in caches)
        first = caches[0][0] if caches else "CACHE"
        finding(dumps, Severity.CRITICAL, "OOM reports found unreclaimable slab larger than user memory",
                f"a kernel-side leak: `pooltop tags lookup {first}` names the cache's users; "
                f"`pooltop snapshot --interval 10 --sort dbytes` shows whether it still grows",
                f" (top: {top})" if top else "")
    global_oom = group(KernelEventKind.OOM_KILL, lambda e: e.detail.get("constraint") != "CONSTRAINT_MEMCG")
    if global_oom:
        victims = ", ".join(dict.fromkeys(f"{e.process}[{e.pid}]" for e in global_oom[-3:]))
        finding(global_oom, Severity.CRITICAL, "the OOM killer killed processes", _OOM_ADVICE,
                f" (victims: {victims})")
    memcg_oom = group(KernelEventKind.OOM_KILL, lambda e: e.detail.get("constraint") == "CONSTRAINT_MEMCG")
    if memcg_oom:
        finding(memcg_oom, Severity.WARNING, "memory cgroup limits killed processes",
                "a container or service hit its memory limit: `pooltop processes --interval 10 --sort "
                "dprivate` shows which process grows")
    page = group(KernelEventKind.PAGE_ALLOC_FAILURE)
    if page:
        orders = sorted({int(e.detail.get("order", 0)) for e in page})
        kind = ("order 0: memory ran out" if orders[0] == 0 else
                f"order {'/'.join(map(str, orders))}: contiguous memory is fragmented or short")
        finding(page, Severity.WARNING, "page allocation failures",
                "check kernel memory: `pooltop snapshot --sort bytes --top 20`; "
                + _OOM_ADVICE.split("; ")[0],
                f" ({kind})")
    slab = group(KernelEventKind.SLAB_FAILURE)
    if slab:
        names = ", ".join(dict.fromkeys(str(e.detail.get("cache", "?")) for e in slab))
        finding(slab, Severity.WARNING, "SLUB could not allocate memory",
                "`pooltop snapshot --interval 10 --sort dbytes` shows which caches grow",
                f" (caches: {names})")
    vm = group(KernelEventKind.VMALLOC_FAILURE)
    if vm:
        finding(vm, Severity.WARNING, "vmalloc failures",
                "kernel virtual memory ran short: `pooltop snapshot --sort bytes --top 20`")
    if not out:
        out.append(Finding("kernel-log", Severity.OK,
                           f"kernel log ({source}): no allocation failures or OOM kills this boot"))
    return out


def event_log_findings(events: Sequence[WindowsEvent], now: dt.datetime, th: DoctorThresholds,
                       malformed: int = 0) -> list[Finding]:
    """Findings from srv 2019 (nonpaged pool empty) / 2020 (paged pool empty) events."""
    out: list[Finding] = []
    for event_id in (SRV_NONPAGED_EMPTY, SRV_NONPAGED_EMPTY + 1):
        evs = [e for e in events if e.event_id == event_id]
        if not evs:
            continue
        pool = "nonpaged" if event_id == SRV_NONPAGED_EMPTY else "paged"
        times = [e.time_created for e in evs if e.time_created is not None]
        last = max(times) if times else None
        age = (now - last).total_seconds() if last is not None else None
        recent = age is None or age <= th.log_recent_s
        when = f"last {last.strftime('%Y-%m-%d %H:%M:%S')} UTC, {_ago(age)}" if last else "time unknown"
        summary = (f"srv event {event_id}: the server could not allocate from the {pool} pool "
                   f"({len(evs)} of the last {len(events)} srv pool events; {when})")
        advice = (f"the {pool} pool ran out: `pooltop snapshot --pool {pool} --sort bytes --top 20` finds "
                  f"the biggest tags, `pooltop tags lookup TAG` their drivers; `pooltop record` and "
                  f"`pooltop report` capture the growth")
        details = tuple(f"{e.time_created.isoformat() if e.time_created else '?'} {e.computer} "
                        f"record {e.record_id}" for e in evs[:5])
        out.append(Finding("event-log", Severity.CRITICAL if recent else Severity.INFO, summary, advice,
                           details))
    if not out:
        out.append(Finding("event-log", Severity.OK,
                           "System event log: no srv 2019/2020 (pool empty) events"))
    if malformed:
        out.append(Finding("event-log", Severity.INFO,
                           f"{plural(malformed, 'event')} in wevtutil's output could not be read"))
    return out


def permissions_finding(notes: Sequence[str], os_name: ProcessOS) -> Finding | None:
    if not notes:
        return None
    gaps = "1 gap" if len(notes) == 1 else f"{len(notes)} gaps"
    return Finding("permissions", Severity.INFO, f"some data was not readable ({gaps})", "", tuple(notes))


def zombies_finding(stats: ScanStats | None, th: DoctorThresholds) -> Finding | None:
    if stats is None or not stats.zombies:
        return None
    summary = f"{plural(stats.zombies, 'zombie process')} (exited, not reaped by the parent)"
    if stats.zombies >= th.zombies_warning:
        return Finding("zombies", Severity.WARNING, summary,
                       "a parent process is not reaping its children: find it with `ps -eo ppid,stat | "
                       "grep Z` and restart it")
    return Finding("zombies", Severity.INFO, summary)


def diagnose(
    samples: Sequence[tuple[Snapshot, Snapshot]],
    log: LogText | None,
    *,
    now: dt.datetime | None = None,
    stats: ScanStats | None = None,
    thresholds: DoctorThresholds | None = None,
    window_s: float | None = None,
) -> DoctorReport:
    """The report from (system, process) sample pairs (oldest first) and the log text. Pure."""
    if not samples:
        raise ValueError("diagnose needs at least one sample")
    th = thresholds or DoctorThresholds()
    when = now or utc_now()
    system, procs = samples[-1]
    os_name = process_os(procs.source)
    seconds = (samples[-1][1].monotonic_ns - samples[0][1].monotonic_ns) / 1e9
    verdict = judge(samples, fitted_to(th.verdict, seconds) if seconds > 0 else th.verdict)
    findings: list[Finding] = [verdict_finding(verdict)]
    totals = system.totals
    for f in (kernel_memory_finding(totals, os_name, th), available_memory_finding(totals, th),
              swap_finding(totals, th) if os_name == "linux" else commit_finding(totals, th)):
        if f is not None:
            findings.append(f)

    notes: list[str] = []
    # Say each gap once: a snapshot repeats its warnings every sample.
    for w in dict.fromkeys((*system.warnings, *procs.warnings)):
        if "zombie" not in w:
            notes.append(w)
    if log is not None:
        if log.error is not None:
            if log.denied:
                what = "kernel log" if os_name == "linux" else "event log"
                notes.append(f"{what} not readable: {log.error}")
            else:
                findings.append(Finding("kernel-log" if os_name == "linux" else "event-log", Severity.INFO,
                                        f"log not read: {log.error}"))
        elif os_name == "linux":
            findings.extend(kernel_log_findings(parse_kernel_log(log.text), log.source, when,
                                                system.host.uptime_s, th))
        else:
            parsed = parse_event_xml(log.text)
            findings.extend(event_log_findings(srv_pool_events(parsed), when, th, parsed.malformed))
    z = zombies_finding(stats, th)
    if z is not None:
        findings.append(z)
    p = permissions_finding(notes, os_name)
    if p is not None:
        findings.append(p)
    first = samples[0][1].monotonic_ns
    return DoctorReport(
        host=system.host,
        taken_at=when,
        os=os_name,
        window_s=window_s if window_s is not None else (procs.monotonic_ns - first) / 1e9,
        samples=len(samples),
        verdict=verdict,
        findings=tuple(findings),
    )


# --- the run --------------------------------------------------------------------------------------


def sample_step(window: float) -> float:
    """One sample a second; short windows get at least four intervals."""
    return 1.0 if window >= 4.0 else window / 4.0


def collect_samples(
    system_source: Source,
    process_source: ProcessSource,
    window: float,
    step: float | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[list[tuple[Snapshot, Snapshot]], ScanStats | None]:
    """(system, process) pairs every `step` seconds over `window` (at least two)."""
    step = step or sample_step(window)
    count = max(2, round(window / step) + 1)
    pairs: list[tuple[Snapshot, Snapshot]] = []
    stats: ScanStats | None = None
    start = monotonic()
    for k in range(count):
        delay = start + k * step - monotonic()
        if delay > 0:
            sleep(delay)
        system = system_source.sample()
        taken = process_source.sample_with_stats()
        pairs.append((system, taken.snapshot))
        stats = taken.stats
    return pairs, stats


def read_log(os_name: ProcessOS) -> LogText:
    return read_kernel_log() if os_name == "linux" else read_srv_events()


def run_doctor(
    window: float,
    system_source: Source,
    process_source: ProcessSource,
    *,
    log_reader: Callable[[ProcessOS], LogText] | None = None,
    thresholds: DoctorThresholds | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DoctorReport:
    """Read the log, sample for `window` seconds, diagnose. `log_reader` defaults to read_log."""
    log = (log_reader or read_log)(process_source.os)
    samples, stats = collect_samples(system_source, process_source, window, sleep=sleep)
    return diagnose(samples, log, stats=stats, thresholds=thresholds, window_s=window)


# --- text -----------------------------------------------------------------------------------------


def format_report_text(report: DoctorReport) -> str:
    h = report.host
    lines = [
        f"pooltop doctor: {h.name}  {h.os} {h.os_version}  "
        f"{report.taken_at.strftime('%Y-%m-%d %H:%M:%S')} UTC  window {report.window_s:g} s "
        f"({report.samples} samples)",
        f"verdict: {report.verdict.text}",
        "",
    ]
    width = max(len(s.label) for s in Severity) + 2
    for f in report.findings:
        lines.append(f"{('[' + f.severity.label + ']').ljust(width)} {f.check:<17} {f.summary}")
        pad = " " * (width + 1 + 17 + 1)
        for d in f.details:
            lines.append(f"{pad}| {d}")
        if f.advice:
            lines.append(f"{pad}-> {f.advice}")
    lines.append("")
    lines.append(f"status: {report.worst.label} (exit {report.exit_code})")
    return "\n".join(lines) + "\n"

