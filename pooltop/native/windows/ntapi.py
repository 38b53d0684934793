"""Thin ctypes calls into ntdll and kernel32: NtQuerySystemInformation, K32GetPerformanceInfo,
GetTickCount64, IsWow64Process.

pooltop imports this module only on Windows (WindowsSource does, lazily). It still imports on
Linux, loading no DLL until a call needs one, so the call protocol (`NtApi.query`) is tested there
with a fake NtQuerySystemInformation injected in place of the real one.

Every NT call goes through one errcheck, `result_is_ntstatus`, which turns a failing NTSTATUS
into one exception type carrying the API name, the status and the information class
(status.NtStatusError; its subclasses are errors.Unsupported and errors.NeedsElevation).

Types are fixed-width (c_uint32, c_uint64, c_size_t): `ctypes.wintypes.ULONG` is 8 bytes on Linux.

ctypes-windows-sdk (import name cwinsdk) supplies NTSTATUS names and PERFORMANCE_INFORMATION
when it is installed; pooltop falls back to its own definitions when it is missing or unusable.
It is not imported under Wine: cwinsdk.shared.basetsd calls platform.machine() at import, which
queries WMI, and Wine 8 aborts the process there (propsys.VariantToString is a stub).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pooltop.errors import PooltopError, Unsupported
from pooltop.model import Totals
from pooltop.native.windows.layouts import Layout, layout_for
from pooltop.native.windows.status import (
    GROW_STATUSES,
    NtStatusError,
    as_ntstatus,
    error_for_status,
    info_class_label,
    nt_success,
    register_names,
)

NT_QUERY_SYSTEM_INFORMATION: Final = "NtQuerySystemInformation"

#: first buffer: fits a workstation's pool tag table (about 3,000 tags x 40 bytes) in one call
DEFAULT_INITIAL_SIZE: Final = 256 * 1024
#: the table grows between calls (tags are added while we allocate), so ask for more than reported
MIN_SLACK: Final = 16 * 1024
DEFAULT_MAX_ATTEMPTS: Final = 8
#: no information class pooltop reads comes near this; a larger request means a broken kernel answer
DEFAULT_MAX_SIZE: Final = 512 * 1024 * 1024


#: NtQuerySystemInformation as pooltop calls it: (class, buffer, buffer length, ReturnLength out)
#: -> NTSTATUS. The buffer is a ctypes char array; ReturnLength a ctypes.c_uint32 to set.
NtQueryFunction = Callable[[int, Any, int, Any], int]


def result_is_ntstatus(result: int, func: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """ctypes errcheck for NTSTATUS-returning calls: raise NtStatusError unless NT_SUCCESS.

    The first argument of NtQuery* calls is the information class; the message names it.
    """
    status = as_ntstatus(result)
    if nt_success(status):
        return args
    api = getattr(func, "__name__", None) or "NT API"
    info_class = args[0] if args and isinstance(args[0], int) else None
    raise error_for_status(api, status, info_class)


class _Named:
    """Stands for a ctypes function in errcheck calls of an injected (fake) function."""

    def __init__(self, name: str):
        self.__name__ = name


def checked(fn: Callable[..., int], api: str) -> Callable[..., int]:
    """Wrap a plain callable returning NTSTATUS with the same errcheck the real ctypes function has."""
    named = _Named(api)

    def call(*args: Any) -> int:
        result = fn(*args)
        result_is_ntstatus(result, named, args)
        return result

    return call


@dataclass(frozen=True)
class QueryResult:
    """One successful NtQuerySystemInformation call: the bytes it returned and how many tries it took."""

    info_class: int
    data: bytes
    attempts: int


class NtApi:
    """NtQuerySystemInformation with the buffer-growth protocol, plus the few kernel32 facts
    WindowsSource needs. Pass `nt_query_system_information` to test without Windows."""

    def __init__(
        self,
        nt_query_system_information: NtQueryFunction | None = None,
        *,
        initial_size: int = DEFAULT_INITIAL_SIZE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_size: int = DEFAULT_MAX_SIZE,
    ):
        if nt_query_system_information is None:
            self._nt_query: Callable[..., int] = bind_nt_query_system_information()
        else:
            self._nt_query = checked(nt_query_system_information, NT_QUERY_SYSTEM_INFORMATION)
        self.initial_size = initial_size
        self.max_attempts = max_attempts
        self.max_size = min(max_size, 0xFFFFFFFF)  # the length argument is a ULONG

    def query(self, info_class: int, initial_size: int | None = None) -> QueryResult:
        """The information class's buffer, cut to ReturnLength.

        On STATUS_INFO_LENGTH_MISMATCH / STATUS_BUFFER_TOO_SMALL the buffer grows to the returned
        length plus slack (or doubles when no length came back), up to `max_attempts` calls.
        Other failures raise the NtStatusError from result_is_ntstatus.
        """
        size = max(16, initial_size if initial_size is not None else self.initial_size)
        if size > self.max_size:
            raise PooltopError(f"{info_class_label(info_class)}: a {size}-byte buffer is over the limit")
        for attempt in range(1, self.max_attempts + 1):
            buffer = ctypes.create_string_buffer(size)
            returned = ctypes.c_uint32(0)
            try:
                self._nt_query(info_class, buffer, size, returned)
            except NtStatusError as e:
                if e.status not in GROW_STATUSES:
                    raise
                size = self._grow(info_class, size, returned.value)
                continue
            length = returned.value
            if length == 0 or length > size:  # no (or an impossible) length: keep the whole buffer
                length = size
            return QueryResult(info_class, buffer.raw[:length], attempt)
        raise PooltopError(
            f"{info_class_label(info_class)}: the table kept growing; gave up after "
            f"{self.max_attempts} calls (last buffer {size} bytes)"
        )

    def _grow(self, info_class: int, size: int, needed: int) -> int:
        new = needed + max(needed // 8, MIN_SLACK) if needed > size else size * 2
        if new > self.max_size:
            raise PooltopError(
                f"{info_class_label(info_class)}: the kernel asks for a {needed or new}-byte buffer, "
                f"over pooltop's limit of {self.max_size} bytes"
            )
        return new


# --- real bindings (Windows only) ----------------------------------------------------------------


def bind_nt_query_system_information() -> Callable[..., int]:
    """ntdll!NtQuerySystemInformation as a private ctypes prototype with result_is_ntstatus attached.

    A private prototype (not ctypes.windll.ntdll.X) so our argtypes/errcheck never clash with
    another library's in the same process.
    """
    if sys.platform != "win32":
        raise Unsupported("NtQuerySystemInformation exists only on Windows")
    prototype = ctypes.WINFUNCTYPE(
        ctypes.c_int32, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)
    )
    fn = prototype((NT_QUERY_SYSTEM_INFORMATION, ctypes.WinDLL("ntdll")))
    # Prototype-made function pointers have no __name__ (windll.X ones do); errcheck reads it.
    fn.__name__ = NT_QUERY_SYSTEM_INFORMATION  # type: ignore[attr-defined,unused-ignore]
    fn.errcheck = result_is_ntstatus  # type: ignore[assignment,unused-ignore]
    _load_sdk()
    return fn


@functools.cache
def running_under_wine() -> bool:
    """Wine's ntdll exports wine_get_version; Windows' does not."""
    if sys.platform != "win32":
        return False
    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


def refuse_wow64(is_wow64: Callable[[], bool] | None = None, pointer_size: int | None = None) -> None:
    """Raise Unsupported for a 32-bit Python on 64-bit Windows.

    The kernel answers a WOW64 process with 64-bit structures behind a 32-bit view (or not at
    all), so the numbers would be wrong rather than missing.
    """
    size = ctypes.sizeof(ctypes.c_void_p) if pointer_size is None else pointer_size
    if size != 4:
        return
    if (is_wow64 or _is_wow64_process)():
        raise Unsupported(
            "this is a 32-bit Python on 64-bit Windows (WOW64), which cannot read the kernel's pool "
            "tables; run pooltop with a 64-bit Python"
        )


def _is_wow64_process() -> bool:
    if sys.platform != "win32":
        return False
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    get_current = ctypes.WINFUNCTYPE(ctypes.c_void_p)(("GetCurrentProcess", kernel32))
    is_wow64 = ctypes.WINFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32))(
        ("IsWow64Process", kernel32)
    )
    flag = ctypes.c_int32(0)
    if not is_wow64(get_current(), ctypes.byref(flag)):
        return False  # cannot tell; the layouts then follow the pointer size
    return bool(flag.value)


def process_layout() -> Layout:
    """The structure layout for this process (pointer size; ARM64 shares x64's)."""
    return layout_for(ctypes.sizeof(ctypes.c_void_p), machine())


def machine() -> str:
    """The OS architecture as Windows names it: AMD64, ARM64 or x86.

    From the environment, not platform.machine(): that queries WMI, which aborts under Wine.
    """
    return os.environ.get("PROCESSOR_ARCHITEW6432") or os.environ.get("PROCESSOR_ARCHITECTURE") or "unknown"


def tick_count_ms() -> int | None:
    """Milliseconds since boot (GetTickCount64; does not wrap after 49.7 days like GetTickCount)."""
    if sys.platform != "win32":
        return None
    fn = ctypes.WINFUNCTYPE(ctypes.c_uint64)(("GetTickCount64", ctypes.WinDLL("kernel32")))
    return int(fn())


def performance_information_struct(size_t: type[ctypes.c_uint32] | type[ctypes.c_uint64] | None = None
                                   ) -> type[ctypes.Structure]:
    """PERFORMANCE_INFORMATION (psapi.h) with SIZE_T as given (default: this process's size_t)."""
    st: Any = size_t or ctypes.c_size_t

    class PERFORMANCE_INFORMATION(ctypes.Structure):
        _fields_ = (
            ("cb", ctypes.c_uint32),
            ("CommitTotal", st),
            ("CommitLimit", st),
            ("CommitPeak", st),
            ("PhysicalTotal", st),
            ("PhysicalAvailable", st),
            ("SystemCache", st),
            ("KernelTotal", st),
            ("KernelPaged", st),
            ("KernelNonpaged", st),
            ("PageSize", st),
            ("HandleCount", ctypes.c_uint32),
            ("ProcessCount", ctypes.c_uint32),
            ("ThreadCount", ctypes.c_uint32),
        )

    return PERFORMANCE_INFORMATION


def totals_from_performance_information(info: Any) -> Totals:
    """PERFORMANCE_INFORMATION counts pages; Totals holds bytes."""
    page = int(info.PageSize)
    return Totals(
        paged_pool=int(info.KernelPaged) * page,
        nonpaged_pool=int(info.KernelNonpaged) * page,
        memory_total=int(info.PhysicalTotal) * page,
        memory_available=int(info.PhysicalAvailable) * page,
        commit=int(info.CommitTotal) * page,
        commit_limit=int(info.CommitLimit) * page,
    )


def performance_totals() -> Totals:
    """Pool, memory and commit totals from K32GetPerformanceInfo (kernel32; psapi on old systems)."""
    if sys.platform != "win32":
        raise Unsupported("GetPerformanceInfo exists only on Windows")
    struct_type = _sdk_performance_information() or performance_information_struct()
    prototype = ctypes.WINFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_uint32, use_last_error=True)
    try:
        get = prototype(("K32GetPerformanceInfo", ctypes.WinDLL("kernel32", use_last_error=True)))
    except AttributeError:  # before Windows 7 the function lived only in psapi.dll
        get = prototype(("GetPerformanceInfo", ctypes.WinDLL("psapi", use_last_error=True)))
    info = struct_type()
    info.cb = ctypes.sizeof(info)
    if not get(ctypes.byref(info), ctypes.sizeof(info)):
        raise PooltopError(f"GetPerformanceInfo failed: {ctypes.FormatError(ctypes.get_last_error())}")
    return totals_from_performance_information(info)


