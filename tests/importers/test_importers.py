"""poolmon /n logs and WinDbg !poolused output: every documented variant, odd lines, fuzzing."""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput
from pooltop.importers.poolmon import parse_poolmon_log
from pooltop.importers.poolused import parse_poolused
from pooltop.model import Pool, Snapshot, escape_tag
from pooltop.snapshots.readers import FileKind, detect_kind, load_snapshot, load_snapshots

IMPORT = os.path.join(DATA, "import")
NP, PG, SS = Pool.NONPAGED, Pool.PAGED, Pool.SESSION


def path(name: str) -> str:
    return os.path.join(IMPORT, name)


def read(name: str) -> str:
    with open(path(name), encoding="latin-1") as f:
        return f.read()


def rows(snap: Snapshot) -> dict[tuple[str, Pool], tuple[int, int, int, int]]:
    return {(r.tag, r.pool): (r.allocs, r.frees, r.diff, r.bytes) for r in snap.rows()}


def tag(text: str) -> str:
    return escape_tag(text.encode("latin-1"))


def cumulative(gen: ModuleType, session: bool = False) -> dict[tuple[str, Pool], tuple[int, int, int, int]]:
    """What a table with allocs and frees since boot must give, from the generator's TAGS."""
    out: dict[tuple[str, Pool], tuple[int, int, int, int]] = {}
    for name, np_, pg, _ in gen.TAGS:
        for pool, c in ((NP, np_), (PG, pg)):
            if c == (0, 0, 0):
                continue
            key = (tag(name), SS if session else pool)
            have = out.get(key, (0, 0, 0, 0))
            out[key] = (have[0] + c[0], have[1] + c[1], have[2] + c[0] - c[1], have[3] + c[2])
    return out


Rows = dict[tuple[str, Pool], tuple[int, int, int, int]]


def outstanding_only(gen: ModuleType, session: bool = False) -> Rows:
    """!poolused's default display: outstanding allocations and bytes, no counts since boot."""
    out: dict[tuple[str, Pool], tuple[int, int, int, int]] = {}
    for name, np_, pg, _ in gen.TAGS:
        for pool, c in ((NP, np_), (PG, pg)):
            diff = c[0] - c[1]
            if diff == 0 and c[2] == 0:
                continue
            key = (tag(name), SS if session else pool)
            have = out.get(key, (0, 0, 0, 0))
            out[key] = (0, 0, have[2] + diff, have[3] + c[2])
    return out


# --- poolmon ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["poolmon-system.log", "poolmon-live-display.txt"])
def test_poolmon_tables(generator: ModuleType, name: str) -> None:
    snap = load_snapshot(path(name))
    assert snap.source == "poolmon-log"
    assert rows(snap) == cumulative(generator)
    assert snap.counters.has_alloc_counts and snap.counters.counter_bits == 32
    assert snap.totals.memory_total == 16645016 * 1024
    assert snap.totals.memory_available == 9834292 * 1024
    assert snap.totals.commit == 12582912 * 1024 and snap.totals.commit_limit == 19136512 * 1024
    assert snap.totals.nonpaged_pool == 524288 * 1024 and snap.totals.paged_pool == 786432 * 1024
    # padding and odd bytes survive: "Io  " keeps its spaces, the 0xE9 byte is escaped
    assert ("Io  ", NP) in rows(snap) and ("Dh 1", PG) in rows(snap) and ("X\\xe9yz", NP) in rows(snap)
    # the file carries no time: the file's modification time stands in
    assert abs(snap.taken_at.timestamp() - os.stat(path(name)).st_mtime) < 1


def test_poolmon_unknown_lines_are_counted_not_fatal() -> None:
    snap = load_snapshot(path("poolmon-live-display.txt"))
    assert any("1 line not understood" in w and "this line is not a row" in w for w in snap.warnings)
    clean = load_snapshot(path("poolmon-system.log"))
    assert not any("not understood" in w for w in clean.warnings)


def test_poolmon_session_pool(generator: ModuleType) -> None:
    snap = load_snapshot(path("poolmon-session.log"))
    assert rows(snap) == cumulative(generator, session=True)
    assert set(snap.counters.extra["session_id"].tolist()) == {2}


def test_poolmon_file_with_two_tables() -> None:
    snaps = load_snapshots(path("poolmon-two-tables.log"))
    assert len(snaps) == 2
    assert rows(snaps[0])[("Lk1x", NP)][3] == 123_456_789
    assert rows(snaps[1])[("Lk1x", NP)][3] == 133_456_789
    assert any("2 poolmon tables" in w for w in snaps[1].warnings)
    assert rows(load_snapshot(path("poolmon-two-tables.log") + "@0")) == rows(snaps[0])
    assert rows(load_snapshot(path("poolmon-two-tables.log"))) == rows(snaps[1])  # the last by default


