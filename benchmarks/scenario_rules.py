"""Judging the recorded leak scenarios: pooltop's rules beside two naive ones, and the figures.

Rules, each giving per sample and cache whether it is flagged (and, for pooltop, at LEAK):
- `report`: `pooltop report FILE --format json --all`, the official path; a leak is found when the
  verdict on the whole recording says suspect or leak for a target. Its time to detect comes from
  the same command on copies of the recording cut short every 10 s (30 s for slow leaks).
- `live`: the recording replayed sample by sample through the Tracker (the live view's path);
  flagged from the first sample a cache is suspect or leak.
- `judge`: pooltop.judge.judge_matrix on the trailing leak window (JudgeThresholds.leak_window_s,
  what the live view keeps) at every sample, with reclaimable caches marked and memory pressure
  judged from the window's MemAvailable and stall totals as the Tracker does. Before the judge
  exists (older branches) the Tracker's scorer, tracking.score_window, over its default window.
- `top5-dDiff`: poolmon sorted by change. At each refresh the caches are ranked by the change of
  active objects since the previous refresh (dDiff); a cache is flagged once it has been among the
  5 largest positive changes at every refresh for a sustained 10 s.
- `pal-10%`: PAL-style fixed threshold over the log. A cache is flagged from the first sample whose
  bytes exceed the recording's first sample of it by more than 10% and by at least 64 KiB (so that
  a cache of a few pages gaining one is not "10% growth"; 64 KiB was the old live LEAK floor).

A leak scenario is found when any of its target caches (the unreclaimable ones its object grows)
is flagged; the time to detect runs from the workload's start. A false alarm is a cache at LEAK
(pooltop rules) or flagged (naive rules) anywhere in a normal scenario's recording. The idle
control's alarms are printed apart: they are the shared machine's background noise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.model import Pool, Snapshot
from pooltop.record.replay import ReplaySource
from pooltop.tracking import Tracker

try:
    from pooltop.judge import JudgeThresholds, LeakLevel, judge_matrix, under_memory_pressure

    HAVE_JUDGE = True
except ImportError:  # a branch before the judge: the Tracker's scorer stands in
    from pooltop.tracking import LeakLevel, score_window

    HAVE_JUDGE = False

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TOP_N, TOP_SUSTAIN_S = 5, 10.0
PAL_SHARE, PAL_MIN_BYTES = 0.10, 64 * 1024
FAST_TARGET_S, SLOW_TARGET_S = 60.0, 300.0
#: the report is timed on copies of a leak's recording cut short every this many seconds (0: off)
REPORT_STEP_S = 10.0


@dataclass
class Recorded:
    """A recording's slab caches as matrices: T samples x N caches (NaN where a cache is absent)."""

    times: FloatArray  # wall clock, seconds
    tags: list[str]
    bytes: FloatArray
    objects: FloatArray
    reclaimable: BoolArray
    snapshots: list[Snapshot]  # as the live source gives them (see _as_live)
    available: FloatArray  # MemAvailable per sample, bytes (NaN where unknown)
    stall_us: FloatArray | None  # memory pressure stall total per sample, where known


@dataclass
class Marks:
    """Per sample and cache: flagged (suspect or leak, or a naive rule's flag) and at LEAK."""

    detect: BoolArray
    leak: BoolArray
    timed: bool = True  # False: one verdict for the whole recording (report), no time to detect
    verdicts: dict[str, str] | None = None


def load_recording(path: str, reclaim: dict[str, bool], stall_us: int | None = None) -> Recorded:
    src = ReplaySource(path)
    snaps = []
    try:
        while True:
            snaps.append(src.current())
            if src.at_end:
                break
            src.step()
    finally:
        src.close()
    tags: list[str] = []
    col: dict[str, int] = {}
    for s in snaps:
        for t, p in zip(s.counters.tags, s.counters.pools.tolist(), strict=True):
            if p == Pool.SLAB and t not in col:
                col[t] = len(tags)
                tags.append(t)
    b = np.full((len(snaps), len(tags)), np.nan)
    o = np.full((len(snaps), len(tags)), np.nan)
    for i, s in enumerate(snaps):
        c = s.counters
        for j, (t, p) in enumerate(zip(c.tags, c.pools.tolist(), strict=True)):
            if p == Pool.SLAB:
                b[i, col[t]] = c.bytes[j]
                o[i, col[t]] = c.diff[j]
    times = np.array([s.taken_at.timestamp() for s in snaps])
    recl = np.array([reclaim.get(t, t.startswith("kmalloc-rcl-")) for t in tags], dtype=np.bool_)
    live = [_as_live(s, reclaim, stall_us) for s in snaps]
    available = np.array([_number(s.totals.memory_available) for s in live])
    stall = np.array([_number(getattr(s.totals, "memory_stall_us", None)) for s in live])
    return Recorded(times, tags, b, o, recl, live, available, None if np.isnan(stall).all() else stall)


