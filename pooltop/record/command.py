"""`pooltop record`: sample unattended into a recording file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import click

from pooltop.clikit import TAG_FILE, Duration, Size
from pooltop.native import open_source
from pooltop.record.recorder import record as run
from pooltop.tagdb.owners import snapshot_owner_lookup


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
    type=Duration(),
    default=15.0,
    show_default=True,
    help="Time between samples (e.g. 15s, 1m, 500ms).",
)
@click.option(
    "--duration",
    "-d",
    type=Duration(),
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

    def say(text: str) -> None:
        click.echo(text, err=True)

    with open_source(root=root) as source:
        result = run(source, path, interval, duration, max_size,
                     partial(snapshot_owner_lookup, tagfiles=tagfiles), say)
    if not result.ok:
        sys.exit(1)
