"""Per-process memory, sampled as counter rows so the Tracker, filters and sorts work on processes too.

A process is one row of a CounterSet with pool Pool.PROCESS:

- tag   "name[pid]" (odd characters escaped, see process_tag)
- bytes the main leak measure: private memory (Windows private bytes / commit; Linux USS, or
        RSS - shared where smaps is not readable)
- diff  handles (Windows) or open file descriptors (Linux); -1 (UNKNOWN) where not readable
- extra pid, rss and, per OS, the rest (see LINUX_EXTRAS / WINDOWS_EXTRAS)

allocs/frees are 0 (`has_alloc_counts=False`), as for slab caches, so Tracker.update() gives
per-refresh and since-baseline changes, rates and leak levels for processes unchanged.

psutil is the only OS interface here, and only `read_linux_process` / `read_windows_process`
touch it; a process that exits while being read, a zombie and a process of another user (access
denied) are counted in ScanStats, and the snapshot says so once, in one warning line each.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from pooltop.errors import PooltopError, Unsupported
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals, utc_now
from pooltop.native import Source

ProcessOS = Literal["linux", "windows"]

PROCESSES_SCHEMA = "pooltop.processes/1"
LINUX_SOURCE = "linux-processes"
WINDOWS_SOURCE = "windows-processes"

#: a counter the OS did not let us read (handles/fds or swap of another user's process)
UNKNOWN = -1

#: extra columns of process rows, per OS (all int64; UNKNOWN = -1 where not readable)
LINUX_EXTRAS = ("pid", "rss", "swap", "private_is_uss")
WINDOWS_EXTRAS = ("pid", "rss", "paged_pool", "nonpaged_pool", "peak_paged_pool", "peak_nonpaged_pool",
                  "peak_private")

_NAME_MAX = 64


def process_os(source: str) -> ProcessOS:
    """The OS a process snapshot came from, by its `source` name."""
    return "windows" if source == WINDOWS_SOURCE else "linux"


def process_tag(name: str, pid: int) -> str:
    """A process's row key, "name[pid]": unique (pids are), and safe to print.

    Process names are chosen by whoever started the process: control characters, backslashes and
    other non-printable characters are shown as \\xNN / \\uNNNN (the way escape_tag shows tag
    bytes), and a very long name is cut.
    """
    out = []
    for ch in name[:_NAME_MAX]:
        if ch == "\\" or not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(ch)
    return f"{''.join(out) or '?'}[{pid}]"


def split_tag(tag: str) -> tuple[str, int | None]:
    """Inverse of process_tag, as far as it goes: ("name", pid) of "name[pid]"."""
    name, sep, rest = tag.rpartition("[")
    if sep and rest.endswith("]") and rest[:-1].isdigit():
        return name, int(rest[:-1])
    return tag, None


# --- one process's reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessReading:
    """What one process uses, in bytes (handles: a count). UNKNOWN (-1) marks what was not readable."""

    pid: int
    name: str
    private: int
    rss: int
    handles: int = UNKNOWN
    swap: int = UNKNOWN
    private_is_uss: bool = True  # Linux: False when private is the RSS - shared estimate
    paged_pool: int = 0
    nonpaged_pool: int = 0
    peak_paged_pool: int = 0
    peak_nonpaged_pool: int = 0
    peak_private: int = 0
    partial: bool = False  # some counters were not readable (another user's process)


class ProcessLike(Protocol):
    """The part of psutil.Process the readers use (tests pass fakes built from recorded data)."""

    @property
    def pid(self) -> int: ...

    def oneshot(self) -> contextlib.AbstractContextManager[Any]: ...

    def name(self) -> str: ...

    def status(self) -> str: ...

    def memory_info(self) -> Any: ...

    def memory_full_info(self) -> Any: ...

    def num_fds(self) -> int: ...

    def num_handles(self) -> int: ...


def _psutil() -> Any:
    try:
        import psutil
    except ImportError as e:  # a dependency, but say it in one line if it is missing
        raise Unsupported(f"per-process figures need psutil ({e})") from None
    return psutil


def read_linux_process(proc: ProcessLike, exact_private: bool = True) -> ProcessReading | None:
    """One Linux process; None for a kernel thread (it has no user memory to leak).

    Raises psutil.ZombieProcess / NoSuchProcess / AccessDenied; scan_processes counts those.
    Private memory is USS (smaps_rollup: Private_Clean + Private_Dirty + Private_Hugetlb), which
    needs ptrace access; for other users' processes it falls back to RSS - shared (statm, readable
    by all), the figure `top` shows as RES - SHR.
    """
    psutil = _psutil()
    with proc.oneshot():
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise psutil.ZombieProcess(proc.pid)
        mem = proc.memory_info()
        if mem.vms == 0:
            return None  # kernel threads have no mm
        name = proc.name()
        partial = False
        private, swap, is_uss = max(int(mem.rss) - int(mem.shared), 0), UNKNOWN, False
        if exact_private:
            try:
                full = proc.memory_full_info()
            except psutil.AccessDenied:
                partial = True
            else:
                private, swap, is_uss = int(full.uss), int(full.swap), True
        try:
            fds = int(proc.num_fds())
        except psutil.AccessDenied:
            fds, partial = UNKNOWN, True
    return ProcessReading(pid=proc.pid, name=name, private=private, rss=int(mem.rss), handles=fds,
                          swap=swap, private_is_uss=is_uss, partial=partial)


def read_windows_process(proc: ProcessLike) -> ProcessReading:
    """One Windows process from psutil's memory_info (PROCESS_MEMORY_COUNTERS_EX, or the
    SystemProcessInformation fallback psutil uses when the process denies the query).

    paged_pool / nonpaged_pool are the pool quota charged to the process (QuotaPagedPoolUsage,
    QuotaNonPagedPoolUsage): kernel memory its handles and objects hold.
    """
    psutil = _psutil()
    with proc.oneshot():
        name = proc.name()
        mem = proc.memory_info()
        partial = False
        try:
            handles = int(proc.num_handles())
        except psutil.AccessDenied:
            handles, partial = UNKNOWN, True
    private = int(getattr(mem, "private", 0) or mem.pagefile)
    return ProcessReading(
        pid=proc.pid,
        name=name,
        private=private,
        rss=int(mem.rss),
        handles=handles,
        paged_pool=int(mem.paged_pool),
        nonpaged_pool=int(mem.nonpaged_pool),
        peak_paged_pool=int(mem.peak_paged_pool),
        peak_nonpaged_pool=int(mem.peak_nonpaged_pool),
        peak_private=int(mem.peak_pagefile),
        partial=partial,
    )


@dataclass(frozen=True)
class ScanStats:
    """How one pass over the process list went. Counts, never per-process messages."""

    rows: int = 0
    partial: int = 0  # read in part: other users' processes (open files, USS not readable)
    denied: int = 0  # not readable at all
    failed: int = 0  # reading raised something else (an I/O error from /proc, say)
    vanished: int = 0  # exited while being read
    zombies: int = 0  # exited, not yet reaped by their parent
    kernel_threads: int = 0
    seconds: float = 0.0

    def warnings(self, os_name: ProcessOS, elevated: bool = False) -> tuple[str, ...]:
        """One line per kind of gap, with what to do about it (nothing, when already elevated)."""
        out = []
        if elevated:
            fix = "they are protected even from root" if os_name == "linux" else "they are protected"
        else:
            fix = ("run as root to read them" if os_name == "linux"
                   else "run from an elevated prompt to read them")
        if self.partial:
            what = ("private memory estimated as RSS - shared where smaps was denied, open files unknown"
                    if os_name == "linux" else "handle counts unknown")
            out.append(f"{plural(self.partial, 'process')} read only in part ({what}); {fix}")
        if self.denied:
            out.append(f"{plural(self.denied, 'process')} not readable (access denied); {fix}")
        if self.failed:
            out.append(f"{plural(self.failed, 'process')} not read (an error while reading it)")
        if self.zombies:
            out.append(f"{plural(self.zombies, 'zombie process')} (exited, not reaped by the parent) "
                       "left out")
        return tuple(out)


def plural(n: int, noun: str) -> str:
    """"1 process", "3 processes", "1 file", "2 files"."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}es" if noun.endswith(("s", "x", "ch", "sh")) else f"{n:,} {noun}s"