def _number(v: int | None) -> float:
    return math.nan if v is None else float(v)


def _as_live(snap: Snapshot, reclaim: dict[str, bool], stall_us: int | None) -> Snapshot:
    """The snapshot with what the live Linux source adds and older recordings lack: the
    `reclaimable` column (from the labels' record-time /sys/kernel/slab/*/reclaim_account) and the
    memory stall total (from the labels' /proc/pressure/memory readings), so the Tracker judges
    reclaimable caches and memory pressure as the live view would."""
    c = snap.counters
    if "reclaimable" not in c.extra:
        column = np.fromiter((reclaim.get(t, t.startswith("kmalloc-rcl-")) for t in c.tags), dtype=np.int64,
                             count=len(c.tags))
        column.flags.writeable = False
        counters = dataclasses.replace(c, extra={**c.extra, "reclaimable": column})
        snap = dataclasses.replace(snap, counters=counters)
    totals = snap.totals
    if stall_us is not None and getattr(totals, "memory_stall_us", 0) is None:
        snap = dataclasses.replace(snap, totals=dataclasses.replace(totals, memory_stall_us=stall_us))
    return snap


def _stall_if_flat(label: dict[str, Any]) -> int | None:
    """The stall total to stand in for the recording's missing one: only when it did not move
    during the scenario (then every sample had that value); None otherwise."""
    start, end = (label.get("psi_some_us") or (None, None))
    return int(start) if start is not None and start == end else None


# --- the rules -----------------------------------------------------------------------------------


