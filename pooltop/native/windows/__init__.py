"""Windows kernel pool tags: WindowsSource, and the kernel module list the tag database scans.

Importing this package loads no DLL and imports nothing Windows-only: layouts.py and sessions.py
(pure decoders) are used and tested on Linux, and ntapi.py (ctypes) is imported only when a live
source or the module list is asked for.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Protocol

from pooltop.errors import NeedsElevation, PooltopError, Unsupported
from pooltop.model import CounterSet, HostInfo, Snapshot, Totals, utc_now
from pooltop.native import BigPoolAllocation, Source
from pooltop.native.windows.layouts import (
    KernelModule,
    Layout,
    TagTextCache,
    decode_bigpool,
    decode_modules,
    decode_pooltags,
    resolve_module_path,
)
from pooltop.native.windows.sessions import decode_session_pooltags, with_session_rows
from pooltop.native.windows.status import (
    SystemBigPoolInformation,
    SystemModuleInformation,
    SystemPoolTagInformation,
    SystemPoolTagInformation2,
    SystemSessionPoolTagInformation,
)

if TYPE_CHECKING:
    from pooltop.native.windows.ntapi import QueryResult

__all__ = ["KernelModule", "WindowsApi", "WindowsSource", "list_kernel_modules"]

_ARCH = {"AMD64": "x86_64", "ARM64": "arm64", "X86": "x86", "IA64": "ia64"}


class WindowsApi(Protocol):
    """What WindowsSource needs from the OS. ntapi.NtApi-based `LiveWindowsApi` is the real one;
    tests pass a fake."""

    layout: Layout

    def query(self, info_class: int, initial_size: int | None = None) -> QueryResult: ...

    def totals(self) -> Totals: ...

    def host(self) -> HostInfo: ...


class LiveWindowsApi:
    """The real calls (Windows only)."""

    def __init__(self) -> None:
        from pooltop.native.windows import ntapi

        ntapi.refuse_wow64()
        self._ntapi = ntapi
        self._nt = ntapi.NtApi()
        self.layout = ntapi.process_layout()

    def query(self, info_class: int, initial_size: int | None = None) -> QueryResult:
        return self._nt.query(info_class, initial_size)

    def totals(self) -> Totals:
        return self._ntapi.performance_totals()

    def host(self) -> HostInfo:
        # sys.getwindowsversion(), not platform.platform(): the latter queries WMI and aborts
        # under Wine. Under Wine it reports the Windows version the prefix emulates.
        ver = sys.getwindowsversion()  # type: ignore[attr-defined,unused-ignore]
        ticks = self._ntapi.tick_count_ms()
        machine = self._ntapi.machine()
        return HostInfo(
            name=os.environ.get("COMPUTERNAME") or socket.gethostname(),
            os="Windows",
            os_version=f"{ver.major}.{ver.minor}.{ver.build}",
            arch=_ARCH.get(machine.upper(), machine.lower()),
            uptime_s=None if ticks is None else ticks / 1000.0,
            build=str(ver.build),
        )


class WindowsSource(Source):
    """Pool tag counters from NtQuerySystemInformation.

    Pool rows come from SystemPoolTagInformation2 (255, Windows 11 26H1+) when the kernel has it,
    else SystemPoolTagInformation (22); session pool rows (67) are added when readable. A failing
    session query never fails the sample: the snapshot carries a warning instead.
    """

    name = "windows-pooltag"

    def __init__(self, api: WindowsApi | None = None, *, include_sessions: bool = True):
        self._api: WindowsApi = api if api is not None else LiveWindowsApi()
        self.include_sessions = include_sessions
        self._pool_class: int | None = None  # 255 or 22, once one has answered
        self._sessions_off: str | None = None  # why class 67 is not asked again
        self._tag_caches: dict[int, TagTextCache] = {}

    @property
    def layout(self) -> Layout:
        return self._api.layout

    def pool_counters(self) -> CounterSet:
        """System-wide paged and nonpaged rows (class 255, falling back to 22)."""
        if self._pool_class is None:
            try:
                counters = self._decode_pool(SystemPoolTagInformation2)
            except (Unsupported, NeedsElevation):
                counters = self._decode_pool(SystemPoolTagInformation)
                self._pool_class = SystemPoolTagInformation
            else:
                self._pool_class = SystemPoolTagInformation2
            return counters
        return self._decode_pool(self._pool_class)

    def _decode_pool(self, info_class: int) -> CounterSet:
        cache = self._tag_caches.setdefault(info_class, TagTextCache())
        return decode_pooltags(self._api.query(info_class).data, self.layout, info_class, cache)

    def session_counters(self) -> CounterSet:
        """Session pool rows (class 67), one per tag with a session_id column."""
        return decode_session_pooltags(self._api.query(SystemSessionPoolTagInformation).data, self.layout)

    def sample(self) -> Snapshot:
        counters = self.pool_counters()
        taken_at, mono = utc_now(), time.monotonic_ns()
        warnings: list[str] = []
        sessions: CounterSet | None = None
        if self.include_sessions and self._sessions_off is None:
            try:
                sessions = self.session_counters()
            except (Unsupported, NeedsElevation) as e:
                self._sessions_off = str(e)  # neither changes while this process runs
            except PooltopError as e:
                warnings.append(f"session pool tags not read: {e}")
        if self._sessions_off is not None and self.include_sessions:
            warnings.append(f"session pool tags not read: {self._sessions_off}")
        try:
            totals = self._api.totals()
        except PooltopError as e:
            totals = Totals()
            warnings.append(f"pool totals not read: {e}")
        return Snapshot(
            source=self.name,
            taken_at=taken_at,
            monotonic_ns=mono,
            host=self._api.host(),
            totals=totals,
            counters=with_session_rows(counters, sessions),
            warnings=tuple(warnings),
        )

    def big_pool_allocations(self, tag: str | None = None) -> list[BigPoolAllocation]:
        """Allocations of a page or more (SystemBigPoolInformation), optionally of one tag.

        Since Windows 11 24H2 the addresses read as 0 without SeDebugPrivilege.
        """
        return decode_bigpool(self._api.query(SystemBigPoolInformation).data, self.layout, tag)

    def kernel_modules(self) -> list[KernelModule]:
        return list_kernel_modules(self._api)


def list_kernel_modules(api: WindowsApi | None = None) -> list[KernelModule]:
    """Loaded kernel modules (drivers) with Win32 paths (\\SystemRoot\\ and \\??\\ resolved).

    The tag database scans these files for the pool tags they use. Module bases read as 0
    without SeDebugPrivilege since Windows 11 24H2; names, paths and sizes do not.
    """
    api = api if api is not None else LiveWindowsApi()
    data = api.query(SystemModuleInformation).data
    encoding = "mbcs" if sys.platform == "win32" else "latin-1"  # FullPathName is ANSI
    system_root = os.environ.get("SYSTEMROOT") or os.environ.get("WINDIR") or "C:\\Windows"
    system_drive = os.environ.get("SYSTEMDRIVE") or system_root[:2]
    return [
        dataclasses.replace(m, path=resolve_module_path(m.path, system_root, system_drive))
        for m in decode_modules(data, api.layout, encoding=encoding)
    ]
