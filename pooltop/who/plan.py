"""Which cache to trace, and which kmem events with which filters do it. Pure.

- A name /proc/slabinfo prints is traced as it is. A SLUB alias (inotify_inode_mark) is traced as
  the merged cache it belongs to: the events carry the canonical name, the one slabinfo prints.
- A plain slab cache: kmem_cache_alloc and kmem_cache_free filtered in the kernel by `name`.
  Kernels whose kmem_cache_free has no `name` (before 6.1) get it unfiltered, paired by pointer.
- kmalloc-N: kmalloc() does not fire kmem_cache_alloc and its event has no cache name, so it is
  traced by size (`bytes_alloc == N`, which also catches kmalloc-cg-N, kmalloc-rcl-N and dma-kmalloc-N),
  plus kmem_cache_alloc of caches merged into kmalloc-N. kfree has no size either: it is traced
  unfiltered (but for NULL) and frees of pointers never seen allocated are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pooltop.errors import BadInput, Unsupported
from pooltop.who.tracetext import EventFormat, PayloadParser

SYSTEM = "kmem"
CACHE_ALLOC, CACHE_FREE, KMALLOC, KFREE = "kmem_cache_alloc", "kmem_cache_free", "kmalloc", "kfree"

# What a tracefs filter string can carry between double quotes, and what slab names use.
_CACHE_NAME = re.compile(r"[A-Za-z0-9_.:()+@/\-]{1,64}")
_KMALLOC = re.compile(r"(?:dma-)?kmalloc-(?:cg-|rcl-|rnd-\d+-)?(?P<n>\d+)(?P<k>k?)")


@dataclass(frozen=True)
class EventPlan:
    event: str  # an event of the kmem system
    alloc: bool  # an allocation (else a free)
    filter: str | None  # the kernel-side filter, None for every event
    specific: bool  # its events are of the traced cache only (so an unknown freed pointer is older)
    trigger: str | None = None  # "stacktrace if ..." with --stacks


@dataclass(frozen=True)
class TracePlan:
    target: str
    cache: str
    events: tuple[EventPlan, ...]
    notes: tuple[str, ...] = ()


def check_name(name: str) -> str:
    """A cache name the user typed, checked before anything touches the kernel."""
    if not _CACHE_NAME.fullmatch(name):
        raise BadInput(f"{name!r} is not a slab cache name (letters, digits and _ . : ( ) + @ / - only)")
    return name


def kmalloc_size(cache: str) -> int | None:
    """kmalloc-192 -> 192, kmalloc-cg-8k -> 8192; None for any other cache."""
    m = _KMALLOC.fullmatch(cache)
    if m is None:
        return None
    return int(m.group("n")) * (1024 if m.group("k") else 1)


def resolve_cache(target: str, slab_names: Collection[str], aliases: Mapping[str, tuple[str, ...]]) -> str:
    """The cache whose name the kmem events carry for `target`."""
    check_name(target)
    if target in slab_names:
        return target
    merged = [a for a in aliases.get(target, ()) if a in slab_names]
    if len(merged) == 1:
        return merged[0]
    if merged:
        raise BadInput(f"{target!r} is merged with several caches /proc/slabinfo lists "
                       f"({', '.join(sorted(merged))}); name one of them")
    if kmalloc_size(target) is not None:
        return target  # kmalloc caches are traced by size; slabinfo need not list this exact one
    raise BadInput(f"no slab cache named {target!r} (see /proc/slabinfo, or /sys/kernel/slab for aliases)")


def _require(formats: Mapping[str, EventFormat], event: str, fields: Collection[str]) -> EventFormat:
    fmt = formats.get(event)
    if fmt is None:
        raise Unsupported(f"this kernel has no {SYSTEM}:{event} trace event")
    printed = _printed_keys(fmt)
    for f in fields:
        if f not in printed:
            raise Unsupported(f"this kernel's {SYSTEM}:{event} event has no '{f}' field")
    return fmt


def _printed_keys(fmt: EventFormat) -> set[str]:
    return set(fmt.fields) & set(PayloadParser(fmt.print_fmt).keys)


def make_plan(target: str, cache: str, formats: Mapping[str, EventFormat], stacks: bool = False) -> TracePlan:
    """The events, filters and triggers that trace `cache`. Raises Unsupported when the kernel's
    events lack a field this needs."""
    by_name = f'name == "{check_name(cache)}"'
    size = kmalloc_size(cache)
    events: list[EventPlan] = []
    notes: list[str] = []
    _require(formats, CACHE_ALLOC, ("call_site", "ptr", "name"))
    events.append(EventPlan(CACHE_ALLOC, True, by_name, True, f"stacktrace if {by_name}" if stacks else None))
    free = _require(formats, CACHE_FREE, ("ptr",))
    named_free = "name" in _printed_keys(free)
    events.append(EventPlan(CACHE_FREE, False, by_name if named_free else None, named_free))
    if not named_free:
        notes.append(f"this kernel's {CACHE_FREE} event has no cache name: frees are paired by pointer")
    if size is not None:
        by_size = f"bytes_alloc == {size}"
        _require(formats, KMALLOC, ("call_site", "ptr", "bytes_alloc"))
        _require(formats, KFREE, ("ptr",))
        events.append(EventPlan(KMALLOC, True, by_size, True, f"stacktrace if {by_size}" if stacks else None))
        events.append(EventPlan(KFREE, False, "ptr != 0", False))
        notes.append(f"kmalloc() allocations are traced by size ({size} bytes): the {KMALLOC} event has "
                     "no cache name, so the -cg-, -rcl- and dma- caches of that size are included")
    return TracePlan(target, cache, tuple(events), tuple(notes))
