"""`pooltop report` on snapshot files instead of a recording.

One snapshot is one point in time: it shows who holds kernel memory now, never whether anything
grows, so it gets a "largest now" table and says so. Two or more snapshots of one machine are a
series: ordered by time, analysed like a recording's samples (report/analysis.py). Below the
analysis' minimum number of points (5 by default) no verdict is possible; the report then lists
what grew between the first and the last snapshot and says that this is not a judgement.
"""

from __future__ import annotations

import html
import itertools
import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from pooltop.errors import BadInput, PooltopError
from pooltop.judge import JudgeThresholds, too_few_samples
from pooltop.model import Pool, Snapshot, human_bytes, printable
from pooltop.report.analysis import CounterAnalysis, analyse
from pooltop.report.render import REPORT_SCHEMA, Report, render_html, render_json, render_text
from pooltop.snapshots.compat import require_one_kind
from pooltop.snapshots.readers import FileKind, detect_kind, read_snapshots
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import snapshot_owner_lookup

FILE_TIME_SOURCES = ("poolmon-log", "windbg-poolused")
SINGLE_POINT_NOTE = (
    "One snapshot shows who holds kernel memory at one moment. It cannot show a leak: a leak is "
    "growth over time, and that needs two or more snapshots of the same machine (pooltop report "
    "a.json b.json ...), or a recording (pooltop record -o rec.db, then pooltop report rec.db)."
)


def load_series(paths: Sequence[str]) -> list[tuple[str, Snapshot]]:
    """(label, snapshot) of every snapshot in `paths`, oldest first."""
    items: list[tuple[str, Snapshot]] = []
    for path in paths:
        if detect_kind(path) is FileKind.RECORDING:
            raise PooltopError(
                f"{path} is a recording, a series of its own: report on it alone (pooltop report {path})"
            )
        snaps = read_snapshots(path)
        if len(snaps) == 1:
            items.append((path, snaps[0]))
        else:
            items.extend((f"{path}@{i}", s) for i, s in enumerate(snaps))
    require_one_kind(items, "report on")
    items.sort(key=lambda item: item[1].taken_at)
    for (la, a), (lb, b) in itertools.pairwise(items):
        if a.taken_at == b.taken_at:
            raise BadInput(
                f"{la} and {lb} carry the same time ({a.taken_at:%Y-%m-%d %H:%M:%S} UTC), so pooltop cannot "
                "order them or measure growth"
                + (": poolmon and !poolused files carry their file's modification time; save one file "
                   "per snapshot and keep the files' times" if a.source in FILE_TIME_SOURCES else "")
            )
    hosts = {s.host.name for _, s in items if s.host.name}
    if len(hosts) > 1:
        raise PooltopError(f"the snapshots come from different machines ({', '.join(sorted(hosts))})")
    return items


def _owners(snap: Snapshot, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], list[OwnerCandidate]]:
    try:
        lookup = snapshot_owner_lookup(snap)
        return {k: list(lookup(k[0], Pool(k[1]))) for k in keys}
    except PooltopError:
        return {}


def build_series_report(
    items: Sequence[tuple[str, Snapshot]], thresholds: JudgeThresholds, label: str
) -> Report:
    """Analyse snapshots (oldest first) like the samples of a recording."""
    snaps = [s for _, s in items]
    index: dict[tuple[str, int], int] = {}
    for s in snaps:
        for tag, pool in zip(s.counters.tags, s.counters.pools.tolist(), strict=True):
            index.setdefault((tag, int(pool)), len(index))
    keys = list(index)
    names: tuple[str, ...] = ("allocs", "frees", "diff", "bytes")
    if all("reclaimable" in s.counters.extra for s in snaps):  # Linux slab: the judge needs it
        names += ("reclaimable",)
    columns = {name: np.full((len(snaps), len(keys)), np.nan) for name in names}
    for t, s in enumerate(snaps):
        c = s.counters
        cols = np.array([index[(tag, int(pool))] for tag, pool in zip(c.tags, c.pools.tolist(), strict=True)],
                        dtype=np.intp)
        for name in columns:
            columns[name][t, cols] = c.extra[name] if name == "reclaimable" else getattr(c, name)
    t0 = snaps[0].taken_at
    seconds = np.array([(s.taken_at - t0).total_seconds() for s in snaps], dtype=np.float64)
    last = snaps[-1]
    aliases: dict[str, tuple[str, ...]] = {}
    for s in snaps:
        aliases.update(s.aliases)
    results = analyse(
        seconds,
        keys,
        columns,
        [s.totals for s in snaps],
        thresholds,
        _owners(last, keys),
        aliases,
        counter_bits=min(s.counters.counter_bits for s in snaps),
        has_alloc_counts=all(s.counters.has_alloc_counts for s in snaps),
    )
    charted = [(r.tag, int(r.pool)) for r in results[:20]]
    return Report(
        path=label,
        source=last.source,
        host=last.host,
        first_at=snaps[0].taken_at,
        last_at=last.taken_at,
        samples=len(snaps),
        points=len(snaps),
        thresholds=thresholds,
        results=results,
        seconds=seconds,
        bytes_by_key={k: columns["bytes"][:, index[k]] for k in charted},
        totals=[s.totals for s in snaps],
    )


