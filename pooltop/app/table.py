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

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pooltop.app.keys import bindings
from pooltop.app.lines import StripFinisher
from pooltop.app.view import ALLOC_COLUMNS, COLUMN_SORT, SORT_COLUMN, TableModel
from pooltop.judge import LeakLevel
from pooltop.model import COLUMNS, Column, ColumnKind, Pool, printable

#: the value columns whose changes are highlighted, and the counter each shows
_VALUE_COLUMNS = {"allocs": "allocs", "frees": "frees", "diff": "diff", "bytes": "bytes"}
_CHANGE_COLUMNS = {"d_allocs": "allocs", "d_frees": "frees", "d_diff": "diff", "d_bytes": "bytes"}
_LEVEL_TEXT = {LeakLevel.STABLE: "", LeakLevel.WATCH: "watch", LeakLevel.SUSPECT: "suspect",
               LeakLevel.LEAK: "LEAK"}
#: after the level, by the row's reclaimable flag: "~" marks memory the kernel frees under pressure
_RECLAIM_MARK = ("", "~")
_LEVEL_CLASS = {LeakLevel.WATCH: "pool-table--watch", LeakLevel.SUSPECT: "pool-table--suspect",
                LeakLevel.LEAK: "pool-table--leak"}
_STATE_CLASS = {2: "pool-table--up", 1: "pool-table--up-faded", -1: "pool-table--down-faded",
                -2: "pool-table--down"}
_STATE_SYMBOL = {2: "▲", 1: "△", -1: "▽", -2: "▼", 0: " "}


class _Cell(enum.Enum):
    """How a laid-out column's cell is made (decided once per layout, not per cell)."""

    TAG = enum.auto()
    POOL = enum.auto()
    VALUE = enum.auto()  # a counter, highlighted by how it changed
    CHANGE = enum.auto()  # a counter's change, coloured by its sign
    PER_ALLOC = enum.auto()
    OWNER = enum.auto()
    LEAK = enum.auto()
    OTHER = enum.auto()


# Where _row_inputs puts each value in a row's tuple.
_IN_TAG, _IN_POOL = 0, 1
_IN_VALUE = {"allocs": 2, "frees": 4, "diff": 6, "bytes": 8}  # each followed by its change
_IN_STATE = {"allocs": 10, "frees": 11, "diff": 12, "bytes": 13}  # its highlight state (ChangeMemory)
_IN_DIFF, _IN_BYTES = _IN_VALUE["diff"], _IN_VALUE["bytes"]
_IN_LEVEL, _IN_NEW, _IN_CURSOR, _IN_RECLAIM = 14, 15, 16, 17
OWNER_MIN_WIDTH = 12
OWNER_MAX_WIDTH = 60
TAG_MAX_WIDTH = 28
TAG_MIN_WIDTH = 16
MARKER_WIDTH = 1  # "*" for a row that is new since the baseline


