"""The header: host and sample line, system totals with their trend, the view's state, warnings.

Built from a HeaderInfo (plain data the app assembles); styles come from component classes, text
from the model is added as plain text (never parsed as markup).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from pooltop.app.lines import StripFinisher
from pooltop.app.textline import Line, format_duration, format_uptime
from pooltop.app.view import PoolTotal
from pooltop.judge import LeakLevel
from pooltop.model import Pool, Snapshot, Totals, human_bytes, printable
from pooltop.processes.verdict import Verdict, VerdictKind


@dataclass(frozen=True)
class ReplayInfo:
    """Where the time cursor of a replay stands."""

    position: int  # index of the sample on screen (-1: none yet)
    samples: int
    speed: int  # samples per refresh; 0 paused

    @property
    def at_end(self) -> bool:
        return self.position >= self.samples - 1


@dataclass(frozen=True)
class HeaderInfo:
    snapshot: Snapshot | None
    previous_totals: Totals | None
    interval_s: float
    paused: bool
    sample_number: int
    sort_title: str
    descending: bool
    since_baseline: bool
    baseline_age_s: float
    pools: str
    filter: str
    shown: int
    total: int
    leak_counts: dict[LeakLevel, int]
    new_since_baseline: int
    vanished_since_baseline: tuple[str, ...]
    highlight: bool
    error: str | None = None
    slow_sample_s: float | None = None
    totals_rows: list[PoolTotal] = field(default_factory=list)
    show_totals: bool = False
    tz: dt.tzinfo | None = None
    notes: tuple[str, ...] = ()
    replay: ReplayInfo | None = None
    verdict: Verdict | None = None  # driver or application? None: no process data (replay, failure)
    pinned: str | None = None  # the row the cursor follows (`F`)

_TOTALS_WINDOWS = (("Paged", "paged_pool"), ("Nonpaged", "nonpaged_pool"))
_TOTALS_LINUX = (("Slab", "slab"), ("Unreclaimable", "slab_unreclaimable"))


class PoolHeader(Widget):
    """Three to six lines above the table."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pool-header--title",
        "pool-header--label",
        "pool-header--up",
        "pool-header--down",
        "pool-header--warning",
        "pool-header--error",
        "pool-header--paused",
        "pool-header--leak",
        "pool-header--suspect",
        "pool-header--watch",
        "pool-header--dim",
    }

    DEFAULT_CSS = """
    PoolHeader { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: HeaderInfo | None = None
        self._shown: list[Line] | None = None  # the lines on screen, built in show()
        # Each screen line's strip with what it was rendered from: a new sample re-renders only
        # the lines whose text changed (Widget would render the whole header for any of them).
        self._strips: dict[int, tuple[object, Line, Strip]] = {}
        self._styles: dict[str, Style] = {}
        self._finisher = StripFinisher()
        # Each screen line's filtered strip, with the strip and filters it came from.
        self._finals: dict[int, tuple[Strip, tuple[object, ...], Strip]] = {}

    def show(self, info: HeaderInfo) -> None:
        self.info = info
        old = self._shown
        new = self._shown = self._wrapped(info)
        if old is None or len(old) != len(new):
            # A new layout (the whole screen) only when the header grows or shrinks.
            self.refresh(layout=old is None or len(old) != len(new))
        else:
            # Repaint only the lines that read differently (usually just the host line's clock).
            width = self.size.width
            for y, (before, after) in enumerate(zip(old, new, strict=True)):
                if before != after:
                    self.refresh(Region(0, y, width, 1))

    def _wrapped(self, info: HeaderInfo) -> list[Line]:
        """The header's lines, each wrapped at its break points to the widget's width: at 80
        columns every figure stays visible on a line of its own rather than cut off."""
        width = self.size.width
        return [part for line in self._build(info) for part in line.wrap(width)]

    def on_resize(self) -> None:
        if self.info is not None:
            self.show(self.info)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._shown = None  # built with the old component styles
        self._strips.clear()
        self._styles.clear()
        self._finisher.clear()
        self._finals.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        """Straight from render_line (see pooltop.app.lines): the clock line changes every sample
        (0.016 ms a frame against 0.08 ms through Widget.render_lines: bench_tui)."""
        plain, background = self._finisher.box(self)
        if self.info is None or self._shown is None or not plain:
            return super().render_lines(crop)
        filters = tuple(self.app.get_line_filters())
        strips = []
        for y in crop.line_range:
            strip = self.render_line(y)
            done = self._finals.get(y)
            if done is None or done[0] is not strip or done[1] != filters:
                done = self._finals[y] = (strip, filters, self._finisher.apply(strip, filters, background))
            strips.append(done[2])
        x1, x2 = crop.column_span
        if x1 > 0 or x2 < self.size.width:
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def render_line(self, y: int) -> Strip:
        info, shown = self.info, self._shown
        if info is None or shown is None:
            return super().render_line(y)
        width = self.size.width
        base = self._styles.get("")
        if base is None:  # the widget's own style: kept until a style update, like the parts'
            base = self._styles[""] = self.rich_style
        if y >= len(shown):
            return Strip.blank(width, base)
        context = (width, base)
        line = shown[y]
        cached = self._strips.get(y)
        if cached is not None and cached[0] == context and cached[1] == line:
            return cached[2]
        strip = line.to_strip(width, base)
        self._strips[y] = (context, line, strip)
        return strip

    def _s(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"pool-header--{name}", partial=True)
        return style

    def render(self) -> Text:
        info = self.info
        if info is None:
            return Text("pooltop: starting…")
        if self._shown is None:
            self._shown = self._wrapped(info)
        text = Text("\n").join(self._as_text(line) for line in self._shown)
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    @staticmethod
    def _as_text(line: Line) -> Text:
        text = Text()
        for part, style in line.parts:
            text.append(part, style)
        return text

    def _build(self, info: HeaderInfo) -> list[Line]:
        lines = [self._host_line(info), self._totals_line(info), self._state_line(info)]
        if info.verdict is not None:
            lines.insert(2, self._verdict_line(info.verdict))
        if info.replay is not None:
            lines.insert(1, self._replay_line(info, info.replay))
        if info.show_totals:
            lines.append(self._shown_totals_line(info))
        snap = info.snapshot
        if snap is not None:
            for warning in snap.warnings:
                warn = self._s("warning")
                line = Line("⚠ ", warn)
                line.append(printable(warning), warn)
                lines.append(line)
        if info.error:
            line = Line("✖ sampling failed: ", self._s("error"))
            line.append(printable(info.error), self._s("error"))
            line.append("  (showing the last good sample; retrying)", self._s("dim"))
            lines.append(line)
        for note in info.notes:
            lines.append(Line(note, self._s("dim")))
        return lines

    def _host_line(self, info: HeaderInfo) -> Line:
        out = Line()
        out.append(" pooltop ", self._s("title"))
        snap = info.snapshot
        if snap is None:
            out.append("  waiting for the first sample…")
            return out
        h = snap.host
        out.append(f" {printable(h.name)}", Style(bold=True))
        out.brk()
        out.append(f"  {printable(h.os)} {printable(h.os_version)} {printable(h.arch)}")
        out.brk()
        out.append("  up ", self._s("label"))
        out.append(format_uptime(h.uptime_s))
        out.brk()
        out.append("  every ", self._s("label"))
        out.append(format_duration(info.interval_s))
        taken = snap.taken_at.astimezone(info.tz) if info.tz is not None else snap.taken_at.astimezone()
        out.brk()
        out.append("  at ", self._s("label"))
        out.append(taken.strftime("%H:%M:%S"))
        out.brk()
        out.append("  #", self._s("label"))
        out.append(str(info.sample_number))
        if info.slow_sample_s is not None:
            out.brk()
            out.append(f"  (sampling took {info.slow_sample_s:.1f} s)", self._s("warning"))
        if info.paused:
            out.brk()
            out.append("  ")
            out.append(" PAUSED ", self._s("paused"))
        return out

    def _replay_line(self, info: HeaderInfo, replay: ReplayInfo) -> Line:
        out = Line(" ")
        out.append("replay: ", self._s("label"))
        out.append(f"sample {replay.position + 1:,}/{replay.samples:,}")
        snap = info.snapshot
        if snap is not None:
            taken = snap.taken_at.astimezone(info.tz) if info.tz is not None else snap.taken_at.astimezone()
            out.brk()
            out.append(f"  {taken:%Y-%m-%d %H:%M:%S %Z}".rstrip())
        out.brk()
        out.append("  speed ", self._s("label"))
        if replay.speed:
            out.append(f"{replay.speed}× (samples per refresh)")
        else:
            out.append("paused")
        if replay.at_end:
            out.brk()
            out.append("  end of the recording", self._s("dim"))
        out.brk()
        out.append("  [ ] step  { } ten  Home End  < > speed", self._s("dim"))
        return out

    def _verdict_line(self, verdict: Verdict) -> Line:
        out = Line(" ")
        out.append("verdict: ", self._s("label"))
        if verdict.kind is VerdictKind.UNKNOWN:
            samples = verdict.evidence.samples
            # the count only: how many the verdict needs is the judge's (min_samples), in verdict.text
            out.append(f"collecting process samples ({samples})… {printable(verdict.text)}", self._s("dim"))
            return out
        style = {VerdictKind.KERNEL: "leak", VerdictKind.PROCESS: "suspect"}.get(verdict.kind, "dim")
        out.append(printable(verdict.text), self._s(style))
        return out

    def _trend(self, out: Line, now: int | None, before: int | None) -> None:
        if now is None or before is None or now == before:
            return
        delta = now - before
        if delta > 0:
            out.append(f" ▲{human_bytes(delta)}", self._s("up"))
        else:
            out.append(f" ▼{human_bytes(-delta)}", self._s("down"))

    def _totals_line(self, info: HeaderInfo) -> Line:
        out = Line(" ")
        snap = info.snapshot
        if snap is None:
            return out
        t = snap.totals
        p = info.previous_totals
        windows = t.paged_pool is not None or t.nonpaged_pool is not None
        parts = _TOTALS_WINDOWS if windows else _TOTALS_LINUX
        first = True

        def sep() -> None:
            nonlocal first
            if not first:
                out.brk()
                out.append("  ")
            first = False

        for label, name in parts:
            value = getattr(t, name)
            if value is None:
                continue
            sep()
            out.append(f"{label} ", self._s("label"))
            out.append(human_bytes(value))
            self._trend(out, value, getattr(p, name) if p is not None else None)
        if t.memory_available is not None:
            sep()
            out.append("Avail ", self._s("label"))
            out.append(human_bytes(t.memory_available))
            self._trend(out, t.memory_available, p.memory_available if p is not None else None)
        if t.commit is not None:
            sep()
            out.append("Commit ", self._s("label"))
            out.append(human_bytes(t.commit))
            if t.commit_limit is not None:
                out.append(f"/{human_bytes(t.commit_limit)}")
        if t.swap_total is not None:
            sep()
            out.append("Pagefile " if windows else "Swap ", self._s("label"))
            used = t.swap_total - (t.swap_free or 0)
            out.append(f"{human_bytes(used)}/{human_bytes(t.swap_total)}")
        return out

    def _state_line(self, info: HeaderInfo) -> Line:
        out = Line(" ")
        out.append("Sort ", self._s("label"))
        out.append(f"{info.sort_title}{'▼' if info.descending else '▲'}")
        out.brk()
        out.append("  Δ ", self._s("label"))
        if info.since_baseline:
            out.append(f"since baseline ({format_duration(info.baseline_age_s)})")
        else:
            out.append("per refresh")
        out.brk()
        out.append("  Pools ", self._s("label"))
        out.append(info.pools)
        if info.filter:
            out.brk()
            out.append("  Filter ", self._s("label"))
            out.append(printable(info.filter), Style(bold=True))
        if info.pinned is not None:
            out.brk()
            out.append("  Pinned ", self._s("label"))
            out.append(printable(info.pinned), Style(bold=True))
        out.brk()
        out.append("  Rows ", self._s("label"))
        out.append(f"{info.shown:,}/{info.total:,}" if info.shown != info.total else f"{info.total:,}")
        for level in (LeakLevel.LEAK, LeakLevel.SUSPECT, LeakLevel.WATCH):
            count = info.leak_counts.get(level, 0)
            if count:
                out.brk()
                out.append("  ")
                out.append(f"{count} {level.label}", self._s(level.label))
        if info.new_since_baseline:
            out.brk()
            out.append(f"  *{info.new_since_baseline} new", self._s("label"))
        if info.vanished_since_baseline:
            gone = info.vanished_since_baseline
            names = ", ".join(printable(t) for t in gone[:3]) + (", …" if len(gone) > 3 else "")
            out.brk()
            out.append(f"  {len(gone)} gone: ", self._s("label"))
            out.append(names)
        if not info.highlight:
            out.brk()
            out.append("  highlight off", self._s("dim"))
        return out

    def _shown_totals_line(self, info: HeaderInfo) -> Line:
        out = Line(" ")
        out.append("Totals ", self._s("label"))
        if not info.totals_rows:
            out.append("(no rows shown)")
        for i, total in enumerate(info.totals_rows):
            if i:
                out.brk()
                out.append("  ")
            out.append(f"{total.pool.short}: ", Style(bold=True))
            if total.pool is Pool.SLAB:
                # Bytes and Diff count active objects only; meminfo's Slab (the line above) counts
                # whole slab pages, which is about what the caches hold.
                out.append(f"{total.rows:,} caches, {total.diff:,} active objects in "
                           f"{human_bytes(total.bytes)}")
            elif total.pool is Pool.PROCESS:
                out.append(f"{total.rows:,} processes, {human_bytes(total.bytes)} private")
            else:
                out.append(f"{total.rows:,} tags, {human_bytes(total.bytes)}, diff {total.diff:,}")
            if total.change_bytes:
                style = self._s("up") if total.change_bytes > 0 else self._s("down")
                sign = "+" if total.change_bytes > 0 else "-"
                out.append(f" ({sign}{human_bytes(abs(total.change_bytes))})", style)
            if total.cache_bytes is not None:
                out.brk()
                out.append(f"  the caches hold {human_bytes(total.cache_bytes)}, free objects included")
                out.brk()
                out.append(" (≈ Slab above, which counts whole slab pages)")
        return out
