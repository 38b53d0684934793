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
from collections.abc import Sequence
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


class DamagedFrame(BadInput):
    """A frame that cannot be decoded or applied; `index` is its place in the batch given to
    decode_frames. The message says what is wrong ("damaged sample frame (truncated)"); the reader
    names the file."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """Consecutive frames decoded together: each array holds every frame's part, in frame order."""

    changed: Int64Array  # per frame: how many ids (rows of values)
    removed_count: Int64Array  # per frame: how many removed ids
    masks: Int64Array  # per frame: totals mask
    ids: Int64Array
    values: Int64Array  # rows x columns
    removed: Int64Array
    totals: Int64Array

    def __len__(self) -> int:
        return len(self.changed)

    def frame(self, index: int) -> Frame:
        def part(counts: Int64Array) -> slice:
            start = int(counts[:index].sum())
            return slice(start, start + int(counts[index]))

        n_totals = np.array([int(m).bit_count() for m in self.masks[: index + 1]], dtype=np.int64)
        rows = part(self.changed)
        return Frame(self.ids[rows], self.values[rows], self.removed[part(self.removed_count)],
                     int(self.masks[index]), self.totals[part(n_totals)])


def decode_frame(blob: bytes, columns: int) -> Frame:
    return decode_frames([blob], columns).frame(0)


def _parse_headers(blobs: Sequence[bytes], columns: int) -> tuple[list[bytes], list[tuple[int, ...]], bytes]:
    """Decompress each frame and read its header (the one loop in Python: zlib works per frame)."""
    raws: list[bytes] = []
    heads: list[tuple[int, ...]] = []
    codes: list[bytes] = []
    slots = columns + 3
    for index, blob in enumerate(blobs):
        try:
            raw = zlib.decompress(blob)
            version, n, n_removed, cols, mask = _FRAME_HEADER.unpack_from(raw, 0)
        except (zlib.error, struct.error, TypeError):
            raise DamagedFrame(index, "damaged sample frame (not zlib data)") from None
        if version != 2:
            raise DamagedFrame(index, f"damaged sample frame (version {version} is not supported)")
        if cols != columns:
            raise DamagedFrame(index, f"damaged sample frame ({cols} columns, not {columns})")
        if mask >> len(TOTAL_FIELDS):
            raise DamagedFrame(index, "damaged sample frame (unknown totals)")
        code = raw[_FRAME_HEADER.size : _FRAME_HEADER.size + slots]
        if len(code) != slots or max(code) > 3:
            raise DamagedFrame(index, "damaged sample frame (bad header)")
        raws.append(raw)
        heads.append((n, n_removed, mask.bit_count(), mask))
        codes.append(code)
    return raws, heads, b"".join(codes)


def _exclusive_cumsum(a: Int64Array, axis: int = 0) -> Int64Array:
    out: Int64Array = np.cumsum(a, axis=axis) - a
    return out


def _segment_cumsum(deltas: Int64Array, counts: Int64Array) -> Int64Array:
    """Running sums of `deltas` that start over at each of the consecutive segments of `counts`."""
    sums = np.concatenate([[0], np.cumsum(deltas)])
    out: Int64Array = sums[1:] - sums[np.repeat(_exclusive_cumsum(counts), counts)]
    return out


def decode_frames(blobs: Sequence[bytes], columns: int) -> FrameBatch:
    """Decode frames of `columns` counter columns at once: numpy gathers every array of every frame
    in one pass per integer width, instead of a dozen small calls per frame."""
    if not blobs:
        empty = np.zeros(0, np.int64)
        return FrameBatch(empty, empty, empty, empty, np.zeros((0, columns), np.int64), empty, empty)
    raws, heads, code_bytes = _parse_headers(blobs, columns)
    head = np.array(heads, dtype=np.int64)
    n, n_removed, n_totals = head[:, 0], head[:, 1], head[:, 2]
    slots = columns + 3
    codes = np.frombuffer(code_bytes, np.uint8).reshape(len(raws), slots).astype(np.int64)
    lengths = np.column_stack([n, n_removed, *([n] * columns), n_totals])
    sizes = lengths << codes
    raw_len = np.array([len(r) for r in raws], dtype=np.int64)
    data_at = _FRAME_HEADER.size + slots
    wrong = np.flatnonzero(data_at + sizes.sum(axis=1) != raw_len)
    if len(wrong):
        index = int(wrong[0])
        short = data_at + int(sizes[index].sum()) > raw_len[index]
        what = "truncated" if short else "wrong size"
        raise DamagedFrame(index, f"damaged sample frame ({what})")
    src_at = (_exclusive_cumsum(raw_len) + data_at)[:, None] + _exclusive_cumsum(sizes, axis=1)
    # The output holds slot after slot (ids, removed, each column, totals), each in frame order.
    slot_start = _exclusive_cumsum(lengths.sum(axis=0))
    dst_at = slot_start[None, :] + _exclusive_cumsum(lengths, axis=0)
    out = np.empty(int(lengths.sum()), dtype=np.int64)
    buf = b"".join(raws)
    for code in range(4):
        width = 1 << code
        for skew in range(width):
            # elements of one width and alignment: one gather from a view of the buffer at that skew
            cells = (codes == code) & (lengths > 0) & (src_at % width == skew)
            if not cells.any():
                continue
            counts = lengths[cells]
            before = _exclusive_cumsum(counts)
            step = np.arange(int(counts.sum()), dtype=np.int64)  # the i-th element of the group
            view = np.frombuffer(buf, _DTYPES[code], (len(buf) - skew) // width, skew)
            source = np.repeat(src_at[cells] // width - before, counts) + step
            out[np.repeat(dst_at[cells] - before, counts) + step] = view[source]
    total_n = int(n.sum())
    ids = _segment_cumsum(out[:total_n], n)
    removed = _segment_cumsum(out[total_n : total_n + int(n_removed.sum())], n_removed)
    at = int(slot_start[2])
    values = out[at : at + columns * total_n].reshape(columns, total_n).T
    return FrameBatch(n, n_removed, head[:, 3], ids, values, removed, out[int(slot_start[-1]) :])


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

    @property
    def columns(self) -> int:
        return int(self.values.shape[1])

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
        if values.shape != (len(ids), self.values.shape[1]):
            raise DamagedFrame(0, "damaged sample frame (wrong shape)")
        if (len(ids) and int(ids.min()) < 0) or (len(removed) and int(removed.min()) < 0):
            raise DamagedFrame(0, "damaged sample frame (negative id)")
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

