"""What changed between two snapshots, per tag: the evidence "this grew from A to B".

compute_deltas does the arithmetic: allocs/frees differences are taken mod 2^32 when both sides
have 32-bit counters (Windows class 22 wraps); when either side has wider counters, or no
cumulative counts at all (Linux, !poolused's default display), plain differences of what both
sides have. Counters only in B are `new` (they count from zero); counters only in A `vanished`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pooltop import __version__
from pooltop.model import CounterSet, Pool, Snapshot, human_bytes, printable
from pooltop.query import tag_filter
from pooltop.snapshots.compat import host_names, require_one_kind
from pooltop.snapshots.texttable import TextColumn, table_lines
from pooltop.snapshots.writers import csv_text, json_text
from pooltop.tracking import align, compute_deltas

DIFF_SCHEMA = "pooltop.diff/1"

SORT_KEYS = ("dbytes", "ddiff", "dallocs", "dfrees", "bytes", "diff", "tag")
STATUSES = ("new", "vanished", "changed", "same")


@dataclass(frozen=True)
class Counts:
    allocs: int
    frees: int
    diff: int
    bytes: int

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DiffRow:
    tag: str
    pool: Pool
    status: str  # one of STATUSES
    before: Counts | None
    after: Counts | None
    change: Counts
    wrapped: bool = False  # an allocs/frees counter passed 2^32 between the two


@dataclass(frozen=True)
class SnapshotDiff:
    before: Snapshot
    after: Snapshot
    before_label: str
    after_label: str
    seconds: float
    alloc_counts: bool  # whether allocs/frees changes mean anything (both sides count them)
    rows: tuple[DiffRow, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # two machines: shown, but the reader must know

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


def _counts(c: CounterSet, i: int) -> Counts:
    return Counts(int(c.allocs[i]), int(c.frees[i]), int(c.diff[i]), int(c.bytes[i]))


def diff_snapshots(before: Snapshot, after: Snapshot, before_label: str = "before",
                   after_label: str = "after") -> SnapshotDiff:
    """Per-counter change from `before` to `after` (row order: after's, then the vanished).

    PooltopError when the two are different kinds of kernel memory (Windows pool, Linux slab)."""
    sides = [(before_label, before), (after_label, after)]
    require_one_kind(sides, "compare")
    hosts = host_names(sides)
    warnings = (f"comparing two machines: {before_label} is from {hosts[0]}, {after_label} from {hosts[1]}",
                ) if len(hosts) > 1 else ()
    ref, cur = before.counters, after.counters
    alloc_counts = ref.has_alloc_counts and cur.has_alloc_counts
    bits = 32 if ref.counter_bits == 32 and cur.counter_bits == 32 else 64
    if (cur.counter_bits, cur.has_alloc_counts) != (bits, alloc_counts):
        cur = dataclasses.replace(cur, counter_bits=bits, has_alloc_counts=alloc_counts)
    seconds = (after.taken_at - before.taken_at).total_seconds()
    notes: list[str] = []
    if seconds < 0:
        notes.append(f"{after_label} was taken before {before_label}: the changes run backwards in time")
    if not alloc_counts:
        notes.append("allocs/frees are not counted on both sides: only outstanding allocations and bytes "
                     "are compared")
    mapping = align(ref, cur)
    deltas = compute_deltas(ref, cur, max(seconds, 0.0), mapping)
    rows: list[DiffRow] = []
    wrapped = 0
    for i in range(len(cur)):
        tag, pool = cur.key(i)
        change = Counts(int(deltas.allocs[i]), int(deltas.frees[i]), int(deltas.diff[i]),
                        int(deltas.bytes[i]))
        j = int(mapping[i])
        if j < 0:
            rows.append(DiffRow(tag, pool, "new", None, _counts(cur, i), change))
            continue
        was = _counts(ref, j)
        raw_wrap = bits == 32 and alloc_counts and (
            int(cur.allocs[i]) < was.allocs or int(cur.frees[i]) < was.frees
        )
        wrapped += raw_wrap
        same = change == Counts(0, 0, 0, 0)
        rows.append(DiffRow(tag, pool, "same" if same else "changed", was, _counts(cur, i), change, raw_wrap))
    gone = deltas.vanished
    for i in range(len(gone)):
        tag, pool = gone.key(i)
        was = _counts(gone, i)
        rows.append(DiffRow(tag, pool, "vanished", was, None, Counts(0, 0, -was.diff, -was.bytes)))
    if wrapped:
        notes.append(f"allocation counters of {wrapped} tag{'s' if wrapped != 1 else ''} passed 2^32 and "
                     "wrapped; their changes are taken mod 2^32")
    return SnapshotDiff(before, after, before_label, after_label, seconds, alloc_counts, tuple(rows),
                        tuple(notes), warnings)


def _sort_value(key: str) -> Callable[[DiffRow], Any]:
    if key == "tag":
        return lambda r: (r.tag, int(r.pool))
    if key in ("bytes", "diff"):
        return lambda r: (-getattr(r.after or r.before, key), r.tag)
    column = key[1:]
    return lambda r: (-getattr(r.change, column), r.tag)


@dataclass(frozen=True)
class Hidden:
    """Rows a diff leaves out, by why: the summary says which option shows them."""

    unchanged: int = 0  # unchanged, without --all
    filtered: int = 0  # by --include / --exclude
    past_top: int = 0  # past --top

    @property
    def total(self) -> int:
        return self.unchanged + self.filtered + self.past_top


def select(d: SnapshotDiff, sort: str = "dbytes", top: int | None = None, include_same: bool = False,
           include: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[list[DiffRow], Hidden]:
    """The rows to show (unchanged ones left out unless asked for, filtered, sorted: growth first)
    and what was left out."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r} (use {', '.join(SORT_KEYS)})")
    keep = tag_filter(include, exclude)
    wanted = [r for r in d.rows if keep(r.tag)]
    rows = [r for r in wanted if include_same or r.status != "same"]
    rows.sort(key=_sort_value(sort))
    shown = rows[:top] if top is not None else rows
    return shown, Hidden(len(wanted) - len(rows), len(d.rows) - len(wanted), len(rows) - len(shown))


