"""The help screen: keys (from keys.KEYS), columns (from model.COLUMNS) and what the colours mean."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pooltop.app.columns import EXTRA_COLUMNS
from pooltop.app.keys import specs_for
from pooltop.model import COLUMNS


def help_text(symbols: bool, replay: bool = False) -> Text:
    bold = Style(bold=True)
    out = Text()
    out.append("pooltop: kernel pool tags (Windows) and slab caches (Linux) that keep growing\n\n", bold)
    groups: dict[str, list[tuple[str, str]]] = {}
    for spec in specs_for(replay):
        groups.setdefault(spec.group, []).append((spec.label, spec.description))
    width = max(len(label) for specs in groups.values() for label, _ in specs)
    for group, specs in groups.items():
        out.append(f"{group}\n", Style(bold=True, underline=True))
        for label, description in specs:
            out.append(f"  {label:<{width}}  ", bold)
            out.append(f"{description}\n")
        out.append("\n")
    out.append("Also: click a column title to sort (again to reverse), double-click a row for its\n"
               "detail, Ctrl+P for the command palette.\n\n")
    out.append("The view follows the top, as poolmon and top do: a new sort or filter shows the top\n"
               "with the cursor (▶) on the first row, and the cursor keeps its place on screen as rows\n"
               "re-sort. F pins the selected row: the cursor then follows it. Scrolling with the\n"
               "mouse wheel is never undone by a refresh. Esc closes things; only q quits.\n\n")
    out.append("Columns\n", Style(bold=True, underline=True))
    title_width = max(len(c.title) for c in COLUMNS)
    for col in COLUMNS:
        out.append(f"  {col.title:<{title_width}}  ", bold)
        out.append(f"{col.help}\n")
    for col in EXTRA_COLUMNS.values():
        out.append(f"  {col.title:<{title_width}}  ", bold)
        out.append(f"{col.help}\n")
    out.append("  (Linux has no allocation counts: Allocs and Frees are hidden; Diff is active objects.)\n"
               "  (Processes (P): Private and Files or Handles in place of Bytes and Diff.)\n\n")
    out.append("Highlighting\n", Style(bold=True, underline=True))
    out.append("  Values that went up are orange, down blue (colour-blind safe); the colour fades\n"
               "  over a few seconds. A * before the tag marks a row new since the baseline.\n")
    out.append("  Rows by leak level: watch (a few rises; yellow tint), suspect (mostly rising; purple),\n"
               "  LEAK (rising steadily by a meaningful amount; vermilion, bold); the Leak column names\n"
               "  the level in text (watch italic, suspect bold, LEAK reversed), also without colour.\n")
    if symbols:
        out.append("  NO_COLOR is set: ▲ ▼ mark a value that went up or down this sample, △ ▽ recently.\n")
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,h,question_mark", "dismiss", "Close help"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 100%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, symbols: bool = False, replay: bool = False) -> None:
        super().__init__()
        self.symbols = symbols
        self.replay = replay

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "pooltop help (Esc to close)"
            yield Static(help_text(self.symbols, self.replay))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
