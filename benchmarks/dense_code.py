"""Machine code of a dense driver, written byte by byte: a pool call every ~300 bytes, x64 and x86.

For bench_scanner.py (issue 18 item 6). The instructions are encoded here by hand from the Intel
manual's tables, not by pooltop: compiler-like functions (prologue, loads and stores through the
stack and structure pointers, arithmetic, compares and branches, calls between functions, int3
padding), with pool calls in the shapes compilers emit:

- x64: `mov r8d, imm32` just before `call [rip+IAT]`, or a few instructions earlier, or through a
  callee-saved register (`mov ebx, imm32 ... mov r8d, ebx`), or `mov rsi, [rip+IAT] ... call rsi`;
  ExFreePoolWithTag with the tag in edx;
- x86: three (ExAllocatePoolWithTag) or four (ExAllocatePool2) stdcall pushes before
  `call [IAT]`, the tag pushed first, sometimes through a register (`mov esi, imm32 ... push esi`).

`dense_driver(arch, code_bytes, every, seed)` returns the code, the IAT slot RVAs by API name, the
function starts and the tag (as an int) placed at each pool call.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CODE_RVA = 0x1000
IAT_RVA = 0x1000_0000  # above any code generated here
IMAGE_BASE_X86 = 0x10000
APIS = ("ExAllocatePoolWithTag", "ExAllocatePool2", "ExFreePoolWithTag")


@dataclass
class DenseDriver:
    arch: str
    image_base: int
    code: bytearray = field(default_factory=bytearray)
    function_starts: list[int] = field(default_factory=list)
    placed: dict[int, int] = field(default_factory=dict)  # call RVA -> tag value

    @property
    def rva(self) -> int:
        return CODE_RVA + len(self.code)

    def emit(self, *parts: bytes) -> None:
        for part in parts:
            self.code += part

    def iat_operand(self, api: str, insn_len: int) -> bytes:
        """The disp32 of `call [IAT]` ending insn_len bytes from here: RIP-relative on x64."""
        slot = self.slot_rva(api)
        if self.arch == "x64":
            return struct.pack("<i", slot - (self.rva + insn_len))
        return struct.pack("<I", self.image_base + slot)

    def slot_rva(self, api: str) -> int:
        return IAT_RVA + APIS.index(api) * (8 if self.arch == "x64" else 4)

    def slots(self) -> dict[int, str]:
        """IAT slot RVA -> API name, as pooltop's pool_import_slots gives them."""
        return {self.slot_rva(api): api for api in APIS}


def _tag(rng: random.Random) -> int:
    return int.from_bytes(bytes(rng.choice(ALNUM) for _ in range(4)), "little")


def _imm32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def _filler(d: DenseDriver, rng: random.Random) -> None:
    """One compiler-like instruction (or a compare and branch) touching no argument register a
    later pool call reads, except through the shapes the caller emits."""
    r = rng.randrange(8) if d.arch == "x64" else rng.choice((0, 1, 3, 6, 7))  # no esp / ebp as data
    if r == 4 and d.arch == "x64":
        r = 3
    s = rng.choice((0, 1, 3, 6, 7))
    disp = rng.randrange(0x08, 0x78, 4)
    kind = rng.randrange(12)
    rex = b"\x48" if d.arch == "x64" else b""
    if kind == 0:
        d.emit(b"\x89", bytes([0xC0 | s << 3 | r]))  # mov r32, r32
    elif kind == 1:
        d.emit(b"\x83", bytes([0xC0 | r, rng.randrange(1, 0x7F)]))  # add r32, imm8
    elif kind == 2:
        d.emit(b"\x8b", bytes([0x44 | r << 3, 0x24, disp]))  # mov r32, [esp/rsp+disp8]
    elif kind == 3:
        d.emit(b"\x89", bytes([0x44 | s << 3, 0x24, disp]))  # mov [esp/rsp+disp8], r32
    elif kind == 4:
        d.emit(rex, b"\x8d", bytes([0x40 | r << 3 | s, disp]))  # lea r, [s+disp8]
    elif kind == 5:
        jcc = bytes([0x70 | rng.randrange(16), 6])
        d.emit(b"\x83", bytes([0xF8 | r, rng.randrange(0x7F)]), jcc)  # cmp r32, imm8; jcc
    elif kind == 6:
        d.emit(b"\x85", bytes([0xC0 | s << 3 | r]), b"\x74\x04")  # test; je
    elif kind == 7:
        d.emit(b"\x0f\xb6", bytes([0x40 | r << 3 | s, disp]))  # movzx r32, byte [s+disp8]
    elif kind == 8:
        d.emit(b"\xc1", bytes([0xE0 | r, rng.randrange(1, 31)]))  # shl r32, imm8
    elif kind == 9:
        d.emit(b"\x0f\xaf", bytes([0xC0 | r << 3 | s]))  # imul r32, r32
    elif kind == 10:
        target = CODE_RVA + rng.randrange(max(1, len(d.code)))
        d.emit(b"\xe8", struct.pack("<i", target - (d.rva + 5)))  # call rel32 (another function)
    else:
        d.emit(rex, b"\x8b", bytes([0x40 | r << 3 | s, disp]))  # mov r, [s+disp8]


