"""`pooltop who NAME`: which kernel code and which processes allocate from a cache.

Exit codes: 0 when something was attributed, 1 when nothing was allocated in the window or
tracing is not possible here (one line on stderr says why; on Windows after printing the ETW
capture commands), 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
import threading

import click

from pooltop.clikit import Duration, emit_text
from pooltop.errors import BadInput, PooltopError
from pooltop.who.attribution import Attribution, render_text
from pooltop.who.plan import check_name
from pooltop.who.session import WINDOWS_NOT_BUILT, WhoTracer, stop_on_signals
from pooltop.who.windows import capture_instructions

DEFAULT_DURATION_S = 30.0


def current_platform() -> str:
    return sys.platform


def format_attribution(a: Attribution, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(a.to_json(), indent=2, ensure_ascii=False) + "\n"
    return render_text(a)


def make_tracer(name: str, stacks: bool) -> WhoTracer:
    """The tracer the command runs (tests replace it with one on a fake tracefs)."""
    return WhoTracer(name, stacks=stacks)


def trace_once(name: str, duration: float, stacks: bool) -> Attribution:
    """Trace `name` for `duration` seconds; Ctrl+C and SIGTERM end it early with what was seen."""
    tracer = make_tracer(name, stacks)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            return tracer.run(duration, stop)
    finally:
        for warning in tracer.warnings:
            click.echo(f"pooltop: warning: {warning}", err=True)


@click.command()
@click.argument("name")
@click.option("--duration", "-d", type=Duration(), default=DEFAULT_DURATION_S, show_default=True,
              help="How long to trace (Ctrl+C ends it early and reports what was seen).")
@click.option("--stacks", is_flag=True, help="Also record the full kernel stack of each allocation.")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE (atomically) instead of standard output.")
def who(name: str, duration: float, stacks: bool, fmt: str, output: str | None) -> None:
    """Which kernel code and which processes allocate from a slab cache (Linux, root).

    NAME is a cache as /proc/slabinfo names it, a SLUB alias merged into one (inotify_inode_mark)
    or kmalloc-N. pooltop traces the kernel's kmem events in a private tracefs instance for
    --duration, pairs each allocation with its free and ranks the call sites by the bytes still
    outstanding, each with the processes (and with --stacks the stacks) behind it. The instance is
    removed again on every way out.

    On Windows NAME is a pool tag: pooltop prints the ETW (xperf / WPR) commands that capture the
    tag's allocation stacks, and how to open them in WPA; live attribution there is not built yet.
    """
    if current_platform() == "win32":
        emit_text(capture_instructions(name), output)
        raise PooltopError(WINDOWS_NOT_BUILT)
    try:
        check_name(name)
    except BadInput as e:
        raise click.BadParameter(str(e), param_hint="NAME") from None
    if sys.stderr.isatty():
        click.echo(f"pooltop: tracing {name} for {duration:g} s (Ctrl+C ends it early)…", err=True)
    result = trace_once(name, duration, stacks)
    emit_text(format_attribution(result, fmt), output)
    if not result.attributed:
        raise PooltopError(f"nothing was allocated from {result.cache} in {result.seconds:.1f} s of tracing")
