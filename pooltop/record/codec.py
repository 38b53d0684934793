"""The recording's frame codec: one sample's counters and totals as a compressed blob, and the
running state that frames are applied to.

A frame is zlib(header, dtype codes, arrays). ids are ascending key ids, delta-coded; values are
column-major (absolute for a full frame, differences for a delta frame); each array is stored in
the narrowest integer type that holds it, so the typical second (a few hundred small changes)
costs well under a kilobyte. System totals ride along as a presence mask and values.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput
from pooltop.model import Totals

Int64Array = npt.NDArray[np.int64]

_FRAME_HEADER = struct.Struct("<BIIIH")  # version, n changed, n removed, n columns, totals mask
_DTYPES = ("<i1", "<i2", "<i4", "<i8")
TOTAL_FIELDS = tuple(Totals.__dataclass_fields__)


def _narrow(arr: Int64Array) -> tuple[int, bytes]:
    if arr.size == 0:
        return 0, b""
    lo, hi = int(arr.min()), int(arr.max())
    for code, bits in enumerate((8, 16, 32)):
        if -(1 << (bits - 1)) <= lo and hi < 1 << (bits - 1):
            return code, arr.astype(_DTYPES[code]).tobytes()
    return 3, arr.astype("<i8").tobytes()


@dataclass(frozen=True, eq=False)
class Frame:
    ids: Int64Array
    values: Int64Array  # rows x columns
    removed: Int64Array
    totals_mask: int
    totals: Int64Array  # one value per set bit of totals_mask, in TOTAL_FIELDS order


def encode_frame(frame: Frame) -> bytes:
    cols = frame.values.shape[1] if frame.values.ndim == 2 else 0
    arrays = [
        np.diff(frame.ids, prepend=0),
        np.diff(frame.removed, prepend=0),
        *(frame.values[:, j] for j in range(cols)),
        frame.totals,
    ]
    coded = [_narrow(np.asarray(a, dtype=np.int64)) for a in arrays]
    parts = [
        _FRAME_HEADER.pack(2, len(frame.ids), len(frame.removed), cols, frame.totals_mask),
        bytes(code for code, _ in coded),
        *(data for _, data in coded),
    ]
    return zlib.compress(b"".join(parts), 6)


def decode_frame(blob: bytes) -> Frame:
    try:
        raw = zlib.decompress(blob)
        version, n, n_removed, cols, mask = _FRAME_HEADER.unpack_from(raw, 0)
    except (zlib.error, struct.error, TypeError):
        raise BadInput("recording has a damaged sample frame") from None
    if version != 2:
        raise BadInput(f"recording frame version {version} is not supported")
    n_totals = bin(mask).count("1")
    lengths = [n, n_removed, *([n] * cols), n_totals]
    off = _FRAME_HEADER.size
    codes = raw[off : off + len(lengths)]
    off += len(lengths)
    if len(codes) != len(lengths) or any(c > 3 for c in codes):
        raise BadInput("recording has a damaged sample frame (bad header)")
    arrays: list[Int64Array] = []
    for code, length in zip(codes, lengths, strict=True):
        size = length * (1 << code)
        if off + size > len(raw):
            raise BadInput("recording has a damaged sample frame (truncated)")
        arrays.append(np.frombuffer(raw, _DTYPES[code], length, off).astype(np.int64))
        off += size
    if off != len(raw):
        raise BadInput("recording has a damaged sample frame (wrong size)")
    ids = np.cumsum(arrays[0])
    removed = np.cumsum(arrays[1])
    values = np.column_stack(arrays[2 : 2 + cols]) if cols and n else np.zeros((n, cols), np.int64)
    return Frame(ids, values, removed, mask, arrays[-1])


def totals_vector(t: Totals) -> tuple[int, Int64Array]:
    present = [(i, v) for i, name in enumerate(TOTAL_FIELDS) if (v := getattr(t, name)) is not None]
    mask = sum(1 << i for i, _ in present)
    return mask, np.array([v for _, v in present], dtype=np.int64)



class FrameState:
    """Current value of every key id (dense arrays indexed by key id) and of the totals."""

    def __init__(self, n_columns: int) -> None:
        self.values = np.zeros((0, n_columns), dtype=np.int64)
        self.present = np.zeros(0, dtype=np.bool_)
        self.totals = np.zeros(len(TOTAL_FIELDS), dtype=np.int64)
        self.totals_mask = 0

    def grow(self, size: int) -> None:
        if size > len(self.present):
            extra = size - len(self.present) + 256
            self.values = np.vstack([self.values, np.zeros((extra, self.values.shape[1]), np.int64)])
            self.present = np.concatenate([self.present, np.zeros(extra, np.bool_)])

    def totals_record(self) -> Totals:
        return Totals(
            **{name: int(self.totals[i]) for i, name in enumerate(TOTAL_FIELDS) if self.totals_mask >> i & 1}
        )

    def apply(self, full: bool, frame: Frame) -> None:
        ids, values, removed = frame.ids, frame.values, frame.removed
        if (len(ids) and int(ids.min()) < 0) or (len(removed) and int(removed.min()) < 0):
            raise BadInput("recording has a damaged sample frame (negative id)")
        top = max(int(ids.max()) + 1 if len(ids) else 0, int(removed.max()) + 1 if len(removed) else 0)
        self.grow(top)
        slots = [i for i in range(len(TOTAL_FIELDS)) if frame.totals_mask >> i & 1]
        if full:
            self.present[:] = False
            self.values[ids] = values
            self.totals[:] = 0
            self.totals[slots] = frame.totals
        else:
            # A counter that was absent comes back with its absolute value, not a difference.
            back = ~self.present[ids]
            self.values[ids[back]] = values[back]
            self.values[ids[~back]] += values[~back]
            had = np.array([self.totals_mask >> i & 1 for i in slots], dtype=np.bool_)
            slot_arr = np.array(slots, dtype=np.intp)
            self.totals[slot_arr[~had]] = frame.totals[~had]
            self.totals[slot_arr[had]] += frame.totals[had]
        self.totals_mask = frame.totals_mask
        self.present[ids] = True
        self.present[removed] = False

