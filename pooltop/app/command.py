"""`pooltop view`: replay a recording (or snapshot files) in the live view."""

from __future__ import annotations

from collections.abc import Sequence

import click

from pooltop.app import run_live
from pooltop.clikit import Duration
from pooltop.errors import PooltopError
from pooltop.record import Recording, is_recording
from pooltop.record.replay import ReplaySource, SequenceSource
from pooltop.snapshots import load_snapshots
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import recorded_first, snapshot_owner_lookup


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--interval", "-i", type=Duration(), default=1.0, show_default=True,
              help="Time between two steps of the playback.")
@click.option("--speed", type=click.IntRange(min=0), default=1, show_default=True,
              help="Samples the cursor moves per step (0 starts paused).")
@click.option("--start", type=int, default=0, show_default=True,
              help="Sample to start at (0 first, -1 last).")
def view(files: Sequence[str], interval: float, speed: int, start: int) -> None:
    """Replay a recording (or snapshot files) in the live view, with a time cursor.

    Keys besides the live view's: [ and ] step one sample, { and } ten, Home and End jump to the
    start and the end, > and < play faster and slower, space pauses.
    """
    source: ReplaySource | SequenceSource
    recorded: dict[tuple[str, int], Sequence[OwnerCandidate]] = {}
    if len(files) == 1 and is_recording(files[0]):
        source = ReplaySource(files[0], speed=speed)
        with Recording(files[0]) as rec:
            recorded = dict(rec.owners())
    else:
        snaps = [s for path in files for s in load_snapshots(path)]
        hosts = {s.host.name for s in snaps}
        if len(hosts) > 1:
            raise PooltopError(f"these files come from different machines ({', '.join(sorted(hosts))})")
        source = SequenceSource(snaps, speed=speed)
    if start:
        source.seek(start)
    try:
        first = source.current()
        run_live(interval, source=source, owners=recorded_first(recorded, snapshot_owner_lookup(first)))
    finally:
        source.close()
