"""`pooltop diff`, `pooltop import` and `pooltop bundle`."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from pooltop.clikit import TAG_FILE, Duration
from pooltop.errors import PooltopError
from pooltop.model import Snapshot, printable

if TYPE_CHECKING:
    from pooltop.share.bundle import BundlePart

SNAPSHOT_REF_HELP = (
    "A snapshot file of any kind pooltop reads (JSON or CSV export, poolmon /n log, WinDbg !poolused "
    "output, bundle), or FILE@INDEX for one snapshot of a recording or multi-table file "
    "(0 the first, -1 the last)."
)


def _warn(snap: Snapshot, label: str) -> None:
    for w in snap.warnings:
        click.echo(f"pooltop: warning: {printable(label)}: {printable(w)}", err=True)


def _pair(first: str, second: str | None) -> tuple[tuple[str, Snapshot], tuple[str, Snapshot]]:
    from pooltop.snapshots.readers import SnapshotRef, count_snapshots, load_ref, parse_ref

    if second is None:
        ref = parse_ref(first)
        if ref.index is not None:
            raise click.UsageError("give two snapshots, or one recording (first vs last)")
        n = count_snapshots(ref.path)
        if n < 2:
            raise PooltopError(f"{ref.path} holds one snapshot: give a second one to compare with")
        refs = (SnapshotRef(ref.path, 0), SnapshotRef(ref.path, -1))
    else:
        refs = (parse_ref(first), parse_ref(second))
    return (refs[0].label, load_ref(refs[0])), (refs[1].label, load_ref(refs[1]))


@click.command()
@click.argument("before", metavar="A")
@click.argument("after", metavar="[B]", required=False)
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json", "csv")), default="text",
              show_default=True)
@click.option("--sort", "-s", "sort_key", type=click.Choice(("dbytes", "ddiff", "dallocs", "dfrees", "bytes",
                                                               "diff", "tag")),
              default="dbytes", show_default=True, help="Growth in bytes first, by default.")
@click.option("--top", "-n", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@click.option("--all", "include_same", is_flag=True, help="Show unchanged counters too.")
@click.option("--include", "-I", multiple=True, metavar="PAT", help="Only tags matching PAT (* and ?).")
@click.option("--exclude", "-X", multiple=True, metavar="PAT", help="Leave out tags matching PAT.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE (atomically) instead of standard output.")
def diff(before: str, after: str | None, fmt: str, sort_key: str, top: int | None, include_same: bool,
         include: Sequence[str], exclude: Sequence[str], output: str | None) -> None:
    """Per-tag change from snapshot A to snapshot B: what grew, what is new, what vanished.

    A and B are snapshot files of any kind (pooltop JSON or CSV, poolmon /n log, WinDbg !poolused
    output, a bundle), or one sample of a recording as FILE@INDEX (rec.db@0 is the first sample,
    rec.db@-1 the last). A lone recording (or multi-table log) compares its first and last.
    Allocation counters are compared mod 2^32 where both sides have 32-bit counters.
    """
    from pooltop.clikit import emit_text
    from pooltop.share.diff import RENDERERS, diff_snapshots, select

    (la, a), (lb, b) = _pair(before, after)
    _warn(a, la)
    _warn(b, lb)
    d = diff_snapshots(a, b, la, lb)
    if fmt != "text" or output is not None:  # the text on the terminal says it itself
        for w in d.warnings:
            click.echo(f"pooltop: warning: {printable(w)}", err=True)
    rows, hidden = select(d, sort_key, top, include_same, include, exclude)
    emit_text(RENDERERS[fmt](d, rows, hidden), output)


@click.command("import")
@click.argument("source", metavar="FILE")
@click.option("--format", "-f", "fmt", type=click.Choice(("json", "csv", "text")), default="json",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE (atomically) instead of standard output.")
def import_command(source: str, fmt: str, output: str | None) -> None:
    """Read poolmon's /n log, WinDbg !poolused output or a pooltop export into pooltop's format.

    FILE@INDEX picks one table of a file that holds several (0 the first, -1 the last; the last
    by default). Lines that are not part of a table are counted and reported on standard error.
    """
    from pooltop.clikit import emit_text
    from pooltop.snapshots.readers import load_snapshot
    from pooltop.snapshots.writers import FORMATTERS

    snap = load_snapshot(source)
    _warn(snap, source)
    emit_text(FORMATTERS[fmt](snap), output)


@click.command()
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The zip to write (atomically: all of it, or nothing).")
@click.option("--recording", "-r", type=click.Path(dir_okay=False), default=None,
              help="A recording: adds the leak report (text, JSON, HTML) and picks the suspects.")
@click.option("--snapshot", "-s", "snapshot_ref", default=None, metavar="FILE",
              help="Use this snapshot instead of taking one now. " + SNAPSHOT_REF_HELP)
@click.option("--tag", "-t", "tags", multiple=True, metavar="TAG",
              help="A suspect tag or cache (wildcards * and ?). Repeatable. Default: the report's suspects, "
                   "else the largest.")
@click.option("--top", "-n", type=click.IntRange(min=1, max=50), default=8, show_default=True,
              help="At most this many suspects when none are named.")
@click.option("--tagfile", "tagfiles", multiple=True, type=TAG_FILE,
              help="A pooltag.txt-format file to name tag owners. Repeatable.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Take the snapshot from a copied Linux tree (ROOT/proc, ROOT/sys).")
@click.option("--who", "who_names", multiple=True, metavar="NAME",
              help="Also trace who allocates from this cache (`pooltop who`, Linux, root) and add "
                   "who-NAME.json and .txt. Repeatable.")
@click.option("--who-duration", type=Duration(), default=30.0, show_default=True,
              help="How long each --who trace runs.")
def bundle(output: str, recording: str | None, snapshot_ref: str | None, tags: Sequence[str], top: int,
           tagfiles: Sequence[str], root: str | None, who_names: Sequence[str] = (),
           who_duration: float = 30.0) -> None:
    """Pack the evidence for a driver's vendor into one zip.

    The zip holds a snapshot (JSON and text), the leak report of --recording (text, JSON, HTML),
    host and driver facts for the suspect tags, ready-to-run commands that capture their
    allocation stacks (xperf/WPR on Windows, bpftrace/perf on Linux) and a README for the
    recipient. Without --snapshot, the snapshot is taken now. With --who, the kernel call sites and
    processes that allocate from those caches, traced now (`pooltop who`).
    """
    from pooltop.judge import JudgeThresholds
    from pooltop.report.command import report_of_recording
    from pooltop.share.bundle import BundleInputs, make_bundle
    from pooltop.snapshots.readers import load_snapshot
    from pooltop.tagdb.owners import snapshot_owner_lookup

    if who_names and root is not None:
        raise click.UsageError("--who traces this machine's kernel: it cannot go with --root (another tree)")
    out_abs = os.path.abspath(output)
    for given in (recording, snapshot_ref):
        if given is not None and os.path.abspath(given.rsplit("@", 1)[0]) == out_abs:
            raise click.UsageError("--output would overwrite an input")
    if snapshot_ref is not None:
        snap = load_snapshot(snapshot_ref)
        origin = f"from {os.path.basename(snapshot_ref)}"
    else:
        snap, origin = _live_or_recorded(recording, root)
    _warn(snap, "snapshot")
    report = None
    rec_owners = None
    if recording is not None:
        from pooltop.record import Recording

        report = report_of_recording(recording, JudgeThresholds())
        with Recording(recording) as rec:
            rec_owners = rec.owners()
    attributions: tuple[BundlePart, ...] = ()
    who_notes: tuple[str, ...] = ()
    if who_names:
        attributions, who_notes = bundle_attributions(who_names, who_duration)
    inputs = BundleInputs(
        snapshot=snap,
        snapshot_origin=origin,
        report=report,
        recording_name=os.path.basename(recording) if recording else None,
        tags=tuple(tags),
        owners=snapshot_owner_lookup(snap, tagfiles),
        recording_owners=rec_owners,
        max_suspects=top,
        warn=lambda text: click.echo(f"pooltop: warning: {text}", err=True),
        attributions=attributions,
        notes=who_notes,
    )
    parts = make_bundle(output, inputs)
    click.echo(f"pooltop: wrote {output} ({len(parts)} files)", err=True)


def _live_or_recorded(recording: str | None, root: str | None) -> tuple[Snapshot, str]:
    """A snapshot taken now. With a recording, only if this is the machine and source it recorded;
    otherwise (another machine, or no source here) the recording's last sample."""
    from pooltop.errors import NeedsElevation, Unsupported
    from pooltop.native import open_source

    def recorded(reason: str) -> tuple[Snapshot, str]:
        from pooltop.record import Recording

        assert recording is not None
        click.echo(f"pooltop: {reason}; using the recording's last sample", err=True)
        with Recording(recording) as rec:
            return rec.snapshot_at(-1), f"the last sample of {os.path.basename(recording)}"

    try:
        with open_source(root=root) as source:
            snap = source.sample()
    except (Unsupported, NeedsElevation) as e:
        if recording is None:
            raise
        return recorded(f"no live snapshot ({e})")
    if recording is not None:
        from pooltop.record import read_info

        info = read_info(recording)
        if (info.source, info.host.name) != (snap.source, snap.host.name):
            where = info.host.name or "another machine"
            name = os.path.basename(recording)
            return recorded(f"{name} was recorded on {where} ({info.source}), not here")
    return snap, "taken live" if root is None else f"read from the copied tree {root}"


COMMANDS = (diff, import_command, bundle)


def _who_file_stem(name: str) -> str:
    return "who-" + re.sub(r"[^A-Za-z0-9_.()+@-]", "_", name)


def bundle_attributions(names: Sequence[str], duration: float, platform: str | None = None
                        ) -> tuple[tuple[BundlePart, ...], tuple[str, ...]]:
    """`bundle --who NAME...`: who-NAME.json and who-NAME.txt per name, traced one after the other
    (Ctrl+C ends the running trace early and skips the rest), and a note per name that could not
    be traced. On Windows who-TAG.txt holds the ETW capture commands instead."""
    # loaded only when bundling with --who: `pooltop --help` and `diff` stay light
    from pooltop.share.bundle import BundlePart
    from pooltop.who.attribution import render_text
    from pooltop.who.command import current_platform, format_attribution, make_tracer
    from pooltop.who.session import stop_on_signals
    from pooltop.who.windows import capture_instructions

    parts: list[BundlePart] = []
    notes: list[str] = []
    stop = threading.Event()
    windows = (platform or current_platform()) == "win32"
    with stop_on_signals(stop):
        for name in dict.fromkeys(names):
            stem = _who_file_stem(name)
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
