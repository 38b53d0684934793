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

Pure: judge() is a function of (system snapshot, process snapshot) pairs, the live pool verdicts
(PoolFindings) and thresholds, in three steps: measure (the leak judge's verdicts on the system
total and on every process's private memory and pool charge, over the same evidence window as the
pools), decide (which kind), word (the line). "Steady growth" means what the leak column means:
the judge says suspect or leak. A process just started (its warm-up) is not growing until it has
grown for the judge's suspect window; pooltop's own process is never judged.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pooltop.judge import Judgements, JudgeThresholds, LeakLevel, judge_matrix, seconds_text, too_few_samples
from pooltop.model import CounterSet, Pool, Snapshot, Totals, human_bytes
from pooltop.processes.source import UNKNOWN, ProcessOS, process_os, split_tag
from pooltop.processes.table import field_values
from pooltop.tracking import FloatArray, compute_deltas

MiB = 1 << 20


class VerdictKind(enum.Enum):
    KERNEL = "kernel"  # kernel/driver leak
    PROCESS = "process"  # a named process is growing
    NOTHING = "nothing"
    UNKNOWN = "unknown"  # too few samples

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
    #: the leak judge's evidence windows (the same as the pools'): growing means suspect or more
    judge: JudgeThresholds = field(default_factory=JudgeThresholds)


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


def fitted_to(th: VerdictThresholds, seconds: float) -> VerdictThresholds:
    """Thresholds for a one-off look of `seconds` (`pooltop doctor --window`): the judge's evidence
    windows shrink to what was watched, so a 10 s look can still say "growing"; with that little
    evidence the verdict is only as good as the window."""
    jt = th.judge
    suspect = min(jt.suspect_window_s, 0.8 * seconds)
    leak = max(min(jt.leak_window_s, seconds), suspect)
    windows = dataclasses.replace(jt, suspect_window_s=suspect, leak_window_s=leak)
    return dataclasses.replace(th, judge=windows)


def _first_valid(values: FloatArray) -> FloatArray:
    valid = ~np.isnan(values)
    rows = np.argmax(valid, axis=0)
    out: FloatArray = values[rows, np.arange(values.shape[1])]
    return out


def _growing(judged: Judgements, start: FloatArray, min_bytes: float, share: float,
             th: VerdictThresholds) -> np.ndarray:
    """Columns the judge calls suspect or leak that also grew by enough for this measure, in most
    of the intervals they changed in."""
    floor = np.maximum(min_bytes, share * np.nan_to_num(np.abs(start)))
    out: np.ndarray = ((judged.levels >= LeakLevel.SUSPECT) & (judged.growth >= floor)
                       & (judged.evidence.monotony >= th.min_monotony))
    return out


def _matrix(snaps: Sequence[Snapshot], tags: list[str], index: dict[str, int],
            column: Callable[[CounterSet], np.ndarray], unknown_is_nan: bool = False) -> FloatArray:
    m = np.full((len(snaps), len(tags)), np.nan)
    for t, snap in enumerate(snaps):
        c = snap.counters
        if not len(c):
            continue
        cols = np.fromiter((index.get(tag, -1) for tag in c.tags), dtype=np.intp, count=len(c))
        values = column(c).astype(np.float64)
        if bool((cols < 0).any()):  # processes not judged (pooltop's own)
            values, cols = values[cols >= 0], cols[cols >= 0]
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


def _unknown(os_name: ProcessOS, label: str, samples: int, th: JudgeThresholds) -> Verdict:
    ev = VerdictEvidence(os_name, 0.0, samples, label, None, None, None, None, False, None, (), (), ())
    return Verdict(VerdictKind.UNKNOWN, too_few_samples(th), ev)


