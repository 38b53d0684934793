"""Helpers shared by the commands (and only by them; no feature code imports this module): durations
and sizes, the table options of one-shot commands, their sort order, writing the output (standard
output or `-o FILE`), the --tagfile type, and a progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from pooltop.judge.thresholds import JudgeThresholds, seconds_text


def parse_interval(text: str) -> float:
    """'2', '2s', '500ms', '5m', '1h' -> seconds."""
    t = text.strip().lower()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    suffix = next((u for u in units if t.endswith(u)), "")
    number, factor = (t[: -len(suffix)], units[suffix]) if suffix else (t, 1.0)
    try:
        value = float(number) * factor
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration (e.g. 2, 2s, 500ms, 5m)") from None
    if not value > 0 or value == float("inf"):
        raise click.BadParameter(f"{text!r} must be a positive duration")
    return value


#: every command's --tagfile (snapshot, record, bundle, serve, tags lookup), so a bad one gives the
#: same exit status everywhere: a path that does not exist, or is a folder, is a usage error (2,
#: click's message); a file that is there but cannot be read (permissions, larger than a tag file
#: can be) is a runtime failure (1, `pooltop: cannot read tag file ...`, from the tag database).
TAG_FILE = click.Path(exists=True, dir_okay=False, readable=False)


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in click stubs
    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_interval(str(value))
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)


def table_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every one-shot table command shares (snapshot, processes): format, order, top N,
    a second sample for the change columns, and -o."""
    for option in reversed((
        click.option("--format", "-f", "fmt", type=click.Choice(("text", "json", "csv")), default="text",
                     show_default=True),
        click.option("--ascending", is_flag=True,
                     help="Smallest first (names sort A-Z unless --descending)."),
        click.option("--descending", is_flag=True, help="Largest first, names Z-A."),
        click.option("--top", "-n", type=click.IntRange(min=1), default=None, help="Only the first N rows."),
        click.option("--interval", type=Duration(), default=None,
                     help="Sample twice this far apart and include the change columns."),
        click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
                     help="Write to FILE (atomically) instead of standard output."),
    )):
        command = option(command)
    return command


def sort_order(ascending: bool, descending: bool) -> bool | None:
    """--ascending / --descending as sort_rows' `descending` (None: the column's natural order)."""
    if ascending and descending:
        raise click.UsageError("--ascending and --descending exclude each other")
    return False if ascending else (True if descending else None)


def emit_text(text: str, output: str | None) -> None:
    """Print to stdout, or write FILE (see atomic_write) and say so on stderr (every command's -o;
    `-o -` is standard output)."""
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from pooltop.atomic import atomic_write

    with atomic_write(output) as f:
        f.write(text)
    click.echo(f"pooltop: wrote {output}", err=True)


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


def judge_options(command: Callable[..., None]) -> Callable[..., None]:
    """The leak judge's options (the live view, `report`, `serve`): its evidence windows and what a
    leak must grow by. The command receives them as one `thresholds` (pooltop.judge.JudgeThresholds),
    so every command that judges shares one definition of each number."""
    d = JudgeThresholds()
    options = (
        click.option("--leak-window", type=Duration(), default=None,
                     help="How long a counter must grow, through every third of it, to be a leak; "
                          f"younger rows cannot be (default {seconds_text(d.leak_window_s)})."),
        click.option("--suspect-window", type=Duration(), default=None,
                     help=f"How long a counter must grow to be a suspect (default "
                          f"{seconds_text(d.suspect_window_s)})."),
        click.option("--min-growth", type=Size(), default=None,
                     help=f"Growth a leak verdict needs (default {d.leak_min_growth_bytes // 1024}K, or "
                          f"{d.leak_min_growth_share:.0%} of the starting size)."),
        click.option("--min-up", type=click.FloatRange(0, 1), default=None,
                     help=f"Share of changes that must be increases for a leak (default "
                          f"{d.leak_monotony})."),
    )

    @functools.wraps(command)
    def with_thresholds(*args: Any, leak_window: float | None, suspect_window: float | None,
                        min_growth: int | None, min_up: float | None, **kwargs: Any) -> None:
        given: dict[str, Any] = {"leak_window_s": leak_window, "suspect_window_s": suspect_window,
                 "leak_min_growth_bytes": min_growth, "leak_monotony": min_up}
        chosen: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if leak_window is not None and suspect_window is None:
            chosen["suspect_window_s"] = min(d.suspect_window_s, leak_window)
        try:
            thresholds = dataclasses.replace(d, **chosen)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'--suspect-window' / '--leak-window'") from None
        command(*args, thresholds=thresholds, **kwargs)

    out: Callable[..., None] = with_thresholds
    for option in reversed(options):
        out = option(out)
    return out
