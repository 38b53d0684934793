"""The detail pane of the selected row: history sparklines, owners, SLUB aliases, big-pool allocations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from pooltop.app.tracing import WhoView, who_text
from pooltop.app.view import RowFacts
from pooltop.judge import LeakLevel
from pooltop.model import Pool, human_bytes, printable
from pooltop.native import BigPoolAllocation
from pooltop.tagdb import OwnerCandidate

BIG_POOL_SHOWN = 8


@dataclass(frozen=True)
class DetailInfo:
    row: RowFacts | None
    history_bytes: tuple[float, ...]
    history_diff: tuple[float, ...]
    history_seconds: float
    owners: tuple[OwnerCandidate, ...]
    owners_available: bool
    aliases: tuple[str, ...]
    big_pool: tuple[BigPoolAllocation, ...] | None  # None: not asked yet / still loading
    big_pool_note: str | None
    who: WhoView | None = None  # the `w` trace of this row, if one runs or ran


def _clean(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


class DetailPane(VerticalScroll):
    """Shown under the table (Enter); follows the cursor and refreshes with every sample."""

    DEFAULT_CSS = """
    DetailPane { height: 45%; display: none; }
    DetailPane.-open { display: block; }
    DetailPane Horizontal { height: 1; }
    DetailPane .spark-label { width: 8; }
    DetailPane .spark-range { width: auto; min-width: 24; padding-left: 1; }
    DetailPane Sparkline { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="detail-head")
        with Horizontal():
            yield Static("Bytes", classes="spark-label", id="label-bytes")
            yield Sparkline([], id="spark-bytes")
            yield Static("", id="range-bytes", classes="spark-range")
        with Horizontal():
            yield Static("Diff", classes="spark-label", id="label-diff")
            yield Sparkline([], id="spark-diff")
            yield Static("", id="range-diff", classes="spark-range")
        yield Static(id="detail-body")

    def show(self, info: DetailInfo) -> None:
        head = self.query_one("#detail-head", Static)
        body = self.query_one("#detail-body", Static)
        row = info.row
        if row is None:
            head.update(Text("The selected row is gone (it vanished, or the filter hides it)."))
            body.update(Text(""))
            self._spark("bytes", (), human_bytes)
            self._spark("diff", (), lambda v: f"{v:,.0f}")
            return
        process = row.pool is Pool.PROCESS
        self.query_one("#label-bytes", Static).update("Private" if process else "Bytes")
        counted = "Handles" if row.process_os == "windows" else "Files"
        self.query_one("#label-diff", Static).update(counted if process else "Diff")
        head.update(_process_head_text(row, info.history_seconds) if process
                    else _head_text(row, info.history_seconds))
        self._spark("bytes", info.history_bytes, human_bytes)
        self._spark("diff", info.history_diff, lambda v: f"{v:,.0f}")
        body.update(_process_body_text(row) if process else _body_text(info))

    def _spark(self, name: str, values: Sequence[float], fmt: object) -> None:
        data = _clean(values)
        self.query_one(f"#spark-{name}", Sparkline).data = data or [0.0]
        label = ""
        if data:
            assert callable(fmt)
            label = f"{fmt(min(data))} … {fmt(max(data))}"
        self.query_one(f"#range-{name}", Static).update(Text(label))


def _head_text(row: RowFacts, seconds: float) -> Text:
    out = Text()
    out.append(printable(row.tag), Style(bold=True))
    out.append(f"  ({row.pool.label})")
    if row.is_new:
        out.append("  new since the baseline")
    out.append("\n")
    parts = [f"bytes {row.bytes:,} ({human_bytes(row.bytes)})", f"diff {row.diff:,}"]
    if row.allocs is not None and row.frees is not None:
        parts += [f"allocs {row.allocs:,}", f"frees {row.frees:,}"]
    if row.diff > 0:
        parts.append(f"{row.bytes // row.diff:,} B per alloc")
    if row.object_size is not None:
        parts.append(f"object size {row.object_size:,} B")
    out.append("  ".join(parts))
    when = "since baseline" if row.since_baseline else "last refresh"
    out.append(f"\nchange ({when}): bytes {row.change_bytes:+,}  diff {row.change_diff:+,}")
    out.append(_leak_text(row))
    if seconds > 0:
        out.append(f"\nhistory: {seconds:,.0f} s since start")
    return out


