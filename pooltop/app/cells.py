"""Cell text: padding and cropping in terminal cells, and numbers that fit their column."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size


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
    """An integer in `width` cells: 1,234,567 if it fits, else 1.2M.

    Never bare digits: a column reads alike when every number in it has separators or a unit
    (`-10520432` beside `+276,360` reads as a different kind of number)."""
    if signed and value == 0:
        return "0"
    text = f"{value:+,}" if signed else f"{value:,}"
    if len(text) <= width:
        return text
    v = float(abs(value))
    sign = ("+" if value > 0 else "-") if signed else ("-" if value < 0 else "")
    for suffix in ("K", "M", "G", "T", "P"):
        v /= 1000
        if v >= 999.95 and suffix != "P":
            continue  # 1234.6K: a larger unit reads better
        short = f"{sign}{v:.1f}{suffix}"
        if len(short) <= width or suffix == "P":
            return short if len(short) <= width else f"{sign}{v:.0f}{suffix}"
    return text


def number(value: int, width: int, signed: bool = False) -> str:
    """format_count right-aligned in `width` cells (the common case without a call)."""
    text = f"{value:+,}" if signed else f"{value:,}"
    if len(text) > width:
        text = format_count(value, width, signed)
    return text.rjust(width)
