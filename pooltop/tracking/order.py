"""Stable sort orders of table columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pooltop.tracking.deltas import IndexArray


def order_rows(values: Sequence[float] | npt.NDArray[np.generic], descending: bool) -> IndexArray:
    """Stable sort order of a column (ties keep the table's previous order)."""
    arr = np.asarray(values)
    if descending:
        if arr.dtype.kind in "iuf":
            out: IndexArray = np.argsort(-arr, kind="stable")
            return out
        return np.argsort(arr, kind="stable")[::-1].copy()
    return np.argsort(arr, kind="stable")
