"""Whether snapshots can be put side by side: the same kind of kernel memory, and which machines.

Windows pool tags (live, poolmon logs, !poolused, Windows CSV) and Linux slab caches count
different things: a diff or a series across them compares nothing with nothing, and the verdicts
change for no reason (issue 14: an imported poolmon log mixed into Linux snapshots did just that).
So mixing kinds is refused. Two machines of the same kind can be diffed, with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence

from pooltop.errors import PooltopError
from pooltop.model import Pool, Snapshot

WINDOWS_POOL = "Windows pool"
LINUX_SLAB = "Linux slab"
PROCESS_MEMORY = "process memory"

_WINDOWS_SOURCES = ("poolmon-log", "windbg-poolused")


def memory_kind(snap: Snapshot) -> str:
    """What a snapshot's counters measure: Windows pool, Linux slab or process memory."""
    source = snap.source
    if source.startswith("linux"):
        return LINUX_SLAB
    if source.startswith("windows") or source in _WINDOWS_SOURCES:
        return WINDOWS_POOL
    if source.startswith("process"):
        return PROCESS_MEMORY
    # A source pooltop does not know by name: what its rows say.
    pools = snap.counters.pools_present()
    if pools and pools <= {int(Pool.SLAB)}:
        return LINUX_SLAB
    if pools and pools <= {int(Pool.PROCESS)}:
        return PROCESS_MEMORY
    return WINDOWS_POOL


def require_one_kind(items: Sequence[tuple[str, Snapshot]], what: str) -> None:
    """PooltopError (one line) when `items` (label, snapshot) mix kinds of memory; `what` names
    the command's work ("compare", "report on")."""
    first: dict[str, str] = {}
    for label, snap in items:
        first.setdefault(memory_kind(snap), label)
    if len(first) > 1:
        (kind_a, label_a), (kind_b, label_b) = list(first.items())[:2]
        raise PooltopError(
            f"{label_a} is {kind_a} and {label_b} is {kind_b}: pooltop does not {what} different kinds "
            "of kernel memory"
        )


def host_names(items: Sequence[tuple[str, Snapshot]]) -> list[str]:
    """The distinct machine names of `items`, in order (snapshots without one are left out)."""
    names: list[str] = []
    for _, snap in items:
        if snap.host.name and snap.host.name not in names:
            names.append(snap.host.name)
    return names
