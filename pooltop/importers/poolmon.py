"""Reading poolmon's snapshot files (`poolmon /n [File]`, poolsnap.log by default) into Snapshots.

Written from the documented format (Windows Driver Kit docs, "PoolMon Display", "PoolMon
Examples" and the startup command's `/n`): a header of system figures

     Memory:  260620K Avail:   96364K  PageFlts:     0   InRam Krnl: 1916K P:17856K
     Commit: 203500K Limit: 640916K Peak: 260632K            Pool N: 8332K P:27220K
     System pool information              (or "All sessions ..." / "Session 3 pool information")
     Tag  Type     Allocs     Frees      Diff   Bytes  Per Alloc  [Mapped_Driver]

then one row per tag and pool type. The snapshot file leaves out the "( n )" change columns of the
live display; rows copied from the live display (with them) are read too. A tag is four characters
with its padding ("Io  "), followed by one space and the type (Nonp / Paged).

Copies of the live screen as people paste them are read too: header fields with no space after
the colon, the Mapped_Driver column cut at the screen edge, whitespace turned into tabs (the tag's
padding lost, no space before a change value), a command prompt or `[snip]` around the table,
change values padded inside the parentheses, and numbers that overflow their field.

A file may hold several tables (one after another); each becomes one Snapshot, in file order.
poolmon prints no time: the caller passes one (the file's modification time).
"""

from __future__ import annotations

import datetime as dt
import re

from pooltop.errors import BadInput
from pooltop.importers.textfile import (
    LineTally,
    TableRows,
    bounded_int,
    build_snapshot,
    file_time,
    table_warnings,
    tag_from_text,
)
from pooltop.model import Pool, Snapshot, Totals

SOURCE = "poolmon-log"

_NUM = r"(\d{1,19})"
_CHANGE = r"(?:\s*\(\s*-?\d{1,19}\s*\))?"
#: the part of a row after the tag: " Nonp   3971107 (  0)  3971077 (  0)   30   8456 (  0)   281 [drv]"
_AFTER_TAG = re.compile(
    r"[ \t](?P<type>Nonp|Paged|Sess)\s+"
    rf"{_NUM}{_CHANGE}\s+{_NUM}{_CHANGE}\s+(-?\d{{1,19}})\s+{_NUM}{_CHANGE}"
    rf"(?:\s+{_NUM}(?=\s|$))?(?:\s+(?P<driver>\S.*?))?\s*$"
)
#: a row whose tag lost its padding (whitespace turned into tabs): the tag is what comes before the
#: type, up to four characters, its inner whitespace a space ("Dh\t1" is "Dh 1")
_LOOSE_TAG = re.compile(r"^[ \t]*(?P<tag>\S(?:[ \t]?\S){0,3}?)[ \t]+(?=(?:Nonp|Paged|Sess)\s)")
_HEADER = re.compile(r"^(?P<lead>\s*)Tag\s+Type\s+Allocs\b", re.IGNORECASE)
_MEMORY = re.compile(r"^\s*Memory:", re.IGNORECASE)
_FIGURES = re.compile(r"Commit:|Pool\s+N:", re.IGNORECASE)
_POOL_INFO = re.compile(
    r"^\s*(?:(?P<all>All\s+sessions)|Session\s+(?P<sid>\d{1,9})|System)\s+pool\s+information", re.IGNORECASE)
#: lines around a pasted table: blank, rules, "[snip]", a command prompt ("C:\\Users\\me>", "PS C:\\>")
_IGNORED = re.compile(
    r"^\s*(?:$|\.{3}|[-_=]{3,}\s*$|Totals?\b|Pool\s*Type\b|\[\s*snip\s*\]|(?:PS\s+)?[A-Za-z]:\\[^>]*>)",
    re.IGNORECASE,
)
_TYPES = {"Nonp": Pool.NONPAGED, "Paged": Pool.PAGED, "Sess": Pool.SESSION}
_KIB = {
    "memory_total": re.compile(r"Memory:\s*(\d{1,15})K", re.IGNORECASE),
    "memory_available": re.compile(r"Avail:\s*(\d{1,15})K", re.IGNORECASE),
    "commit": re.compile(r"Commit:\s*(\d{1,15})K", re.IGNORECASE),
    "commit_limit": re.compile(r"Limit:\s*(\d{1,15})K", re.IGNORECASE),
    "nonpaged_pool": re.compile(r"Pool\s+N:\s*(\d{1,15})K", re.IGNORECASE),
    "paged_pool": re.compile(r"Pool\s+N:\s*\d{1,15}K\s+P:\s*(\d{1,15})K", re.IGNORECASE),
}


