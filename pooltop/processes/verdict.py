"""Driver or application? One line that says what grows over an observed window.

Compares the growth of the system's kernel memory (Windows: paged + nonpaged pool totals; Linux:
unreclaimable slab, Totals.slab_unreclaimable) with what processes do over the same samples:

- "kernel/driver leak": the pool grows and no process grows with it. On Windows "with it" means
  the pool charged to processes (their paged + nonpaged quota) accounts for at least
  `attribution_share` of the pool's growth. Linux charges no slab to processes, so a growing slab
  is always kernel-side; a process whose open files grow at the same time is named as a hint
  (its files are kernel objects: closing them frees the slab).
- "process NAME[PID] is growing": a process's private memory (or, on Windows, its pool charge)
  grows steadily, and the kernel side either does not grow or grows with it.
- "nothing is growing".

Pure: judge() is a function of (system snapshot, process snapshot) pairs and thresholds. Growth
statistics come from tracking.score_window (ups, downs, Theil-Sen slope), so "steady growth"
means the same thing here as in the leak column.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pooltop.model import CounterSet, Pool, Snapshot, Totals, human_bytes
from pooltop.processes.source import UNKNOWN, ProcessOS, process_os, split_tag
from pooltop.processes.table import field_values
from pooltop.tracking import FloatArray, LeakScores, LeakThresholds, compute_deltas, score_window

MiB = 1 << 20


class VerdictKind(enum.Enum):
    KERNEL = "kernel"  # kernel/driver leak
    PROCESS = "process"  # a named process is growing
    NOTHING = "nothing"
    UNKNOWN = "unknown"  # fewer than two samples

    @property
    def label(self) -> str:
        return self.value


@dataclass(frozen=True)
class VerdictThresholds:
    """What counts as growing over the window. Growth is last - first sample; "steady" is the
    share of intervals that grew among those that changed (monotony) and a minimum number of them."""

    system_min_growth_bytes: int = 4 * MiB
    system_min_growth_share: float = 0.005  # ... or this share of the starting size, if larger
    process_min_growth_bytes: int = 8 * MiB  # private memory
    process_min_growth_share: float = 0.02
    process_min_pool_growth_bytes: int = 1 * MiB  # Windows: pool charged to one process
    min_monotony: float = 0.7
    min_ups: int = 3  # intervals that grew (fewer when the window has fewer intervals)
    #: Windows: the processes' pool charge must account for this share of the pool's growth
    attribution_share: float = 0.5
    #: a process whose handles / open files grew by this many is named as a hint
    handles_hint: int = 1000


@dataclass(frozen=True)
class ProcessGrowth:
    """One process's change over the window."""

    tag: str
    name: str
    pid: int | None
    private_growth: int
    private_rate: float  # bytes per second (robust slope)
    pool_growth: int | None  # Windows: paged + nonpaged pool charge; None on Linux
    handles_growth: int | None  # handles (Windows) / open files (Linux); None when not readable
    growing: bool  # passes the thresholds on private memory or pool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"private_rate": round(self.private_rate, 1)}


@dataclass(frozen=True)
class CounterGrowth:
    """A kernel tag / slab cache that grew between the window's first and last system sample."""

    tag: str
    pool: str
    bytes_growth: int


@dataclass(frozen=True)
class VerdictEvidence:
    os: ProcessOS
    seconds: float
    samples: int
    system_measure: str  # "unreclaimable slab" | "paged+nonpaged pool"
    system_start: int | None
    system_end: int | None
    system_growth: int | None
    system_rate: float | None  # bytes per second (robust slope)
    system_growing: bool
    #: Windows: change of the pool charged to all processes; None on Linux (nothing is charged)
    attributed_growth: int | None
    growing_processes: tuple[ProcessGrowth, ...]  # steady growers, most first (at most 10)
    handle_growers: tuple[ProcessGrowth, ...]  # most handles / open files gained (at most 3)
    top_counters: tuple[CounterGrowth, ...]  # kernel tags / caches that grew most (at most 3)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["growing_processes"] = [p.to_json() for p in self.growing_processes]
        out["handle_growers"] = [p.to_json() for p in self.handle_growers]
        out["seconds"] = round(self.seconds, 3)
        if self.system_rate is not None:
            out["system_rate"] = round(self.system_rate, 1)
        return out


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    text: str  # one line, for the UI header and `pooltop doctor`
    evidence: VerdictEvidence
    subject: str | None = None  # the process named (tag), when kind is PROCESS

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "text": self.text, "subject": self.subject,
                "evidence": self.evidence.to_json()}


