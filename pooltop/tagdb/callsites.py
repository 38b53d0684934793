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

Speed (benchmarks/bench_scanner.py (c), a pool call every 300 bytes): ~26 us per site on x64, ~17 on
x86, most of it capstone decoding the window (4 us in C alone) and turning it into Python. Windows end
at the site's instruction; a register loaded from the IAT is followed no further than the last
`call reg` / `jmp reg` bytes (it decoded 2 KB for each); the phase check decodes a few instructions
at a time; and a tag set through a register (`mov ebx, imm32 ... mov r8d, ebx`, `push esi`) is read
without the machine when nothing between can touch it (x64 62 -> 26 us, x86 23 -> 17 us per site).

Here: the analysis of an image (steps 2 and 3). Step 1's byte patterns are in iatrefs.py, the
operand parsing in x86ops.py, the abstract machine in machine.py, the pool APIs in poolapis.py.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import capstone
import numpy as np

from pooltop.tagdb.findings import TIME_BUDGET_NOTE
from pooltop.tagdb.iatrefs import IatRef, iat_refs, thunk_callers
from pooltop.tagdb.machine import MISSING, STUB, TRUSTED_FROM, UNSURE, Machine, Value
from pooltop.tagdb.pe import CodeSection
from pooltop.tagdb.poolapis import MASK32, POOL_APIS, PROTECTED_POOL, PoolApi
from pooltop.tagdb.shapes import Insn, quick_tag
from pooltop.tagdb.x86ops import (
    CANON,
    STOP,
    VOLATILE,
    Operand,
    clobbered,
    implicit_writes,
    names_any,
    operands,
    writes_nothing,
)

CALL_SITE_ARCHES = ("x64", "x86")


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
# The analysis of one image


#: instructions decoded per capstone call where the loop usually stops early
_CHUNK = 24
#: instructions decoded first when looking for where two decodes meet
_SYNC_HEAD = 6


_per_thread = threading.local()


def _disassembler(arch: str) -> capstone.Cs:
    """One capstone handle per thread and mode: a handle must not be used by two threads at once."""
    handles: dict[str, capstone.Cs] = _per_thread.__dict__.setdefault("handles", {})
    md = handles.get(arch)
    if md is None:
        mode = capstone.CS_MODE_64 if arch == "x64" else capstone.CS_MODE_32
        md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        md.detail = False
        handles[arch] = md
    return md




def _in_chunks(md: capstone.Cs, code: bytes, address: int, chunk_size: int = _CHUNK) -> Iterator[Insn]:
    """The instructions of `code`, decoded a chunk at a time: capstone decodes all it is given
    before the first can be read, and the reader usually stops early."""
    offset = 0
    while offset < len(code):
        chunk = list(md.disasm_lite(code[offset:], address + offset, chunk_size))
        yield from chunk
        if len(chunk) < chunk_size:
            return
        offset = chunk[-1][0] + chunk[-1][1] - address


