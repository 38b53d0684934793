"""Decoders fed with buffers from the independent struct.pack encoder (nt_encoders.py)."""

from __future__ import annotations

import nt_encoders as enc
import numpy as np
import pytest

from pooltop.errors import BadInput
from pooltop.model import CounterSet, Pool
from pooltop.native.windows import layouts
from pooltop.native.windows.layouts import (
    ARM64,
    NO_SESSION,
    SESSION_ID_COLUMN,
    X64,
    X86,
    Layout,
    decode_bigpool,
    decode_modules,
    decode_pooltags,
    resolve_module_path,
)
from pooltop.native.windows.sessions import decode_session_pooltags, detect_session_layout, with_session_rows

ALL = [X64, X86, ARM64]
ids = [layout.name for layout in ALL]


def rows(cs: CounterSet) -> list[tuple[str, str, int, int, int, int]]:
    return [
        (t, Pool(int(p)).label, int(a), int(f), int(d), int(b))
        for t, p, a, f, d, b in zip(cs.tags, cs.pools, cs.allocs, cs.frees, cs.diff, cs.bytes, strict=True)
    ]


# --- class 22 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_pooltags_one_row_per_tag_and_pool(layout: Layout) -> None:
    p = layout.pointer_size
    buf = enc.pooltag_info(
        p,
        [
            enc.pooltag(p, "Io  ", paged=(10, 4, 600), nonpaged=(7, 7, 0)),
            enc.pooltag(p, "File", paged=(0, 0, 0), nonpaged=(3, 1, 256)),
            enc.pooltag(p, "Idle", paged=(0, 0, 0), nonpaged=(0, 0, 0)),
        ],
    )
    cs = decode_pooltags(buf, layout)
    assert rows(cs) == [
        ("Io  ", "nonpaged", 7, 7, 0, 0),
        ("File", "nonpaged", 3, 1, 2, 256),
        ("Io  ", "paged", 10, 4, 6, 600),
    ]
    assert cs.counter_bits == 32
    assert cs.index()[("Io  ", Pool.PAGED)] == 2


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_pooltags_wrap_when_allocs_below_frees(layout: Layout) -> None:
    p = layout.pointer_size
    buf = enc.pooltag_info(p, [enc.pooltag(p, "Wrap", nonpaged=(5, 2**32 - 3, 4096))])
    (row,) = rows(decode_pooltags(buf, layout))
    assert row == ("Wrap", "nonpaged", 5, 2**32 - 3, 8, 4096)


def test_pooltags_used_is_size_t_on_x64_and_32_bit_on_x86() -> None:
    big = 5 * 2**32 + 17
    cs = decode_pooltags(enc.pooltag_info(8, [enc.pooltag(8, "Big ", paged=(1, 0, big))]), X64)
    assert int(cs.bytes[0]) == big
    cs = decode_pooltags(enc.pooltag_info(4, [enc.pooltag(4, "Big ", paged=(1, 0, 2**32 - 1))]), X86)
    assert int(cs.bytes[0]) == 2**32 - 1


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_pooltags_protected_bit_is_not_part_of_the_tag(layout: Layout) -> None:
    p = layout.pointer_size
    raw = int.from_bytes(b"Prot", "little") | 0x80000000
    buf = enc.pooltag_info(p, [enc.pooltag(p, raw, paged=(1, 0, 16))])
    assert decode_pooltags(buf, layout).tags == ("Prot",)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"Io  ", "Io  "),
        (b"   A", "   A"),
        (b"ab\x00\x00", "ab\\x00\\x00"),
        (b"\x1b[2J", "\\x1b[2J"),
        (b"a\\bc", "a\\x5cbc"),
        (b"\xff\xfe\xfd\x7f", "\\xff\\xfe\\xfd\\x7f"),
        (b"Ab\nc", "Ab\\x0ac"),
    ],
)
def test_pooltags_padded_and_odd_tags(raw: bytes, text: str) -> None:
    p = 8
    buf = enc.pooltag_info(
        p,
        [
            enc.pooltag(p, "Fine", paged=(1, 0, 8)),
            enc.pooltag(p, raw, paged=(1, 0, 8)),
            enc.pooltag(p, "Last", paged=(1, 0, 8)),
        ],
    )
    assert decode_pooltags(buf, X64).tags == ("Fine", text, "Last")


def test_pooltags_empty_and_trailing_bytes() -> None:
    assert len(decode_pooltags(enc.pooltag_info(8, []), X64)) == 0
    assert len(decode_pooltags(b"\0\0\0\0", X86)) == 0
    # bytes after Count records (a buffer not cut to ReturnLength) are ignored
    buf = enc.pooltag_info(8, [enc.pooltag(8, "Tail", paged=(1, 0, 8))]) + b"\xff" * 13
    assert decode_pooltags(buf, X64).tags == ("Tail",)


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_pooltags_count_larger_than_buffer(layout: Layout) -> None:
    p = layout.pointer_size
    buf = enc.pooltag_info(p, [enc.pooltag(p, "One ", paged=(1, 0, 8))], count=2)
    with pytest.raises(BadInput, match="Count says 2 records"):
        decode_pooltags(buf, layout)