def _label(items: Sequence[tuple[str, Snapshot]]) -> str:
    if len(items) == 1:
        return items[0][0]
    return f"{len(items)} snapshots ({os.path.basename(items[0][0])} .. {os.path.basename(items[-1][0])})"


def _notes(items: Sequence[tuple[str, Snapshot]]) -> list[str]:
    notes = []
    if any(s.source in FILE_TIME_SOURCES for _, s in items):
        notes.append("poolmon and !poolused files carry no time: their files' modification times are used")
    return notes


def _host_line(s: Snapshot) -> str:
    h = s.host
    who = " ".join(x for x in (h.name, h.os, h.os_version, h.arch) if x) or "unknown host"
    return printable(f"{who}  source {s.source}")


def _owner(owners: Sequence[OwnerCandidate]) -> str:
    if not owners:
        return ""
    o = owners[0]
    return printable(f"{o.owner} {o.description}".strip())[:60]


# --- one snapshot -------------------------------------------------------------------------------


def _largest(snap: Snapshot, top: int) -> list[dict[str, object]]:
    c = snap.counters
    order = np.argsort(-c.bytes, kind="stable")[:top]
    per_alloc = c.per_alloc()
    owners = _owners(snap, [(c.tags[i], int(c.pools[i])) for i in order.tolist()])
    out: list[dict[str, object]] = []
    for i in order.tolist():
        key = (c.tags[i], int(c.pools[i]))
        out.append({
            "tag": c.tags[i],
            "pool": Pool(key[1]).label,
            "bytes": int(c.bytes[i]),
            "diff": int(c.diff[i]),
            "per_alloc": round(float(per_alloc[i]), 1),
            "owner": _owner(owners.get(key, [])),
        })
    return out