@dataclass(frozen=True)
class PoolFindings:
    """What the live pool table says (the leak judge over the Tracker's window): the most serious
    row, and how many rows are leak / suspect. The verdict line must agree with it."""

    tag: str
    pool: str  # Pool label
    level: LeakLevel
    growth_bytes: float
    seconds: float
    leaks: int
    suspects: int

    @classmethod
    def of(cls, counters: CounterSet, judged: Judgements) -> PoolFindings | None:
        """The top row at suspect or above (by level, then score), or None."""
        serious = np.flatnonzero(judged.levels >= LeakLevel.SUSPECT)
        if not len(serious):
            return None
        key = np.lexsort((judged.score[serious], judged.levels[serious]))
        top = int(serious[key[-1]])
        levels = judged.levels
        return cls(counters.tags[top], Pool(int(counters.pools[top])).label, judged.level(top),
                   float(judged.growth[top]), float(judged.evidence.span_s[top]),
                   int(np.count_nonzero(levels == LeakLevel.LEAK)),
                   int(np.count_nonzero(levels == LeakLevel.SUSPECT)))

    def text(self) -> str:
        kind = "cache" if self.pool == Pool.SLAB.label else "tag"
        counts = f"{self.leaks} leak, {self.suspects} suspect"
        return (f"{kind} {self.tag.rstrip()} is {self.level.label} ({_plus(self.growth_bytes)} in "
                f"{seconds_text(self.seconds)}; {counts})")


@dataclass(frozen=True)
class Measures:
    """measure()'s result: the evidence, and what decide() and word() read beside it."""

    evidence: VerdictEvidence
    grow_private: np.ndarray  # by process column
    index: dict[str, int]
    have_system: bool
    pool_top: ProcessGrowth | None  # Windows: the process charged with most pool growth


def measure(samples: Sequence[tuple[Snapshot, Snapshot]], th: VerdictThresholds,
            exclude_pids: Sequence[int] = ()) -> Measures:
    """The judge over the system measure and every process (at least two samples)."""
    os_name: ProcessOS = process_os(samples[-1][1].source)
    label, measure_of = system_measure(os_name)
    systems = [s for s, _ in samples]
    procs = [p for _, p in samples]
    jt = th.judge

    sys_times = np.array([s.monotonic_ns for s in systems], dtype=np.float64) / 1e9
    sys_raw = [measure_of(s.totals) for s in systems]
    sys_values = np.array([[np.nan if v is None else float(v)] for v in sys_raw])
    have_system = bool(np.isfinite(sys_values).sum() >= 2)
    sys_start = sys_end = sys_growth = None
    sys_rate: float | None = None
    sys_growing = False
    if have_system:
        s_judged = judge_matrix(sys_times, sys_values, thresholds=jt)
        finite = sys_values[np.isfinite(sys_values[:, 0]), 0]
        sys_start, sys_end = int(finite[0]), int(finite[-1])
        sys_growth = sys_end - sys_start
        sys_rate = s_judged.evidence.trend.slope_at(0) if s_judged.evidence.candidate[0] \
            else _plain_rate(sys_times, sys_values[:, 0])
        sys_growing = bool(_growing(s_judged, finite[:1], th.system_min_growth_bytes,
                                    th.system_min_growth_share, th)[0])

    times = np.array([p.monotonic_ns for p in procs], dtype=np.float64) / 1e9
    excluded = set(exclude_pids)
    tags: list[str] = []
    index: dict[str, int] = {}
    for p in procs:
        for tag in p.counters.tags:
            if tag not in index and split_tag(tag)[1] not in excluded:
                index[tag] = len(tags)
                tags.append(tag)
    private = _matrix(procs, tags, index, lambda c: c.bytes)
    handles = _matrix(procs, tags, index, lambda c: c.diff, unknown_is_nan=True)
    alive = ~np.isnan(private[-1]) if len(tags) else np.zeros(0, dtype=np.bool_)
    p_judged = judge_matrix(times, private, thresholds=jt)
    grow_private = _growing(p_judged, _first_valid(private), th.process_min_growth_bytes,
                            th.process_min_growth_share, th) & alive
    pool_growth: np.ndarray | None = None
    grow_pool = np.zeros(len(tags), dtype=np.bool_)
    attributed: int | None = None
    if os_name == "windows":
        pool = _matrix(procs, tags, index, lambda c: field_values(c, "pool"))
        q_judged = judge_matrix(times, pool, thresholds=jt)
        pool_growth = np.asarray(q_judged.growth)
        grow_pool = _growing(q_judged, _first_valid(pool), th.process_min_pool_growth_bytes, 0.0, th) & alive
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
            private_growth=int(p_judged.growth[i]),
            private_rate=p_judged.slope_at(i) if p_judged.evidence.candidate[i]
            else _plain_rate(times, private[:, i]),
            pool_growth=None if pool_growth is None else int(pool_growth[i]),
            handles_growth=None if np.isnan(hg) else int(hg),
            growing=bool(grow_private[i] or grow_pool[i]),
        )

    rank_by = pool_growth if os_name == "windows" and sys_growing and pool_growth is not None \
        else np.asarray(p_judged.growth)
    grower_idx = np.flatnonzero(grow_private | grow_pool)
    grower_idx = grower_idx[np.argsort(-rank_by[grower_idx], kind="stable")][:10]
    hint_idx = np.flatnonzero(alive & (np.nan_to_num(handles_growth) >= th.handles_hint))
    hint_idx = hint_idx[np.argsort(-handles_growth[hint_idx], kind="stable")][:3]
    pool_top = None
    if pool_growth is not None and len(tags) and bool(alive.any()):
        # The process charged with most of the pool's growth, whether or not it passed the thresholds.
        pool_top = growth_of(int(np.argmax(np.where(alive, pool_growth, -np.inf))))
    evidence = VerdictEvidence(
        os=os_name, seconds=float(times[-1] - times[0]), samples=len(samples), system_measure=label,
        system_start=sys_start, system_end=sys_end, system_growth=sys_growth, system_rate=sys_rate,
        system_growing=sys_growing, attributed_growth=attributed,
        growing_processes=tuple(growth_of(int(i)) for i in grower_idx),
        handle_growers=tuple(growth_of(int(i)) for i in hint_idx), top_counters=_top_counters(systems),
    )
    return Measures(evidence, grow_private, index, have_system, pool_top)


