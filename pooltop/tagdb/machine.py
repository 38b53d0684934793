"""Step 3 of the call-site analysis: a tiny abstract machine replayed over the window before a site.

It knows constants in registers and in stack / frame slots along one straight-line path, enough to
follow a tag from where it is loaded to the argument register or stack slot of the pool call.
"""

from __future__ import annotations

from pooltop.tagdb.poolapis import POOL_APIS, PoolApi
from pooltop.tagdb.x86ops import (
    ARITH,
    STACK_OPS,
    STOP,
    VOLATILE,
    Operand,
    clobbered,
    implicit_writes,
    operands,
    writes_nothing,
)

MISSING = object()  # "not set inside the window": a larger window may find it
STUB = object()  # the site is an import stub nobody calls directly, not a call
UNSURE = object()  # the quick path cannot tell: replay on the abstract machine

Known = tuple[int, int]  # (constant, index of the instruction it came from)
#: a constant produced this many instructions into a window is trusted without a second decode: x86
#: decoding started at an arbitrary byte falls into phase within a few instructions (2-5 measured on
#: compiled code), and what came before cannot change a constant loaded after it
TRUSTED_FROM = 8
Value = Known | object | None  # object: MISSING


class Machine:
    """Constants in registers and in stack / frame slots, along one straight-line path.

    A known value is (constant, index of the instruction that produced it), so the caller can tell
    whether a tag was set by an instruction it trusts (see _Analyzer._replay). Unknown is None; never
    written inside the window is MISSING (a larger window may find it)."""

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
        value = self.regs.get(canon, MISSING)
        if value is MISSING and self.boundary:
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
        value = self.mem.get(key, MISSING)
        if value is MISSING and (self.boundary or (key[0] == "sp" and self.sp_lost)):
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
            if value is MISSING:
                value = None
        if value is MISSING:
            self.regs.pop(canon, None)
        else:
            self.regs[canon] = value  # type: ignore[assignment]

    def store(self, key: tuple[str, int], value: Value) -> None:
        if value is MISSING:
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
        ops = operands(op_str)
        if mnemonic in ("mov", "movabs") and len(ops) == 2:
            self.move(ops[0], ops[1])
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
        elif mnemonic in STOP:
            self.reset()
        elif mnemonic.startswith(STACK_OPS):
            self.stack_op(mnemonic)
        elif mnemonic in ARITH and len(ops) == 2 and ops[0][0] == "r":
            self.arith(mnemonic, ops[0], ops[1])
        elif not writes_nothing(mnemonic, ops):
            for canon in implicit_writes(mnemonic):
                self.set_reg(canon, None)
            for op in clobbered(mnemonic, ops):
                self.write(op, None)

    def move(self, dst: Operand, src: Operand) -> None:
        if dst[0] == "r" and dst == src:
            return  # mov rdi, rdi: padding
        bits = dst[2] if dst[0] == "r" else 8 * (dst[4] if dst[0] == "m" else 4)
        self.write(dst, self.value(src, max(bits, 8)))

    def stack_op(self, mnemonic: str) -> None:
        self.lose_stack()
        if mnemonic == "leave":
            self.set_reg("rbp", None)
            return
        # pushfd, popal, enter, ...: not worth modelling
        for canon in VOLATILE["x86"] + ("rbx", "rsi", "rdi", "rbp"):
            self.set_reg(canon, None)

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
        elif left is MISSING or right is MISSING:
            self.set_reg(canon, MISSING)
        else:
            self.set_reg(canon, None)

    def call(self, address: int) -> None:
        for canon in VOLATILE[self.arch]:
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

