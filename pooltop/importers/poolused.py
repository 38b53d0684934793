"""Reading WinDbg's `!poolused` output (a debugger log or pasted text) into Snapshots.

Written from the documented format (Debugging Tools for Windows, "!poolused"): flags bit 0 (0x1)
verbose, bit 1 (0x2) sort by nonpaged use, bit 2 (0x4) sort by paged use, bit 3 (0x8) session pool.
The documented default display is

       Sorting by  Tag

      Pool Used:
                NonPaged            Paged
     Tag    Allocs     Used    Allocs     Used
     1394        1      520         0        0UNKNOWN pooltag '1394', please update pooltag.txt
     ...
     TOTAL     3570214 209120008     38769 13066104

Two things bite. The owner description is glued to the last number ("0UNKNOWN", and "01394 OHCI
host controller driver" for a description that starts with a digit). Numbers are right-aligned
in fixed fields, so in every row the last number ends the same distance after the one before it;
pooltop learns that distance from the table's rows (the most common one among padded numbers)
and cuts digits that run on past it. A number too wide for its field pushes the rest of its row
right by the same amount, which the distance follows. And "Allocs" here counts the allocations
outstanding now, not since boot: without Frees/Diff columns, pooltop stores it as `diff` and
marks the snapshot as having no cumulative alloc counts.

The parser reads the column titles instead of assuming them, so the verbose and sorted variants
(other titles, other order of rows) read the same way: per pool group (NonPaged, Paged), any of
Allocs, Frees, Diff, Used. With bit 3 (seen in the echoed command, or "session" in the titles)
every row is session pool; a tag's groups are added into one session row, as the live source does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pooltop.errors import BadInput
from pooltop.importers.textfile import (
    INT64_MAX,
    LineTally,
    TableRows,
    bounded_int,
    build_snapshot,
    file_time,
    table_warnings,
    tag_from_text,
)
from pooltop.model import Pool, Snapshot, Totals

SOURCE = "windbg-poolused"

_COMMAND = re.compile(r"^\s*(?:[\d:]+\s*)?l?kd>\s*!(?:kdexts\.)?poolused\b\s*(?P<args>.*)$", re.IGNORECASE)
_SORTING = re.compile(r"^\s*Sorting\s+by\b", re.IGNORECASE)
_POOL_USED = re.compile(r"^\s*(?:Session\s+)?Pool\s+Used\s*:?\s*$", re.IGNORECASE)
_GROUPS = re.compile(r"^\s*(?:(?:Non-?Paged|Paged|Session)\b\s*)+$", re.IGNORECASE)
_GROUP_WORD = re.compile(r"Non-?Paged|Paged|Session", re.IGNORECASE)
_HEADER = re.compile(r"^(?P<lead>\s*)Tag(?:\s+(?:Allocs|Frees|Diff|Used|Bytes)\b)+\s*$", re.IGNORECASE)
_COLUMN = re.compile(r"Allocs|Frees|Diff|Used|Bytes", re.IGNORECASE)
_TOTAL = re.compile(r"^\s*TOTAL\s+(?P<numbers>[-\d\s]+?)\s*$", re.IGNORECASE)
_IGNORED = re.compile(r"^\s*(?:$|\.{3}|[-_=*]{3,}\s*$)")
_NUMBER = re.compile(r"(\s+)(-?\d+)")


@dataclass(frozen=True)
class _Layout:
    """Where the columns of one !poolused table are, read from its titles."""

    tag_start: int
    names: tuple[str, ...]  # lower case: allocs, frees, diff, used
    ends: tuple[int, ...]  # column end (exclusive) of each title: numbers are right-aligned to it
    groups: tuple[Pool, ...]  # the pool each column belongs to

    @property
    def cumulative(self) -> bool:
        """Whether "Allocs" counts since boot (the verbose form has Frees and/or Diff beside it)."""
        return any(n in ("frees", "diff") for n in self.names)


#: the documented default display, for rows that come without their titles
DEFAULT_LAYOUT = _Layout(
    tag_start=1,
    names=("allocs", "used", "allocs", "used"),
    ends=(14, 23, 33, 42),
    groups=(Pool.NONPAGED, Pool.NONPAGED, Pool.PAGED, Pool.PAGED),
)


def _layout(header: str, lead: int, group_line: str | None) -> _Layout | None:
    columns = [(m.group(0).lower(), m.end()) for m in _COLUMN.finditer(header, lead + 3)]
    names = tuple("used" if n == "bytes" else n for n, _ in columns)
    if not names:
        return None
    # Groups repeat the same titles: a new group starts where the first title comes again.
    starts = [i for i, n in enumerate(names) if n == names[0]]
    labels = [m.group(0).lower().replace("-", "") for m in _GROUP_WORD.finditer(group_line or "")]
    if not labels:
        labels = ["nonpaged", "paged"] if len(starts) == 2 else ["nonpaged"] * len(starts)
    pools: list[Pool] = []
    for g, begin in enumerate(starts):
        end = starts[g + 1] if g + 1 < len(starts) else len(names)
        label = labels[g] if g < len(labels) else labels[-1]
        pool = Pool.SESSION if label == "session" else Pool.NONPAGED if label == "nonpaged" else Pool.PAGED
        pools += [pool] * (end - begin)
    return _Layout(lead, names, tuple(e for _, e in columns), tuple(pools))


@dataclass(frozen=True)
class _Scanned:
    """A line read as a row: the tag and, per column, where its number's digits are."""

    tag: str
    spans: tuple[tuple[int, int], ...]  # (first, end) of each number's digits
    padded: bool  # the last number had two or more spaces before it (right-aligned in its column)


