"""What the live table shows, computed from a TrackedSample: row order, filter, change highlights.

Pure (numpy, no Textual): the widget in table.py only formats the rows this hands it, and the
benchmarks and tests drive it without a terminal.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.app.changes import ChangeMemory
from pooltop.app.sorting import EXTRA_SOURCES, SORT_NAMES, default_descending, extra_column
from pooltop.judge import LeakLevel
from pooltop.model import CounterSet, Pool, printable
from pooltop.query import SORT_KEYS, compile_pattern, sort_rows, stable_head
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup
from pooltop.tracking import Deltas, IndexArray, TrackedSample


class PoolMode(enum.Enum):
    """poolmon's `p`: which of the two big Windows pools to show."""

    BOTH = "both"
    NONPAGED = "nonpaged"
    PAGED = "paged"

    def next(self) -> PoolMode:
        members = list(PoolMode)
        return members[(members.index(self) + 1) % len(members)]


class OwnerBook:
    """Owner lookups, cached per (tag, pool): the tag database does not change while we run."""

    def __init__(self, owners: OwnerLookup | None) -> None:
        self._owners = owners
        self._cache: dict[tuple[str, int], tuple[OwnerCandidate, ...]] = {}

    @property
    def available(self) -> bool:
        return self._owners is not None

    def candidates(self, tag: str, pool: int) -> tuple[OwnerCandidate, ...]:
        key = (tag, pool)
        found = self._cache.get(key)
        if found is None:
            found = ()
            if self._owners is not None:
                try:
                    found = tuple(self._owners(tag, Pool(pool)))
                except Exception:  # a broken tag database must not take the live view down
                    found = ()
            self._cache[key] = found
        return found

    def text(self, tag: str, pool: int) -> str:
        found = self.candidates(tag, pool)
        if not found:
            return ""
        first = found[0]
        return printable(f"{first.owner} {first.description}".strip())


@dataclass
class ViewSettings:
    """The user's choices; everything else in the table follows from these and the sample."""

    sort: str = "bytes"
    descending: bool = True
    filter: str = ""
    pools: PoolMode = PoolMode.BOTH
    session_only: bool = False
    since_baseline: bool = False
    highlight: bool = True
    show_totals: bool = False


def filter_pattern(text: str) -> re.Pattern[str] | None:
    """The user's filter as a case-insensitive pattern; plain words match anywhere."""
    text = text.strip()
    if not text:
        return None
    if not any(ch in text for ch in "*?["):
        text = f"*{text}*"
    return compile_pattern(text, case_sensitive=False)


@dataclass(frozen=True)
class RowFacts:
    """One row of the current sample, as the detail pane shows it."""

    tag: str
    pool: Pool
    allocs: int | None  # None on Linux (no cumulative counts)
    frees: int | None
    diff: int
    bytes: int
    change_bytes: int
    change_diff: int
    since_baseline: bool
    level: LeakLevel
    score: float
    slope: float  # bytes per second
    ups: int
    downs: int
    growth: float
    is_new: bool
    object_size: int | None = None
    rss: int | None = None  # processes: resident memory
    process_os: str | None = None  # processes: "linux" (Diff is open files) or "windows" (handles)
    reasons: tuple[str, ...] = ()  # the leak judge's, for this row's level
    reclaimable: bool = False  # Linux: the kernel frees this cache under memory pressure


def row_facts(model: TableModel, key: tuple[str, int]) -> RowFacts | None:
    """The facts of the row `key` in the model's sample (None: gone, or filtered out)."""
    sample = model.sample
    if sample is None or model.position_of(key) is None:
        return None
    counters = sample.counters
    row = counters.index()[key]
    changes = sample.changes(model.settings.since_baseline)
    leak = sample.leak
    alloc = counters.has_alloc_counts
    size = counters.extra.get("object_size")
    rss = counters.extra.get("rss")
    return RowFacts(
        tag=key[0],
        pool=Pool(key[1]),
        allocs=int(counters.allocs[row]) if alloc else None,
        frees=int(counters.frees[row]) if alloc else None,
        diff=int(counters.diff[row]),
        bytes=int(counters.bytes[row]),
        change_bytes=int(changes.bytes[row]),
        change_diff=int(changes.diff[row]),
        since_baseline=model.settings.since_baseline,
        level=LeakLevel(int(leak.levels[row])),
        score=float(leak.score[row]),
        slope=leak.slope_at(row),
        ups=int(leak.ups[row]),
        downs=int(leak.downs[row]),
        growth=float(leak.growth[row]),
        is_new=bool(sample.since_baseline.is_new[row]),
        object_size=int(size[row]) if size is not None else None,
        rss=int(rss[row]) if rss is not None else None,
        process_os=model.process_os,
        reasons=leak.reasons(row),
        reclaimable=bool(leak.reclaimable[row]),
    )


