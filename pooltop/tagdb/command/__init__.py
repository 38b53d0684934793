"""`pooltop tags ...`: the tag database's commands, `lookup` and `scan`, one module each."""

from __future__ import annotations

import click


@click.group("tags")
def tags() -> None:
    """Find which driver (or kernel component) owns a pool tag."""


# Subcommands register themselves below; the modules keep their names (tests patch inside them).

from pooltop.tagdb.command import lookup as _lookup  # noqa: E402
from pooltop.tagdb.command import scan as _scan  # noqa: E402

tags.add_command(_lookup.lookup)
tags.add_command(_scan.scan)
