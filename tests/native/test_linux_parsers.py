from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput
from pooltop.model import Pool
from pooltop.native.linux import (
    LinuxSource,
    meminfo_totals,
    parse_meminfo,
    parse_slabinfo,
    read_slub_aliases,
    slab_counters,
)

HEADER = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
)


def slab_line(name: str, active: int, num: int, size: int, per: int, pages: int, slabs: int) -> str:
    # Independent of the parser: the kernel's own layout (mm/slab_common.c prints these columns).
    return (f"{name:<17} {active:6d} {num:6d} {size:6d} {per:4d} {pages:4d} : tunables {0:4d} {0:4d} {0:4d}"
            f" : slabdata {slabs:6d} {slabs:6d} {0:6d}\n")


ROWS = [
    ("filp", 357, 378, 192, 21, 1, 18),
    ("dentry", 9030, 9030, 192, 21, 1, 430),
    ("kmalloc-1k", 598, 624, 1024, 16, 4, 39),
    ("task_struct", 120, 130, 7872, 4, 8, 33),
]


def test_parse_slabinfo_reads_every_column() -> None:
    text = HEADER + "".join(slab_line(*r) for r in ROWS)
    table = parse_slabinfo(text)
    assert table.names == tuple(r[0] for r in ROWS)
    assert table.active_objs.tolist() == [r[1] for r in ROWS]
    assert table.num_objs.tolist() == [r[2] for r in ROWS]
    assert table.objsize.tolist() == [r[3] for r in ROWS]
    assert table.pagesperslab.tolist() == [r[5] for r in ROWS]
    assert table.num_slabs.tolist() == [r[6] for r in ROWS]
    # bytes and str give the same answer
    assert parse_slabinfo(text.encode()) == table


def test_slab_counters_map_onto_the_pool_model() -> None:
    c = slab_counters(parse_slabinfo(HEADER + "".join(slab_line(*r) for r in ROWS)))
    assert c.tags == tuple(r[0] for r in ROWS)
    assert set(c.pools.tolist()) == {int(Pool.SLAB)}
    assert c.diff.tolist() == [r[1] for r in ROWS]
    assert c.bytes.tolist() == [r[1] * r[3] for r in ROWS]
    assert c.extra["total_objects"].tolist() == [r[2] for r in ROWS]
    assert c.extra["slab_pages"].tolist() == [r[5] * r[6] for r in ROWS]
    assert not c.has_alloc_counts


def test_per_alloc_of_a_slab_cache_is_its_object_size_even_when_empty() -> None:
    rows = [*ROWS, ("empty-cache", 0, 0, 312, 13, 1, 0)]
    c = slab_counters(parse_slabinfo(HEADER + "".join(slab_line(*r) for r in rows)))
    assert c.per_alloc().tolist() == [float(r[3]) for r in rows]


def test_empty_cache_list_is_valid() -> None:
    assert parse_slabinfo(HEADER).names == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("slabinfo - version: 1.1\n", "version 1.1 is not supported"),
        ("slabinfo - version: 2.0\n", "version 2.0"),
        ("hello world\n", "not slabinfo"),
        (HEADER + "filp 1 2 3\n", "line 3 is malformed"),
        (HEADER + slab_line(*ROWS[0]).replace(" 357 ", " x57 "), "line 3 has a non-numeric field"),
        (HEADER + slab_line(*ROWS[0]) + slab_line(*ROWS[1]).replace(" : slabdata", " ; slabdata"),
         "line 4 is malformed"),
        (HEADER + slab_line(*ROWS[0]).replace(" 357 ", " -357 "), "line 3 has a negative count"),
        (HEADER + slab_line(*ROWS[0]).replace(" 357 ", " 99999999999999999999 "),
         "line 3 has a number out of range"),
    ],
)
def test_bad_slabinfo_gives_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        parse_slabinfo(text)


