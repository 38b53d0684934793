"""The vendor bundle: one zip with everything a driver's vendor needs to act on a leak report.

Parts (all inside the zip, under fixed relative names):
- snapshot.json / snapshot.txt: the counters now (taken live, or the file given), JSON and text;
- report.txt / report.json / report.html: the leak report, when a recording is given (HTML needs
  matplotlib; without it the bundle says so and carries text and JSON);
- facts.json: host facts and, per suspect tag, its counters, verdict and owner candidates with the
  driver's path, version, company, product and signature state where pooltop found them;
- capture/...: ready-to-run commands that capture allocation stacks for the suspects (WPR/xperf
  on Windows, bpftrace/perf on Linux);
- who-NAME.json / who-NAME.txt (with `--who NAME`): the kernel call sites and processes that
  allocated from the cache during a trace (`pooltop who`), traced by the bundle command and
  handed in as `attributions`;
- README.txt: for the recipient: what each file is, and what to run next.

Everything is built in memory first, then written with atomic_write: a temporary file beside
the target, renamed over it at the end. A failure at any point leaves no partial zip and any
earlier file of that name untouched; nothing is written anywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import textwrap
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pooltop import __version__
from pooltop.errors import PooltopError
from pooltop.judge import LeakLevel
from pooltop.model import Pool, Snapshot, human_bytes
from pooltop.query import compile_pattern
from pooltop.report.analysis import CounterAnalysis
from pooltop.report.render import Report, render_html, render_json, render_text
from pooltop.snapshots.writers import format_json, format_text
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup, candidate_to_json
from pooltop.who.capture import CaptureSet, linux_commands, windows_commands

FACTS_SCHEMA = "pooltop.bundle/1"
DEFAULT_SUSPECTS = 8


@dataclass(frozen=True)
class BundlePart:
    name: str  # relative, '/'-separated; never absolute, never '..'
    data: bytes
    description: str


@dataclass(frozen=True)
class Suspect:
    tag: str
    pool: Pool
    why: str  # "named with --tag", "report verdict: leak", "largest now (no recording)"
    counters: dict[str, int] | None  # from the snapshot, if the tag is in it
    analysis: CounterAnalysis | None
    owners: tuple[OwnerCandidate, ...]


@dataclass(frozen=True)
class BundleInputs:
    snapshot: Snapshot
    snapshot_origin: str  # "taken live", or the file it came from
    report: Report | None = None
    recording_name: str | None = None
    tags: tuple[str, ...] = ()
    owners: OwnerLookup | None = None
    recording_owners: dict[tuple[str, int], list[OwnerCandidate]] | None = None
    max_suspects: int = DEFAULT_SUSPECTS
    created_at: dt.datetime | None = None
    attributions: tuple[BundlePart, ...] = ()  # who-NAME.json/.txt, traced by the command
    notes: tuple[str, ...] = ()  # what the command could not add (a trace that was not possible)
    # notes the user should see now, not only in the bundle's README: a --tag that matched nothing,
    # a part left out
    warn: Callable[[str], None] | None = None

    def note(self, notes: list[str], text: str) -> None:
        notes.append(text)
        if self.warn is not None:
            self.warn(text)


def _is_linux(snap: Snapshot) -> bool:
    return snap.source.startswith("linux") or (snap.host.os.lower() == "linux")


def _counters(snap: Snapshot, row: int) -> dict[str, int]:
    c = snap.counters
    out = {"allocs": int(c.allocs[row]), "frees": int(c.frees[row]), "diff": int(c.diff[row]),
           "bytes": int(c.bytes[row])}
    out.update({k: int(v[row]) for k, v in c.extra.items()})
    return out


def _owners_for(inputs: BundleInputs, tag: str, pool: Pool, analysis: CounterAnalysis | None
                ) -> tuple[OwnerCandidate, ...]:
    if analysis is not None and analysis.owners:
        return tuple(analysis.owners)
    if inputs.recording_owners and inputs.recording_owners.get((tag, int(pool))):
        return tuple(inputs.recording_owners[(tag, int(pool))])
    if inputs.owners is not None:
        try:
            return tuple(inputs.owners(tag, pool))
        except PooltopError:
            return ()
    return ()


def choose_suspects(inputs: BundleInputs) -> tuple[list[Suspect], list[str]]:
    """The tags the bundle is about: --tag names, else the report's suspects, else the largest."""
    snap = inputs.snapshot
    c = snap.counters
    rows_by_key = c.index()
    notes: list[str] = []
    by_key: dict[tuple[str, int], CounterAnalysis] = {}
    if inputs.report is not None:
        by_key = {(r.tag, int(r.pool)): r for r in inputs.report.results}
    picked: list[tuple[str, Pool, str]] = []
    if inputs.tags:
        for wanted in inputs.tags:
            pattern = compile_pattern(wanted)
            hits = [(t, Pool(p)) for t, p in zip(c.tags, c.pools.tolist(), strict=True) if pattern.match(t)]
            hits += [(t, Pool(p)) for (t, p) in by_key if pattern.match(t) and (t, Pool(p)) not in hits]
            if not hits:
                inputs.note(notes, f"--tag {wanted}: no such tag in the snapshot or the report; "
                            "the capture commands still name it")
                picked.append((wanted, Pool.SLAB if _is_linux(snap) else Pool.NONPAGED, "named with --tag"))
            picked += [(t, p, "named with --tag") for t, p in hits]
    elif inputs.report is not None:
        serious = [r for r in inputs.report.results if r.verdict >= LeakLevel.WATCH]
        picked = [(r.tag, r.pool, f"report verdict: {r.verdict.label}")
                  for r in serious[: inputs.max_suspects]]
        if not picked:
            notes.append("the report found no growing counter; the bundle lists the largest ones instead")
    if not picked:
        order = sorted(range(len(c)), key=lambda i: -int(c.bytes[i]))[: inputs.max_suspects]
        why = "largest now (no recording: not a leak verdict)" if inputs.report is None else "largest now"
        picked = [(c.tags[i], Pool(int(c.pools[i])), why) for i in order]
    seen: set[tuple[str, int]] = set()
    suspects: list[Suspect] = []
    for tag, pool, why in picked:
        key = (tag, int(pool))
        if key in seen:
            continue
        seen.add(key)
        row = rows_by_key.get(key)
        analysis = by_key.get(key)
        suspects.append(Suspect(tag, pool, why, _counters(snap, row) if row is not None else None, analysis,
                                _owners_for(inputs, tag, pool, analysis)))
    return suspects, notes