@pytest.mark.parametrize("cut", [0, 1, 3])
def test_pooltags_truncated_header(cut: int) -> None:
    with pytest.raises(BadInput, match="shorter than its 4-byte Count header"):
        decode_pooltags(b"\x01\0\0\0"[:cut], X64)


def test_pooltags_odd_size_partial_record() -> None:
    buf = enc.pooltag_info(8, [enc.pooltag(8, "Half", paged=(1, 0, 8))])[:-5]
    with pytest.raises(BadInput, match="truncated"):
        decode_pooltags(buf, X64)


def test_x86_buffer_read_with_x64_layout_is_refused() -> None:
    buf = enc.pooltag_info(
        4, [enc.pooltag(4, "Tag1", paged=(1, 0, 8)), enc.pooltag(4, "Tag2", paged=(1, 0, 8))]
    )
    with pytest.raises(BadInput, match="32/64-bit layout"):
        decode_pooltags(buf, X64)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    buf = enc.pooltag_info(8, [enc.pooltag(8, "Mv  ", paged=(1, 0, 8))])
    for form in (bytearray(buf), memoryview(buf), memoryview(bytearray(buf))):
        assert decode_pooltags(form, X64).tags == ("Mv  ",)


def test_decode_pooltags_rejects_other_classes() -> None:
    with pytest.raises(ValueError):
        decode_pooltags(enc.pooltag_info(8, []), X64, 67)


# --- class 255 ---------------------------------------------------------------------------------


def test_pooltags2_x64_counters_are_64_bit() -> None:
    buf = enc.pooltag_info(8, [enc.pooltag2(8, "Wide", paged=(2**40 + 9, 2**40, 2**50), nonpaged=(3, 3, 0))])
    cs = decode_pooltags(buf, X64, 255)
    assert rows(cs) == [("Wide", "nonpaged", 3, 3, 0, 0), ("Wide", "paged", 2**40 + 9, 2**40, 9, 2**50)]
    assert cs.counter_bits == 64


def test_pooltags2_x86_counters_wrap_at_32_bits() -> None:
    buf = enc.pooltag_info(4, [enc.pooltag2(4, "Narw", paged=(1, 2, 64))])
    cs = decode_pooltags(buf, X86, 255)
    # 1 alloc, 2 frees: mod 2^32 that is 2^32 - 1, read as signed -1 (frees ran ahead)
    assert rows(cs) == [("Narw", "paged", 1, 2, -1, 64)]
    assert cs.counter_bits == 32


# --- class 67 ----------------------------------------------------------------------------------


def session_records(p: int) -> tuple[list[bytes], list[bytes]]:
    s1 = [
        enc.pooltag(p, "Gla5", paged=(10, 2, 800)),
        enc.pooltag(p, "Usqm", paged=(4, 4, 0)),
        enc.pooltag(p, "Gh05", paged=(0, 0, 0)),
    ]
    s2 = [
        enc.pooltag(p, "Gla5", paged=(5, 1, 400), nonpaged=(1, 0, 32)),
        enc.pooltag(p, "Ttfd", paged=(7, 1, 96)),
    ]
    return s1, s2


@pytest.mark.parametrize("layout", ALL, ids=ids)
@pytest.mark.parametrize("swapped", [False, True], ids=["phnt", "swapped-19045"])
def test_session_layouts_are_detected(layout: Layout, swapped: bool) -> None:
    p = layout.pointer_size
    s1, s2 = session_records(p)
    buf = enc.session_info(p, [(1, s1), (2, s2)], swapped=swapped)
    assert detect_session_layout(buf, layout) is layout.session_headers[int(swapped)]
    cs = decode_session_pooltags(buf, layout, per_session=True)
    assert rows(cs) == [
        ("Gla5", "session", 10, 2, 8, 800),
        ("Usqm", "session", 4, 4, 0, 0),
        ("Gla5", "session", 6, 1, 5, 432),
        ("Ttfd", "session", 7, 1, 6, 96),
    ]
    assert cs.extra[SESSION_ID_COLUMN].tolist() == [1, 1, 2, 2]


@pytest.mark.parametrize("swapped", [False, True])
def test_session_single_entry_layouts(swapped: bool) -> None:
    """One session, Count != SessionId: only the exact-fit reading is right."""
    records = [enc.pooltag(8, f"T{i:03d}", paged=(i + 1, 0, 16)) for i in range(5)]
    buf = enc.session_info(8, [(1, records)], swapped=swapped)
    cs = decode_session_pooltags(buf, X64)
    assert cs.tags == tuple(f"T{i:03d}" for i in range(5))
    assert set(cs.extra[SESSION_ID_COLUMN].tolist()) == {1}