def test_a_cache_name_holding_cr_skips_that_row_with_a_warning() -> None:
    bad = slab_line("bad\rname", 7, 8, 64, 64, 1, 1)
    cases = ((HEADER + slab_line(*ROWS[0]) + bad + slab_line(*ROWS[1]), ROWS[:2]),
             (HEADER + slab_line(*ROWS[0]) + bad.replace("\r", " \r\t"), ROWS[:1]))
    for text, kept in cases:
        table = parse_slabinfo(text)
        assert table.names == tuple(r[0] for r in kept)
        assert table.active_objs.tolist() == [r[1] for r in kept]
        (warning,) = table.warnings
        assert warning.startswith("slabinfo line 4: cache name 'bad") and warning.endswith("left out")
        assert "\\x0d" in warning and "\r" not in warning


def test_rows_beside_a_skipped_one_keep_their_names_as_the_fast_path_reads_them() -> None:
    # a skipped row sends the whole file through the line-by-line parser: a name's padding is no part of it
    text = HEADER + " " + slab_line(*ROWS[0]) + slab_line("x\x0cy", 1, 1, 8, 1, 1, 1) + slab_line(*ROWS[1])
    table = parse_slabinfo(text)
    assert table.names == ("filp", "dentry") and len(table.warnings) == 1
    assert parse_slabinfo(HEADER + " " + slab_line(*ROWS[0]) + slab_line(*ROWS[1])).names == table.names


def test_a_line_ending_in_crlf_still_parses() -> None:
    text = HEADER + "".join(slab_line(*r).replace("\n", "\r\n") for r in ROWS)
    table = parse_slabinfo(text)
    assert table.names == tuple(r[0] for r in ROWS) and table.warnings == ()


