"""What one sample exports: a bounded set of rows with their labels and values. Pure (no threads, no HTTP).

Cardinality: a Windows server has thousands of pool tags and Prometheus keeps every series it ever
saw for the retention period, so only the `top` rows by bytes plus (at most `max_watch`) rows at
watch level or above are exported. Everything else is summed per pool into
pooltop_unexported_bytes, so totals still add up.

Counters: Windows' allocs/frees are 32-bit counters that wrap (a busy tag wraps within hours), and
a raw wrapping value is neither a usable gauge (deriv() jumps at every wrap) nor a Prometheus
counter. `MonotonicCounts` adds each interval's wrap-safe delta (tracking takes it mod 2^32) to a
per-row total that starts at 0 when the exporter first sees the row, and exports that as a counter:
rate()/increase() work, and an exporter restart is an ordinary counter reset. Starting at 0
rather than at the raw value keeps a restart from looking like billions of allocations in one
scrape. Linux keeps no such counts (CounterSet.has_alloc_counts is False): nothing is exported
for them rather than zeros that look real.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.judge import JudgeThresholds, LeakLevel
from pooltop.model import CounterSet, HostInfo, Int64Array, Pool, Snapshot, Totals, printable
from pooltop.query import head_rows
from pooltop.tagdb.owners import OwnerLookup, OwnerLookupFactory
from pooltop.tracking import IndexArray, TrackedSample, Tracker, align

#: (tag, pool) -> the owner label value ("" when nothing is known)
OwnerName = Callable[[str, Pool], str]


def select_exported(
    counters: CounterSet, levels: npt.NDArray[np.int8], top: int, max_watch: int
) -> IndexArray:
    """Rows to export: the `top` largest by bytes, then up to `max_watch` more rows at watch level or
    above (most serious level first, then largest). Each (tag, pool) appears once, so a source that
    breaks the unique-key contract cannot make the scrape invalid (Prometheus rejects a whole
    scrape with a duplicate series)."""
    n = len(counters)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    top_rows = head_rows(counters, "bytes", top)
    rows = top_rows
    if max_watch > 0:
        in_top = np.zeros(n, dtype=np.bool_)
        in_top[top_rows] = True
        extra = np.flatnonzero((levels >= LeakLevel.WATCH) & ~in_top)
        if len(extra):
            order = np.lexsort((-counters.bytes[extra], -levels[extra].astype(np.int64)))
            rows = np.concatenate([top_rows, extra[order][:max_watch]])
    seen: set[tuple[str, int]] = set()
    keep: list[int] = []
    pools = counters.pools
    for i in rows.tolist():
        key = (counters.tags[i], int(pools[i]))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.array(keep, dtype=np.intp)


class MonotonicCounts:
    """Allocs and frees per row as counters that only go up (see the module docstring).

    Fed every successful sample in order, right after the Tracker that made it, so the sample's
    interval deltas are against the same previous snapshot as this object's.
    """

    def __init__(self) -> None:
        self._previous: CounterSet | None = None
        self._allocs: Int64Array = np.zeros(0, dtype=np.int64)
        self._frees: Int64Array = np.zeros(0, dtype=np.int64)

    def update(self, sample: TrackedSample) -> tuple[Int64Array, Int64Array] | None:
        """Totals row-aligned with the sample's counters, or None when the source keeps no counts."""
        counters = sample.counters
        if not counters.has_alloc_counts:
            self._previous = None
            return None
        n = len(counters)
        prev = self._previous
        if prev is None:
            allocs = np.zeros(n, dtype=np.int64)
            frees = np.zeros(n, dtype=np.int64)
        else:
            mapping = align(prev, counters)
            present = mapping >= 0
            safe = np.where(present, mapping, 0)
            delta = sample.interval
            # A new row's delta is its whole value since boot: it starts at 0 instead (see above).
            # Wide (64-bit) counters are not wrapped by tracking; never let a total go down.
            d_allocs = np.where(present, np.maximum(delta.allocs, 0), 0)
            d_frees = np.where(present, np.maximum(delta.frees, 0), 0)
            carried_a = self._allocs[safe] if len(self._allocs) else np.zeros(n, dtype=np.int64)
            carried_f = self._frees[safe] if len(self._frees) else np.zeros(n, dtype=np.int64)
            allocs = np.where(present, carried_a, 0) + d_allocs
            frees = np.where(present, carried_f, 0) + d_frees
        self._previous = counters
        self._allocs, self._frees = allocs, frees
        return allocs, frees