# --- measures ---------------------------------------------------------------------------------------


def system_measure(os_name: ProcessOS) -> tuple[str, Callable[[Totals], int | None]]:
    """The system-wide kernel memory figure compared, and how to read it from Totals."""
    if os_name == "windows":
        def pool(t: Totals) -> int | None:
            if t.paged_pool is None and t.nonpaged_pool is None:
                return None
            return (t.paged_pool or 0) + (t.nonpaged_pool or 0)

        return "paged+nonpaged pool", pool
    return "unreclaimable slab", lambda t: t.slab_unreclaimable


# Growth statistics only: every column with one rising step and net growth gets a slope.
_SCORING = LeakThresholds(min_samples=2, watch_min_ups=1)


def _first_valid(values: FloatArray) -> FloatArray:
    valid = ~np.isnan(values)
    rows = np.argmax(valid, axis=0)
    out: FloatArray = values[rows, np.arange(values.shape[1])]
    return out


def _steady(scores: LeakScores, start: FloatArray, min_bytes: float, share: float,
            th: VerdictThresholds) -> np.ndarray:
    """Columns that grew by enough, in most of their intervals, with a positive slope."""
    changes = scores.ups + scores.downs
    monotony = np.where(changes > 0, scores.ups / np.maximum(changes, 1), 0.0)
    need_ups = np.minimum(th.min_ups, np.maximum(scores.samples - 1, 1))
    floor = np.maximum(min_bytes, share * np.nan_to_num(np.abs(start)))
    out: np.ndarray = ((scores.growth >= floor) & (scores.slope > 0) & (monotony >= th.min_monotony)
                       & (scores.ups >= need_ups))
    return out


def _matrix(snaps: Sequence[Snapshot], tags: list[str], index: dict[str, int],
            column: Callable[[CounterSet], np.ndarray], unknown_is_nan: bool = False) -> FloatArray:
    m = np.full((len(snaps), len(tags)), np.nan)
    for t, snap in enumerate(snaps):
        c = snap.counters
        if not len(c):
            continue
        cols = np.fromiter((index[tag] for tag in c.tags), dtype=np.intp, count=len(c))
        values = column(c).astype(np.float64)
        if unknown_is_nan:
            values = np.where(values == UNKNOWN, np.nan, values)
        m[t, cols] = values
    return m


def _fmt_seconds(s: float) -> str:
    if s >= 120:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def _plus(n: float) -> str:
    return ("+" if n > 0 else "") + human_bytes(n)


def _unknown(os_name: ProcessOS, label: str, samples: int) -> Verdict:
    ev = VerdictEvidence(os_name, 0.0, samples, label, None, None, None, None, False, None, (), (), ())
    return Verdict(VerdictKind.UNKNOWN, "not enough samples yet (the verdict needs two)", ev)


