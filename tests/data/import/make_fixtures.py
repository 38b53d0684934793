"""Writes the import fixtures beside this script: `python tests/data/import/make_fixtures.py`.

Every file is made up here, row by row, in the layouts Microsoft documents for `poolmon /n`
(Windows Driver Kit: "PoolMon Display", "PoolMon Examples") and WinDbg `!poolused` (Debugging
Tools for Windows: "!poolused", flags 0x1 verbose, 0x2 / 0x4 sort by nonpaged / paged use, 0x8
session pool). Tags, counts and descriptions are invented; nothing comes from a real machine.
The expected values the tests check are in EXPECTED below, so the tests and the files cannot
drift apart.
"""

from __future__ import annotations

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# tag, nonpaged (allocs, frees, bytes), paged (allocs, frees, bytes), description
TAGS: list[tuple[str, tuple[int, int, int], tuple[int, int, int], str]] = [
    ("AfdB", (120_000, 119_000, 1_280_000), (0, 0, 0), "AFD buffers , Binary: afd.sys"),
    ("Io  ", (9_000_000, 8_999_800, 409_600), (40, 39, 128), "general IO allocations , Binary: nt!io"),
    ("Dh 1", (0, 0, 0), (24, 20, 4_096), "UNKNOWN pooltag 'Dh 1', please update pooltag.txt"),
    ("Lk1x", (4_294_967_200, 4_294_000_000, 123_456_789), (0, 0, 0), "Leaky driver , Binary: leaky.sys"),
    ("ohci", (3, 2, 136), (7, 7, 0), "1394 OHCI host controller driver"),  # description starts with digits
    ("Gcac", (0, 0, 0), (4_722, 4_666, 305_400), "Gdi glyph cache"),
    ("Ntf0", (2, 0, 1_048_576), (1_579_279, 1_579_269, 640), "0-byte padding test , Binary: ntfs.sys"),
    # a tag with a byte outside ASCII
    ("X\xe9yz", (5, 1, 640), (0, 0, 0), "UNKNOWN pooltag 'X\xe9yz', please update pooltag.txt"),
]


def outstanding(c: tuple[int, int, int]) -> int:
    return c[0] - c[1]


# --- poolmon /n ----------------------------------------------------------------------------------

POOLMON_HEAD = (
    " Memory: 16645016K Avail: 9834292K  PageFlts:  4410   InRam Krnl: 10240K P:204800K\n"
    " Commit:12582912K Limit:19136512K Peak:13631488K            Pool N:524288K P:786432K\n"
)


def poolmon_rows(changes: bool, driver: bool, session: bool = False) -> str:
    lines = []
    for tag, np_, pg, desc in TAGS:
        for kind, c in (("Nonp ", np_), ("Paged", pg)):
            if c == (0, 0, 0):
                continue
            if session:
                kind = "Paged"
            diff = outstanding(c)
            per = c[2] // diff if diff else 0
            if changes:
                row = (f" {tag} {kind} {c[0]:>10} (   0) {c[1]:>10} (   0) {diff:>8} {c[2]:>10} (     0) "
                       f"{per:>7}")
            else:
                row = f" {tag} {kind} {c[0]:>10} {c[1]:>10} {diff:>8} {c[2]:>10} {per:>7}"
            if driver:
                row += f" [{desc.split(' , ')[0]}]"
            lines.append(row)
    return "\n".join(lines) + "\n"


def poolmon_system() -> str:
    header = " Tag  Type     Allocs      Frees     Diff      Bytes  Per Alloc  Mapped_Driver\n"
    return POOLMON_HEAD + " System pool information\n" + header + "\n" + poolmon_rows(False, True)


def poolmon_live_display() -> str:
    header = " Tag  Type     Allocs            Frees            Diff   Bytes           Per Alloc\n"
    return (POOLMON_HEAD + " System pool information\n" + header + "\n" + poolmon_rows(True, False)
            + " this line is not a row\n")


def poolmon_session() -> str:
    header = " Tag  Type     Allocs      Frees     Diff      Bytes  Per Alloc\n"
    return POOLMON_HEAD + " Session 2 pool information\n" + header + "\n" + poolmon_rows(False, False, True)


def poolmon_two_tables() -> str:
    first = poolmon_system()
    grown = poolmon_system().replace("  123456789 ", "  133456789 ")
    return first + "\n" + grown


# --- poolmon screens as people copy them (issue 16) ----------------------------------------------
# Invented rows in the shapes users paste: the live console screen of today's x64 poolmon, a copy
# whose whitespace became tabs, and an older layout. Written from the shapes' descriptions alone.

