"""Scripted sources for the live-view tests: deterministic snapshots (fixed host, times and counters).

Every row exists to exercise one behaviour:
  Leak  grows every sample (allocs outpace frees): becomes LEAK after 5 samples
  Slow  grows a little every sample: suspect (too small to be called a leak)
  Saw   saw-tooth alloc/free cycles: stays stable
  Stab  never changes
  Io    constant, owned by "io.sys" (filter by owner)
  New!  appears at sample NEW_AT
  Gone  vanishes at sample GONE_AT
  [b]   a tag that looks like markup: must render literally
  \\x01A a tag with a non-printable byte, escaped by model.escape_tag as the backends do
  Sess  (Windows) a session-pool row, for `s`
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from pooltop.errors import PooltopError, Unsupported
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals, escape_tag
from pooltop.native import BigPoolAllocation, Source
from pooltop.processes.source import ProcessReading, process_counters
from pooltop.tagdb import DriverFacts, OwnerCandidate

START = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
START_NS = 1_000_000_000_000
NEW_AT = 3
GONE_AT = 3
ODD_TAG = escape_tag(b"\x01A  ")
MARKUP_TAG = "[b] "


def _rows(i: int, windows: bool) -> list[tuple[str, Pool, int, int, int]]:
    """(tag, pool, allocs, frees, bytes) of sample i (0-based)."""
    np_pool = Pool.NONPAGED if windows else Pool.SLAB
    p_pool = Pool.PAGED if windows else Pool.SLAB
    saw_up = i % 2 == 1
    rows = [
        ("Leak", np_pool, 1000 + 100 * i, 900 + 10 * i, 256 * (100 + 90 * i)),
        ("Slow", p_pool, 500 + 2 * i, 400 + i, 1024 * (100 + i)),
        ("Saw ", p_pool, 2000 + 60 * i, 1900 + 60 * i - (20 if saw_up else 0),
         64 * (100 + (20 if saw_up else 0))),
        ("Stab", np_pool, 300, 200, 100 * 4096),
        ("Io  ", np_pool, 50, 40, 10 * 512),
        (MARKUP_TAG, p_pool, 10, 5, 5 * 32),
        (ODD_TAG, np_pool, 7, 3, 4 * 16),
    ]
    if i >= NEW_AT:
        rows.append(("New!", p_pool, 20 * (i - NEW_AT + 1), 0, 20 * (i - NEW_AT + 1) * 128))
    if i < GONE_AT:
        rows.append(("Gone", np_pool, 80, 70, 10 * 64))
    if windows:
        rows.append(("Sess", Pool.SESSION, 30, 20, 10 * 1024))
    return rows


def make_snapshot(i: int, windows: bool = True) -> Snapshot:
    rows = _rows(i, windows)
    tags = [r[0] for r in rows]
    pools = [int(r[1]) for r in rows]
    allocs = [r[2] for r in rows]
    frees = [r[3] for r in rows]
    diff = [a - f for a, f in zip(allocs, frees, strict=True)]
    byts = [r[4] for r in rows]
    if windows:
        counters = CounterSet.build(tags, pools, allocs, frees, diff, byts)
        host = HostInfo("testhost", "Windows", "10.0.22631", "AMD64", uptime_s=3 * 86400 + 3725 + i,
                        build="22631")
        totals = Totals(paged_pool=300_000_000 + 4096 * i, nonpaged_pool=200_000_000 + 8192 * i,
                        memory_total=16 << 30, memory_available=(8 << 30) - 65536 * i,
                        commit=6 << 30, commit_limit=20 << 30, swap_total=4 << 30, swap_free=3 << 30)
        source = "windows-pooltag"
        aliases: dict[str, tuple[str, ...]] = {}
    else:
        sizes = [b // max(d, 1) for b, d in zip(byts, diff, strict=True)]
        counters = CounterSet.build(tags, pools, [0] * len(tags), [0] * len(tags), diff, byts,
                                    extra={"object_size": sizes,
                                           "total_objects": [d + d // 4 + 8 for d in diff]},
                                    has_alloc_counts=False, counter_bits=64)
        host = HostInfo("testbox", "Linux", "6.8.0-test", "x86_64", uptime_s=7200 + i, build="#1 SMP")
        totals = Totals(slab=150_000_000 + 4096 * i, slab_reclaimable=100_000_000,
                        slab_unreclaimable=50_000_000 + 4096 * i, memory_total=8 << 30,
                        memory_available=(4 << 30) - 4096 * i, commit=3 << 30, commit_limit=10 << 30,
                        swap_total=2 << 30, swap_free=2 << 30)
        source = "linux-slab"
        aliases = {"Leak": ("kmalloc-256", "filp")}
    return Snapshot(
        source=source,
        taken_at=START + dt.timedelta(seconds=i),
        monotonic_ns=START_NS + i * 1_000_000_000,
        host=host,
        totals=totals,
        counters=counters,
        aliases=aliases,
    )


class ScriptedSource(Source):
    """Yields make_snapshot(0), (1), ... ; raises PooltopError at the indexes in `fail_at`."""

    def __init__(
        self, windows: bool = True, fail_at: Sequence[int] = (), warnings: tuple[str, ...] = ()
    ) -> None:
        self.windows = windows
        self.name = "windows-pooltag" if windows else "linux-slab"
        self.fail_at = set(fail_at)
        self.warnings = warnings
        self.calls = 0
        self.index = 0
        self.closed = False

    def sample(self) -> Snapshot:
        call = self.calls
        self.calls += 1
        if call in self.fail_at:
            raise PooltopError("NtQuerySystemInformation failed: STATUS_ACCESS_DENIED (scripted)")
        snap = make_snapshot(self.index, self.windows)
        self.index += 1
        if self.warnings:
            snap = Snapshot(snap.source, snap.taken_at, snap.monotonic_ns, snap.host, snap.totals,
                            snap.counters, snap.aliases, self.warnings)
        return snap

    def big_pool_allocations(self, tag: str | None = None) -> list[BigPoolAllocation]:
        if not self.windows:
            raise Unsupported(f"{self.name} has no big-pool allocation list")
        if tag == "Leak":
            return [BigPoolAllocation(0xFFFF_A000_0000_0000 + 0x10000 * k, 65536 * (k + 1), "Leak", True)
                    for k in range(3)]
        return []

    def close(self) -> None:
        self.closed = True


_OWNERS: dict[str, tuple[OwnerCandidate, ...]] = {
    "Leak": (
        OwnerCandidate("Leak", "leaky.sys", "Leaky test driver buffers", "scan", "call-site",
                       DriverFacts(r"C:\Windows\System32\drivers\leaky.sys", "1.2.3.4", "Contoso", "Leaky",
                                   True, "x64")),
        OwnerCandidate("Leak", "oldleaky.sys", "Older owner from pooltag.txt", "pooltag.txt", "wildcard",
                       pattern="Lea?"),
    ),
    "Io  ": (OwnerCandidate("Io  ", "io.sys", "general I/O allocations", "pooltag.txt", "exact"),),
    MARKUP_TAG: (OwnerCandidate(MARKUP_TAG, "[red]evil[/red]", "markup in a description [b]x[/b]",
                                "localtag.txt", "exact"),),
    "Saw ": (OwnerCandidate("Saw ", "sawtooth.sys", "cyclic buffers", "pooltag.txt", "exact"),),
}


def fake_owners(tag: str, pool: Pool) -> Sequence[OwnerCandidate]:
    return _OWNERS.get(tag, ())


# --- the verdict line: a kernel source whose slab grows, and scripted processes ---------------------

MiB = 1 << 20


class GrowingSlabSource(ScriptedSource):
    """The Linux ScriptedSource, its unreclaimable slab growing `step` bytes a sample."""

    def __init__(self, step: int = 8 * MiB) -> None:
        super().__init__(windows=False)
        self.step = step

    def sample(self) -> Snapshot:
        snap = super().sample()
        i = self.index - 1
        t = snap.totals
        totals = dataclasses.replace(t, slab=(t.slab or 0) + self.step * i,
                                     slab_unreclaimable=(t.slab_unreclaimable or 0) + self.step * i)
        return dataclasses.replace(snap, totals=totals)


class ScriptedProcesses(Source):
    """Linux processes, one sample per call on the kernel source's clock (1 s apart): `leaky[42]`
    grows `grow` bytes of private memory a sample (0: flat), the others never change.
    Raises PooltopError at the calls in `fail_at`."""

    name = "linux-processes"

    def __init__(self, grow: int = 0, fail_at: Sequence[int] = ()) -> None:
        self.grow = grow
        self.fail_at = set(fail_at)
        self.calls = 0
        self.index = 0

    def sample(self) -> Snapshot:
        call = self.calls
        self.calls += 1
        if call in self.fail_at:
            raise PooltopError("cannot list processes: scripted failure")
        i = self.index
        self.index += 1
        readings = [
            ProcessReading(1, "init", 4 * MiB, 8 * MiB, handles=40),
            ProcessReading(42, "leaky", 100 * MiB + self.grow * i, 120 * MiB + self.grow * i, handles=12),
            ProcessReading(77, "steady", 50 * MiB, 60 * MiB, handles=30),
        ]
        return Snapshot(
            source=self.name,
            taken_at=START + dt.timedelta(seconds=i),
            monotonic_ns=START_NS + i * 1_000_000_000,
            host=HostInfo("testbox", "Linux", "6.8.0-test", "x86_64", uptime_s=7200 + i),
            totals=Totals(),
            counters=process_counters(readings, "linux"),
        )

    def big_pool_allocations(self, tag: str | None = None) -> list[BigPoolAllocation]:
        raise Unsupported("processes have no big-pool allocations")

    def close(self) -> None:
        pass


class ChurnSource(Source):
    """Windows rows C000, C001, ... whose byte changes re-sort every sample: in sample i row k grows
    by 64 * ((k * 7 + i * 3) % rows) bytes, so the dBytes order is a new rotation each time."""

    name = "windows-pooltag"

    def __init__(self, rows: int = 40) -> None:
        self.rows = rows
        self.index = 0
        self.bytes = [4096 * (k + 1) for k in range(rows)]

    def sample(self) -> Snapshot:
        i = self.index
        self.index += 1
        n = self.rows
        if i:
            self.bytes = [b + 64 * ((k * 7 + i * 3) % n) for k, b in enumerate(self.bytes)]
        tags = [f"C{k:03d}" for k in range(n)]
        diff = [b // 64 for b in self.bytes]
        counters = CounterSet.build(tags, [int(Pool.NONPAGED)] * n, [d + 10 for d in diff], [10] * n,
                                    diff, self.bytes)
        return Snapshot(
            source=self.name,
            taken_at=START + dt.timedelta(seconds=i),
            monotonic_ns=START_NS + i * 1_000_000_000,
            host=HostInfo("churnhost", "Windows", "10.0.22631", "AMD64", uptime_s=600 + i),
            totals=Totals(paged_pool=300_000_000, nonpaged_pool=200_000_000),
            counters=counters,
        )

    def big_pool_allocations(self, tag: str | None = None) -> list[BigPoolAllocation]:
        return []

    def close(self) -> None:
        pass