def _report_verdicts(path: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pooltop", "report", path, "--format", "json", "--all"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"pooltop report {path}: {out.stderr.strip().splitlines()[-1:]}")
    return {s["tag"]: s["verdict"] for s in json.loads(out.stdout)["suspects"] if s["pool"] == "slab"}


def _truncated_copy(path: str, until_s: float, into: str) -> str:
    """The recording as it was at wall time `until_s`: a copy without the later samples."""
    dest = os.path.join(into, f"cut-{until_s:.0f}.db")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
        dst.execute("DELETE FROM samples WHERE wall_us > ?", (int(until_s * 1e6),))
        dst.commit()
    finally:
        src.close()
        dst.close()
    return dest


def report_rule(path: str, rec: Recorded, label: dict[str, Any]) -> Marks:
    """The report on the whole recording; for a leak, also on the recording cut short every
    REPORT_STEP_S seconds after the workload started (3x that for slow leaks), which times the
    detection to that resolution."""
    detect = np.zeros(rec.bytes.shape, dtype=np.bool_)
    leak = np.zeros(rec.bytes.shape, dtype=np.bool_)

    def mark(row: int, verdicts: dict[str, str]) -> None:
        for j, t in enumerate(rec.tags):
            detect[row, j] |= verdicts.get(t) in ("suspect", "leak")
            leak[row, j] |= verdicts.get(t) == "leak"

    verdicts = _report_verdicts(path)
    mark(len(rec.times) - 1, verdicts)
    timed = bool(REPORT_STEP_S) and label["kind"] == "leak"
    if timed:
        start = dt.datetime.fromisoformat(label["start"]).timestamp()
        with tempfile.TemporaryDirectory(prefix="pooltop-scen-cut-") as tmp:
            step = REPORT_STEP_S if label["rate"] >= 50 else 3 * REPORT_STEP_S  # slow leaks: 30 s
            cut = start + step
            while cut < rec.times[-1]:
                row = int(np.searchsorted(rec.times, cut, side="right")) - 1
                cut_verdicts = _report_verdicts(_truncated_copy(path, cut, tmp))
                mark(row, cut_verdicts)
                if all(cut_verdicts.get(t) == "leak" for t in label["targets"] if t in rec.tags):
                    break
                cut += step
    return Marks(detect, leak, timed=timed, verdicts=verdicts)


def live_rule(path: str, rec: Recorded, label: dict[str, Any]) -> Marks:
    tracker = Tracker()
    col = {t: j for j, t in enumerate(rec.tags)}
    levels = np.zeros(rec.bytes.shape, dtype=np.int8)
    for i, snap in enumerate(rec.snapshots):
        sample = tracker.update(snap)
        lv = np.asarray(sample.leak.levels)
        for j, (t, p) in enumerate(zip(snap.counters.tags, snap.counters.pools.tolist(), strict=True)):
            if p == Pool.SLAB:
                levels[i, col[t]] = lv[j]
    return Marks(levels >= LeakLevel.SUSPECT, levels >= LeakLevel.LEAK)


def judge_rule(path: str, rec: Recorded, label: dict[str, Any]) -> Marks:
    levels = np.zeros(rec.bytes.shape, dtype=np.int8)
    if HAVE_JUDGE:
        th = JudgeThresholds()
        for i in range(len(rec.times)):
            lo = int(np.searchsorted(rec.times, rec.times[i] - th.leak_window_s))
            stall = None if rec.stall_us is None else rec.stall_us[lo : i + 1]
            pressure = under_memory_pressure(rec.available[lo : i + 1], stall)
            j = judge_matrix(rec.times[lo : i + 1], rec.bytes[lo : i + 1], reclaimable=rec.reclaimable,
                             under_pressure=pressure, thresholds=th)
            levels[i] = j.levels
    else:
        window = Tracker().window
        for i in range(len(rec.times)):
            lo = max(0, i + 1 - window)
            levels[i] = score_window(rec.times[lo : i + 1], rec.bytes[lo : i + 1]).levels
    return Marks(levels >= LeakLevel.SUSPECT, levels >= LeakLevel.LEAK)


def top5_rule(path: str, rec: Recorded, label: dict[str, Any]) -> Marks:
    d = np.diff(rec.objects, axis=0)
    d = np.where(np.isnan(d), -np.inf, d)
    in_top = np.zeros(rec.objects.shape, dtype=np.bool_)
    for i in range(len(d)):
        order = np.argsort(-d[i], kind="stable")[:TOP_N]
        in_top[i + 1, order[d[i, order] > 0]] = True
    flagged = np.zeros_like(in_top)
    run = np.zeros(in_top.shape[1])
    run_start = np.full(in_top.shape[1], np.nan)
    for i in range(len(in_top)):
        run = np.where(in_top[i], run + 1, 0)
        run_start = np.where(in_top[i] & (run == 1), rec.times[i - 1] if i else rec.times[0], run_start)
        flagged[i] = in_top[i] & (rec.times[i] - run_start >= TOP_SUSTAIN_S)
    return Marks(flagged, flagged)


def pal_rule(path: str, rec: Recorded, label: dict[str, Any]) -> Marks:
    first = _first_valid(rec.bytes)
    with np.errstate(invalid="ignore"):
        flagged = (rec.bytes > first * (1 + PAL_SHARE)) & (rec.bytes - first >= PAL_MIN_BYTES)
    return Marks(flagged, flagged)


def _first_valid(values: FloatArray) -> FloatArray:
    """Each column's first sample that is not NaN (a cache that appeared later starts there)."""
    valid = ~np.isnan(values)
    rows = np.argmax(valid, axis=0)
    out: FloatArray = values[rows, np.arange(values.shape[1])]
    return out


RULES: dict[str, Callable[[str, Recorded, dict[str, Any]], Marks]] = {
    "pooltop report": report_rule,
    "pooltop live": live_rule,
    "pooltop judge" if HAVE_JUDGE else "score_window": judge_rule,
    f"top{TOP_N}-dDiff": top5_rule,
    "pal-10%": pal_rule,
}


# --- outcomes ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    kind: str
    rate: float
    rule: str
    found: bool  # leak scenario: a target cache flagged
    detect_s: float | None  # seconds from the workload's start to the first flag of a target
    leak_s: float | None  # ... to the first LEAK of a target
    per_target: dict[str, tuple[float | None, float | None]]
    false_leaks: list[str]  # caches at LEAK (flagged) in a normal or control scenario
    false_suspects: list[str]  # caches at suspect or above (flagged) there


def _first(mask: BoolArray, times: FloatArray, start: float, timed: bool) -> float | None:
    """Seconds from `start` to the first flag at or after it; -0.0 when the cache was already
    flagged just before the workload began (background noise, shown as "pre"); NaN untimed."""
    hits = np.flatnonzero(mask & (times >= start - 0.5))
    if not len(hits):
        return None
    if not timed:
        return math.nan
    i = int(hits[0])
    if times[i] <= start and i > 0 and mask[i - 1]:
        return -0.0
    return max(float(times[i] - start), 0.0)


def outcome(label: dict[str, Any], rule: str, rec: Recorded, marks: Marks) -> Outcome:
    start = dt.datetime.fromisoformat(label["start"]).timestamp()
    per: dict[str, tuple[float | None, float | None]] = {}
    for target in label["targets"]:
        if target in rec.tags:
            j = rec.tags.index(target)
            per[target] = (_first(marks.detect[:, j], rec.times, start, marks.timed),
                           _first(marks.leak[:, j], rec.times, start, marks.timed))
    detects = [d for d, _ in per.values() if d is not None]
    leaks = [k for _, k in per.values() if k is not None]
    found = bool(detects)
    if marks.verdicts is not None:  # the report: found means its verdict on the whole recording
        found = any(marks.verdicts.get(t) in ("suspect", "leak") for t in label["targets"])
    normal = label["kind"] != "leak"
    false_leaks = [t for j, t in enumerate(rec.tags) if normal and marks.leak[:, j].any()]
    false_suspects = [t for j, t in enumerate(rec.tags) if normal and marks.detect[:, j].any()]
    return Outcome(label["name"], label["kind"], label["rate"], rule, found,
                   min(detects) if detects else None, min(leaks) if leaks else None, per, false_leaks,
                   false_suspects)


def growth_lines(label: dict[str, Any], rec: Recorded, top: int = 6) -> list[str]:
    """The caches that grew most over the workload, with bytes/s and objects/s."""
    start = dt.datetime.fromisoformat(label["start"]).timestamp()
    end = dt.datetime.fromisoformat(label["end"]).timestamp()
    a = max(0, int(np.searchsorted(rec.times, start, side="right")) - 1)
    b = max(a, int(np.searchsorted(rec.times, end, side="right")) - 1)
    secs = max(rec.times[b] - rec.times[a], 1e-9)
    grew = np.nan_to_num(rec.bytes[b] - rec.bytes[a])
    objs = np.nan_to_num(rec.objects[b] - rec.objects[a])
    out = []
    for j in np.argsort(-grew)[:top]:
        if grew[j] <= 0:
            break
        mark = "*" if rec.tags[j] in label["targets"] else ""
        mark += " (reclaimable)" if rec.reclaimable[j] else ""
        out.append(f"{rec.tags[j]}{mark} +{grew[j] / 1024:.0f} KiB ({grew[j] / secs / 1024:.2f} KiB/s, "
                   f"{objs[j] / secs:.1f} obj/s)")
    return out


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    if math.isnan(v):
        return "end"
    return "pre" if math.copysign(1, v) < 0 else f"{v:.0f}s"


def print_scenario(label: dict[str, Any], rec: Recorded, outs: list[Outcome], verdicts: dict[str, str]
                   ) -> None:
    print(f"\n== {label['name']} ({label['kind']}, {label['note']}; {label['duration_s']:g} s, "
          f"{len(rec.times)} samples)")
    print("   grew: " + ("; ".join(growth_lines(label, rec)) or "nothing"))
    if label["targets"]:
        cells = ", ".join(f"{t}={verdicts.get(t, 'absent')}" for t in label["targets"])
        print(f"   report verdicts: {cells}")
    for o in outs:
        if label["kind"] == "leak":
            cells = ", ".join(f"{t} {_fmt_s(d)}/{_fmt_s(k)}" for t, (d, k) in o.per_target.items())
            print(f"   {o.rule:16} {'FOUND' if o.found else 'missed':6} (suspect/leak at) {cells}")
        else:
            more = f"; suspect: {', '.join(o.false_suspects)}" if o.false_suspects != o.false_leaks else ""
            names = ", ".join(o.false_leaks) or "-"
            print(f"   {o.rule:16} {len(o.false_leaks)} at LEAK/flagged: {names}{more}")


def _median(xs: list[float]) -> str:
    xs = [x for x in xs if not math.isnan(x)]
    return f"{statistics.median(xs) + 0.0:.0f}s" if xs else "n/a"  # + 0.0: no "-0s"


def print_table(outcomes: list[Outcome]) -> None:
    print("\nrule              recall  fast<=60s  slow<=5min  median detect fast/slow  "
          "false LEAK (normal)  idle noise  suspect+ (normal / idle)")
    for rule in RULES:
        mine = [o for o in outcomes if o.rule == rule]
        leaks = [o for o in mine if o.kind == "leak"]
        fast = [o for o in leaks if o.rate >= 50]
        slow = [o for o in leaks if o.rate < 50]
        found = sum(o.found for o in leaks)

        def within(group: list[Outcome], limit: float) -> str:
            if any(o.detect_s is not None and math.isnan(o.detect_s) for o in group):
                return "n/a"
            timely = sum(o.found and o.detect_s is not None and o.detect_s <= limit for o in group)
            return f"{timely}/{len(group)}"

        times_f = [o.detect_s for o in fast if o.found and o.detect_s is not None]
        times_s = [o.detect_s for o in slow if o.found and o.detect_s is not None]
        normal = sum(len(o.false_leaks) for o in mine if o.kind == "normal")
        idle = sum(len(o.false_leaks) for o in mine if o.kind == "control")
        sus_normal = sum(len(o.false_suspects) for o in mine if o.kind == "normal")
        sus_idle = sum(len(o.false_suspects) for o in mine if o.kind == "control")
        print(f"{rule:16} {found:>3}/{len(leaks):<3} {within(fast, FAST_TARGET_S):>9}  "
              f"{within(slow, SLOW_TARGET_S):>10}  {_median(times_f):>11} / {_median(times_s):<10} "
              f"{normal:>10}          {idle:>5}       {sus_normal:>5} / {sus_idle}")
    print("\nfalse alarms on normal activity (scenario: caches; * = also flagged in the idle control):")
    idle_names = {(o.rule, t) for o in outcomes if o.kind == "control" for t in o.false_leaks}
    for rule in RULES:
        parts = [f"{o.scenario}: " + ", ".join(t + ("*" if (rule, t) in idle_names else "")
                                               for t in o.false_leaks)
                 for o in outcomes if o.rule == rule and o.kind == "normal" and o.false_leaks]
        idle = [t for o in outcomes if o.rule == rule and o.kind == "control" for t in o.false_leaks]
        print(f"  {rule:16} {'; '.join(parts) or 'none'}" + (f"   [idle: {', '.join(idle)}]" if idle else ""))


def evaluate(folder: str, only: list[str] | None = None) -> list[Outcome]:
    with open(os.path.join(folder, "scenarios.json")) as fh:
        doc = json.load(fh)
    reclaim = {k: bool(v) for k, v in doc.get("reclaimable", {}).items()}
    labels = [r for r in doc["scenarios"] if only is None or r["name"] in only]
    print(f"judging {len(labels)} recordings in {folder} with "
          f"{'pooltop.judge' if HAVE_JUDGE else 'the Tracker scorer (no pooltop.judge here)'}")
    outcomes: list[Outcome] = []
    for label in labels:
        path = os.path.join(folder, label["file"])
        rec = load_recording(path, reclaim, _stall_if_flat(label))
        outs, verdicts, failed = [], {}, []
        for rule, fn in RULES.items():
            try:
                marks = fn(path, rec, label)
            except Exception as exc:  # one broken rule (a branch mid-change) must not hide the others
                failed.append(f"   {rule:16} failed: {exc}")
                continue
            if marks.verdicts is not None:
                verdicts = marks.verdicts
            outs.append(outcome(label, rule, rec, marks))
        print_scenario(label, rec, outs, verdicts)
        for line in failed:
            print(line)
        outcomes += outs
    print_table(outcomes)
    return outcomes
