"""The key bar: one line of the keys that apply here, Help and Quit always on it.

Textual's Footer lays its keys out left to right and cuts what does not fit: at 80 columns it
ended at "Spac", so Help and Quit, the two keys a new user looks for, were gone. This bar drops
the least important keys first (DROP_ORDER), never Help and Quit, and leaves out the
keys that do nothing on this backend (the app's `key_applies`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget

from pooltop.app.keys import KEYS, KeySpec

#: always on the bar, at its right end
ESSENTIAL_ACTIONS = ("help", "quit")
#: which keys leave a narrow bar first (a key not named here leaves before all of these)
DROP_ORDER = ("export", "set_baseline", "toggle_changes", "toggle_processes", "toggle_detail",
              "sort('diff')", "sort('bytes')", "filter", "toggle_pause")
_PALETTE = ("^p", "palette")


def footer_items(applies: Callable[[KeySpec], bool], width: int) -> list[tuple[str, str, KeySpec | None]]:
    """(key label, word, spec) of the bar's items, in order, within `width` cells: the footer keys
    that apply, the least important dropped first, Help and Quit kept, the palette if room is left."""
    specs = [s for s in KEYS if s.footer and applies(s)]
    essential = [s for s in specs if s.action in ESSENTIAL_ACTIONS]
    optional = [s for s in specs if s.action not in ESSENTIAL_ACTIONS]

    def item(spec: KeySpec) -> tuple[str, str, KeySpec | None]:
        return (spec.label.split()[0], spec.short or spec.description, spec)

    def size(items: Iterable[tuple[str, str, KeySpec | None]]) -> int:
        return sum(len(k) + 1 + len(w) + 2 for k, w, _ in items) + 1

    tail = [item(s) for s in essential]
    kept = list(optional)
    leave = sorted(optional, key=lambda s: DROP_ORDER.index(s.action) if s.action in DROP_ORDER else -1)
    while kept and size([*map(item, kept), *tail]) > width:
        kept.remove(leave.pop(0))
    items = [*map(item, kept), *tail]
    if size([*items, (*_PALETTE, None)]) <= width:
        items.append((*_PALETTE, None))
    return items


class KeyBar(Widget):
    """The bottom line: `key word` pairs; a click runs the key's action."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key"}

    DEFAULT_CSS = """
    KeyBar { height: 1; dock: bottom; background: $panel; color: $text-muted; }
    KeyBar > .key-bar--key { color: $text; text-style: bold; }
    """

    def __init__(self, applies: Callable[[KeySpec], bool], id: str | None = None) -> None:
        super().__init__(id=id)
        self.applies = applies
        self._spans: list[tuple[int, int, KeySpec | None]] = []
        self._shown: tuple[bool, ...] | None = None

    def keys_may_have_changed(self) -> None:
        """Repaint if the set of keys that apply changed (the app calls this every sample: a
        repaint per sample would cost a render of the bar for nothing)."""
        shown = tuple(self.applies(spec) for spec in KEYS if spec.footer)
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key", partial=True)
        out = Text(" ", no_wrap=True, overflow="crop")
        spans = []
        for key, word, spec in footer_items(self.applies, self.size.width):
            start = out.cell_len
            out.append(key, key_style)
            out.append(f" {word}", Style())
            spans.append((start, out.cell_len, spec))
            out.append("  ")
        self._spans = spans
        return out

    def on_click(self, event: events.Click) -> None:
        for start, end, spec in self._spans:
            if start <= event.x < end:
                action = spec.action if spec is not None else "command_palette"
                self.call_later(self.app.run_action, action)
                return
