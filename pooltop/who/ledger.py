"""Pairing allocations with their frees, and ranking what is still outstanding.

Pure: it is fed parsed events in the order trace_pipe printed them and never touches the kernel.

Things that bite:
- trace_pipe merges the per-CPU buffers by timestamp as it reads, so a free on one CPU can be
  printed just before the allocation (on another CPU, committed a moment later) that it frees.
  A free of an unknown pointer is kept for PENDING_FREE_S of trace time; an allocation of that
  pointer stamped no later than the free pairs with it.
- Frees of objects allocated before the trace started are not errors: they are counted (when the
  free event is filtered to the cache; kfree is not, so its unknown pointers say nothing) and
  otherwise ignored.
- An allocation of a pointer that is still outstanding means its free was never seen (lost
  events, or a free path without a tracepoint): the old object is counted as freed.
- The kernel prints `<...>` for a thread whose name it did not keep; a process is counted by its
  pid and named by the first real name seen for it.
- The stacktrace trigger prints the stack right after its event, on the same CPU; it belongs to
  the last allocation seen on that CPU by that thread.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pooltop.who.attribution import Attribution, ProcessShare, SiteAttribution, StackShare
from pooltop.who.tracetext import site_function

PENDING_FREE_S = 1.0
PENDING_FREE_MAX = 65536  # a bound on the free-before-alloc memory under a flood of kfree
PROCESSES_PER_SITE = 10
STACKS_PER_SITE = 5

Process = tuple[str, int]  # (comm, pid)
UNKNOWN_COMM = "<...>"


@dataclass
class _Site:
    call_site: str
    allocs: int = 0
    frees: int = 0
    outstanding: int = 0
    bytes: int = 0
    processes: dict[int, list[int]] = field(default_factory=dict)  # pid -> [outstanding, allocs]
    stacks: dict[int, list[int]] = field(default_factory=dict)  # stack id -> [outstanding, allocs]


@dataclass
class _Object:
    site: _Site
    pid: int
    size: int
    tid: int
    stack: int | None = None


class Ledger:
    """The objects allocated during a trace and not freed yet, and counts per site and process."""

    def __init__(self) -> None:
        self._sites: dict[str, _Site] = {}
        self._live: dict[int, _Object] = {}
        self._pending: OrderedDict[int, tuple[float, bool]] = OrderedDict()  # ptr -> (time, specific)
        self._last_on_cpu: dict[int, _Object] = {}
        self._stack_ids: dict[tuple[str, ...], int] = {}
        self._names: dict[int, str] = {}
        self.allocs = 0
        self.frees = 0
        self.earlier_frees = 0
        self.lost = 0

    def alloc(self, ptr: int, call_site: str, process: Process, size: int, *, cpu: int = 0, tid: int = 0,
              timestamp: float = 0.0) -> None:
        site = self._sites.get(call_site)
        if site is None:
            site = self._sites[call_site] = _Site(call_site)
        comm, pid = process
        known = self._names.get(pid)
        if known is None or (known == UNKNOWN_COMM and comm != UNKNOWN_COMM):
            self._names[pid] = comm
        obj = _Object(site, pid, size, tid)
        self.allocs += 1
        site.allocs += 1
        share = site.processes.setdefault(pid, [0, 0])
        share[1] += 1
        self._last_on_cpu[cpu] = obj
        pending = self._pending.pop(ptr, None)
        if pending is not None and pending[0] >= timestamp:
            # printed out of order: this object's free came first (see the module docstring)
            if pending[1]:
                self.earlier_frees -= 1
            self.frees += 1
            site.frees += 1
            obj.tid = -1  # freed already: its stack counts nowhere
            return
        old = self._live.pop(ptr, None)
        if old is not None:
            self._forget(old)
        self._live[ptr] = obj
        site.outstanding += 1
        site.bytes += size
        share[0] += 1

    def free(self, ptr: int, *, specific: bool, timestamp: float = 0.0) -> None:
        """`specific`: the free event is filtered to the traced cache, so an unknown pointer is an
        object of that cache allocated before the trace."""
        obj = self._live.pop(ptr, None)
        if obj is not None:
            self._forget(obj)
            return
        if specific:
            self.earlier_frees += 1
        self._pending[ptr] = (timestamp, specific)
        self._pending.move_to_end(ptr)
        while self._pending:
            first_ptr, (when, _) = next(iter(self._pending.items()))
            if when >= timestamp - PENDING_FREE_S and len(self._pending) <= PENDING_FREE_MAX:
                break
            del self._pending[first_ptr]

    def _forget(self, obj: _Object) -> None:
        site = obj.site
        self.frees += 1
        site.frees += 1
        site.outstanding -= 1
        site.bytes -= obj.size
        site.processes[obj.pid][0] -= 1
        if obj.stack is not None:
            site.stacks[obj.stack][0] -= 1
        obj.size = 0
        obj.stack = None
        obj.tid = -1  # a stack printed after this point no longer belongs to it

    def stack(self, cpu: int, tid: int, frames: tuple[str, ...]) -> None:
        """A stack the trigger printed on `cpu` for thread `tid`: it goes with the last allocation
        there (when that one is still outstanding)."""
        obj = self._last_on_cpu.pop(cpu, None)
        if obj is None or obj.tid != tid or obj.stack is not None or not frames:
            return
        stack_id = self._stack_ids.setdefault(frames, len(self._stack_ids))
        obj.stack = stack_id
        share = obj.site.stacks.setdefault(stack_id, [0, 0])
        share[0] += 1
        share[1] += 1

    def add_lost(self, count: int) -> None:
        self.lost += count

    def attribution(self, target: str, cache: str, seconds: float, *, stacks: bool = False,
                    notes: tuple[str, ...] = (), lost: int = 0) -> Attribution:
        """What was seen so far, ranked: sites by outstanding bytes, then outstanding objects, then
        allocations. `lost`: what the kernel's buffer statistics say was lost (the larger of that
        and the `[LOST n EVENTS]` lines read counts)."""
        frames_of = {i: f for f, i in self._stack_ids.items()}
        sites = []
        for s in self._sites.values():
            procs = sorted(s.processes.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
            stack_rows = sorted(s.stacks.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
            sites.append(SiteAttribution(
                call_site=s.call_site,
                function=site_function(s.call_site),
                outstanding=s.outstanding,
                bytes=s.bytes,
                allocs=s.allocs,
                frees=s.frees,
                processes=tuple(ProcessShare(self._names.get(pid, UNKNOWN_COMM), pid, v[0], v[1])
                                for pid, v in procs[:PROCESSES_PER_SITE]),
                stacks=tuple(StackShare(frames_of[i], v[0], v[1]) for i, v in stack_rows[:STACKS_PER_SITE]),
            ))
        sites.sort(key=lambda s: (-s.bytes, -s.outstanding, -s.allocs, s.call_site))
        return Attribution(target=target, cache=cache, seconds=seconds, allocs=self.allocs, frees=self.frees,
                           lost=max(self.lost, lost), earlier_frees=self.earlier_frees, sites=tuple(sites),
                           stacks_traced=stacks, notes=notes)