@dataclass(frozen=True)
class LaidColumn:
    column: Column
    x: int
    width: int

    @property
    def right(self) -> bool:
        return self.column.kind is not ColumnKind.TEXT and self.column.kind is not ColumnKind.LEVEL


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or crop to exactly `width` cells (cropped text ends with an ellipsis)."""
    if text.isascii():
        n = len(text)
        if n == width:
            return text
        if n < width:
            return text.rjust(width) if right else text.ljust(width)
        return text[: max(width - 1, 0)] + "…" if width else ""
    n = cell_len(text)
    if n <= width:
        pad = " " * (width - n)
        return pad + text if right else text + pad
    return set_cell_size(text, max(width - 1, 0)) + "…" if width else ""


def format_count(value: int, width: int, signed: bool = False) -> str:
    """An integer in `width` cells: 1,234,567 if it fits, else 1234567, else 1.2M."""
    if signed and value == 0:
        return "0"
    text = f"{value:+,}" if signed else f"{value:,}"
    if len(text) <= width:
        return text
    text = f"{value:+}" if signed else str(value)
    if len(text) <= width:
        return text
    v = float(abs(value))
    sign = ("+" if value > 0 else "-") if signed else ("-" if value < 0 else "")
    for suffix in ("K", "M", "G", "T", "P"):
        v /= 1000
        short = f"{sign}{v:.1f}{suffix}"
        if len(short) <= width or suffix == "P":
            return short if len(short) <= width else f"{sign}{v:.0f}{suffix}"
    return text


def _number(value: int, width: int, signed: bool = False) -> str:
    """format_count right-aligned in `width` cells (the common case without a call)."""
    text = f"{value:+,}" if signed else f"{value:,}"
    if len(text) > width:
        text = format_count(value, width, signed)
    return text.rjust(width)


def layout_columns(
    width: int,
    tag_width: int,
    alloc_counts: bool,
    single_pool: bool,
    owners: bool,
    symbols: bool,
    per_alloc: bool = True,
) -> list[LaidColumn]:
    """Which columns fit in `width` cells and where: the least important (highest Column.priority)
    go first; Owner shrinks to OWNER_MIN_WIDTH before anything is dropped and grows into spare room."""
    tag_width = wanted_tag = min(tag_width, TAG_MAX_WIDTH)
    chosen: list[Column] = []
    for col in COLUMNS:
        if col.key in ALLOC_COLUMNS and not alloc_counts:
            continue  # Linux: /proc/slabinfo has no cumulative counts
        if col.key == "pool" and single_pool:
            continue
        if col.key == "owner" and not owners:
            continue
        if col.key == "per_alloc" and not per_alloc:
            continue  # processes: private bytes per handle means nothing
        chosen.append(col)

    def cell_width(col: Column) -> int:
        if col.key == "tag":
            return tag_width
        if col.key == "owner":
            return OWNER_MIN_WIDTH
        return col.width + (1 if symbols and col.key in _VALUE_COLUMNS else 0)

    def total(cols: list[Column]) -> int:
        return MARKER_WIDTH + sum(cell_width(c) + 1 for c in cols)

    # Drop the least important columns; before dropping an important one (priority <= 2), narrow
    # long tags (slab cache names) to TAG_MIN_WIDTH.
    while total(chosen) > width and len(chosen) > 1:
        droppable = [c for c in chosen if c.key != "tag"]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, chosen.index(c)))
        if worst.priority <= 2 and tag_width > TAG_MIN_WIDTH:
            tag_width = max(TAG_MIN_WIDTH, tag_width - (total(chosen) - width))
            continue
        chosen.remove(worst)
    spare = max(width - total(chosen), 0)
    out: list[LaidColumn] = []
    x = MARKER_WIDTH
    for col in chosen:
        w = cell_width(col)
        if col.key == "owner":
            w = min(OWNER_MAX_WIDTH, w + spare)
        elif col.key == "tag" and tag_width < wanted_tag:
            grow = min(spare, wanted_tag - tag_width)
            w += grow
            spare -= grow
        out.append(LaidColumn(col, x, w))
        x += w + 1
    return out


_CELL_KINDS = {"tag": _Cell.TAG, "pool": _Cell.POOL, "per_alloc": _Cell.PER_ALLOC, "owner": _Cell.OWNER,
               "leak": _Cell.LEAK}


def _cell_plan(lc: LaidColumn) -> tuple[_Cell, int, int, int]:
    """(kind, width, input index, highlight-state index) of one laid-out column."""
    key = lc.column.key
    if key in _VALUE_COLUMNS:
        counter = _VALUE_COLUMNS[key]
        return _Cell.VALUE, lc.width, _IN_VALUE[counter], _IN_STATE[counter]
    if key in _CHANGE_COLUMNS:
        return _Cell.CHANGE, lc.width, _IN_VALUE[_CHANGE_COLUMNS[key]] + 1, -1
    return _CELL_KINDS.get(key, _Cell.OTHER), lc.width, -1, -1


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
        "pool-table--level-label",
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
        self.empty_text = "waiting for the first sample…"
        self._columns: list[LaidColumn] = []
        self._cells: list[tuple[_Cell, int, int, int]] = []  # _build_row's plan of self._columns
        self._layout_key: tuple[object, ...] | None = None
        self._tag_width = 4
        self._tags_seen: tuple[str, ...] | None = None
        self._rich_styles: dict[str, Style] = {}
        self._combos: dict[tuple[LeakLevel, bool, str | None], Style] = {}
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

    def data_changed(self, follow: bool = True) -> None:
        """The model has a new sample or new settings: re-place the cursor, re-lay, repaint."""
        counters = self.model.counters
        if self._tags_seen is not counters.tags:
            self._tags_seen = counters.tags
            longest = max((len(t) for t in counters.tags), default=4)
            self._tag_width = max(4, min(TAG_MAX_WIDTH, longest))
        pos = self.model.position_of(self.selected_key)
        n = len(self.model)
        old_key = self.selected_key
        if pos is None:
            self.cursor = min(self.cursor, max(n - 1, 0))
            self.selected_key = self.model.row_key(self.cursor)
        else:
            self.cursor = pos
        self._relayout()
        self.virtual_size = Size(self.scrollable_content_region.width, n + 1)
        if follow:
            self._scroll_to_cursor()
        self._refresh_changed_lines()
        if self.selected_key != old_key:
            self.post_message(self.CursorMoved(self.selected_key))

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
        """For positions first..last-1: everything a row's strip shows, one tuple per row, laid out
        as _build_row reads it (see _IN_*)."""
        m = self.model
        sample = m.sample
        assert sample is not None
        counters = sample.counters
        changes = m.changes
        assert changes is not None
        rows = np.asarray(m.rows_at(first, last), dtype=np.intp)
        row_list = rows.tolist()
        n = len(row_list)
        tags = counters.tags
        cols: list[list[object]] = [[tags[r] for r in row_list], counters.pools[rows].tolist()]
        for c in ("allocs", "frees", "diff", "bytes"):
            cols.append(getattr(counters, c)[rows].tolist())
            cols.append(getattr(changes, c)[rows].tolist())
        memory = m.memory
        if not m.settings.highlight:
            cols.extend([[0] * n] * 4)
        elif len(memory.when.get("bytes", ())) == len(counters):
            cols.extend(memory.all_states(rows, self.fade_ns).tolist())  # allocs, frees, diff, bytes
        else:  # the memory has not seen this sample's rows
            cols.extend([self._state(c, r) for r in row_list] for c in ("allocs", "frees", "diff", "bytes"))
        levels = sample.leak.levels
        if len(levels) == len(counters):
            cols.append(levels[rows].tolist())
        else:
            cols.append([int(m.level(r)) for r in row_list])
        cols.append(sample.since_baseline.is_new[rows].tolist())
        cursor = self.cursor
        cols.append([first + i == cursor for i in range(n)])
        reclaimable = sample.leak.reclaimable
        cols.append(reclaimable[rows].tolist() if len(reclaimable) == len(counters) else [False] * n)
        return list(zip(*cols, strict=True))

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width
        m = self.model
        process = m.is_process
        key = (width, self._tag_width, m.has_alloc_counts, m.is_slab, m.owners.available, self.symbols,
               process)
        if key != self._layout_key:
            self._layout_key = key
            self._columns = layout_columns(width, self._tag_width, m.has_alloc_counts, m.is_slab or process,
                                           m.owners.available, self.symbols, per_alloc=not process)
            self._cells = [_cell_plan(lc) for lc in self._columns]

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
        self._combos.clear()
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
        the scrollbar's column): a frame costs a list slice.
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
                title = title + arrow
                style = sorted_style
            segments.append(Segment(fit(title, lc.width, lc.right), style))
            segments.append(Segment(" ", base))
            used += lc.width + 1
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments).crop(0, width)

    def _row_strip(self, position: int, width: int) -> Strip:
        return self._build_row(self._row_inputs(position, position + 1)[0], width)

    def _build_row(self, inputs: tuple[Any, ...], width: int) -> Strip:
        """One row's strip from its _row_inputs tuple.

        The row is one string (every cell is padded to its column's width) cut into a segment
        per run of one style: most cells share the row's style, and Textual's work per line
        grows with its segments.
        """
        level = LeakLevel(inputs[_IN_LEVEL])
        is_new = inputs[_IN_NEW]
        cursor = inputs[_IN_CURSOR]
        combo = self._combo
        row_style = combo(level, cursor, None)
        new_style = combo(level, cursor, "pool-table--new")
        symbols = self.symbols
        parts: list[str] = ["*" if is_new else " "]
        marks: list[tuple[int, int, Style]] = [(0, 1, new_style)] if is_new else []
        pos = MARKER_WIDTH
        for kind, w, index, state_index in self._cells:
            style = row_style
            if kind is _Cell.VALUE:
                value = inputs[index]
                state = inputs[state_index]
                if state:
                    style = combo(level, cursor, _STATE_CLASS[state])
                text = _number(value, w - 1) + _STATE_SYMBOL[state] if symbols else _number(value, w)
            elif kind is _Cell.CHANGE:
                value = inputs[index]
                if value == 0:
                    style = combo(level, cursor, "pool-table--zero")
                    text = "0".rjust(w)
                else:
                    if self.model.settings.highlight:
                        style = combo(level, cursor, "pool-table--up" if value > 0 else "pool-table--down")
                    text = _number(value, w, signed=True)
            elif kind is _Cell.TAG:
                text = fit(printable(inputs[_IN_TAG]), w)
                if is_new:
                    style = new_style
            elif kind is _Cell.PER_ALLOC:
                diff = inputs[_IN_DIFF]
                text = _number(inputs[_IN_BYTES] // diff if diff > 0 else 0, w)
            elif kind is _Cell.OWNER:
                text = fit(self.model.owners.text(inputs[_IN_TAG], inputs[_IN_POOL]), w)
            elif kind is _Cell.LEAK:
                text = fit(_LEVEL_TEXT[level] + _RECLAIM_MARK[inputs[_IN_RECLAIM]], w)
                if level is not LeakLevel.STABLE:
                    style = combo(level, cursor, "pool-table--level-label")
            elif kind is _Cell.POOL:
                text = fit(Pool(inputs[_IN_POOL]).short, w)
            else:  # a column added to the model later: show nothing rather than fail
                text = " " * w
            end = pos + len(text)
            if style is not row_style:
                if marks and marks[-1][1] == pos and marks[-1][2] is style:
                    marks[-1] = (marks[-1][0], end, style)
                else:
                    marks.append((pos, end, style))
            parts.append(text)
            parts.append(" ")
            pos = end + 1
        line = "".join(parts)
        used = cell_len(line) if not line.isascii() else len(line)
        if used < width:
            line += " " * (width - used)
        segments: list[Segment] = []
        last = 0
        for start, end, style in marks:
            if start > last:
                segments.append(Segment(line[last:start], row_style))
            segments.append(Segment(line[start:end], style))
            last = end
        if last < len(line):
            segments.append(Segment(line[last:], row_style))
        return Strip(segments, width).crop(0, width) if used > width else Strip(segments, width)

    def _combo(self, level: LeakLevel, cursor: bool, name: str | None) -> Style:
        """base + the row's level tint + the cursor + one cell class, computed once per style set."""
        key = (level, cursor, name)
        style = self._combos.get(key)
        if style is None:
            style = self._style("base")
            if level is not LeakLevel.STABLE:
                style = style + self._style(_LEVEL_CLASS[level])
            if cursor:
                style = style + self._style("pool-table--cursor")
            if name is not None:
                style = style + self._style(name)
            self._combos[key] = style
        return style

    def _state(self, column: str, row: int) -> int:
        memory = self.model.memory
        when = memory.when.get(column)
        if when is None or row >= len(when):
            return 0
        age = memory.now_ns - int(when[row])
        if age > self.fade_ns:
            return 0
        direction = int(memory.direction[column][row])
        return direction * (2 if age <= 0 else 1)