def _plain_rate(times: FloatArray, values: FloatArray) -> float:
    """(last - first) / seconds over the present samples: the rate of a series the judge found no
    trend in (it measures trends only where something grows)."""
    ok = ~np.isnan(values)
    if ok.sum() < 2:
        return 0.0
    t, v = times[ok], values[ok]
    return float((v[-1] - v[0]) / (t[-1] - t[0])) if t[-1] > t[0] else 0.0


def decide(m: Measures, th: VerdictThresholds, pools: PoolFindings | None) -> tuple[VerdictKind, str | None]:
    """Kernel (the system measure grows, or a pool row is suspect or leak, unless processes are
    charged with the growth), process, or nothing. Returns the kind and the process it names."""
    ev = m.evidence
    growers = ev.growing_processes
    if ev.system_growing and ev.system_growth is not None:
        explained = (ev.attributed_growth is not None and m.pool_top is not None
                     and ev.attributed_growth >= th.attribution_share * ev.system_growth)
        if explained:
            assert m.pool_top is not None
            return VerdictKind.PROCESS, m.pool_top.tag
        return VerdictKind.KERNEL, None
    if pools is not None:
        return VerdictKind.KERNEL, None
    if growers:
        return VerdictKind.PROCESS, growers[0].tag
    return VerdictKind.NOTHING, None


def word(kind: VerdictKind, m: Measures, th: VerdictThresholds, pools: PoolFindings | None) -> str:
    """The one line for the header and `pooltop doctor`."""
    ev = m.evidence
    label = ev.system_measure
    when = f"in {_fmt_seconds(ev.seconds)}"
    if kind is VerdictKind.PROCESS and ev.system_growing and ev.system_growth is not None \
            and m.pool_top is not None:
        g = m.pool_top
        share = 100.0 * (g.pool_growth or 0) / max(ev.system_growth, 1)
        handles_part = f" (handles {g.handles_growth:+,})" if g.handles_growth else ""
        return (f"process {g.tag} is growing: its pool {_plus(g.pool_growth or 0)}{handles_part} is "
                f"{share:.0f}% of the {label}'s {_plus(ev.system_growth)} {when}")
    if kind is VerdictKind.KERNEL:
        return _kernel_line(ev, pools, when)
    if kind is VerdictKind.PROCESS:
        return _process_line(m, when)
    if m.have_system and ev.system_growth is not None:
        return (f"nothing is growing: {label} {_plus(ev.system_growth)} {when}, no process grew steadily by "
                f"{human_bytes(th.process_min_growth_bytes)} or more")
    return (f"nothing is growing among processes {when} ({label} not readable, so a kernel leak "
            "cannot be told)")


