"""The keys that change what the live view shows: sort, filter, pools, processes, pin, Esc, the
refresh interval, export, and the replay's time cursor.

PooltopApp's actions apart from its sampling and message handling; they work on the attributes
PooltopApp sets up (declared below) and call back its header and detail updates.
"""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input

from pooltop.app.detail import DetailPane
from pooltop.app.help import HelpScreen
from pooltop.app.keys import KEYS, KeySpec
from pooltop.app.sampler import ReplayCursor, Sampler, SamplingThread
from pooltop.app.sorting import CHANGE_OF, CHANGE_SORTS
from pooltop.app.table import PoolTable
from pooltop.app.tracing import WhoTraces
from pooltop.app.view import OwnerBook, TableModel
from pooltop.errors import PooltopError
from pooltop.model import printable

#: the intervals + and - step through (seconds)
INTERVALS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)
#: the fastest replay `>` reaches (samples per refresh)
MAX_REPLAY_SPEED = 64
#: actions that only work while replaying (from the key table)
REPLAY_ACTIONS = frozenset(spec.action.split("(")[0] for spec in KEYS if spec.replay)


class ViewActions(App[None]):
    """Key actions of the live view (PooltopApp is the one subclass)."""

    model: TableModel  # the one the table shows: pool_model or process_model
    pool_model: TableModel
    process_model: TableModel
    table: PoolTable
    detail: DetailPane
    filter_input: Input
    sampler: Sampler
    sampling: SamplingThread
    replay: ReplayCursor | None
    who: WhoTraces

    def stop_who(self) -> None:
        raise NotImplementedError  # PooltopApp's
    replay_speed: int
    paused: bool
    interval: float
    export_path: str | None
    owner_book: OwnerBook
    symbols: bool
    _filter_before: str

    def _update_header(self) -> None:
        raise NotImplementedError

    def _update_detail(self, fetch_big_pool: bool) -> None:
        raise NotImplementedError

    def request_sample(self, advance: bool = True) -> None:
        raise NotImplementedError

    @property
    def showing_processes(self) -> bool:
        return self.model is self.process_model

    def key_applies(self, spec: KeySpec) -> bool:
        """Whether a key does something here: the key bar leaves out the rest (on Linux `a f p s`
        would only say that they do not apply)."""
        action = spec.action
        if spec.replay:
            return self.replay is not None
        if action in ("sort('allocs')", "sort('frees')"):
            return self.model.has_alloc_counts
        if action == "cycle_pools":
            return not (self.showing_processes or self.model.is_slab)
        if action == "toggle_session":
            return not self.showing_processes and self.model.has_session_pool
        if action == "toggle_processes":
            return self.sampler.processes is not None
        if action == "who":  # a live trace: not of a recording, not of a process
            return self.replay is None and not self.showing_processes
        return True

    # --- view changes -------------------------------------------------------------------------

    def _view_changed(self, reset: bool = True) -> None:
        """The settings changed; `reset` (a new order or row set) shows the top of the table."""
        self.model.recompute()
        self.table.data_changed(reset=reset)
        self._update_header()
        if self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)

    def action_sort(self, sort: str, toggle: bool = False) -> None:
        """Sort by `sort`, largest first (names A-Z); with `toggle`, a second time reverses."""
        s = self.model.settings
        if sort in ("allocs", "frees", "dallocs", "dfrees") and not self.model.has_alloc_counts:
            self.notify("Linux has no allocation counts: sort by diff (d) or bytes (b)", timeout=3)
            return
        if toggle and s.sort == sort:
            self.model.set_sort(sort, not s.descending)
        else:
            self.model.set_sort(sort)
        self._view_changed()

    def action_cycle_change_sort(self, step: int) -> None:
        sorts = CHANGE_SORTS if self.model.has_alloc_counts else ("ddiff", "dbytes")
        current = self.model.settings.sort
        if current in sorts:
            target = sorts[(sorts.index(current) + step) % len(sorts)]
        elif current in CHANGE_OF and CHANGE_OF[current] in sorts:
            target = CHANGE_OF[current]
        else:
            target = "dbytes"
        self.model.set_sort(target)
        self._view_changed()

    def action_reverse_sort(self) -> None:
        s = self.model.settings
        self.model.set_sort(s.sort, not s.descending)
        self._view_changed()

    def action_filter(self) -> None:
        box = self.filter_input
        self._filter_before = self.model.settings.filter
        box.value = self.model.settings.filter
        box.add_class("-open")
        # Focus now, not after the keys already queued (Widget.focus() waits its turn): "/kmalloc"
        # typed in one burst must all land in the box, not sort and toggle the table.
        box.screen.set_focus(box)

    def _close_filter(self, keep: bool) -> None:
        box = self.filter_input
        box.remove_class("-open")
        if not keep:
            self.model.set_filter(self._filter_before)
            self._view_changed()
        self.table.screen.set_focus(self.table)  # at once, as when opening

    def action_toggle_processes(self) -> None:
        if self.sampler.processes is None:
            what = "a recording has no process data" if self.replay is not None \
                else "processes are not readable here"
            self.notify(f"no processes view: {what}", timeout=3)
            return
        self.model = self.pool_model if self.showing_processes else self.process_model
        self.table.model = self.model
        self.table.selected_key = self.table.pinned_key = None
        self.table.empty_text = ("waiting for the first process sample (every 5 s)…" if self.showing_processes
                                 else "waiting for the first sample…")
        self._view_changed()

    def action_cycle_pools(self) -> None:
        if self.showing_processes:
            self.notify("processes have no pools: P shows the kernel pools again", timeout=3)
            return
        if self.model.is_slab:
            self.notify("Linux has one kind of pool (slab): nothing to switch", timeout=3)
            return
        s = self.model.settings
        s.session_only = False
        s.pools = s.pools.next()
        self._view_changed()

    def action_toggle_session(self) -> None:
        if self.showing_processes or not self.model.has_session_pool:
            self.notify("no session pool on this backend", timeout=3)
            return
        s = self.model.settings
        s.session_only = not s.session_only
        self._view_changed()

    def action_toggle_changes(self) -> None:
        s = self.model.settings
        s.since_baseline = not s.since_baseline
        self._view_changed()

    def action_set_baseline(self) -> None:
        self.sampler.request_baseline()
        self.model.settings.since_baseline = True
        self.notify("baseline set: changes now count from this sample", timeout=3)
        self._update_header()
        self.request_sample()

    def action_toggle_totals(self) -> None:
        s = self.model.settings
        s.show_totals = not s.show_totals
        self._update_header()

    def action_toggle_highlight(self) -> None:
        s = self.model.settings
        s.highlight = not s.highlight
        self._view_changed(reset=False)

    def action_toggle_detail(self) -> None:
        pane = self.detail
        if pane.has_class("-open"):
            pane.remove_class("-open")
            self.stop_who()  # no trace runs where nobody sees it
        else:
            pane.add_class("-open")
            self._update_detail(fetch_big_pool=True)
        self.table.focus()
        self.call_after_refresh(self.table.data_changed)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.replay is not None:
            self.replay.speed = 0 if self.paused else self.replay_speed
        self.sampling.update(paused=self.paused)
        if not self.paused:
            self.request_sample()
        self._update_header()

    def action_change_interval(self, step: int) -> None:
        steps = list(INTERVALS)
        if self.interval not in steps:
            steps = sorted({*steps, self.interval})
        i = steps.index(self.interval)
        self.interval = steps[max(0, min(len(steps) - 1, i + step))]
        self.sampling.update(interval=self.interval)
        self._update_header()
        self.notify(f"refresh every {self.interval:g} s", timeout=2)

    def action_export(self) -> None:
        sample = self.model.sample
        if sample is None:
            self.notify("nothing to export yet", severity="warning", timeout=3)
            return
        from pooltop.snapshots import export_snapshot

        book = self.owner_book
        owners = (lambda tag, pool: book.candidates(tag, int(pool))) if book.available else None
        try:
            path = export_snapshot(sample, self.export_path, rows=self.model.order, owners=owners)
        except (PooltopError, OSError) as e:
            self.notify(str(e), title="export failed", severity="error", timeout=6)
            return
        self.notify(f"{len(self.model):,} rows → {path}", title="exported", timeout=6)

    # --- the replay's time cursor -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and (self.focused is self.filter_input or self.screen is not self.table.screen):
            return False  # "/" is a character in the filter box, the help screen and the palette
        if action in REPLAY_ACTIONS:
            if self.replay is None:
                return False  # hidden from the footer; Home/End fall through to the table
            if action == "replay_to" and self.focused is self.filter_input:
                return False  # Home/End move in the filter box while typing
        return True

    def action_replay_step(self, count: int) -> None:
        self.sampler.move(step=count)
        self.request_sample(advance=False)

    def action_replay_to(self, index: int) -> None:
        self.sampler.move(to=index)
        self.request_sample(advance=False)

    def action_replay_speed(self, factor: float) -> None:
        if self.replay is None:
            return
        self.replay_speed = max(1, min(MAX_REPLAY_SPEED, round(self.replay_speed * factor)))
        if not self.paused:
            self.replay.speed = self.replay_speed
        self._update_header()
        self.notify(f"replay: {self.replay_speed} sample{'s' if self.replay_speed > 1 else ''} per refresh",
                    timeout=2)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.symbols, replay=self.replay is not None))

    def action_close(self) -> None:
        """Esc: close what is open (filter box, then detail pane), else clear an applied filter.
        It never quits (`q` does): Esc is pressed by reflex, and a leak hunt must not end by it."""
        if self.filter_input.has_class("-open"):
            self._close_filter(keep=False)
        elif self.detail.has_class("-open"):
            self.action_toggle_detail()
        elif self.model.settings.filter:
            self.model.set_filter("")
            self._view_changed()
        else:
            self.notify("Esc closes the detail pane, the filter and help; q quits", timeout=2)

    def action_pin(self) -> None:
        key = self.table.toggle_pin()
        if key is not None:
            self.notify(f"pinned {printable(key[0])}: the cursor follows it; F again to unpin", timeout=3)
        self._update_header()
