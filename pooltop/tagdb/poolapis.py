"""The pool APIs whose calls name a tag, where each takes it, and how tags are written as values."""

from __future__ import annotations

from dataclasses import dataclass

from pooltop.model import escape_tag

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


def pool_import_slots(imports: dict[tuple[str, str], int]) -> dict[int, str]:
    """IAT slot RVA -> pool API name, for the pool APIs among `imports`."""
    slots: dict[int, str] = {}
    for (dll, name), rva in imports.items():
        api = POOL_APIS.get(name)
        if api is not None and dll in api.modules:
            slots[rva] = name
    return slots


def tag_text(value: int) -> str:
    """A tag value as pooltop prints tags everywhere (model.escape_tag of its little-endian bytes)."""
    return escape_tag((value & MASK32).to_bytes(4, "little"))