def _last_register_branch_end(code: bytes) -> int:
    """Where the last byte pair that can be a `call reg` / `jmp reg` ends (0: there is none)."""
    b = np.frombuffer(code, dtype=np.uint8)
    modrm = b[1:] & 0xF8
    pairs = np.flatnonzero((b[:-1] == 0xFF) & ((modrm == 0xD0) | (modrm == 0xE0)))
    return int(pairs[-1]) + 2 if len(pairs) else 0


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

    def decode(self, sec: CodeSection, start: int, stop: int, end: int) -> list[Insn]:
        """Instructions from `start` up to the first one at or past `stop` (inclusive), from the
        bytes before `end` (where the site's instruction ends: nothing after it matters)."""
        code = sec.data[start - sec.rva : min(len(sec.data), end - sec.rva)]
        out = list(self.md.disasm_lite(code, start))
        for i in range(len(out) - 1, -1, -1):
            if out[i][0] < stop:
                return out[: i + 2]
        return out[:1]

    def _sync_index(self, sec: CodeSection, stream: list[Insn], begin: int, enough: int = 4) -> int:
        """Index of the first instruction of `stream` that decodes from other offsets agree on.

        The window starts at an arbitrary byte, so its first instructions may be decoded out of phase
        (and a garbage `ret` or `mov r8d, imm32` there must not count); x86 decoding falls into phase
        within a few instructions. Decodes that start inside the first instructions show where: what
        lies before the first address they share with `stream` is dropped. Two tries, the earlier wins;
        the second only when the first found no index at or below `enough` (the caller needs no more).
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
            index = self._first_shared(sec.data[other - sec.rva : end], other, addresses)
            if index is not None:
                best = min(best, index)
            if best <= enough:
                break
        return best

    def _first_shared(self, code: bytes, address: int, addresses: dict[int, int]) -> int | None:
        """The index in `addresses` of the first instruction decoded from `address` that is there too.
        Decodes meet within a few instructions: a short decode first, the rest only if needed."""
        for found, _size, _mnemonic, _ops in _in_chunks(self.md, code, address, _SYNC_HEAD):
            if found in addresses:
                return addresses[found]
        return None

    # step 1 + 2 ---------------------------------------------------------------------------------
    def find_sites(self, slots: dict[int, str]) -> tuple[list[tuple[int, str, str]], str | None]:
        """(instruction RVA, api, form) for every reference found; and why it stopped early."""
        refs: list[IatRef] = []
        for sec in self.sections:
            refs.extend(iat_refs(sec, self.arch, self.image_base, slots))
        thunks: dict[int, str] = {}
        for ref in refs:
            if ref.kind == "jmp":
                for start in ref.starts:
                    thunks[start] = ref.api
        callers: list[IatRef] = []
        for sec in self.sections:
            callers.extend(thunk_callers(sec, thunks))
        # a `jmp [IAT]` that code calls directly is a thunk, not a tail call: its callers are the sites
        used_thunks = {ref.thunk for ref in callers}

        # instruction RVA -> (where it may start, api, form, where it ends)
        sites: dict[int, tuple[tuple[int, ...], str, str, int]] = {}
        truncated = None
        for ref in refs:
            if len(sites) >= self.limits.max_sites:
                truncated = f"more than {self.limits.max_sites} pool-call sites: analysed the first ones"
                break
            if self.out_of_time():
                truncated = TIME_BUDGET_NOTE
                break
            if ref.kind == "call":
                sites[ref.starts[-1]] = (ref.starts, ref.api, "call [iat]", ref.starts[-1] + 6)
            elif ref.kind == "jmp":
                if not used_thunks.intersection(ref.starts):
                    sites[ref.starts[-1]] = (ref.starts, ref.api, "jmp [iat]", ref.starts[-1] + 6)
            else:
                for rva, form, end in self.follow_register(ref):
                    sites[rva] = ((rva,), ref.api, form, end)
        for ref in callers:
            if len(sites) >= self.limits.max_sites:
                truncated = f"more than {self.limits.max_sites} pool-call sites: analysed the first ones"
                break
            form = "call thunk" if ref.kind == "call" else "jmp thunk"
            sites[ref.starts[0]] = (ref.starts, ref.api, form, ref.starts[0] + 5)
        self._site_starts = {rva: (starts, end) for rva, (starts, _api, _form, end) in sites.items()}
        return [(rva, api, form) for rva, (_starts, api, form, _end) in sorted(sites.items())], truncated

    def follow_register(self, ref: IatRef) -> list[tuple[int, str, int]]:
        """`call reg` / `jmp reg` after `mov reg, [IAT]`, while some register still holds the pointer
        (copies included: gcc tail-calls with `mov rax, rbx; ...; jmp rax`)."""
        assert ref.reg is not None
        start = ref.starts[0]
        sec = self.section_at(start)
        if sec is None:
            return []
        holders = {CANON[ref.reg][0]}
        code = sec.data[start - sec.rva : start - sec.rva + self.limits.forward_bytes]
        # Nothing past the last `call reg` / `jmp reg` (FF D0-D7 / FF E0-E7) can be found, and most
        # loads reach a `ret` only after hundreds of bytes: decode no further than that last one.
        code = code[: _last_register_branch_end(code)]
        found: list[tuple[int, str, int]] = []
        first = True
        for address, size, mnemonic, op_str in _in_chunks(self.md, code, start):
            if first:
                first = False
                if mnemonic != "mov" or not op_str.startswith(ref.reg + ","):
                    return []  # the pattern matched inside another instruction
                continue
            if mnemonic not in ("call", "jmp") and not names_any(op_str, holders):
                # neither reads nor writes a holder by name (most of a function): only what it
                # writes implicitly can matter (what _update_holders does for such an instruction)
                if mnemonic in STOP:
                    break
                if not writes_nothing(mnemonic, ()):
                    holders.difference_update(implicit_writes(mnemonic))
                    if not holders:
                        break
                continue
            ops = operands(op_str)
            if mnemonic in ("call", "jmp") and len(ops) == 1 and ops[0][0] == "r" and ops[0][1] in holders:
                found.append((address, f"{mnemonic} reg", address + size))
                if mnemonic == "jmp":
                    break
            if mnemonic in STOP:
                break
            self._update_holders(holders, mnemonic, ops)
            if not holders:
                break
        return found

    def _update_holders(self, holders: set[str], mnemonic: str, ops: tuple[Operand, ...]) -> None:
        """The registers still holding the IAT pointer after one instruction."""
        if mnemonic == "call":
            holders.difference_update(VOLATILE[self.arch])
        elif writes_nothing(mnemonic, ops):
            pass
        elif mnemonic == "mov" and len(ops) == 2 and ops[0][0] == "r" and ops[1][0] == "r":
            if ops[1][1] in holders and ops[0][2] == ops[1][2] == self.width * 8:
                holders.add(ops[0][1])
            else:
                holders.discard(ops[0][1])
        else:
            holders.difference_update(implicit_writes(mnemonic))
            holders.difference_update(op[1] for op in clobbered(mnemonic, ops) if op[0] == "r")

    # step 3 ---------------------------------------------------------------------------------------
    def recover_tag(
        self, rva: int, api_name: str, form: str, site_apis: dict[int, str]
    ) -> int | object | None:
        """The tag passed at this site, None if it is not a constant there, STUB for import stubs."""
        starts, end = self._site_starts[rva]
        sec = self.section_at(starts[0])
        if sec is None:
            return None
        api = POOL_APIS[api_name]
        tail = form.startswith("jmp")
        for window in self.limits.windows:
            value = self._replay(sec, starts, end, api, tail, window, site_apis)
            if value is STUB:
                return STUB
            if value is not MISSING:
                if not isinstance(value, int):
                    return None
                tag = value & MASK32 & ~PROTECTED_POOL
                return tag or None
        return None

    def _land(
        self, sec: CodeSection, starts: tuple[int, ...], end: int, lo: int, tries: int
    ) -> tuple[int, list[Insn]] | None:
        """The first decode from lo, lo + 1, ... (`tries` of them) whose instructions land on the
        site, and where it began; None when none does."""
        for begin in range(lo, min(lo + tries, starts[0] + 1)):
            insns = self.decode(sec, begin, starts[0], end)
            if insns and insns[-1][0] in starts:
                return begin, insns
        return None

    def _replay(
        self,
        sec: CodeSection,
        starts: tuple[int, ...],
        end: int,
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
        landed = self._land(sec, starts, end, lo, 1 if known else 8)
        if landed is None:
            return None
        begin, stream = landed
        body = stream[:-1]
        site_mnemonic = stream[-1][2]
        if site_mnemonic not in ("call", "jmp"):
            return None
        if tail and (not body or body[-1][2] in ("jmp", "ret", "nop", "int3")) and len(stream) > 1:
            # `jmp [IAT]` right after padding or another stub: an import stub no code calls
            # (import libraries emit one per function even when dllimport calls bypass it)
            return STUB
        value = quick_tag(self.arch, body, api, tail)
        if value is UNSURE:
            value = self._simulate(body, 0, known, api, tail, site_apis)
        if not known and not (isinstance(value, tuple) and value[1] >= TRUSTED_FROM):
            # The first instructions may be decoded out of phase (a garbage `ret` or `mov r8d, imm32`
            # there must not count): replay from where decodes from other offsets agree.
            made = value[1] if isinstance(value, tuple) else -1
            first = self._sync_index(sec, stream, begin, max(4, made))
            # A constant made at or after `first` from what came after it: a replay from `first`
            # gives the same (the machine's values carry the index of the instruction that made them).
            if first and not (isinstance(value, tuple) and value[1] >= first):
                value = self._simulate(body[first:], first, known, api, tail, site_apis)
        if value is MISSING and window == self.limits.windows[-1]:
            return None
        if isinstance(value, tuple):
            return int(value[0])
        return value

    def _simulate(
        self, body: list[Insn], first: int, known: bool, api: PoolApi, tail: bool,
        site_apis: dict[int, str],
    ) -> Value:
        machine = Machine(self.arch, site_apis)
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
        if tag is not STUB:
            sites.append(CallSite(rva, api, form, tag if isinstance(tag, int) else None))
    return CallSiteAnalysis(sites, truncated)

