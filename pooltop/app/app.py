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
from textual.widgets import Input

from pooltop.app.actions import ViewActions
from pooltop.app.columns import table_columns
from pooltop.app.detail import DetailInfo, DetailPane
from pooltop.app.footer import KeyBar
from pooltop.app.header import HeaderInfo, PoolHeader, ReplayInfo
from pooltop.app.keys import PooltopCommands, bindings
from pooltop.app.messages import BigPoolReady, ProcessesReady, SampleFailed, SampleReady
from pooltop.app.sampler import PROCESS_EVERY_S, SampleClock, Sampler, SamplingThread
from pooltop.app.sorting import SORT_COLUMN
from pooltop.app.table import PoolTable
from pooltop.app.tracing import WhoReport, WhoTraces
from pooltop.app.view import OwnerBook, PoolMode, TableModel, ViewSettings, row_facts
from pooltop.errors import PooltopError
from pooltop.model import Pool, Snapshot, Totals, printable
from pooltop.native import Source
from pooltop.processes.verdict import Verdict
from pooltop.tagdb.owners import OwnerLookup
from pooltop.tracking import Tracker

#: a sample slower than this share of the interval is called out in the header
SLOW_SAMPLE_SHARE = 0.5


class PooltopApp(ViewActions):
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
        self._who_pinned = False  # `w` pinned the traced row (and unpins it when the trace ends)

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
        self.key_bar = KeyBar(self.key_applies, id="footer")
        yield self.key_bar

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
        before = self.pool_model.sample
        # The header's trend is against the previous sample of the same tracking only (its numbers
        # rise; a UI that fell behind may skip some): after a replay's jump the Tracker starts over
        # (sample_number 1 again), and nothing is computed across a jump.
        consecutive = before is not None and sample.sample_number > before.sample_number
        self._previous_totals = before.snapshot.totals if consecutive and before is not None else None
        self.error = None
        self.slow_sample_s = message.elapsed_s if message.elapsed_s > SLOW_SAMPLE_SHARE * self.interval \
            else None
        self.pool_model.apply(sample)
        self._explain_empty(sample.snapshot)
        self.replay_position = message.position
        self.samples_applied += 1
        self.table.data_changed()
        self._update_header()
        if self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)
        if self.first_sample_at is None:
            self.first_sample_at = time.monotonic()

    def _explain_empty(self, snapshot: Snapshot) -> None:
        """A sample without rows says why in the table (not "waiting for the first sample…"
        forever): the source's reason and what to do (not root on Linux: /proc/slabinfo is
        unreadable); the header still shows the totals that could be read."""
        if self.showing_processes:
            return
        if len(snapshot.counters):
            self.table.empty_text = "waiting for the first sample…"
        elif snapshot.warnings:
            self.table.empty_text = "no rows: " + "; ".join(printable(w) for w in snapshot.warnings)
        else:
            self.table.empty_text = "no rows in this sample"

    def on_sample_failed(self, message: SampleFailed) -> None:
        if not self.table.is_mounted:
            return
        self.error = message.reason
        self._update_header()

    # --- header and detail --------------------------------------------------------------------

    def _sort_title(self) -> str:
        """The sorted column's title as the table shows it (Private for processes, Cache)."""
        m = self.model
        key = SORT_COLUMN.get(m.settings.sort)
        titles = {c.key: c.title for c in table_columns(m.extra_column, m.process_os)}
        return titles.get(key, m.settings.sort) if key is not None else m.settings.sort

    def _pools_label(self) -> str:
        s = self.model.settings
        if self.showing_processes:
            return "processes"
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
            pinned=self.table.pinned_key[0] if self.table.pinned_key is not None else None,
        )
        self.header_widget.show(info)
        if self.key_bar.is_mounted:
            self.key_bar.keys_may_have_changed()

    def _replay_info(self) -> ReplayInfo | None:
        replay = self.replay
        if replay is None:
            return None
        return ReplayInfo(position=self.replay_position, samples=len(replay),
                          speed=0 if self.paused else self.replay_speed)

    def _update_detail(self, fetch_big_pool: bool) -> None:
        key = self.table.selected_key
        if key is None:
            self.detail.show(DetailInfo(None, (), (), 0.0, (), self.owner_book.available, (), None, None))
            return
        tag, pool = key
        if pool == Pool.PROCESS:
            self._big_pool = (tag, (), None)  # a process has no big-pool allocations: not shown
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
                row=row_facts(self.model, key),
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
            self.stop_who()  # leaving the traced row ends its trace
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
            self.stop_who()
            if key is None or key[0] == traced:
                self._update_detail(fetch_big_pool=False)
                return
        if key is None or self.replay is not None or key[1] == Pool.PROCESS:
            why = ("a recording cannot be traced" if self.replay is not None
                   else "select a slab cache or pool tag first")
            self.notify(f"w: {why}", timeout=3)
            return
        self.who.start(key[0], self.interval)
        if self.table.pinned_key is None:
            # The traced row is pinned while its trace runs: under a change sort rows re-sort every
            # refresh, and the trace would otherwise end with the first re-sort under the cursor.
            self.table.pinned_key = key
            self._who_pinned = True
        if not self.detail.has_class("-open"):
            self.action_toggle_detail()
        else:
            self._update_detail(fetch_big_pool=False)

    def stop_who(self) -> None:
        """End the `w` trace, and the pin it set."""
        self.who.stop()
        if self._who_pinned:
            self._who_pinned = False
            self.table.pinned_key = None

    def on_who_report(self, message: WhoReport) -> None:
        shown = self.who.receive(message)
        if shown is not None and self.detail.is_mounted and self.detail.has_class("-open"):
            self._update_detail(fetch_big_pool=False)

    # --- the filter box ---------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self.filter_input.has_class("-open"):
            self.model.set_filter(event.value)
            self._view_changed()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter(keep=True)


#: The live view around a source, without running it (tests drive it with run_test()). The app's
#: constructor is the factory: `processes` (a ProcessSource, or a scripted one in tests) feeds the
#: header's verdict line, sampled every `process_every_s` seconds of the source's clock.
create_app = PooltopApp
