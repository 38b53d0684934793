"""Snapshot exports: JSON (the documented contract), CSV (one row per counter), text (poolmon's table).

JSON is lossless (json escapes what needs escaping). Text and CSV leave pooltop for terminals and
spreadsheets: every name in them goes through `model.printable`, and CSV text cells are
neutralised against formula injection (`csv_text`).

All three take the same inputs: a snapshot, the rows to show in order, optional change columns and
an optional owner lookup. They return text; writing it (atomically) is the caller's business.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from pooltop import __version__
from pooltop.judge import LeakLevel
from pooltop.model import (
    COLUMN_BY_KEY,
    COLUMNS,
    SNAPSHOT_SCHEMA,
    Column,
    ColumnKind,
    CounterSet,
    Pool,
    Snapshot,
    escape_surrogates,
    human_bytes,
    printable,
)
from pooltop.snapshots.texttable import TextColumn, table_lines
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup, candidate_to_json

if TYPE_CHECKING:  # annotations only: writing a snapshot loads neither the tracker nor the judge
    from pooltop.judge import Judgements
    from pooltop.tracking import Deltas, IndexArray

FORMATS = ("text", "json", "csv")


def _rows(counters: CounterSet, rows: IndexArray | None) -> list[int]:
    return list(range(len(counters))) if rows is None else [int(r) for r in rows]


def snapshot_to_json(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: Judgements | None = None,
) -> dict[str, Any]:
    """The `pooltop.snapshot/1` object (see README, "Snapshot JSON")."""
    c = snap.counters
    per_alloc = c.per_alloc()
    counters: list[dict[str, Any]] = []
    for i in _rows(c, rows):
        tag = c.tags[i]
        pool = Pool(int(c.pools[i]))
        item: dict[str, Any] = {
            "tag": tag,
            "pool": pool.label,
            "allocs": int(c.allocs[i]),
            "frees": int(c.frees[i]),
            "diff": int(c.diff[i]),
            "bytes": int(c.bytes[i]),
            "per_alloc": round(float(per_alloc[i]), 1),
        }
        for name, col in c.extra.items():
            item[name] = int(col[i])
        if tag in snap.aliases:
            item["aliases"] = list(snap.aliases[tag])
        if changes is not None:
            item["change"] = {
                "allocs": int(changes.allocs[i]),
                "frees": int(changes.frees[i]),
                "diff": int(changes.diff[i]),
                "bytes": int(changes.bytes[i]),
                "new": bool(changes.is_new[i]),
            }
        if leak is not None:
            item["leak"] = LeakLevel(int(leak.levels[i])).label
        if owners is not None:
            found = owners(tag, pool)
            if found:
                item["owners"] = [candidate_to_json(o) for o in found]
        counters.append(item)
    out: dict[str, Any] = {
        "schema": SNAPSHOT_SCHEMA,
        "generator": f"pooltop {__version__}",
        "source": snap.source,
        "taken_at": snap.taken_at.isoformat().replace("+00:00", "Z"),
        "host": snap.host.to_json(),
        "totals": snap.totals.to_json(),
        "alloc_counts": c.has_alloc_counts,
        "counters": counters,
    }
    if changes is not None:
        out["interval_s"] = round(changes.seconds, 3)
        out["vanished"] = [
            {"tag": t, "pool": Pool(int(p)).label}
            for t, p in zip(changes.vanished.tags, changes.vanished.pools.tolist(), strict=True)
        ]
    if snap.warnings:
        out["warnings"] = list(snap.warnings)
    return out


def format_json(*args: Any, **kwargs: Any) -> str:
    return json_text(snapshot_to_json(*args, **kwargs))


def json_text(doc: Any) -> str:
    """A document as pooltop writes JSON: indented, UTF-8 as is, and a lone surrogate (a name no
    UTF-8 file can hold) as its JSON escape \\udXXX, so writing it never fails and reading it
    back gives the same string."""
    return escape_surrogates(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


def _first_owner(owners: OwnerLookup | None, tag: str, pool: Pool) -> OwnerCandidate | None:
    if owners is None:
        return None
    found = owners(tag, pool)
    return found[0] if found else None


def counter_columns(counters: CounterSet, changes: Deltas | None, *, alloc_counts: bool = True
                    ) -> list[Column]:
    """The counter columns an export shows, in `model.COLUMNS` order: the change columns only with
    `changes`, allocs and frees only where counted (or always, with alloc_counts=False: CSV keeps
    its columns fixed). Owner and leak are annotations the writers place themselves."""
    return [
        col for col in COLUMNS
        if col.key not in _ANNOTATIONS
        and (changes is not None or not col.is_change)
        and (counters.has_alloc_counts or not alloc_counts or col.key not in _ALLOC_KEYS)
    ]


def column_values(counters: CounterSet, changes: Deltas | None) -> dict[str, npt.NDArray[Any]]:
    """Each numeric column's values by key (`model.COLUMNS` keys)."""
    values: dict[str, npt.NDArray[Any]] = {
        "allocs": counters.allocs, "frees": counters.frees, "diff": counters.diff, "bytes": counters.bytes,
        "per_alloc": counters.per_alloc(),
    }
    if changes is not None:
        values |= {"d_allocs": changes.allocs, "d_frees": changes.frees, "d_diff": changes.diff,
                   "d_bytes": changes.bytes}
    return values


