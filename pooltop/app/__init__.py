"""The live TUI. `run_live()` is what `pooltop` with no subcommand runs; `create_app()` builds the
app around any Source without running it (tests, benchmarks, replays)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence

from pooltop.app.app import OwnerLookup, PooltopApp, create_app
from pooltop.model import Pool
from pooltop.native import Source
from pooltop.tagdb import OwnerCandidate

__all__ = ["PooltopApp", "create_app", "default_owner_lookup", "run_live"]


def default_owner_lookup() -> OwnerLookup | None:
    """The tag database's resolver, or None where it is not available (the Owner column hides)."""
    try:
        from pooltop.tagdb import resolve
    except ImportError:
        return None
    try:
        factory = getattr(resolve, "default_lookup", None)
        if factory is not None:
            lookup: OwnerLookup | None = factory()
            return lookup
        db = resolve.TagDatabase.load(slabs=sys.platform.startswith("linux"))
    except Exception as e:  # a broken tag database must not stop the live view
        print(f"pooltop: warning: tag database not loaded: {e}", file=sys.stderr)
        return None

    def candidates(tag: str, pool: Pool) -> Sequence[OwnerCandidate]:
        return db.candidates(tag)

    return candidates


def default_process_source() -> Source | None:
    """This machine's processes for the verdict line (cheap private memory: no per-process USS),
    or None where they cannot be read (the header then shows no verdict)."""
    try:
        from pooltop.processes.source import ProcessSource

        return ProcessSource(exact_private=False)
    except Exception:  # an unsupported platform, psutil missing: no verdict, the pools still show
        return None


def run_live(
    interval: float,
    source: Source | None = None,
    *,
    owners: OwnerLookup | None = None,
    export_path: str | None = None,
    tz: dt.tzinfo | None = None,
) -> None:
    """Run the live view until the user quits. Opens (and closes) this machine's source unless given one."""
    from pooltop.native import open_source

    own_source = source is None
    src = open_source() if source is None else source
    try:
        app = create_app(src, interval=interval,
                         owners=owners if owners is not None else default_owner_lookup(),
                         export_path=export_path, tz=tz,
                         processes=default_process_source() if own_source else None)
        app.run()
    finally:
        if own_source:
            src.close()
