"""One table row as a strip: what it shows (row_inputs, pure numpy over the model) and how it is
drawn (RowPainter: one string cut into style runs).

A row's inputs are one tuple of plain values (see the _IN_* indexes): the table keeps each row's
strip keyed by that tuple, so a row whose inputs did not change is not rebuilt (about 10 of 45
rows change per sample at 5,000 rows).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from pooltop.app.cells import fit, number
from pooltop.app.columns import CHANGE_COLUMNS, MARKER_WIDTH, VALUE_COLUMNS, LaidColumn
from pooltop.app.view import TableModel
from pooltop.judge import LeakLevel
from pooltop.model import Pool, printable

LEVEL_TEXT = {LeakLevel.STABLE: "", LeakLevel.WATCH: "watch", LeakLevel.SUSPECT: "suspect",
              LeakLevel.LEAK: "LEAK"}
#: after the level, by the row's reclaimable flag: "~" marks memory the kernel frees under pressure
_RECLAIM_MARK = ("", "~")
_LEVEL_CLASS = {LeakLevel.WATCH: "pool-table--watch", LeakLevel.SUSPECT: "pool-table--suspect",
                LeakLevel.LEAK: "pool-table--leak"}
_LABEL_CLASS = {LeakLevel.WATCH: "pool-table--label-watch", LeakLevel.SUSPECT: "pool-table--label-suspect",
                LeakLevel.LEAK: "pool-table--label-leak"}
_STATE_CLASS = {2: "pool-table--up", 1: "pool-table--up-faded", -1: "pool-table--down-faded",
                -2: "pool-table--down"}
_STATE_SYMBOL = {2: "▲", 1: "△", -1: "▽", -2: "▼", 0: " "}
#: the marker column: the cursor's row (seen without colour too), else a row new since the baseline
CURSOR_MARK = "▶"
NEW_MARK = "*"


class _Cell(enum.Enum):
    """How a laid-out column's cell is made (decided once per layout, not per cell)."""

    TAG = enum.auto()
    POOL = enum.auto()
    VALUE = enum.auto()  # a counter, highlighted by how it changed
    CHANGE = enum.auto()  # a counter's change, coloured by its sign
    PER_ALLOC = enum.auto()
    OWNER = enum.auto()
    LEAK = enum.auto()
    EXTRA = enum.auto()  # the backend's extra column (a slab cache's memory, a process's RSS)
    OTHER = enum.auto()


# Where row_inputs puts each value in a row's tuple.
_IN_TAG, _IN_POOL = 0, 1
_IN_VALUE = {"allocs": 2, "frees": 4, "diff": 6, "bytes": 8}  # each followed by its change
_IN_STATE = {"allocs": 10, "frees": 11, "diff": 12, "bytes": 13}  # its highlight state (ChangeMemory)
_IN_DIFF, _IN_BYTES = _IN_VALUE["diff"], _IN_VALUE["bytes"]
_IN_LEVEL, _IN_NEW, _IN_CURSOR, _IN_EXTRA, _IN_RECLAIM = 14, 15, 16, 17, 18
_COUNTERS = ("allocs", "frees", "diff", "bytes")
_CELL_KINDS = {"tag": _Cell.TAG, "pool": _Cell.POOL, "per_alloc": _Cell.PER_ALLOC, "owner": _Cell.OWNER,
               "leak": _Cell.LEAK, "cache": _Cell.EXTRA, "rss": _Cell.EXTRA}

CellPlan = tuple[_Cell, int, int, int]


def cell_plan(lc: LaidColumn) -> CellPlan:
    """(kind, width, input index, highlight-state index) of one laid-out column."""
    key = lc.column.key
    if key in VALUE_COLUMNS:
        counter = VALUE_COLUMNS[key]
        return _Cell.VALUE, lc.width, _IN_VALUE[counter], _IN_STATE[counter]
    if key in CHANGE_COLUMNS:
        return _Cell.CHANGE, lc.width, _IN_VALUE[CHANGE_COLUMNS[key]] + 1, -1
    return _CELL_KINDS.get(key, _Cell.OTHER), lc.width, -1, -1


def row_inputs(model: TableModel, first: int, last: int, cursor: int,
               fade_ns: int) -> list[tuple[object, ...]]:
    """For display positions first..last-1: everything a row's strip shows, one tuple per row,
    laid out as RowPainter.build reads it (see _IN_*)."""
    m = model
    sample = m.sample
    assert sample is not None
    counters = sample.counters
    changes = m.changes
    assert changes is not None
    rows = np.asarray(m.rows_at(first, last), dtype=np.intp)
    row_list = rows.tolist()
    n = len(row_list)
    tags = counters.tags
    cols: list[list[Any]] = [[tags[r] for r in row_list], counters.pools[rows].tolist()]
    for c in _COUNTERS:
        cols.append(getattr(counters, c)[rows].tolist())
        cols.append(getattr(changes, c)[rows].tolist())
    memory = m.memory
    if not m.settings.highlight:
        cols.extend([[0] * n] * 4)
    elif len(memory.when.get("bytes", ())) == len(counters):
        cols.extend(memory.all_states(rows, fade_ns).tolist())  # allocs, frees, diff, bytes
    else:  # the memory has not seen this sample's rows
        cols.extend([memory.state(c, r, fade_ns) for r in row_list] for c in _COUNTERS)
    levels = sample.leak.levels
    if len(levels) == len(counters):
        cols.append(levels[rows].tolist())
    else:
        cols.append([int(m.level(r)) for r in row_list])
    cols.append(sample.since_baseline.is_new[rows].tolist())
    cols.append([first + i == cursor for i in range(n)])
    extra = m.extra_values
    cols.append(extra[rows].tolist() if extra is not None else [0] * n)
    reclaimable = sample.leak.reclaimable
    cols.append(reclaimable[rows].tolist() if len(reclaimable) == len(counters) else [False] * n)
    return list(zip(*cols, strict=True))