def scan_processes(
    processes: Iterable[ProcessLike],
    read: Callable[[ProcessLike], ProcessReading | None],
) -> tuple[list[ProcessReading], ScanStats]:
    """Read every process, counting the ones that exit, deny access or are zombies."""
    psutil = _psutil()
    readings: list[ProcessReading] = []
    partial = denied = vanished = zombies = kthreads = failed = 0
    start = time.monotonic()
    for proc in processes:
        try:
            reading = read(proc)
        except psutil.ZombieProcess:
            zombies += 1
            continue
        except psutil.NoSuchProcess:
            vanished += 1
            continue
        except psutil.AccessDenied:
            denied += 1
            continue
        except (psutil.Error, OSError, ValueError):
            # One odd process (an EIO from its /proc files, a format psutil did not expect) must
            # not cost the whole sample.
            failed += 1
            continue
        if reading is None:
            kthreads += 1
            continue
        partial += reading.partial
        readings.append(reading)
    stats = ScanStats(rows=len(readings), partial=partial, denied=denied, vanished=vanished,
                      zombies=zombies, kernel_threads=kthreads, failed=failed,
                      seconds=time.monotonic() - start)
    return readings, stats


def process_counters(readings: Sequence[ProcessReading], os_name: ProcessOS) -> CounterSet:
    """Readings -> Pool.PROCESS rows, ordered by pid (stable between refreshes)."""
    ordered = sorted(readings, key=lambda r: r.pid)
    n = len(ordered)
    zeros = np.zeros(n, dtype=np.int64)
    names = LINUX_EXTRAS if os_name == "linux" else WINDOWS_EXTRAS
    extra: dict[str, list[int]] = {k: [] for k in names}
    for r in ordered:
        for k in names:
            extra[k].append(int(getattr(r, k)))
    return CounterSet.build(
        [process_tag(r.name, r.pid) for r in ordered],
        np.full(n, Pool.PROCESS, dtype=np.uint8),
        zeros,
        zeros,
        [r.handles for r in ordered],
        [r.private for r in ordered],
        extra=extra,
        has_alloc_counts=False,
        counter_bits=64,
    )