def _kernel_line(ev: VerdictEvidence, pools: PoolFindings | None, when: str) -> str:
    growers = ev.growing_processes
    parts = [_kernel_head(ev, pools, when)]
    if ev.top_counters:
        top_c = ev.top_counters[0]
        what = "cache" if top_c.pool == Pool.SLAB.label else "tag"
        parts.append(f"top {what} {top_c.tag.rstrip()} {_plus(top_c.bytes_growth)}")
    if pools is not None and ev.system_growing:
        parts.append(pools.text())
    if ev.handle_growers:
        h = ev.handle_growers[0]
        what = "files" if ev.os == "linux" else "handles"
        parts.append(f"{h.tag} opened {h.handles_growth:+,} {what} (kernel objects it holds)")
    if growers:
        parts.append(f"user memory also growing: {growers[0].tag} {_plus(growers[0].private_growth)}")
    return "; ".join(parts)


def _process_line(m: Measures, when: str) -> str:
    ev = m.evidence
    growers = ev.growing_processes
    label, os_name = ev.system_measure, ev.os
    g = growers[0]
    if m.grow_private[m.index[g.tag]]:
        rate = f" ({human_bytes(g.private_rate)}/s)" if g.private_rate > 0 else ""
        what = "private memory" if os_name == "linux" else "private bytes"
        text = f"process {g.tag} is growing: {what} {_plus(g.private_growth)} {when}{rate}"
    else:
        handles_part = f" (handles {g.handles_growth:+,})" if g.handles_growth else ""
        text = f"process {g.tag} is growing: its pool {_plus(g.pool_growth or 0)} {when}{handles_part}"
    if len(growers) > 1:
        text += f"; {len(growers) - 1} more growing"
    if not m.have_system:
        text += f" ({label} not readable)"
    return text


def _kernel_head(ev: VerdictEvidence, pools: PoolFindings | None, when: str) -> str:
    if not ev.system_growing or ev.system_growth is None:
        assert pools is not None
        return f"kernel/driver {pools.level.label}: {pools.text()}"
    head = f"kernel/driver leak: {ev.system_measure} {_plus(ev.system_growth)} {when}"
    if ev.attributed_growth is not None:
        head += f", processes' pool only {_plus(ev.attributed_growth)}"
    elif not ev.handle_growers:
        head += ", outside any process's memory"
    return head


def judge(
    samples: Sequence[tuple[Snapshot, Snapshot]],
    thresholds: VerdictThresholds | None = None,
    pools: PoolFindings | None = None,
    exclude_pids: Sequence[int] = (),
) -> Verdict:
    """The verdict over (system snapshot, process snapshot) pairs, oldest first.

    The system snapshot is the kernel source's (its Totals are read; its counters, when present
    in the first and last pair, name the tags / caches that grew most); the process snapshot is
    a ProcessSource's. `pools`: what the live table's judge says (its top row is named when it is
    suspect or leak). Processes in `exclude_pids` (pooltop itself) are not judged.
    """
    return judged(samples, thresholds or VerdictThresholds(), pools, exclude_pids)[0]


def judged(samples: Sequence[tuple[Snapshot, Snapshot]], th: VerdictThresholds, pools: PoolFindings | None,
           exclude_pids: Sequence[int] = ()) -> tuple[Verdict, Measures | None]:
    """judge(), and its measures when it took them (rejudge() decides again on them)."""
    os_name: ProcessOS = process_os(samples[-1][1].source) if samples else "linux"
    if len(samples) < th.judge.min_samples and pools is None:
        return _unknown(os_name, system_measure(os_name)[0], len(samples), th.judge), None
    if len(samples) < 2:
        ev = _unknown(os_name, system_measure(os_name)[0], len(samples), th.judge).evidence
        assert pools is not None
        return Verdict(VerdictKind.KERNEL, f"kernel/driver {pools.level.label}: {pools.text()}", ev), None
    m = measure(samples, th, exclude_pids)
    return rejudge(m, th, pools), m


def rejudge(m: Measures, th: VerdictThresholds, pools: PoolFindings | None) -> Verdict:
    """Decide and word again on measures already taken, with what the pool table says now."""
    kind, subject = decide(m, th, pools)
    return Verdict(kind, word(kind, m, th, pools), m.evidence, subject)


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