def _x64_pool_call(d: DenseDriver, rng: random.Random) -> None:
    tag = _tag(rng)
    shape = rng.randrange(5)
    api = "ExAllocatePool2" if rng.random() < 0.5 else "ExAllocatePoolWithTag"
    if shape == 4:  # ExFreePoolWithTag(p, tag): the tag in edx
        d.emit(b"\x48\x89\xd9", b"\xba", _imm32(tag))  # mov rcx, rbx; mov edx, tag
        d.placed[d.rva] = tag
        d.emit(b"\xff\x15", d.iat_operand("ExFreePoolWithTag", 6))
        return
    if shape == 2:  # the tag kept in a callee-saved register, copied into r8d before the call
        d.emit(b"\xbb", _imm32(tag))  # mov ebx, tag
        for _ in range(rng.randrange(2, 6)):
            _filler_no_rbx(d, rng)
        d.emit(b"\x41\x89\xd8")  # mov r8d, ebx
    else:
        d.emit(b"\x41\xb8", _imm32(tag))  # mov r8d, tag
    if shape == 1:  # set a few instructions before the call
        for _ in range(rng.randrange(1, 4)):
            _filler_no_rbx(d, rng)
    d.emit(b"\xb9", _imm32(0x40 if api == "ExAllocatePool2" else 0x200))  # mov ecx, flags / type
    d.emit(b"\xba", _imm32(rng.randrange(16, 4096)))  # mov edx, size
    if shape == 3:  # mov rsi, [rip+IAT]; call rsi
        d.emit(b"\x48\x8b\x35", d.iat_operand(api, 7))
        d.placed[d.rva] = tag
        d.emit(b"\xff\xd6")
    else:
        d.placed[d.rva] = tag
        d.emit(b"\xff\x15", d.iat_operand(api, 6))


def _filler_no_rbx(d: DenseDriver, rng: random.Random) -> None:
    """A filler that leaves rbx, rcx, rdx and r8 alone (they hold arguments being set up)."""
    d.emit(rng.choice((b"\x89\xc7", b"\x83\xc0\x10", b"\x48\x8d\x46\x08", b"\x0f\xaf\xf8",
                       b"\x8b\x44\x24\x30")))


def _x86_pool_call(d: DenseDriver, rng: random.Random) -> None:
    tag = _tag(rng)
    shape = rng.randrange(4)
    if shape == 3:  # ExFreePoolWithTag(p, tag)
        d.emit(b"\x68", _imm32(tag), b"\x56")  # push tag; push esi
        d.placed[d.rva] = tag
        d.emit(b"\xff\x15", d.iat_operand("ExFreePoolWithTag", 6))
        return
    if shape == 2:  # the tag through a register
        d.emit(b"\xbe", _imm32(tag))  # mov esi, tag
        d.emit(b"\x89\xc7", b"\x83\xc0\x10")  # mov edi, eax; add eax, 16
        d.emit(b"\x56")  # push esi
    else:
        d.emit(b"\x68", _imm32(tag))  # push tag
    d.emit(b"\x68", _imm32(rng.randrange(16, 4096)))  # push size
    if shape == 1:  # ExAllocatePool2(flags (64-bit: two pushes), size, tag)
        d.emit(b"\x6a\x00", b"\x6a\x40")
        api = "ExAllocatePool2"
    else:
        d.emit(b"\x6a\x01")  # push NonPagedPool
        api = "ExAllocatePoolWithTag"
    d.placed[d.rva] = tag
    d.emit(b"\xff\x15", d.iat_operand(api, 6))


def dense_driver(arch: str, code_bytes: int, every: int = 300, seed: int = 18) -> DenseDriver:
    """About `code_bytes` of code in functions of 300-1500 bytes with a pool call every `every` bytes."""
    rng = random.Random(seed)
    d = DenseDriver(arch, 0 if arch == "x64" else IMAGE_BASE_X86)
    pool_call = _x64_pool_call if arch == "x64" else _x86_pool_call
    next_call = every // 2
    while len(d.code) < code_bytes:
        d.function_starts.append(d.rva)
        if arch == "x64":
            d.emit(b"\x53", b"\x48\x83\xec\x30")  # push rbx; sub rsp, 0x30
        else:
            d.emit(b"\x55", b"\x89\xe5", b"\x56", b"\x57")  # push ebp; mov ebp, esp; push esi; push edi
        end = len(d.code) + rng.randrange(300, 1500)
        while len(d.code) < end:
            if len(d.code) >= next_call:
                pool_call(d, rng)
                next_call += every
            else:
                _filler(d, rng)
        if arch == "x64":
            d.emit(b"\x48\x83\xc4\x30", b"\x5b", b"\xc3")  # add rsp, 0x30; pop rbx; ret
        else:
            d.emit(b"\x5f", b"\x5e", b"\x5d", b"\xc3")
        d.emit(b"\xcc" * (-len(d.code) % 16))
    return d