def test_a_skipped_row_is_a_warning_of_the_snapshot(tmp_path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("Slab: 8 kB\n")
    text = HEADER + slab_line(*ROWS[0]) + slab_line("x\ry", 1, 1, 8, 1, 1, 1)
    (proc / "slabinfo").write_bytes(text.encode())
    snap = LinuxSource(str(proc), str(tmp_path / "sys")).sample()
    assert snap.counters.tags == ("filp",)
    assert len(snap.warnings) == 1 and "line 4" in snap.warnings[0]


@given(st.text(max_size=400))
@settings(max_examples=300)
def test_random_text_gives_records_or_badinput(text: str) -> None:
    try:
        table = parse_slabinfo(text)
    except BadInput as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert len(table.names) == len(table.active_objs)


real_rows = st.lists(
    st.tuples(st.from_regex(r"[a-z][a-z0-9_:-]{0,20}", fullmatch=True), *[st.integers(0, 1 << 40)] * 6),
    max_size=12,
)


@given(real_rows, st.integers(0, 4000))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_slabinfo_gives_records_or_badinput(rows: list[tuple], cut: int) -> None:
    text = HEADER + "".join(slab_line(*r) for r in rows)
    full = parse_slabinfo(text)
    assert full.names == tuple(r[0] for r in rows)
    assert full.active_objs.tolist() == [r[1] for r in rows]
    try:
        part = parse_slabinfo(text[:cut])
    except BadInput as e:
        assert str(e)
    else:
        # a cut at a line boundary leaves a prefix of the rows
        assert part.names == full.names[: len(part.names)]


def test_parse_meminfo_in_bytes() -> None:
    text = "MemTotal:  1000 kB\nSlab:   20 kB\nSUnreclaim: 5 kB\nHugePages_Total:  3\nbogus line\nX: y kB\n"
    info = parse_meminfo(text)
    assert info == {"MemTotal": 1024000, "Slab": 20480, "SUnreclaim": 5120, "HugePages_Total": 3}
    totals = meminfo_totals(info)
    assert totals.slab == 20480 and totals.slab_unreclaimable == 5120
    assert totals.memory_available is None  # pre-3.14 kernels have no MemAvailable


def test_slub_aliases_group_names_that_share_a_cache(tmp_path) -> None:
    slab = tmp_path / "kernel" / "slab"
    slab.mkdir(parents=True)
    (slab / ":A-0000040").mkdir()
    (slab / "filp").mkdir()  # a cache of its own: not a link
    for name in ("pde_opener", "ext4_system_zone", "mm_slot"):
        os.symlink(":A-0000040", slab / name)
    os.symlink(":0000064", slab / "lonely")  # alone in its group: no aliases
    aliases = read_slub_aliases(str(tmp_path))
    assert aliases["pde_opener"] == ("ext4_system_zone", "mm_slot")
    assert aliases["mm_slot"] == ("ext4_system_zone", "pde_opener")
    assert "filp" not in aliases and "lonely" not in aliases
    assert read_slub_aliases(str(tmp_path / "missing")) == {}


RECORDED = os.path.join(DATA, "linux", "vm-6.18")


def test_source_reads_a_recorded_tree() -> None:
    src = LinuxSource(os.path.join(RECORDED, "proc"), os.path.join(RECORDED, "sys"),
                      monotonic_ns=lambda: 42, hostname=lambda: "recorded")
    snap = src.sample()
    with open(os.path.join(RECORDED, "proc", "slabinfo")) as f:
        data_lines = [ln for ln in f.read().splitlines()[2:] if ln.strip()]
    assert len(snap.counters) == len(data_lines)
    filp = data_lines[[ln.split()[0] for ln in data_lines].index("filp")].split()
    row = snap.counters.tags.index("filp")
    assert int(snap.counters.diff[row]) == int(filp[1])
    assert int(snap.counters.bytes[row]) == int(filp[1]) * int(filp[3])
    assert snap.source == "linux-slab" and snap.monotonic_ns == 42
    # a copied tree describes its own machine, not the one pooltop runs on
    with open(os.path.join(RECORDED, "proc", "sys", "kernel", "osrelease")) as f:
        assert snap.host.os_version == f.read().strip()
    with open(os.path.join(RECORDED, "proc", "sys", "kernel", "hostname")) as f:
        assert snap.host.name == f.read().strip()
    assert snap.totals.slab and snap.totals.slab_unreclaimable and snap.totals.commit_limit
    # a merged cache carries the names it shares its cache with
    assert snap.aliases, "the recorded tree has merged caches"
    some, others = next(iter(snap.aliases.items()))
    for other in others:
        assert some in snap.aliases[other]
    assert snap.warnings == ()


def test_unreadable_slabinfo_degrades_to_totals(tmp_path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("Slab: 8 kB\nSUnreclaim: 4 kB\n")
    snap = LinuxSource(str(proc), str(tmp_path / "sys")).sample()
    assert len(snap.counters) == 0
    assert snap.totals.slab == 8192
    assert len(snap.warnings) == 1 and "does not exist" in snap.warnings[0]
    # slab caches never have alloc counts, even when none could be read (JSON's "alloc_counts")
    assert not snap.counters.has_alloc_counts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the real /proc/slabinfo")
def test_real_non_root_user_gets_a_one_line_warning_and_totals() -> None:
    """/proc/slabinfo is root-only: as an ordinary user pooltop says so once and still shows totals."""
    cmd = [sys.executable, "-m", "pooltop", "snapshot", "--format", "json"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to drop root for this test")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        probe = subprocess.run([*cmd[:4], sys.executable, "-c", "import pooltop"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("this Python or pooltop is not readable by user nobody")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "needs root" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["counters"] == [] and doc["totals"]["slab"] > 0 and doc["warnings"]
    assert doc["alloc_counts"] is False


def test_permission_denied_path_with_a_fake_reader(tmp_path, monkeypatch) -> None:
    # The same path as above, taken even as root: the reader raises what open() raises for a user.
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("Slab: 8 kB\nMemAvailable: 16 kB\n")
    src = LinuxSource(str(proc), str(tmp_path))
    real_open = open

    def fake_open(path, *a, **k):  # type: ignore[no-untyped-def]
        if str(path).endswith("slabinfo"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    snap = src.sample()
    assert snap.warnings == (
        "reading /proc/slabinfo needs root (run pooltop with sudo); showing system totals only",
    )
    assert snap.totals.memory_available == 16384
