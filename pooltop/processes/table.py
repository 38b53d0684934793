"""Process tables: columns, field values and changes, sorting, and the rows as plain values
(shared by the exports and the live view)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pooltop.model import Column, ColumnKind, CounterSet, Snapshot
from pooltop.processes.source import UNKNOWN, ProcessOS, process_os
from pooltop.query import SORT_KEYS, order_rows, sort_rows
from pooltop.tracking import Deltas, IndexArray, align


@dataclass(frozen=True)
class ProcessColumn:
    """A process table column: model metadata plus where its value comes from.

    `field` is "tag", "bytes", "diff", an extra column name, or "pool" (paged + nonpaged);
    change columns read the same field from Deltas (bytes/diff) or from two snapshots (extras).
    """

    meta: Column
    field: str
    os: tuple[ProcessOS, ...] = ("linux", "windows")


def _col(key: str, title: str, kind: ColumnKind, help_: str, field: str, *, unit: str = "",
         change: bool = False, os_: tuple[ProcessOS, ...] = ("linux", "windows"), priority: int = 3,
         width: int = 12) -> ProcessColumn:
    return ProcessColumn(Column(key, title, kind, help_, unit=unit, is_change=change, width=width,
                                priority=priority, sort_key=key), field, os_)


PROCESS_COLUMNS: tuple[ProcessColumn, ...] = (
    _col("process", "Process", ColumnKind.TEXT, "Process name and id: name[pid]", "tag", priority=0,
         width=24),
    _col("private", "Private", ColumnKind.BYTES,
         "Private memory: USS on Linux (RSS - shared where not readable), private bytes on Windows",
         "bytes", unit="bytes", priority=0),
    _col("d_private", "dPrivate", ColumnKind.BYTES, "Change in private memory", "bytes", unit="bytes",
         change=True, priority=1, width=10),
    _col("paged_pool", "Paged", ColumnKind.BYTES, "Paged pool charged to the process", "paged_pool",
         unit="bytes", os_=("windows",), priority=1),
    _col("nonpaged_pool", "Nonpaged", ColumnKind.BYTES, "Nonpaged pool charged to the process",
         "nonpaged_pool", unit="bytes", os_=("windows",), priority=1),
    _col("d_pool", "dPool", ColumnKind.BYTES, "Change in paged + nonpaged pool", "pool", unit="bytes",
         change=True, os_=("windows",), priority=1, width=10),
    _col("handles", "Handles", ColumnKind.COUNT, "Open handles", "diff", unit="handles",
         os_=("windows",), priority=1, width=8),
    _col("d_handles", "dHandles", ColumnKind.COUNT, "Change in open handles", "diff", unit="handles",
         change=True, os_=("windows",), priority=2, width=8),
    _col("fds", "Files", ColumnKind.COUNT, "Open file descriptors", "diff", unit="files",
         os_=("linux",), priority=1, width=8),
    _col("d_fds", "dFiles", ColumnKind.COUNT, "Change in open file descriptors", "diff", unit="files",
         change=True, os_=("linux",), priority=2, width=8),
    _col("rss", "RSS", ColumnKind.BYTES, "Resident memory (working set on Windows)", "rss", unit="bytes",
         priority=3),
    _col("swap", "Swap", ColumnKind.BYTES, "Swapped-out memory", "swap", unit="bytes", os_=("linux",),
         priority=4),
    _col("peak_paged_pool", "PeakPaged", ColumnKind.BYTES, "Highest paged pool charge", "peak_paged_pool",
         unit="bytes", os_=("windows",), priority=5),
    _col("peak_nonpaged_pool", "PeakNonp", ColumnKind.BYTES, "Highest nonpaged pool charge",
         "peak_nonpaged_pool", unit="bytes", os_=("windows",), priority=5),
    _col("peak_private", "PeakPriv", ColumnKind.BYTES, "Highest private bytes", "peak_private",
         unit="bytes", os_=("windows",), priority=5),
)


def process_columns(os_name: ProcessOS, changes: bool) -> tuple[ProcessColumn, ...]:
    """The columns that exist for this OS (change columns only when there are changes to show)."""
    return tuple(c for c in PROCESS_COLUMNS if os_name in c.os and (changes or not c.meta.is_change))


def field_values(counters: CounterSet, field: str) -> np.ndarray:
    """A whole column of process rows: "bytes", "diff", an extra, or "pool" (paged + nonpaged)."""
    if field in ("bytes", "diff"):
        out: np.ndarray = getattr(counters, field)
        return out
    if field == "pool":
        if "paged_pool" not in counters.extra:
            return np.zeros(len(counters), dtype=np.int64)
        return counters.extra["paged_pool"] + counters.extra["nonpaged_pool"]
    col = counters.extra.get(field)
    return col if col is not None else np.full(len(counters), UNKNOWN, dtype=np.int64)


def field_changes(
    field: str, changes: Deltas, current: CounterSet, reference: CounterSet | None
) -> np.ndarray:
    """Change of a field per row of `current`: from Deltas for bytes/diff, from the reference
    snapshot for extras (new rows count from zero, as in Deltas)."""
    if field in ("bytes", "diff"):
        out: np.ndarray = getattr(changes, field)
        return out
    now = field_values(current, field)
    if reference is None:
        return np.zeros(len(current), dtype=np.int64)
    idx = align(reference, current)
    before = field_values(reference, field)
    prior = np.where(idx >= 0, before[np.maximum(idx, 0)] if len(before) else 0, 0)
    return now - prior


#: sort names for process tables -> (field, is_change). The snapshot command's names work too.
PROCESS_SORT_KEYS: dict[str, tuple[str, bool]] = {
    "name": ("tag", False),
    "pid": ("pid", False),
    "private": ("bytes", False),
    "handles": ("diff", False),
    "fds": ("diff", False),
    "rss": ("rss", False),
    "swap": ("swap", False),
    "pool": ("pool", False),
    "paged": ("paged_pool", False),
    "nonpaged": ("nonpaged_pool", False),
    "dprivate": ("bytes", True),
    "dhandles": ("diff", True),
    "dfds": ("diff", True),
    "dpool": ("pool", True),
    **{k: (col if col != "per_alloc" else "bytes", chg) for k, (col, chg) in SORT_KEYS.items()
       if k not in ("allocs", "frees", "dallocs", "dfrees", "peralloc")},
}


def sort_process_rows(
    counters: CounterSet,
    key: str,
    descending: bool | None = None,
    deltas: Deltas | None = None,
    rows: IndexArray | None = None,
    reference: CounterSet | None = None,
) -> IndexArray:
    """Row order for a process table (see PROCESS_SORT_KEYS); bytes/diff/tag sorts go through
    query.sort_rows, extras (rss, pool, ...) are sorted here the same way (stable, largest first)."""
    if key not in PROCESS_SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r} (use {', '.join(PROCESS_SORT_KEYS)})")
    field, is_change = PROCESS_SORT_KEYS[key]
    if field in ("tag", "bytes", "diff"):
        query_key = {"tag": "tag", "bytes": "bytes", "diff": "diff"}[field]
        return sort_rows(counters, ("d" + query_key) if is_change else query_key, descending, deltas, rows)
    idx = np.arange(len(counters)) if rows is None else rows
    if is_change:
        if deltas is None:
            raise ValueError(f"sorting by {key} needs two samples (use --interval)")
        values = field_changes(field, deltas, counters, reference)
    else:
        values = field_values(counters, field)
    desc = (field != "pid") if descending is None else descending
    return idx[order_rows(values[idx], desc)]


@dataclass(frozen=True)
class ProcessView:
    """Rows of a process table as plain values, in display order: what text/CSV/JSON print and
    what a UI table renders. Cells are ints (bytes, counts), str (process) or None (unknown)."""

    os: ProcessOS
    columns: tuple[ProcessColumn, ...]
    rows: tuple[int, ...]  # row indices into the snapshot, same order as cells
    cells: tuple[tuple[str | int | None, ...], ...]

    def records(self) -> Iterator[dict[str, str | int | None]]:
        keys = [c.meta.key for c in self.columns]
        for cells in self.cells:
            yield dict(zip(keys, cells, strict=True))


def process_view(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    reference: Snapshot | None = None,
) -> ProcessView:
    """The table of `snap`'s process rows (all, or `rows` in that order), with change columns when
    `changes` (and, for the pool change, the `reference` snapshot the changes are against) is given."""
    os_name = process_os(snap.source)
    c = snap.counters
    cols = process_columns(os_name, changes is not None)
    idx = list(range(len(c))) if rows is None else [int(r) for r in rows]
    columns_data: list[Sequence[Any]] = []
    for col in cols:
        if col.field == "tag":
            columns_data.append(c.tags)
        elif col.meta.is_change:
            assert changes is not None
            columns_data.append(field_changes(col.field, changes, c,
                                              reference.counters if reference else None).tolist())
        else:
            columns_data.append(field_values(c, col.field).tolist())
    cells: list[tuple[str | int | None, ...]] = []
    for i in idx:
        row: list[str | int | None] = []
        for col, data in zip(cols, columns_data, strict=True):
            v = data[i]
            unknown = col.field in ("diff", "swap") and not col.meta.is_change and v == UNKNOWN
            row.append(None if unknown else v)
        cells.append(tuple(row))
    return ProcessView(os_name, cols, tuple(idx), tuple(cells))

