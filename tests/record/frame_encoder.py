"""Recording frames encoded by hand, from the format's description, independently of
pooltop.record.codec (tests check the decoder against these)."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def encode(ids: list[int], removed: list[int], columns: list[list[int]], mask: int, totals: list[int],
           widths: list[str]) -> bytes:
    """One frame as the format says: header, one dtype code per array, the arrays (ids and removed
    delta-coded), zlib. `widths` names each array's dtype (e.g. '<i2')."""
    codes = {"<i1": 0, "<i2": 1, "<i4": 2, "<i8": 3}
    arrays = [np.diff(ids, prepend=0), np.diff(removed, prepend=0), *columns, totals]
    header = struct.pack("<BIIIH", 2, len(ids), len(removed), len(columns), mask)
    body = b"".join(np.asarray(a, dtype=w).tobytes() for a, w in zip(arrays, widths, strict=True))
    return zlib.compress(header + bytes(codes[w] for w in widths) + body)
