"""The table's columns: which fit in the terminal's width, where, and under which titles.

model.COLUMNS holds the columns every output shares; the live table adds one column a backend
has in its extras (a slab cache's memory, a process's RSS), and the processes view gives the
shared columns the names of what they hold there (Bytes is private memory, Diff open files).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

from pooltop.model import COLUMNS, Column, ColumnKind

#: columns that need cumulative alloc/free counts (absent on Linux and for processes)
ALLOC_COLUMNS = frozenset({"allocs", "d_allocs", "frees", "d_frees"})
#: the counters whose values are highlighted as they change, and their change columns
VALUE_COLUMNS = {"allocs": "allocs", "frees": "frees", "diff": "diff", "bytes": "bytes"}
CHANGE_COLUMNS = {"d_allocs": "allocs", "d_frees": "frees", "d_diff": "diff", "d_bytes": "bytes"}

#: Columns only the live table shows, from CounterSet.extra; placed after dBytes.
EXTRA_COLUMNS: dict[str, Column] = {
    # slabtop's CACHE SIZE: a half-empty cache pins more memory than its active objects use.
    "cache": Column("cache", "Cache", ColumnKind.BYTES,
                    "Memory the slab cache holds: total objects x object size, free ones included "
                    "(slabtop's CACHE SIZE; Linux)", unit="bytes", width=12, priority=2),
    "rss": Column("rss", "RSS", ColumnKind.BYTES, "Resident memory of the process (processes view)",
                  unit="bytes", width=12, priority=2),
}

#: The processes view's names for the shared columns (`P`): the rows are processes, not tags.
PROCESS_TITLES = {"tag": "Process", "bytes": "Private", "d_bytes": "dPrivate"}
PROCESS_COUNT_TITLES = {"linux": ("Files", "dFiles"), "windows": ("Handles", "dHandles")}

OWNER_MIN_WIDTH = 12
TAG_MAX_WIDTH = 28
#: processes: "name[pid]" names are long and there is no owner column to give the room to
PROCESS_TAG_MAX_WIDTH = 40
TAG_MIN_WIDTH = 16
MARKER_WIDTH = 1  # "*" for a row that is new since the baseline


@dataclass(frozen=True)
class LaidColumn:
    column: Column
    x: int
    width: int

    @property
    def right(self) -> bool:
        return self.column.kind is not ColumnKind.TEXT and self.column.kind is not ColumnKind.LEVEL


def table_columns(extra: str | None = None, process_os: str | None = None) -> list[Column]:
    """model.COLUMNS with the extra column (after dBytes) and, for processes, their titles."""
    out: list[Column] = []
    for col in COLUMNS:
        if process_os is not None:
            titles = dict(PROCESS_TITLES)
            count, change = PROCESS_COUNT_TITLES["windows" if process_os == "windows" else "linux"]
            titles.update(diff=count, d_diff=change)
            if col.key in titles:
                col = dataclasses.replace(col, title=titles[col.key])
        out.append(col)
        if col.key == "d_bytes" and extra is not None:
            out.append(EXTRA_COLUMNS[extra])
    return out


def title_fits(title: str, arrow: str, width: int) -> str:
    """A column title with its sort arrow in `width` cells: the arrow replaces the title's last
    letters rather than the title losing its meaning to an ellipsis ("Per Allo…" -> "PerAlloc▼")."""
    text = title + arrow
    if cell_len(text) <= width:
        return text
    squeezed = title.replace(" ", "") + arrow
    if cell_len(squeezed) <= width:
        return squeezed
    return set_cell_size(title.replace(" ", ""), max(width - cell_len(arrow), 0)) + arrow


def layout_columns(
    width: int,
    tag_width: int,
    alloc_counts: bool,
    single_pool: bool,
    owners: bool,
    symbols: bool,
    per_alloc: bool = True,
    extra: str | None = None,
    process_os: str | None = None,
) -> list[LaidColumn]:
    """Which columns fit in `width` cells and where: the least important (highest Column.priority)
    go first; Owner shrinks to OWNER_MIN_WIDTH before anything is dropped and takes all spare room."""
    tag_max = PROCESS_TAG_MAX_WIDTH if process_os is not None else TAG_MAX_WIDTH
    tag_width = wanted_tag = min(tag_width, tag_max)
    chosen: list[Column] = []
    for col in table_columns(extra, process_os):
        if col.key in ALLOC_COLUMNS and not alloc_counts:
            continue  # Linux: /proc/slabinfo has no cumulative counts
        if col.key == "pool" and single_pool:
            continue
        if col.key == "owner" and not owners:
            continue
        if col.key == "per_alloc" and not per_alloc:
            continue  # processes: private bytes per handle means nothing
        chosen.append(col)

    def cell_width(col: Column) -> int:
        if col.key == "tag":
            return tag_width
        if col.key == "owner":
            return OWNER_MIN_WIDTH
        return col.width + (1 if symbols and col.key in VALUE_COLUMNS else 0)

    def total(cols: list[Column]) -> int:
        return MARKER_WIDTH + sum(cell_width(c) + 1 for c in cols)

    # Drop the least important columns; before dropping an important one (priority <= 2), narrow
    # long tags (slab cache names) to TAG_MIN_WIDTH.
    while total(chosen) > width and len(chosen) > 1:
        droppable = [c for c in chosen if c.key != "tag"]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, chosen.index(c)))
        if worst.priority <= 2 and tag_width > TAG_MIN_WIDTH:
            tag_width = max(TAG_MIN_WIDTH, tag_width - (total(chosen) - width))
            continue
        chosen.remove(worst)
    spare = max(width - total(chosen), 0)
    out: list[LaidColumn] = []
    x = MARKER_WIDTH
    for col in chosen:
        w = cell_width(col)
        if col.key == "tag" and tag_width < wanted_tag:
            grow = min(spare, wanted_tag - tag_width)
            w += grow
            spare -= grow
        elif col.key == "owner":
            w += spare  # on a wide screen the owner's description is what is worth reading
            spare = 0
        out.append(LaidColumn(col, x, w))
        x += w + 1
    return _widen_numbers(out, spare)


#: how much wider a number column gets when a table without Owner leaves room (a column reads
#: alike when its numbers keep their separators: +1,548,288 beside +51,400,000, not +51.4M)
NUMBER_GROWTH = 3


def _widen_numbers(columns: list[LaidColumn], spare: int) -> list[LaidColumn]:
    numbers = [lc for lc in columns if lc.right]
    if not numbers or spare < len(numbers):
        return columns
    grow = min(NUMBER_GROWTH, spare // len(numbers))
    out: list[LaidColumn] = []
    x = MARKER_WIDTH
    for lc in columns:
        w = lc.width + (grow if lc.right else 0)
        out.append(LaidColumn(lc.column, x, w))
        x += w + 1
    return out
