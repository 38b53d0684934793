"""Issue 17: what the live view shows at 80x24 and 200 columns, on Linux, for processes, and how
it labels durations and numbers (pilot tests on scripted sources)."""

from __future__ import annotations

import dataclasses
import re

from tui_fakes import ScriptedProcesses, ScriptedSource, make_snapshot
from tui_screen import screen_text
from tui_support import advance, build_app, settle

from pooltop.app.cells import number
from pooltop.app.columns import title_fits
from pooltop.app.footer import footer_items
from pooltop.app.textline import format_duration, format_uptime
from pooltop.model import CounterSet, Pool, Snapshot
from pooltop.record.replay import SequenceSource


async def test_80x24_shows_every_header_figure_and_help_and_quit() -> None:
    app = build_app(windows=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, 6)
        text = screen_text(app)
        for figure in ("Paged 286.1 MiB", "Nonpaged 190.8 MiB", "Avail 8.0 GiB", "Commit 6.0 GiB/20.0 GiB",
                       "Pagefile 1.0 GiB/4.0 GiB", "up 3 d 01 h", "every 1 s", "#7", "Rows 9",
                       "1 leak", "1 suspect", "1 gone: Gone"):
            assert figure in text, figure
        footer = text.splitlines()[-1]
        assert "h Help" in footer and "q Quit" in footer and "Space Pause" in footer
        assert "…" not in "\n".join(text.splitlines()[:4])  # wrapped, not cut


async def test_processes_status_line_keeps_the_leak_counts_at_80_columns() -> None:
    app = build_app(source=ScriptedSource(windows=False), processes=ScriptedProcesses(grow=16 << 20),
                    process_every_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, 6)
        await pilot.press("P")
        await advance(pilot, 1)
        counts = app.model.leak_counts()
        assert any(counts.values())
        text = screen_text(app)
        for level, count in counts.items():
            if count:
                assert f"{count} {level.label}" in text


async def test_owner_takes_the_free_width_at_200_columns() -> None:
    app = build_app(windows=True)
    async with app.run_test(size=(200, 40)) as pilot:
        await advance(pilot, 2)
        columns = {lc.column.key: lc for lc in app.table.columns}
        last = app.table.columns[-1]
        assert columns["owner"].width > 60
        assert last.x + last.width >= app.table.scrollable_content_region.width - 1