def _scan(line: str, layout: _Layout) -> _Scanned | None:
    start = layout.tag_start
    if line[:start].strip() or len(line) < start + 5:
        start = 0 if not line[:1].isspace() else 1
    pos = start + 4
    spans: list[tuple[int, int]] = []
    padded = False
    for k in range(len(layout.ends)):
        m = _NUMBER.match(line, pos)
        if m is None:
            return None
        first, last = m.start(2), m.end(2)
        if k < len(layout.ends) - 1 and last < len(line) and not line[last].isspace():
            return None
        spans.append((first, last))
        padded = len(m.group(1)) >= 2
        pos = last
    return _Scanned(line[start : start + 4], tuple(spans), padded)


def _last_width(scanned: Sequence[_Scanned], layout: _Layout) -> int | None:
    """How far the last column ends after the one before it, in this table.

    The owner description is glued to the last number, and may itself start with digits
    ("01394 OHCI ..."). Rows right-align their numbers, so the distance from the previous
    column's end to the last column's end is the same in every row whose last number is padded;
    the most common distance is that width, whatever the titles look like. Rows whose digits run
    on past it had a description starting with a digit.
    """
    distances: dict[int, int] = {}
    for row in scanned:
        if row.padded and len(row.spans) >= 2:
            d = row.spans[-1][1] - row.spans[-2][1]
            distances[d] = distances.get(d, 0) + 1
    if distances:
        return max(distances, key=lambda d: (distances[d], -d))
    if len(layout.ends) >= 2:
        return layout.ends[-1] - layout.ends[-2]
    return None


def _values(row: _Scanned, line: str, width: int | None) -> list[int] | None:
    values: list[int] = []
    for k, (first, last) in enumerate(row.spans):
        if k == len(row.spans) - 1 and row.padded and width is not None and k > 0:
            cut = row.spans[k - 1][1] + width
            if first < cut < last:
                last = cut
        value = bounded_int(line[first:last])
        if value is None:
            return None
        values.append(value)
    return values


def _counters(layout: _Layout, values: Sequence[int]) -> dict[Pool, list[int]]:
    """Per pool: [allocs, frees, diff, bytes] from one row's columns."""
    by_pool: dict[Pool, dict[str, int]] = {}
    for name, pool, value in zip(layout.names, layout.groups, values, strict=True):
        by_pool.setdefault(pool, {})[name] = value
    out: dict[Pool, list[int]] = {}
    for pool, cols in by_pool.items():
        used = cols.get("used", 0)
        if layout.cumulative:
            allocs = cols.get("allocs", 0)
            frees = cols.get("frees", allocs - cols.get("diff", 0))
            diff = cols.get("diff", allocs - frees)
        else:
            # Default form: "Allocs" is outstanding allocations.
            allocs, frees, diff = 0, 0, cols.get("allocs", 0)
        if allocs == frees == diff == used == 0:
            continue  # the tag never used this pool
        out[pool] = [max(-INT64_MAX, min(v, INT64_MAX)) for v in (allocs, frees, diff, used)]
    return out


