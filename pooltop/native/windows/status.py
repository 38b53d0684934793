"""NTSTATUS values pooltop acts on, their names, and the one exception path for NT API failures.

Pure Python (no ctypes, no DLLs): the call protocol in ntapi.py and its Linux tests both use it.
Values are the unsigned 32-bit codes as printed by Windows tools (0xC0000004), never the negative
numbers a signed ctypes NTSTATUS gives. On Windows, ntapi.py adds the names ctypes-windows-sdk
knows (about 2,400) through `register_names`, so unusual failures still print a symbolic name.
"""

from __future__ import annotations

from collections.abc import Mapping

from pooltop.errors import NeedsElevation, PooltopError, Unsupported

STATUS_SUCCESS = 0x00000000
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_UNSUCCESSFUL = 0xC0000001
STATUS_NOT_IMPLEMENTED = 0xC0000002
STATUS_INVALID_INFO_CLASS = 0xC0000003
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_ACCESS_VIOLATION = 0xC0000005
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_NO_MEMORY = 0xC0000017
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_PRIVILEGE_NOT_HELD = 0xC0000061
STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
STATUS_NOT_SUPPORTED = 0xC00000BB

#: the table grew (or our buffer was too small): retry with a bigger buffer
GROW_STATUSES = frozenset({STATUS_INFO_LENGTH_MISMATCH, STATUS_BUFFER_TOO_SMALL})
#: this kernel (or Wine, which stubs 22, 66, 67 and 255) does not offer the information class
UNSUPPORTED_STATUSES = frozenset({STATUS_INVALID_INFO_CLASS, STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED})
#: the data exists but this token may not read it
ELEVATION_STATUSES = frozenset({STATUS_ACCESS_DENIED, STATUS_PRIVILEGE_NOT_HELD})

ELEVATION_HINT = "run pooltop from an elevated (Administrator) prompt"

_NAMES: dict[int, str] = {
    value: name
    for name, value in globals().items()
    if name.startswith("STATUS_") and isinstance(value, int)
}

#: SYSTEM_INFORMATION_CLASS values pooltop queries (phnt ntexapi.h)
SystemModuleInformation = 11
SystemPoolTagInformation = 22
SystemBigPoolInformation = 66
SystemSessionPoolTagInformation = 67
SystemPoolTagInformation2 = 255  # Windows 11 26H1 and later: all counters SIZE_T

INFO_CLASS_NAMES: Mapping[int, str] = {
    SystemModuleInformation: "SystemModuleInformation",
    SystemPoolTagInformation: "SystemPoolTagInformation",
    SystemBigPoolInformation: "SystemBigPoolInformation",
    SystemSessionPoolTagInformation: "SystemSessionPoolTagInformation",
    SystemPoolTagInformation2: "SystemPoolTagInformation2",
}


def as_ntstatus(value: int) -> int:
    """The unsigned 32-bit code of a status however ctypes returned it (c_long gives negatives)."""
    return value & 0xFFFFFFFF


def nt_success(status: int) -> bool:
    """NT_SUCCESS(): success and informational codes; warnings (0x8...) and errors (0xC...) fail."""
    return as_ntstatus(status) < 0x80000000


def status_name(status: int) -> str:
    """'STATUS_INFO_LENGTH_MISMATCH (0xC0000004)', or just the hex code for a status we cannot name."""
    code = as_ntstatus(status)
    name = _NAMES.get(code)
    return f"{name} (0x{code:08X})" if name else f"NTSTATUS 0x{code:08X}"


def register_names(names: Mapping[str, int]) -> int:
    """Add STATUS_* names from another table (ctypes-windows-sdk); ours win on conflicts.

    Returns how many names were added.
    """
    added = 0
    for name, value in names.items():
        if not name.startswith("STATUS_") or not isinstance(value, int):
            continue
        code = as_ntstatus(value)
        if code not in _NAMES:
            _NAMES[code] = name
            added += 1
    return added


def info_class_label(info_class: int) -> str:
    """'SystemPoolTagInformation (22)'."""
    name = INFO_CLASS_NAMES.get(info_class, "information class")
    return f"{name} ({info_class})"


class NtStatusError(PooltopError):
    """An NT API call failed. Carries the API name, the NTSTATUS and (for queries) the class."""

    def __init__(self, api: str, status: int, info_class: int | None = None, message: str | None = None):
        self.api = api
        self.status = as_ntstatus(status)
        self.info_class = info_class
        what = f"{api}({info_class_label(info_class)})" if info_class is not None else api
        super().__init__(message or f"{what} failed: {status_name(self.status)}")


class NtUnsupported(NtStatusError, Unsupported):
    """The information class does not exist here (older Windows, or Wine's stubs)."""


class NtNeedsElevation(NtStatusError, NeedsElevation):
    """ACCESS_DENIED / PRIVILEGE_NOT_HELD."""


def error_for_status(api: str, status: int, info_class: int | None = None) -> NtStatusError:
    """The pooltop exception for a failed NT call, with a one-line message a user can act on."""
    code = as_ntstatus(status)
    what = info_class_label(info_class) if info_class is not None else api
    if code in UNSUPPORTED_STATUSES:
        return NtUnsupported(
            api, code, info_class,
            f"{what} is not available on this system ({api} returned {status_name(code)})",
        )
    if code in ELEVATION_STATUSES:
        return NtNeedsElevation(
            api, code, info_class,
            f"{what}: {ELEVATION_HINT} ({api} returned {status_name(code)})",
        )
    return NtStatusError(api, code, info_class)
