"""Aligned plain-text tables, as the snapshot and diff text outputs print them.

A table is a list of columns (title, alignment, one cell per row); every column is as wide as its
widest cell or title, cells are separated by one space and lines carry no trailing spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TextColumn:
    title: str
    right: bool  # right-aligned (numbers) or left-aligned (names)
    cells: Sequence[str]


def table_lines(columns: Sequence[TextColumn]) -> list[str]:
    """The title line, then one line per row."""
    widths = [max([len(col.title), *(len(cell) for cell in col.cells)]) for col in columns]

    def line(cells: Sequence[str]) -> str:
        return " ".join(
            cell.rjust(width) if col.right else cell.ljust(width)
            for cell, width, col in zip(cells, widths, columns, strict=True)
        ).rstrip()

    rows = len(columns[0].cells) if columns else 0
    body = (line([col.cells[r] for col in columns]) for r in range(rows))
    return [line([col.title for col in columns]), *body]