def judge(
    samples: Sequence[tuple[Snapshot, Snapshot]],
    thresholds: VerdictThresholds | None = None,
) -> Verdict:
    """The verdict over (system snapshot, process snapshot) pairs, oldest first.

    The system snapshot is the kernel source's (its Totals are read; its counters, when present
    in the first and last pair, name the tags / caches that grew most); the process snapshot is
    a ProcessSource's.
    """
    th = thresholds or VerdictThresholds()
    os_name: ProcessOS = process_os(samples[-1][1].source) if samples else "linux"
    label, measure = system_measure(os_name)
    if len(samples) < 2:
        return _unknown(os_name, label, len(samples))
    systems = [s for s, _ in samples]
    procs = [p for _, p in samples]

    # The kernel side.
    sys_times = np.array([s.monotonic_ns for s in systems], dtype=np.float64) / 1e9
    sys_raw = [measure(s.totals) for s in systems]
    sys_values = np.array([[np.nan if v is None else float(v)] for v in sys_raw])
    have_system = bool(np.isfinite(sys_values).sum() >= 2)
    sys_start = sys_end = sys_growth = None
    sys_rate: float | None = None
    sys_growing = False
    if have_system:
        s_scores = score_window(sys_times, sys_values, _SCORING)
        finite = sys_values[np.isfinite(sys_values[:, 0]), 0]
        sys_start, sys_end = int(finite[0]), int(finite[-1])
        sys_growth = sys_end - sys_start
        sys_rate = float(s_scores.slope[0])
        sys_growing = bool(_steady(s_scores, finite[:1], th.system_min_growth_bytes,
                                   th.system_min_growth_share, th)[0])

    # The processes.
    times = np.array([p.monotonic_ns for p in procs], dtype=np.float64) / 1e9
    seconds = float(times[-1] - times[0])
    tags: list[str] = []
    index: dict[str, int] = {}
    for p in procs:
        for tag in p.counters.tags:
            if tag not in index:
                index[tag] = len(tags)
                tags.append(tag)
    private = _matrix(procs, tags, index, lambda c: c.bytes)
    handles = _matrix(procs, tags, index, lambda c: c.diff, unknown_is_nan=True)
    alive = ~np.isnan(private[-1]) if len(tags) else np.zeros(0, dtype=np.bool_)
    p_scores = score_window(times, private, _SCORING)
    grow_private = _steady(p_scores, _first_valid(private), th.process_min_growth_bytes,
                           th.process_min_growth_share, th) & alive
    pool_growth: np.ndarray | None = None
    grow_pool = np.zeros(len(tags), dtype=np.bool_)
    attributed: int | None = None
    if os_name == "windows":
        pool = _matrix(procs, tags, index, lambda c: field_values(c, "pool"))
        q_scores = score_window(times, pool, _SCORING)
        pool_growth = q_scores.growth
        grow_pool = _steady(q_scores, _first_valid(pool), th.process_min_pool_growth_bytes, 0.0, th) & alive
        # Net change of the pool charged to processes (exits release their charge, starts add it),
        # the part of the pool's change that processes account for.
        attributed = int(np.nansum(pool[-1]) - np.nansum(pool[0]))
    handles_growth = np.where(np.isnan(handles[-1]) | np.isnan(_first_valid(handles)), np.nan,
                              handles[-1] - _first_valid(handles)) if len(tags) else np.zeros(0)

    def growth_of(i: int) -> ProcessGrowth:
        name, pid = split_tag(tags[i])
        hg = handles_growth[i]
        return ProcessGrowth(
            tag=tags[i], name=name, pid=pid,
            private_growth=int(p_scores.growth[i]),
            private_rate=float(p_scores.slope[i]),
            pool_growth=None if pool_growth is None else int(pool_growth[i]),
            handles_growth=None if np.isnan(hg) else int(hg),
            growing=bool(grow_private[i] or grow_pool[i]),
        )

    pool_first = os_name == "windows" and sys_growing
    rank_by = pool_growth if pool_first and pool_growth is not None else p_scores.growth
    grower_idx = np.flatnonzero(grow_private | grow_pool)
    grower_idx = grower_idx[np.argsort(-rank_by[grower_idx], kind="stable")][:10]
    growers = tuple(growth_of(int(i)) for i in grower_idx)
    hint_idx = np.flatnonzero(alive & (np.nan_to_num(handles_growth) >= th.handles_hint))
    hint_idx = hint_idx[np.argsort(-handles_growth[hint_idx], kind="stable")][:3]
    handle_growers = tuple(growth_of(int(i)) for i in hint_idx)

    evidence = VerdictEvidence(
        os=os_name, seconds=seconds, samples=len(samples), system_measure=label,
        system_start=sys_start, system_end=sys_end, system_growth=sys_growth, system_rate=sys_rate,
        system_growing=sys_growing, attributed_growth=attributed, growing_processes=growers,
        handle_growers=handle_growers, top_counters=_top_counters(systems),
    )
    when = f"in {_fmt_seconds(seconds)}"

    if sys_growing and sys_growth is not None:
        explained = (attributed is not None and attributed >= th.attribution_share * sys_growth
                     and pool_growth is not None and len(tags) > 0)
        if explained:
            assert pool_growth is not None
            top = int(np.argmax(np.where(alive, pool_growth, -np.inf)))
            g = growth_of(top)
            share = 100.0 * (g.pool_growth or 0) / max(sys_growth, 1)
            handles_part = f" (handles {g.handles_growth:+,})" if g.handles_growth else ""
            text = (f"process {g.tag} is growing: its pool {_plus(g.pool_growth or 0)}{handles_part} is "
                    f"{share:.0f}% of the {label}'s {_plus(sys_growth)} {when}")
            return Verdict(VerdictKind.PROCESS, text, evidence, g.tag)
        head = f"kernel/driver leak: {label} {_plus(sys_growth)} {when}"
        if attributed is not None:
            head += f", processes' pool only {_plus(attributed)}"
        elif not handle_growers:
            head += ", outside any process's memory"
        parts = [head]
        if evidence.top_counters:
            top_c = evidence.top_counters[0]
            kind = "cache" if top_c.pool == Pool.SLAB.label else "tag"
            parts.append(f"top {kind} {top_c.tag.rstrip()} {_plus(top_c.bytes_growth)}")
        if handle_growers:
            h = handle_growers[0]
            what = "files" if os_name == "linux" else "handles"
            parts.append(f"{h.tag} opened {h.handles_growth:+,} {what} (kernel objects it holds)")
        if growers:
            parts.append(f"user memory also growing: {growers[0].tag} {_plus(growers[0].private_growth)}")
        return Verdict(VerdictKind.KERNEL, "; ".join(parts), evidence)

    if growers:
        g = growers[0]
        if grow_private[index[g.tag]]:
            rate = f" ({human_bytes(g.private_rate)}/s)" if g.private_rate > 0 else ""
            what = "private memory" if os_name == "linux" else "private bytes"
            text = f"process {g.tag} is growing: {what} {_plus(g.private_growth)} {when}{rate}"
        else:
            handles_part = f" (handles {g.handles_growth:+,})" if g.handles_growth else ""
            text = f"process {g.tag} is growing: its pool {_plus(g.pool_growth or 0)} {when}{handles_part}"
        if len(growers) > 1:
            text += f"; {len(growers) - 1} more growing"
        if not have_system:
            text += f" ({label} not readable)"
        return Verdict(VerdictKind.PROCESS, text, evidence, g.tag)

    if have_system and sys_growth is not None:
        text = (f"nothing is growing: {label} {_plus(sys_growth)} {when}, no process grew steadily by "
                f"{human_bytes(th.process_min_growth_bytes)} or more")
    else:
        text = (f"nothing is growing among processes {when} ({label} not readable, so a kernel leak "
                "cannot be told)")
    return Verdict(VerdictKind.NOTHING, text, evidence)