def select_rows(d: SnapshotDiff, sort: str = "dbytes", top: int | None = None, include_same: bool = False,
                include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[DiffRow]:
    """The rows `select` shows."""
    return select(d, sort, top, include_same, include, exclude)[0]


# --- rendering --------------------------------------------------------------------------------


def _when(s: Snapshot) -> str:
    return s.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    s = abs(seconds)
    if s < 120:
        text = f"{s:.0f} s"
    elif s < 7200:
        text = f"{s / 60:.1f} min"
    elif s < 3 * 86400:
        text = f"{s / 3600:.1f} h"
    else:
        text = f"{s / 86400:.1f} days"
    return ("-" if seconds <= -0.5 else "") + text


def _side(label: str, s: Snapshot) -> str:
    h = s.host
    who = " ".join(x for x in (h.name, h.os, h.os_version) if x) or "unknown host"
    return printable(f"{label}  {who}  {_when(s)}  source {s.source}")


def _total_changes(d: SnapshotDiff) -> list[tuple[str, int, int]]:
    a, b = d.before.totals.to_json(), d.after.totals.to_json()
    return [(k, a[k], b[k]) for k in b if k in a]


def _signed(v: int) -> str:
    return f"{v:+,}" if v else "0"


def _header_lines(d: SnapshotDiff) -> list[str]:
    lines = [
        "pooltop diff",
        "before: " + _side(d.before_label, d.before),
        "after:  " + _side(d.after_label, d.after),
        f"between: {_span(d.seconds)}",
        *(f"warning: {printable(w)}" for w in d.warnings),
    ]
    totals = _total_changes(d)
    if totals:
        lines.append("totals: " + "  ".join(
            f"{k} {human_bytes(a)} -> {human_bytes(b)} ({'+' if b >= a else ''}{human_bytes(b - a)})"
            for k, a, b in totals))
    lines.append("")
    return lines


def _columns(d: SnapshotDiff, rows: Sequence[DiffRow]) -> list[TextColumn]:
    cols = [
        TextColumn("Tag", False, [printable(r.tag) for r in rows]),
        TextColumn("Type", False, [r.pool.short for r in rows]),
        TextColumn("Status", False, [r.status + ("*" if r.wrapped else "") for r in rows]),
        TextColumn("Bytes before", True, [f"{r.before.bytes:,}" if r.before else "-" for r in rows]),
        TextColumn("Bytes after", True, [f"{r.after.bytes:,}" if r.after else "-" for r in rows]),
        TextColumn("dBytes", True, [_signed(r.change.bytes) for r in rows]),
        TextColumn("dDiff", True, [_signed(r.change.diff) for r in rows]),
    ]
    if d.alloc_counts:
        cols.append(TextColumn("dAllocs", True, [_signed(r.change.allocs) for r in rows]))
        cols.append(TextColumn("dFrees", True, [_signed(r.change.frees) for r in rows]))
    return cols


def _hidden(hidden: int | Hidden) -> Hidden:
    return hidden if isinstance(hidden, Hidden) else Hidden(unchanged=hidden)


def _summary(d: SnapshotDiff, hidden: Hidden) -> str:
    grew = sum(1 for r in d.rows if r.status == "changed" and r.change.bytes > 0)
    shrank = sum(1 for r in d.rows if r.status == "changed" and r.change.bytes < 0)
    summary = (f"{grew} grew, {shrank} shrank, {d.count('new')} new, {d.count('vanished')} vanished, "
               f"{d.count('same')} unchanged")
    n = hidden.total
    if n:
        summary += f"; {n} row{'s' if n != 1 else ''} not shown"
        why = [
            *(["--all shows the unchanged ones"] if hidden.unchanged else []),
            *([f"{hidden.filtered} left out by --include/--exclude"] if hidden.filtered else []),
            *([f"{hidden.past_top} past --top"] if hidden.past_top else []),
        ]
        summary += f" ({'; '.join(why)})"
    return summary


def render_text(d: SnapshotDiff, rows: Sequence[DiffRow], hidden: int | Hidden = 0) -> str:
    lines = _header_lines(d)
    if rows:
        lines += table_lines(_columns(d, rows))
    else:
        changed = any(r.status != "same" for r in d.rows)
        lines.append("No counter matches." if changed else "No counter changed.")
    lines.append("")
    lines.append(_summary(d, _hidden(hidden)))
    if any(r.wrapped for r in rows):
        lines.append("* a 32-bit allocation counter wrapped between the two; the change is taken mod 2^32")
    lines.extend(f"note: {printable(n)}" for n in d.notes)
    return "\n".join(lines) + "\n"


def _side_json(label: str, s: Snapshot) -> dict[str, Any]:
    return {
        "file": label,
        "source": s.source,
        "taken_at": s.taken_at.isoformat().replace("+00:00", "Z"),
        "host": s.host.to_json(),
        "totals": s.totals.to_json(),
    }


def render_json(d: SnapshotDiff, rows: Sequence[DiffRow], hidden: int | Hidden = 0) -> str:
    doc = {
        "schema": DIFF_SCHEMA,
        "generator": f"pooltop {__version__}",
        "before": _side_json(d.before_label, d.before),
        "after": _side_json(d.after_label, d.after),
        "seconds": d.seconds,
        "alloc_counts": d.alloc_counts,
        "summary": {s: d.count(s) for s in STATUSES} | {"shown": len(rows), "hidden": _hidden(hidden).total},
        "totals": [{"name": k, "before": a, "after": b, "change": b - a} for k, a, b in _total_changes(d)],
        "counters": [
            {
                "tag": r.tag,
                "pool": r.pool.label,
                "status": r.status,
                "before": r.before.to_json() if r.before else None,
                "after": r.after.to_json() if r.after else None,
                "change": r.change.to_json(),
                "wrapped": r.wrapped,
            }
            for r in rows
        ],
        "notes": list(d.notes),
    }
    if d.warnings:
        doc["warnings"] = list(d.warnings)
    return json_text(doc)


def render_csv(d: SnapshotDiff, rows: Sequence[DiffRow], hidden: int | Hidden = 0) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = ("allocs", "frees", "diff", "bytes")
    w.writerow(["tag", "pool", "status", *(f"{n}_before" for n in names), *(f"{n}_after" for n in names),
                *(f"d_{n}" for n in names), "wrapped"])
    for r in rows:
        before = [getattr(r.before, n) for n in names] if r.before else [""] * 4
        after = [getattr(r.after, n) for n in names] if r.after else [""] * 4
        change = [getattr(r.change, n) for n in names]
        w.writerow([csv_text(r.tag), r.pool.label, r.status, *before, *after, *change, int(r.wrapped)])
    return buf.getvalue()


RENDERERS = {"text": render_text, "json": render_json, "csv": render_csv}

