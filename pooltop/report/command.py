"""`pooltop report`: rank the counters of a recording (or of snapshot files) by how much they look
like a leak."""

from __future__ import annotations

import sys

import click

from pooltop.clikit import emit_text, judge_options, progress_bar
from pooltop.errors import PooltopError
from pooltop.judge import JudgeThresholds
from pooltop.record import is_recording, read_info
from pooltop.report.render import RENDERERS, Report, build_report
from pooltop.report.series import report_on_snapshots


@click.command()
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format", "-f", "fmt", type=click.Choice(("text", "json", "html")), default="text", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to FILE (atomically) instead of standard output.",
)
@click.option("--all", "include_stable", is_flag=True, help="List stable counters too.")
@click.option("--top", "-n", type=click.IntRange(min=1), default=None, help="Only the first N counters.")
@judge_options
@click.option(
    "--points",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Every sample is read; more are cut into this many intervals, each keeping its last, lowest and "
         "highest value.",
)
def report(
    files: tuple[str, ...],
    fmt: str,
    output: str | None,
    include_stable: bool,
    top: int | None,
    points: int,
    thresholds: JudgeThresholds,
) -> None:
    """Rank the counters of a recording (or of snapshot files) by how much they look like a leak.

    Verdicts: leak, suspect, watch, stable; most serious first. `--format html` writes one
    self-contained file with a chart per top suspect and the system totals over time.

    FILE may also be snapshot files (pooltop JSON/CSV exports, poolmon /n logs, WinDbg !poolused
    output): one snapshot shows who holds memory now but cannot show a leak; two or more of one
    machine are analysed as a series, in time order.

    The verdicts are the leak judge's, the same the live view and `serve` give the same samples:
    a leak grew through the whole --leak-window; the series' last segment after a gap (a pause
    longer than three sampling intervals) is judged, and the gaps are listed.
    """
    _check_no_stdout_html(fmt, output)
    th = thresholds
    if len(files) != 1 or not is_recording(files[0]):
        def warn(message: str) -> None:
            click.echo(f"pooltop: warning: {message}", err=True)

        text = report_on_snapshots(files, fmt, th, include_stable, top, warn)
    else:
        rep = report_of_recording(files[0], th, max_points=points)
        text = RENDERERS[fmt](rep, include_stable, top)
    emit_text(text, output)


def _check_no_stdout_html(fmt: str, output: str | None) -> None:
    if fmt == "html" and output is None and sys.stdout.isatty():
        raise PooltopError("an HTML report is a file: give -o report.html")


#: below this many samples a recording reads in well under a second: no progress bar
PROGRESS_MIN_SAMPLES = 10_000


def report_of_recording(path: str, thresholds: JudgeThresholds, max_points: int = 2000) -> Report:
    """build_report, with a progress bar while a large recording is read (on a terminal), and a
    warning when the recording is readable only up to a damaged sample."""
    samples = read_info(path).samples
    with progress_bar(samples if samples >= PROGRESS_MIN_SAMPLES else 0, "reading") as advance:
        shown = 0

        def progress(done: int) -> None:
            nonlocal shown
            assert advance is not None
            advance(done - shown, "")
            shown = done

        rep = build_report(path, thresholds, max_points=max_points, progress=progress if advance else None)
    if rep.damage is not None:
        click.echo(f"pooltop: warning: {path}: {rep.damage}; the report covers the samples before it",
                   err=True)
    return rep
