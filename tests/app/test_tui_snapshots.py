"""Snapshot tests (pytest-textual-snapshot): the main screen, help and detail, from scripted samples.

Fixed host names, times and counters (tests/app/tui_fakes.py); no real clock or host in the picture.
Update after an intended change with `pytest tests/app/test_tui_snapshots.py --snapshot-update` and
look at the SVGs (tests/app/__snapshots__/) before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from tui_support import advance, build_app, settle


async def six_samples(pilot: Pilot[Any]) -> None:
    await advance(pilot, 6)


def test_main_screen_windows(snap_compare: Any) -> None:
    assert snap_compare(build_app(windows=True), terminal_size=(140, 32), run_before=six_samples)


def test_main_screen_linux(snap_compare: Any) -> None:
    assert snap_compare(build_app(windows=False), terminal_size=(110, 28), run_before=six_samples)


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(build_app(windows=True), terminal_size=(80, 24), run_before=six_samples)


def test_main_screen_no_color_symbols(snap_compare: Any) -> None:
    app = build_app(windows=True, symbols=True)
    assert snap_compare(app, terminal_size=(140, 32), run_before=six_samples)


def test_help_screen(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await advance(pilot, 2)
        await pilot.press("h")

    assert snap_compare(build_app(windows=True), terminal_size=(110, 60), run_before=run_before)


def test_detail_pane(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await advance(pilot, 6)
        await pilot.press("d", "home", "enter")
        await settle(pilot)

    assert snap_compare(build_app(windows=True), terminal_size=(140, 48), run_before=run_before)


def test_filter_and_totals(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await advance(pilot, 6)
        await pilot.press("e", "slash", *"s*")
        await settle(pilot)

    assert snap_compare(build_app(windows=True), terminal_size=(140, 32), run_before=run_before)


def test_processes_view_with_detail(snap_compare: Any) -> None:
    from tui_fakes import ScriptedProcesses, ScriptedSource

    async def run_before(pilot: Pilot[Any]) -> None:
        await advance(pilot, 4)
        await pilot.press("P")
        await advance(pilot, 1)
        await pilot.press("enter")
        await settle(pilot)

    app = build_app(source=ScriptedSource(windows=False), processes=ScriptedProcesses(grow=16 << 20),
                    process_every_s=0)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_linux_totals_at_80x24(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await advance(pilot, 6)
        await pilot.press("e")
        await settle(pilot)

    assert snap_compare(build_app(windows=False), terminal_size=(80, 24), run_before=run_before)
