"""`pooltop who NAME`: which kernel code and which processes allocate from a cache.

Exit codes: 0 when something was attributed, 1 when nothing was allocated in the window or
tracing is not possible here (one line on stderr says why; on Windows after printing the ETW
capture commands), 2 on usage errors.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from pooltop.clikit import Duration, emit_text
from pooltop.errors import BadInput, PooltopError
from pooltop.who.attribution import Attribution, render_text
from pooltop.who.plan import check_name
from pooltop.who.session import WINDOWS_NOT_BUILT, WhoTracer, stop_on_signals
from pooltop.who.windows import capture_instructions

if TYPE_CHECKING:
    from pooltop.share.bundle import BundlePart

DEFAULT_DURATION_S = 30.0


def _platform() -> str:
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
    if _platform() == "win32":
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


def _file_stem(name: str) -> str:
    return "who-" + re.sub(r"[^A-Za-z0-9_.()+@-]", "_", name)


def bundle_attributions(names: Sequence[str], duration: float, platform: str | None = None
                        ) -> tuple[tuple[BundlePart, ...], tuple[str, ...]]:
    """`bundle --who NAME...`: who-NAME.json and who-NAME.txt per name, traced one after the other
    (Ctrl+C ends the running trace early and skips the rest), and a note per name that could not
    be traced. On Windows who-TAG.txt holds the ETW capture commands instead."""
    from pooltop.share.bundle import BundlePart  # the bundle code loads only when bundling

    parts: list[BundlePart] = []
    notes: list[str] = []
    stop = threading.Event()
    windows = (platform or _platform()) == "win32"
    with stop_on_signals(stop):
        for name in dict.fromkeys(names):
            stem = _file_stem(name)
            if windows:
                parts.append(BundlePart(f"{stem}.txt", capture_instructions(name).encode("utf-8"),
                                        f"how to find the code that allocates the pool tag {name} "
                                        "(ETW capture commands)."))
                continue
            if stop.is_set():
                notes.append(f"--who {name}: not traced (interrupted)")
                continue
            click.echo(f"pooltop: tracing {name} for {duration:g} s (Ctrl+C ends it early)…", err=True)
            tracer = make_tracer(name, False)
            try:
                result = tracer.run(duration, stop)
            except PooltopError as e:
                notes.append(f"--who {name}: not traced: {e}")
                continue
            finally:
                notes.extend(f"--who {name}: {w}" for w in tracer.warnings)
            what = (f"which kernel call sites and processes allocated from {result.cache} during "
                    f"{result.seconds:.0f} s of tracing (pooltop who {name})")
            parts.append(BundlePart(f"{stem}.txt", render_text(result).encode("utf-8"), f"{what}, ranked by "
                                    "the bytes still allocated at the end."))
            parts.append(BundlePart(f"{stem}.json", format_attribution(result, "json").encode("utf-8"),
                                    "the same as JSON (schema pooltop.who/1)."))
    return tuple(parts), tuple(notes)
