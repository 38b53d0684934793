"""capstone's decoder called directly, each instruction turned into Python only when it is read.

The window before a pool call holds ~15 instructions and the analysis usually reads the last two to
four (the quick path). capstone's `disasm_lite` builds a ctypes object and two strings per
instruction before the caller reads any: on the dense benchmark a window cost 9.2 us that way,
4.5 us of it in capstone's C decoder. Here one `cs_disasm` call fills capstone's array, one
`string_at` copies it out, addresses follow from the sizes, and mnemonic and operands are decoded
when read (then kept).

This uses capstone's own ctypes binding (`capstone._cs`, `capstone._cs_insn`, `Cs.csh`); the
structure's layout is read from the binding, so another capstone version brings its own offsets.
A binding without them falls back to `disasm_lite` (same instructions, slower).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import overload

import capstone

#: (address, size, mnemonic, operands): what capstone's disasm_lite yields
Insn = tuple[int, int, str, str]


class Decoded:
    """One decode: capstone's instruction array as bytes, and the instructions read so far."""

    __slots__ = ("_blob", "_insns", "_layout", "addresses", "sizes")

    def __init__(
        self,
        addresses: list[int],
        sizes: bytes | list[int],
        blob: bytes,
        layout: _Layout | None,
        insns: list[Insn | None],
    ) -> None:
        self.addresses = addresses
        self.sizes = sizes
        self._blob = blob
        self._layout = layout
        self._insns = insns

    def insn(self, i: int) -> Insn:
        found = self._insns[i]
        if found is None:
            layout = self._layout
            assert layout is not None  # decodes without a layout hold every instruction already
            base = i * layout.size
            blob = self._blob
            start = base + layout.mnemonic
            mnemonic = blob[start : blob.index(0, start, base + layout.mnemonic_end)]
            start = base + layout.op_str
            op_str = blob[start : blob.index(0, start, base + layout.op_str_end)]
            found = (self.addresses[i], self.sizes[i], mnemonic.decode("ascii"), op_str.decode("ascii"))
            self._insns[i] = found
        return found


class Window(Sequence[Insn]):
    """Instructions [start, stop) of one decode, a list of Insn to the reader. Slices are views."""

    __slots__ = ("_decoded", "_start", "_stop")

    def __init__(self, decoded: Decoded, start: int, stop: int) -> None:
        self._decoded = decoded
        self._start = start
        self._stop = stop

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, i: int) -> Insn: ...
    @overload
    def __getitem__(self, i: slice) -> Window: ...
    def __getitem__(self, i: int | slice) -> Insn | Window:
        if isinstance(i, int):
            at = (self._start if i >= 0 else self._stop) + i
            if not self._start <= at < self._stop:
                raise IndexError(i)
            return self._decoded.insn(at)
        start, stop, step = i.indices(self._stop - self._start)
        if step != 1:
            raise ValueError("a Window slice takes every instruction")
        return Window(self._decoded, self._start + start, self._start + max(start, stop))

    def __iter__(self) -> Iterator[Insn]:
        insn = self._decoded.insn
        for i in range(self._start, self._stop):
            yield insn(i)

    def address(self, i: int) -> int:
        """The address of instruction i (negative from the end), without decoding its text."""
        return self._decoded.addresses[self._start + i if i >= 0 else self._stop + i]

    def addresses(self) -> list[int]:
        return self._decoded.addresses[self._start : self._stop]


_EMPTY = Window(Decoded([], b"", b"", None, []), 0, 0)


class _Layout:
    """Where capstone's cs_insn keeps what we read."""

    def __init__(self, insn: type[ctypes.Structure]) -> None:
        fields = {name: getattr(insn, name) for name, *_ in insn._fields_}
        mnemonic, op_str = fields["mnemonic"], fields["op_str"]
        self.size = ctypes.sizeof(insn)
        self.insn_size = fields["size"].offset
        self.mnemonic, self.mnemonic_end = mnemonic.offset, mnemonic.offset + mnemonic.size
        self.op_str, self.op_str_end = op_str.offset, op_str.offset + op_str.size


class _Direct:
    """cs_disasm through capstone's binding, into one reusable pointer."""

    def __init__(self, md: capstone.Cs) -> None:
        self.layout = _Layout(capstone._cs_insn)
        self.lib = capstone._cs
        self.handle = md.csh
        self.ptr = ctypes.POINTER(capstone._cs_insn)()
        self.ref = ctypes.byref(self.ptr)

    def decode(self, code: bytes, address: int, count: int) -> Window:
        layout = self.layout
        n = self.lib.cs_disasm(self.handle, code, len(code), address, count, self.ref)
        if n <= 0:
            return _EMPTY
        try:
            blob = ctypes.string_at(ctypes.cast(self.ptr, ctypes.c_void_p).value or 0, n * layout.size)
        finally:
            self.lib.cs_free(self.ptr, n)
        sizes = blob[layout.insn_size :: layout.size]  # the low byte (little-endian): at most 15
        addresses = list(accumulate(sizes[: n - 1], initial=address))
        unread: list[Insn | None] = [None] * n
        return Window(Decoded(addresses, sizes, blob, layout, unread), 0, n)


class Decoder:
    """x86 or x64 instructions from bytes. One per thread: capstone handles are not shared."""

    def __init__(self, arch: str) -> None:
        mode = capstone.CS_MODE_64 if arch == "x64" else capstone.CS_MODE_32
        self.md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        self.md.detail = False
        try:
            self._direct: _Direct | None = _Direct(self.md)
        except (AttributeError, KeyError, TypeError):  # a binding of another shape: disasm_lite
            self._direct = None

    def decode(self, code: bytes, address: int, count: int = 0) -> Window:
        """The instructions of `code` at `address` up to the first that does not decode (at most
        `count` of them unless 0), as disasm_lite gives them."""
        if self._direct is not None:
            return self._direct.decode(code, address, count)
        insns: list[Insn | None] = list(self.md.disasm_lite(code, address, count))
        done = [i for i in insns if i is not None]
        decoded = Decoded([i[0] for i in done], [i[1] for i in done], b"", None, insns)
        return Window(decoded, 0, len(insns))


_per_thread = threading.local()


def decoder(arch: str) -> Decoder:
    """This thread's decoder for `arch`."""
    handles: dict[str, Decoder] = _per_thread.__dict__.setdefault("decoders", {})
    found = handles.get(arch)
    if found is None:
        found = handles[arch] = Decoder(arch)
    return found
