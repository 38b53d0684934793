"""Pool-API call sites in x64 / x86 driver code, and the tags passed to them.

The work is proportional to the number of pool calls, not to the size of the code:

1. Find the references to the pool APIs' IAT slots with vectorised byte patterns (numpy) over the code
   sections: x64 RIP-relative `call [rip+d]` (FF 15), `jmp [rip+d]` (FF 25, tail calls and import
   thunks), `mov reg, [rip+d]` (REX.W 8B /r); x86 the same forms with absolute addresses, plus
   `mov eax, [abs]` (A1). `jmp [IAT]` stubs reached by `call rel32` / `jmp rel32` are import thunks
   (mingw, or the MSVC linker for functions declared without dllimport): those callers are the sites.
2. A register loaded from the IAT is followed forward (capstone) to the `call reg` / `jmp reg` that use
   it: optimisers load the pointer once into a callee-saved register and call it several times.
3. For each site, disassemble a bounded window before it (a small one first, a larger one only if the
   argument was not set inside the small one) and replay it on a tiny abstract machine that knows
   constants in registers and in stack / frame slots. x64 passes the tag in r8d (rdx for
   ExFreePoolWithTag); x86 stdcall pushes it (right to left, so the tag of ExAllocatePoolWithTag is the
   first of the three pushes and lands in stack slot 2).

Windows do not start at known instruction boundaries unless a function starts inside them (x64 .pdata).
A tag constant produced well inside the window (8 instructions or more) is trusted as is: decoding from
an arbitrary byte falls into phase within a few instructions. Anything else is replayed again from the
first instruction that decodes from other start offsets agree on, so bytes decoded out of phase cannot
invent a `mov r8d, imm32` or a `ret`. The common shapes (`mov r8d, imm32` before the call, x86 `push
imm32`) are read without the abstract machine.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import capstone
import numpy as np

from pooltop.model import escape_tag
from pooltop.tagdb.pe import CodeSection

MASK32 = 0xFFFFFFFF
#: a flag callers OR into the tag; not part of the tag the pool tracker shows
PROTECTED_POOL = 0x80000000


@dataclass(frozen=True)
class PoolApi:
    """Where one pool API takes its tag."""

    name: str
    modules: tuple[str, ...]  # DLL names it is imported from, lower case
    x64_tag_reg: str  # canonical 64-bit register carrying the tag on x64
    x86_tag_slot: int  # stdcall argument index (0 = first argument, at [esp] when called)
    x86_arg_bytes: int  # bytes of arguments the callee pops on x86


_NT = ("ntoskrnl.exe", "ntkrnlpa.exe", "ntkrnlmp.exe", "ntkrpamp.exe")

#: ExAllocatePool2 / ExAllocatePool3 take a 64-bit POOL_FLAGS first: two stack slots on x86
POOL_APIS: dict[str, PoolApi] = {
    api.name: api
    for api in (
        PoolApi("ExAllocatePoolWithTag", _NT, "r8", 2, 12),
        PoolApi("ExAllocatePoolWithQuotaTag", _NT, "r8", 2, 12),
        PoolApi("ExAllocatePoolWithTagPriority", _NT, "r8", 2, 16),
        PoolApi("ExAllocatePool2", _NT, "r8", 3, 16),
        PoolApi("ExAllocatePool3", _NT, "r8", 3, 24),
        PoolApi("ExFreePoolWithTag", _NT, "rdx", 1, 8),
        PoolApi("NdisAllocateMemoryWithTag", ("ndis.sys",), "r8", 2, 12),
    )
}

CALL_SITE_ARCHES = ("x64", "x86")
TIME_BUDGET_NOTE = "time budget exceeded: partial call-site analysis"


def pool_import_slots(imports: dict[tuple[str, str], int]) -> dict[int, str]:
    """IAT slot RVA -> pool API name, for the pool APIs among `imports`."""
    slots: dict[int, str] = {}
    for (dll, name), rva in imports.items():
        api = POOL_APIS.get(name)
        if api is not None and dll in api.modules:
            slots[rva] = name
    return slots


@dataclass(frozen=True)
class CallSite:
    """One call of a pool API, and the tag it passes if that could be recovered."""

    rva: int  # the call / jmp instruction
    api: str
    form: str  # "call [iat]", "jmp [iat]", "call reg", "jmp reg", "call thunk", "jmp thunk"
    tag: int | None  # PROTECTED_POOL masked off; None when not recovered


@dataclass(frozen=True)
class AnalysisLimits:
    """Bounds on the work done for one image."""

    max_sites: int = 20_000
    windows: tuple[int, ...] = (48, 160)  # bytes disassembled before a site, smallest first
    forward_bytes: int = 2048  # how far a register loaded from the IAT is followed
    max_immediates: int = 50_000
    deadline: float | None = None  # time.monotonic() after which analysis stops (partial result)


@dataclass
class CallSiteAnalysis:
    sites: list[CallSite]
    truncated: str | None = None  # why the analysis stopped early, if it did


# ---------------------------------------------------------------------------------------------------
# Step 1: references to IAT slots and to import thunks (vectorised)

_REX_W = np.array([0x48, 0x49, 0x4C, 0x4D], dtype=np.uint8)


@dataclass(frozen=True)
class _Ref:
    kind: str  # "call", "jmp", "mov"
    starts: tuple[int, ...]  # candidate instruction starts (RVA); two when a REX prefix is possible
    api: str
    reg: str | None = None  # for "mov": the register loaded with the IAT entry
    thunk: int | None = None  # for callers of an import thunk: the thunk's RVA


def _padded(data: bytes) -> np.ndarray:
    return np.frombuffer(data + bytes(16), dtype=np.uint8)


def _u32(b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    i = idx.astype(np.int64)
    return (
        b[i].astype(np.uint32)
        | (b[i + 1].astype(np.uint32) << 8)
        | (b[i + 2].astype(np.uint32) << 16)
        | (b[i + 3].astype(np.uint32) << 24)
    )


def _s32(b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    signed: np.ndarray = _u32(b, idx).astype(np.int32).astype(np.int64)
    return signed


_REGS64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi")


def _reg_name(arch: str, number: int) -> str:
    if arch == "x86":
        return "e" + _REGS64[number][1:]
    return _REGS64[number] if number < 8 else f"r{number}"


def _iat_refs(sec: CodeSection, arch: str, image_base: int, slots: dict[int, str]) -> list[_Ref]:
    n = len(sec.data)
    if n < 6 or not slots:
        return []
    b = _padded(sec.data)
    body = b[:n]
    slot_rvas = np.array(sorted(slots), dtype=np.int64)
    refs: list[_Ref] = []

    def target(opcode_pos: np.ndarray, disp_pos: np.ndarray, insn_len: int) -> np.ndarray:
        out: np.ndarray
        if arch == "x64":
            out = sec.rva + opcode_pos + insn_len + _s32(b, disp_pos)
        else:
            out = _u32(b, disp_pos).astype(np.int64) - image_base
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
            refs.append(_Ref(kind, starts, slots[dest]))

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
            refs.append(_Ref("mov", (start,), slots[dest], _reg_name(arch, number)))

    # x86 only: mov eax, [moffs32] (A1)
    if arch == "x86":
        a1 = np.flatnonzero(body == 0xA1)
        if len(a1):
            dests = _u32(b, a1 + 1).astype(np.int64) - image_base
            hit = np.isin(dests, slot_rvas)
            for c, dest in zip(a1[hit].tolist(), dests[hit].tolist(), strict=True):
                refs.append(_Ref("mov", (sec.rva + c,), slots[dest], "eax"))
    return refs


def _thunk_callers(sec: CodeSection, thunks: dict[int, str]) -> list[_Ref]:
    """`call rel32` / `jmp rel32` whose target is an import thunk."""
    n = len(sec.data)
    if n < 5 or not thunks:
        return []
    b = _padded(sec.data)
    e8 = np.flatnonzero((b[:n] == 0xE8) | (b[:n] == 0xE9))
    if not len(e8):
        return []
    dest = sec.rva + e8 + 5 + _s32(b, e8 + 1)
    hit = np.isin(dest, np.array(sorted(thunks), dtype=np.int64))
    refs = []
    for c, d in zip(e8[hit].tolist(), dest[hit].tolist(), strict=True):
        refs.append(_Ref("call" if b[c] == 0xE8 else "jmp", (sec.rva + c,), thunks[int(d)], thunk=int(d)))
    return refs


# ---------------------------------------------------------------------------------------------------
# Operands and registers as capstone prints them (Intel syntax, no detail mode: disasm_lite is fast)

_CANON: dict[str, tuple[str, int]] = {}
for _r in ("a", "b", "c", "d"):
    _CANON.update({f"r{_r}x": (f"r{_r}x", 64), f"e{_r}x": (f"r{_r}x", 32), f"{_r}x": (f"r{_r}x", 16)})
    _CANON.update({f"{_r}l": (f"r{_r}x", 8), f"{_r}h": (f"r{_r}x", 8)})
for _r in ("sp", "bp", "si", "di"):
    _CANON.update({f"r{_r}": (f"r{_r}", 64), f"e{_r}": (f"r{_r}", 32), _r: (f"r{_r}", 16)})
    _CANON[f"{_r}l"] = (f"r{_r}", 8)
for _i in range(8, 16):
    _CANON.update({f"r{_i}": (f"r{_i}", 64), f"r{_i}d": (f"r{_i}", 32)})
    _CANON.update({f"r{_i}w": (f"r{_i}", 16), f"r{_i}b": (f"r{_i}", 8)})

_VOLATILE = {
    "x64": ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11"),
    "x86": ("rax", "rcx", "rdx"),
}
_CALLEE_SAVED = {"rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15"}

_SIZES = {"byte": 1, "word": 2, "dword": 4, "qword": 8}
_MEM_RE = re.compile(r"^(?:(\w+) ptr )?(?:[a-z]s:)?\[(.*)\]$")

# An operand is one of:
#   ("r", canonical register, bits)   ("i", value)
#   ("m", base or "", has_index, displacement, size in bytes)   ("?",)
Operand = tuple[Any, ...]


@lru_cache(maxsize=8192)
def _operands(op_str: str) -> tuple[Operand, ...]:
    if not op_str:
        return ()
    return tuple(_operand(part.strip()) for part in op_str.split(", "))


def _operand(text: str) -> Operand:
    reg = _CANON.get(text)
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
        reg = _CANON.get(term)
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
_NO_WRITE = frozenset(
    """cmp test nop bt push jmp call ret int3 ud2 hlt pause lfence mfence sfence prefetch prefetchw
    prefetcht0 prefetcht1 prefetcht2 prefetchnta endbr64 endbr32 clc stc cld std""".split()  # noqa: SIM905
)
_STOP = frozenset(("ret", "retf", "jmp", "ljmp", "int3", "ud2", "hlt", "iret", "iretd", "iretq", "int"))
_ARITH = frozenset(("add", "sub", "or", "and", "xor"))
_STACK_OPS = ("push", "pop", "enter", "leave")
_MOVES = frozenset(
    ("mov", "lea", "movzx", "movsx", "movsxd", "add", "sub", "and", "or", "xor", "cmp", "test")
)


def _implicit_writes(mnemonic: str) -> tuple[str, ...]:
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


def _is_nop_move(mnemonic: str, ops: tuple[Operand, ...]) -> bool:
    """`lea esi, [esi]` / `mov rdi, rdi`: padding that writes a register without changing it."""
    if len(ops) != 2 or ops[0][0] != "r" or ops[0][2] < 32:
        return False
    if mnemonic == "lea":
        src = ops[1]
        return src[0] == "m" and src[1] == ops[0][1] and not src[2] and src[3] == 0
    return mnemonic == "mov" and ops[1] == ops[0] and ops[0][2] == 64


# ---------------------------------------------------------------------------------------------------
# Step 3: the abstract machine replayed over a window

_MISSING = object()  # "not set inside the window": a larger window may find it
_STUB = object()  # the site is an import stub nobody calls directly, not a call
_UNSURE = object()  # the quick path cannot tell: replay on the abstract machine
#: how the tag registers' writes start in capstone's operand text (32-bit form first)
_REG_PREFIXES = {"r8": ("r8d,", "r8,", "r8w,", "r8b,"), "rdx": ("edx,", "rdx,", "dx,", "dl,", "dh,")}

Known = tuple[int, int]  # (constant, index of the instruction it came from)
#: a constant produced this many instructions into a window is trusted without a second decode: x86
#: decoding started at an arbitrary byte falls into phase within a few instructions (2-5 measured on
#: compiled code), and what came before cannot change a constant loaded after it
_TRUSTED_FROM = 8
Value = Known | object | None  # object: _MISSING


class _Machine:
    """Constants in registers and in stack / frame slots, along one straight-line path.

    A known value is (constant, index of the instruction that produced it), so the caller can tell
    whether a tag was set by an instruction it trusts (see _Analyzer._replay). Unknown is None; never
    written inside the window is _MISSING (a larger window may find it)."""

    def __init__(self, arch: str, site_apis: dict[int, str]) -> None:
        self.arch = arch
        self.width = 8 if arch == "x64" else 4
        self.site_apis = site_apis
        self.regs: dict[str, Known | None] = {}
        self.mem: dict[tuple[str, int], Known | None] = {}
        self.sp = 0
        self.index = 0  # of the instruction being replayed
        self.boundary = False  # a function boundary was crossed: earlier state cannot matter
        self.sp_lost = False  # stack slots written before this point are unknowable

    # reading -------------------------------------------------------------------------------------
    def reg(self, canon: str) -> Value:
        value = self.regs.get(canon, _MISSING)
        if value is _MISSING and self.boundary:
            return None
        return value

    def key(self, op: Operand) -> tuple[str, int] | None:
        _, base, has_index, disp, _size = op
        if has_index:
            return None
        if base == "rsp":
            return ("sp", self.sp + disp)
        if base == "rbp":
            return ("bp", disp)
        return None

    def slot(self, key: tuple[str, int]) -> Value:
        value = self.mem.get(key, _MISSING)
        if value is _MISSING and (self.boundary or (key[0] == "sp" and self.sp_lost)):
            return None
        return value

    def value(self, op: Operand, bits: int) -> Value:
        kind = op[0]
        if kind == "i":
            return (int(op[1]) & ((1 << bits) - 1), self.index)
        if kind == "r":
            value = self.reg(op[1]) if op[2] >= 32 else None
        elif kind == "m":
            key = self.key(op)
            value = self.slot(key) if key is not None and op[4] in (4, 8) else None
        else:
            return None
        if isinstance(value, tuple):
            return (value[0] & ((1 << bits) - 1), value[1])
        return value

    # writing -------------------------------------------------------------------------------------
    def set_reg(self, canon: str, value: Value) -> None:
        if canon == "rsp":
            self.lose_stack()
        elif canon == "rbp":
            self.mem = {k: v for k, v in self.mem.items() if k[0] != "bp"}
            if value is _MISSING:
                value = None
        if value is _MISSING:
            self.regs.pop(canon, None)
        else:
            self.regs[canon] = value  # type: ignore[assignment]

    def store(self, key: tuple[str, int], value: Value) -> None:
        if value is _MISSING:
            self.mem.pop(key, None)
        else:
            self.mem[key] = value  # type: ignore[assignment]

    def write(self, op: Operand, value: Value = None) -> None:
        if op[0] == "r":
            self.set_reg(op[1], value if op[2] >= 32 else None)
        elif op[0] == "m":
            key = self.key(op)
            if key is not None:
                self.store(key, value if op[4] in (4, 8) else None)

    def lose_stack(self) -> None:
        self.mem = {k: v for k, v in self.mem.items() if k[0] != "sp"}
        self.sp = 0
        self.sp_lost = True

    def reset(self) -> None:
        self.regs.clear()
        self.mem.clear()
        self.sp = 0
        self.boundary = True

    # one instruction -----------------------------------------------------------------------------
    def step(self, address: int, mnemonic: str, op_str: str) -> None:
        ops = _operands(op_str)
        if mnemonic in ("mov", "movabs") and len(ops) == 2:
            dst, src = ops
            if dst[0] == "r" and dst == src:
                return  # mov rdi, rdi: padding
            bits = dst[2] if dst[0] == "r" else 8 * (dst[4] if dst[0] == "m" else 4)
            self.write(dst, self.value(src, max(bits, 8)))
        elif mnemonic == "push" and len(ops) == 1:
            value = self.value(ops[0], 8 * self.width)
            self.sp -= self.width
            self.store(("sp", self.sp), value)
        elif mnemonic == "pop" and len(ops) == 1:
            value = self.slot(("sp", self.sp))
            self.sp += self.width
            self.write(ops[0], value)
        elif mnemonic == "call":
            self.call(address)
        elif mnemonic in _STOP:
            self.reset()
        elif mnemonic == "leave":
            self.lose_stack()
            self.set_reg("rbp", None)
        elif mnemonic.startswith(_STACK_OPS):  # pushfd, popal, enter, ...: not worth modelling
            self.lose_stack()
            for canon in _VOLATILE["x86"] + ("rbx", "rsi", "rdi", "rbp"):
                self.set_reg(canon, None)
        elif mnemonic in _ARITH and len(ops) == 2 and ops[0][0] == "r":
            self.arith(mnemonic, ops[0], ops[1])
        elif mnemonic in _NO_WRITE or (mnemonic[0] == "j" and mnemonic != "jmp"):
            pass
        elif mnemonic == "lea" and _is_nop_move(mnemonic, ops):
            pass  # lea esi, [esi]: padding
        else:
            for canon in _implicit_writes(mnemonic):
                self.set_reg(canon, None)
            if ops:
                self.write(ops[0], None)
                if mnemonic in ("xchg", "xadd") and len(ops) > 1:
                    self.write(ops[1], None)

    def arith(self, mnemonic: str, dst: Operand, src: Operand) -> None:
        canon, bits = dst[1], dst[2]
        if canon == "rsp":
            if src[0] == "i" and mnemonic in ("add", "sub"):
                self.sp += int(src[1]) if mnemonic == "add" else -int(src[1])
            else:
                self.lose_stack()
            return
        if mnemonic in ("xor", "sub") and src == dst:
            self.set_reg(canon, (0, self.index) if bits >= 32 else None)
            return
        if bits < 32:
            self.set_reg(canon, None)
            return
        left, right = self.reg(canon), self.value(src, bits)
        if isinstance(left, tuple) and isinstance(right, tuple):
            a, b = left[0], right[0]
            result = {"add": a + b, "sub": a - b, "or": a | b, "and": a & b, "xor": a ^ b}[mnemonic]
            self.set_reg(canon, (result & ((1 << bits) - 1), min(left[1], right[1])))
        elif left is _MISSING or right is _MISSING:
            self.set_reg(canon, _MISSING)
        else:
            self.set_reg(canon, None)

    def call(self, address: int) -> None:
        for canon in _VOLATILE[self.arch]:
            self.regs[canon] = None
        if self.arch == "x64":  # the callee may use its 32-byte home space
            for key in [k for k in self.mem if k[0] == "sp" and self.sp <= k[1] < self.sp + 0x20]:
                self.mem[key] = None
            return
        api = POOL_APIS.get(self.site_apis.get(address, ""))
        if api is None:  # unknown convention: cannot tell how much the callee pops
            self.lose_stack()
            return
        for key in [k for k in self.mem if k[0] == "sp" and self.sp <= k[1] < self.sp + api.x86_arg_bytes]:
            self.mem[key] = None
        self.sp += api.x86_arg_bytes

    def tag_argument(self, api: PoolApi, tail: bool) -> Value:
        if self.arch == "x64":
            return self.reg(api.x64_tag_reg)
        offset = 4 * api.x86_tag_slot + (4 if tail else 0)  # after a jmp, [esp] is the return address
        return self.slot(("sp", self.sp + offset))


# ---------------------------------------------------------------------------------------------------
# The analysis of one image


_per_thread = threading.local()


def _disassembler(arch: str) -> capstone.Cs:
    """One capstone handle per thread and mode: a handle must not be used by two threads at once."""
    handles: dict[str, capstone.Cs] = _per_thread.__dict__.setdefault("handles", {})
    md = handles.get(arch)
    if md is None:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if arch == "x64" else capstone.CS_MODE_32)
        md.detail = False
        handles[arch] = md
    return md


Insn = tuple[int, int, str, str]


class _Analyzer:
    def __init__(
        self,
        arch: str,
        image_base: int,
        sections: Sequence[CodeSection],
        function_starts: Sequence[int],
        limits: AnalysisLimits,
    ) -> None:
        self.arch = arch
        self.image_base = image_base
        self.sections = sorted(sections, key=lambda s: s.rva)
        self.section_rvas = [s.rva for s in self.sections]
        self.function_starts = list(function_starts)
        self.limits = limits
        self.width = 8 if arch == "x64" else 4
        self.md = _disassembler(arch)

    def section_at(self, rva: int) -> CodeSection | None:
        i = bisect.bisect_right(self.section_rvas, rva) - 1
        if i >= 0 and rva < self.sections[i].rva + len(self.sections[i].data):
            return self.sections[i]
        return None

    def out_of_time(self) -> bool:
        return self.limits.deadline is not None and time.monotonic() > self.limits.deadline

    def decode(self, sec: CodeSection, start: int, stop: int) -> list[Insn]:
        """Instructions from `start` up to the first one at or past `stop` (inclusive)."""
        code = sec.data[start - sec.rva : min(len(sec.data), stop - sec.rva + 15)]  # 15: longest insn
        out: list[Insn] = list(self.md.disasm_lite(code, start))
        for i in range(len(out) - 1, -1, -1):
            if out[i][0] < stop:
                return out[: i + 2]
        return out[:1]

    def _sync_index(self, sec: CodeSection, stream: list[Insn], begin: int) -> int:
        """Index of the first instruction of `stream` that decodes from other offsets agree on.

        The window starts at an arbitrary byte, so its first instructions may be decoded out of phase
        (and a garbage `ret` or `mov r8d, imm32` there must not count); x86 decoding falls into phase
        within a few instructions. Decodes that start inside the first instructions show where: what
        lies before the first address they share with `stream` is dropped. Two tries, the earlier wins.
        """
        addresses = {insn[0]: i for i, insn in enumerate(stream)}
        end = stream[-1][0] + stream[-1][1] - sec.rva
        best = len(stream) - 1
        other = begin
        for _attempt in range(2):
            other += 1
            while other in addresses:
                other += 1
            if other >= stream[-1][0]:
                break
            code = sec.data[other - sec.rva : end]
            for address, _size, _mnemonic, _ops in self.md.disasm_lite(code, other):
                index = addresses.get(address)
                if index is not None:
                    best = min(best, index)
                    break
            if best <= 4:
                break
        return best

    # step 1 + 2 ---------------------------------------------------------------------------------
    def find_sites(self, slots: dict[int, str]) -> tuple[list[tuple[int, str, str]], str | None]:
        """(instruction RVA, api, form) for every reference found; and why it stopped early."""
        refs: list[_Ref] = []
        for sec in self.sections:
            refs.extend(_iat_refs(sec, self.arch, self.image_base, slots))
        thunks: dict[int, str] = {}
        for ref in refs:
            if ref.kind == "jmp":
                for start in ref.starts:
                    thunks[start] = ref.api
        callers: list[_Ref] = []
        for sec in self.sections:
            callers.extend(_thunk_callers(sec, thunks))
        # a `jmp [IAT]` that code calls directly is a thunk, not a tail call: its callers are the sites
        used_thunks = {ref.thunk for ref in callers}

        sites: dict[int, tuple[tuple[int, ...], str, str]] = {}
        truncated = None
        for ref in refs:
            if len(sites) >= self.limits.max_sites:
                truncated = f"more than {self.limits.max_sites} pool-call sites: analysed the first ones"
                break
            if self.out_of_time():
                truncated = TIME_BUDGET_NOTE
                break
            if ref.kind == "call":
                sites[ref.starts[-1]] = (ref.starts, ref.api, "call [iat]")
            elif ref.kind == "jmp":
                if not used_thunks.intersection(ref.starts):
                    sites[ref.starts[-1]] = (ref.starts, ref.api, "jmp [iat]")
            else:
                for rva, form in self.follow_register(ref):
                    sites[rva] = ((rva,), ref.api, form)
        for ref in callers:
            if len(sites) >= self.limits.max_sites:
                truncated = f"more than {self.limits.max_sites} pool-call sites: analysed the first ones"
                break
            form = "call thunk" if ref.kind == "call" else "jmp thunk"
            sites[ref.starts[0]] = (ref.starts, ref.api, form)
        self._site_starts = {rva: starts for rva, (starts, _api, _form) in sites.items()}
        return [(rva, api, form) for rva, (_starts, api, form) in sorted(sites.items())], truncated

    def follow_register(self, ref: _Ref) -> list[tuple[int, str]]:
        """`call reg` / `jmp reg` after `mov reg, [IAT]`, while some register still holds the pointer
        (copies included: gcc tail-calls with `mov rax, rbx; ...; jmp rax`)."""
        assert ref.reg is not None
        start = ref.starts[0]
        sec = self.section_at(start)
        if sec is None:
            return []
        holders = {_CANON[ref.reg][0]}
        code = sec.data[start - sec.rva : start - sec.rva + self.limits.forward_bytes]
        found: list[tuple[int, str]] = []
        first = True
        for address, _size, mnemonic, op_str in self.md.disasm_lite(code, start):
            if first:
                first = False
                if mnemonic != "mov" or not op_str.startswith(ref.reg + ","):
                    return []  # the pattern matched inside another instruction
                continue
            ops = _operands(op_str)
            if mnemonic in ("call", "jmp") and len(ops) == 1 and ops[0][0] == "r" and ops[0][1] in holders:
                found.append((address, f"{mnemonic} reg"))
                if mnemonic == "jmp":
                    break
            if mnemonic in _STOP:
                break
            if mnemonic == "call":
                holders -= set(_VOLATILE[self.arch])
            elif (
                _is_nop_move(mnemonic, ops)
                or mnemonic in _NO_WRITE
                or (mnemonic[0] == "j" and mnemonic != "jmp")
            ):
                pass
            elif mnemonic == "mov" and len(ops) == 2 and ops[0][0] == "r" and ops[1][0] == "r":
                if ops[1][1] in holders and ops[0][2] == ops[1][2] == self.width * 8:
                    holders.add(ops[0][1])
                else:
                    holders.discard(ops[0][1])
            else:
                holders -= set(_implicit_writes(mnemonic))
                written = [ops[0]] if ops else []
                if mnemonic in ("xchg", "xadd") and len(ops) > 1:
                    written.append(ops[1])
                for op in written:
                    if op[0] == "r":
                        holders.discard(op[1])
            if not holders:
                break
        return found

    # step 3 ---------------------------------------------------------------------------------------
    def recover_tag(
        self, rva: int, api_name: str, form: str, site_apis: dict[int, str]
    ) -> int | object | None:
        """The tag passed at this site, None if it is not a constant there, _STUB for import stubs."""
        starts = self._site_starts.get(rva, (rva,))
        sec = self.section_at(starts[0])
        if sec is None:
            return None
        api = POOL_APIS[api_name]
        tail = form.startswith("jmp")
        for window in self.limits.windows:
            value = self._replay(sec, starts, api, tail, window, site_apis)
            if value is _STUB:
                return _STUB
            if value is not _MISSING:
                if not isinstance(value, int):
                    return None
                tag = value & MASK32 & ~PROTECTED_POOL
                return tag or None
        return None

    def _replay(
        self,
        sec: CodeSection,
        starts: tuple[int, ...],
        api: PoolApi,
        tail: bool,
        window: int,
        site_apis: dict[int, str],
    ) -> int | object | None:
        first_start = starts[0]
        lo = max(sec.rva, first_start - window)
        known = lo == sec.rva
        if self.function_starts:
            i = bisect.bisect_right(self.function_starts, first_start) - 1
            if i >= 0 and self.function_starts[i] >= lo:
                lo, known = self.function_starts[i], True
        stream: list[Insn] | None = None
        begin = lo
        for attempt in range(8 if not known else 1):
            begin = lo + attempt
            if begin > first_start:
                break
            insns = self.decode(sec, begin, first_start)
            if insns and insns[-1][0] in starts:
                stream = insns
                break
        if stream is None:
            return None
        body = stream[:-1]
        site_mnemonic = stream[-1][2]
        if site_mnemonic not in ("call", "jmp"):
            return None
        if tail and (not body or body[-1][2] in ("jmp", "ret", "nop", "int3")) and len(stream) > 1:
            # `jmp [IAT]` right after padding or another stub: an import stub no code calls
            # (import libraries emit one per function even when dllimport calls bypass it)
            return _STUB
        value = self._quick(body, api, tail)
        if value is _UNSURE:
            value = self._simulate(body, 0, known, api, tail, site_apis)
        if not known and not (isinstance(value, tuple) and value[1] >= _TRUSTED_FROM):
            # The first instructions may be decoded out of phase (a garbage `ret` or `mov r8d, imm32`
            # there must not count): replay from where decodes from other offsets agree.
            first = self._sync_index(sec, stream, begin)
            if first:
                value = self._simulate(body[first:], first, known, api, tail, site_apis)
        if value is _MISSING and window == self.limits.windows[-1]:
            return None
        if isinstance(value, tuple):
            return int(value[0])
        return value

    def _quick(self, body: list[Insn], api: PoolApi, tail: bool) -> Value:
        """The common shapes without the abstract machine: on x64 the last write to the tag register
        is `mov r8d, imm32`; on x86 the tag's push is among the pushes right before the call.
        _UNSURE when the shape is anything else."""
        if self.arch == "x64":
            prefixes = _REG_PREFIXES[api.x64_tag_reg]
            implicit = api.x64_tag_reg
            for index in range(len(body) - 1, -1, -1):
                _address, _size, mnemonic, op_str = body[index]
                if mnemonic in _STOP or mnemonic == "call":
                    return _UNSURE
                if op_str.startswith(prefixes) and mnemonic not in _NO_WRITE:
                    if mnemonic == "mov" and op_str.startswith(prefixes[0]):
                        operand = _operands(op_str)[1]
                        if operand[0] == "i":
                            return (operand[1] & MASK32, index)
                    return _UNSURE
                if mnemonic in ("xchg", "xadd") or (
                    mnemonic not in _MOVES and implicit in _implicit_writes(mnemonic)
                ):
                    return _UNSURE
            return _UNSURE
        if tail:
            return _UNSURE
        wanted = api.x86_tag_slot  # pushes back from the call
        for index in range(len(body) - 1, -1, -1):
            _address, _size, mnemonic, op_str = body[index]
            if mnemonic == "push":
                if wanted == 0:
                    operand = _operands(op_str)
                    if len(operand) == 1 and operand[0][0] == "i":
                        return (operand[0][1] & MASK32, index)
                    return _UNSURE
                wanted -= 1
            elif mnemonic in _STOP or mnemonic.startswith(_STACK_OPS) or mnemonic == "call" or "sp" in op_str:
                return _UNSURE  # pushfd, pop, leave, sub esp: the count of pushes no longer tells
        return _UNSURE

    def _simulate(
        self, body: list[Insn], first: int, known: bool, api: PoolApi, tail: bool, site_apis: dict[int, str]
    ) -> Value:
        machine = _Machine(self.arch, site_apis)
        machine.boundary = known
        for index, (address, _size, mnemonic, op_str) in enumerate(body, first):
            machine.index = index
            machine.step(address, mnemonic, op_str)
        return machine.tag_argument(api, tail)


def find_call_sites(
    arch: str,
    image_base: int,
    sections: Sequence[CodeSection],
    slots: dict[int, str],
    function_starts: Iterable[int] = (),
    limits: AnalysisLimits | None = None,
) -> CallSiteAnalysis:
    """Every call of a pool API (by its IAT slot RVA in `slots`) and the tag it passes."""
    if arch not in CALL_SITE_ARCHES:
        raise ValueError(f"no call-site analysis for {arch}")
    limits = limits or AnalysisLimits()
    analyzer = _Analyzer(arch, image_base, sections, [int(x) for x in function_starts], limits)
    found, truncated = analyzer.find_sites(slots)
    site_apis = {rva: api for rva, api, _form in found}
    sites: list[CallSite] = []
    for rva, api, form in found:
        if analyzer.out_of_time():
            truncated = TIME_BUDGET_NOTE
            sites.append(CallSite(rva, api, form, None))
            continue
        tag = analyzer.recover_tag(rva, api, form, site_apis)
        if tag is not _STUB:
            sites.append(CallSite(rva, api, form, tag if isinstance(tag, int) else None))
    return CallSiteAnalysis(sites, truncated)


# ---------------------------------------------------------------------------------------------------
# Tag-shaped immediates anywhere in code (confidence "immediate")

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
        b = _padded(sec.data)
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
        values = _u32(b, imm) & np.uint32(~PROTECTED_POOL & MASK32)
        for op, value in zip(ops.tolist(), values.tolist(), strict=True):
            found.setdefault(int(value), []).append(sec.rva + op)
            total += 1
            if total >= max_hits:
                return found
    return found


def tag_text(value: int) -> str:
    """A tag value as pooltop prints tags everywhere (model.escape_tag of its little-endian bytes)."""
    return escape_tag((value & MASK32).to_bytes(4, "little"))
