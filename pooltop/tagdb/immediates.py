"""Tag-shaped immediates anywhere in code (the scanner's confidence "immediate"), by byte pattern."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pooltop.tagdb.iatrefs import padded, u32
from pooltop.tagdb.pe import CodeSection
from pooltop.tagdb.poolapis import MASK32, PROTECTED_POOL

_PRINTABLE = np.zeros(256, dtype=np.bool_)
_PRINTABLE[0x20:0x7F] = True
_ALNUM = np.zeros(256, dtype=np.uint8)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
    _ALNUM[_c] = 1


def is_tag_shaped(value: int) -> bool:
    """4 printable ASCII bytes (the top bit of the last may be PROTECTED_POOL), at least 3 alnum."""
    raw = (value & MASK32 & ~PROTECTED_POOL).to_bytes(4, "little")
    return all(_PRINTABLE[c] for c in raw) and sum(int(_ALNUM[c]) for c in raw) >= 3


def find_tag_immediates(sections: Sequence[CodeSection], max_hits: int = 50_000) -> dict[int, list[int]]:
    """Tag-shaped imm32 operands of `mov r32, imm32`, `push imm32`, `cmp eax, imm32`,
    `mov r/m32, imm32` (C7 /0) and `cmp r/m32, imm32` (81 /7), found by byte pattern without a linear
    disassembly. Returns tag value (PROTECTED_POOL masked) -> instruction RVAs (opcode byte)."""
    found: dict[int, list[int]] = {}
    total = 0
    for sec in sections:
        n = len(sec.data)
        if n < 5:
            continue
        b = padded(sec.data)
        body = b[:n]
        direct = np.flatnonzero(((body & 0xF8) == 0xB8) | (body == 0x68) | (body == 0x3D))
        opcodes = [direct]
        immediates = [direct + 1]
        modrm_ops = np.flatnonzero((body == 0xC7) | (body == 0x81))
        if len(modrm_ops):
            modrm = b[modrm_ops + 1].astype(np.int64)
            reg = (modrm >> 3) & 7
            wanted = np.where(b[modrm_ops] == 0xC7, reg == 0, reg == 7)
            mod, rm = modrm >> 6, modrm & 7
            extra = np.select([mod == 3, mod == 1, mod == 2, rm == 5], [0, 1, 4, 4], 0)
            sib = (mod != 3) & (rm == 4)
            extra = extra + sib + 4 * (sib & (mod == 0) & ((b[modrm_ops + 2] & 7) == 5))
            opcodes.append(modrm_ops[wanted])
            immediates.append((modrm_ops + 2 + extra)[wanted])
        ops = np.concatenate(opcodes)
        imm = np.concatenate(immediates)
        keep = imm + 4 <= n
        ops, imm = ops[keep], imm[keep]
        last = b[imm + 3] & 0x7F
        shaped = _PRINTABLE[b[imm]] & _PRINTABLE[b[imm + 1]] & _PRINTABLE[b[imm + 2]] & _PRINTABLE[last]
        ops, imm = ops[shaped], imm[shaped]
        alnum = _ALNUM[b[imm]] + _ALNUM[b[imm + 1]] + _ALNUM[b[imm + 2]] + _ALNUM[b[imm + 3] & 0x7F]
        ops, imm = ops[alnum >= 3], imm[alnum >= 3]
        values = u32(b, imm) & np.uint32(~PROTECTED_POOL & MASK32)
        for op, value in zip(ops.tolist(), values.tolist(), strict=True):
            found.setdefault(int(value), []).append(sec.rva + op)
            total += 1
            if total >= max_hits:
                return found
    return found
