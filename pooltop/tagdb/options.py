"""What every command's --tagfile accepts, so a bad one gives the same exit status everywhere.

A path that does not exist, or is a folder, is a usage error: exit 2 with click's message. A file
that is there but cannot be read (permissions, larger than a tag file can be) is a runtime
failure: exit 1 with `pooltop: cannot read tag file ...`, from the tag database that reads it.
"""

from __future__ import annotations

import click

#: the type of every --tagfile option (snapshot, record, bundle, serve, tags lookup)
TAG_FILE = click.Path(exists=True, dir_okay=False, readable=False)