def test_session_rows_add_up_across_sessions_by_default() -> None:
    s1, s2 = session_records(8)
    cs = decode_session_pooltags(enc.session_info(8, [(1, s1), (2, s2)]), X64)
    assert rows(cs) == [
        ("Gla5", "session", 16, 3, 13, 1232),
        ("Usqm", "session", 4, 4, 0, 0),
        ("Ttfd", "session", 7, 1, 6, 96),
    ]
    assert cs.extra[SESSION_ID_COLUMN].tolist() == [NO_SESSION, 1, 2]
    assert len(cs.index()) == len(cs)  # (tag, pool) stays a unique key


def test_session_diff_wraps_per_counter() -> None:
    buf = enc.session_info(8, [(0, [enc.pooltag(8, "Wrap", paged=(1, 2**32 - 1, 64))])])
    assert rows(decode_session_pooltags(buf, X64)) == [("Wrap", "session", 1, 2**32 - 1, 2, 64)]


def test_session_protected_bit_and_empty_buffer() -> None:
    raw = int.from_bytes(b"Sess", "little") | 0x80000000
    buf = enc.session_info(8, [(3, [enc.pooltag(8, raw, paged=(1, 0, 8))])])
    assert decode_session_pooltags(buf, X64).tags == ("Sess",)
    empty = decode_session_pooltags(b"", X64)
    assert len(empty) == 0 and SESSION_ID_COLUMN in empty.extra
    assert len(decode_session_pooltags(enc.session_info(8, [(1, [])]), X64)) == 0


def test_session_neither_layout_fits() -> None:
    import struct

    # NextEntryOffset points into the middle of a record under both readings
    buf = struct.pack("<QII", 20, 1, 2) + b"\0" * 200
    with pytest.raises(BadInput, match="neither known layout"):
        decode_session_pooltags(buf, X64)
    # Count and SessionId both far too large for the buffer
    buf = struct.pack("<QII", 0, 70000, 90000) + enc.pooltag(8, "Only", paged=(1, 0, 8))
    with pytest.raises(BadInput, match=r"phnt .*swapped"):
        decode_session_pooltags(buf, X64)
    with pytest.raises(BadInput):
        decode_session_pooltags(b"\0" * 7, X64)


def test_session_chain_pointing_past_the_end() -> None:
    s1, _ = session_records(8)
    buf = bytearray(enc.session_info(8, [(1, s1), (2, s1)]))
    buf[0:8] = (len(buf) + 8).to_bytes(8, "little")
    with pytest.raises(BadInput):
        decode_session_pooltags(bytes(buf), X64)


# --- class 66 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_bigpool_address_bit0_is_nonpaged(layout: Layout) -> None:
    p = layout.pointer_size
    top = 0xFFFF_A000_0000_0000 if p == 8 else 0x8100_0000
    buf = enc.array_info(
        p,
        [
            enc.bigpool(p, top + 0x1000, 0x2000, "Big ", nonpaged=True),
            enc.bigpool(p, top + 0x4000, 0x10000, "Pgd ", nonpaged=False),
            enc.bigpool(
                p, top + 0x8000, 0x3000, int.from_bytes(b"Big ", "little") | 0x80000000, nonpaged=False
            ),
        ],
    )
    allocs = decode_bigpool(buf, layout)
    assert [(a.address, a.size, a.tag, a.nonpaged) for a in allocs] == [
        (top + 0x1000, 0x2000, "Big ", True),
        (top + 0x4000, 0x10000, "Pgd ", False),
        (top + 0x8000, 0x3000, "Big ", False),
    ]
    assert [a.address for a in decode_bigpool(buf, layout, "Big ")] == [top + 0x1000, top + 0x8000]
    assert [a.size for a in decode_bigpool(buf, layout, "Pgd")] == [0x10000]  # short tags are space padded
    assert decode_bigpool(buf, layout, "None") == []


def test_bigpool_zero_addresses_without_debug_privilege() -> None:
    """Windows 11 24H2+: addresses read as 0 (bit 0 still flags nonpaged)."""
    buf = enc.array_info(8, [enc.bigpool(8, 0, 0x5000, "Zero", nonpaged=True)])
    (a,) = decode_bigpool(buf, X64)
    assert (a.address, a.size, a.nonpaged) == (0, 0x5000, True)


def test_bigpool_bad_counts_and_tags() -> None:
    with pytest.raises(BadInput):
        decode_bigpool(enc.array_info(8, [enc.bigpool(8, 0x1000, 1, "A   ")], count=3), X64)
    with pytest.raises(BadInput, match="longer than 4 bytes"):
        decode_bigpool(enc.array_info(8, []), X64, "TooLong")
    buf = enc.array_info(8, [enc.bigpool(8, 0x1000, 1, b"a\\\x01b")])
    assert decode_bigpool(buf, X64, "a\\x5c\\x01b")[0].tag == "a\\x5c\\x01b"


