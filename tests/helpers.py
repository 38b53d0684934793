"""Shared test helpers: scripted snapshots and skip markers (import as `from helpers import ...`)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence

import pytest

from pooltop.model import CounterSet, HostInfo, Snapshot, Totals

DATA = os.path.join(os.path.dirname(__file__), "data")

HOST = HostInfo(name="testhost", os="Windows", os_version="10.0.20348", arch="AMD64", uptime_s=1000.0)
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def make_snapshot(
    rows: Sequence[tuple[str, int, int, int, int]],
    t_s: float = 0.0,
    diff: Sequence[int] | None = None,
    counter_bits: int = 32,
    source: str = "test",
) -> Snapshot:
    """rows: (tag, pool, allocs, frees, bytes); diff defaults to allocs - frees."""
    tags = [r[0] for r in rows]
    pools = [r[1] for r in rows]
    allocs = [r[2] for r in rows]
    frees = [r[3] for r in rows]
    bytes_ = [r[4] for r in rows]
    d = list(diff) if diff is not None else [a - f for a, f in zip(allocs, frees, strict=True)]
    return Snapshot(
        source=source,
        taken_at=T0 + dt.timedelta(seconds=t_s),
        monotonic_ns=int(t_s * 1e9),
        host=HOST,
        totals=Totals(paged_pool=1 << 20, nonpaged_pool=1 << 19),
        counters=CounterSet.build(tags, pools, allocs, frees, d, bytes_, counter_bits=counter_bits),
    )


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")
needs_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="reading /proc/slabinfo needs root (CI runs as root)",
)
