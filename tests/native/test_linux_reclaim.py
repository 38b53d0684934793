"""What the leak judge needs from Linux: which slab caches are reclaimable (reclaim_account) and the
memory pressure stall total, read from copied /proc and /sys trees built here."""

from __future__ import annotations

import os

from pooltop.native.linux import LinuxSource, parse_memory_pressure, read_reclaimable

SLABINFO = """slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> \
<batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
dentry             1000   1050    192   21    1 : tunables    0    0    0 : slabdata     50     50      0
filp                800    832    256   16    1 : tunables    0    0    0 : slabdata     52     52      0
kmalloc-rcl-64      100    128     64   64    1 : tunables    0    0    0 : slabdata      2      2      0
"""
PRESSURE = ("some avg10=0.12 avg60=0.05 avg300=0.01 total=123456\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=4567\n")


def slab_tree(root: str) -> None:
    """/sys/kernel/slab as the kernel lays it out: a directory per cache, merged names as links."""
    base = os.path.join(root, "sys", "kernel", "slab")
    for name, flag in ((":a-0000192", "1"), ("filp", "0"), ("kmalloc-rcl-64", "0")):
        os.makedirs(os.path.join(base, name))
        with open(os.path.join(base, name, "reclaim_account"), "w") as f:
            f.write(flag + "\n")
    os.symlink(":a-0000192", os.path.join(base, "dentry"))
    os.makedirs(os.path.join(root, "proc", "pressure"))
    with open(os.path.join(root, "proc", "slabinfo"), "w") as f:
        f.write(SLABINFO)
    with open(os.path.join(root, "proc", "meminfo"), "w") as f:
        f.write("MemAvailable: 1000 kB\n")
    with open(os.path.join(root, "proc", "pressure", "memory"), "w") as f:
        f.write(PRESSURE)


def test_reclaimable_names_come_from_reclaim_account(tmp_path) -> None:  # type: ignore[no-untyped-def]
    slab_tree(str(tmp_path))
    assert read_reclaimable(str(tmp_path / "sys")) == {":a-0000192", "dentry"}
    assert read_reclaimable(str(tmp_path / "missing")) == frozenset()


def test_a_merged_cache_is_reclaimable_by_its_slub_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A copied tree keeps the links but not the directories they name: the id still says it.
    base = tmp_path / "sys" / "kernel" / "slab"
    base.mkdir(parents=True)
    for name, target in (("dentry", ":a-0000192"), ("inode_cache", ":aA-0000640"), ("filp", ":A-0000256"),
                         ("kmalloc-64", ":0000064")):
        os.symlink(target, base / name)
    assert read_reclaimable(str(tmp_path / "sys")) == {"dentry", "inode_cache"}


def test_pressure_total_is_the_some_line() -> None:
    assert parse_memory_pressure(PRESSURE) == 123456
    assert parse_memory_pressure("full avg10=0.00 total=9\n") is None
    assert parse_memory_pressure("") is None


def test_the_source_marks_reclaimable_caches_and_reads_pressure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    slab_tree(str(tmp_path))
    snap = LinuxSource(str(tmp_path / "proc"), str(tmp_path / "sys")).sample()
    c = snap.counters
    marks = dict(zip(c.tags, c.extra["reclaimable"].tolist(), strict=True))
    assert marks == {"dentry": 1, "filp": 0, "kmalloc-rcl-64": 1}  # the kmalloc-rcl-* caches by name
    assert snap.totals.memory_stall_us == 123456 and snap.totals.memory_available == 1024 * 1000


def test_a_kernel_without_pressure_stall_information_gives_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    slab_tree(str(tmp_path))
    os.remove(tmp_path / "proc" / "pressure" / "memory")
    src = LinuxSource(str(tmp_path / "proc"), str(tmp_path / "sys"))
    assert src.sample().totals.memory_stall_us is None
    assert src.sample().totals.memory_stall_us is None  # asked once, then not again
