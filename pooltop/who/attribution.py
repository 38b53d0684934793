"""What a trace found: the call sites, processes and stacks behind a cache's allocations.

The JSON form (schema pooltop.who/1) is a contract users' scripts rely on; README documents it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pooltop.model import human_bytes, printable

SCHEMA = "pooltop.who/1"
TEXT_SITES = 20  # the text shows this many sites (JSON has all)
TEXT_PROCESSES = 5
TEXT_STACKS = 3


@dataclass(frozen=True)
class ProcessShare:
    name: str  # the thread's comm, as the kernel recorded it
    pid: int  # the process (thread group) when the kernel recorded it, else the thread
    outstanding: int
    allocs: int


@dataclass(frozen=True)
class StackShare:
    frames: tuple[str, ...]  # innermost first, as the kernel prints them
    outstanding: int
    allocs: int


@dataclass(frozen=True)
class SiteAttribution:
    call_site: str  # symbolized by the kernel: "inotify_update_watch+0x18e/0x330"
    function: str  # "inotify_update_watch"
    outstanding: int  # objects allocated here during the trace and not freed by its end
    bytes: int  # their size
    allocs: int
    frees: int  # of the objects allocated here during the trace
    processes: tuple[ProcessShare, ...]
    stacks: tuple[StackShare, ...]


@dataclass(frozen=True)
class Attribution:
    target: str  # what the user named (a cache, an alias, kmalloc-N)
    cache: str  # the cache traced (the canonical name of a merged cache)
    seconds: float
    allocs: int
    frees: int  # frees of objects allocated during the trace
    lost: int  # events the kernel dropped or overwrote before pooltop read them
    earlier_frees: int  # frees of objects allocated before the trace started
    sites: tuple[SiteAttribution, ...]  # by outstanding bytes, largest first
    stacks_traced: bool = False
    notes: tuple[str, ...] = ()

    @property
    def attributed(self) -> bool:
        """Something was allocated in the window (the command's exit 0)."""
        return self.allocs > 0

    def top_processes(self, limit: int = TEXT_PROCESSES) -> list[ProcessShare]:
        """Processes over all sites, by outstanding objects, then allocations."""
        merged: dict[tuple[str, int], list[int]] = {}
        for site in self.sites:
            for p in site.processes:
                m = merged.setdefault((p.name, p.pid), [0, 0])
                m[0] += p.outstanding
                m[1] += p.allocs
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        return [ProcessShare(name, pid, v[0], v[1]) for (name, pid), v in ranked[:limit]]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "cache": self.cache,
            "seconds": round(self.seconds, 3),
            "events": {"allocs": self.allocs, "frees": self.frees, "lost": self.lost,
                       "frees_before_trace": self.earlier_frees},
            "sites": [
                {
                    "call_site": s.call_site,
                    "function": s.function,
                    "outstanding": s.outstanding,
                    "bytes": s.bytes,
                    "allocs": s.allocs,
                    "frees": s.frees,
                    "processes": [{"name": p.name, "pid": p.pid, "outstanding": p.outstanding}
                                  for p in s.processes],
                    "stacks": [{"frames": list(st.frames), "outstanding": st.outstanding} for st in s.stacks],
                }
                for s in self.sites
            ],
        }


def render_text(a: Attribution) -> str:
    """The report `pooltop who` prints."""
    alias = f" (the cache {printable(a.cache)})" if a.cache != a.target else ""
    lines = [
        f"Who allocates {printable(a.target)}{alias}: traced {a.seconds:,.1f} s",
        f"events: {a.allocs:,} allocations, {a.frees:,} frees of them, {a.lost:,} lost; "
        f"{a.earlier_frees:,} frees of objects allocated before the trace",
    ]
    if a.lost:
        lines.append(f"warning: the kernel dropped {a.lost:,} events before pooltop read them: outstanding "
                     "counts may be too high (missed frees) or too low (missed allocations)")
    lines += [f"note: {printable(n)}" for n in a.notes]
    if not a.sites:
        lines += ["", "Nothing was allocated from this cache while pooltop traced it."]
        return "\n".join(lines) + "\n"
    lines += ["", "Call sites, by outstanding bytes",
              f"  {'OUTSTANDING':>11} {'BYTES':>10} {'ALLOCS':>9} {'FREES':>9}  CALL SITE"]
    for s in a.sites[:TEXT_SITES]:
        lines.append(f"  {s.outstanding:>11,} {human_bytes(s.bytes):>10} {s.allocs:>9,} {s.frees:>9,}  "
                     f"{printable(s.call_site)}")
        procs = ", ".join(f"{printable(p.name)} ({p.pid}) {p.outstanding:,}/{p.allocs:,}"
                          for p in s.processes[:TEXT_PROCESSES])
        if procs:
            lines.append(f"  {'':>42}  by (outstanding/allocs): {procs}")
        for st in s.stacks[:TEXT_STACKS]:
            lines.append(f"  {'':>42}  stack, {st.outstanding:,} outstanding of {st.allocs:,}:")
            lines += [f"  {'':>42}    {printable(f)}" for f in st.frames]
    if len(a.sites) > TEXT_SITES:
        lines.append(f"  ... {len(a.sites) - TEXT_SITES:,} more call sites (--format json lists all)")
    top = a.top_processes()
    if top:
        lines += ["", "Processes, by outstanding objects (outstanding/allocs)"]
        lines += [f"  {printable(p.name)} ({p.pid}): {p.outstanding:,}/{p.allocs:,}" for p in top]
    if not a.stacks_traced:
        lines += ["", "Run with --stacks for the full kernel stack of each call site."]
    return "\n".join(lines) + "\n"
