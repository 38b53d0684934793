"""The `w` key: who allocates the selected cache, traced live in a thread of its own.

One trace at a time (the kernel instance is per process). The trace thread owns the tracer;
the UI only receives frozen WhoReport messages (the ranking so far, or why tracing failed) and
renders them in the detail pane. Stopping sets an event; the thread's finally-block takes the
tracefs instance away. The UI does not wait for that when a row is left (it takes a moment), only
before the next trace starts and when the app ends; SIGTERM while a trace runs also waits for it
before the process ends (Ctrl+C in the live view is a key, and quitting stops the trace).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from rich.style import Style
from rich.text import Text
from textual.message import Message

from pooltop.errors import PooltopError
from pooltop.model import human_bytes, printable
from pooltop.who.attribution import Attribution
from pooltop.who.session import WhoTracer

SITES_SHOWN = 5
PROCESSES_SHOWN = 3
STOP_WAIT_S = 5.0  # cleanup is a few writes and an rmdir; this only bounds a stuck kernel


class Tracer(Protocol):
    warnings: list[str]

    def run(self, duration: float | None, stop: threading.Event | None = None,
            on_update: Callable[[Attribution], None] | None = None,
            update_every: float = 1.0) -> Attribution: ...


@dataclass
class WhoReport(Message):
    """The trace of `tag` so far (`attribution`), or why it stopped (`error`)."""

    tag: str
    attribution: Attribution | None
    error: str | None
    running: bool

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WhoReport) and message.tag == self.tag and message.running


@dataclass(frozen=True)
class WhoView:
    """What the detail pane shows of a trace."""

    tag: str
    running: bool
    attribution: Attribution | None
    error: str | None


class WhoTraces:
    """Starts and stops the live trace. `factory` makes a tracer for a cache name (tests pass a
    fake); `post` delivers WhoReport messages to the app (thread-safe)."""

    def __init__(self, post: Callable[[Message], Any],
                 factory: Callable[[str], Tracer] = lambda name: WhoTracer(name)) -> None:
        self.post = post
        self.factory = factory
        self.tag: str | None = None
        self.view: WhoView | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._previous_sigterm: Any = None


    def start(self, tag: str, update_every: float) -> None:
        self.stop(wait=True)  # the previous trace's instance must be gone: the name is per process
        stop = threading.Event()
        self.tag, self._stop = tag, stop
        self.view = WhoView(tag, True, None, None)
        self._thread = threading.Thread(target=self._trace, args=(tag, stop, update_every),
                                        name=f"pooltop-who-{tag}", daemon=True)
        self._thread.start()
        self._guard_sigterm()

    def stop(self, wait: bool = False) -> None:
        """Stop the trace (if any); with `wait`, also the one stopping already, until its instance
        is gone."""
        if self._stop is not None:
            self._stop.set()
        self._stop = None
        self.tag = None
        self.view = None
        thread = self._thread
        if thread is not None and not thread.is_alive():
            self._thread = thread = None
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(STOP_WAIT_S)
            self._thread = None
        if self._thread is None:
            self._unguard_sigterm()

    def receive(self, report: WhoReport) -> WhoView | None:
        """A report from the trace thread -> the view to show (None: a stopped trace's leftover)."""
        if report.tag != self.tag:
            return None
        self.view = WhoView(report.tag, report.running, report.attribution, report.error)
        return self.view

    def _trace(self, tag: str, stop: threading.Event, update_every: float) -> None:
        def update(a: Attribution) -> None:
            if not stop.is_set():
                self.post(WhoReport(tag, a, None, True))

        try:
            tracer = self.factory(tag)
            result = tracer.run(None, stop, on_update=update, update_every=update_every)
        except PooltopError as e:
            self.post(WhoReport(tag, None, str(e), False))
        except Exception as e:  # a bug must not take the live view down with it
            self.post(WhoReport(tag, None, f"unexpected {type(e).__name__}: {e}", False))
        else:
            error = "; ".join(tracer.warnings) or None
            self.post(WhoReport(tag, result, error, False))

    # SIGTERM would end the process without unwinding the trace thread: stop it first.
    def _guard_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous_sigterm is not None:
            return

        def on_term(signum: int, frame: FrameType | None) -> None:
            previous = self._previous_sigterm
            self.stop(wait=True)
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        with contextlib.suppress(ValueError):
            self._previous_sigterm = signal.signal(signal.SIGTERM, on_term)

    def _unguard_sigterm(self) -> None:
        previous, self._previous_sigterm = self._previous_sigterm, None
        if previous is not None and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)


def who_text(view: WhoView) -> Text:
    """The detail pane's section on the trace."""
    out = Text()
    out.append("Who allocates", Style(bold=True, underline=True))
    if view.running:
        out.append("  ● tracing", Style(bold=True, color="red"))
        out.append(" (w or leaving the row stops it)")
    elif view.error is None:
        out.append("  (trace stopped)")
    out.append("\n")
    if view.error is not None:
        out.append(f"  {printable(view.error)}\n")
    a = view.attribution
    if a is None:
        if view.running:
            out.append("  starting the trace…\n")
        return out
    cache = f" as {printable(a.cache)}" if a.cache != a.target else ""
    out.append(f"  {a.seconds:,.0f} s{cache}: {a.allocs:,} allocations, {a.frees:,} freed, {a.lost:,} lost\n")
    if not a.sites:
        out.append("  nothing allocated yet\n")
    for s in a.sites[:SITES_SHOWN]:
        out.append(f"  {s.outstanding:>8,} {human_bytes(s.bytes):>10}  ")
        out.append(printable(s.call_site), Style(bold=True))
        out.append(f"  ({s.allocs:,} allocs)\n")
    top = a.top_processes(PROCESSES_SHOWN)
    if top:
        shares = ", ".join(f"{printable(p.name)} ({p.pid}) {p.outstanding:,}" for p in top)
        out.append(f"  processes: {shares}\n")
    return out
