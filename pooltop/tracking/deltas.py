"""Deltas: what changed between two snapshots, row-aligned with the later one.

Arithmetic facts (see ../shared/DESIGN.md): Windows allocs/frees are 32-bit and wrap, so every
difference of them is taken mod 2^32; Linux has no cumulative counts, only active objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.model import U32, CounterSet, Int64Array

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


_identity_map: IndexArray = np.zeros(0, dtype=np.intp)


def identity_mapping(n: int) -> IndexArray:
    """np.arange(n) as a mapping, the same read-only object while n stays: every step of a refresh
    asks whether rows moved, and identity answers that without reading the array."""
    global _identity_map
    found = _identity_map
    if len(found) != n:
        found = np.arange(n, dtype=np.intp)
        found.flags.writeable = False
        _identity_map = found
    return found


def align(reference: CounterSet, current: CounterSet) -> IndexArray:
    """For each row of `current`, its row in `reference`, or -1 where the counter is new."""
    if current.same_keys(reference):
        return identity_mapping(len(current))
    ref_index = reference.index()
    get = ref_index.get
    return np.fromiter(
        (get(k, -1) for k in zip(current.tags, current.pools.tolist(), strict=True)),
        dtype=np.intp,
        count=len(current),
    )


def is_identity(mapping: IndexArray) -> bool:
    n = len(mapping)
    if n == 0 or mapping is _identity_map:
        return True
    return int(mapping[0]) == 0 and int(mapping[-1]) == n - 1 and bool(np.all(np.diff(mapping) == 1))


_LOW32 = U32 - 1


def _wrap32(d: Int64Array) -> Int64Array:
    # Two's complement: masking the low 32 bits is the non-negative mod 2^32 (5x faster than mod).
    out: Int64Array = d & _LOW32
    return out


def _signed32(d: Int64Array) -> Int64Array:
    """A mod-2^32 difference read as signed: frees may run ahead of allocs for a while."""
    out: Int64Array = ((d + (1 << 31)) & _LOW32) - (1 << 31)
    return out


@dataclass(frozen=True, eq=False)
class Deltas:
    """Change of every counter of `current` against a reference snapshot, row-aligned with current."""

    allocs: Int64Array
    frees: Int64Array
    diff: Int64Array
    bytes: Int64Array
    is_new: BoolArray
    seconds: float
    vanished: CounterSet

    def rate(self, column: str) -> FloatArray:
        """Per-second change of allocs, frees, diff or bytes (0 when no time passed)."""
        values: Int64Array = getattr(self, column)
        if self.seconds <= 0:
            return np.zeros(len(values), dtype=np.float64)
        out: FloatArray = values / self.seconds
        return out

    @classmethod
    def zero(cls, current: CounterSet) -> Deltas:
        z = np.zeros(len(current), dtype=np.int64)
        z.flags.writeable = False
        return cls(z, z, z, z, np.zeros(len(current), dtype=np.bool_), 0.0, CounterSet.empty())


def compute_deltas(
    reference: CounterSet,
    current: CounterSet,
    seconds: float,
    mapping: IndexArray | None = None,
) -> Deltas:
    """Deltas of `current` against `reference`. New counters count from zero (their whole value).

    `counter_bits` of the current set says whether allocs/frees are 32-bit wrapping counters
    (Windows class 22) or wide ones (class 255, recordings); Linux sets have no alloc counts.
    """
    if mapping is None:
        identical = current.same_keys(reference)
        idx = identity_mapping(len(current)) if identical else align(reference, current)
    else:
        idx = mapping
        identical = len(reference) == len(current) and is_identity(idx)
    present = np.ones(len(current), dtype=np.bool_) if identical else idx >= 0
    safe = idx if identical else np.where(present, idx, 0)

    def prior(column: Int64Array) -> Int64Array:
        if identical:
            # Same rows in the same order (the usual refresh): no gather needed.
            return column
        out: Int64Array = np.where(present, column[safe] if len(column) else 0, 0)
        return out

    d_bytes = current.bytes - prior(reference.bytes)
    if current.has_alloc_counts:
        d_allocs = current.allocs - prior(reference.allocs)
        d_frees = current.frees - prior(reference.frees)
        if current.counter_bits == 32:
            d_allocs = _wrap32(d_allocs)
            d_frees = _wrap32(d_frees)
            # Outstanding = allocs - frees, so its change follows from the two wrap-safe deltas.
            d_diff = _signed32(d_allocs - d_frees)
        else:
            d_diff = current.diff - prior(reference.diff)
    else:
        d_allocs = np.zeros(len(current), dtype=np.int64)
        d_frees = d_allocs
        d_diff = current.diff - prior(reference.diff)

    if identical:
        vanished = CounterSet.empty()
    else:
        gone = np.ones(len(reference), dtype=np.bool_)
        gone[idx[present]] = False
        vanished = reference.select(gone) if gone.any() else CounterSet.empty()
    for arr in (d_allocs, d_frees, d_diff, d_bytes):
        arr.flags.writeable = False
    is_new = ~present
    is_new.flags.writeable = False
    return Deltas(d_allocs, d_frees, d_diff, d_bytes, is_new, max(seconds, 0.0), vanished)
