"""Which counters hold reclaimable memory: the kernel gives it back under memory pressure, so its
growth alone is no leak."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pooltop.judge.trend import BoolArray

#: kmalloc caches for reclaimable allocations (__GFP_RECLAIMABLE, Linux 4.20+)
RECLAIMABLE_PREFIX = "kmalloc-rcl-"


def reclaimable_rows(tags: Sequence[str], column: Sequence[int] | np.ndarray | None = None) -> BoolArray:
    """Per row: the source's reclaimable column (Linux: /sys/kernel/slab/NAME/reclaim_account) where
    it has one, or'ed with the kmalloc-rcl-* caches, which are reclaimable by name."""
    by_name = np.fromiter((t.startswith(RECLAIMABLE_PREFIX) for t in tags), dtype=np.bool_, count=len(tags))
    if column is None:
        return by_name
    out: BoolArray = by_name | (np.asarray(column) != 0)
    return out