# --- class 11 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ALL, ids=ids)
def test_modules(layout: Layout) -> None:
    p = layout.pointer_size
    base = 0xFFFFF800_10000000 if p == 8 else 0x80400000
    buf = enc.array_info(
        p,
        [
            enc.module(p, base, 0x200000, b"\\SystemRoot\\system32\\ntoskrnl.exe"),
            enc.module(p, base + 0x200000, 0x9000, b"\\??\\C:\\Drivers\\leaky.sys"),
            enc.module(p, 0, 0x1000, b"\\SystemRoot\\System32\\drivers\\odd.sys", name_offset=300),
        ],
    )
    mods = decode_modules(buf, layout)
    assert [(m.name, m.path, m.base, m.size) for m in mods] == [
        ("ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe", base, 0x200000),
        ("leaky.sys", "\\??\\C:\\Drivers\\leaky.sys", base + 0x200000, 0x9000),
        ("odd.sys", "\\SystemRoot\\System32\\drivers\\odd.sys", 0, 0x1000),
    ]


def test_modules_full_256_byte_path_and_bad_count() -> None:
    path = b"C:\\" + b"d" * 249 + b".sys"
    assert len(path) == 256
    (m,) = decode_modules(enc.array_info(8, [enc.module(8, 1, 2, path)]), X64)
    assert m.path == path.decode() and m.name == path.decode()[3:]
    with pytest.raises(BadInput):
        decode_modules(enc.array_info(8, [enc.module(8, 1, 2, b"x")], count=9), X64)


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("\\SystemRoot\\system32\\ntoskrnl.exe", "C:\\Windows\\system32\\ntoskrnl.exe"),
        ("\\systemroot\\System32\\drivers\\ACPI.sys", "C:\\Windows\\System32\\drivers\\ACPI.sys"),
        ("\\??\\C:\\Program Files\\Vendor\\vdrv.sys", "C:\\Program Files\\Vendor\\vdrv.sys"),
        ("\\\\?\\D:\\drv\\x.sys", "D:\\drv\\x.sys"),
        ("\\Windows\\System32\\drivers\\wd.sys", "C:\\Windows\\System32\\drivers\\wd.sys"),
        ("System32\\drivers\\boot.sys", "C:\\Windows\\System32\\drivers\\boot.sys"),
        ("\\Device\\HarddiskVolume3\\x.sys", "\\Device\\HarddiskVolume3\\x.sys"),
        ("C:\\already\\win32.sys", "C:\\already\\win32.sys"),
    ],
)
def test_resolve_module_path(raw: str, resolved: str) -> None:
    assert resolve_module_path(raw, "C:\\Windows", "C:") == resolved


def test_resolve_module_path_other_system_root() -> None:
    assert resolve_module_path("\\SystemRoot\\a.sys", "D:\\WINNT\\") == "D:\\WINNT\\a.sys"
    assert resolve_module_path("\\Windows\\a.sys", "D:\\WINNT") == "D:\\Windows\\a.sys"


# --- assembling a snapshot's rows ----------------------------------------------------------------


def test_with_session_rows_adds_a_session_id_column() -> None:
    system = decode_pooltags(enc.pooltag_info(8, [enc.pooltag2(8, "Sys ", paged=(1, 0, 8))]), X64, 255)
    sessions = decode_session_pooltags(
        enc.session_info(8, [(4, [enc.pooltag(8, "Ses ", paged=(2, 1, 9))])]), X64
    )
    both = with_session_rows(system, sessions)
    assert rows(both) == [("Sys ", "paged", 1, 0, 1, 8), ("Ses ", "session", 2, 1, 1, 9)]
    assert both.extra[SESSION_ID_COLUMN].tolist() == [NO_SESSION, 4]
    assert both.counter_bits == 32  # class 67 counters are 32-bit even next to class 255's
    alone = with_session_rows(system, None)
    assert alone.extra[SESSION_ID_COLUMN].tolist() == [NO_SESSION]
    assert alone.counter_bits == 64


def test_tag_texts_bulk_matches_escape_tag() -> None:
    from pooltop.model import escape_tag

    rng = np.random.default_rng(7)
    raw = rng.integers(0, 2**32, size=2000, dtype=np.uint64).astype(np.uint32)
    raw[:1000] = rng.integers(0x20, 0x7F, size=(1000, 4), dtype=np.uint8).view("<u4").ravel()
    expected = [escape_tag((int(v) & 0x7FFFFFFF).to_bytes(4, "little")) for v in raw]
    assert layouts.tag_texts(raw) == expected