def _facts(inputs: BundleInputs, suspects: Sequence[Suspect], created: dt.datetime, notes: Sequence[str]
           ) -> dict[str, Any]:
    snap = inputs.snapshot
    rep = inputs.report
    return {
        "schema": FACTS_SCHEMA,
        "generator": f"pooltop {__version__}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "host": snap.host.to_json(),
        "source": snap.source,
        "snapshot": {"origin": inputs.snapshot_origin,
                     "taken_at": snap.taken_at.isoformat().replace("+00:00", "Z"),
                     "totals": snap.totals.to_json(), "counters": len(snap.counters),
                     "warnings": list(snap.warnings)},
        "recording": None if rep is None else {
            "file": inputs.recording_name, "first_at": rep.first_at.isoformat(),
            "last_at": rep.last_at.isoformat(), "samples": rep.samples, "span_s": rep.span_s},
        "collector": {"pooltop": __version__, "python": sys.version.split()[0],
                      "platform": sys.platform, "machine": platform.machine()},
        "suspects": [
            {
                "tag": s.tag,
                "pool": s.pool.label,
                "why": s.why,
                "counters": s.counters,
                "analysis": s.analysis.to_json() if s.analysis is not None else None,
                "owners": [candidate_to_json(o) for o in s.owners],
                "driver_facts": any(o.driver is not None for o in s.owners),
            }
            for s in suspects
        ],
        "notes": list(notes),
    }


def _suspect_line(s: Suspect) -> str:
    size = f"{human_bytes(s.counters['bytes'])} in use" if s.counters else "not in the snapshot"
    grow = ""
    if s.analysis is not None:
        a = s.analysis
        grow = f", grew {human_bytes(a.growth_bytes)} ({human_bytes(a.projected_bytes_per_day)}/day)"
    owner = s.owners[0] if s.owners else None
    who = "owner unknown"
    if owner is not None:
        who = f"{owner.owner} {owner.description}".strip()
        d = owner.driver
        if d is not None:
            bits = [d.path, f"version {d.file_version}" if d.file_version else "",
                    d.company or "", {True: "signed", False: "unsigned", None: ""}[d.signed]]
            who += " [" + ", ".join(b for b in bits if b) + "]"
    name = s.tag.strip() or repr(s.tag)
    return f"  {name} ({s.pool.label}): {s.why}; {size}{grow}; {who}"


