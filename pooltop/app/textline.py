"""Header text: a line of styled parts that wraps at its break points, and durations as people
read them."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip


def format_uptime(seconds: float | None) -> str:
    """Uptime with its units spelled out ("14 min", "3 h 05 min", "2 d 03 h"): "0:14" reads as
    either minutes or hours."""
    if seconds is None:
        return "?"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, _ = divmod(s, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def format_duration(seconds: float) -> str:
    """A duration as people read it: "0.25 s", "1.3 s", "45 s", "2 min 05 s", "1 h 05 min"."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.2g} s" if seconds >= 1 else f"{seconds:.2f}".rstrip("0").rstrip(".") + " s"
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _cells(text: str) -> int:
    """Cells of `text`; ASCII without rich's cell_len, whose cache (4,096 strings) would fill up
    with every sample's clock and header line and keep them: +0.6 MiB over the first refreshes
    (tracemalloc in the live view)."""
    return len(text) if text.isascii() else cell_len(text)


class Line:
    """One header line as (text, style) parts: cheap to build, compare and turn into a strip (a rich
    Text would go through Textual's Content and Visual machinery for every sample's clock)."""

    __slots__ = ("breaks", "parts")

    def __init__(self, text: str = "", style: Style | None = None) -> None:
        self.parts: list[tuple[str, Style | None]] = [(text, style)] if text else []
        self.breaks: list[int] = []  # indexes into parts where the line may wrap

    def append(self, text: str, style: Style | None = None) -> None:
        if text:
            self.parts.append((text, style))

    def brk(self) -> None:
        """The line may wrap here (before the next item) when the screen is too narrow."""
        self.breaks.append(len(self.parts))

    def wrap(self, width: int, indent: str = "   ") -> list[Line]:
        """The line cut at its break points into lines of at most `width` cells (an item wider
        than a whole line is cut with an ellipsis when drawn). Continuation lines start with `indent`."""
        if width <= 0 or _cells(self.plain) <= width:
            return [self]
        items: list[list[tuple[str, Style | None]]] = []
        last = 0
        for b in [*self.breaks, len(self.parts)]:
            if b > last:
                items.extend(_words(self.parts[last:b], width - len(indent)))
            last = b
        out: list[Line] = []
        current = Line()
        used = 0
        for item in items:
            size = sum(_cells(text) for text, _ in item)
            if current.parts and used + size > width:
                out.append(current)
                current, used = Line(indent), len(indent)
                first, style = item[0]
                item = [(first.lstrip(" "), style), *item[1:]]
                size = sum(_cells(text) for text, _ in item)
            for text, style in item:
                current.append(text, style)
            used += size
        out.append(current)
        return out

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and self.parts == other.parts and self.breaks == other.breaks

    __hash__ = None  # type: ignore[assignment]

    def to_strip(self, width: int, base: Style) -> Strip:
        """Exactly `width` cells on the `base` style: padded, or cut with an ellipsis. Neighbouring
        parts of one style become one segment."""
        texts: list[str] = []
        styles: list[Style] = []
        used = 0
        for text, style in self.parts:
            size = _cells(text)
            seg_style = base + style if style is not None else base
            if used + size > width:
                text = set_cell_size(text, max(width - used - 1, 0)) + "…"
                size = width - used
            if styles and styles[-1] == seg_style:
                texts[-1] += text
            else:
                texts.append(text)
                styles.append(seg_style)
            used += size
            if used >= width:
                break
        if used < width:
            if styles and styles[-1] == base:
                texts[-1] += " " * (width - used)
            else:
                texts.append(" " * (width - used))
                styles.append(base)
        return Strip([Segment(text, style) for text, style in zip(texts, styles, strict=True)], width)


def _words(item: list[tuple[str, Style | None]], width: int) -> list[list[tuple[str, Style | None]]]:
    """An item wider than `width` as one item per word (each but the first starting with its
    space), so a long sentence (the verdict, a warning) wraps between words instead of being cut."""
    if sum(_cells(text) for text, _ in item) <= width:
        return [item]
    out: list[list[tuple[str, Style | None]]] = []
    for text, style in item:
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            if i == 0 and out and not text.startswith(" "):
                out[-1].append((piece, style))  # the part goes on the word it continues
            elif piece:
                out.append([(piece, style)])
    return out