def render_single(label: str, snap: Snapshot, fmt: str, top: int | None) -> str:
    rows = _largest(snap, top or 20)
    when = snap.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if fmt == "json":
        doc = {
            "schema": REPORT_SCHEMA,
            "recording": {
                "path": label, "source": snap.source, "host": snap.host.to_json(),
                "first_at": snap.taken_at.isoformat(), "last_at": snap.taken_at.isoformat(),
                "span_s": 0.0, "samples": 1, "points_analysed": 1,
            },
            "single_point": True,
            "limitations": SINGLE_POINT_NOTE,
            "counts": {},
            "suspects": [],
            "largest": rows,
            "notes": _notes([(label, snap)]),
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    lines = [printable(f"pooltop report: {label} (one snapshot)"), _host_line(snap), f"taken {when}", ""]
    lines += _wrap(SINGLE_POINT_NOTE)
    lines += ["", f"Largest now ({len(rows)} by bytes in use):"]
    width = max([3, *(len(printable(str(r["tag"]))) for r in rows)])
    lines.append(f"{'Tag':<{width}} {'Type':<5} {'Bytes':>12} {'Diff':>10} {'Per Alloc':>9}  Owner")
    for r in rows:
        lines.append(
            f"{printable(str(r['tag'])):<{width}} {Pool.parse(str(r['pool'])).short:<5} {r['bytes']:>12,} "
            f"{r['diff']:>10,} {r['per_alloc']:>9,.0f}  {r['owner']}".rstrip()
        )
    lines += [f"note: {n}" for n in _notes([(label, snap)])]
    text = "\n".join(lines) + "\n"
    return _html(text, label) if fmt == "html" else text


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def _html(text: str, title: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>pooltop report: {html.escape(title)}</title></head><body>\n"
        f"<pre>{html.escape(text)}</pre>\n</body></html>\n"
    )


# --- a few snapshots ----------------------------------------------------------------------------


def _growth_rows(results: Sequence[CounterAnalysis], span: float, top: int | None) -> list[CounterAnalysis]:
    grew = [r for r in results if r.growth_bytes > 0]
    grew.sort(key=lambda r: (-r.growth_bytes, r.tag))
    return grew[: top or 20]


def render_few(rep: Report, items: Sequence[tuple[str, Snapshot]], fmt: str, top: int | None) -> str:
    span = rep.span_s
    grew = _growth_rows(rep.results, span, top)
    note = (
        f"{len(items)} snapshots: {too_few_samples(rep.thresholds)}, to tell a leak from noise. "
        "Below is what grew between the "
        "first and the last snapshot, not a judgement: take more snapshots over a longer time, or record."
    )
    if fmt == "json":
        doc = json.loads(render_json(rep, False, top))
        doc["too_few_points"] = True
        doc["limitations"] = note
        doc["inputs"] = [label for label, _ in items]
        doc["growth"] = [
            {"tag": r.tag, "pool": r.pool.label, "start_bytes": r.start_bytes, "end_bytes": r.end_bytes,
             "growth_bytes": r.growth_bytes,
             "per_day": r.growth_bytes / span * 86400 if span > 0 else None,
             "owner": _owner(r.owners)}
            for r in grew
        ]
        doc["notes"] = _notes(items)
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    first = items[0][1].taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    last = items[-1][1].taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [printable(f"pooltop report: {rep.path}"), _host_line(items[-1][1]), f"{first} .. {last}", ""]
    lines += _wrap(note)
    lines.append("")
    if grew:
        width = max([3, *(len(printable(r.tag)) for r in grew)])
        lines.append(f"{'Tag':<{width}} {'Type':<5} {'Start':>11} {'End':>11} {'Growth':>11} "
                     f"{'Per day':>11}  Owner")
        for r in grew:
            per_day = human_bytes(r.growth_bytes / span * 86400) if span > 0 else "-"
            lines.append(
                f"{printable(r.tag):<{width}} {r.pool.short:<5} {human_bytes(r.start_bytes):>11} "
                f"{human_bytes(r.end_bytes):>11} {human_bytes(r.growth_bytes):>11} {per_day:>11}  "
                f"{_owner(r.owners)}".rstrip()
            )
    else:
        lines.append("Nothing grew between the first and the last snapshot.")
    lines += [f"note: {n}" for n in _notes(items)]
    text = "\n".join(lines) + "\n"
    return _html(text, rep.path) if fmt == "html" else text


# --- entry point --------------------------------------------------------------------------------


def report_on_snapshots(
    paths: Sequence[str],
    fmt: str,
    thresholds: JudgeThresholds,
    include_stable: bool = False,
    top: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The text of `pooltop report FILE...` when the files are snapshots, not one recording.
    `warn` hears each snapshot's warnings (lines an importer skipped, a degraded source)."""
    items = load_series(paths)
    if warn is not None:
        for label, snap in items:
            for w in snap.warnings:
                warn(printable(f"{label}: {w}"))
    label = _label(items)
    if len(items) == 1:
        return render_single(label, items[0][1], fmt, top)
    rep = build_series_report(items, thresholds, label)
    if len(items) < thresholds.min_samples:
        return render_few(rep, items, fmt, top)
    notes = _notes(items)
    if fmt == "json":
        doc = json.loads(render_json(rep, include_stable, top))
        doc["inputs"] = [lb for lb, _ in items]
        doc["notes"] = notes
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "html":
        return render_html(rep, include_stable, top)
    return render_text(rep, include_stable, top) + "".join(f"note: {n}\n" for n in notes)

