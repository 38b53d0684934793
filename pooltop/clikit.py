"""Helpers shared by the command modules only (no feature code imports this module)."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator

import click

#: advance(steps, name): move a progress bar on by `steps` and show `name` beside it
Advance = Callable[[int, str], None]


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


@contextlib.contextmanager
def progress_bar(total: int, label: str) -> Iterator[Advance | None]:
    """A transient progress bar on stderr, only when stderr is a terminal (None otherwise).

    rich draws it (the library the driver scan already needed); it vanishes when done, so what the
    command prints afterwards reads the same as without it.
    """
    if not sys.stderr.isatty() or total < 2:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}", style="dim"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total, name="")

        def advance(steps: int, name: str) -> None:
            bar.update(task, advance=steps, name=name)

        yield advance
