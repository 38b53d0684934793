"""Start-up: `pooltop --help` lists every command without importing any, and `pooltop snapshot`
loads only what a sample needs (benchmarks/bench_startup.py prints the times)."""

from __future__ import annotations

import os
import subprocess
import sys

import click
from helpers import DATA

from pooltop.cli import LAZY_COMMANDS, LAZY_HELP, cli

TREE = os.path.join(DATA, "linux", "vm-6.18")
#: what no start of `--help` or `snapshot` may pay for
NEVER = ("capstone", "pefile", "sqlite3", "rich", "textual", "prometheus_client", "matplotlib",
         "pooltop.tagdb.scanner", "pooltop.record.store", "pooltop.share", "pooltop.exporter",
         "pooltop.processes", "pooltop.app")


def modules_after(*args: str) -> set[str]:
    """The modules loaded by `pooltop ARGS` run in a fresh interpreter."""
    code = ("import sys, io, contextlib\n"
            "from pooltop.cli import main\n"
            f"sys.argv = ['pooltop', *{args!r}]\n"
            "try:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        main()\n"
            "except SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print(' '.join(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(out.stdout.split())


def test_help_imports_no_command_and_no_numpy() -> None:
    loaded = modules_after("--help")
    ours = sorted(m for m in loaded if m.startswith("pooltop"))
    # the leak judge's thresholds give the live view's options their defaults (issue 14)
    # pooltop.lazy: the package __getattr__ that keeps pooltop.judge from loading numpy here
    assert ours == ["pooltop", "pooltop.cli", "pooltop.clikit", "pooltop.errors", "pooltop.judge",
                    "pooltop.judge.thresholds", "pooltop.lazy"]
    assert "numpy" not in loaded
    assert not loaded & set(NEVER)


def test_snapshot_loads_no_scanner_database_or_ui() -> None:
    loaded = modules_after("snapshot", "--root", TREE, "-f", "json")
    assert "numpy" in loaded  # the counters are numpy columns
    assert not loaded & set(NEVER)
    # writing a snapshot needs neither the readers nor the importers of foreign formats
    assert not loaded & {"pooltop.snapshots.readers", "pooltop.importers"}


def test_help_lines_are_the_commands_own() -> None:
    ctx = click.Context(cli)
    assert set(LAZY_HELP) == set(LAZY_COMMANDS)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.help is not None
        assert LAZY_HELP[name] == " ".join(command.help.partition("\n\n")[0].split()), name


def test_help_lists_the_commands_as_click_would() -> None:
    """The same lines click renders from the imported commands, at any width."""
    for width in (50, 80, 120):
        ctx = click.Context(cli, info_name="pooltop", terminal_width=width)
        ours, theirs = ctx.make_formatter(), ctx.make_formatter()
        cli.format_commands(ctx, ours)
        click.Group.format_commands(cli, ctx, theirs)
        assert ours.getvalue() == theirs.getvalue() and "snapshot" in ours.getvalue()


def test_every_option_a_help_text_names_is_listed() -> None:
    """`--ascending` says "unless --descending": --help must show --descending too."""
    for name in ("snapshot", "processes"):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        with click.Context(command, info_name=name) as ctx:
            text = command.get_help(ctx)
        assert "unless --descending" in " ".join(text.split()), name
        assert any(line.split()[:1] == ["--descending"] for line in text.splitlines()), name
