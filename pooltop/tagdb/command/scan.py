"""`pooltop tags scan`: which pool tags do these drivers use?"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import IO

import click

from pooltop.atomic import atomic_write
from pooltop.clikit import progress_bar
from pooltop.errors import PooltopError
from pooltop.model import unescape_tag
from pooltop.tagdb.bytesearch import KnownTags
from pooltop.tagdb.cache import ScanCache
from pooltop.tagdb.candidates import Candidate, default_candidates, iter_candidates
from pooltop.tagdb.findings import ScanReport
from pooltop.tagdb.scanner import DEFAULT_MAX_FILE_SIZE, ScanLimits
from pooltop.tagdb.scanner import scan as run_scan

FORMATS = ("text", "json", "localtag")


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for scripts, localtag for a poolmon /c style localtag.txt.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to FILE (atomically: never a partial file) instead of standard output.",
)
@click.option(
    "--tag",
    "-t",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Also search every driver's bytes for TAG (as findstr would). Repeatable; "
    "comma-separated lists work too.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor update the scan cache.")
@click.option(
    "--cache-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scan cache location (default: pooltop's user cache folder).",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FILE_SIZE // (1024 * 1024),
    show_default=True,
    metavar="MIB",
    help="Reject files larger than this many MiB.",
)
def scan(
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    tags: tuple[str, ...],
    no_cache: bool,
    cache_file: str | None,
    max_size: int,
) -> None:
    """Find the pool tags that driver binaries use.

    PATHs are driver files or folders (searched recursively for .sys, .dll, .exe, .drv, .efi). Without
    PATH, on Windows: the loaded drivers, System32\\drivers and the DriverStore.

    Each tag comes with a confidence: call-site (the argument of a pool allocation or free call),
    immediate (a tag-shaped constant in code), bytes (a raw match of a --tag anywhere in the file).
    """
    known = KnownTags(_split_tags(tags))
    if tags and not known:
        raise click.BadParameter("no usable tag (a tag is 1 to 4 bytes)", param_hint="--tag")
    candidates = list(_candidates(paths))
    limits = ScanLimits(max_file_size=max_size * 1024 * 1024)

    def warn(message: str) -> None:
        click.echo(f"pooltop: warning: {message}", err=True)

    cache = None if no_cache else ScanCache(cache_file, on_warning=warn)
    try:
        with progress_bar(len(candidates), "scanning") as advance:
            progress = None if advance is None else lambda path, _size: advance(1, os.path.basename(path))
            report = run_scan(candidates, limits=limits, known=known or None, cache=cache, progress=progress)
    finally:
        if cache is not None:
            cache.close()
    _emit(report, fmt, output)


def _split_tags(tags: tuple[str, ...]) -> list[str]:
    out = []
    for item in tags:
        for tag in item.split(","):
            if tag:  # "Io  " keeps its padding
                out.append(tag)
    for tag in out:
        if len(unescape_tag(tag)) > 4:
            raise click.BadParameter(f"{tag!r} is longer than 4 bytes", param_hint="--tag")
    return out


def _candidates(paths: tuple[str, ...]) -> Iterator[Candidate]:
    if paths:
        yield from iter_candidates(paths)
        return
    if sys.platform != "win32":
        raise click.UsageError(
            "give PATH (driver files or folders): the default folders exist only on Windows"
        )
    system_root = os.environ.get("SYSTEMROOT") or os.environ.get("WINDIR") or "C:\\Windows"
    yield from default_candidates(system_root, _loaded_drivers())


def _loaded_drivers() -> list[str]:
    """Paths of the loaded kernel modules; [] when they cannot be listed (the folders still are)."""
    try:
        from pooltop.native.windows import list_kernel_modules

        return [m.path for m in list_kernel_modules()]
    except (ImportError, OSError, PooltopError) as e:
        click.echo(
            f"pooltop: warning: cannot list loaded drivers ({e}); scanning the driver folders", err=True
        )
        return []


# ---------------------------------------------------------------------------------------------------
# Output


def _emit(report: ScanReport, fmt: str, output: str | None) -> None:
    if output is None:
        _write(report, fmt, sys.stdout)
        return
    with atomic_write(output) as f:
        _write(report, fmt, f)


def _write(report: ScanReport, fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    elif fmt == "localtag":
        out.write(format_localtag(report))
    else:
        out.write(format_text(report))


def format_text(report: ScanReport) -> str:
    lines: list[str] = []
    for driver in report.drivers:
        facts = driver.facts
        about = [driver.arch]
        about += [x for x in (facts.file_version, facts.company) if x]
        if facts.signed:
            about.append("has a signature (not verified)")
        lines.append(f"{driver.path}  ({', '.join(about)})")
        findings = driver.findings()
        for f in findings:
            apis = sorted({s["api"] for s in f.sites if "api" in s})
            where = ", ".join(apis) if apis else ", ".join(next(iter(s.values())) for s in f.sites[:4])
            plural = "s" if f.site_count != 1 else ""
            lines.append(f"  {_show(f.tag):<6} {f.confidence:<10} {f.site_count:>4} site{plural:<1}  {where}")
        if not findings:
            lines.append("  (no tags found)")
        if driver.unresolved_sites:
            lines.append(f"  {driver.unresolved_sites} pool call(s) whose tag is not a constant at the call")
        lines.extend(f"  note: {note}" for note in driver.notes)
    if report.rejected:
        lines.append("rejected:")
        lines.extend(f"  {r.path}: {r.reason}" for r in report.rejected)
    summary = f"{len(report.drivers)} driver(s) with pool calls, {len(report.rejected)} rejected"
    if report.skipped:
        summary += f", {report.skipped} without pool calls skipped"
    if report.from_cache:
        summary += f", {report.from_cache} from the cache"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _show(tag: str) -> str:
    return f"'{tag}'" if tag != tag.strip() else tag


def format_localtag(report: ScanReport) -> str:
    """poolmon /c style lines: `Tag - driver.sys - description`, strongest evidence first per tag."""
    lines = [
        "rem localtag.txt written by pooltop tags scan: tags found in driver binaries",
        "rem confidence: call-site > immediate > bytes",
    ]
    rows = []
    for driver in report.drivers:
        for f in driver.findings():
            apis = sorted({s["api"] for s in f.sites if "api" in s})
            plural = "s" if f.site_count != 1 else ""
            detail = (
                f"{f.confidence}"
                + (f" {', '.join(apis)}" if apis else "")
                + f" ({f.site_count} site{plural})"
            )
            product = f", {driver.facts.product}" if driver.facts.product else ""
            rows.append((f.tag, driver.name, f"{detail}{product}"))
    for tag, name, detail in sorted(rows, key=lambda r: (r[0], r[1].lower())):
        lines.append(f"{_localtag_tag(tag)} - {name} - {detail}")
    return "\n".join(lines) + "\n"


def _localtag_tag(tag: str) -> str:
    """The tag column as tag-file parsers read it back: trailing padding dropped (the reader pads),
    inner spaces, a trailing '-' and a comment-like start escaped."""
    text = tag.rstrip(" ").replace(" ", "\\x20") or "\\x20"
    if text.endswith("-"):
        text = text[:-1] + "\\x2d"
    if text.startswith("//") or (text[:3].lower() == "rem" and (len(text) == 3 or text[3] in " \t")):
        text = f"\\x{ord(text[0]):02x}{text[1:]}"
    return text
