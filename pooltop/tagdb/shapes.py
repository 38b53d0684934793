"""The shapes of a pool call's setup read straight from the instructions, without the machine.

Most calls set the tag just before the call: x64 `mov r8d, imm32` (or `mov r8d, ebx` after
`mov ebx, imm32`), x86 pushes of an imm32 (or of a register set so). Walking back from the call over
a few instructions answers them at a fraction of a replay's cost; anything else is UNSURE and the
abstract machine (machine.py) replays the window. Whatever is answered here is what the machine
would answer, the index of the instruction that made the constant included.
"""

from __future__ import annotations

from collections.abc import Sequence

from pooltop.tagdb.machine import UNSURE, Value
from pooltop.tagdb.poolapis import MASK32, PoolApi
from pooltop.tagdb.x86ops import MOVES, NAMES, NO_WRITE, STACK_OPS, STOP, implicit_writes, operands

#: (address, size, mnemonic, operands), as capstone's disasm_lite gives them
Insn = tuple[int, int, str, str]
#: how the tag registers' writes start in capstone's operand text (32-bit form first)
REG_PREFIXES = {"r8": ("r8d,", "r8,", "r8w,", "r8b,"), "rdx": ("edx,", "rdx,", "dx,", "dl,", "dh,")}

def _register_constant(body: Sequence[Insn], before: int, canon: str) -> Value:
    """What the machine holds in register `canon` at body[before], when its last write there is
    `mov reg32, imm32` and nothing after it can touch the register (as (constant, index)); UNSURE
    for anything else, which the machine then replays."""
    names = NAMES[canon]
    for index in range(before - 1, -1, -1):
        _address, _size, mnemonic, op_str = body[index]
        if (
            mnemonic in STOP
            or mnemonic in ("call", "xchg", "xadd")
            or (mnemonic.startswith(STACK_OPS) and mnemonic != "push")  # leave, popad, enter: clobber
            or canon in implicit_writes(mnemonic)
        ):
            return UNSURE
        if mnemonic in NO_WRITE or op_str.split(", ", 1)[0] not in names:
            continue  # writes another register or memory (or nothing)
        if mnemonic == "mov":
            ops = operands(op_str)
            if ops[0][2] == 32 and ops[1][0] == "i":
                return (ops[1][1] & MASK32, index)
        return UNSURE
    return UNSURE


def quick_tag(arch: str, body: Sequence[Insn], api: PoolApi, tail: bool) -> Value:
    """The common shapes without the abstract machine: on x64 the last write to the tag register
    is `mov r8d, imm32` (or `mov r8d, reg32` after `mov reg32, imm32`); on x86 the tag's push is
    among the pushes right before the call (of an imm32, or of a register set so). UNSURE when
    the shape is anything else. What it returns is what the machine would (index included)."""
    if arch == "x64":
        return _quick_x64(body, api)
    return UNSURE if tail else _quick_x86(body, api)

def _quick_x64(body: Sequence[Insn], api: PoolApi) -> Value:
    prefixes = REG_PREFIXES[api.x64_tag_reg]
    implicit = api.x64_tag_reg
    for index in range(len(body) - 1, -1, -1):
        _address, _size, mnemonic, op_str = body[index]
        if mnemonic in STOP or mnemonic == "call":
            return UNSURE
        if op_str.startswith(prefixes) and mnemonic not in NO_WRITE:
            if mnemonic == "mov" and op_str.startswith(prefixes[0]):
                operand = operands(op_str)[1]
                if operand[0] == "i":
                    return (operand[1] & MASK32, index)
                if operand[0] == "r" and operand[2] == 32:
                    return _register_constant(body, index, operand[1])
            return UNSURE
        if mnemonic in ("xchg", "xadd") or (
            mnemonic not in MOVES and implicit in implicit_writes(mnemonic)
        ):
            return UNSURE
    return UNSURE

def _quick_x86(body: Sequence[Insn], api: PoolApi) -> Value:
    wanted = api.x86_tag_slot  # pushes back from the call
    for index in range(len(body) - 1, -1, -1):
        _address, _size, mnemonic, op_str = body[index]
        if mnemonic == "push":
            if wanted == 0:
                operand = operands(op_str)
                if len(operand) == 1 and operand[0][0] == "i":
                    return (operand[0][1] & MASK32, index)
                if len(operand) == 1 and operand[0][0] == "r" and operand[0][2] == 32:
                    return _register_constant(body, index, operand[0][1])
                return UNSURE
            wanted -= 1
        elif mnemonic in STOP or mnemonic.startswith(STACK_OPS) or mnemonic == "call" or "sp" in op_str:
            return UNSURE  # pushfd, pop, leave, sub esp: the count of pushes no longer tells
    return UNSURE
