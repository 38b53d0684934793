"""Pilot tests: the header's verdict line (driver or application?), from scripted kernel + process sources."""

from __future__ import annotations

import dataclasses

from tui_fakes import GrowingSlabSource, MiB, ScriptedProcesses, ScriptedSource, make_snapshot
from tui_screen import screen_text
from tui_support import advance, build_app, settle

from pooltop.app import PooltopApp
from pooltop.app.header import PoolHeader
from pooltop.app.keys import KEYS
from pooltop.model import Pool, Snapshot
from pooltop.processes.verdict import VerdictKind
from pooltop.record.replay import SequenceSource


class QuietPools(ScriptedSource):
    """The Linux ScriptedSource without its growing rows: the pools give the verdict nothing to say."""

    def __init__(self) -> None:
        super().__init__(windows=False)

    def sample(self) -> Snapshot:
        snap = super().sample()
        c = snap.counters
        keep = [i for i, tag in enumerate(c.tags) if tag in ("Stab", "Io  ")]
        return dataclasses.replace(snap, counters=c.select(keep))


def verdict_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "verdict:" in line]
    assert len(lines) == 1, text
    return lines[0]


async def test_kernel_growth_with_flat_processes_is_a_driver_leak() -> None:
    app = build_app(source=GrowingSlabSource(), processes=ScriptedProcesses(grow=0), process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 0)
        assert "collecting" in verdict_line(screen_text(app))
        await advance(pilot, 6)
        assert app.verdict is not None and app.verdict.kind is VerdictKind.KERNEL
        line = verdict_line(screen_text(app))
        assert "verdict: kernel/driver leak: unreclaimable slab +" in line


async def test_a_growing_process_is_named() -> None:
    app = build_app(source=QuietPools(), processes=ScriptedProcesses(grow=16 * MiB), process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 6)
        assert app.verdict is not None and app.verdict.kind is VerdictKind.PROCESS
        assert app.verdict.subject == "leaky[42]"
        assert "verdict: process leaky[42] is growing" in verdict_line(screen_text(app))


async def test_flat_everything_says_nothing_is_growing() -> None:
    app = build_app(source=QuietPools(), processes=ScriptedProcesses(), process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 4)
        assert "verdict: nothing is growing" in verdict_line(screen_text(app))


async def test_a_leaking_row_is_named_in_the_verdict_line() -> None:
    # Issue 14: the header said "nothing is growing" while a row said LEAK.
    app = build_app(source=ScriptedSource(windows=False), processes=ScriptedProcesses(), process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 6)
        line = verdict_line(screen_text(app))
        assert "verdict: kernel/driver leak: cache Leak is leak (+" in line
        assert "1 leak, 1 suspect" in line


async def test_processes_are_sampled_every_few_seconds_of_the_source_clock() -> None:
    processes = ScriptedProcesses()
    app = build_app(source=ScriptedSource(windows=False), processes=processes, process_every_s=3)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 6)  # seven system samples, 1 s apart: processes at 0, 3 and 6 s
        assert app.samples_applied == 7
        assert processes.calls == 3


async def test_failing_process_sample_hides_the_verdict_not_the_pools() -> None:
    processes = ScriptedProcesses(fail_at=(2,))
    app = build_app(source=ScriptedSource(windows=False), processes=processes, process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 2)
        assert app.samples_applied == 3 and app.error is None
        assert app.verdict is None
        assert "verdict:" not in screen_text(app)
        assert "Leak" in screen_text(app)
        await advance(pilot, 1)
        assert app.verdict is not None and app.samples_applied == 4


async def test_no_verdict_without_processes_or_in_a_replay() -> None:
    app = build_app(windows=False)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 3)
        assert app.verdict is None and "verdict:" not in screen_text(app)
    snaps: list[Snapshot] = [make_snapshot(i, windows=False) for i in range(5)]
    processes = ScriptedProcesses()
    replay = build_app(source=SequenceSource(snaps, speed=1), processes=processes, process_every_s=0)
    async with replay.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 3)
        assert replay.verdict is None and processes.calls == 0
        header = replay.header_widget
        assert isinstance(header, PoolHeader) and "verdict:" not in screen_text(replay)


# --- the processes view (P) ------------------------------------------------------------------------


def shown_tags(app: PooltopApp) -> list[str]:
    m = app.model
    return [m.counters.tags[int(i)] for i in m.order]


async def test_p_toggles_the_table_between_pools_and_processes() -> None:
    app = build_app(source=ScriptedSource(windows=False), processes=ScriptedProcesses(grow=16 * MiB),
                    process_every_s=0)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 6)
        assert "Leak" in shown_tags(app)
        await pilot.press("P")
        assert app.showing_processes and app.table.model is app.process_model
        assert shown_tags(app) == ["leaky[42]", "steady[77]", "init[1]"]  # by Bytes (private), largest first
        text = screen_text(app)
        assert "leaky[42]" in text and "Pools processes" in text
        assert "Process" in text and "Private" in text and "Files" in text and "RSS" in text  # its own titles
        assert "Per Alloc" not in text and "testbox" in text  # the header still shows the system
        # The same Tracker machinery: the growing process is flagged, its change is tracked.
        m = app.model
        row = m.counters.index()[("leaky[42]", int(Pool.PROCESS))]
        assert m.changes is not None and int(m.changes.bytes[row]) == 16 * MiB
        assert m.leak_counts()  # leaky[42] is at least on watch
        await pilot.press("d")
        assert shown_tags(app)[0] == "init[1]"  # most open files
        await pilot.press("slash")
        await pilot.press(*"stead", "enter")
        assert shown_tags(app) == ["steady[77]"]
        await pilot.press("p")  # no pools among processes: the rows stay
        assert shown_tags(app) == ["steady[77]"]
        await pilot.press("enter")  # the detail pane: history from the process tracker
        await settle(pilot)
        assert app.detail.has_class("-open")
        text = screen_text(app)
        assert "steady[77]  (process)" in text and "private 50.0 MiB" in text and "RSS 60.0 MiB" in text
        assert "open files 30" in text and "history:" in text
        assert "B per alloc" not in text and "pooltag.txt" not in text and "Big-pool" not in text
        await pilot.press("escape")
        await pilot.press("P")
        assert not app.showing_processes and "Leak" in shown_tags(app)
        assert app.model.settings.filter == ""  # each view keeps its own settings


async def test_p_without_process_data_says_why() -> None:
    app = build_app(windows=False)
    async with app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 1)
        await pilot.press("P")
        assert not app.showing_processes
        assert "Leak" in shown_tags(app)


def test_p_is_in_the_key_table() -> None:
    assert any(spec.keys == ("P",) and spec.action == "toggle_processes" for spec in KEYS)
