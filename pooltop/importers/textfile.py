"""Helpers the text importers share: decoding, tags, bounded integers, counting what was skipped.

Imported files come from other people's machines (poolmon logs, debugger sessions pasted into
mail), so nothing in them is trusted: every byte that reaches a tag goes through escape_tag, every
number is bounded to what a CounterSet column holds, and lines pooltop does not understand are
counted and reported instead of failing the import.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals, escape_tag, printable

INT64_MAX = (1 << 63) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def decode_text(data: bytes) -> str:
    """Text of an imported file. WinDbg writes UTF-16 logs with `.logopen /u`; poolmon writes the
    ANSI code page. Bytes that are not UTF-8 are read as Latin-1, so each byte stays one character
    (tags keep their odd bytes)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    sample = data[:4096]
    if len(sample) >= 8 and sample[1::2].count(0) > len(sample) // 3 and sample[0::2].count(0) == 0:
        return data.decode("utf-16-le", "replace")  # UTF-16 without a byte order mark
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def tag_from_text(text: str) -> str:
    """A tag as shown in a text file -> pooltop's tag form (escape_tag of its bytes, padding kept)."""
    return escape_tag(bytes(ord(c) if ord(c) < 256 else 0x3F for c in text))


def excerpt(text: str, limit: int = 60) -> str:
    """A line excerpt that is safe to show in a warning (no control characters reach a terminal)."""
    return printable(text[:limit]) + ("..." if len(text) > limit else "")


_INT_RE = re.compile(r"-?\d{1,19}")


def bounded_int(text: str) -> int | None:
    """An integer that fits a CounterSet column (int64), or None."""
    if not _INT_RE.fullmatch(text):
        return None
    value = int(text)
    return value if -INT64_MAX <= value <= INT64_MAX else None


@dataclass
class LineTally:
    """Lines an importer did not understand: how many, and the first few for the warning."""

    what: str
    count: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, number: int, line: str) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append((number, line))

    def warning(self) -> str | None:
        if not self.count:
            return None
        shown = "; ".join(f"line {n}: '{excerpt(line.strip())}'" for n, line in self.examples)
        noun = "line" if self.count == 1 else "lines"
        return f"{self.count} {noun} not understood as {self.what} were skipped ({shown})"


@dataclass
class TableRows:
    """Counters of one table as they are read: (tag, pool) -> [allocs, frees, diff, bytes]."""

    rows: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, tag: str, pool: Pool, values: Sequence[int], merge: bool = False) -> None:
        key = (tag, int(pool))
        have = self.rows.get(key)
        if have is None:
            self.rows[key] = list(values)
        elif merge:
            # Session pool: a tag's paged and nonpaged session counters make one row, as in the
            # live Windows source.
            self.rows[key] = [min(a + b, INT64_MAX) for a, b in zip(have, values, strict=True)]
        else:
            self.duplicates += 1

    def __len__(self) -> int:
        return len(self.rows)


def table_warnings(index: int, unknown: LineTally, rows: TableRows, same: str) -> list[str]:
    """The warnings every imported table carries: the lines skipped (on the first table) and the
    repeated rows (`same` says what repeated: "of the same tag")."""
    warnings = []
    if index == 0 and (w := unknown.warning()):
        warnings.append(w)
    if rows.duplicates:
        warnings.append(f"{rows.duplicates} repeated rows {same} were skipped")
    return warnings


def file_time(mtime: float | None) -> dt.datetime:
    """When an imported table was taken: the text formats carry no time, so the file's own."""
    if mtime is None:
        return _EPOCH
    try:
        return dt.datetime.fromtimestamp(mtime, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return _EPOCH


def build_snapshot(
    source: str,
    table: TableRows,
    taken_at: dt.datetime,
    totals: Totals,
    warnings: Sequence[str],
    has_alloc_counts: bool,
    extra: dict[str, int] | None = None,
) -> Snapshot:
    """A Snapshot from parsed rows. Counter width: 32-bit (they wrap, as class 22 counters do)
    unless a value shows the machine keeps wider ones."""
    keys = list(table.rows)
    values = [table.rows[k] for k in keys]
    wide = any(v[0] >= 1 << 32 or v[1] >= 1 << 32 for v in values)
    counters = CounterSet.build(
        [k[0] for k in keys],
        [k[1] for k in keys],
        [v[0] for v in values],
        [v[1] for v in values],
        [v[2] for v in values],
        [v[3] for v in values],
        extra={name: [value] * len(keys) for name, value in (extra or {}).items()},
        has_alloc_counts=has_alloc_counts,
        counter_bits=64 if wide else 32,
    )
    return Snapshot(
        source=source,
        taken_at=taken_at,
        monotonic_ns=int(taken_at.timestamp() * 1e9),
        host=HostInfo(name="", os="Windows", os_version="", arch=""),
        totals=totals,
        counters=counters,
        warnings=tuple(warnings),
    )