class _Table:
    def __init__(self) -> None:
        self.rows = TableRows()
        self.totals: dict[str, int] = {}
        self.session: int | None = None  # None: system pools; -1: all sessions; else the session id
        self.tag_start: int | None = None  # column of "Tag" in the header, when there was one


def _parse_row(line: str, tag_start: int | None) -> tuple[str, Pool, list[int]] | None:
    """(tag text, pool type, [allocs, frees, diff, bytes]) of one row, or None."""
    starts = [tag_start] if tag_start is not None and not line[:tag_start].strip() else []
    # Without a header (or when the row is not where the header said), the tag is the four
    # characters before " Nonp"/" Paged"; the lead-in is whitespace. Trying the longest lead-in
    # first keeps a leading-space tag (" rx ") apart from indentation only where a header says so.
    lead = len(line) - len(line.lstrip())
    starts += [s for s in range(min(lead, 8), -1, -1) if s not in starts]
    for start in starts:
        m = _AFTER_TAG.match(line, start + 4)
        if m is None or len(line) < start + 4 or "\t" in line[start : start + 4]:
            continue  # a tab inside the four characters: the copy lost the padding (below)
        return _row_values(line[start : start + 4], m)
    loose = _LOOSE_TAG.match(line)
    if loose is not None and (m := _AFTER_TAG.match(line, loose.end() - 1)) is not None:
        return _row_values(re.sub(r"\s", " ", loose.group("tag")).ljust(4), m)
    return None


def _row_values(tag: str, m: re.Match[str]) -> tuple[str, Pool, list[int]] | None:
    values = [bounded_int(m.group(i)) for i in (2, 3, 4, 5)]
    if any(v is None for v in values):
        return None
    return tag, _TYPES[m.group("type")], [v for v in values if v is not None]


def parse_poolmon_log(text: str, mtime: float | None = None, name: str = "input") -> list[Snapshot]:
    """Every table of a poolmon snapshot file, in order. Raises BadInput when none has a row."""
    taken_at: dt.datetime = file_time(mtime)
    tables: list[_Table] = []
    current = _Table()
    unknown = LineTally("poolmon rows")

    def start_new() -> _Table:
        if len(current.rows):
            tables.append(current)
            return _Table()
        return current

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if _MEMORY.match(line):
            current = start_new()
            _read_figures(line, current.totals)
            continue
        if _FIGURES.search(line):
            _read_figures(line, current.totals)
            continue
        info = _POOL_INFO.match(line)
        if info:
            if len(current.rows):
                current = start_new()
            current.session = -1 if info.group("all") else (
                int(info.group("sid")) if info.group("sid") is not None else None)
            continue
        header = _HEADER.match(line)
        if header:
            if len(current.rows):
                current = start_new()
            current.tag_start = len(header.group("lead"))
            continue
        row = _parse_row(line, current.tag_start)
        if row is not None:
            tag, pool, values = row
            if current.session is not None:
                current.rows.add(tag_from_text(tag), Pool.SESSION, values, merge=True)
            else:
                current.rows.add(tag_from_text(tag), pool, values)
            continue
        if not _IGNORED.match(line):
            unknown.add(number, line)
    if len(current.rows):
        tables.append(current)
    if not tables:
        hint = f" ({unknown.count} lines, none a poolmon row)" if unknown.count else " (it is empty)"
        raise BadInput(f"{name}: no poolmon rows found{hint}; expected the file `poolmon /n` writes")

    snapshots = []
    for index, table in enumerate(tables):
        warnings = table_warnings(index, unknown, table.rows, "of the same tag and type")
        if len(tables) > 1:
            warnings.append(
                f"{name} holds {len(tables)} poolmon tables (this is table {index}) and poolmon prints no "
                "time: all carry the file's time"
            )
        extra = {"session_id": table.session} if table.session is not None else None
        snapshots.append(
            build_snapshot(
                SOURCE,
                table.rows,
                taken_at,
                Totals(**table.totals),
                warnings,
                has_alloc_counts=True,
                extra=extra,
            )
        )
    return snapshots


def _read_figures(line: str, into: dict[str, int]) -> None:
    for key, pattern in _KIB.items():
        m = pattern.search(line)
        if m:
            into[key] = int(m.group(1)) * 1024
