"""Structure sizes and offsets, 32 and 64 bit, against the table in shared/DESIGN.md.

Like PythonForWindows' tests/test_generated_def.py: every structure pooltop decodes is checked
twice, once for pooltop's numpy dtype and once for a ctypes Structure written here from the C
declaration (phnt), so both the table and the decoder's offsets follow C alignment rules.
"""

from __future__ import annotations

import ctypes
import struct

import nt_encoders as enc
import pytest

from pooltop.native.windows import layouts
from pooltop.native.windows.layouts import ARM64, X64, X86, Layout
from pooltop.native.windows.ntapi import performance_information_struct

# (structure, pointer size) -> (size, {field: offset}) — shared/DESIGN.md "Facts that bite"
DESIGN = {
    ("pooltag", 8): (
        0x28,
        {
            "Tag": 0,
            "PagedAllocs": 4,
            "PagedFrees": 8,
            "PagedUsed": 0x10,
            "NonPagedAllocs": 0x18,
            "NonPagedFrees": 0x1C,
            "NonPagedUsed": 0x20,
        },
    ),
    ("pooltag", 4): (
        0x1C,
        {
            "Tag": 0,
            "PagedAllocs": 4,
            "PagedFrees": 8,
            "PagedUsed": 0x0C,
            "NonPagedAllocs": 0x10,
            "NonPagedFrees": 0x14,
            "NonPagedUsed": 0x18,
        },
    ),
    ("pooltag2", 8): (
        0x38,
        {
            "Tag": 0,
            "PagedAllocs": 0x08,
            "PagedFrees": 0x10,
            "PagedUsed": 0x18,
            "NonPagedAllocs": 0x20,
            "NonPagedFrees": 0x28,
            "NonPagedUsed": 0x30,
        },
    ),
    ("pooltag2", 4): (
        0x1C,
        {
            "Tag": 0,
            "PagedAllocs": 0x04,
            "PagedFrees": 0x08,
            "PagedUsed": 0x0C,
            "NonPagedAllocs": 0x10,
            "NonPagedFrees": 0x14,
            "NonPagedUsed": 0x18,
        },
    ),
    ("bigpool", 8): (0x18, {"VirtualAddress": 0, "SizeInBytes": 0x08, "Tag": 0x10}),
    ("bigpool", 4): (0x0C, {"VirtualAddress": 0, "SizeInBytes": 0x04, "Tag": 0x08}),
    ("module", 8): (
        0x128,
        {"ImageBase": 0x10, "ImageSize": 0x18, "OffsetToFileName": 0x26, "FullPathName": 0x28},
    ),
    ("module", 4): (
        0x11C,
        {"ImageBase": 0x08, "ImageSize": 0x0C, "OffsetToFileName": 0x1A, "FullPathName": 0x1C},
    ),
}
ARRAY_AT = {8: 8, 4: 4}
SESSION_HEADER = {
    8: (0x10, {"NextEntryOffset": 0, "SessionId": 0x08, "Count": 0x0C}),
    4: (0x0C, {"NextEntryOffset": 0, "SessionId": 0x04, "Count": 0x08}),
}


def ctypes_structs(ptr: int) -> dict[str, type[ctypes.Structure]]:
    """The C declarations (phnt) as ctypes Structures with fixed-width fields."""
    size_t: type[ctypes.c_uint32] | type[ctypes.c_uint64] = ctypes.c_uint64 if ptr == 8 else ctypes.c_uint32
    u32, u16 = ctypes.c_uint32, ctypes.c_uint16

    class SYSTEM_POOLTAG(ctypes.Structure):
        _fields_ = (
            ("Tag", u32),
            ("PagedAllocs", u32),
            ("PagedFrees", u32),
            ("PagedUsed", size_t),
            ("NonPagedAllocs", u32),
            ("NonPagedFrees", u32),
            ("NonPagedUsed", size_t),
        )

    class SYSTEM_POOLTAG2(ctypes.Structure):
        _fields_ = (
            ("Tag", u32),
            ("PagedAllocs", size_t),
            ("PagedFrees", size_t),
            ("PagedUsed", size_t),
            ("NonPagedAllocs", size_t),
            ("NonPagedFrees", size_t),
            ("NonPagedUsed", size_t),
        )

    class SYSTEM_BIGPOOL_ENTRY(ctypes.Structure):
        _fields_ = (("VirtualAddress", size_t), ("SizeInBytes", size_t), ("Tag", u32))

    class RTL_PROCESS_MODULE_INFORMATION(ctypes.Structure):
        _fields_ = (
            ("Section", size_t),
            ("MappedBase", size_t),
            ("ImageBase", size_t),
            ("ImageSize", u32),
            ("Flags", u32),
            ("LoadOrderIndex", u16),
            ("InitOrderIndex", u16),
            ("LoadCount", u16),
            ("OffsetToFileName", u16),
            ("FullPathName", ctypes.c_ubyte * 256),
        )

    class SYSTEM_SESSION_POOLTAG_INFORMATION(ctypes.Structure):
        _fields_ = (
            ("NextEntryOffset", size_t),
            ("SessionId", u32),
            ("Count", u32),
            ("TagInfo", SYSTEM_POOLTAG * 1),
        )

    class SYSTEM_POOLTAG_INFORMATION(ctypes.Structure):
        _fields_ = (("Count", u32), ("TagInfo", SYSTEM_POOLTAG * 1))

    return {
        "pooltag": SYSTEM_POOLTAG,
        "pooltag2": SYSTEM_POOLTAG2,
        "bigpool": SYSTEM_BIGPOOL_ENTRY,
        "module": RTL_PROCESS_MODULE_INFORMATION,
        "session": SYSTEM_SESSION_POOLTAG_INFORMATION,
        "info": SYSTEM_POOLTAG_INFORMATION,
    }


