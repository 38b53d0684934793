"""An independent encoder for the NtQuerySystemInformation buffers pooltop decodes.

Written with struct.pack from the layout table in shared/DESIGN.md (phnt ntexapi.h / ntldr.h),
never with pooltop's own dtypes, so a wrong offset in layouts.py cannot hide behind the same
mistake here. `ptr` is the pointer size: 8 for x64 and ARM64, 4 for x86.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

Counters = tuple[int, int, int]  # allocs, frees, used

# Tag, PagedAllocs, PagedFrees, [pad], PagedUsed, NonPagedAllocs, NonPagedFrees, NonPagedUsed
POOLTAG_FMT = {8: "<4sII4xQIIQ", 4: "<4sIIIIII"}
# Tag, [pad], six SIZE_T: PagedAllocs, PagedFrees, PagedUsed, NonPagedAllocs, NonPagedFrees, NonPagedUsed
POOLTAG2_FMT = {8: "<4s4xQQQQQQ", 4: "<4sIIIIII"}
# VirtualAddress, SizeInBytes, Tag, [pad]
BIGPOOL_FMT = {8: "<QQ4s4x", 4: "<II4s"}
# Section, MappedBase, ImageBase, ImageSize, Flags, LoadOrderIndex, InitOrderIndex, LoadCount,
# OffsetToFileName, FullPathName[256]
MODULE_FMT = {8: "<QQQIIHHHH256s", 4: "<IIIIIHHHH256s"}


def tag_bytes(tag: bytes | str | int) -> bytes:
    if isinstance(tag, int):
        return struct.pack("<I", tag)
    raw = tag.encode("latin-1") if isinstance(tag, str) else tag
    assert len(raw) == 4, raw
    return raw


def header(ptr: int, count: int) -> bytes:
    """ULONG Count, padded so the array starts at the pointer size."""
    return struct.pack("<I", count) + b"\0" * (ptr - 4)


def pooltag(
    ptr: int, tag: bytes | str | int, paged: Counters = (0, 0, 0), nonpaged: Counters = (0, 0, 0)
) -> bytes:
    return struct.pack(POOLTAG_FMT[ptr], tag_bytes(tag), paged[0], paged[1], paged[2], *nonpaged)


def pooltag2(
    ptr: int, tag: bytes | str | int, paged: Counters = (0, 0, 0), nonpaged: Counters = (0, 0, 0)
) -> bytes:
    return struct.pack(POOLTAG2_FMT[ptr], tag_bytes(tag), *paged, *nonpaged)


def pooltag_info(ptr: int, records: Sequence[bytes], count: int | None = None) -> bytes:
    """SYSTEM_POOLTAG_INFORMATION / SYSTEM_POOLTAG_INFORMATION2."""
    return header(ptr, len(records) if count is None else count) + b"".join(records)


def session_info(ptr: int, sessions: Sequence[tuple[int, Sequence[bytes]]], swapped: bool = False) -> bytes:
    """SYSTEM_SESSION_POOLTAG_INFORMATION chain: NextEntryOffset (SIZE_T), SessionId, Count, TagInfo[].

    swapped=True writes Count before SessionId, as reported for build 19045.
    """
    size_t = "Q" if ptr == 8 else "I"
    out = b""
    for i, (session_id, records) in enumerate(sessions):
        body = b"".join(records)
        head_size = ptr + 8
        last = i == len(sessions) - 1
        next_offset = 0 if last else head_size + len(body)
        first, second = (len(records), session_id) if swapped else (session_id, len(records))
        out += struct.pack(f"<{size_t}II", next_offset, first, second) + body
    return out


def bigpool(ptr: int, address: int, size: int, tag: bytes | str | int, nonpaged: bool = False) -> bytes:
    return struct.pack(BIGPOOL_FMT[ptr], address | int(nonpaged), size, tag_bytes(tag))


def module(ptr: int, base: int, size: int, path: bytes, name_offset: int | None = None) -> bytes:
    offset = path.rfind(b"\\") + 1 if name_offset is None else name_offset
    return struct.pack(MODULE_FMT[ptr], 0, 0, base, size, 0, 0, 0, 1, offset, path)


def array_info(ptr: int, entries: Sequence[bytes], count: int | None = None) -> bytes:
    """SYSTEM_BIGPOOL_INFORMATION / RTL_PROCESS_MODULES: ULONG count, then the array at `ptr`."""
    return header(ptr, len(entries) if count is None else count) + b"".join(entries)
