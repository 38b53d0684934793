"""The live view: poolmon's table and keys, PoolMonX's fading highlights, leak levels per row.

Sampling runs in one thread of its own (sampler.SamplingThread), one sample at a time, an interval
after the previous one started: a slow source never freezes input and samples never overlap. It
hands immutable TrackedSample objects to the UI in messages; the Tracker lives on the sampling side
(sampler.Sampler).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.widgets import Footer, Input

from pooltop.app.detail import DetailInfo, DetailPane, RowFacts
from pooltop.app.header import HeaderInfo, PoolHeader, ReplayInfo
from pooltop.app.help import HelpScreen
from pooltop.app.keys import KEYS, PooltopCommands, bindings
from pooltop.app.messages import BigPoolReady, ProcessesReady, SampleFailed, SampleReady
from pooltop.app.sampler import PROCESS_EVERY_S, SampleClock, Sampler, SamplingThread
from pooltop.app.table import PoolTable
from pooltop.app.tracing import WhoReport, WhoTraces
from pooltop.app.view import (
    CHANGE_OF,
    CHANGE_SORTS,
    SORT_COLUMN,
    OwnerBook,
    PoolMode,
    TableModel,
    ViewSettings,
)
from pooltop.errors import PooltopError
from pooltop.model import COLUMN_BY_KEY, Pool, Totals
from pooltop.native import Source
from pooltop.processes.verdict import Verdict
from pooltop.tagdb.owners import OwnerLookup
from pooltop.tracking import LeakLevel, Tracker

#: the intervals + and - step through (seconds)
INTERVALS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)
#: the fastest replay `>` reaches (samples per refresh)
MAX_REPLAY_SPEED = 64
#: actions that only work while replaying (from the key table)
REPLAY_ACTIONS = frozenset(spec.action.split("(")[0] for spec in KEYS if spec.replay)
#: a sample slower than this share of the interval is called out in the header
SLOW_SAMPLE_SHARE = 0.5


class PooltopApp(App[None]):
    """The live view. Build it with create_app(); run_live() adds the real source and tag database."""

    CSS_PATH = "pooltop.tcss"
    TITLE = "pooltop"
    COMMANDS = App.COMMANDS | {PooltopCommands}
    BINDINGS: ClassVar[list[BindingType]] = bindings("app")
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        source: Source,
        *,
        interval: float = 1.0,
        owners: OwnerLookup | None = None,
        tracker: Tracker | None = None,
        autorefresh: bool = True,
        export_path: str | None = None,
        tz: dt.tzinfo | None = None,
        fade_s: float = 3.0,
        symbols: bool | None = None,
        settings: ViewSettings | None = None,
        processes: Source | None = None,
        process_every_s: float = PROCESS_EVERY_S,
    ) -> None:
        super().__init__()
        self.source = source
        self.sampler = Sampler(source, tracker, processes=processes, process_every_s=process_every_s)
        self.verdict: Verdict | None = None
        self.interval = interval
        self.autorefresh = autorefresh
        self.export_path = export_path  # the folder `x` writes to (else $POOLTOP_EXPORT_DIR, else here)
        self.tz = tz
        self.symbols = self.no_color if symbols is None else symbols
        self.owner_book = OwnerBook(owners)
        self.pool_model = TableModel(self.owner_book, settings)
        # `P`: the processes (pooltop.processes rows, tracked on the sampling side) in the same table.
        self.process_model = TableModel(OwnerBook(None), ViewSettings())
        self.model = self.pool_model  # the one the table shows
        self.fade_s = fade_s
        self.paused = False
        self.error: str | None = None
        self.slow_sample_s: float | None = None
        self.samples_applied = 0
        self.first_sample_at: float | None = None  # time.monotonic() when the first sample was drawn
        self._previous_totals: Totals | None = None
        # A replay (`pooltop view`): its time cursor; space pauses playback (speed 0).
        self.replay = self.sampler.replay
        self.replay_speed = 1
        self.replay_position = -1  # the index of the replayed sample on screen
        if self.replay is not None:
            self.replay_speed = self.replay.speed or 1
            self.paused = self.replay.speed == 0
        self.sampling = SamplingThread(self._sample_in_thread,
                                       SampleClock(interval, autorefresh, paused=self.paused))
        self._may_post = threading.Event()  # set once mounted: messages need the running app
        self._filter_before: str = ""
        self._big_pool: tuple[str, tuple[object, ...] | None, str | None] | None = None
        self._detail_key: tuple[str, int] | None = None
        self.who = WhoTraces(self.post_message)  # `w`: the live trace of the selected cache

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: App.query_one() searches the *current* screen, which is the help
        # screen or the command palette while those are open, and samples keep arriving then.
        self.header_widget = PoolHeader(id="header")
        self.table = PoolTable(self.model, symbols=self.symbols, fade_s=self.fade_s, id="table")
        self.detail = DetailPane(id="detail")
        self.filter_input = Input(placeholder="filter: wildcards * ?, matches tag, owner and description; "
                                              "Enter to keep, Esc to cancel", id="filter")
        yield self.header_widget
        yield self.table
        yield self.detail
        yield self.filter_input
        yield Footer()

    async def run_async(self, *args: Any, **kwargs: Any) -> None:
        # The first sample (reading the source, SLUB aliases, the tracker) runs while Textual
        # starts up; it is posted once the app is mounted (see _may_post).
        self.request_sample()
        self.sampling.start()
        return await super().run_async(*args, **kwargs)

    def on_mount(self) -> None:
        self.table.focus()
        self._update_header()
        if not self.sampling.started:
            self.request_sample()
            self.sampling.start()
        self._may_post.set()

    def on_unmount(self) -> None:
        # A sample under way finishes in the background (a daemon thread); its result is dropped.
        self.sampling.stop()
        self._may_post.set()
        self.who.stop(wait=True)  # until the tracing instance is gone from the kernel

    # --- sampling -----------------------------------------------------------------------------

    def request_sample(self, advance: bool = True) -> None:
        """Sample now (or as soon as the sample under way ends).

        Replaying, `advance` moves the time cursor on first; without it the sample under the cursor
        is shown (after a cursor key).
        """
        self.sampling.request(advance)

    @property
    def sampling_idle(self) -> bool:
        """No sample under way or asked for (tests wait for this, then for the messages)."""
        return self.sampling.idle

    def _sample_in_thread(self, advance: bool = True) -> None:
        started = time.monotonic()
        try:
            sample = self.sampler.take(advance)
            if sample is None:  # a replay with nothing new to show
                return
        except PooltopError as e:
            self.post_message(SampleFailed(str(e)))
            return
        except Exception as e:  # a backend bug: say so, keep the view and retry
            self.post_message(SampleFailed(f"unexpected {type(e).__name__}: {e}"))
            return
        elapsed = time.monotonic() - started
        self._may_post.wait()
        self.post_message(SampleReady(sample, elapsed, self.sampler.shown_position))
        if self.sampler.judge():
            self.post_message(ProcessesReady(self.sampler.verdict, self.sampler.process_sample))

    def on_processes_ready(self, message: ProcessesReady) -> None:
        if not self.table.is_mounted:
            return
        self.verdict = message.verdict
        if message.processes is not None and message.processes is not self.process_model.sample:
            self.process_model.apply(message.processes)
            if self.showing_processes:
                self.table.data_changed()
        self._update_header()

    def on_sample_ready(self, message: SampleReady) -> None:
        if not self.table.is_mounted:  # arrived while the app is closing
            return
        sample = message.sample
        if self.pool_model.sample is not None:
            self._previous_totals = self.pool_model.sample.snapshot.totals
        self.error = None
        self.slow_sample_s = message.elapsed_s if message.elapsed_s > SLOW_SAMPLE_SHARE * self.interval \
            else None
        self.pool_model.apply(sample)
        self.replay_position = message.position
        self.samples_applied += 1
        self.table.data_changed()
        self._update_header()
        if self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)
        if self.first_sample_at is None:
            self.first_sample_at = time.monotonic()

    def on_sample_failed(self, message: SampleFailed) -> None:
        if not self.table.is_mounted:
            return
        self.error = message.reason
        self._update_header()

    # --- header and detail --------------------------------------------------------------------

    def _sort_title(self) -> str:
        key = SORT_COLUMN.get(self.model.settings.sort)
        column = COLUMN_BY_KEY.get(key) if key is not None else None
        return column.title if column is not None else self.model.settings.sort

    @property
    def showing_processes(self) -> bool:
        return self.model is self.process_model

    def _pools_label(self) -> str:
        s = self.model.settings
        if self.showing_processes:
            sample = self.model.sample
            windows = sample is not None and sample.snapshot.source.startswith("windows")
            return f"processes (Bytes private, Diff {'handles' if windows else 'open files'})"
        if self.model.is_slab:
            return "slab"
        if s.session_only:
            return "session"
        return {PoolMode.BOTH: "nonpaged + paged", PoolMode.NONPAGED: "nonpaged",
                PoolMode.PAGED: "paged"}[s.pools]

    def _update_header(self) -> None:
        m = self.model
        sample = self.pool_model.sample  # the system's snapshot, also under the processes view
        s = m.settings
        snap = sample.snapshot if sample is not None else None
        since = m.sample.since_baseline if m.sample is not None else None
        notes: tuple[str, ...] = ()
        if self.sampler.baseline_pending:
            notes = (" baseline: set, applies to the next sample",)
        info = HeaderInfo(
            snapshot=snap,
            previous_totals=self._previous_totals,
            interval_s=self.interval,
            paused=self.paused,
            sample_number=sample.sample_number if sample is not None else 0,
            sort_title=self._sort_title(),
            descending=s.descending,
            since_baseline=s.since_baseline,
            baseline_age_s=(snap.monotonic_ns - sample.baseline_taken_at_ns) / 1e9
            if sample is not None and snap is not None else 0.0,
            pools=self._pools_label(),
            filter=s.filter,
            shown=len(m),
            total=len(m.counters),
            leak_counts=m.leak_counts(),
            new_since_baseline=int(since.is_new.sum()) if since is not None else 0,
            vanished_since_baseline=since.vanished.tags if since is not None else (),
            highlight=s.highlight,
            error=self.error,
            slow_sample_s=self.slow_sample_s,
            totals_rows=m.totals() if s.show_totals else [],
            show_totals=s.show_totals,
            tz=self.tz,
            notes=notes,
            replay=self._replay_info(),
            verdict=self.verdict,
        )
        self.header_widget.show(info)

    def _replay_info(self) -> ReplayInfo | None:
        replay = self.replay
        if replay is None:
            return None
        return ReplayInfo(position=self.replay_position, samples=len(replay),
                          speed=0 if self.paused else self.replay_speed)

    def _row_facts(self, key: tuple[str, int]) -> RowFacts | None:
        m = self.model
        sample = m.sample
        if sample is None or m.position_of(key) is None:
            return None
        counters = sample.counters
        row = counters.index()[key]
        changes = sample.changes(m.settings.since_baseline)
        leak = sample.leak
        alloc = counters.has_alloc_counts
        size = counters.extra.get("object_size")
        return RowFacts(
            tag=key[0],
            pool=Pool(key[1]),
            allocs=int(counters.allocs[row]) if alloc else None,
            frees=int(counters.frees[row]) if alloc else None,
            diff=int(counters.diff[row]),
            bytes=int(counters.bytes[row]),
            change_bytes=int(changes.bytes[row]),
            change_diff=int(changes.diff[row]),
            since_baseline=m.settings.since_baseline,
            level=LeakLevel(int(leak.levels[row])),
            score=float(leak.score[row]),
            slope=leak.slope_at(row),
            ups=int(leak.ups[row]),
            downs=int(leak.downs[row]),
            growth=float(leak.growth[row]),
            is_new=bool(sample.since_baseline.is_new[row]),
            object_size=int(size[row]) if size is not None else None,
        )

    def _update_detail(self, fetch_big_pool: bool) -> None:
        key = self.table.selected_key
        if key is None:
            self.detail.show(DetailInfo(None, (), (), 0.0, (), self.owner_book.available, (), None, None))
            return
        tag, pool = key
        if pool == Pool.PROCESS:
            self._big_pool = (tag, (), "processes: no big-pool allocations")
        elif fetch_big_pool or self._big_pool is None or self._big_pool[0] != tag:
            self._big_pool = (tag, None, None)
            self.run_worker(lambda: self._big_pool_in_thread(tag), group="bigpool", thread=True,
                            exclusive=True, exit_on_error=False)
        times, hist_bytes, hist_diff = self.sampler.history(tag, pool)
        sample = self.model.sample
        aliases = sample.snapshot.aliases.get(tag, ()) if sample is not None else ()
        _, big, note = self._big_pool
        self.detail.show(
            DetailInfo(
                row=self._row_facts(key),
                history_bytes=tuple(hist_bytes),
                history_diff=tuple(hist_diff),
                history_seconds=(times[-1] - times[0]) if len(times) > 1 else 0.0,
                owners=self.owner_book.candidates(tag, pool),
                owners_available=self.owner_book.available,
                aliases=tuple(aliases),
                big_pool=big,  # type: ignore[arg-type]
                big_pool_note=note,
                who=self.who.view if self.who.tag == tag else None,
            )
        )

    def _big_pool_in_thread(self, tag: str) -> None:
        try:
            found = tuple(self.sampler.big_pool_allocations(tag))
        except PooltopError as e:
            self.post_message(BigPoolReady(tag, (), f"not available: {e}"))
            return
        except Exception as e:
            self.post_message(BigPoolReady(tag, (), f"failed: {type(e).__name__}: {e}"))
            return
        self.post_message(BigPoolReady(tag, found, None))

    def on_big_pool_ready(self, message: BigPoolReady) -> None:
        if not self.detail.is_mounted or self._big_pool is None or self._big_pool[0] != message.tag:
            return
        self._big_pool = (message.tag, message.allocations, message.note)
        if self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)

    @on(PoolTable.CursorMoved)
    def _cursor_moved(self, message: PoolTable.CursorMoved) -> None:
        if self.who.tag is not None and (message.key is None or message.key[0] != self.who.tag):
            self.who.stop()  # leaving the traced row ends its trace
        if self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)

    @on(PoolTable.SortClicked)
    def _sort_clicked(self, message: PoolTable.SortClicked) -> None:
        self.action_sort(message.sort, toggle=True)

    @on(PoolTable.RowActivated)
    def _row_activated(self, message: PoolTable.RowActivated) -> None:
        if not self.detail.has_class("-open"):
            self.action_toggle_detail()

    def action_who(self) -> None:
        """`w`: trace who allocates the selected row's cache, live in the detail pane; again: stop."""
        key = self.table.selected_key
        if self.who.tag is not None:
            traced = self.who.tag
            self.who.stop()
            if key is None or key[0] == traced:
                self._update_detail(fetch_big_pool=False)
                return
        if key is None or self.replay is not None or key[1] == Pool.PROCESS:
            why = ("a recording cannot be traced" if self.replay is not None
                   else "select a slab cache or pool tag first")
            self.notify(f"w: {why}", timeout=3)
            return
        self.who.start(key[0], self.interval)
        if not self.detail.has_class("-open"):
            self.action_toggle_detail()
        else:
            self._update_detail(fetch_big_pool=False)

    def on_who_report(self, message: WhoReport) -> None:
        shown = self.who.receive(message)
        if shown is not None and self.detail.is_mounted and self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)

    # --- view changes -------------------------------------------------------------------------

    def _view_changed(self) -> None:
        self.model.recompute()
        self.table.data_changed()
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

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self.filter_input.has_class("-open"):
            self.model.set_filter(event.value)
            self._view_changed()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter(keep=True)

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
        self.table.selected_key = None
        self.table.cursor = 0
        self.table.empty_text = ("waiting for the first process sample (every 5 s)…" if self.showing_processes
                                 else "waiting for the first sample…")
        self.table.scroll_to(y=0, animate=False)
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
        self._view_changed()

    def action_toggle_detail(self) -> None:
        pane = self.detail
        if pane.has_class("-open"):
            pane.remove_class("-open")
            self.who.stop()  # no trace runs where nobody sees it
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

    def action_quit_or_close(self) -> None:
        if self.filter_input.has_class("-open"):
            self._close_filter(keep=False)
        elif self.detail.has_class("-open"):
            self.action_toggle_detail()
        else:
            self.exit()


#: The live view around a source, without running it (tests drive it with run_test()). The app's
#: constructor is the factory: `processes` (a ProcessSource, or a scripted one in tests) feeds the
#: header's verdict line, sampled every `process_every_s` seconds of the source's clock.
create_app = PooltopApp