def _count_word(row: RowFacts) -> str:
    return "handles" if row.process_os == "windows" else "open files"


def _leak_text(row: RowFacts) -> str:
    text = f"\nleak: {row.level.label}"
    if row.reclaimable:
        text += "  reclaimable"
    if row.level is not LeakLevel.STABLE or row.ups:
        text += (f" (score {row.score:.2f}; {row.ups} rises, {row.downs} falls in the window; "
                 f"growth {human_bytes(row.growth)}; trend {human_bytes(row.slope)}/s)")
    if row.reasons:  # the leak judge's, as the report gives them
        text += "\nwhy: " + "; ".join(printable(r) for r in row.reasons)
    return text


def _process_head_text(row: RowFacts, seconds: float) -> Text:
    """A process's facts: its own memory and open files or handles, not a pool tag's."""
    out = Text()
    out.append(printable(row.tag), Style(bold=True))
    out.append("  (process)")
    if row.is_new:
        out.append("  new since the baseline")
    out.append("\n")
    parts = [f"private {human_bytes(row.bytes)} ({row.bytes:,} B)"]
    if row.rss is not None:
        parts.append(f"RSS {human_bytes(row.rss)}")
    parts.append(f"{_count_word(row)} {row.diff:,}")
    out.append("  ".join(parts))
    when = "since baseline" if row.since_baseline else "last refresh"
    out.append(f"\nchange ({when}): private {row.change_bytes:+,} B  {_count_word(row)} {row.change_diff:+,}")
    out.append(_leak_text(row))
    if seconds > 0:
        out.append(f"\nhistory: {seconds:,.0f} s since start")
    return out


def _process_body_text(row: RowFacts) -> Text:
    out = Text()
    out.append("What the figures are\n", Style(bold=True, underline=True))
    out.append("  Private: memory only this process uses (USS; RSS minus shared pages where USS is not\n"
               "  readable). A process whose private memory or "
               f"{_count_word(row)} keep growing leaks in user space,\n"
               "  not in the kernel: the header's verdict weighs both.\n")
    return out


def _body_text(info: DetailInfo) -> Text:
    out = Text()
    if info.who is not None:
        out.append_text(who_text(info.who))
    out.append("Owners\n", Style(bold=True, underline=True))
    if not info.owners_available:
        out.append("  (no tag database loaded)\n")
    elif not info.owners:
        out.append("  unknown: no pooltag.txt entry, overlay or driver scan names this tag\n")
    for c in info.owners:
        out.append(f"  {printable(c.owner)}", Style(bold=True))
        out.append(f"  [{c.confidence}, {c.source}]")
        if c.pattern:
            out.append(f"  via {printable(c.pattern)}")
        out.append("\n")
        if c.description:
            out.append(f"    {printable(c.description)}\n")
        d = c.driver
        if d is not None:
            facts = [printable(d.path)]
            if d.file_version:
                facts.append(f"version {printable(d.file_version)}")
            if d.company:
                facts.append(printable(d.company))
            if d.signed is not None:
                facts.append("signed" if d.signed else "unsigned")
            out.append(f"    driver: {', '.join(facts)}\n")
    if info.aliases:
        out.append("SLUB aliases", Style(bold=True, underline=True))
        out.append(" (one merged cache; the growing user may be any of these)\n")
        out.append("  " + ", ".join(printable(a) for a in info.aliases) + "\n")
    out.append("Big-pool allocations\n", Style(bold=True, underline=True))
    if info.big_pool_note is not None:
        out.append(f"  {printable(info.big_pool_note)}\n")
    elif info.big_pool is None:
        out.append("  loading…\n")
    elif not info.big_pool:
        out.append("  none of this tag\n")
    else:
        total = sum(a.size for a in info.big_pool)
        out.append(f"  {len(info.big_pool):,} allocations, {human_bytes(total)}\n")
        for a in sorted(info.big_pool, key=lambda a: a.size, reverse=True)[:BIG_POOL_SHOWN]:
            where = f"0x{a.address:016x}" if a.address else "(address hidden)"
            out.append(f"  {where}  {a.size:>12,} B  {'nonpaged' if a.nonpaged else 'paged'}\n")
    return out
