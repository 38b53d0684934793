"""The pool table: a Line-API widget that formats only the rows on screen.

Textual's DataTable re-renders every cell of every row it holds on each update (~77 ms per 1 Hz
tick at 5,000 rows here); this widget keeps no per-row objects at all. Each sample it reads the
numpy columns of the rows on screen (the model sorts only those), rebuilds the strips of rows whose
inputs changed (a cache keyed by everything a row shows), and repaints only the screen lines that
now read differently; a frame hands Textual the kept lines (render_lines) as they are.

Colours come from the component classes below (set in pooltop.tcss); tags and owner text are
plain Segments, never markup, so a tag like "[b]" shows as typed.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pooltop.app.cells import fit
from pooltop.app.columns import MARKER_WIDTH, TAG_MAX_WIDTH, LaidColumn, layout_columns, title_fits
from pooltop.app.keys import bindings
from pooltop.app.lines import StripFinisher
from pooltop.app.rows import RowPainter, cell_plan, row_inputs
from pooltop.app.sorting import COLUMN_SORT, SORT_COLUMN
from pooltop.app.view import TableModel


class PoolTable(ScrollView, can_focus=True):
    """poolmon's table: one row per (tag, pool), a fixed header line, a cursor row."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("table")

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pool-table--header",
        "pool-table--header-sorted",
        "pool-table--cursor",
        "pool-table--watch",
        "pool-table--suspect",
        "pool-table--leak",
        "pool-table--label-watch",
        "pool-table--label-suspect",
        "pool-table--label-leak",
        "pool-table--up",
        "pool-table--up-faded",
        "pool-table--down",
        "pool-table--down-faded",
        "pool-table--new",
        "pool-table--zero",
        "pool-table--empty",
    }

    DEFAULT_CSS = """
    PoolTable {
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    """

    class SortClicked(Message):
        """A header cell was clicked: sort by that column (again: reverse)."""

        def __init__(self, sort: str) -> None:
            super().__init__()
            self.sort = sort

    class CursorMoved(Message):
        """The selected row changed (by the user, or because rows moved)."""

        def __init__(self, key: tuple[str, int] | None) -> None:
            super().__init__()
            self.key = key

    class RowActivated(Message):
        """A row was double-clicked."""

    def __init__(
        self,
        model: TableModel,
        *,
        symbols: bool = False,
        fade_s: float = 3.0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self.symbols = symbols
        self.fade_ns = int(fade_s * 1e9)
        self.cursor = 0
        self.selected_key: tuple[str, int] | None = None
        self.pinned_key: tuple[str, int] | None = None  # followed across samples and sorts (`F`)
        self.empty_text = "waiting for the first sample…"
        self._columns: list[LaidColumn] = []
        self._layout_key: tuple[object, ...] | None = None
        self._tag_width = 4
        self._tags_seen: tuple[str, ...] | None = None
        self._rich_styles: dict[str, Style] = {}
        self._painter = RowPainter(self._style, symbols)
        # What each screen line shows now, for the view (scroll top, width, height) in _shown_key:
        # the strips (_shown) and the same after the app's line filters (_final, what the
        # compositor gets). A new sample compares line by line and repaints only the lines whose
        # strip changed (Textual's compositing and the terminal output cost far more per line
        # than building a strip); a frame hands over the list as it is.
        self._shown_key: tuple[int, int, int] | None = None
        self._shown: list[Strip] = []
        self._final: list[Strip] = []
        # Row strips by everything they show (see _row_inputs), for the current _strip_context:
        # a row whose inputs did not change is not rebuilt, and is the same Strip object.
        self._strips: dict[tuple[object, ...], Strip] = {}
        self._strip_context: tuple[object, ...] | None = None
        self._finisher = StripFinisher()
        self._header_cache: tuple[tuple[object, ...], Strip] | None = None

    # --- data and layout ----------------------------------------------------------------------

    def data_changed(self, reset: bool = False) -> None:
        """The model has a new sample or new settings: re-place the cursor, re-lay, repaint.

        The view follows the top, as poolmon and top do: `reset` (a new sort, filter or pool
        choice) shows the top with the cursor on the first row; a new sample keeps the cursor's
        position (not its row: rows re-sort under it) and never scrolls, so a wheel scroll stays.
        Only a pinned row is followed, across samples and sorts.
        """
        counters = self.model.counters
        if self._tags_seen is not counters.tags:
            self._tags_seen = counters.tags
            longest = max((len(t) for t in counters.tags), default=4)
            self._tag_width = max(4, min(TAG_MAX_WIDTH, longest))
        n = len(self.model)
        old_key = self.selected_key
        pinned = self.model.position_of(self.pinned_key) if self.pinned_key is not None else None
        if pinned is not None:
            self.cursor = pinned
        elif reset:
            self.cursor = 0
        self.cursor = min(self.cursor, max(n - 1, 0))
        self.selected_key = self.model.row_key(self.cursor)
        self._relayout()
        size = Size(self.scrollable_content_region.width, n + 1)
        if size != self.virtual_size:  # a reactive: setting it runs Textual's change machinery
            self.virtual_size = size
        if pinned is not None:
            self._scroll_to_cursor()
        elif reset:
            self.scroll_to(y=0, animate=False, immediate=True)
        self._refresh_changed_lines()
        if self.selected_key != old_key:
            self.post_message(self.CursorMoved(self.selected_key))

    def toggle_pin(self) -> tuple[str, int] | None:
        """Pin the selected row (the cursor follows it across samples and sorts), or unpin; returns
        the pinned key."""
        self.pinned_key = None if self.pinned_key is not None else self.selected_key
        self._refresh_changed_lines()
        return self.pinned_key

    def _view(self) -> tuple[int, int, int]:
        region = self.scrollable_content_region
        return int(self.scroll_y), region.width, region.height

    def _refresh_changed_lines(self) -> None:
        """Repaint the lines that now read differently (all of them if the view moved)."""
        view = self._view()
        if not self.is_mounted or view != self._shown_key:
            self._shown_key = None
            self.refresh()
            return
        top, width, height = view
        try:
            lines = self._screen_lines(top, width, height)
        except KeyError:
            # The component classes' styles are not resolved (a sample landing while the widget
            # mounts or unmounts, seen in CI): repaint everything once they are.
            self._shown_key = None
            self.refresh()
            return
        shown, final = self._shown, self._final
        changed = []
        for y, strip in enumerate(lines):
            old = shown[y]
            if old is not strip and old != strip:
                shown[y] = strip
                final[y] = self._finish(strip)
                # Not the scrollbar's column: the compositor would render the scrollbar too.
                changed.append(Region(0, y, width, 1))
        if changed:
            self.refresh(*changed)  # one call: each has a fixed cost in Textual

    def _screen_lines(self, top: int, width: int, height: int) -> list[Strip]:
        """The strips of screen lines 0..height-1 (rows from the row cache where unchanged)."""
        lines = [self._header_strip(width)]
        n = len(self.model)
        first, last = top, min(top + height - 1, n)
        if last > first:
            # Keep twice the screen sorted ahead, so scrolling a page down needs no new sort.
            self.model.head_size = max(200, last + (last - first) * 2)
            context = (width, self._layout_key, self.model.settings.highlight,
                       self.symbols, self.fade_ns, id(self.model.owners))
            old = self._strips if context == self._strip_context else {}
            self._strip_context = context
            new: dict[tuple[object, ...], Strip] = {}
            for key in self._row_inputs(first, last):
                strip = new.get(key)
                if strip is None:
                    strip = old.get(key)
                if strip is None:
                    strip = self._build_row(key, width)
                new[key] = strip
                lines.append(strip)
            self._strips = new  # only what is on screen now: bounded, and enough for a live view
        for y in range(len(lines), height):
            lines.append(self._line(y, top, width))  # past the last row
        return lines[:height]

    def _current_lines(self) -> list[Strip]:
        """_shown for the view as it is now (rebuilt when the view moved or was reset)."""
        view = self._view()
        if view != self._shown_key:
            top, width, height = view
            self._shown = self._screen_lines(top, width, height)
            self._final = [self._finish(strip) for strip in self._shown]
            self._shown_key = view
        return self._shown

    def _finish(self, strip: Strip) -> Strip:
        """A screen line as the compositor gets it: through the app's line filters."""
        return self._finisher.apply(strip, self.app.get_line_filters(), self._finisher.box(self)[1])

    def _row_inputs(self, first: int, last: int) -> list[tuple[object, ...]]:
        return row_inputs(self.model, first, last, self.cursor, self.fade_ns)

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width
        m = self.model
        process = m.process_os
        key = (width, self._tag_width, m.has_alloc_counts, m.is_slab, m.owners.available, self.symbols,
               process, m.extra_column)
        if key != self._layout_key:
            self._layout_key = key
            self._columns = layout_columns(
                width, self._tag_width, m.has_alloc_counts, m.is_slab or process is not None,
                m.owners.available, self.symbols, per_alloc=process is None, extra=m.extra_column,
                process_os=process)
            self._painter.cells = [cell_plan(lc) for lc in self._columns]

    @property
    def columns(self) -> list[LaidColumn]:
        return self._columns

    def on_resize(self, event: events.Resize) -> None:
        self._layout_key = None
        self._shown_key = None
        self._relayout()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.model) + 1)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._rich_styles.clear()
        self._painter.clear()
        self._shown_key = None
        self._strips.clear()
        self._strip_context = None
        self._finisher.clear()
        self._header_cache = None

    # --- cursor -------------------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        last_visible = top + self.page_rows - 1
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor > last_visible:
            self.scroll_to(y=self.cursor - self.page_rows + 1, animate=False, immediate=True)

    def move_cursor(self, position: int) -> None:
        n = len(self.model)
        self.cursor = max(0, min(position, n - 1)) if n else 0
        key = self.model.row_key(self.cursor)
        changed = key != self.selected_key
        self.selected_key = key
        if self.pinned_key is not None:
            self.pinned_key = key  # the pin moves with the cursor
        self._scroll_to_cursor()
        self._refresh_changed_lines()
        if changed:
            self.post_message(self.CursorMoved(key))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, pages: int) -> None:
        self.move_cursor(self.cursor + pages * self.page_rows)

    def action_cursor_to(self, position: int) -> None:
        self.move_cursor(position if position >= 0 else len(self.model) - 1)

    # --- mouse --------------------------------------------------------------------------------

    def column_at(self, x: int) -> LaidColumn | None:
        for lc in self._columns:
            if lc.x <= x < lc.x + lc.width + 1:
                return lc
        return None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            lc = self.column_at(offset.x)
            if lc is not None:
                self.post_message(self.SortClicked(COLUMN_SORT[lc.column.key]))
            return
        position = int(self.scroll_y) + offset.y - 1
        if position < len(self.model):
            self.move_cursor(position)
            if event.chain >= 2:
                self.post_message(self.RowActivated())

    # --- rendering ----------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        """An overlay with just what the component class sets, its colours resolved.

        Partial component styles keep TCSS alpha unresolved ("#cc79a7 55%" would paint at full
        strength); full ones also carry the widget's own colours, which would wipe a row's tint.
        So take each colour from the full style only where the class sets it.
        """
        style = self._rich_styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                partial = self.get_component_rich_style(name, partial=True)
                full = self.get_component_rich_style(name)
                style = Style(
                    color=full.color if partial.color is not None else None,
                    bgcolor=full.bgcolor if partial.bgcolor is not None else None,
                    bold=partial.bold,  # None where the class leaves it alone
                    dim=partial.dim,
                    italic=partial.italic,
                    underline=partial.underline,
                    reverse=partial.reverse,
                )
            self._rich_styles[name] = style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        """The screen lines in `crop`, as kept in _final.

        Textual's styles cache would re-style every repainted line (new strips, its own cache
        per line) to apply box styles this widget does not use, and the compositor asks for the
        whole widget whenever any line of the screen changes. Each strip here is already styled,
        filtered and exactly as wide as the content area (so the compositor need not cut off
        the scrollbar's column): a frame costs a list slice (0.03 ms against 1.2 ms through
        Widget.render_lines at 200x50: bench_tui, pooltop/app/lines.py).
        """
        plain, _ = self._finisher.box(self)
        if not plain:
            return super().render_lines(crop)
        self._current_lines()
        final = self._final
        width = self.scrollable_content_region.width
        strips = [final[y] if y < len(final) else Strip.blank(width) for y in crop.line_range]
        x1, x2 = crop.column_span
        if x1 > 0 or x2 < width:
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def render_line(self, y: int) -> Strip:
        lines = self._current_lines()
        return lines[y] if 0 <= y < len(lines) else Strip.blank(self.scrollable_content_region.width)

    def _line(self, y: int, top: int, width: int) -> Strip:
        """A screen line below the last row: the waiting text on an empty table, else blank."""
        base = self._style("base")
        if top + y - 1 == 0:
            text = fit(" " + self.empty_text, width)
            return Strip([Segment(text, base + self._style("pool-table--empty"))], width)
        return Strip.blank(width, base)

    def _header_strip(self, width: int) -> Strip:
        settings = self.model.settings
        key = (width, self._layout_key, settings.sort, settings.descending)
        cached = self._header_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._make_header_strip(width)
        self._header_cache = (key, strip)
        return strip

    def _make_header_strip(self, width: int) -> Strip:
        base = self._style("base") + self._style("pool-table--header")
        sorted_style = base + self._style("pool-table--header-sorted")
        settings = self.model.settings
        sorted_key = SORT_COLUMN.get(settings.sort)
        arrow = "▼" if settings.descending else "▲"
        segments = [Segment(" " * MARKER_WIDTH, base)]
        used = MARKER_WIDTH
        for lc in self._columns:
            title = lc.column.title
            style = base
            if lc.column.key == sorted_key:
                title = title_fits(title, arrow, lc.width)
                style = sorted_style
            segments.append(Segment(fit(title, lc.width, lc.right), style))
            segments.append(Segment(" ", base))
            used += lc.width + 1
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments).crop(0, width)

    def _row_strip(self, position: int, width: int) -> Strip:
        return self._build_row(self._row_inputs(position, position + 1)[0], width)

    def _build_row(self, inputs: tuple[object, ...], width: int) -> Strip:
        return self._painter.build(inputs, width, self.model.owners.text, self.model.settings.highlight)
