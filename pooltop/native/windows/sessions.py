"""Session pool (SystemSessionPoolTagInformation, class 67): a chain of per-session entries whose
header layout varies between builds, decoded into Pool.SESSION rows; and the session rows joined to
the system pools' rows. Pure, like layouts.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput
from pooltop.model import CounterSet, Pool
from pooltop.native.windows.layouts import (
    NO_SESSION,
    PROTECTED_POOL,
    SESSION_ID_COLUMN,
    U32_MASK,
    AnyBuffer,
    Layout,
    SessionHeader,
    byte_view,
    tag_texts,
)


@dataclass(frozen=True)
class _SessionEntry:
    offset: int
    next_offset: int
    session_id: int
    count: int


def _uint(view: memoryview, offset: int, size: int) -> int:
    return int.from_bytes(view[offset : offset + size], "little")


def _walk_sessions(view: memoryview, layout: Layout, header: SessionHeader) -> list[_SessionEntry] | str:
    """The entry chain under one header layout, or why it does not fit the buffer."""
    ptr_size = layout.pointer_size
    entries: list[_SessionEntry] = []
    offset = 0
    record = layout.pooltag.itemsize
    while True:
        if offset + header.size > len(view):
            return f"entry at {offset} needs {header.size} header bytes, buffer ends at {len(view)}"
        next_offset = _uint(view, offset, ptr_size)
        sid = _uint(view, offset + header.session_id_offset, 4)
        count = _uint(view, offset + header.count_offset, 4)
        end = offset + header.size + count * record
        if next_offset:
            # The kernel packs entries: the next one starts right after this one's records.
            if next_offset < header.size + count * record:
                return f"entry at {offset}: Count {count} runs past NextEntryOffset {next_offset}"
            if offset + next_offset > len(view):
                return f"entry at {offset}: NextEntryOffset {next_offset} points past the buffer end"
        elif end > len(view):
            return f"entry at {offset}: Count {count} needs {end} bytes, buffer has {len(view)}"
        entries.append(_SessionEntry(offset, next_offset, sid, count))
        if not next_offset:
            return entries
        offset += next_offset


def _slack(entries: list[_SessionEntry], layout: Layout, header: SessionHeader, total: int) -> int:
    """Bytes not covered by records: 0 for a buffer cut to ReturnLength under the right layout."""
    used = sum(header.size + e.count * layout.pooltag.itemsize for e in entries)
    return total - used


def detect_session_layout(buf: AnyBuffer, layout: Layout) -> SessionHeader:
    """Which SessionId/Count order this SYSTEM_SESSION_POOLTAG_INFORMATION buffer uses.

    A layout fits when its whole NextEntryOffset chain stays inside the buffer and every entry's
    records end before the next entry begins. When both fit, the one whose records exactly fill
    the buffer (no slack) wins, then the one whose records all carry a non-zero tag, then phnt's.
    """
    view = byte_view(buf)
    fits: list[tuple[SessionHeader, list[_SessionEntry]]] = []
    reasons: list[str] = []
    for header in layout.session_headers:
        walked = _walk_sessions(view, layout, header)
        if isinstance(walked, str):
            reasons.append(f"{header.name}: {walked}")
        else:
            fits.append((header, walked))
    if not fits:
        raise BadInput(
            f"session pool tag buffer ({len(view)} bytes, {layout.name}) matches neither known layout of "
            f"SYSTEM_SESSION_POOLTAG_INFORMATION: " + "; ".join(reasons)
        )
    if len(fits) == 1:
        return fits[0][0]

    record = layout.pooltag.itemsize

    def score(item: tuple[SessionHeader, list[_SessionEntry]]) -> tuple[bool, bool]:
        header, entries = item
        packed = all(e.next_offset in (0, header.size + e.count * record) for e in entries)
        exact = packed and _slack(entries, layout, header, len(view)) == 0
        tagged = all(bool(np.all(_session_records(view, layout, header, e)["Tag"] != 0)) for e in entries)
        return exact, tagged

    # max() keeps the first of equal scores: phnt's layout comes first in session_headers.
    return max(fits, key=score)[0]


def _session_records(view: memoryview, layout: Layout, header: SessionHeader, entry: _SessionEntry
                     ) -> npt.NDArray[Any]:
    return np.frombuffer(view, dtype=layout.pooltag, count=entry.count, offset=entry.offset + header.size)


def decode_session_pooltags(buf: AnyBuffer, layout: Layout, *, per_session: bool = False) -> CounterSet:
    """SYSTEM_SESSION_POOLTAG_INFORMATION (class 67) -> Pool.SESSION rows with a session_id column.

    Session pool is one pool per session; a tag's paged and nonpaged session counters are added
    into one row. By default rows of the same tag in several sessions are added up too, so
    (tag, pool) stays a unique key (the contract tracking relies on); session_id is then the
    session when only one holds the tag, else NO_SESSION. per_session=True keeps one row per
    (session, tag) instead.
    """
    view = byte_view(buf)
    if len(view) == 0:
        return _empty_sessions()
    header = detect_session_layout(view, layout)
    walked = _walk_sessions(view, layout, header)
    assert not isinstance(walked, str)  # detect_session_layout accepted this header
    parts = [_session_records(view, layout, header, e) for e in walked]
    if not parts or sum(len(p) for p in parts) == 0:
        return _empty_sessions()
    recs = np.concatenate(parts)
    sids = np.concatenate([np.full(len(p), e.session_id, dtype=np.int64) for p, e in zip(parts, walked,
                                                                                         strict=True)])
    tags = (recs["Tag"] & ~np.uint32(PROTECTED_POOL)).astype(np.uint32)

    def both(paged: str, nonpaged: str) -> npt.NDArray[np.uint64]:
        return recs[paged].astype(np.uint64) + recs[nonpaged].astype(np.uint64)

    allocs = both("PagedAllocs", "NonPagedAllocs")
    frees = both("PagedFrees", "NonPagedFrees")
    used = both("PagedUsed", "NonPagedUsed")
    # Per-half diffs wrap at 32 bits; add them after wrapping.
    mod = np.uint64(U32_MASK)
    diff = ((recs["PagedAllocs"].astype(np.uint64) - recs["PagedFrees"]) & mod) + (
        (recs["NonPagedAllocs"].astype(np.uint64) - recs["NonPagedFrees"]) & mod
    )
    keep = (allocs != 0) | (frees != 0) | (used != 0)
    tags, sids, allocs, frees, used, diff = (x[keep] for x in (tags, sids, allocs, frees, used, diff))
    if not per_session and len(tags):
        uniq, first, inverse = np.unique(tags, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # keep buffer order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        group = rank[inverse]
        m = len(uniq)

        def total(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
            out = np.zeros(m, dtype=np.uint64)
            np.add.at(out, group, x)
            return out

        lo = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(m, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(lo, group, sids)
        np.maximum.at(hi, group, sids)
        sids = np.where(lo == hi, lo, NO_SESSION)
        tags, allocs, frees, used, diff = uniq[order], total(allocs), total(frees), total(used), total(diff)
    n = len(tags)
    return CounterSet.build(
        tuple(tag_texts(tags)),
        np.full(n, Pool.SESSION, dtype=np.uint8),
        allocs.view(np.int64),
        frees.view(np.int64),
        diff.view(np.int64),
        used.view(np.int64),
        {SESSION_ID_COLUMN: sids},
        counter_bits=32,
    )


def _empty_sessions() -> CounterSet:
    return CounterSet.build((), (), (), (), (), (), {SESSION_ID_COLUMN: ()})




# --- putting rows together ------------------------------------------------------------------------


def with_session_rows(system: CounterSet, sessions: CounterSet | None) -> CounterSet:
    """System pool rows followed by session rows, all with a session_id column (NO_SESSION for the
    system pools), so every Windows snapshot has the same columns whether or not sessions were read."""
    parts = [system] if sessions is None else [system, sessions]

    def column(cs: CounterSet) -> npt.NDArray[np.int64]:
        col = cs.extra.get(SESSION_ID_COLUMN)
        return np.full(len(cs), NO_SESSION, dtype=np.int64) if col is None else col

    def cat(get: Callable[[CounterSet], npt.NDArray[Any]]) -> npt.NDArray[Any]:
        return np.concatenate([get(p) for p in parts])

    return CounterSet.build(
        sum((p.tags for p in parts), ()),
        cat(lambda c: c.pools),
        cat(lambda c: c.allocs),
        cat(lambda c: c.frees),
        cat(lambda c: c.diff),
        cat(lambda c: c.bytes),
        {SESSION_ID_COLUMN: cat(column)},
        # Session rows (class 67) are 32-bit even next to class 255's wide counters; 32-bit delta
        # arithmetic is right for both as long as a counter moves less than 2^32 per sample.
        counter_bits=min(p.counter_bits for p in parts),
    )