class OwnerResolver:
    """The owner label of each (tag, pool), resolved once and then kept.

    A label value that changes makes a new series, so the first answer sticks for the exporter's
    lifetime. The lookup is built from the first snapshot that needs it; it is rebuilt only when a
    slab cache appears whose SLUB alias group the first snapshot did not know. A lookup that fails
    (an unreadable tag file) gives "" and one message.
    """

    def __init__(self, factory: OwnerLookupFactory | None, warn: Callable[[str], None] = lambda _: None
                 ) -> None:
        self._factory = factory
        self._warn = warn
        self._lookup: OwnerLookup | None = None
        self._built_from: Snapshot | None = None
        self._owners: dict[tuple[str, int], str] = {}
        self._failed = False

    def owner_name(self, snap: Snapshot) -> OwnerName:
        def name(tag: str, pool: Pool) -> str:
            key = (tag, int(pool))
            found = self._owners.get(key)
            if found is None:
                found = self._resolve(snap, tag, pool)
                self._owners[key] = found
            return found

        return name

    def _resolve(self, snap: Snapshot, tag: str, pool: Pool) -> str:
        if self._factory is None or self._failed:
            return ""
        built = self._built_from
        stale = built is not None and tag in snap.aliases and tag not in built.aliases
        try:
            if self._lookup is None or stale:
                self._lookup = self._factory(snap)
                self._built_from = snap
            found = self._lookup(tag, pool)
        except Exception as e:  # the exporter keeps running without owners
            self._failed = True
            self._warn(f"owner lookup disabled: {e}")
            return ""
        return found[0].owner if found else ""


@dataclass(frozen=True, eq=False)
class ExportFrame:
    """Everything one scrape shows about one sample. Immutable: the sampling thread makes it, the
    HTTP threads read it."""

    source: str
    host: HostInfo
    taken_at: dt.datetime
    #: (tag, pool label, owner) of each exported row
    labels: tuple[tuple[str, str, str], ...]
    bytes: tuple[int, ...]
    outstanding: tuple[int, ...]
    #: monotonic totals since the exporter first saw the row; None when the source keeps no counts
    allocations: tuple[int, ...] | None
    frees: tuple[int, ...] | None
    leak_levels: tuple[int, ...]
    totals: Totals
    #: (pool label, number of rows in the sample), for every pool the sample has
    tags_by_pool: tuple[tuple[str, int], ...]
    #: (pool label, bytes of the rows not exported)
    unexported_bytes_by_pool: tuple[tuple[str, int], ...]
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


def build_frame(
    sample: TrackedSample,
    rows: IndexArray,
    counts: tuple[Int64Array, Int64Array] | None,
    owner: OwnerName,
) -> ExportFrame:
    snap = sample.snapshot
    c = snap.counters
    idx = rows.tolist()
    # Label values leave pooltop for scrapers and their terminals: a slab name or an owner holding
    # ESC, BEL, BS or CR is escaped the one way pooltop escapes text (model.printable).
    labels = tuple((printable(c.tags[i]), Pool(int(c.pools[i])).label, printable(owner(*c.key(i))))
                   for i in idx)
    exported = np.zeros(len(c), dtype=np.bool_)
    exported[rows] = True
    present = sorted({int(p) for p in np.unique(c.pools).tolist()})
    tags_by_pool = tuple((Pool(p).label, int(np.count_nonzero(c.pools == p))) for p in present)
    unexported = tuple(
        (Pool(p).label, int(c.bytes[(c.pools == p) & ~exported].sum())) for p in present
    )
    return ExportFrame(
        source=snap.source,
        host=snap.host,
        taken_at=snap.taken_at,
        labels=labels,
        bytes=tuple(c.bytes[rows].tolist()),
        outstanding=tuple(c.diff[rows].tolist()),
        allocations=tuple(counts[0][rows].tolist()) if counts is not None else None,
        frees=tuple(counts[1][rows].tolist()) if counts is not None else None,
        leak_levels=tuple(sample.leak.levels[rows].tolist()),
        totals=snap.totals,
        tags_by_pool=tags_by_pool,
        unexported_bytes_by_pool=unexported,
        warnings=snap.warnings,
    )


class FrameBuilder:
    """Turns successive snapshots of one source into export frames. One owner (the sampling thread).

    Keeps the Tracker (the leak judge's levels over its leak window: the same verdict the live view
    shows for the same samples), the monotonic alloc/free totals and the
    owner labels between samples.
    """

    def __init__(
        self,
        top: int,
        max_watch: int,
        owners: OwnerLookupFactory | None = None,
        thresholds: JudgeThresholds | None = None,
        warn: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.top = top
        self.max_watch = max_watch
        # history=8: the exporter never reads per-counter history, keep that buffer small.
        self._tracker = Tracker(thresholds, history=8)
        self._counts = MonotonicCounts()
        self._owners = OwnerResolver(owners, warn)

    def update(self, snap: Snapshot) -> ExportFrame:
        sample = self._tracker.update(snap)
        counts = self._counts.update(sample)
        rows = select_exported(sample.counters, sample.leak.levels, self.top, self.max_watch)
        return build_frame(sample, rows, counts, self._owners.owner_name(snap))