async def test_linux_hides_alloc_columns_and_shows_what_the_caches_hold() -> None:
    app = build_app(windows=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await advance(pilot, 2)
        keys = [lc.column.key for lc in app.table.columns]
        assert "allocs" not in keys and "frees" not in keys and "d_allocs" not in keys
        assert "cache" in keys
        m = app.model
        row = m.counters.index()[("Leak", int(Pool.SLAB))]
        extra = m.counters.extra
        assert int(m.extra_values[row]) == int(extra["total_objects"][row]) * int(extra["object_size"][row])
        # a click on its title sorts by it
        await pilot.press("e")
        text = screen_text(app)
        assert "active objects in" in text and "the caches hold" in text and "Slab" in text
        footer = text.splitlines()[-1]
        assert "Procs" not in footer  # no process source here: P does nothing


async def test_the_cache_column_sorts() -> None:
    app = build_app(windows=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await advance(pilot, 2)
        app.action_sort("cache")
        m = app.model
        values = [int(m.extra_values[int(i)]) for i in m.order]
        assert values == sorted(values, reverse=True)
        await pilot.pause()
        assert "Sort Cache▼" in screen_text(app)


async def test_without_root_the_table_says_why_and_the_totals_still_show() -> None:
    class Unreadable(ScriptedSource):
        def sample(self) -> Snapshot:
            snap = super().sample()
            return dataclasses.replace(
                snap, counters=CounterSet.empty(), aliases={},
                warnings=("reading /proc/slabinfo needs root (run pooltop with sudo); showing system "
                          "totals only",))

    app = build_app(source=Unreadable(windows=False))
    async with app.run_test(size=(140, 30)) as pilot:
        await advance(pilot, 2)
        text = screen_text(app)
        assert "waiting for the first sample" not in text
        assert "no rows: reading /proc/slabinfo needs root (run pooltop with sudo)" in text
        assert "Slab 143.1 MiB" in text and "Avail" in text


async def test_replay_header_computes_nothing_across_a_jump() -> None:
    snaps = [make_snapshot(i, windows=False) for i in range(30)]
    app = build_app(source=SequenceSource(snaps, speed=0))
    async with app.run_test(size=(160, 36)) as pilot:
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert "▲" in screen_text(app).splitlines()[2]  # one step: the trend of one sample
        await pilot.press("end")
        await settle(pilot)
        totals_line = next(line for line in screen_text(app).splitlines() if "Slab " in line)
        assert "▲" not in totals_line and "▼" not in totals_line


async def test_footer_hides_keys_that_do_nothing_here() -> None:
    app = build_app(windows=False)
    async with app.run_test(size=(200, 30)) as pilot:
        await advance(pilot, 1)
        shown = {spec.action for _, _, spec in footer_items(app.key_applies, 200) if spec is not None}
        assert "toggle_processes" not in shown and "export" in shown and "help" in shown
        for spec_action in ("sort('allocs')", "sort('frees')", "cycle_pools", "toggle_session"):
            spec = next(s for s in __import__("pooltop.app.keys", fromlist=["KEYS"]).KEYS
                        if s.action == spec_action)
            assert not app.key_applies(spec)


def test_footer_keeps_help_and_quit_when_narrow() -> None:
    items = footer_items(lambda spec: True, 40)
    words = [word for _, word, _ in items]
    assert words[-2:] == ["Help", "Quit"]
    assert sum(len(k) + len(w) + 3 for k, w, _ in items) + 1 <= 40
    wide = [word for _, word, _ in footer_items(lambda spec: not spec.replay, 200)]
    assert "Procs" in wide and "Export" in wide and "palette" in wide


def test_durations_read_as_people_say_them() -> None:
    assert format_duration(1.34004) == "1.3 s"
    assert format_duration(0.25) == "0.25 s"
    assert format_duration(45) == "45 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_uptime(14 * 60) == "14 min"
    assert format_uptime(3 * 3600 + 5 * 60) == "3 h 05 min"
    assert format_uptime(2 * 86400 + 3 * 3600) == "2 d 03 h"


def test_numbers_in_a_column_read_alike() -> None:
    for value in (-10520432, 276360, 68816896, -12, 0):
        text = number(value, 10, signed=True).strip()
        assert re.fullmatch(r"[+-]?(\d{1,3}(,\d{3})*|\d+\.\d[KMGTP])|0", text), text


def test_sort_arrow_never_hides_the_title() -> None:
    assert title_fits("Per Alloc", "▼", 9) == "PerAlloc▼"
    assert title_fits("Bytes", "▼", 12) == "Bytes▼"
    assert title_fits("dAllocs", "▲", 7) == "dAlloc▲"


async def test_a_long_verdict_wraps_between_words_at_80_columns() -> None:
    from tui_fakes import GrowingSlabSource

    app = build_app(source=GrowingSlabSource(), processes=ScriptedProcesses(grow=0), process_every_s=0)
    async with app.run_test(size=(80, 30)) as pilot:
        await advance(pilot, 4)
        lines = screen_text(app).splitlines()
        start = next(i for i, line in enumerate(lines) if "verdict:" in line)
        verdict = " ".join(line.strip() for line in lines[start:start + 3])
        assert app.verdict is not None
        assert " ".join(app.verdict.text.split()[:12]) in verdict
        assert not any(line.endswith("…") for line in lines[:start + 3])


async def test_processes_use_the_width_with_numbers_that_keep_their_separators() -> None:
    app = build_app(source=ScriptedSource(windows=False), processes=ScriptedProcesses(grow=16 << 20),
                    process_every_s=0)
    async with app.run_test(size=(200, 30)) as pilot:
        await advance(pilot, 3)
        await pilot.press("P")
        await advance(pilot, 1)
        columns = {lc.column.key: lc for lc in app.table.columns}
        assert columns["tag"].column.title == "Process" and columns["bytes"].column.title == "Private"
        assert columns["diff"].column.title == "Files" and "rss" in columns
        assert columns["d_bytes"].width >= 13  # +16,777,216 fits with its separators
        assert "+16,777,216" in screen_text(app)
        assert "Sort Private▼" in screen_text(app)


async def test_levels_and_cursor_are_distinct_in_colour_and_without() -> None:
    from pooltop.app.rows import RowPainter
    from pooltop.judge import LeakLevel

    for symbols in (False, True):
        app = build_app(windows=True, symbols=symbols)
        async with app.run_test(size=(140, 30)) as pilot:
            await advance(pilot, 1)
            table = app.table
            painter = RowPainter(table._style, symbols)
            rows = {level: painter._combo(level, False, None) for level in LeakLevel}
            cursor = painter._combo(LeakLevel.STABLE, True, None)
            if not symbols:  # colour: five different backgrounds
                backgrounds = {style.bgcolor for style in (*rows.values(), cursor)}
                assert len(backgrounds) == 5
            else:  # NO_COLOR: the cursor's row is reversed, and the Leak column's label styles differ
                assert cursor.reverse
            labels = [table._style(f"pool-table--label-{name}") for name in ("watch", "suspect", "leak")]
            assert labels[0].italic and labels[1].bold and labels[2].reverse
            assert len({(s.italic, s.bold, s.reverse) for s in labels}) == 3
