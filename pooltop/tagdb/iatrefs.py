"""Step 1 of the call-site analysis: references to the pool APIs' IAT slots and to import thunks,
found with vectorised byte patterns (numpy) over the code sections, without disassembling them."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pooltop.tagdb.pe import CodeSection

_REX_W = np.array([0x48, 0x49, 0x4C, 0x4D], dtype=np.uint8)


class IatRef(NamedTuple):
    """One reference to a pool API found in the code bytes: a call, tail jump or load of its slot.
    A NamedTuple: thousands are made per dense driver (a frozen dataclass cost 5% of the analysis)."""

    kind: str  # "call", "jmp", "mov"
    starts: tuple[int, ...]  # candidate instruction starts (RVA); two when a REX prefix is possible
    api: str
    reg: str | None = None  # for "mov": the register loaded with the IAT entry
    thunk: int | None = None  # for callers of an import thunk: the thunk's RVA


def padded(data: bytes) -> np.ndarray:
    return np.frombuffer(data + bytes(16), dtype=np.uint8)


def u32(b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    i = idx.astype(np.int64)
    return (
        b[i].astype(np.uint32)
        | (b[i + 1].astype(np.uint32) << 8)
        | (b[i + 2].astype(np.uint32) << 16)
        | (b[i + 3].astype(np.uint32) << 24)
    )


def s32(b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    signed: np.ndarray = u32(b, idx).astype(np.int32).astype(np.int64)
    return signed


_REGS64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi")


def _reg_name(arch: str, number: int) -> str:
    if arch == "x86":
        return "e" + _REGS64[number][1:]
    return _REGS64[number] if number < 8 else f"r{number}"


def iat_refs(sec: CodeSection, arch: str, image_base: int, slots: dict[int, str]) -> list[IatRef]:
    n = len(sec.data)
    if n < 6 or not slots:
        return []
    b = padded(sec.data)
    body = b[:n]
    slot_rvas = np.array(sorted(slots), dtype=np.int64)
    refs: list[IatRef] = []

    def target(opcode_pos: np.ndarray, disp_pos: np.ndarray, insn_len: int) -> np.ndarray:
        out: np.ndarray
        if arch == "x64":
            out = sec.rva + opcode_pos + insn_len + s32(b, disp_pos)
        else:
            out = u32(b, disp_pos).astype(np.int64) - image_base
        return out

    # call / jmp [mem]: FF 15 / FF 25
    ff = np.flatnonzero(body == 0xFF)
    ff = ff[(b[ff + 1] == 0x15) | (b[ff + 1] == 0x25)]
    if len(ff):
        dests = target(ff, ff + 2, 6)
        hit = np.isin(dests, slot_rvas)
        for c, dest in zip(ff[hit].tolist(), dests[hit].tolist(), strict=True):
            kind = "call" if b[c + 1] == 0x15 else "jmp"
            rex = arch == "x64" and c and 0x40 <= b[c - 1] <= 0x4F  # on x86 those bytes are inc/dec
            starts = (sec.rva + c - 1, sec.rva + c) if rex else (sec.rva + c,)
            refs.append(IatRef(kind, starts, slots[dest]))

    # mov reg, [mem]: (REX.W) 8B /r with mod=00 rm=101
    m8 = np.flatnonzero(body == 0x8B)
    m8 = m8[(b[m8 + 1] & 0xC7) == 0x05]
    if arch == "x64":
        m8 = m8[m8 >= 1]
        m8 = m8[np.isin(b[m8 - 1], _REX_W)]
    if len(m8):
        dests = target(m8, m8 + 2, 6)
        hit = np.isin(dests, slot_rvas)
        for c, dest in zip(m8[hit].tolist(), dests[hit].tolist(), strict=True):
            number = (int(b[c + 1]) >> 3) & 7
            if arch == "x64":
                number += 8 if b[c - 1] & 0x04 else 0
                start = sec.rva + c - 1
            else:
                start = sec.rva + c
            refs.append(IatRef("mov", (start,), slots[dest], _reg_name(arch, number)))

    # x86 only: mov eax, [moffs32] (A1)
    if arch == "x86":
        a1 = np.flatnonzero(body == 0xA1)
        if len(a1):
            dests = u32(b, a1 + 1).astype(np.int64) - image_base
            hit = np.isin(dests, slot_rvas)
            for c, dest in zip(a1[hit].tolist(), dests[hit].tolist(), strict=True):
                refs.append(IatRef("mov", (sec.rva + c,), slots[dest], "eax"))
    return refs


def thunk_callers(sec: CodeSection, thunks: dict[int, str]) -> list[IatRef]:
    """`call rel32` / `jmp rel32` whose target is an import thunk."""
    n = len(sec.data)
    if n < 5 or not thunks:
        return []
    b = padded(sec.data)
    e8 = np.flatnonzero((b[:n] == 0xE8) | (b[:n] == 0xE9))
    if not len(e8):
        return []
    dest = sec.rva + e8 + 5 + s32(b, e8 + 1)
    hit = np.isin(dest, np.array(sorted(thunks), dtype=np.int64))
    refs = []
    for c, d in zip(e8[hit].tolist(), dest[hit].tolist(), strict=True):
        refs.append(IatRef("call" if b[c] == 0xE8 else "jmp", (sec.rva + c,), thunks[int(d)], thunk=int(d)))
    return refs