class RowPainter:
    """Builds row strips from row_inputs tuples, with the widget's component styles."""

    def __init__(self, resolve: Callable[[str], Style], symbols: bool) -> None:
        self._resolve = resolve  # component class name ("base": the widget's own) -> style overlay
        self.symbols = symbols
        self.cells: list[CellPlan] = []
        self._combos: dict[tuple[LeakLevel, bool, str | None], Style] = {}

    def clear(self) -> None:
        self._combos.clear()

    def build(self, inputs: tuple[Any, ...], width: int, owner_text: Callable[[str, int], str],
              highlight: bool) -> Strip:
        """One row's strip.

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
        mark = CURSOR_MARK if cursor else NEW_MARK if is_new else " "
        parts: list[str] = [mark]
        marks: list[tuple[int, int, Style]] = [(0, 1, new_style)] if is_new and not cursor else []
        pos = MARKER_WIDTH
        for kind, w, index, state_index in self.cells:
            style = row_style
            if kind is _Cell.VALUE:
                value = inputs[index]
                state = inputs[state_index]
                if state:
                    style = combo(level, cursor, _STATE_CLASS[state])
                text = number(value, w - 1) + _STATE_SYMBOL[state] if symbols else number(value, w)
            elif kind is _Cell.CHANGE:
                value = inputs[index]
                if value == 0:
                    style = combo(level, cursor, "pool-table--zero")
                    text = "0".rjust(w)
                else:
                    if highlight:
                        style = combo(level, cursor, "pool-table--up" if value > 0 else "pool-table--down")
                    text = number(value, w, signed=True)
            elif kind is _Cell.LEAK:
                text = fit(LEVEL_TEXT[level] + _RECLAIM_MARK[inputs[_IN_RECLAIM]], w)
                if level is not LeakLevel.STABLE:
                    style = combo(level, cursor, _LABEL_CLASS[level])
            else:
                text = _plain_cell(kind, w, inputs, owner_text)
                if kind is _Cell.TAG and is_new:
                    style = new_style
            end = pos + len(text)
            if style is not row_style:
                if marks and marks[-1][1] == pos and marks[-1][2] is style:
                    marks[-1] = (marks[-1][0], end, style)
                else:
                    marks.append((pos, end, style))
            parts.append(text)
            parts.append(" ")
            pos = end + 1
        return _cut("".join(parts), marks, row_style, width)

    def _combo(self, level: LeakLevel, cursor: bool, name: str | None) -> Style:
        """base + the row's level tint + the cursor + one cell class, computed once per style set."""
        key = (level, cursor, name)
        style = self._combos.get(key)
        if style is None:
            resolve = self._resolve
            style = resolve("base")
            if level is not LeakLevel.STABLE:
                style = style + resolve(_LEVEL_CLASS[level])
            if cursor:
                style = style + resolve("pool-table--cursor")
                if self.symbols:  # NO_COLOR: a background tint is lost, reverse video is not
                    style = style + Style(reverse=True)
            if name is not None:
                style = style + resolve(name)
            self._combos[key] = style
        return style


def _plain_cell(kind: _Cell, w: int, inputs: tuple[Any, ...], owner_text: Callable[[str, int], str]) -> str:
    """The text of a cell drawn in the row's own style (the tag's may be marked new)."""
    if kind is _Cell.TAG:
        return fit(printable(inputs[_IN_TAG]), w)
    if kind is _Cell.PER_ALLOC:
        diff = inputs[_IN_DIFF]
        return number(inputs[_IN_BYTES] // diff if diff > 0 else 0, w)
    if kind is _Cell.EXTRA:
        return number(inputs[_IN_EXTRA], w)
    if kind is _Cell.OWNER:
        return fit(owner_text(inputs[_IN_TAG], inputs[_IN_POOL]), w)
    if kind is _Cell.POOL:
        return fit(Pool(inputs[_IN_POOL]).short, w)
    return " " * w  # a column added to the model later: show nothing rather than fail


def _cut(line: str, marks: list[tuple[int, int, Style]], row_style: Style, width: int) -> Strip:
    """`line` padded or cut to `width` cells, as segments: `marks` (start, end, style) over the
    row's style."""
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
