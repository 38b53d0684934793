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


LEAKER = """
import os, resource, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
per_step, step_s, steps = (float(x) for x in sys.argv[1:4])
budget = (hard - 64) // 2  # pipes we may hold: two fds each
fds = []
print("ready", flush=True)
for _ in range(int(steps)):
    for _ in range(int(min(per_step, budget - len(fds)))):
        fds.append(os.pipe())
    time.sleep(step_s)
sys.stdin.read()  # hold everything until the test closes our stdin
"""


class PipeLeaker:
    """A child process that opens `per_step` pipes every `step_s` seconds and holds them: a real,
    steady kernel memory leak (filp, dentry, inode and pipe buffers grow in the slab)."""

    def __init__(self, per_step: int, step_s: float, steps: int) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", LEAKER, str(per_step), str(step_s), str(steps)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError("the pipe leaker did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PipeLeaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def as_dict(snap: Snapshot) -> dict[tuple[str, int], tuple[int, int, int, int]]:
    """(tag, pool) -> (allocs, frees, diff, bytes): a snapshot's counters, order-independent."""
    c = snap.counters
    return {k: (int(c.allocs[i]), int(c.frees[i]), int(c.diff[i]), int(c.bytes[i]))
            for i, k in enumerate(c.keys())}


def churn(steps: int, seed: int = 0) -> list[Snapshot]:
    """Snapshots where counters change, appear and vanish, with 32-bit wraps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    live: dict[tuple[str, int], list[int]] = {}
    out = []
    for step in range(steps):
        for _ in range(rng.integers(0, 4)):
            live[(f"T{rng.integers(0, 40):03d}", int(rng.choice([0, 1])))] = [
                int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 40))]
        for key in list(live):
            r = rng.random()
            if r < 0.05:
                del live[key]
            elif r < 0.6:
                a, f, b = live[key]
                live[key] = [(a + int(rng.integers(0, 500))) % (1 << 32),
                             (f + int(rng.integers(0, 500))) % (1 << 32),
                             max(0, b + int(rng.integers(-5000, 5000)))]
        rows = [(t, p, a, f, b) for (t, p), (a, f, b) in live.items()]
        out.append(make_snapshot(rows, float(step)))
    return out
