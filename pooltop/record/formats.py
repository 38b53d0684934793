"""Snapshot exports: JSON (the documented contract), CSV (one row per counter), text (poolmon's table).

All three take the same inputs: a snapshot, the rows to show in order, optional change columns and
an optional owner lookup. They return text; writing it (atomically) is the caller's business.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from pooltop import __version__
from pooltop.model import SNAPSHOT_SCHEMA, CounterSet, Pool, Snapshot, human_bytes
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup, candidate_to_json
from pooltop.tracking import Deltas, IndexArray, LeakLevel, LeakScores

FORMATS = ("text", "json", "csv")


def _rows(counters: CounterSet, rows: IndexArray | None) -> list[int]:
    return list(range(len(counters))) if rows is None else [int(r) for r in rows]


def snapshot_to_json(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: LeakScores | None = None,
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
    return json.dumps(snapshot_to_json(*args, **kwargs), indent=2, ensure_ascii=False) + "\n"


def _first_owner(owners: OwnerLookup | None, tag: str, pool: Pool) -> OwnerCandidate | None:
    if owners is None:
        return None
    found = owners(tag, pool)
    return found[0] if found else None


def format_csv(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: LeakScores | None = None,
) -> str:
    c = snap.counters
    per_alloc = c.per_alloc()
    extras = list(c.extra)
    header = ["tag", "pool", "allocs", "frees", "diff", "bytes", "per_alloc"]
    if changes is not None:
        header += ["d_allocs", "d_frees", "d_diff", "d_bytes", "new"]
    header += extras
    if leak is not None:
        header.append("leak")
    header += ["owner", "owner_source", "owner_confidence", "description"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i in _rows(c, rows):
        pool = Pool(int(c.pools[i]))
        row: list[object] = [
            c.tags[i],
            pool.label,
            int(c.allocs[i]),
            int(c.frees[i]),
            int(c.diff[i]),
            int(c.bytes[i]),
            round(float(per_alloc[i]), 1),
        ]
        if changes is not None:
            row += [
                int(changes.allocs[i]),
                int(changes.frees[i]),
                int(changes.diff[i]),
                int(changes.bytes[i]),
                int(bool(changes.is_new[i])),
            ]
        row += [int(c.extra[k][i]) for k in extras]
        if leak is not None:
            row.append(LeakLevel(int(leak.levels[i])).label)
        o = _first_owner(owners, c.tags[i], pool)
        row += [o.owner, o.source, o.confidence, o.description] if o else ["", "", "", ""]
        w.writerow(row)
    return buf.getvalue()


def _fmt_int(v: int) -> str:
    return f"{v:,}"


def _fmt_change(v: int) -> str:
    return f"{v:+,}" if v else "0"


def format_text(
    snap: Snapshot,
    rows: IndexArray | None = None,
    changes: Deltas | None = None,
    owners: OwnerLookup | None = None,
    leak: LeakScores | None = None,
) -> str:
    """A poolmon-like table with a header of system totals."""
    c = snap.counters
    h = snap.host
    facts = [h.name, " ".join(x for x in (h.os, h.os_version, h.arch) if x),
             f"{snap.taken_at.strftime('%Y-%m-%d %H:%M:%S')} UTC", f"source {snap.source}"]
    if changes is not None:
        facts.append(f"interval {changes.seconds:.1f}s")
    lines = ["  ".join(f for f in facts if f)]
    totals = [
        f"{_TOTAL_LABELS.get(k, k)} {human_bytes(v)}" for k, v in snap.totals.items() if k in _TOTAL_LABELS
    ]
    if totals:
        lines.append("  ".join(totals))
    for w in snap.warnings:
        lines.append(f"warning: {w}")
    lines.append("")

    idx = _rows(c, rows)
    per_alloc = c.per_alloc()
    cols: list[tuple[str, bool, list[str]]] = []  # title, right-aligned, cells
    cols.append(("Tag", False, [c.tags[i] for i in idx]))
    cols.append(("Type", False, [Pool(int(c.pools[i])).short for i in idx]))
    if c.has_alloc_counts:
        cols.append(("Allocs", True, [_fmt_int(int(c.allocs[i])) for i in idx]))
        if changes is not None:
            cols.append(("dAllocs", True, [_fmt_change(int(changes.allocs[i])) for i in idx]))
        cols.append(("Frees", True, [_fmt_int(int(c.frees[i])) for i in idx]))
        if changes is not None:
            cols.append(("dFrees", True, [_fmt_change(int(changes.frees[i])) for i in idx]))
    cols.append(("Diff", True, [_fmt_int(int(c.diff[i])) for i in idx]))
    if changes is not None:
        cols.append(("dDiff", True, [_fmt_change(int(changes.diff[i])) for i in idx]))
    cols.append(("Bytes", True, [_fmt_int(int(c.bytes[i])) for i in idx]))
    if changes is not None:
        cols.append(("dBytes", True, [_fmt_change(int(changes.bytes[i])) for i in idx]))
    cols.append(("Per Alloc", True, [f"{per_alloc[i]:,.0f}" for i in idx]))
    if leak is not None:
        cols.append(("Leak", False, [LeakLevel(int(leak.levels[i])).label for i in idx]))
    if owners is not None:
        cells = []
        for i in idx:
            o = _first_owner(owners, c.tags[i], Pool(int(c.pools[i])))
            cells.append(f"{o.owner} {o.description}".strip()[:60] if o else "")
        cols.append(("Owner", False, cells))
    widths = [max([len(title), *(len(x) for x in cells)]) for title, _, cells in cols]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(wd) if right else cell.ljust(wd)
            for cell, wd, (_, right, _) in zip(cells, widths, cols, strict=True)
        ]
        return " ".join(parts).rstrip()

    lines.append(line([title for title, _, _ in cols]))
    for r in range(len(idx)):
        lines.append(line([cells[r] for _, _, cells in cols]))
    if changes is not None and len(changes.vanished):
        gone = ", ".join(changes.vanished.tags[:20])
        more = len(changes.vanished) - 20
        lines.append(f"vanished: {gone}" + (f" (+{more} more)" if more > 0 else ""))
    return "\n".join(lines) + "\n"


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


def total_bytes(counters: CounterSet, rows: IndexArray | None = None) -> int:
    values = counters.bytes if rows is None else counters.bytes[rows]
    return int(np.sum(values))


FORMATTERS = {"text": format_text, "json": format_json, "csv": format_csv}