# --- ctypes-windows-sdk --------------------------------------------------------------------------

_sdk_state: dict[str, Any] = {}


def _load_sdk() -> dict[str, Any]:
    """Import what pooltop uses from ctypes-windows-sdk once; {} when missing, broken or under Wine."""
    if "loaded" in _sdk_state:
        return _sdk_state
    _sdk_state["loaded"] = True
    if sys.platform != "win32" or running_under_wine():
        _sdk_state["note"] = "ctypes-windows-sdk not used (not Windows, or Wine)"
        return _sdk_state
    try:
        from cwinsdk.shared import ntstatus  # type: ignore[import-not-found,unused-ignore]
        from cwinsdk.um import psapi  # type: ignore[import-not-found,unused-ignore]
    except Exception as e:  # ImportError, or an OSError/AttributeError from a DLL it binds at import
        _sdk_state["note"] = f"ctypes-windows-sdk not used: {type(e).__name__}: {e}"
        return _sdk_state
    register_names({k: v for k, v in vars(ntstatus).items() if isinstance(v, int)})
    ours = performance_information_struct()
    theirs = getattr(psapi, "PERFORMANCE_INFORMATION", None)
    if theirs is not None and ctypes.sizeof(theirs) == ctypes.sizeof(ours) and [
        f[0] for f in theirs._fields_
    ] == [f[0] for f in ours._fields_]:
        _sdk_state["PERFORMANCE_INFORMATION"] = theirs
    _sdk_state["note"] = "ctypes-windows-sdk in use"
    return _sdk_state


def _sdk_performance_information() -> type[ctypes.Structure] | None:
    found: type[ctypes.Structure] | None = _load_sdk().get("PERFORMANCE_INFORMATION")
    return found


def sdk_note() -> str:
    """Whether ctypes-windows-sdk is in use, and if not, why (for diagnostics and tests)."""
    return str(_load_sdk().get("note", ""))