def _top_counters(systems: Sequence[Snapshot], limit: int = 3) -> tuple[CounterGrowth, ...]:
    with_counters = [s for s in systems if len(s.counters)]
    if len(with_counters) < 2 or with_counters[0] is not systems[0] or with_counters[-1] is not systems[-1]:
        return ()
    first, last = with_counters[0], with_counters[-1]
    d = compute_deltas(first.counters, last.counters, (last.monotonic_ns - first.monotonic_ns) / 1e9)
    order = np.argsort(-d.bytes, kind="stable")[:limit]
    c = last.counters
    return tuple(CounterGrowth(c.tags[i], Pool(int(c.pools[i])).label, int(d.bytes[i]))
                 for i in order.tolist() if d.bytes[i] > 0)


class VerdictWindow:
    """The last `size` (system, process) sample pairs and their verdict, for a live header.

    System snapshots are kept without their counters (a Windows box has tens of thousands of
    tags), unless `keep_counters`; the verdict then names no top tag, which the live table shows
    anyway. Not thread-safe: one owner pushes; Verdicts are immutable.
    """

    def __init__(self, size: int = 30, thresholds: VerdictThresholds | None = None,
                 keep_counters: bool = False) -> None:
        if size < 2:
            raise ValueError("the verdict window needs at least 2 samples")
        self.thresholds = thresholds
        self.keep_counters = keep_counters
        self._pairs: deque[tuple[Snapshot, Snapshot]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._pairs)

    def push(self, system: Snapshot, processes: Snapshot) -> Verdict:
        if not self.keep_counters and len(system.counters):
            system = dataclasses.replace(system, counters=CounterSet.empty(), aliases={})
        self._pairs.append((system, processes))
        return self.verdict()

    def verdict(self) -> Verdict:
        return judge(list(self._pairs), self.thresholds)

    def clear(self) -> None:
        self._pairs.clear()
