"""The one owner lookup: who owns each row of a snapshot, the same answer in every part of pooltop.

The live view, `snapshot`, `record`, `view`, `report` and snapshot series, `bundle` and the
exporter all build their lookup here, so a tag names the same owners everywhere: the text files
(--tagfile, pooltag.txt, localtag.txt, the user's overlay), on Windows-style sources what an
earlier `pooltop tags scan` found (read from its cache, never rescanned), and on Linux the slab
descriptions with the cache's SLUB alias group. Candidates leave pooltop as JSON in one form
(`candidate_to_json`), in snapshots, recordings, reports, bundles and `tags lookup`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pooltop.model import Pool, Snapshot
from pooltop.tagdb import DriverFacts, OwnerCandidate
from pooltop.tagdb.resolve import TagDatabase

#: every owner candidate of (tag, pool), strongest first
OwnerLookup = Callable[[str, Pool], Sequence[OwnerCandidate]]
#: builds the lookup for a snapshot's source and SLUB aliases (the recorder, the exporter)
OwnerLookupFactory = Callable[[Snapshot], OwnerLookup]
#: slab cache name -> the other names of its merged cache (Snapshot.aliases)
Aliases = Mapping[str, Sequence[str]]
TagFiles = Sequence[str | os.PathLike[str]]

#: the snapshot source whose rows are slab caches, not pool tags
SLAB_SOURCE = "linux-slab"
_NO_ALIASES: Aliases = {}


def load_tag_database(
    tagfiles: TagFiles = (),
    *,
    slabs: bool = False,
    discover: bool = True,
    scan_cache: str | os.PathLike[str] | None = None,
) -> TagDatabase:
    """The tag database every owner answer comes from.

    Pool tags also get the driver scanner's cached answers (`scan_cache`, else the default cache);
    slab caches get the slab descriptions instead (drivers name no slab caches). Raises
    PooltopError when an explicit tag file cannot be read.
    """
    if slabs:
        scan: Sequence[OwnerCandidate] = ()
    else:
        # the scan cache is SQLite: loaded only for pool tags, so `pooltop snapshot` on Linux starts
        # without sqlite3 (tests/test_cli_startup.py)
        from pooltop.tagdb.findings import cached_owner_candidates

        scan = cached_owner_candidates(scan_cache)
    return TagDatabase.load(tagfiles, discover=discover, slabs=slabs, scan=scan)


def owner_lookup(
    snapshot_source: str,
    tagfiles: TagFiles = (),
    *,
    aliases: Aliases | Callable[[], Aliases] = _NO_ALIASES,
    scan_cache: str | os.PathLike[str] | None = None,
) -> OwnerLookup:
    """The owner lookup for rows of a `snapshot_source` ("linux-slab", "windows-pooltag", ...).

    `aliases` is the SLUB alias map, or a function giving the latest one (the live view's sample
    changes under it). Raises PooltopError when an explicit tag file cannot be read.
    """
    db = load_tag_database(tagfiles, slabs=snapshot_source == SLAB_SOURCE, scan_cache=scan_cache)
    current: Callable[[], Aliases] = aliases if callable(aliases) else (lambda: aliases)

    def lookup(tag: str, pool: Pool) -> Sequence[OwnerCandidate]:
        return db.candidates(tag, current().get(tag, ()) if pool is Pool.SLAB else ())

    return lookup


def snapshot_owner_lookup(snap: Snapshot, tagfiles: TagFiles = ()) -> OwnerLookup:
    """The owner lookup for the rows of `snap` (its source and SLUB aliases)."""
    return owner_lookup(snap.source, tagfiles, aliases=snap.aliases)


def live_owner_lookup(
    snapshot_source: str,
    tagfiles: TagFiles = (),
    *,
    aliases: Aliases | Callable[[], Aliases] = _NO_ALIASES,
    warn: Callable[[str], None],
) -> OwnerLookup | None:
    """`owner_lookup` for views that must run without one: a tag database that cannot be loaded
    is reported once through `warn` and gives None (the Owner column hides)."""
    try:
        return owner_lookup(snapshot_source, tagfiles, aliases=aliases)
    except Exception as e:  # a broken tag database must not stop the live view
        warn(f"tag database not loaded: {e}")
        return None


def recorded_first(
    recorded: Mapping[tuple[str, int], Sequence[OwnerCandidate]], local: OwnerLookup | None
) -> OwnerLookup:
    """Who owned a tag on the recorded machine first; this machine's tag database after."""

    def lookup(tag: str, pool: Pool) -> Sequence[OwnerCandidate]:
        found = recorded.get((tag, int(pool)))
        if found:
            return found
        return local(tag, pool) if local is not None else ()

    return lookup


def candidate_to_json(candidate: OwnerCandidate) -> dict[str, Any]:
    """The JSON form of a candidate (its tag is the row's, so not repeated); unknown fields left out."""
    out: dict[str, Any] = {
        "owner": candidate.owner,
        "description": candidate.description,
        "source": candidate.source,
        "confidence": candidate.confidence,
    }
    if candidate.driver is not None:
        out["driver"] = {k: v for k, v in dataclasses.asdict(candidate.driver).items() if v is not None}
    if candidate.pattern is not None:
        out["pattern"] = candidate.pattern
    return out


_DRIVER_FIELDS = frozenset(f.name for f in dataclasses.fields(DriverFacts))


def candidate_from_json(tag: str, obj: Mapping[str, Any]) -> OwnerCandidate:
    """`candidate_to_json` read back; fields of another type or shape are dropped, never trusted."""
    drv = obj.get("driver")
    driver = None
    if isinstance(drv, Mapping) and isinstance(drv.get("path"), str):
        driver = DriverFacts(**{k: v for k, v in drv.items() if k in _DRIVER_FIELDS})
    pattern = obj.get("pattern")
    return OwnerCandidate(
        tag=tag,
        owner=str(obj.get("owner", "")),
        description=str(obj.get("description", "")),
        source=str(obj.get("source", "")),
        confidence=str(obj.get("confidence", "")),
        driver=driver,
        pattern=pattern if isinstance(pattern, str) else None,
    )