# tag as shown, type, allocs, change, frees, change, bytes, change, Mapped_Driver text (or "")
COPY_ROWS: list[tuple[str, str, int, int, int, int, int, int, str]] = [
    ("AfdB", "Nonp", 1_204_311, 12, 1_203_998, 10, 2_731_520, 1_024, "[afd.sys - AFD objects]"),
    ("Io", "Nonp", 98_765_432, 0, 98_760_000, 0, 1_040_384, 0, "[nt!io - general IO]"),  # 2 characters
    ("Irp", "Nonp", 5_500_000, 30, 5_499_800, 41, 102_400, -5_632, "[nt!io - IO request packets]"),  # 3
    ("Dh 1", "Paged", 24, 0, 20, 0, 4_096, 0, "[dxgkrnl.sys - DirectDraw heap]"),  # a space inside
    ("Lk1x", "Nonp", 4_294_967_200, 100, 4_294_000_000, 0, 123_456_789, 12_800, "Unknown Driver"),
    ("Toke", "Paged", 3_456_789, 2, 3_400_000, 3, 56_789_012, -1_100, "[nt!se - Token objects]"),
    ("CM31", "Paged", 29_447, 0, 11_474, 0, 116_391_936, 0, "[nt!cm - Configuration Manager]"),
    ("Vi54", "Nonp", 1, 0, 0, 0, 64, 0, "Unknown Driver"),
]
# The header figures of those copies, in KiB: Memory, Avail, Commit, Limit, Peak, Pool N, Pool P
COPY_TOTALS = (33_423_900, 21_458_720, 15_112_220, 38_142_492, 16_772_000, 612_044, 530_548)
COPY_HEAD = (
    " Memory:{0}K Avail:{1}K  PageFlts:   117   InRam Krnl:12640K P:512308K\n"
    " Commit:{2}K Limit:{3}K Peak:{4}K            Pool N:{5}K P:{6}K\n"
).format(*COPY_TOTALS)


def _copy_numbers(r: tuple[str, str, int, int, int, int, int, int, str]) -> tuple[int, int, int, int]:
    """(diff, dDiff, per alloc) of a copy row."""
    diff = r[2] - r[4]
    return diff, r[3] - r[5], r[6] // diff if diff else 0, r[7]


def poolmon_x64_console() -> str:
    """The console screen: rows from column 1, Mapped_Driver cut at the screen edge (120 columns)
    so its `[` has no `]`, and a blank line after the title and after the column titles."""
    lines = [
        COPY_HEAD.rstrip("\n"),
        " System pool information",
        "",
        " Tag  Type     Allocs            Frees            Diff   Bytes       Per Alloc  Mapped_Driver",
        "",
    ]
    for r in COPY_ROWS:
        tag, kind, allocs, d_allocs, frees, d_frees, bytes_, d_bytes, driver = r
        diff, d_diff, per, _ = _copy_numbers(r)
        row = (f" {tag:<4} {kind:<5}{allocs:>11} ({d_allocs:>4}) {frees:>10} ({d_frees:>4}) {diff:>8} "
               f"{bytes_:>9} ({d_bytes:>6}) {per:>6}  {driver}")
        lines.append(row[:104] + " " if len(row) > 104 else row)  # cut at the edge: ends in a space
    return "\n".join(lines) + "\n"


def poolmon_tab_copy() -> str:
    """A copy whose whitespace became tabs: fields joined by one tab, change values glued to the
    number before them, a command prompt line before and a `[snip]` line after."""
    head = re.sub(r"(?m)^ +", "", re.sub(r"(?<=\S) +", "\t", COPY_HEAD))
    lines = ["C:\\Users\\admin>poolmon.exe -b", "", head.rstrip("\n"), "System\tpool\tinformation",
             "Tag\tType\tAllocs\tFrees\tDiff\tBytes\tPer\tAlloc\tMapped_Driver"]
    for r in COPY_ROWS:
        tag, kind, allocs, d_allocs, frees, d_frees, bytes_, d_bytes, driver = r
        diff, _, per, _ = _copy_numbers(r)
        lines.append("\t".join([tag, kind, f"{allocs}( {d_allocs})", f"{frees}( {d_frees})", str(diff),
                                f"{bytes_}( {d_bytes})", str(per), driver]))
    lines += ["[snip]", "", "C:\\Users\\admin>"]
    return "\n".join(lines) + "\n"