_ANNOTATIONS = ("owner", "leak")
_ALLOC_KEYS = frozenset({"allocs", "d_allocs", "frees", "d_frees"})
#: CSV's owner columns, after its counter, extra and leak columns
_CSV_OWNER_FIELDS = ("owner", "owner_source", "owner_confidence", "description")


#: a spreadsheet runs a cell starting with one of these as a formula (`=cmd|' /C calc'!A0`); a
#: leading tab or CR never reaches a cell: printable() writes them \\x09 and \\x0d
_FORMULA_START = ("=", "+", "-", "@")


def csv_text(text: str) -> str:
    """A text cell as spreadsheet-safe CSV writers write it: printable (no control characters),
    and a ' before a cell a spreadsheet would run as a formula. A cell that starts with ' gets
    another one, so a reader takes exactly one off (`csv_text_back`) and gets the text back."""
    cell = printable(text)
    return "'" + cell if cell.startswith((*_FORMULA_START, "'")) else cell


def csv_text_back(cell: str) -> str:
    """The text `csv_text` wrote into a cell."""
    return cell[1:] if cell.startswith("'") else cell


def _csv_cell(key: str, values: npt.NDArray[Any], i: int) -> object:
    return round(float(values[i]), 1) if key == "per_alloc" else int(values[i])


def format_csv(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: Judgements | None = None,
) -> str:
    c = snap.counters
    columns = counter_columns(c, changes, alloc_counts=False)
    # CSV keeps the plain counters first and their changes (with `new`) after them.
    counts = [col.key for col in columns if not col.is_change and col.key not in ("tag", "pool")]
    deltas = [col.key for col in columns if col.is_change]
    values = column_values(c, changes)
    extras = list(c.extra)
    header = ["tag", "pool", *counts, *deltas, *(["new"] if changes is not None else []), *extras]
    if leak is not None:
        header.append("leak")
    header += _CSV_OWNER_FIELDS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i in _rows(c, rows):
        pool = Pool(int(c.pools[i]))
        row: list[object] = [csv_text(c.tags[i]), pool.label, *(_csv_cell(k, values[k], i) for k in counts)]
        if changes is not None:
            row += [*(int(values[k][i]) for k in deltas), int(bool(changes.is_new[i]))]
        row += [int(c.extra[k][i]) for k in extras]
        if leak is not None:
            row.append(LeakLevel(int(leak.levels[i])).label)
        o = _first_owner(owners, c.tags[i], pool)
        owner = (o.owner, o.source, o.confidence, o.description) if o else ("", "", "", "")
        row += [csv_text(t) for t in owner]
        w.writerow(row)
    return buf.getvalue()


