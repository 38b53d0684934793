"""The `pooltop` command: the live UI with no arguments, headless subcommands otherwise.

Exit codes (a contract, see README): 0 success, 1 runtime failure with a one-line reason on
stderr, 2 usage error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from pooltop import __version__
from pooltop.clikit import TAG_FILE, Duration, emit_text, judge_options, sort_order, table_options
from pooltop.errors import PooltopError
from pooltop.judge import JudgeThresholds

if TYPE_CHECKING:  # only for annotations: `pooltop --help` loads neither numpy nor the tag database
    from pooltop.model import Snapshot
    from pooltop.native import Source
    from pooltop.tracking import Deltas

SORT_CHOICES = ("tag", "allocs", "frees", "diff", "bytes", "peralloc", "dallocs", "dfrees", "ddiff", "dbytes")
POOL_CHOICES = ("paged", "nonpaged", "session", "slab", "all")  # "process" rows live in `pooltop processes`


#: subcommand -> "module:attribute". Imported only when used: the live view's first frame should
#: not wait for the driver scanner, the exporter and the report code to load.
LAZY_COMMANDS = {
    "processes": "pooltop.processes.command:processes",
    "doctor": "pooltop.processes.command:doctor",
    "record": "pooltop.record.command:record",
    "report": "pooltop.report.command:report",
    "view": "pooltop.app.command:view",
    "diff": "pooltop.share.cli:diff",
    "import": "pooltop.share.cli:import_command",
    "bundle": "pooltop.share.cli:bundle",
    "tags": "pooltop.tagdb.command:tags",
    "serve": "pooltop.exporter.command:serve",
    "who": "pooltop.who.command:who",
}

#: the first paragraph of each lazy command's help, so `pooltop --help` lists them without importing
#: any (tests/test_cli_startup.py keeps these true). A command missing here is imported to list it.
LAZY_HELP = {
    "bundle": "Pack the evidence for a driver's vendor into one zip.",
    "diff": "Per-tag change from snapshot A to snapshot B: what grew, what is new, what vanished.",
    "doctor": "Check for the signs of a memory leak, once, and say what to do next.",
    "import": "Read poolmon's /n log, WinDbg !poolused output or a pooltop export into pooltop's format.",
    "processes": "Print every process's memory once: private memory, handles or open files, and more.",
    "record": "Record samples unattended into FILE, for hours; stop with Ctrl+C or SIGTERM.",
    "report": "Rank the counters of a recording (or of snapshot files) by how much they look like a leak.",
    "serve": ("Serve Prometheus metrics: per-tag bytes, counts and leak level, system totals, "
              "exporter health."),
    "tags": "Find which driver (or kernel component) owns a pool tag.",
    "view": "Replay a recording (or snapshot files) in the live view, with a time cursor.",
    "who": "Which kernel code and which processes allocate from a slab cache (Linux, root).",
}


class LazyGroup(click.Group):
    """A click group whose subcommands (other than the ones defined here) load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in LAZY_COMMANDS:
            return found
        import importlib

        module, attr = LAZY_COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, from LAZY_HELP where it can: importing every command to print
        one line about each made `pooltop --help` 10x a bare Python start."""
        defined = super().list_commands(ctx)
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name not in defined and name in LAZY_HELP:
                rows.append((name, click.Command(name, help=LAZY_HELP[name])))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


@click.group(cls=LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="pooltop")
@click.option("--interval", "-i", type=Duration(), default=1.0, show_default=True,
              help="Refresh interval of the live view.")
@judge_options
@click.pass_context
def cli(ctx: click.Context, interval: float, thresholds: JudgeThresholds) -> None:
    """pooltop: find kernel memory leaks (Windows pool tags, Linux slab caches).

    With no command it opens the live view. Commands run headless.
    """
    if ctx.invoked_subcommand is not None:
        return
    from pooltop.app import run_live

    run_live(interval=interval, thresholds=thresholds)


@cli.command()
@table_options
@click.option("--sort", "-s", "sort_key", type=click.Choice(SORT_CHOICES), default=None,
              help="Sort column (default: bytes, or dbytes with --interval).")
@click.option("--include", "-I", multiple=True, metavar="PAT",
              help="Only tags matching PAT (wildcards * and ?, case-sensitive, as poolmon /i). Repeatable.")
@click.option("--exclude", "-X", multiple=True, metavar="PAT",
              help="Leave out tags matching PAT. Repeatable.")
@click.option("--pool", "-p", "pools", multiple=True, type=click.Choice(POOL_CHOICES),
              help="Only these pool types. Repeatable.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Read a copied Linux tree (ROOT/proc/slabinfo, ROOT/sys/kernel/slab; e.g. a sosreport).")
@click.option("--tagfile", "tagfiles", multiple=True, type=TAG_FILE,
              help="A pooltag.txt-format file to name tag owners (before the discovered ones). Repeatable.")
def snapshot(
    fmt: str = "text",
    sort_key: str | None = None,
    ascending: bool = False,
    descending: bool = False,
    top: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    pools: Sequence[str] = (),
    interval: float | None = None,
    output: str | None = None,
    root: str | None = None,
    tagfiles: Sequence[str] = (),
) -> None:
    """Print the kernel pool (or slab) counters once, as text, JSON or CSV."""
    from pooltop.model import Pool
    from pooltop.native import open_source
    from pooltop.query import SORT_KEYS, head_rows, select_rows, sort_rows
    from pooltop.snapshots.writers import FORMATTERS
    from pooltop.tagdb.owners import snapshot_owner_lookup

    # Check the words before sampling: a usage error should not wait out --interval first.
    key = sort_key or ("dbytes" if interval is not None else "bytes")
    if SORT_KEYS[key][1] and interval is None:
        raise click.UsageError(f"--sort {key} needs --interval (two samples)")
    order = sort_order(ascending, descending)
    pool_filter = None if not pools or "all" in pools else [Pool.parse(p) for p in pools]
    with open_source(root=root) as source:
        snap, changes = _take_samples(source, interval)
    for warning in snap.warnings:
        click.echo(f"pooltop: warning: {warning}", err=True)
    counters = snap.counters
    rows = select_rows(counters, include, exclude, pool_filter)
    if top is not None:
        rows = head_rows(counters, key, top, order, changes, rows)
    else:
        rows = sort_rows(counters, key, order, changes, rows)
    owners = snapshot_owner_lookup(snap, tagfiles)
    text = FORMATTERS[fmt](snap, rows, changes=changes, owners=owners)
    emit_text(text, output)


def _take_samples(source: Source, interval: float | None) -> tuple[Snapshot, Deltas | None]:
    """One snapshot; or, with --interval, the second of two and the change between them (only then
    is the tracking code loaded: a plain snapshot starts faster without it)."""
    first = source.sample()
    if interval is None:
        return first, None
    from pooltop.tracking import Tracker

    tracker = Tracker()
    tracker.update(first)
    time.sleep(interval)
    sample = tracker.update(source.sample())
    return sample.snapshot, sample.interval


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: maps every failure to a one-line message and the documented exit code."""
    # pooltop does no linear algebra, so the thread pool OpenBLAS starts when numpy loads (a thread
    # per core) is pure start-up cost: `import numpy` 223 -> 164 ms wall on the 2-core test machine.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        # Without standalone mode click returns what ctx.exit(code) asked for instead of exiting.
        args = list(argv) if argv is not None else None
        rv = cli.main(args=args, prog_name="pooltop", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("pooltop: aborted", err=True)
        sys.exit(1)
    except PooltopError as e:
        click.echo(f"pooltop: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `pooltop snapshot | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)