# --- the source ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    snapshot: Snapshot
    stats: ScanStats


class ProcessSource(Source):
    """Every process's memory, as a Snapshot of Pool.PROCESS rows.

    Works with the same Tracker (and the live view's Sampler) as the kernel sources. Everything
    that touches the OS can be injected: `process_iter` (psutil.process_iter), `totals` and
    `host`; `proc_root` is where Linux totals and host facts are read.
    """

    def __init__(
        self,
        platform: str | None = None,
        *,
        process_iter: Callable[[], Iterable[ProcessLike]] | None = None,
        exact_private: bool = True,
        proc_root: str = "/proc",
        totals: Callable[[], Totals] | None = None,
        host: Callable[[], HostInfo] | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        elevated: bool | None = None,
    ) -> None:
        plat = platform or sys.platform
        if plat.startswith("linux"):
            self.os: ProcessOS = "linux"
        elif plat == "win32":
            self.os = "windows"
        else:
            raise Unsupported(f"pooltop reads processes on Linux and Windows, not {plat}")
        self.name = LINUX_SOURCE if self.os == "linux" else WINDOWS_SOURCE
        self.exact_private = exact_private
        self.proc_root = proc_root
        self._process_iter = process_iter
        self._totals = totals
        self._host = host
        self._monotonic_ns = monotonic_ns
        # Root (Linux) reads every process but a few protected ones; say so instead of "run as root".
        self.elevated = elevated if elevated is not None else (
            self.os == "linux" and hasattr(os, "geteuid") and os.geteuid() == 0)

    def _processes(self) -> Iterable[ProcessLike]:
        if self._process_iter is not None:
            return self._process_iter()
        it: Iterable[ProcessLike] = _psutil().process_iter()
        return it

    def _read(self, proc: ProcessLike) -> ProcessReading | None:
        if self.os == "linux":
            return read_linux_process(proc, self.exact_private)
        return read_windows_process(proc)

    def read_totals(self) -> tuple[Totals, str | None]:
        """System memory figures (and why not, in one line, when they are not readable)."""
        try:
            if self._totals is not None:
                return self._totals(), None
            if self.os == "linux":
                from pooltop.native.linux import meminfo_totals, parse_meminfo

                path = os.path.join(self.proc_root, "meminfo")
                with open(path, encoding="utf-8", errors="replace") as f:
                    return meminfo_totals(parse_meminfo(f.read())), None
            vm = _psutil().virtual_memory()
            return Totals(memory_total=int(vm.total), memory_available=int(vm.available)), None
        except (OSError, PooltopError) as e:
            return Totals(), f"system memory totals not read: {getattr(e, 'strerror', None) or e}"

    def read_host(self) -> HostInfo:
        if self._host is not None:
            return self._host()
        if self.os == "linux":
            from pooltop.native.linux import LinuxSource

            return LinuxSource(self.proc_root).host()
        return _windows_host()

    def sample_with_stats(self) -> ProcessSample:
        try:
            readings, stats = scan_processes(self._processes(), self._read)
        except OSError as e:  # listing /proc itself failed
            raise PooltopError(f"cannot list processes: {e.strerror or e}") from None
        totals, note = self.read_totals()
        warnings = list(stats.warnings(self.os, self.elevated))
        if note:
            warnings.append(note)
        snap = Snapshot(
            source=self.name,
            taken_at=utc_now(),
            monotonic_ns=self._monotonic_ns(),
            host=self.read_host(),
            totals=totals,
            counters=process_counters(readings, self.os),
            warnings=tuple(warnings),
        )
        return ProcessSample(snap, stats)

    def sample(self) -> Snapshot:
        return self.sample_with_stats().snapshot


def _windows_host() -> HostInfo:
    # sys.getwindowsversion(), not platform.platform(): the latter aborts under Wine (DESIGN.md).
    psutil = _psutil()
    ver = sys.getwindowsversion()  # type: ignore[attr-defined,unused-ignore]
    arch = os.environ.get("PROCESSOR_ARCHITECTURE", "").upper()
    uptime = None
    with contextlib.suppress(Exception):
        uptime = max(time.time() - float(psutil.boot_time()), 0.0)
    return HostInfo(
        name=os.environ.get("COMPUTERNAME") or socket.gethostname(),
        os="Windows",
        os_version=f"{ver.major}.{ver.minor}.{ver.build}",
        arch={"AMD64": "x86_64", "ARM64": "arm64", "X86": "x86"}.get(arch, arch.lower()),
        uptime_s=uptime,
        build=str(ver.build),
    )