def _fmt_int(v: int) -> str:
    return f"{v:,}"


def _fmt_change(v: int) -> str:
    return f"{v:+,}" if v else "0"


def _text_cells(col: Column, values: npt.NDArray[Any], idx: Sequence[int]) -> list[str]:
    if col.key == "per_alloc":
        return [f"{values[i]:,.0f}" for i in idx]
    fmt = _fmt_change if col.is_change else _fmt_int
    return [fmt(int(values[i])) for i in idx]


def _text_header(snap: Snapshot, changes: Deltas | None) -> list[str]:
    """The host line, the totals and the warnings above the table."""
    h = snap.host
    facts = [h.name, " ".join(x for x in (h.os, h.os_version, h.arch) if x),
             f"{snap.taken_at.strftime('%Y-%m-%d %H:%M:%S')} UTC", f"source {snap.source}"]
    if changes is not None:
        facts.append(f"interval {changes.seconds:.1f}s")
    lines = [printable("  ".join(f for f in facts if f))]
    totals = [
        f"{_TOTAL_LABELS.get(k, k)} {human_bytes(v)}" for k, v in snap.totals.items() if k in _TOTAL_LABELS
    ]
    if totals:
        lines.append("  ".join(totals))
    lines.extend(f"warning: {printable(w)}" for w in snap.warnings)
    lines.append("")
    return lines


def _text_columns(snap: Snapshot, idx: Sequence[int], changes: Deltas | None, owners: OwnerLookup | None,
                  leak: Judgements | None) -> list[TextColumn]:
    c = snap.counters
    values = column_values(c, changes)
    cells: dict[str, list[str]] = {
        "tag": [printable(c.tags[i]) for i in idx],
        "pool": [Pool(int(c.pools[i])).short for i in idx],
    }
    if leak is not None:
        cells["leak"] = [LeakLevel(int(leak.levels[i])).label for i in idx]
    if owners is not None:
        found = (_first_owner(owners, c.tags[i], Pool(int(c.pools[i]))) for i in idx)
        cells["owner"] = [printable(f"{o.owner} {o.description}".strip())[:60] if o else "" for o in found]
    shown = [*counter_columns(c, changes), *(COLUMN_BY_KEY[k] for k in _TEXT_ANNOTATIONS if k in cells)]
    return [
        TextColumn(col.title, col.kind in _RIGHT_ALIGNED,
                   cells[col.key] if col.key in cells else _text_cells(col, values[col.key], idx))
        for col in shown
    ]


def format_text(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: Judgements | None = None,
) -> str:
    """A poolmon-like table with a header of system totals."""
    lines = _text_header(snap, changes)
    lines += table_lines(_text_columns(snap, _rows(snap.counters, rows), changes, owners, leak))
    if changes is not None and len(changes.vanished):
        gone = ", ".join(printable(t) for t in changes.vanished.tags[:20])
        more = len(changes.vanished) - 20
        lines.append(f"vanished: {gone}" + (f" (+{more} more)" if more > 0 else ""))
    return "\n".join(lines) + "\n"


#: the text table's annotation columns, after the counters, in this order
_TEXT_ANNOTATIONS = ("leak", "owner")
_RIGHT_ALIGNED = frozenset({ColumnKind.COUNT, ColumnKind.BYTES})
_TOTAL_LABELS = {
    "paged_pool": "Paged",
    "nonpaged_pool": "Nonpaged",
    "slab": "Slab",
    "slab_unreclaimable": "SUnreclaim",
    "memory_available": "Avail",
    "commit": "Commit",
    "commit_limit": "Limit",
    "swap_total": "Swap",
    "swap_free": "SwapFree",
}


FORMATTERS = {"text": format_text, "json": format_json, "csv": format_csv}
