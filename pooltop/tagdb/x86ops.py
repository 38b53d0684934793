"""x86 / x64 operands and registers as capstone prints them (Intel syntax, no detail mode: disasm_lite
is fast), and what each instruction writes besides its first operand."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

CANON: dict[str, tuple[str, int]] = {}
for _r in ("a", "b", "c", "d"):
    CANON.update({f"r{_r}x": (f"r{_r}x", 64), f"e{_r}x": (f"r{_r}x", 32), f"{_r}x": (f"r{_r}x", 16)})
    CANON.update({f"{_r}l": (f"r{_r}x", 8), f"{_r}h": (f"r{_r}x", 8)})
for _r in ("sp", "bp", "si", "di"):
    CANON.update({f"r{_r}": (f"r{_r}", 64), f"e{_r}": (f"r{_r}", 32), _r: (f"r{_r}", 16)})
    CANON[f"{_r}l"] = (f"r{_r}", 8)
for _i in range(8, 16):
    CANON.update({f"r{_i}": (f"r{_i}", 64), f"r{_i}d": (f"r{_i}", 32)})
    CANON.update({f"r{_i}w": (f"r{_i}", 16), f"r{_i}b": (f"r{_i}", 8)})

#: canonical register -> every name capstone prints for it ("rax": "rax", "eax", "ax", "al", "ah")
NAMES: dict[str, tuple[str, ...]] = {}
for _name, (_canon, _bits) in CANON.items():
    NAMES[_canon] = (*NAMES.get(_canon, ()), _name)


def names_any(op_str: str, registers: set[str]) -> bool:
    """Whether operand text may mention one of `registers` (a substring test: it may say yes wrongly)."""
    return any(name in op_str for canon in registers for name in NAMES[canon])


VOLATILE = {
    "x64": ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11"),
    "x86": ("rax", "rcx", "rdx"),
}

_SIZES = {"byte": 1, "word": 2, "dword": 4, "qword": 8}
_MEM_RE = re.compile(r"^(?:(\w+) ptr )?(?:[a-z]s:)?\[(.*)\]$")

# An operand is one of:
#   ("r", canonical register, bits)   ("i", value)
#   ("m", base or "", has_index, displacement, size in bytes)   ("?",)
Operand = tuple[Any, ...]


@lru_cache(maxsize=8192)
def operands(op_str: str) -> tuple[Operand, ...]:
    if not op_str:
        return ()
    return tuple(_operand(part.strip()) for part in op_str.split(", "))


def _operand(text: str) -> Operand:
    reg = CANON.get(text)
    if reg is not None:
        return ("r", reg[0], reg[1])
    if text[:1].isdigit() or text[:1] == "-":
        try:
            return ("i", int(text, 0))
        except ValueError:
            return ("?",)
    match = _MEM_RE.match(text)
    if match is None:
        return ("?",)
    size = _SIZES.get(match.group(1) or "", 0)
    base, has_index, disp = "", False, 0
    for sign, term in re.findall(r"([+-]?)\s*([^+-]+)", match.group(2)):
        term = term.strip()
        if "*" in term:
            has_index = True
            continue
        reg = CANON.get(term)
        if reg is not None:
            if base:
                has_index = True
            else:
                base = reg[0]
            continue
        try:
            value = int(term, 0)
        except ValueError:
            return ("?",)
        disp += -value if sign == "-" else value
    return ("m", base, has_index, disp, size)


#: mnemonics that write none of their operands
NO_WRITE = frozenset(
    """cmp test nop bt push jmp call ret int3 ud2 hlt pause lfence mfence sfence prefetch prefetchw
    prefetcht0 prefetcht1 prefetcht2 prefetchnta endbr64 endbr32 clc stc cld std""".split()  # noqa: SIM905
)
STOP = frozenset(("ret", "retf", "jmp", "ljmp", "int3", "ud2", "hlt", "iret", "iretd", "iretq", "int"))
ARITH = frozenset(("add", "sub", "or", "and", "xor"))
STACK_OPS = ("push", "pop", "enter", "leave")
MOVES = frozenset(
    ("mov", "lea", "movzx", "movsx", "movsxd", "add", "sub", "and", "or", "xor", "cmp", "test")
)


def implicit_writes(mnemonic: str) -> tuple[str, ...]:
    if mnemonic in ("cdq", "cqo", "cwd", "mul", "div", "idiv", "rdtsc", "rdmsr", "xgetbv"):
        return ("rax", "rdx")
    if mnemonic in ("cdqe", "cwde", "cbw", "lahf"):
        return ("rax",)
    if mnemonic in ("cpuid",):
        return ("rax", "rbx", "rcx", "rdx")
    if mnemonic in ("syscall", "rdtscp"):
        return ("rax", "rcx", "rdx", "r11")
    if mnemonic.startswith("rep") or mnemonic[:4] in ("movs", "stos", "lods", "scas", "cmps"):
        return ("rcx", "rsi", "rdi", "rax")
    if mnemonic in ("loop", "loope", "loopne", "jrcxz", "jecxz"):
        return ("rcx",)
    return ()


def is_nop_move(mnemonic: str, ops: tuple[Operand, ...]) -> bool:
    """`lea esi, [esi]` / `mov rdi, rdi`: padding that writes a register without changing it."""
    if len(ops) != 2 or ops[0][0] != "r" or ops[0][2] < 32:
        return False
    if mnemonic == "lea":
        src = ops[1]
        return src[0] == "m" and src[1] == ops[0][1] and not src[2] and src[3] == 0
    return mnemonic == "mov" and ops[1] == ops[0] and ops[0][2] == 64


def writes_nothing(mnemonic: str, ops: tuple[Operand, ...]) -> bool:
    """Compares, conditional jumps, hints and padding (`lea esi, [esi]`): no register changes."""
    return mnemonic in NO_WRITE or (mnemonic[0] == "j" and mnemonic != "jmp") or is_nop_move(mnemonic, ops)


def clobbered(mnemonic: str, ops: tuple[Operand, ...]) -> tuple[Operand, ...]:
    """The operands an instruction nobody models overwrites: the first, both for xchg / xadd."""
    return ops[:2] if mnemonic in ("xchg", "xadd") else ops[:1]
