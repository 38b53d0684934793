"""Helpers shared by the command modules only (no feature code imports this module)."""

from __future__ import annotations

import re

import click


def parse_size(text: str) -> int:
    """'500M', '2G', '100MB', '1.5GiB', '4096' -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 500M, 2G)")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " ")
    if value < 64 * 1024:
        raise click.BadParameter(f"{text!r} is too small for a recording (at least 64K)")
    return int(value)


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)