# 64-bit alignment of c_uint64 inside ctypes Structures is 8 on every 64-bit host we run on;
# the x86 structures contain no 64-bit field, so they come out as on 32-bit Windows.
@pytest.mark.parametrize(("structure", "ptr"), sorted(DESIGN))
def test_ctypes_declaration_matches_design_table(structure: str, ptr: int) -> None:
    size, offsets = DESIGN[(structure, ptr)]
    cls = ctypes_structs(ptr)[structure]
    assert ctypes.sizeof(cls) == size
    for name, offset in offsets.items():
        assert getattr(cls, name).offset == offset, name


@pytest.mark.parametrize(
    ("structure", "layout_name"),
    [
        (structure, name)
        for structure, ptr in sorted(DESIGN)
        for name, layout in layouts.LAYOUTS.items()
        if layout.pointer_size == ptr
    ],
)
def test_decoder_dtype_matches_design_table(structure: str, layout_name: str) -> None:
    layout = layouts.LAYOUTS[layout_name]
    ptr = layout.pointer_size
    size, offsets = DESIGN[(structure, ptr)]
    dtype = getattr(layout, structure)
    assert dtype.itemsize == size
    for name, offset in offsets.items():
        assert dtype.fields[name][1] == offset, name
    # and every field the decoder reads sits where the C declaration puts it
    cls = ctypes_structs(ptr)[structure]
    for name, (_, offset) in dtype.fields.items():
        assert getattr(cls, name).offset == offset, name


@pytest.mark.parametrize("ptr", [8, 4])
def test_array_and_session_header_offsets(ptr: int) -> None:
    layout = layouts.layout_for(ptr)
    assert layout.array_offset == ARRAY_AT[ptr]
    assert ctypes_structs(ptr)["info"].TagInfo.offset == ARRAY_AT[ptr]
    size, offsets = SESSION_HEADER[ptr]
    session = ctypes_structs(ptr)["session"]
    assert session.TagInfo.offset == size
    for name, offset in offsets.items():
        assert getattr(session, name).offset == offset
    phnt, swapped = layout.session_headers
    assert (phnt.session_id_offset, phnt.count_offset, phnt.size) == (
        offsets["SessionId"],
        offsets["Count"],
        size,
    )
    assert (swapped.session_id_offset, swapped.count_offset) == (offsets["Count"], offsets["SessionId"])


@pytest.mark.parametrize("ptr", [8, 4])
def test_test_encoder_agrees_with_design_table(ptr: int) -> None:
    """The independent struct.pack encoder used by the decoder tests writes the same sizes."""
    for structure, fmt in (
        ("pooltag", enc.POOLTAG_FMT),
        ("pooltag2", enc.POOLTAG2_FMT),
        ("bigpool", enc.BIGPOOL_FMT),
        ("module", enc.MODULE_FMT),
    ):
        assert struct.calcsize(fmt[ptr]) == DESIGN[(structure, ptr)][0], structure


def test_arm64_uses_x64_structures() -> None:
    for name in ("pooltag", "pooltag2", "bigpool", "module"):
        assert getattr(ARM64, name) == getattr(X64, name)
    assert layouts.layout_for(8, "ARM64") is ARM64
    assert layouts.layout_for(8, "AMD64") is X64
    assert layouts.layout_for(4, "x86") is X86
    with pytest.raises(ValueError):
        layouts.layout_for(2)
    with pytest.raises(ValueError):
        Layout("x32", 6)


@pytest.mark.parametrize(
    ("size_t", "size", "offsets"),
    [
        (
            ctypes.c_uint64,
            104,
            {
                "CommitTotal": 8,
                "KernelPaged": 0x40,
                "KernelNonpaged": 0x48,
                "PageSize": 0x50,
                "HandleCount": 0x58,
                "ThreadCount": 0x60,
            },
        ),
        (
            ctypes.c_uint32,
            56,
            {
                "CommitTotal": 4,
                "KernelPaged": 0x20,
                "KernelNonpaged": 0x24,
                "PageSize": 0x28,
                "HandleCount": 0x2C,
                "ThreadCount": 0x34,
            },
        ),
    ],
)
def test_performance_information_layout(
    size_t: type[ctypes.c_uint64], size: int, offsets: dict[str, int]
) -> None:
    cls = performance_information_struct(size_t)
    assert ctypes.sizeof(cls) == size
    for name, offset in offsets.items():
        assert getattr(cls, name).offset == offset, name