def _readme(inputs: BundleInputs, parts: Sequence[BundlePart], suspects: Sequence[Suspect],
            notes: Sequence[str], created: dt.datetime) -> str:
    snap = inputs.snapshot
    h = snap.host
    who = " ".join(x for x in (h.name, h.os, h.os_version, h.arch) if x) or "an unnamed machine"
    lines = [
        "pooltop evidence bundle",
        "=======================",
        "",
        f"Made by pooltop {__version__} on {created:%Y-%m-%d %H:%M:%S} UTC about {who}.",
        "pooltop watches kernel memory per pool tag (Windows) or slab cache (Linux) and flags the ones",
        "that keep growing. This bundle holds the evidence for the tags below, and the commands that",
        "capture where in the code they are allocated.",
        "",
        "Suspects",
        "--------",
        *(_suspect_line(s) for s in suspects),
        "",
        "Files",
        "-----",
    ]
    for part in parts:
        lines += textwrap.wrap(f"{part.name}: {part.description}", 96, initial_indent="  ",
                               subsequent_indent="      ")
    lines += [
        "  README.txt: this file.",
        "",
        "What to do next",
        "---------------",
    ]
    if _is_linux(snap):
        lines += textwrap.wrap(
            "Run capture/linux-slab.sh as root on the leaking machine while the caches grow, and send "
            "back the text files it writes (stacks of the code that allocates from the suspect caches).",
            96)
    else:
        lines += textwrap.wrap(
            "Run capture/xperf-pool.cmd from an elevated prompt on the leaking machine while the tags grow "
            "(or use capture/pool.wprp with wpr), and send back pool.etl. In WPA, Memory > Pool shows the "
            "outstanding allocations of each tag with the stack that made them.", 96)
    if inputs.attributions:
        lines += ["", *textwrap.wrap(
            "The who-*.txt files name the kernel functions (call sites) and processes that allocated from "
            "a cache while pooltop traced it (`pooltop who`), ranked by the bytes still allocated when the "
            "trace ended: code whose objects stay outstanding trace after trace is the leak's likely "
            "author. who-*.json hold the same (schema pooltop.who/1).", 96)]
    if inputs.report is None:
        lines += ["", *textwrap.wrap(
            "No recording was included, so there is no leak verdict: one snapshot shows sizes, not growth. "
            "`pooltop record -o rec.db` for some hours, then `pooltop bundle --recording rec.db`, gives one.",
            96)]
    if notes:
        lines += ["", "Notes", "-----", *(f"  - {n}" for n in notes)]
    return "\n".join(lines).replace("\n", "\r\n") + "\r\n"


def assemble(inputs: BundleInputs) -> list[BundlePart]:
    """Every part of the bundle, README.txt last, in memory."""
    created = inputs.created_at or dt.datetime.now(dt.UTC)
    snap = inputs.snapshot
    suspects, notes = choose_suspects(inputs)
    notes = list(notes) + [f"snapshot: {w}" for w in snap.warnings] + list(inputs.notes)
    parts = [
        BundlePart("snapshot.json", format_json(snap).encode("utf-8"),
                   f"every counter at {snap.taken_at:%Y-%m-%d %H:%M:%S} UTC ({inputs.snapshot_origin}), "
                   "pooltop's JSON snapshot format (schema pooltop.snapshot/1)."),
        BundlePart("snapshot.txt", format_text(snap).encode("utf-8"),
                   "the same snapshot as a poolmon-style table."),
    ]
    rep = inputs.report
    if rep is not None and rep.damage is not None:
        notes.append(f"the recording is damaged: {rep.damage}; the report covers the samples before it")
    if rep is not None:
        parts.append(BundlePart("report.txt", render_text(rep, False, None).encode("utf-8"),
                                f"the leak report over the recording {inputs.recording_name or ''}: "
                                "verdict per tag (leak, suspect, watch), growth, trend per day."))
        parts.append(BundlePart("report.json", render_json(rep, True, None).encode("utf-8"),
                                "the same report as JSON (schema pooltop.report/1), every counter included."))
        try:
            page = render_html(rep, False, None)
        except PooltopError as e:
            inputs.note(notes, f"report.html is missing: {e}")
        else:
            parts.append(BundlePart("report.html", page.encode("utf-8"),
                                    "the report as one web page with a chart per suspect and the system "
                                    "totals over time."))
    host = snap.host.name
    if _is_linux(snap):
        caches = [(s.tag, (s.counters or {}).get("object_size")) for s in suspects]
        capture: CaptureSet = linux_commands(caches, host)
    else:
        capture = windows_commands([s.tag for s in suspects], host)
    notes += list(capture.notes)
    parts += [BundlePart(f.name, f.text.encode("utf-8"), f.description) for f in capture.files]
    parts += inputs.attributions
    facts = _facts(inputs, suspects, created, notes)
    facts_text = json.dumps(facts, indent=2, ensure_ascii=False) + "\n"
    parts.append(BundlePart("facts.json", facts_text.encode("utf-8"),
                            "host facts and, per suspect, its counters, verdict and owner candidates with "
                            "the driver's path, version, company and signature state where known."))
    parts.append(BundlePart("README.txt", _readme(inputs, parts, suspects, notes, created).encode("utf-8"),
                            "this file."))
    return parts


def _check_name(name: str) -> None:
    pieces = name.split("/")
    bad_piece = any(p in ("", ".", "..") for p in pieces)
    if not name or name.startswith("/") or "\\" in name or ":" in name or bad_piece:
        raise PooltopError(f"refusing a bundle member named {name!r}")


def write_bundle(path: str, parts: Sequence[BundlePart], when: dt.datetime | None = None) -> None:
    """Write the zip atomically: all of it at `path`, or nothing (and an earlier file stays)."""
    from pooltop.atomic import atomic_write

    stamp = (when or dt.datetime.now(dt.UTC)).timetuple()[:6]
    date_time = (max(stamp[0], 1980), *stamp[1:])
    for part in parts:
        _check_name(part.name)
    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for part in parts:
            info = zipfile.ZipInfo(part.name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, part.data)


def make_bundle(path: str, inputs: BundleInputs) -> list[BundlePart]:
    parts = assemble(inputs)
    write_bundle(path, parts, inputs.created_at)
    return parts