def test_poolmon_rows_without_header_and_leading_space_tags() -> None:
    text = "Drsd Paged       560       539       21   17472    832\n  rx Nonp  3 1 2 96 48\n"
    snap = parse_poolmon_log(text)[0]
    assert rows(snap) == {("Drsd", PG): (560, 539, 21, 17472), ("  rx", NP): (3, 1, 2, 96)}


@pytest.mark.parametrize("name", ["poolmon-x64-console.txt", "poolmon-tab-copy.txt",
                                  "poolmon-old-layout.txt"])
def test_poolmon_copies_as_people_paste_them(generator: ModuleType, name: str) -> None:
    """Issue 16 item 1: every row with its numbers exact, and the header's totals."""
    assert detect_kind(path(name)) is FileKind.POOLMON_LOG
    snap = load_snapshot(path(name))
    expected = {
        (shown.ljust(4), NP if kind == "Nonp" else PG): (allocs, frees, allocs - frees, bytes_)
        for shown, kind, allocs, _, frees, _, bytes_, _, _ in generator.COPY_ROWS
    }
    assert rows(snap) == expected
    memory, avail, commit, limit, _, pool_n, pool_p = (kib * 1024 for kib in generator.COPY_TOTALS)
    t = snap.totals
    assert (t.memory_total, t.memory_available, t.commit, t.commit_limit) == (memory, avail, commit, limit)
    assert (t.nonpaged_pool, t.paged_pool) == (pool_n, pool_p)
    assert snap.warnings == ()  # every line understood: prompts, [snip], blank lines and titles too


@pytest.mark.parametrize(("line", "expected"), [
    ("Io\tNonp\t98765432( 0)\t98760000( -3)\t5432\t1040384( -64)\t191\tUnknown Driver",
     ("Io  ", NP, (98765432, 98760000, 5432, 1040384))),
    ("Dh\t1\tPaged\t24( 0)\t20( 0)\t4\t4096( 0)\t1024", ("Dh 1", PG, (24, 20, 4, 4096))),
    ("Irp  Nonp  5500000 (  -30) 5499800 (   41)   200  102400 ( -5632)   512 [nt!io - IO req ",
     ("Irp ", NP, (5500000, 5499800, 200, 102400))),
    (" Irp  Nonp  5500000 (  -30) 5499800 (   41)   200  102400 ( -5632)   512 Unknown Driver",
     ("Irp ", NP, (5500000, 5499800, 200, 102400))),
    ("Lk1x Nonp 4294967200 4294000000 967200 123456789 127", ("Lk1x", NP, (4294967200, 4294000000, 967200,
                                                                        123456789))),
    # whitespace collapsed to single spaces (pasted through HTML): the short tag lost its padding
    ("Io Nonp 98765432 (0) 98760000 (0) 5432 1040384 (0) 191 [nt!io - general IO]",
     ("Io  ", NP, (98765432, 98760000, 5432, 1040384))),
])
def test_poolmon_row_shapes(line: str, expected: tuple[str, Pool, tuple[int, int, int, int]]) -> None:
    tag_text, pool, values = expected
    header = " Tag  Type     Allocs            Frees            Diff   Bytes       Per Alloc\n"
    for text in (line + "\n", header + line + "\n"):
        snap = parse_poolmon_log(text)[0]
        assert rows(snap) == {(tag_text, pool): values}


# --- !poolused --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["poolused-default.txt", "poolused-nonpaged-sorted.txt",
                                  "poolused-paged-sorted.txt"])
def test_poolused_summary_variants(generator: ModuleType, name: str) -> None:
    """Flags 0, 2 and 4: outstanding allocations and bytes per pool, whatever the row order."""
    assert detect_kind(path(name)) is FileKind.WINDBG_POOLUSED
    snap = load_snapshot(path(name))
    assert snap.source == "windbg-poolused"
    assert rows(snap) == outstanding_only(generator)
    assert not snap.counters.has_alloc_counts
    assert any("outstanding allocations only" in w for w in snap.warnings)
    # The descriptions glued to the last number, some starting with digits ("01394 OHCI", "6400-byte")
    assert rows(snap)[("Ntf0", PG)] == (0, 0, 10, 640)
    assert ("ohci", PG) not in rows(snap)  # 0 outstanding, 0 bytes: the tag does not use paged pool
    assert snap.totals.nonpaged_pool == sum(t[1][2] for t in generator.TAGS)
    assert snap.totals.paged_pool == sum(t[2][2] for t in generator.TAGS)


