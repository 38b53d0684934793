"""The one table of keys: bindings, the footer, the help screen and the command palette read it.

poolmon's letters keep their meaning (t a f d b m sort, p pool, e totals, l highlight, ( ) change
sort, q quit); pooltop's additions use letters poolmon leaves free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content


@dataclass(frozen=True)
class KeySpec:
    """One user command: its keys, the action it runs and how it is described."""

    keys: tuple[str, ...]  # Textual key names; the first is the one shown
    action: str  # a Textual action string, run on the app (or the table for scope "table")
    description: str  # short, for the footer and the palette
    group: str  # heading on the help screen
    footer: bool = False  # shown in the footer (the footer is short: only the essentials)
    scope: str = "app"  # "app" or "table" (cursor movement lives on the table widget)
    display: str | None = None  # how to write the key for people ("Enter", "/")
    short: str | None = None  # the footer's word for it (the footer has room for a word or two)
    replay: bool = False  # only when replaying a recording (`pooltop view`): hidden and inactive live
    priority: bool = False  # before the focused widget's own keys (Home/End move the time cursor;
    # the app's check_action lets such a key through where it means something else)

    @property
    def label(self) -> str:
        if self.display is not None:
            return self.display
        return " ".join(_KEY_NAMES.get(k, k) for k in self.keys)


_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "space": "Space",
    "plus": "+",
    "minus": "-",
    "left_parenthesis": "(",
    "right_parenthesis": ")",
    "escape": "Esc",
    "enter": "Enter",
    "up": "↑",
    "down": "↓",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "equals_sign": "=",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "left_curly_bracket": "{",
    "right_curly_bracket": "}",
    "less_than_sign": "<",
    "greater_than_sign": ">",
}

KEYS: tuple[KeySpec, ...] = (
    # Sorting, as poolmon.
    KeySpec(("t",), "sort('tag')", "Sort by tag", "Sort"),
    KeySpec(("a",), "sort('allocs')", "Sort by allocations", "Sort"),
    KeySpec(("f",), "sort('frees')", "Sort by frees", "Sort"),
    KeySpec(("d",), "sort('diff')", "Sort by outstanding (Diff)", "Sort", footer=True, short="Diff"),
    KeySpec(("b",), "sort('bytes')", "Sort by bytes", "Sort", footer=True, short="Bytes"),
    KeySpec(("m",), "sort('peralloc')", "Sort by bytes per allocation", "Sort"),
    KeySpec(("right_parenthesis",), "cycle_change_sort(1)", "Sort by the next change column", "Sort",
            display=")"),
    KeySpec(("left_parenthesis",), "cycle_change_sort(-1)", "Sort by the previous change column", "Sort",
            display="("),
    KeySpec(("r",), "reverse_sort", "Reverse the sort order", "Sort"),
    # What is shown.
    # Priority: the app opens the box before it hands on the keys that follow, so "/kmalloc" typed
    # or pasted in one burst lands in the box instead of sorting the table (m, a, l, c ...).
    KeySpec(("slash",), "filter", "Filter (wildcards * ?; tag, owner, description)", "View", footer=True,
            display="/", short="Filter", priority=True),
    KeySpec(("p",), "cycle_pools", "Pools: nonpaged / paged / both", "View"),
    KeySpec(("s",), "toggle_session", "Session pool only (Windows)", "View"),
    KeySpec(("P",), "toggle_processes", "Processes / kernel pools in the table", "View", footer=True,
            short="Procs"),
    KeySpec(("c",), "toggle_changes", "Changes per refresh / since baseline", "View", footer=True,
            short="Δ mode"),
    KeySpec(("z",), "set_baseline", "Set the baseline to now", "View", footer=True, short="Baseline"),
    KeySpec(("e",), "toggle_totals", "Show totals of the shown rows", "View"),
    KeySpec(("l",), "toggle_highlight", "Highlight changes on / off", "View"),
    KeySpec(("enter",), "toggle_detail", "Detail of the selected row", "View", footer=True, short="Detail"),
    KeySpec(("w",), "who", "Who allocates the selected cache: trace it live (Linux, root; again: stop)",
            "View", footer=True, short="Who"),
    # Sampling.
    KeySpec(("space",), "toggle_pause", "Pause / resume sampling", "Sampling", footer=True, short="Pause"),
    KeySpec(("plus", "equals_sign"), "change_interval(1)", "Slower refresh (longer interval)", "Sampling",
            display="+"),
    KeySpec(("minus",), "change_interval(-1)", "Faster refresh (shorter interval)", "Sampling"),
    KeySpec(("x",), "export", "Export the shown rows to a new file in $POOLTOP_EXPORT_DIR", "Sampling",
            footer=True, short="Export"),
    # The time cursor of a replay (`pooltop view FILE`).
    KeySpec(("left_square_bracket",), "replay_step(-1)", "One sample back", "Replay", replay=True,
            footer=True, short="Back"),
    KeySpec(("right_square_bracket",), "replay_step(1)", "One sample forward", "Replay", replay=True,
            footer=True, short="Fwd"),
    KeySpec(("left_curly_bracket",), "replay_step(-10)", "Ten samples back", "Replay", replay=True),
    KeySpec(("right_curly_bracket",), "replay_step(10)", "Ten samples forward", "Replay", replay=True),
    KeySpec(("home",), "replay_to(0)", "Jump to the first sample", "Replay", replay=True, priority=True),
    KeySpec(("end",), "replay_to(-1)", "Jump to the last sample", "Replay", replay=True, priority=True),
    KeySpec(("greater_than_sign",), "replay_speed(2)", "Play faster (twice the samples per refresh)",
            "Replay", replay=True),
    KeySpec(("less_than_sign",), "replay_speed(0.5)", "Play slower (half the samples per refresh)",
            "Replay", replay=True),
    # Moving in the table.
    KeySpec(("up", "k"), "cursor(-1)", "Previous row", "Move", scope="table", display="↑"),
    KeySpec(("down", "j"), "cursor(1)", "Next row", "Move", scope="table", display="↓"),
    KeySpec(("pageup",), "page(-1)", "Page up", "Move", scope="table"),
    KeySpec(("pagedown",), "page(1)", "Page down", "Move", scope="table"),
    KeySpec(("home",), "cursor_to(0)", "First row", "Move", scope="table"),
    KeySpec(("end",), "cursor_to(-1)", "Last row", "Move", scope="table"),
    KeySpec(("F",), "pin", "Pin the selected row: the cursor follows it as rows re-sort (again: "
            "unpin; unpinned, the cursor keeps its place on screen)", "Move"),
    # Help and leaving.
    KeySpec(("h", "question_mark"), "help", "Help", "Other", footer=True, display="h ?", short="Help"),
    KeySpec(("q",), "quit", "Quit", "Other", footer=True, short="Quit"),
    KeySpec(("escape",), "close", "Close the filter box, detail pane or help; else clear the filter "
            "(never quits)", "Other"),
)


def bindings(scope: str) -> list[BindingType]:
    """Textual bindings for one scope, generated from KEYS."""
    out: list[BindingType] = []
    for spec in KEYS:
        if spec.scope != scope:
            continue
        for i, key in enumerate(spec.keys):
            out.append(
                Binding(
                    key,
                    spec.action,
                    spec.short or spec.description,
                    show=spec.footer and i == 0,
                    tooltip=spec.description,
                    key_display=_KEY_NAMES.get(key),
                    priority=spec.priority,
                )
            )
    return out


def specs_for(replay: bool) -> Iterable[KeySpec]:
    """The keys that work in this mode (replay keys only when replaying)."""
    return (s for s in KEYS if replay or not s.replay)


def palette_specs(replay: bool = False) -> Iterable[KeySpec]:
    """Commands offered by the command palette (all app-scope keys of this mode)."""
    return (s for s in specs_for(replay) if s.scope == "app")


def _replaying(app: object) -> bool:
    return getattr(app, "replay", None) is not None


class PooltopCommands(Provider):
    """Every key's command in Textual's command palette (Ctrl+P)."""

    async def discover(self) -> Hits:
        for spec in palette_specs(_replaying(self.app)):
            yield DiscoveryHit(
                Content(f"{spec.description}  ({spec.label})"),
                partial(self.app.run_action, spec.action),
                text=spec.description,
                help=spec.group,
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in palette_specs(_replaying(self.app)):
            score = matcher.match(spec.description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(spec.description),
                    partial(self.app.run_action, spec.action),
                    text=spec.description,
                    help=f"{spec.group} · key {spec.label}",
                )
