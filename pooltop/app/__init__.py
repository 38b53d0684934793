"""The live TUI. `run_live()` is what `pooltop` with no subcommand runs; `create_app()` builds the
app around any Source without running it (tests, benchmarks, replays)."""

from __future__ import annotations

import datetime as dt
import sys

from pooltop.app.app import PooltopApp, create_app
from pooltop.judge import JudgeThresholds
from pooltop.native import Source
from pooltop.tagdb.owners import Aliases, OwnerLookup, live_owner_lookup
from pooltop.tracking import Tracker

__all__ = ["PooltopApp", "create_app", "run_live"]


def _warn(message: str) -> None:
    print(f"pooltop: warning: {message}", file=sys.stderr)


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
    thresholds: JudgeThresholds | None = None,
) -> None:
    """Run the live view until the user quits. Opens (and closes) this machine's source unless given one."""
    from pooltop.native import open_source

    own_source = source is None
    src = open_source() if source is None else source
    app: PooltopApp | None = None

    def latest_aliases() -> Aliases:
        # the SLUB alias groups of the sample on screen (read by the source, refreshed with it)
        sample = app.pool_model.sample if app is not None else None
        return sample.snapshot.aliases if sample is not None else {}

    try:
        if owners is None:
            owners = live_owner_lookup(src.name, aliases=latest_aliases, warn=_warn)
        app = create_app(src, interval=interval, owners=owners, export_path=export_path, tz=tz,
                         tracker=Tracker(thresholds),
                         processes=default_process_source() if own_source else None)
        app.run()
    finally:
        if own_source:
            src.close()