@pytest.mark.parametrize("name", ["poolused-verbose.txt", "poolused-verbose-nonpaged-utf16.txt"])
def test_poolused_verbose(generator: ModuleType, name: str) -> None:
    """Flag 1 (and 1+2, saved by `.logopen /u` as UTF-16): allocs, frees, diff and used per pool."""
    snap = load_snapshot(path(name))
    assert rows(snap) == cumulative(generator)
    assert snap.counters.has_alloc_counts and snap.counters.counter_bits == 32
    assert not any("not understood" in w for w in snap.warnings)


def test_poolused_session_pool(generator: ModuleType) -> None:
    """Flag 8 (seen in the echoed command): every row is session pool, a tag's two groups added."""
    snap = load_snapshot(path("poolused-session.txt"))
    assert rows(snap) == outstanding_only(generator, session=True)
    assert snap.totals.paged_pool is None  # TOTAL of a session is not the system's pool size
    assert any("not understood" in w for w in snap.warnings)  # the !session chatter


def test_poolused_session_override_and_rows_without_titles() -> None:
    row = " Abcd        3      300         1      100Some driver\n"
    plain = parse_poolused(row)[0]
    assert rows(plain) == {("Abcd", NP): (0, 0, 3, 300), ("Abcd", PG): (0, 0, 1, 100)}
    session = parse_poolused(row, session=True)[0]
    assert rows(session) == {("Abcd", SS): (0, 0, 4, 400)}


def test_poolused_two_runs_in_one_log() -> None:
    one = read("poolused-default.txt")
    snaps = parse_poolused(one + "\n" + one.replace(" 123456789", " 123999999"))
    assert len(snaps) == 2
    assert rows(snaps[1])[("Lk1x", NP)][3] == 123_999_999


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [parse_poolmon_log, parse_poolused])
def test_no_rows_is_one_clear_error(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match=r"no .* rows found"):
        parse("hello\nworld\n", name="notes.txt")
    with pytest.raises(BadInput, match="empty"):
        parse("")


def test_unknown_files_and_pooltop_text_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "x.txt"
    other.write_text("just some words\n")
    with pytest.raises(BadInput, match="not a file pooltop reads"):
        load_snapshot(str(other))
    table = tmp_path / "t.txt"
    table.write_text("vm  Linux 6.1 x86_64  2026-01-02 03:04:05 UTC  source linux-slab\n\nTag Type\n")
    with pytest.raises(BadInput, match="text table"):
        load_snapshot(str(table))


# --- fuzzing: any text gives snapshots or BadInput, never another exception --------------------

FIXTURE_TEXT = {n: read(n) for n in ("poolmon-system.log", "poolmon-live-display.txt", "poolused-default.txt",
                                     "poolused-verbose.txt", "poolused-session.txt")}
ROWISH = st.sampled_from([
    " Abcd Nonp 1 2 3 4 5", " Io   Paged  99999999999999999999999 1 2 3", " Tag  Type  Allocs",
    " Tag    Allocs     Used    Allocs     Used", "            NonPaged            Paged", " TOTAL 1 2 3",
    "0: kd> !poolused 9", "0: kd> !poolused zz", " Memory: 12K Avail: 3K", "Session 1 pool information",
    " Ab\x00d        1      520         0        0desc", " rx..  -3  -5  9 0x", "\x1b[31m Nonp 1 1 1 1",
])


def _check(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    try:
        snaps = parse(text)
    except BadInput as e:
        assert str(e) and "\n" not in str(e)
        return
    assert snaps
    for snap in snaps:
        assert len(snap.counters) > 0
        for t in snap.counters.tags:
            assert all(0x20 <= ord(ch) < 0x7F for ch in t), t  # nothing raw reaches a terminal


@pytest.mark.parametrize("parse", [parse_poolmon_log, parse_poolused])
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_random_text(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    _check(parse, text)


@pytest.mark.parametrize("parse", [parse_poolmon_log, parse_poolused])
@given(lines=st.lists(ROWISH | st.text(max_size=60), max_size=25))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_row_like_lines(parse, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    _check(parse, "\n".join(lines))


@pytest.mark.parametrize("parse", [parse_poolmon_log, parse_poolused])
@given(name=st.sampled_from(sorted(FIXTURE_TEXT)), cut=st.integers(0, 3000), junk=st.binary(max_size=20))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_truncated_and_damaged_files(parse, name: str, cut: int, junk: bytes) -> None:  # type: ignore[no-untyped-def]
    text = FIXTURE_TEXT[name]
    _check(parse, text[:cut] + junk.decode("latin-1") + text[cut : cut + 200])
