"""Pure decoders for the NtQuerySystemInformation buffers pooltop reads: bytes + layout -> records.

No ctypes and no DLLs here: this module imports and is tested on Linux. ntapi.py fetches the
buffers on Windows; WindowsSource glues the two.

Structure layouts (x64 / x86 offsets) come from phnt (ntexapi.h, ntldr.h), System Informer and
Geoff Chappell's notes; the project's DESIGN.md keeps the table the tests check against.
ARM64 uses the x64 layout. Every decoder validates the counts it reads against the buffer size
and raises BadInput instead of reading past the end: the buffers come from the kernel, but also
from files users send us.

Records are decoded with numpy structured dtypes (one `np.frombuffer` per array), never with a
Python loop per record: a server can have 50,000 tags and the live view refreshes every second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput
from pooltop.model import CounterSet, Pool, escape_tag, unescape_tag
from pooltop.native import BigPoolAllocation
from pooltop.native.windows.status import (
    SystemPoolTagInformation,
    SystemPoolTagInformation2,
)

#: PROTECTED_POOL: set in the tag of allocations freed only with the same tag; not part of the tag
PROTECTED_POOL: Final = 0x80000000
U32_MASK: Final = 0xFFFFFFFF

#: extra CounterSet column for session pool rows; -1 on rows of the system-wide pools
SESSION_ID_COLUMN: Final = "session_id"
NO_SESSION: Final = -1

#: RTL_PROCESS_MODULE_INFORMATION.FullPathName is a fixed UCHAR[256]
MODULE_PATH_CHARS: Final = 256

AnyBuffer = bytes | bytearray | memoryview


def _struct(fields: Sequence[tuple[str, str, int]], itemsize: int) -> np.dtype[np.void]:
    """A little-endian structured dtype with explicit offsets (the C layout written out)."""
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


@dataclass(frozen=True)
class SessionHeader:
    """Where SYSTEM_SESSION_POOLTAG_INFORMATION keeps SessionId and Count.

    phnt has SessionId at 0x08 and Count at 0x0C (x64); a report from build 19045 shows them
    swapped. `decode_session_pooltags` finds out which one a buffer holds.
    """

    name: str
    session_id_offset: int
    count_offset: int
    size: int


@dataclass(frozen=True)
class Layout:
    """Field offsets for one pointer size. Build with `layout_for`, or use X64 / X86 / ARM64."""

    name: str
    pointer_size: int
    pooltag: np.dtype[np.void] = field(init=False, repr=False, compare=False)
    pooltag2: np.dtype[np.void] = field(init=False, repr=False, compare=False)
    bigpool: np.dtype[np.void] = field(init=False, repr=False, compare=False)
    module: np.dtype[np.void] = field(init=False, repr=False, compare=False)
    session_headers: tuple[SessionHeader, SessionHeader] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = self.pointer_size
        if p not in (4, 8):
            raise ValueError(f"pointer size must be 4 or 8, not {p}")
        ptr = "<u8" if p == 8 else "<u4"
        u4, u2 = "<u4", "<u2"
        if p == 8:
            pooltag = _struct(
                [("Tag", u4, 0), ("PagedAllocs", u4, 4), ("PagedFrees", u4, 8), ("PagedUsed", ptr, 0x10),
                 ("NonPagedAllocs", u4, 0x18), ("NonPagedFrees", u4, 0x1C), ("NonPagedUsed", ptr, 0x20)],
                0x28,
            )
        else:
            pooltag = _struct(
                [("Tag", u4, 0), ("PagedAllocs", u4, 4), ("PagedFrees", u4, 8), ("PagedUsed", ptr, 0x0C),
                 ("NonPagedAllocs", u4, 0x10), ("NonPagedFrees", u4, 0x14), ("NonPagedUsed", ptr, 0x18)],
                0x1C,
            )
        counters2 = ("PagedAllocs", "PagedFrees", "PagedUsed",
                     "NonPagedAllocs", "NonPagedFrees", "NonPagedUsed")
        pooltag2 = _struct([("Tag", u4, 0), *((n, ptr, p + i * p) for i, n in enumerate(counters2))],
                           p + 6 * p)
        bigpool = _struct([("VirtualAddress", ptr, 0), ("SizeInBytes", ptr, p), ("Tag", u4, 2 * p)], 3 * p)
        module = _struct(
            [("Section", ptr, 0), ("MappedBase", ptr, p), ("ImageBase", ptr, 2 * p),
             ("ImageSize", u4, 3 * p), ("Flags", u4, 3 * p + 4), ("LoadOrderIndex", u2, 3 * p + 8),
             ("InitOrderIndex", u2, 3 * p + 10), ("LoadCount", u2, 3 * p + 12),
             ("OffsetToFileName", u2, 3 * p + 14), ("FullPathName", f"S{MODULE_PATH_CHARS}", 3 * p + 16)],
            3 * p + 16 + MODULE_PATH_CHARS,
        )
        # NextEntryOffset is SIZE_T; then two ULONGs; TagInfo[] follows at pointer + 8.
        sessions = (
            SessionHeader("phnt (SessionId, Count)", session_id_offset=p, count_offset=p + 4, size=p + 8),
            SessionHeader("swapped (Count, SessionId; build 19045)", session_id_offset=p + 4, count_offset=p,
                          size=p + 8),
        )
        for name, value in (("pooltag", pooltag), ("pooltag2", pooltag2), ("bigpool", bigpool),
                            ("module", module), ("session_headers", sessions)):
            object.__setattr__(self, name, value)

    @property
    def array_offset(self) -> int:
        """Where the record array starts after the ULONG Count (aligned to the pointer size)."""
        return self.pointer_size


X64: Final = Layout("x64", 8)
X86: Final = Layout("x86", 4)
ARM64: Final = Layout("arm64", 8)  # same structures as x64
LAYOUTS: Final = {layout.name: layout for layout in (X64, X86, ARM64)}


def layout_for(pointer_size: int, machine: str = "") -> Layout:
    """The layout for a process with this pointer size ('AMD64', 'ARM64', 'x86' as Windows names it)."""
    if pointer_size == 4:
        return X86
    if pointer_size == 8:
        return ARM64 if machine.upper() == "ARM64" else X64
    raise ValueError(f"no Windows layout for {pointer_size}-byte pointers")


@dataclass(frozen=True)
class KernelModule:
    """One loaded kernel module (driver) from SystemModuleInformation.

    `path` is a Win32 path once `resolve_module_path` has run (\\SystemRoot\\ and \\??\\ resolved);
    `base` reads as 0 without SeDebugPrivilege since Windows 11 24H2.
    """

    name: str
    path: str
    base: int
    size: int


# --- shared helpers ------------------------------------------------------------------------------


def byte_view(buf: AnyBuffer) -> memoryview:
    """`buf` as a flat memoryview of bytes (what every decoder reads)."""
    view = memoryview(buf)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _read_count(view: memoryview, what: str) -> int:
    if len(view) < 4:
        raise BadInput(f"{what}: buffer of {len(view)} bytes is shorter than its 4-byte Count header")
    return int.from_bytes(view[:4], "little")


def _records(view: memoryview, dtype: np.dtype[np.void], count: int, offset: int, what: str
             ) -> npt.NDArray[Any]:
    """`count` records at `offset`, after checking they lie inside the buffer."""
    needed = offset + count * dtype.itemsize
    if needed > len(view):
        raise BadInput(
            f"{what}: Count says {count} records of {dtype.itemsize} bytes ({needed} bytes with the "
            f"header) but the buffer holds {len(view)} bytes (truncated, or the wrong 32/64-bit layout?)"
        )
    return np.frombuffer(view, dtype=dtype, count=count, offset=offset)


_PRINTABLE = np.zeros(256, dtype=np.uint8)
_PRINTABLE[0x20:0x7F] = 1  # the backslash too: escaped below with one str.replace
_ALL_PRINTABLE = 0x01010101  # four _PRINTABLE bytes read as one little-endian uint32
_TAG_LINE = np.dtype([("tag", "<u4"), ("newline", "u1")])  # 5 bytes, packed


def tag_texts(raw_tags: npt.ArrayLike) -> list[str]:
    """ULONG tags -> text as model.escape_tag prints it; PROTECTED_POOL masked out, padding kept.

    Tags of printable ASCII (nearly all) are made in one pass: they are written into one newline
    separated string that str.split cuts up in C, and backslashes are escaped with one replace.
    The rest go through escape_tag one by one.
    """
    tags = np.ascontiguousarray(raw_tags, dtype="<u4") & np.uint32(U32_MASK ^ PROTECTED_POOL)
    n = len(tags)
    if n == 0:
        return []
    lines = np.empty(n, dtype=_TAG_LINE)
    lines["tag"] = tags
    lines["newline"] = 0x0A  # never part of a printable tag
    dirty = np.flatnonzero(np.take(_PRINTABLE, tags.view(np.uint8)).view("<u4") != _ALL_PRINTABLE)
    if len(dirty):
        lines["tag"][dirty] = 0x3F3F3F3F  # "????", replaced below
    text = lines.tobytes().decode("ascii")
    if "\\" in text:
        text = text.replace("\\", "\\x5c")  # as escape_tag writes it
    texts = text.split("\n")
    del texts[-1]  # after the last separator
    for i in dirty.tolist():
        texts[i] = escape_tag(int(tags[i]).to_bytes(4, "little"))
    return texts


# --- SystemPoolTagInformation (22) and SystemPoolTagInformation2 (255) --------------------------

_POOL_FIELDS: Final = (
    (Pool.NONPAGED, "NonPagedAllocs", "NonPagedFrees", "NonPagedUsed"),
    (Pool.PAGED, "PagedAllocs", "PagedFrees", "PagedUsed"),
)


class TagTextCache:
    """The tag texts of the last decode, reused while the kernel reports the same tags in the same order.

    Making one Python string per row is most of a large decode (65,000 rows: ~5 ms of ~12); between
    two refreshes the tag table rarely changes, and reusing the very same tuple also lets the tracker
    see "same rows" by identity. A source keeps one cache per information class.
    """

    def __init__(self) -> None:
        self._raw: npt.NDArray[np.uint32] | None = None
        self._texts: tuple[str, ...] = ()

    def texts(self, raw: npt.NDArray[np.uint32]) -> tuple[str, ...]:
        last = self._raw
        if last is not None and last.shape == raw.shape and np.array_equal(last, raw):
            return self._texts
        texts = tuple(tag_texts(raw))
        self._raw, self._texts = raw.copy(), texts
        return texts


def decode_pooltags(buf: AnyBuffer, layout: Layout, info_class: int = SystemPoolTagInformation,
                    cache: TagTextCache | None = None) -> CounterSet:
    """SYSTEM_POOLTAG_INFORMATION (class 22) or its SIZE_T variant (class 255) -> counters.

    One NONPAGED and one PAGED row per tag: all nonpaged rows in buffer order, then all paged
    rows. A pool's row is left out only when all three of its counters are zero. For class 22
    allocs and frees are 32-bit and wrap, so diff is (allocs - frees) mod 2^32; class 255 counters
    are SIZE_T and diff wraps at that width. bytes is the Used field (SIZE_T).
    """
    if info_class == SystemPoolTagInformation:
        dtype, bits = layout.pooltag, 32
    elif info_class == SystemPoolTagInformation2:
        dtype, bits = layout.pooltag2, layout.pointer_size * 8
    else:
        raise ValueError(f"decode_pooltags reads classes 22 and 255, not {info_class}")
    what = f"pool tag buffer (class {info_class}, {layout.name})"
    view = byte_view(buf)
    count = _read_count(view, what)
    recs = _records(view, dtype, count, layout.array_offset, what)
    raw_tags = recs["Tag"]

    # Row numbers of the records whose pool is in use, nonpaged first; `take` with an index array
    # is several times faster than boolean indexing of these strided fields.
    # The 32-bit counters and the SIZE_T Used are tested apart: OR-ing them widens every row first
    # (0.5 ms of a 50k-tag decode, against 0.14 ms).
    picks = [np.flatnonzero((recs[a] | recs[f]).astype(np.bool_) | recs[u].astype(np.bool_))
             for _pool, a, f, u in _POOL_FIELDS]
    rows = sum(len(p) for p in picks)
    allocs = np.empty(rows, dtype=np.int64)
    frees = np.empty(rows, dtype=np.int64)
    used = np.empty(rows, dtype=np.int64)
    pools = np.empty(rows, dtype=np.uint8)
    start = 0
    for (pool, a, f, u), pick in zip(_POOL_FIELDS, picks, strict=True):
        part = slice(start, start + len(pick))
        for name, out in ((a, allocs), (f, frees), (u, used)):
            field = recs[name]
            if field.dtype.itemsize == 8:
                # SIZE_T straight into the int64 column (wraps only at 2^63, which no kernel reports)
                field.take(pick, out=out[part].view(field.dtype), mode="clip")  # unbuffered
            else:
                out[part] = field.take(pick)
        pools[part] = pool
        start += len(pick)
    # One string per row, made in one pass: touching 100k string objects a second time (to share
    # one per tag) costs more than making them.
    row_tags = np.concatenate([raw_tags.take(pick) for pick in picks])
    tags = cache.texts(row_tags) if cache is not None else tuple(tag_texts(row_tags))
    diff = np.subtract(allocs, frees)  # int64 arithmetic wraps modulo 2^64
    if bits == 32:
        # 32-bit counters: the difference mod 2^32, read as signed. Frees can run ahead of allocs
        # for a while (allocations made before the counters started); no tag holds 2^31 blocks.
        # Shift, mask, shift back: the same as masking and fixing rows >= 2^31, without the boolean
        # index (0.57 ms -> 0.03 ms at 65k rows).
        diff += 1 << 31
        np.bitwise_and(diff, U32_MASK, out=diff)
        diff -= 1 << 31
    # The columns were made just now for this set: let it own them instead of copying.
    return CounterSet.build(tags, pools, allocs, frees, diff, used, counter_bits=bits, copy=False)


# --- SystemBigPoolInformation (66) ---------------------------------------------------------------


def decode_bigpool(buf: AnyBuffer, layout: Layout, tag: str | None = None) -> list[BigPoolAllocation]:
    """SYSTEM_BIGPOOL_INFORMATION -> allocations (optionally only those of `tag`, as escape_tag prints it).

    Bit 0 of VirtualAddress flags NonPaged and is masked off the address. Since Windows 11 24H2
    addresses read as 0 without SeDebugPrivilege; sizes and tags are unaffected.
    """
    what = f"big pool buffer (class 66, {layout.name})"
    view = byte_view(buf)
    count = _read_count(view, what)
    recs = _records(view, layout.bigpool, count, layout.array_offset, what)
    raw_tags = recs["Tag"] & np.uint32(U32_MASK ^ PROTECTED_POOL)
    if tag is not None:
        recs = recs[raw_tags == tag_value(tag)]
        raw_tags = raw_tags[: 0] if len(recs) == 0 else recs["Tag"] & np.uint32(U32_MASK ^ PROTECTED_POOL)
    addresses = recs["VirtualAddress"].astype(np.uint64).tolist()
    return [
        BigPoolAllocation(address=va & ~1, size=size, tag=t, nonpaged=bool(va & 1))
        for va, size, t in zip(addresses, recs["SizeInBytes"].tolist(), tag_texts(raw_tags), strict=True)
    ]


def tag_value(tag: str) -> int:
    """A tag as printed (escape_tag text, e.g. 'Io  ' or 'Ab\\x01c') -> its ULONG; short tags are
    space padded the way drivers write them ('Io' -> 'Io  ')."""
    raw = unescape_tag(tag)
    if len(raw) > 4:
        raise BadInput(f"pool tag {tag!r} is longer than 4 bytes")
    return int.from_bytes(raw.ljust(4, b" "), "little") & (U32_MASK ^ PROTECTED_POOL)


# --- SystemModuleInformation (11) ----------------------------------------------------------------


def decode_modules(buf: AnyBuffer, layout: Layout, encoding: str = "latin-1") -> list[KernelModule]:
    """RTL_PROCESS_MODULES -> kernel modules, paths as the kernel spells them (see resolve_module_path).

    FullPathName is ANSI text; pass encoding="mbcs" on Windows for the system code page.
    """
    what = f"module buffer (class 11, {layout.name})"
    view = byte_view(buf)
    count = _read_count(view, what)
    recs = _records(view, layout.module, count, layout.array_offset, what)
    out: list[KernelModule] = []
    for raw, name_at, base, size in zip(recs["FullPathName"].tolist(), recs["OffsetToFileName"].tolist(),
                                        recs["ImageBase"].tolist(), recs["ImageSize"].tolist(), strict=True):
        path = raw.split(b"\0", 1)[0].decode(encoding, errors="replace")
        raw_name = raw[name_at:].split(b"\0", 1)[0] if name_at < len(raw) else b""
        name = raw_name.decode(encoding, errors="replace") or path.rsplit("\\", 1)[-1]
        out.append(KernelModule(name=name, path=path, base=int(base), size=int(size)))
    return out


def resolve_module_path(path: str, system_root: str = "C:\\Windows", system_drive: str | None = None) -> str:
    """A module path as the kernel reports it -> a path a Win32 program can open.

    \\SystemRoot\\x -> <system_root>\\x; \\??\\C:\\x and \\\\?\\C:\\x -> C:\\x; \\Windows\\x (no drive, seen
    for boot drivers) -> <system_drive>\\Windows\\x; system32\\x (relative) -> <system_root>\\system32\\x.
    Anything else (\\Device\\HarddiskVolumeN\\...) is returned unchanged.
    """
    root = system_root.rstrip("\\")
    drive = (system_drive or root[:2]).rstrip("\\")
    lower = path.lower()
    if lower.startswith("\\systemroot\\"):
        return root + path[len("\\SystemRoot") :]
    for prefix in ("\\??\\", "\\\\?\\", "\\dosdevices\\", "\\global??\\"):
        if lower.startswith(prefix):
            return path[len(prefix) :]
    if lower.startswith("\\windows\\"):
        return drive + path
    if lower.startswith(("system32\\", "syswow64\\")):
        return root + "\\" + path
    return path
