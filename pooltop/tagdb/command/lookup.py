"""`pooltop tags lookup TAG...`: every owner candidate of a tag, with where it came from."""

from __future__ import annotations

import json

import click

from pooltop.clikit import TAG_FILE
from pooltop.errors import PooltopError
from pooltop.model import unescape_tag
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb.owners import candidate_to_json, load_tag_database
from pooltop.tagdb.resolve import TagDatabase, tag_key

_MAX_MALFORMED_SHOWN = 8


def _tag_argument(text: str, slab: bool) -> str:
    if slab:
        if not text:
            raise click.BadParameter("a slab cache name cannot be empty", param_hint="TAG")
        return text
    raw = unescape_tag(text)
    if not 1 <= len(raw) <= pt.POOL_TAG_LEN:
        hint = " (use --slab for Linux slab cache names)" if len(raw) > pt.POOL_TAG_LEN else ""
        raise click.BadParameter(f"{text!r} is not a pool tag: 1 to 4 bytes{hint}", param_hint="TAG")
    return tag_key(raw)


def _print_text(results: list[tuple[str, list[OwnerCandidate]]]) -> None:
    for tag, found in results:
        click.echo(f"'{tag}'")
        if not found:
            click.echo("  no owner known")
            continue
        width = max(len(c.owner) for c in found)
        for c in found:
            origin = c.source if c.pattern is None else f"{c.source}, pattern {c.pattern}"
            description = f"  {c.description}" if c.description else ""
            click.echo(f"  {c.confidence:<12}{c.owner:<{width}}{description}  [{origin}]")


def _warn_about_sources(db: TagDatabase, slab: bool) -> None:
    for report in db.reports:
        if report.error:
            click.echo(f"pooltop: warning: skipped {report.error}", err=True)
        elif report.malformed:
            lines = ", ".join(str(n) for n in report.malformed[:_MAX_MALFORMED_SHOWN])
            more = ", ..." if len(report.malformed) > _MAX_MALFORMED_SHOWN else ""
            click.echo(
                f"pooltop: warning: {report.path}: {len(report.malformed)} unreadable line(s) ignored "
                f"(line {lines}{more})",
                err=True,
            )
    if not slab and not any(r.source != "overlay" and r.error is None for r in db.reports):
        click.echo(
            "pooltop: note: no pooltag.txt found (it comes with the Debugging Tools for Windows, "
            r"in Windows Kits\10\Debuggers\x64\triage); pass it with --tagfile",
            err=True,
        )


@click.command("lookup")
@click.argument("tag_args", metavar="TAG...", nargs=-1, required=True)
@click.option(
    "--tagfile",
    "tagfiles",
    multiple=True,
    type=TAG_FILE,
    help="A pooltag.txt-format file to use first (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help='json prints {"tags": [{"tag", "candidates": [...]}], "sources": [...]}.',
)
@click.option("--slab", is_flag=True, help="The names are Linux slab caches, not pool tags.")
def lookup(tag_args: tuple[str, ...], tagfiles: tuple[str, ...], fmt: str, slab: bool) -> None:
    """Show who owns each TAG, every candidate with its source and confidence.

    A TAG is case-sensitive; one shorter than 4 characters is padded with spaces ("Io" is "Io  "),
    and bytes that are not printable are written \\xNN ("\\x01abc").

    Sources, strongest first: your overlay file (tags.txt in pooltop's config folder), the
    --tagfile files, pooltag.txt of the Windows Kits debuggers (or ./pooltag.txt), localtag.txt.
    Exact entries rank above wildcard ones (Afd?, Aml*).

    Exit status: 0 when at least one TAG has an owner candidate (the others print "no owner
    known"), 1 when none has, or when a --tagfile cannot be read; 2 for a malformed TAG or a
    --tagfile that does not exist.
    """
    keys = [_tag_argument(text, slab) for text in tag_args]
    # pooltag.txt and driver scans know no slab caches
    db = load_tag_database(tagfiles, slabs=slab, discover=not slab)
    _warn_about_sources(db, slab)
    results = [(key, db.candidates(key)) for key in keys]
    if fmt == "json":
        doc = {
            "tags": [
                {"tag": key, "candidates": [candidate_to_json(c) for c in found]} for key, found in results
            ],
            "sources": [r.to_json() for r in db.reports],
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_text(results)
    if not any(found for _, found in results):
        shown = ", ".join(f"'{key}'" for key in keys[:5]) + (", ..." if len(keys) > 5 else "")
        raise PooltopError(f"no owner known for {shown}")
