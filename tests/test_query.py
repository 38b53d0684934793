"""Sorting: the head of an order (what a screen or a top-N shows) is the head of the full order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.model import CounterSet, Pool
from pooltop.query import SORT_KEYS, head_rows, sort_rows, stable_head
from pooltop.tracking import compute_deltas


def counters(values: list[tuple[int, int, int]], salt: int = 0) -> CounterSet:
    n = len(values)
    allocs = np.array([a for a, _, _ in values], dtype=np.int64)
    frees = np.array([f for _, f, _ in values], dtype=np.int64)
    used = np.array([u for _, _, u in values], dtype=np.int64)
    return CounterSet.build([f"T{i:03d}" for i in range(n)], np.full(n, Pool.PAGED, dtype=np.uint8),
                            allocs + salt, frees, allocs + salt - frees, used * (salt + 1))


# few distinct values, so ties are everywhere: ties must come out in row order, as a stable sort
rows_strategy = st.lists(st.tuples(*[st.integers(0, 4)] * 3), min_size=1, max_size=120)


@given(rows_strategy, st.integers(0, 3), st.integers(1, 40), st.sampled_from(sorted(SORT_KEYS)),
       st.sampled_from([None, True, False]), st.booleans())
@settings(max_examples=300, deadline=None)
def test_head_rows_is_the_head_of_sort_rows(values: list[tuple[int, int, int]], salt: int, count: int,
                                            key: str, descending: bool | None, subset: bool) -> None:
    before, after = counters(values), counters(values, salt)
    deltas = compute_deltas(before, after, 1.0)
    rows = np.arange(0, len(after), 2) if subset else None
    full = sort_rows(after, key, descending, deltas, rows)
    assert head_rows(after, key, count, descending, deltas, rows).tolist() == full[:count].tolist()


def test_head_rows_of_a_large_table_takes_the_partial_path() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    used = rng.integers(0, 50, n)  # many ties
    c = CounterSet.build([f"T{i:04d}" for i in range(n)], np.full(n, Pool.NONPAGED, dtype=np.uint8),
                         used, np.zeros(n, dtype=np.int64), used, used)
    for key in ("bytes", "diff", "peralloc"):
        for descending in (None, False):
            assert (head_rows(c, key, 60, descending).tolist()
                    == sort_rows(c, key, descending)[:60].tolist())


def test_stable_head_places_nans_as_a_full_sort_does() -> None:
    key = np.array([3.0, np.nan, 1.0, 1.0, np.nan, 0.5, 2.0, 1.0])
    for count in range(0, len(key) + 1):
        assert stable_head(key, count).tolist() == np.argsort(key, kind="stable")[:count].tolist()


def test_head_rows_needs_two_samples_for_a_change_sort() -> None:
    c = counters([(1, 0, 1)] * 10)
    with pytest.raises(ValueError, match="needs two samples"):
        head_rows(c, "dbytes", 1)
