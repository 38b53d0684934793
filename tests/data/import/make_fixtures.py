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
