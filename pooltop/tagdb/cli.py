"""`pooltop tags ...`: the tag database's command-line face."""

from __future__ import annotations

import click


@click.group("tags")
def tags() -> None:
    """Find which driver (or kernel component) owns a pool tag."""


# Subcommands register themselves below (one module each).

from pooltop.tagdb.lookup_cli import lookup  # noqa: E402

tags.add_command(lookup)

from pooltop.tagdb.scan_cli import scan  # noqa: E402

tags.add_command(scan)