class _Table:
    def __init__(self, session: bool) -> None:
        self.rows = TableRows()
        self.totals: dict[str, int] = {}
        self.session = session
        self.layout: _Layout | None = None
        self.pending: list[tuple[int, str, _Scanned]] = []  # rows, read once the table is complete

    @property
    def effective_layout(self) -> _Layout:
        return self.layout or DEFAULT_LAYOUT

    def complete(self, unknown: LineTally) -> None:
        layout = self.effective_layout
        width = _last_width([row for _, _, row in self.pending], layout)
        for number, line, row in self.pending:
            values = _values(row, line, width)
            if values is None:
                unknown.add(number, line)
                continue
            for pool, counters in _counters(layout, values).items():
                if self.session:
                    self.rows.add(tag_from_text(row.tag), Pool.SESSION, counters, merge=True)
                else:
                    self.rows.add(tag_from_text(row.tag), pool, counters)
        self.pending = []


def _flags(args: str) -> int | None:
    token = args.split()[0] if args.split() else ""
    try:
        return int(token, 16) if token else 0  # the debugger's default radix is 16
    except ValueError:
        return None


class _Reader:
    """Reads a !poolused log line by line into tables."""

    def __init__(self, session: bool | None) -> None:
        self.session = session  # the caller's override of what the text says, or None
        self.session_mode = bool(session)
        self.tables: list[_Table] = []
        self.current = _Table(self.session_mode)
        self.group_line: str | None = None
        self.unknown = LineTally("!poolused rows")

    def finish(self) -> None:
        self.current.complete(self.unknown)
        if len(self.current.rows):
            self.tables.append(self.current)
        self.current = _Table(self.session_mode)

    def _finish_rows(self) -> None:
        if self.current.pending or len(self.current.rows):
            self.finish()

    def _says_session(self, line: str) -> None:
        if self.session is None and "session" in line.lower():
            self.current.session = True

    def _command(self, args: str) -> None:
        self.finish()
        flags = _flags(args)
        session = self.session
        self.session_mode = bool(session) if session is not None else bool(flags is not None and flags & 0x8)
        self.current.session = self.session_mode
        self.group_line = None

    def _header(self, line: str, lead: int) -> None:
        self._finish_rows()
        layout = _layout(line, lead, self.group_line)
        self.current.layout = layout
        if self.session is None and layout is not None and Pool.SESSION in layout.groups:
            self.current.session = True

    def line(self, number: int, line: str) -> None:
        if command := _COMMAND.match(line):
            self._command(command.group("args"))
        elif _SORTING.match(line) or _POOL_USED.match(line):
            self._finish_rows()
            self._says_session(line)
        elif _GROUPS.match(line):
            self.group_line = line
            self._says_session(line)
        elif header := _HEADER.match(line):
            self._header(line, len(header.group("lead")))
        elif total := _TOTAL.match(line):
            _read_totals(total.group("numbers"), self.current.effective_layout, self.current)
        elif scanned := _scan(line, self.current.effective_layout):
            self.current.pending.append((number, line, scanned))
        elif not _IGNORED.match(line):
            self.unknown.add(number, line)


def parse_poolused(
    text: str, mtime: float | None = None, name: str = "input", session: bool | None = None
) -> list[Snapshot]:
    """Every !poolused table in `text`, in order. `session` overrides what the text says about
    the session pool (bit 3). Raises BadInput when no table has a row."""
    reader = _Reader(session)
    for number, raw in enumerate(text.splitlines(), 1):
        reader.line(number, raw.rstrip("\r\n"))
    reader.finish()
    tables, unknown = reader.tables, reader.unknown
    if not tables:
        hint = f" ({unknown.count} lines, none a !poolused row)" if unknown.count else " (it is empty)"
        raise BadInput(f"{name}: no !poolused rows found{hint}; expected WinDbg's !poolused output")

    taken_at = file_time(mtime)
    snapshots = []
    for index, table in enumerate(tables):
        warnings = table_warnings(index, unknown, table.rows, "of the same tag")
        if not table.effective_layout.cumulative:
            warnings.append("!poolused shows outstanding allocations only: no allocs/frees since boot")
        if len(tables) > 1:
            warnings.append(
                f"{name} holds {len(tables)} !poolused tables (this is table {index}); the debugger prints "
                "no time: all carry the file's time"
            )
        snapshots.append(
            build_snapshot(
                SOURCE, table.rows, taken_at, Totals(**table.totals), warnings,
                table.effective_layout.cumulative,
            )
        )
    return snapshots


def _read_totals(numbers: str, layout: _Layout, table: _Table) -> None:
    values = [bounded_int(n) for n in numbers.split()]
    if len(values) != len(layout.names) or any(v is None for v in values) or table.session:
        return
    for name, pool, value in zip(layout.names, layout.groups, values, strict=True):
        if name == "used" and value is not None and value >= 0:
            table.totals["nonpaged_pool" if pool is Pool.NONPAGED else "paged_pool"] = value