@dataclass(frozen=True)
class PoolTotal:
    pool: Pool
    rows: int
    bytes: int
    diff: int
    change_bytes: int
    cache_bytes: int | None = None  # slab: the memory the caches hold (free objects included)


class TableModel:
    """The rows the live table shows, in order, for the current sample and settings."""

    def __init__(self, owners: OwnerBook | None = None, settings: ViewSettings | None = None) -> None:
        self.owners = owners or OwnerBook(None)
        self.settings = settings or ViewSettings()
        self.sample: TrackedSample | None = None
        self.memory = ChangeMemory()
        # The shown rows (ascending row numbers) and, for a numeric sort, the key that orders them
        # (ascending, ties by row number). The full order is sorted only when something needs it
        # (scrolling far down, an export); the screen needs just the first rows (see head).
        self._rows: IndexArray = np.zeros(0, dtype=np.intp)
        self._key: npt.NDArray[Any] | None = None
        self._order: IndexArray | None = np.zeros(0, dtype=np.intp)
        self._head: IndexArray = np.zeros(0, dtype=np.intp)
        #: how many leading positions to keep sorted without sorting them all (the table sets it
        #: from its scroll position and height)
        self.head_size = 200
        # Caches keyed on the row set (tags), which rarely changes between samples.
        self._tags: tuple[str, ...] | None = None
        self._match_key: str | None = None
        self._match_mask: npt.NDArray[np.bool_] | None = None
        self._tag_rank: npt.NDArray[np.intp] | None = None
        self._last_row: dict[tuple[str, int], int] = {}
        #: the extra column's key and values per row (see EXTRA_SOURCES), None where there is none
        self.extra_column: str | None = None
        self.extra_values: npt.NDArray[np.int64] | None = None

    # --- inputs -------------------------------------------------------------------------------

    def apply(self, sample: TrackedSample) -> None:
        counters = sample.counters
        if self._tags is None or (self._tags is not counters.tags and self._tags != counters.tags):
            self._tags = counters.tags
            self._match_key = None
            self._tag_rank = None
        self.sample = sample
        self.memory.update(sample)
        self.extra_column, self.extra_values = extra_column(counters)
        self.recompute()

    def set_sort(self, sort: str, descending: bool | None = None) -> None:
        if sort not in SORT_NAMES:
            raise ValueError(f"unknown sort {sort!r}")
        self.settings.sort = sort
        self.settings.descending = default_descending(sort) if descending is None else descending
        self.recompute()

    def set_filter(self, text: str) -> None:
        self.settings.filter = text
        self._match_key = None
        self.recompute()

    # --- derived ------------------------------------------------------------------------------

    @property
    def counters(self) -> CounterSet:
        return self.sample.counters if self.sample is not None else CounterSet.empty()

    @property
    def changes(self) -> Deltas | None:
        if self.sample is None:
            return None
        return self.sample.changes(self.settings.since_baseline)

    @property
    def has_alloc_counts(self) -> bool:
        return self.sample is None or self.counters.has_alloc_counts

    @property
    def has_session_pool(self) -> bool:
        if self.sample is None:
            return False
        windows = self.sample.snapshot.source.startswith("windows")
        return windows or Pool.SESSION in self.counters.pools_present()

    def _only(self, pool: Pool, source_says: Callable[[str], bool]) -> bool:
        """Every row is in `pool` (no rows: the source's name says so)."""
        if self.sample is None:
            return False
        counters = self.counters
        if len(counters):
            return counters.pools_present() == {pool}
        return source_says(self.sample.snapshot.source)

    @property
    def is_slab(self) -> bool:
        """Linux: one kind of pool (slab), no paged / nonpaged split."""
        return self._only(Pool.SLAB, lambda source: source.startswith("linux"))

    @property
    def is_process(self) -> bool:
        """Process rows (pooltop.processes): Tag is name[pid], Bytes private memory, Diff handles/files."""
        return self._only(Pool.PROCESS, lambda source: source.endswith("-processes"))

    @property
    def process_os(self) -> str | None:
        """For process rows: "windows" or "linux" (their Diff is handles or open files), else None."""
        if not self.is_process or self.sample is None:
            return None
        return "windows" if self.sample.snapshot.source.startswith("windows") else "linux"

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def order(self) -> IndexArray:
        """Every shown row in display order (sorted on first use after a change)."""
        if self._order is None:
            assert self._key is not None
            self._order = self._rows[np.argsort(self._key, kind="stable")]
        return self._order

    def rows_at(self, first: int, last: int) -> IndexArray:
        """The rows at display positions first..last-1."""
        if self._order is not None:
            return self._order[first:last]
        if last > len(self._head) and len(self._head) < len(self._rows):
            wanted = max(last, self.head_size)
            if wanted * 4 >= len(self._rows):
                return self.order[first:last]
            assert self._key is not None
            self._head = self._rows[stable_head(self._key, wanted)]
        return self._head[first:last]

    def row_key(self, position: int) -> tuple[str, int] | None:
        if not 0 <= position < len(self._rows):
            return None
        row = int(self.rows_at(position, position + 1)[0])
        return self.counters.tags[row], int(self.counters.pools[row])

    def position_of(self, key: tuple[str, int] | None) -> int | None:
        if key is None or self.sample is None:
            return None
        counters = self.counters
        # Rows rarely move between samples: try the last answer before building the (tag, pool)
        # index of a new sample (a dict of every row).
        row = self._last_row.get(key)
        if row is None or row >= len(counters) or counters.tags[row] != key[0] \
                or int(counters.pools[row]) != key[1]:
            row = counters.index().get(key)
            if row is None:
                return None
            self._last_row = {key: row}
        i = int(np.searchsorted(self._rows, row))
        if i >= len(self._rows) or int(self._rows[i]) != row:
            return None  # filtered out
        if self._order is None and self._key is not None:
            # Its rank without sorting: the keys before it, and the equal keys of earlier rows.
            k = self._key[i]
            return int(np.count_nonzero(self._key < k) + np.count_nonzero(self._key[:i] == k))
        hits = np.flatnonzero(self.order == row)
        return int(hits[0]) if len(hits) else None

    def level(self, row: int) -> LeakLevel:
        if self.sample is None or row >= len(self.sample.leak.levels):
            return LeakLevel.STABLE
        return LeakLevel(int(self.sample.leak.levels[row]))

    def recompute(self) -> None:
        self._head = np.zeros(0, dtype=np.intp)
        if self.sample is None:
            self._rows = np.zeros(0, dtype=np.intp)
            self._key, self._order = None, self._rows
            return
        self._rows = self._selected_rows()
        self._key = self._sort_key(self._rows)
        self._order = None if self._key is not None else self._sorted(self._rows)

    def _pool_mask(self, counters: CounterSet) -> npt.NDArray[np.bool_] | None:
        s = self.settings
        if self.is_process:
            return None  # one kind of row: the pool choice is the kernel view's
        if s.session_only:
            return np.asarray(counters.pools == Pool.SESSION)
        if s.pools is PoolMode.BOTH:
            return None
        want = Pool.NONPAGED if s.pools is PoolMode.NONPAGED else Pool.PAGED
        return np.asarray(counters.pools == want)

    def _selected_rows(self) -> IndexArray:
        counters = self.counters
        mask = self._pool_mask(counters)
        match = self._text_mask(counters)
        if match is not None:
            mask = match if mask is None else mask & match
        if mask is None:
            return np.arange(len(counters), dtype=np.intp)
        return np.flatnonzero(mask)

    def _text_mask(self, counters: CounterSet) -> npt.NDArray[np.bool_] | None:
        pattern = filter_pattern(self.settings.filter)
        if pattern is None:
            return None
        key = self.settings.filter
        if self._match_key == key and self._match_mask is not None and len(self._match_mask) == len(counters):
            return self._match_mask
        aliases = self.sample.snapshot.aliases if self.sample is not None else {}
        book = self.owners
        match = pattern.match

        def hit(i: int) -> bool:
            tag = counters.tags[i]
            if match(tag):
                return True
            for alias in aliases.get(tag, ()):
                if match(alias):
                    return True
            for cand in book.candidates(tag, int(counters.pools[i])):
                if match(cand.owner) or match(cand.description):
                    return True
            return False

        mask = np.fromiter((hit(i) for i in range(len(counters))), dtype=np.bool_, count=len(counters))
        self._match_key = key
        self._match_mask = mask
        return mask

    def _sort_key(self, rows: IndexArray) -> npt.NDArray[Any] | None:
        """For a numeric sort: a key whose stable ascending order is the display order (ties keep
        row order, as a stable sort of the column would). None: sort with _sorted()."""
        s = self.settings
        counters = self.counters
        if not len(rows):
            return None
        if s.sort == "tag":
            if self._tag_rank is None:
                rank = np.empty(len(counters), dtype=np.intp)
                by_tag = sorted(range(len(counters)), key=counters.tags.__getitem__)
                rank[np.asarray(by_tag, dtype=np.intp)] = np.arange(len(counters), dtype=np.intp)
                self._tag_rank = rank
            values: npt.NDArray[Any] = self._tag_rank[rows]
        elif s.sort == "pool":
            values = counters.pools[rows].astype(np.int64)
        elif s.sort in EXTRA_SOURCES:
            if self.extra_column != s.sort or self.extra_values is None:
                values = np.zeros(len(rows), dtype=np.int64)
            else:
                values = self.extra_values[rows]
        elif s.sort in SORT_KEYS:
            column, is_change = SORT_KEYS[s.sort]
            if is_change:
                changes = self.changes
                assert changes is not None
                values = getattr(changes, column)[rows]
            elif column == "per_alloc":
                values = counters.per_alloc()[rows]
            else:
                values = getattr(counters, column)[rows]
        else:
            return None
        if values.dtype.kind not in "iuf":
            return None
        return -values if s.descending else values

    def _sorted(self, rows: IndexArray) -> IndexArray:
        """The display order of a sort without a numeric key (leak level, owner)."""
        s = self.settings
        counters = self.counters
        if s.sort == "leak":
            assert self.sample is not None
            leak = self.sample.leak
            # Most serious first, then by score, then by growth.
            key = np.lexsort((leak.growth[rows], leak.score[rows], leak.levels[rows].astype(np.int64)))
            return rows[key[::-1]] if s.descending else rows[key]
        if s.sort == "owner":
            book = self.owners
            texts = [book.text(counters.tags[i], int(counters.pools[i])).lower() for i in rows.tolist()]
            order = sorted(range(len(texts)), key=texts.__getitem__, reverse=s.descending)
            return rows[np.asarray(order, dtype=np.intp)]
        return sort_rows(counters, s.sort, s.descending, self.changes, rows)

    def totals(self) -> list[PoolTotal]:
        """Sums over the shown rows, per pool."""
        if self.sample is None or not len(self._rows):
            return []
        counters = self.counters
        changes = self.changes
        rows = self._rows
        pools = counters.pools[rows]
        out: list[PoolTotal] = []
        for pool in Pool:
            sel = rows[pools == pool]
            if not len(sel):
                continue
            out.append(
                PoolTotal(
                    pool,
                    len(sel),
                    int(counters.bytes[sel].sum()),
                    int(counters.diff[sel].sum()),
                    int(changes.bytes[sel].sum()) if changes is not None else 0,
                    int(self.extra_values[sel].sum())
                    if self.extra_column == "cache" and self.extra_values is not None else None,
                )
            )
        return out

    def leak_counts(self) -> dict[LeakLevel, int]:
        if self.sample is None:
            return {}
        counts = np.bincount(self.sample.leak.levels.astype(np.int64), minlength=len(LeakLevel))
        return {level: int(counts[level]) for level in LeakLevel if level is not LeakLevel.STABLE}
