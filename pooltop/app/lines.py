"""Handing a widget's own strips to Textual's compositor without its per-line restyling.

Textual's Widget.render_lines sends every repainted line through the styles cache, which makes new
strips to apply box styles (padding, borders, tint, opacity), then through the app's line filters,
which copy every segment again; and the compositor asks for a whole widget whenever any line of
the screen changed. The live view repaints its table and header every sample, so for widgets whose
render_line strips are already complete (styled, full width) this does the minimum: the widget
runs the filters once per new strip and keeps the result while the line stays, and the truecolor
filter is skipped where it would change nothing.

The figure (benchmarks/bench_tui.py, "one frame's lines after a sample", 5,000 rows at 200x50):
the table's lines 0.03 ms as kept strips against 1.2 ms through Widget.render_lines; the header's
0.016 against 0.08 ms. That is what the overrides of Widget.render_lines (Textual's Line API, not
a private name) and the calls of App.get_line_filters and ANSIToTruecolor.truecolor_style buy.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.color import Color
from textual.filter import ANSIToTruecolor, LineFilter
from textual.strip import Strip
from textual.widget import Widget


def plain_box(widget: Widget) -> bool:
    """No padding, border, outline, tint, hatch or opacity: nothing for the styles cache to add."""
    styles = widget.styles
    return (
        not any(styles.padding)
        and not any(edge for edge, _ in styles.border)
        and not any(edge for edge, _ in styles.outline)
        and not styles.tint.a
        and widget.opacity == 1.0
        and styles.text_opacity == 1.0
        and not (styles.has_rule("hatch") and styles.hatch != "none")
    )


def truecolor_already(strip: Strip, line_filter: ANSIToTruecolor, background: Color,
                      known: dict[object, bool]) -> bool:
    """Whether `line_filter` would leave every segment of `strip` as it is (no ANSI colour, no dim);
    it would copy them all into a new strip regardless. `known` remembers the answer per style."""
    rich_background = background.rich_color
    convert = line_filter.truecolor_style
    for _, style, _ in strip:
        if style is None:
            continue
        same = known.get(style)
        if same is None:
            same = known[style] = convert(style, rich_background) is style
        if not same:
            return False
    return True


class StripFinisher:
    """The app's line filters applied to a widget's strips (the widget keeps the results for the
    lines on screen), and what they need from the widget's styles."""

    def __init__(self) -> None:
        self._box: tuple[bool, Color] | None = None
        self._truecolor: dict[object, bool] = {}  # per style, for the current filters and background
        self._truecolor_context: tuple[object, ...] = ()

    def box(self, widget: Widget) -> tuple[bool, Color]:
        """(plain_box, background) of `widget`, kept until clear(): reading them walks the styles
        and the ancestors, and they change only with a style update (call clear() then)."""
        if self._box is None:
            self._box = (plain_box(widget), widget.background_colors[1])
        return self._box

    def apply(self, strip: Strip, filters: Sequence[LineFilter], background: Color) -> Strip:
        """`strip` through the line filters."""
        context = (*filters, background)
        if context != self._truecolor_context:
            self._truecolor, self._truecolor_context = {}, context
        for line_filter in filters:
            if isinstance(line_filter, ANSIToTruecolor) and truecolor_already(
                strip, line_filter, background, self._truecolor
            ):
                continue
            strip = strip.apply_filter(line_filter, background)
        return strip

    def clear(self) -> None:
        self._box = None
        self._truecolor, self._truecolor_context = {}, ()
