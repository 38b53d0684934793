"""`pooltop record` and `pooltop report`."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from functools import partial

import click

from pooltop.errors import PooltopError
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.options import TAG_FILE
from pooltop.tagdb.owners import recorded_first, snapshot_owner_lookup


def parse_size(text: str) -> int:
    """'500M', '2G', '100MB', '1.5GiB', '4096' -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 500M, 2G)")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " ")
    if value < 64 * 1024:
        raise click.BadParameter(f"{text!r} is too small for a recording (at least 64K)")
    return int(value)


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)


def _duration_type() -> click.ParamType:  # type: ignore[type-arg]
    from pooltop.cli import Duration

    return Duration()


@click.command()
@click.option(
    "--output",
    "-o",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The recording file (SQLite). An existing recording of this host is continued.",
)
@click.option(
    "--interval",
    "-i",
    type=_duration_type(),
    default=15.0,
    show_default=True,
    help="Time between samples (e.g. 15s, 1m, 500ms).",
)
@click.option(
    "--duration",
    "-d",
    type=_duration_type(),
    default=None,
    help="Stop after this long (e.g. 24h). Default: until Ctrl+C or SIGTERM.",
)
@click.option(
    "--max-size", type=Size(), default=None, help="Stop when the file reaches this size (e.g. 500M)."
)
@click.option(
    "--tagfile",
    "tagfiles",
    multiple=True,
    type=TAG_FILE,
    help="A pooltag.txt-format file to name tag owners. Repeatable.",
)
@click.option("--root", type=click.Path(file_okay=False), default=None, hidden=True)
def record(
    path: str,
    interval: float,
    duration: float | None,
    max_size: int | None,
    tagfiles: Sequence[str],
    root: str | None,
) -> None:
    """Record samples unattended into FILE, for hours; stop with Ctrl+C or SIGTERM.

    Stores what changed between samples plus periodic full frames, one transaction per sample, so
    the file survives a crash. Analyse it with `pooltop report FILE`; replay it with `pooltop view FILE`.
    """
    from pooltop.native import open_source
    from pooltop.record.recorder import record as run

    def say(text: str) -> None:
        click.echo(text, err=True)

    with open_source(root=root) as source:
        result = run(source, path, interval, duration, max_size,
                     partial(snapshot_owner_lookup, tagfiles=tagfiles), say)
    if not result.ok:
        sys.exit(1)


@click.command()
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format", "-f", "fmt", type=click.Choice(("text", "json", "html")), default="text", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to FILE (atomically) instead of standard output.",
)
@click.option("--all", "include_stable", is_flag=True, help="List stable counters too.")
@click.option("--top", "-n", type=click.IntRange(min=1), default=None, help="Only the first N counters.")
@click.option(
    "--min-growth",
    type=Size(),
    default=None,
    help="Growth a leak verdict needs (default 256K, or 2%% of the starting size).",
)
@click.option(
    "--min-fit",
    type=click.FloatRange(0, 1),
    default=None,
    help="R^2 of the trend line a leak verdict needs (default 0.8).",
)
@click.option(
    "--min-up",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of changes that must be increases for a leak (default 0.75).",
)
@click.option(
    "--points",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Analyse at most this many evenly spaced samples.",
)
def report(
    files: tuple[str, ...],
    fmt: str,
    output: str | None,
    include_stable: bool,
    top: int | None,
    min_growth: int | None,
    min_fit: float | None,
    min_up: float | None,
    points: int,
) -> None:
    """Rank the counters of a recording (or of snapshot files) by how much they look like a leak.

    Verdicts: leak, suspect, watch, stable; most serious first. `--format html` writes one
    self-contained file with a chart per top suspect and the system totals over time.

    FILE may also be snapshot files (pooltop JSON/CSV exports, poolmon /n logs, WinDbg !poolused
    output): one snapshot shows who holds memory now but cannot show a leak; two or more of one
    machine are analysed as a series, in time order.
    """
    from pooltop.report.analysis import ReportThresholds
    from pooltop.report.render import RENDERERS, build_report

    _check_no_stdout_html(fmt, output)
    th = ReportThresholds()
    changes = {
        "leak_min_growth_bytes": min_growth,
        "leak_min_r2": min_fit,
        "leak_min_monotony": min_up,
    }
    th = dataclasses.replace(th, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
    from pooltop.record.store import is_recording

    if len(files) != 1 or not is_recording(files[0]):
        from pooltop.share.series import report_on_snapshots

        def warn(message: str) -> None:
            click.echo(f"pooltop: warning: {message}", err=True)

        text = report_on_snapshots(files, fmt, th, include_stable, top, warn)
    else:
        rep = build_report(files[0], th, max_points=points)
        text = RENDERERS[fmt](rep, include_stable, top)
    from pooltop.cli import emit_text

    emit_text(text, output)


def _check_no_stdout_html(fmt: str, output: str | None) -> None:
    if fmt == "html" and output is None and sys.stdout.isatty():
        raise PooltopError("an HTML report is a file: give -o report.html")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--interval", "-i", type=_duration_type(), default=1.0, show_default=True,
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
    from pooltop.app import run_live
    from pooltop.record.replay import ReplaySource, SequenceSource
    from pooltop.record.store import Recording, is_recording
    from pooltop.share import load_snapshots

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
