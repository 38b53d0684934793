"""Sort names of the live table: which column each sorts and their default direction."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pooltop.model import CounterSet
from pooltop.query import SORT_KEYS

#: table column key -> sort name (query.SORT_KEYS plus the UI-only "pool", "owner" and "leak").
COLUMN_SORT: dict[str, str] = {
    "tag": "tag",
    "pool": "pool",
    "allocs": "allocs",
    "d_allocs": "dallocs",
    "frees": "frees",
    "d_frees": "dfrees",
    "diff": "diff",
    "d_diff": "ddiff",
    "bytes": "bytes",
    "d_bytes": "dbytes",
    "per_alloc": "peralloc",
    "owner": "owner",
    "leak": "leak",
    "cache": "cache",
    "rss": "rss",
}
SORT_COLUMN: dict[str, str] = {v: k for k, v in COLUMN_SORT.items()}
SORT_NAMES: tuple[str, ...] = (*SORT_KEYS, "pool", "owner", "leak", "cache", "rss")
#: the live table's extra column (columns.EXTRA_COLUMNS) -> the CounterSet extras it is made of
EXTRA_SOURCES: dict[str, tuple[str, ...]] = {"cache": ("total_objects", "object_size"), "rss": ("rss",)}
#: the order `(` and `)` walk through the change columns
CHANGE_SORTS: tuple[str, ...] = ("dallocs", "dfrees", "ddiff", "dbytes")
CHANGE_OF: dict[str, str] = {"allocs": "dallocs", "frees": "dfrees", "diff": "ddiff", "bytes": "dbytes"}
_TEXT_SORTS = frozenset({"tag", "pool", "owner"})

def default_descending(sort: str) -> bool:
    """Numbers largest first, names A-Z."""
    return sort not in _TEXT_SORTS


def extra_column(counters: CounterSet) -> tuple[str | None, npt.NDArray[np.int64] | None]:
    """The live table's extra column for these counters and its values: a slab cache's memory
    (total objects x object size) or a process's RSS; (None, None) where the extras lack them."""
    extra = counters.extra
    for key, names in EXTRA_SOURCES.items():
        if all(name in extra for name in names):
            values = np.asarray(extra[names[0]], dtype=np.int64)
            for name in names[1:]:
                values = values * np.asarray(extra[name], dtype=np.int64)
            return key, values
    return None, None
