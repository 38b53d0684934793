"""The text and CSV writers' bytes, pinned: the outputs the hand-written writers gave before the
columns came from model.COLUMNS (issue 13). Any change to these strings is a change of behaviour."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import make_snapshot

from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.snapshots import FORMATTERS
from pooltop.tagdb import OwnerCandidate
from pooltop.tracking import TrackedSample, Tracker

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)

def windows_pair() -> TrackedSample:
    a = make_snapshot([("Io  ", NP, 1000, 900, 4096), ("Ntf\\xe9", PG, 50, 10, 1234567),
                       ("Gone", NP, 5, 1, 64)])
    b = make_snapshot([("Io  ", NP, 1500, 1300, 8192), ("Ntf\\xe9", PG, 50, 10, 1234567),
                       ("New ", PG, 3, 0, 300)], t_s=2.5)
    tracker = Tracker()
    tracker.update(a)
    return tracker.update(b)

def owners(tag: str, pool: Pool) -> list[OwnerCandidate]:
    if tag == "Io  ":
        return [OwnerCandidate(tag, "nt!io", "general I/O", "pooltag.txt", "exact")]
    return []

def slab() -> Snapshot:
    c = CounterSet.build(["dentry", "kmalloc-64"], [3, 3], [0, 0], [0, 0], [100, 7], [19200, 448],
                         {"total_objects": [120, 64], "object_size": [192, 64]}, has_alloc_counts=False,
                         counter_bits=64)
    return Snapshot("linux-slab", dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC), 0,
                    HostInfo("box", "Linux", "6.18", "x86_64"),
                    Totals(slab=1 << 22, memory_available=1 << 30), c, warnings=("w1",))


PINNED = {
    'win_text_plain': (
        'testhost  Windows 10.0.20348 AMD64  2026-01-02 03:04:07 UTC  source test\n'
        'Paged 1.0 MiB  Nonpaged 512.0 KiB\n'
        '\n'
        'Tag     Type  Allocs Frees Diff     Bytes Per Alloc\n'
        'Io      Nonp   1,500 1,300  200     8,192        41\n'
        'Ntf\\xe9 Paged     50    10   40 1,234,567    30,864\n'
        'New     Paged      3     0    3       300       100\n'
    ),
    'win_text_full': (
        'testhost  Windows 10.0.20348 AMD64  2026-01-02 03:04:07 UTC  source test  interval 2.5s\n'
        'Paged 1.0 MiB  Nonpaged 512.0 KiB\n'
        '\n'
        'Tag     Type  Allocs dAllocs Frees dFrees Diff dDiff     Bytes dBytes Per Alloc Leak   Owner\n'
        'New     Paged      3      +3     0      0    3    +3       300   +300       100 stable\n'
        'Io      Nonp   1,500    +500 1,300   +400  200  +100     8,192 +4,096        41 stable '
        'nt!io general I/O\n'
        'Ntf\\xe9 Paged     50       0    10      0   40     0 1,234,567      0    30,864 stable\n'
        'vanished: Gone\n'
    ),
    'slab_text': (
        'box  Linux 6.18 x86_64  2026-05-06 07:08:09 UTC  source linux-slab\n'
        'Slab 4.0 MiB  Avail 1.0 GiB\n'
        'warning: w1\n'
        '\n'
        'Tag        Type Diff  Bytes Per Alloc\n'
        'dentry     Slab  100 19,200       192\n'
        'kmalloc-64 Slab    7    448        64\n'
    ),
    'slab_text_owners': (
        'box  Linux 6.18 x86_64  2026-05-06 07:08:09 UTC  source linux-slab\n'
        'Slab 4.0 MiB  Avail 1.0 GiB\n'
        'warning: w1\n'
        '\n'
        'Tag        Type Diff  Bytes Per Alloc Owner\n'
        'dentry     Slab  100 19,200       192\n'
        'kmalloc-64 Slab    7    448        64\n'
    ),
    'win_csv_plain': (
        'tag,pool,allocs,frees,diff,bytes,per_alloc,owner,owner_source,owner_confidence,description\n'
        'Io  ,nonpaged,1500,1300,200,8192,41.0,,,,\n'
        'Ntf\\xe9,paged,50,10,40,1234567,30864.2,,,,\n'
        'New ,paged,3,0,3,300,100.0,,,,\n'
    ),
    'win_csv_full': (
        'tag,pool,allocs,frees,diff,bytes,per_alloc,d_allocs,d_frees,d_diff,d_bytes,new,leak,owner,owner_source,owner_confidence,description\n'
        'New ,paged,3,0,3,300,100.0,3,0,3,300,1,stable,,,,\n'
        'Io  ,nonpaged,1500,1300,200,8192,41.0,500,400,100,4096,0,stable,'
        'nt!io,pooltag.txt,exact,general I/O\n'
        'Ntf\\xe9,paged,50,10,40,1234567,30864.2,0,0,0,0,0,stable,,,,\n'
    ),
    'slab_csv': (
        'tag,pool,allocs,frees,diff,bytes,per_alloc,total_objects,object_size,owner,owner_source,owner_confidence,description\n'
        'dentry,slab,0,0,100,19200,192.0,120,192,,,,\n'
        'kmalloc-64,slab,0,0,7,448,64.0,64,64,,,,\n'
    ),
    'slab_csv_owners': (
        'tag,pool,allocs,frees,diff,bytes,per_alloc,total_objects,object_size,owner,owner_source,owner_confidence,description\n'
        'dentry,slab,0,0,100,19200,192.0,120,192,,,,\n'
        'kmalloc-64,slab,0,0,7,448,64.0,64,64,,,,\n'
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_writer_bytes_are_pinned(name: str) -> None:
    kind, fmt, variant = [*name.split("_"), ""][:3]
    write = FORMATTERS[fmt]
    if kind == "slab":
        got = write(slab(), owners=owners if variant == "owners" else None)
    else:
        s = windows_pair()
        if variant == "full":
            got = write(s.snapshot, [2, 0, 1], changes=s.interval, owners=owners, leak=s.leak)
        else:
            got = write(s.snapshot)
    assert got == PINNED[name]