def poolmon_old_layout() -> str:
    """An older layout: rows from column 0, change values padded inside the parentheses, and
    numbers too wide for their field set off from the next by a single space."""
    lines = [
        COPY_HEAD.rstrip("\n"),
        "Tag  Type    Allocs           Frees         Diff     Bytes          Per Alloc",
    ]
    for r in COPY_ROWS:
        tag, kind, allocs, d_allocs, frees, d_frees, bytes_, d_bytes, driver = r
        diff, _, per, _ = _copy_numbers(r)
        lines.append(f"{tag:<4} {kind:<5} {allocs:>8} ({d_allocs:>5}) {frees:>8} ({d_frees:>5}) {diff:>6} "
                     f"{bytes_:>8} ({d_bytes:>6}) {per:>5} {driver}".rstrip())
    return "\n".join(lines) + "\n"


# --- WinDbg !poolused -----------------------------------------------------------------------------


def poolused_default(flags: int, order: str) -> str:
    sorting = {"tag": "Tag", "nonpaged": "NonPaged Pool Consumed", "paged": "Paged Pool Consumed"}[order]
    rows = list(TAGS)
    if order == "nonpaged":
        rows.sort(key=lambda r: -r[1][2])
    elif order == "paged":
        rows.sort(key=lambda r: -r[2][2])
    command = f"0: kd> !poolused {flags:x}" if flags else "0: kd> !poolused"
    out = [
        command,
        "....",
        f"   Sorting by  {sorting}",
        "",
        "  Pool Used:",
        "            NonPaged            Paged",
        " Tag    Allocs     Used    Allocs     Used",
    ]
    for tag, np_, pg, desc in rows:
        # " %8d %8d  %8d %8d": fixed separators, so a number too wide for its field pushes the rest right
        out.append(f" {tag} {outstanding(np_):>8} {np_[2]:>8}  {outstanding(pg):>8} {pg[2]:>8}{desc}")
    total_np = sum(outstanding(r[1]) for r in TAGS), sum(r[1][2] for r in TAGS)
    total_pg = sum(outstanding(r[2]) for r in TAGS), sum(r[2][2] for r in TAGS)
    out.append(f" TOTAL {total_np[0]:>11} {total_np[1]:>9} {total_pg[0]:>9} {total_pg[1]:>8}")
    return "\n".join(out) + "\n"


def poolused_verbose(flags: int) -> str:
    out = [
        f"1: kd> !poolused {flags:x}",
        "   Sorting by  Tag",
        "",
        "  Pool Used:",
        "                            NonPaged                                            Paged",
        " Tag       Allocs      Frees       Diff       Used       Allocs      Frees       Diff       Used",
    ]
    for tag, np_, pg, desc in TAGS:
        out.append(
            f" {tag} {np_[0]:>10} {np_[1]:>10} {outstanding(np_):>10} {np_[2]:>10}"
            f"   {pg[0]:>10} {pg[1]:>10} {outstanding(pg):>10} {pg[2]:>10}{desc}"
        )
    return "\n".join(out) + "\n"


def poolused_session() -> str:
    # Session pool (bit 3) of the current session, after `!session -s 1`.
    text = poolused_default(0x8, "tag")
    return "kd> !session -s 1\nSessions on machine: 2\nUsing session 1\n" + text


FILES = {
    "poolmon-system.log": poolmon_system,
    "poolmon-live-display.txt": poolmon_live_display,
    "poolmon-session.log": poolmon_session,
    "poolmon-two-tables.log": poolmon_two_tables,
    "poolmon-x64-console.txt": poolmon_x64_console,
    "poolmon-tab-copy.txt": poolmon_tab_copy,
    "poolmon-old-layout.txt": poolmon_old_layout,
    "poolused-default.txt": lambda: poolused_default(0, "tag"),
    "poolused-verbose.txt": lambda: poolused_verbose(1),
    "poolused-nonpaged-sorted.txt": lambda: poolused_default(2, "nonpaged"),
    "poolused-paged-sorted.txt": lambda: poolused_default(4, "paged"),
    "poolused-session.txt": poolused_session,
    "poolused-verbose-nonpaged-utf16.txt": lambda: poolused_verbose(3),
}


def main() -> None:
    for name, make in FILES.items():
        text = make()
        path = os.path.join(HERE, name)
        if name.endswith("utf16.txt"):
            # WinDbg `.logopen /u` writes UTF-16 with a byte order mark and CRLF line ends.
            data = "\ufeff".encode("utf-16-le") + text.replace("\n", "\r\n").encode("utf-16-le")
        else:
            data = text.encode("latin-1")
        with open(path, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
