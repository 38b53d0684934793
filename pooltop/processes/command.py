"""`pooltop processes` (per-process memory, like `pooltop snapshot`) and `pooltop doctor` (health check).

Exit codes: the project's (0 success, 1 runtime failure with a one-line reason, 2 usage error), and
for `doctor` also 4: a finding at warning or worse (doctor.EXIT_FINDINGS).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from typing import Any

import click

from pooltop import __version__
from pooltop.clikit import Duration, emit_text, sort_order, table_options
from pooltop.model import Snapshot, human_bytes
from pooltop.processes.source import PROCESSES_SCHEMA, ScanStats, split_tag
from pooltop.processes.table import PROCESS_SORT_KEYS, ProcessView, process_view
from pooltop.tracking import Deltas

PROCESS_SORT_CHOICES = tuple(PROCESS_SORT_KEYS)
_WINDOWS_ONLY = {"pool", "paged", "nonpaged", "dpool"}
_LINUX_ONLY = {"swap"}


# --- exports ------------------------------------------------------------------------------------


def _vanished(changes: Deltas | None) -> list[str]:
    return list(changes.vanished.tags) if changes is not None else []


def processes_to_json(snap: Snapshot, view: ProcessView, changes: Deltas | None = None,
                      stats: ScanStats | None = None) -> dict[str, Any]:
    """The `pooltop.processes/1` object."""
    items: list[dict[str, Any]] = []
    is_uss = snap.counters.extra.get("private_is_uss")
    for row, rec in zip(view.rows, view.records(), strict=True):
        name, pid = split_tag(str(rec["process"]))
        item: dict[str, Any] = {"tag": rec["process"], "name": name, "pid": pid}
        change: dict[str, Any] = {}
        for col in view.columns[1:]:
            key = col.meta.key
            if col.meta.is_change:
                change[key.removeprefix("d_")] = rec[key]
            else:
                item[key] = rec[key]
        if is_uss is not None:
            item["private_is_uss"] = bool(is_uss[row])
        if changes is not None:
            change["new"] = bool(changes.is_new[row])
            item["change"] = change
        items.append(item)
    out: dict[str, Any] = {
        "schema": PROCESSES_SCHEMA,
        "generator": f"pooltop {__version__}",
        "source": snap.source,
        "taken_at": snap.taken_at.isoformat().replace("+00:00", "Z"),
        "host": snap.host.to_json(),
        "totals": snap.totals.to_json(),
        "processes": items,
    }
    if changes is not None:
        out["interval_s"] = round(changes.seconds, 3)
        out["vanished"] = _vanished(changes)
    if stats is not None:
        out["scan"] = {"rows": stats.rows, "partial": stats.partial, "denied": stats.denied,
                       "vanished": stats.vanished, "zombies": stats.zombies}
    if snap.warnings:
        out["warnings"] = list(snap.warnings)
    return out


def format_processes_csv(view: ProcessView, changes: Deltas | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = [c.meta.key for c in view.columns]
    w.writerow([*keys, "new"] if changes is not None else keys)
    for row, cells in zip(view.rows, view.cells, strict=True):
        values = ["" if v is None else v for v in cells]
        w.writerow([*values, int(bool(changes.is_new[row]))] if changes is not None else values)
    return buf.getvalue()


_TOTAL_LABELS = {"memory_total": "Memory", "memory_available": "Avail", "swap_total": "Swap",
                 "swap_free": "SwapFree", "slab_unreclaimable": "SUnreclaim", "commit": "Commit"}


def _cell(value: str | int | None, is_change: bool) -> str:
    if value is None:
        return "?"
    if isinstance(value, str):
        return value
    if is_change:
        return f"{value:+,}" if value else "0"
    return f"{value:,}"


def format_processes_text(snap: Snapshot, view: ProcessView, changes: Deltas | None = None) -> str:
    h = snap.host
    lines = [
        f"{h.name}  {h.os} {h.os_version} {h.arch}  {snap.taken_at.strftime('%Y-%m-%d %H:%M:%S')} UTC  "
        f"source {snap.source}" + (f"  interval {changes.seconds:.1f}s" if changes is not None else ""),
    ]
    totals = [f"{_TOTAL_LABELS[k]} {human_bytes(v)}" for k, v in snap.totals.items() if k in _TOTAL_LABELS]
    if totals:
        lines.append("  ".join(totals))
    lines += [f"warning: {w}" for w in snap.warnings]
    lines.append("")
    cols = view.columns
    cells = [[_cell(v, c.meta.is_change) for v, c in zip(row, cols, strict=True)] for row in view.cells]
    widths = [max([len(c.meta.title), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]

    def line(parts: Sequence[str]) -> str:
        return " ".join(p.ljust(w) if i == 0 else p.rjust(w)
                        for i, (p, w) in enumerate(zip(parts, widths, strict=True))).rstrip()

    lines.append(line([c.meta.title for c in cols]))
    lines += [line(r) for r in cells]
    gone = _vanished(changes)
    if gone:
        more = len(gone) - 20
        lines.append(f"exited: {', '.join(gone[:20])}" + (f" (+{more} more)" if more > 0 else ""))
    return "\n".join(lines) + "\n"


# --- commands -----------------------------------------------------------------------------------


@click.command()
@table_options
@click.option("--sort", "-s", "sort_key", type=click.Choice(PROCESS_SORT_CHOICES), default=None,
              help="Sort column (default: private, or dprivate with --interval). d-keys need --interval; "
                   "pool, paged, nonpaged, dpool exist on Windows, swap on Linux.")
@click.option("--include", "-I", multiple=True, metavar="PAT",
              help="Only processes whose name[pid] matches PAT (wildcards * and ?, e.g. 'postgres*'). "
                   "Repeatable.")
@click.option("--exclude", "-X", multiple=True, metavar="PAT",
              help="Leave out matching processes. Repeatable.")
def processes(
    fmt: str = "text",
    sort_key: str | None = None,
    ascending: bool = False,
    descending: bool = False,
    top: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    interval: float | None = None,
    output: str | None = None,
) -> None:
    """Print every process's memory once: private memory, handles or open files, and more.

    \b
    Linux:   private (USS; RSS - shared where smaps is not readable), RSS, swap, open files.
    Windows: private bytes, paged and nonpaged pool charged to the process, handles, peaks.
    Other users' processes that can be read only in part are counted and reported once.
    """
    from pooltop.processes.source import ProcessSource, process_os
    from pooltop.processes.table import sort_process_rows
    from pooltop.query import select_rows
    from pooltop.tracking import Tracker

    order = sort_order(ascending, descending)
    key = sort_key or ("dprivate" if interval is not None else "private")
    if PROCESS_SORT_KEYS[key][1] and interval is None:
        raise click.UsageError(f"--sort {key} needs --interval (two samples)")
    source = ProcessSource()
    wrong = _WINDOWS_ONLY if source.os == "linux" else _LINUX_ONLY
    if key in wrong:
        raise click.UsageError(f"--sort {key} does not exist on {source.os.capitalize()}")
    with source:
        tracker = Tracker()
        taken = source.sample_with_stats()
        first = taken.snapshot
        sample = tracker.update(first)
        if interval is not None:
            time.sleep(interval)
            taken = source.sample_with_stats()
            sample = tracker.update(taken.snapshot)
    snap = sample.snapshot
    for warning in snap.warnings:
        click.echo(f"pooltop: warning: {warning}", err=True)
    changes = sample.interval if interval is not None else None
    rows = select_rows(snap.counters, include, exclude)
    rows = sort_process_rows(snap.counters, key, order, changes, rows,
                             reference=first.counters if interval is not None else None)
    if top is not None:
        rows = rows[:top]
    view = process_view(snap, rows, changes, first if interval is not None else None)
    assert process_os(snap.source) == source.os
    if fmt == "json":
        text = json.dumps(processes_to_json(snap, view, changes, taken.stats), indent=2,
                          ensure_ascii=False) + "\n"
    elif fmt == "csv":
        text = format_processes_csv(view, changes)
    else:
        text = format_processes_text(snap, view, changes)
    emit_text(text, output)


@click.command()
@click.option("--window", "-w", type=Duration(), default=10.0, show_default=True,
              help="How long to watch for growth (one sample a second; shorter windows sample faster).")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE (atomically) instead of standard output.")
def doctor(window: float = 10.0, fmt: str = "text", output: str | None = None) -> None:
    """Check for the signs of a memory leak, once, and say what to do next.

    \b
    - the verdict: over --window, does kernel memory grow (Windows pool, Linux
      unreclaimable slab) without a process growing with it, or a process?
    - kernel pool / slab against physical memory; available memory; swap
      (Linux) or commit charge (Windows)
    - the logs: Linux kernel messages (page allocation failures, SLUB failures,
      OOM kills) from journalctl -k or dmesg; Windows System log srv events
      2019 / 2020 (nonpaged / paged pool empty)
    Data that needs more rights (other users' processes, dmesg, the event log)
    is reported once, as an info finding.

    \b
    Exit codes: 0 all findings ok or info; 4 at least one warning or critical
    finding; 1 pooltop failed (one-line reason on stderr); 2 usage error.
    """
    from pooltop.native import open_source
    from pooltop.processes.doctor import format_report_text, run_doctor
    from pooltop.processes.source import ProcessSource

    process_source = ProcessSource()
    with open_source() as system_source:
        report = run_doctor(window, system_source, process_source)
    text = (json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n" if fmt == "json"
            else format_report_text(report))
    emit_text(text, output)
    if report.exit_code:
        # SystemExit, not ctx.exit(): pooltop.cli.main() runs click with standalone_mode=False, where
        # click returns ctx.exit()'s code instead of raising it, and main() exits 0 regardless.
        raise SystemExit(report.exit_code)
