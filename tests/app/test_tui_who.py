"""The `w` key: who allocates the selected cache, traced live (a fake tracer stands in for tracefs)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from tui_screen import screen_text
from tui_support import advance, build_app, settle

from pooltop.app import PooltopApp
from pooltop.app.keys import KEYS, palette_specs
from pooltop.errors import Unsupported
from pooltop.who.attribution import Attribution, ProcessShare, SiteAttribution


def _attribution(target: str, allocs: int) -> Attribution:
    site = SiteAttribution("leak_alloc+0x10/0x40", "leak_alloc", allocs, allocs * 256, allocs, 0,
                           (ProcessShare("leakd", 4242, allocs, allocs),), ())
    return Attribution(target, target, 1.0, allocs, 0, 0, 0, (site,))


class FakeTracer:
    """Reports a growing count every few milliseconds until stopped; remembers that it ended."""

    def __init__(self, name: str, fail: str | None = None) -> None:
        self.name = name
        self.fail = fail
        self.warnings: list[str] = []
        self.ended = threading.Event()

    def run(self, duration: float | None, stop: threading.Event | None = None,
            on_update: Callable[[Attribution], None] | None = None, update_every: float = 1.0) -> Attribution:
        assert stop is not None
        try:
            if self.fail is not None:
                raise Unsupported(self.fail)
            n = 0
            while not stop.wait(0.01):
                n += 1
                if on_update is not None:
                    on_update(_attribution(self.name, n))
            return _attribution(self.name, n)
        finally:
            self.ended.set()


def _fake(app: PooltopApp, fail: str | None = None) -> list[FakeTracer]:
    made: list[FakeTracer] = []

    def factory(name: str) -> FakeTracer:
        made.append(FakeTracer(name, fail))
        return made[-1]

    app.who.factory = factory
    return made


async def _until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, screen_text(pilot.app)
        await asyncio.sleep(0.01)
        await pilot.pause()


def test_w_is_in_the_key_table_footer_and_palette() -> None:
    spec = next(s for s in KEYS if s.action == "who")
    assert spec.keys == ("w",) and spec.footer
    assert spec in list(palette_specs())


async def test_w_traces_the_selected_cache_live_and_w_again_stops() -> None:
    app = build_app(windows=False)
    made = _fake(app)
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "leak_alloc+0x10/0x40" in screen_text(app))
        text = screen_text(app)
        assert app.detail.has_class("-open")
        assert "Who allocates" in text and "● tracing" in text
        assert "leakd (4242)" in text
        (tracer,) = made
        assert tracer.name == "Leak"
        await _until(pilot, lambda: "Who" in screen_text(app).splitlines()[-1])  # footer
        await pilot.press("w")
        assert tracer.ended.wait(5)
        await settle(pilot)
        assert "● tracing" not in screen_text(app)
        assert app.who.tag is None and app.is_running


async def test_leaving_the_row_stops_the_trace() -> None:
    app = build_app(windows=False)
    made = _fake(app)
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "● tracing" in screen_text(app))
        await pilot.press("down")
        assert made[0].ended.wait(5)
        await settle(pilot)
        assert app.who.tag is None
        assert "Who allocates" not in screen_text(app)


async def test_closing_the_detail_pane_stops_the_trace() -> None:
    app = build_app(windows=False)
    made = _fake(app)
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "● tracing" in screen_text(app))
        await pilot.press("escape")
        assert made[0].ended.wait(5)
        assert app.who.tag is None and not app.detail.has_class("-open") and app.is_running


async def test_a_trace_that_cannot_run_says_why_and_the_view_goes_on() -> None:
    app = build_app(windows=False)
    _fake(app, fail="tracing kernel allocations needs root (run pooltop with sudo)")
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "needs root" in screen_text(app))
        assert "● tracing" not in screen_text(app)
        await advance(pilot, 1)
        assert app.is_running


async def test_quitting_stops_a_running_trace() -> None:
    app = build_app(windows=False)
    made = _fake(app)
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "● tracing" in screen_text(app))
        await pilot.press("q")
    assert made[0].ended.is_set()  # the trace ended (its cleanup ran) before the app was gone


async def test_the_traced_row_stays_selected_while_rows_re_sort() -> None:
    app = build_app(windows=False)
    made = _fake(app)
    async with app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 2)
        await pilot.press("d", "home", "w")
        await _until(pilot, lambda: "● tracing" in screen_text(app))
        traced = app.who.tag
        assert app.table.pinned_key is not None and app.table.pinned_key[0] == traced
        await pilot.press("r")  # the order turns over: another row comes under the cursor's place
        await advance(pilot, 2)
        assert app.who.tag == traced and not made[0].ended.is_set()
        assert app.table.selected_key is not None and app.table.selected_key[0] == traced
        await pilot.press("w")
        assert made[0].ended.wait(5)
        await settle(pilot)
        assert app.table.pinned_key is None  # the pin `w` set ends with its trace
