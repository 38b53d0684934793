"""Pilot tests: every key, sorting, filtering, baseline, the detail pane, failures (scripted sources)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input
from tui_fakes import MARKUP_TAG, ODD_TAG, ChurnSource, ScriptedSource
from tui_screen import screen_text
from tui_support import advance, build_app, settle

from pooltop.app import PooltopApp
from pooltop.app.help import HelpScreen
from pooltop.app.keys import KEYS, PooltopCommands, bindings
from pooltop.app.table import PoolTable
from pooltop.judge import LeakLevel
from pooltop.model import Pool, Snapshot


def tags(app: PooltopApp) -> list[str]:
    m = app.model
    return [m.counters.tags[int(i)] for i in m.order]


def screen_rows(app: PooltopApp) -> list[str]:
    """The table's rows as on screen (the lines after its title line)."""
    lines = screen_text(app).splitlines()
    title = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("Tag", "Process"))
                 and "Bytes" in line)
    return lines[title + 1:]


def pools(app: PooltopApp) -> set[Pool]:
    m = app.model
    return {Pool(int(m.counters.pools[int(i)])) for i in m.order}


async def test_first_sample_fills_table_and_header(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 0)
        assert windows_app.samples_applied == 1
        text = screen_text(windows_app)
        assert "testhost" in text and "Windows 10.0.22631" in text
        assert "Paged 286.1 MiB" in text and "Nonpaged 190.7 MiB" in text
        assert "Leak" in text and "Stab" in text


@pytest.mark.parametrize(
    ("key", "sort", "first"),
    [("t", "tag", "Io  "), ("a", "allocs", "Saw "), ("f", "frees", "Saw "), ("d", "diff", "Leak"),
     ("b", "bytes", "Stab"), ("m", "peralloc", "Stab")],
)
async def test_poolmon_sort_keys(windows_app: PooltopApp, key: str, sort: str, first: str) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 6)
        if key == "b":
            await pilot.press("t")  # bytes is the default: start elsewhere
        await pilot.press(key)
        assert windows_app.model.settings.sort == sort
        assert tags(windows_app)[0] == first
        await pilot.press("r")
        assert tags(windows_app)[-1] == first
        await pilot.press(key)  # the key sorts its default way again (r reverses, not the key)
        assert tags(windows_app)[0] == first


async def test_sort_order_matches_values(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 6)
        await pilot.press("d")
        m = windows_app.model
        diffs = [int(m.counters.diff[int(i)]) for i in m.order]
        assert diffs == sorted(diffs, reverse=True)
        await pilot.press("r")
        diffs = [int(m.counters.diff[int(i)]) for i in m.order]
        assert diffs == sorted(diffs)
        assert windows_app.model.settings.descending is False
        await pilot.press("t")
        assert tags(windows_app) == sorted(tags(windows_app))


async def test_parentheses_cycle_change_columns(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 6)
        await pilot.press("right_parenthesis")  # from Bytes: its change column
        assert windows_app.model.settings.sort == "dbytes"
        assert tags(windows_app)[0] == "Leak"  # +23,040 bytes per refresh
        await pilot.press("right_parenthesis")
        assert windows_app.model.settings.sort == "dallocs"
        await pilot.press("left_parenthesis")
        await pilot.press("left_parenthesis")
        assert windows_app.model.settings.sort == "ddiff"


async def test_linux_skips_alloc_columns(linux_app: PooltopApp) -> None:
    async with linux_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 3)
        await pilot.press("a")
        assert linux_app.model.settings.sort == "bytes"  # refused, with a note
        keys = [lc.column.key for lc in linux_app.table.columns]
        assert "allocs" not in keys and "frees" not in keys and "pool" not in keys
        await pilot.press("right_parenthesis")
        await pilot.press("right_parenthesis")
        assert linux_app.model.settings.sort == "ddiff"  # dbytes -> (wraps past the alloc columns) ddiff


async def test_p_cycles_pools_and_s_session(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 2)
        assert Pool.SESSION in pools(windows_app)
        await pilot.press("p")
        assert pools(windows_app) == {Pool.NONPAGED}
        await pilot.press("p")
        assert pools(windows_app) == {Pool.PAGED}
        await pilot.press("p")
        assert Pool.NONPAGED in pools(windows_app) and Pool.PAGED in pools(windows_app)
        await pilot.press("s")
        assert pools(windows_app) == {Pool.SESSION}
        assert "Pools session" in screen_text(windows_app)
        await pilot.press("s")
        assert len(pools(windows_app)) == 3


async def test_linux_p_and_s_explain_themselves(linux_app: PooltopApp) -> None:
    async with linux_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        before = tags(linux_app)
        await pilot.press("s")
        await pilot.press("p")
        await pilot.pause()
        messages = [n.message for n in linux_app._notifications]
        assert "no session pool on this backend" in messages
        assert any("one kind of pool" in m for m in messages)
        assert tags(linux_app) == before


async def test_filter_matches_tag_owner_description(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 4)
        await pilot.press("slash")
        box = windows_app.query_one("#filter", Input)
        assert box.has_focus
        await pilot.press(*"LEAK")  # case-insensitive, tag
        assert tags(windows_app) == ["Leak"]
        box.value = ""
        await pilot.press(*"io.sys")  # owner
        assert tags(windows_app) == ["Io  "]
        box.value = ""
        await pilot.press(*"cyclic")  # description
        assert tags(windows_app) == ["Saw "]
        box.value = ""
        await pilot.press(*"S?a*")  # wildcards, anchored: Stab (tag), not sawtooth.sys
        assert tags(windows_app) == ["Stab"]
        await pilot.press("enter")
        assert not box.has_class("-open")
        assert windows_app.table.has_focus
        assert "Filter S?a*" in screen_text(windows_app)
        await advance(pilot, 1)  # the filter holds for new samples
        assert tags(windows_app) == ["Stab"]
        # Esc in the filter box restores the filter that was in force.
        await pilot.press("slash")
        box.value = ""
        await pilot.press(*"leak")
        assert tags(windows_app) == ["Leak"]
        await pilot.press("escape")
        assert tags(windows_app) == ["Stab"]
        assert windows_app.is_running  # Esc closed the filter, it did not quit


async def test_filter_keys_do_not_trigger_commands(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 1)
        await pilot.press("slash", "q", "t", "b")
        assert windows_app.is_running
        assert windows_app.model.settings.sort == "bytes"
        assert windows_app.query_one("#filter", Input).value == "qtb"


async def test_a_filter_typed_in_one_burst_lands_in_the_box(windows_app: PooltopApp) -> None:
    # All keys queued at once (a fast typist, a paste through the terminal): the ones after "/"
    # were routed to the table before the box opened; none may sort or toggle it.
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 2)
        settings = windows_app.model.settings
        before = (settings.sort, settings.since_baseline, settings.highlight, settings.show_totals)
        for key in ("slash", *"mace", "enter"):
            windows_app.post_message(events.Key(key, None if key in ("slash", "enter") else key))
        await settle(pilot)
        assert windows_app.filter_input.value == "mace"
        assert settings.filter == "mace" and not windows_app.filter_input.has_class("-open")
        assert (settings.sort, settings.since_baseline, settings.highlight, settings.show_totals) == before
        assert windows_app.focused is windows_app.table


async def test_slash_is_a_character_in_the_filter_box_and_on_other_screens(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("h")
        assert isinstance(windows_app.screen, HelpScreen)
        await pilot.press("slash")
        assert not windows_app.filter_input.has_class("-open")  # the help screen stays in charge
        await pilot.press("escape")
        await pilot.press("slash", "a", "slash", "b")
        assert windows_app.filter_input.value == "a/b"


async def test_space_pauses_sampling() -> None:
    source = ScriptedSource()
    app = build_app(source=source, autorefresh=True, interval=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        while app.samples_applied < 3:
            await pilot.pause(0.05)
        await pilot.press("space")
        assert app.paused
        await settle(pilot)
        calls = source.calls
        await pilot.pause(0.3)
        assert source.calls == calls
        assert "PAUSED" in screen_text(app)
        await pilot.press("space")
        assert not app.paused
        while source.calls <= calls + 1:
            await pilot.pause(0.05)


async def test_plus_minus_change_interval(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 0)
        await pilot.press("plus")
        assert windows_app.interval == 2.0
        assert "every 2 s" in screen_text(windows_app)
        await pilot.press("minus", "minus")
        assert windows_app.interval == 0.5
        for _ in range(10):
            await pilot.press("minus")
        assert windows_app.interval == 0.25


async def test_z_sets_baseline_and_c_toggles_change_mode(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 5)
        m = windows_app.model
        sample = m.sample
        assert sample is not None
        assert not m.settings.since_baseline
        await pilot.press("c")
        assert m.settings.since_baseline
        leak = m.counters.index()[("Leak", int(Pool.NONPAGED))]
        assert m.changes is not None and int(m.changes.bytes[leak]) == 5 * 90 * 256  # since sample 0
        await pilot.press("c")
        assert int(m.changes.bytes[leak]) == 90 * 256  # per refresh
        await pilot.press("z")
        await settle(pilot)
        assert m.settings.since_baseline  # z switches to "since baseline"
        # The sample on screen when z was pressed is the baseline: one refresh of change since.
        leak = m.counters.index()[("Leak", int(Pool.NONPAGED))]
        assert int(m.changes.bytes[leak]) == 90 * 256
        assert not m.sample.since_baseline.is_new.any()  # New! is no longer new
        assert "*New!" not in screen_text(windows_app)
        assert "since baseline" in screen_text(windows_app)


async def test_new_and_vanished_tags_are_marked(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 4)
        text = screen_text(windows_app)
        assert "*New!" in text
        assert "1 gone: Gone" in text
        assert "Gone " not in tags(windows_app)


async def test_e_shows_totals(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 1)
        assert "Totals" not in screen_text(windows_app)
        await pilot.press("e")
        text = screen_text(windows_app)
        assert "Totals" in text and "Nonp:" in text and "Sess:" in text
        await pilot.press("e")
        assert "Totals" not in screen_text(windows_app)


async def test_l_toggles_highlighting(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 3)
        table = windows_app.table
        pos = windows_app.model.position_of(("Leak", int(Pool.NONPAGED)))
        assert pos is not None
        table.move_cursor(0 if pos else 1)  # keep the cursor off the Leak row

        def bytes_style(position: int) -> object:
            strip = table._row_strip(position, table.scrollable_content_region.width)
            cells = [seg for seg in strip if f"{256 * (100 + 90 * 3):,}" in seg.text]
            return cells[0].style

        highlighted = bytes_style(pos)
        await pilot.press("l")
        assert not windows_app.model.settings.highlight
        plain = bytes_style(pos)
        assert highlighted != plain
        assert "highlight off" in screen_text(windows_app)


async def test_leak_rows_stand_out(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 6)
        m = windows_app.model
        leak_row = m.counters.index()[("Leak", int(Pool.NONPAGED))]
        saw_row = m.counters.index()[("Saw ", int(Pool.PAGED))]
        assert m.level(leak_row) is LeakLevel.LEAK
        assert m.level(saw_row) is LeakLevel.STABLE
        table = windows_app.table
        table.move_cursor(len(m) - 1)
        width = table.scrollable_content_region.width

        def backgrounds(key: tuple[str, int]) -> set[object]:
            strip = table._row_strip(m.position_of(key) or 0, width)
            return {seg.style.bgcolor for seg in strip if seg.style}

        leak_bg = backgrounds(("Leak", 0))
        saw_bg = backgrounds(("Saw ", 1))
        assert leak_bg != saw_bg
        text = screen_text(windows_app)
        assert "LEAK" in text and "suspect" in text and "1 leak" in text


async def test_help_screen_from_key_table(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 60)) as pilot:
        await advance(pilot, 1)
        for key in ("h", "question_mark"):
            await pilot.press(key)
            assert isinstance(windows_app.screen, HelpScreen)
            text = screen_text(windows_app)
            for spec in KEYS[:10]:
                assert spec.description in text
            await pilot.press("escape")
            assert not isinstance(windows_app.screen, HelpScreen)
        assert windows_app.is_running


async def test_every_key_has_a_binding_and_an_action() -> None:
    app = build_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        bound = {b.key for b in [*bindings("app"), *bindings("table")]}  # type: ignore[union-attr]
        for spec in KEYS:
            for key in spec.keys:
                assert key in bound
            name = spec.action.split("(")[0]
            target = app.table if spec.scope == "table" else app
            assert callable(getattr(target, f"action_{name}", None)), spec.action


async def test_enter_opens_detail_with_owners_and_big_pool(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 50)) as pilot:
        await advance(pilot, 6)
        await pilot.press("d", "home")  # Leak first (the cursor follows its row across sorts)
        await pilot.press("enter")
        await settle(pilot)
        assert windows_app.detail.has_class("-open")
        text = screen_text(windows_app)
        assert "leaky.sys" in text and "version 1.2.3.4" in text and "Contoso" in text and "signed" in text
        assert "[call-site, scan]" in text and "oldleaky.sys" in text and "via Lea?" in text
        assert "3 allocations" in text and "0xffffa00000020000" in text
        assert "leak: leak" in text
        # The pane follows the cursor.
        await pilot.press("down")
        await settle(pilot)
        assert "sawtooth.sys" in screen_text(windows_app)
        # Esc closes the pane.
        await pilot.press("escape")
        assert not windows_app.detail.has_class("-open")
        assert windows_app.is_running


async def test_detail_on_linux_shows_aliases_and_no_big_pool(linux_app: PooltopApp) -> None:
    async with linux_app.run_test(size=(120, 50)) as pilot:
        await advance(pilot, 3)
        await pilot.press("d", "home", "enter")
        await settle(pilot)
        text = screen_text(linux_app)
        assert "SLUB aliases" in text and "kmalloc-256, filp" in text
        assert "not available: linux-slab has no big-pool allocation list" in text
        assert "allocs" not in text.split("SLUB")[0].split("Leak")[-1]  # no alloc counts on Linux


async def test_x_exports_json_atomically(tmp_path: Path) -> None:
    app = build_app(export_path=str(tmp_path))
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 3)
        await pilot.press("p")  # nonpaged only: the export holds what is shown
        await pilot.press("x")
        files = list(tmp_path.iterdir())
        assert [f.name for f in files] == ["pooltop-testhost-20240501-120003.json"]
        doc = json.loads(files[0].read_text())
        assert doc["schema"] == "pooltop.snapshot/1"
        assert [c["tag"] for c in doc["counters"]] == tags(app)
        assert all(c["pool"] == "nonpaged" for c in doc["counters"])
        leak = next(c for c in doc["counters"] if c["tag"] == "Leak")
        assert leak["owners"][0]["owner"] == "leaky.sys"
        assert "change" in leak and "leak" in leak
        assert any(str(files[0]) in n.message for n in app._notifications)


async def test_x_export_folder_and_format_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POOLTOP_EXPORT_DIR", str(tmp_path))
    monkeypatch.setenv("POOLTOP_EXPORT_FORMAT", "csv")
    app = build_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("x")
        await pilot.press("x")  # a second export never replaces the first
        out = tmp_path / "pooltop-testhost-20240501-120001.csv"
        assert out.read_text().startswith("tag,pool,allocs")
        assert (tmp_path / "pooltop-testhost-20240501-120001-2.csv").exists()
        assert any(str(out) in n.message for n in app._notifications)


async def test_x_export_failure_is_a_notification(tmp_path: Path) -> None:
    app = build_app(export_path=str(tmp_path / "missing"))
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("x")
        assert any("not a folder" in n.message and n.severity == "error" for n in app._notifications)
        assert app.is_running


async def test_q_quits(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("q")
        await pilot.pause()
        assert not windows_app.is_running


async def test_escape_never_quits(windows_app: PooltopApp) -> None:
    # Issue 17: Esc closes the filter box, the detail pane and help, and clears an applied filter;
    # pressed with nothing left to close it still never quits (q does).
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 2)
        await pilot.press("slash", *"leak", "enter")
        assert windows_app.model.settings.filter == "leak"
        await pilot.press("enter")
        await settle(pilot)
        assert windows_app.detail.has_class("-open")
        await pilot.press("escape")
        assert not windows_app.detail.has_class("-open")
        assert windows_app.model.settings.filter == "leak"
        await pilot.press("escape")
        assert windows_app.model.settings.filter == ""
        assert len(windows_app.model) == len(windows_app.model.counters)
        for _ in range(3):
            await pilot.press("escape")
            await pilot.pause()
        assert windows_app.is_running
        await pilot.press("h", "escape", "escape")
        assert not isinstance(windows_app.screen, HelpScreen)
        assert windows_app.is_running


async def test_header_click_sorts_and_reverses(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 4)
        table = windows_app.table
        by_key = {lc.column.key: lc for lc in table.columns}
        await pilot.click(PoolTable, offset=(by_key["diff"].x + 2, 0))
        assert windows_app.model.settings.sort == "diff"
        assert windows_app.model.settings.descending
        await pilot.click(PoolTable, offset=(by_key["diff"].x + 2, 0))
        assert not windows_app.model.settings.descending
        await pilot.click(PoolTable, offset=(by_key["tag"].x, 0))
        assert windows_app.model.settings.sort == "tag"
        await pilot.click(PoolTable, offset=(by_key["leak"].x, 0))
        assert windows_app.model.settings.sort == "leak"
        assert tags(windows_app)[0] == "Leak"
        # A click on a row selects it; a double click opens the detail.
        await pilot.click(PoolTable, offset=(3, 3))
        assert table.cursor == 2
        await pilot.double_click(PoolTable, offset=(3, 3))
        await settle(pilot)
        assert windows_app.detail.has_class("-open")


async def test_a_new_sort_shows_the_top_with_the_cursor_on_the_first_row(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(140, 12)) as pilot:
        await advance(pilot, 4)
        table = windows_app.table
        await pilot.press("end")  # the cursor on the last row, the window scrolled down
        assert table.cursor == len(windows_app.model) - 1 and table.scroll_y > 0
        await pilot.press("t")
        await pilot.pause()
        assert table.cursor == 0 and table.scroll_y == 0
        assert table.selected_key == windows_app.model.row_key(0)
        assert screen_rows(windows_app)[0].split()[0] == "▶" + tags(windows_app)[0].strip()  # cursor mark
        await pilot.press("down", "down", "slash", "s", "enter")  # a filter: the top again
        assert table.cursor == 0 and table.scroll_y == 0


async def test_cursor_keeps_its_place_not_its_row_as_rows_resort() -> None:
    app = build_app(source=ChurnSource())
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("right_parenthesis")  # dBytes: the order changes every sample
        table = app.table
        assert table.cursor == 0
        tops = set()
        for _ in range(4):  # untouched, the cursor stays on the first row whatever is there
            await advance(pilot, 1)
            assert table.cursor == 0 and table.selected_key == app.model.row_key(0)
            tops.add(table.selected_key)
        assert len(tops) > 1  # the rows really moved under it
        await pilot.press("down", "down")
        for _ in range(3):  # moved: it keeps that place on screen, whatever row comes there
            await advance(pilot, 1)
            assert table.cursor == 2 and table.selected_key == app.model.row_key(2)


async def test_a_pinned_row_is_followed_across_samples_and_sorts() -> None:
    app = build_app(source=ChurnSource())
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("right_parenthesis", "down", "down", "down")
        table = app.table
        key = table.selected_key
        await pilot.press("F")
        assert table.pinned_key == key
        assert "Pinned " + key[0].strip() in screen_text(app)
        for _ in range(4):
            await advance(pilot, 1)
            assert table.selected_key == key and table.cursor == app.model.position_of(key)
        await pilot.press("t")
        assert table.selected_key == key
        await pilot.press("F")
        assert table.pinned_key is None
        assert "Pinned" not in screen_text(app)


async def test_wheel_scrolling_survives_refreshes() -> None:
    app = build_app(source=ChurnSource(rows=80))
    async with app.run_test(size=(120, 24)) as pilot:
        await advance(pilot, 1)
        await pilot.press("right_parenthesis")
        table = app.table
        for _ in range(3):  # the mouse wheel, as the terminal reports it
            table.post_message(events.MouseScrollDown(table, 10, 5, 0, 1, 0, False, False, False))
        await pilot.pause()
        scrolled = table.scroll_y
        assert scrolled > 0
        await advance(pilot, 3)
        assert table.scroll_y == scrolled
        assert table.cursor == 0  # the cursor was never moved: it stays on the first row


async def test_markup_and_control_characters_render_literally(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(160, 36)) as pilot:
        await advance(pilot, 1)
        text = screen_text(windows_app)
        assert MARKUP_TAG.strip() in text
        assert "[red]evil[/red]" in text
        assert ODD_TAG.strip() in text  # "\x01A" as the four characters backslash-x-0-1
        assert "\x01" not in text


async def test_source_failure_keeps_ui_alive_and_retries() -> None:
    source = ScriptedSource(fail_at=[2])
    app = build_app(source=source)
    async with app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 2)
        assert app.error is not None
        text = screen_text(app)
        assert "sampling failed" in text and "STATUS_ACCESS_DENIED" in text
        assert "Leak" in text  # the last good sample stays
        await advance(pilot, 1)
        assert app.error is None
        assert "sampling failed" not in screen_text(app)


async def test_backend_warnings_show_in_header() -> None:
    app = build_app(source=ScriptedSource(warnings=("not Administrator: session pool not readable",)))
    async with app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 1)
        assert "⚠ not Administrator: session pool not readable" in screen_text(app)


async def test_slow_sample_does_not_freeze_input() -> None:
    release = threading.Event()

    class SlowSource(ScriptedSource):
        def sample(self) -> Snapshot:
            if self.calls >= 1:
                release.wait(10)
            return super().sample()

    app = build_app(source=SlowSource())
    async with app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 0)
        app.request_sample()  # blocks in the worker until released
        await pilot.pause()
        await pilot.press("t", "e", "c")
        assert app.model.settings.sort == "tag" and app.model.settings.show_totals
        await pilot.press("h")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        release.set()
        await settle(pilot)
        assert app.samples_applied == 2


async def test_command_palette_runs_commands(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 2)
        await pilot.press("ctrl+p")
        assert isinstance(windows_app.screen, CommandPalette)
        await pilot.press(*"Sort by tag")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert windows_app.model.settings.sort == "tag"


async def test_command_provider_offers_every_app_key(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 0)
        provider = PooltopCommands(windows_app.screen)
        found = [hit.text async for hit in provider.discover()]
        assert found == [s.description for s in KEYS if s.scope == "app" and not s.replay]
        hits = [hit.text async for hit in provider.search("export")]
        assert hits and "Export" in str(hits[0])


async def test_resize_to_80x24_hides_low_priority_columns(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(200, 50)) as pilot:
        await advance(pilot, 2)
        wide = [lc.column.key for lc in windows_app.table.columns]
        assert "d_frees" in wide and "owner" in wide
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        narrow = [lc.column.key for lc in windows_app.table.columns]
        assert {"tag", "bytes", "d_bytes", "leak", "diff"} <= set(narrow)
        assert "d_frees" not in narrow and "allocs" not in narrow
        last = windows_app.table.columns[-1]
        assert last.x + last.width <= 80
        for line in screen_text(windows_app).splitlines():
            assert len(line) <= 80


async def test_no_color_adds_symbols() -> None:
    app = build_app(symbols=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await advance(pilot, 3)
        text = screen_text(app)
        assert "▲" in text  # Leak's values went up this sample


async def test_run_live_closes_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    import pooltop.app as app_pkg
    import pooltop.native as native

    source = ScriptedSource()
    ran: list[PooltopApp] = []
    monkeypatch.setattr(native, "open_source", lambda platform=None: source)
    monkeypatch.setattr(app_pkg.PooltopApp, "run", lambda self, *a, **k: ran.append(self))
    app_pkg.run_live(interval=2.0, owners=lambda tag, pool: ())
    assert ran and ran[0].interval == 2.0
    assert source.closed



async def test_samples_arrive_while_help_or_palette_is_open(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(120, 30)) as pilot:
        await advance(pilot, 1)
        await pilot.press("h")
        await advance(pilot, 1)
        assert windows_app.samples_applied == 3
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await advance(pilot, 1)
        assert windows_app.samples_applied == 4
        assert windows_app.is_running


async def test_sampling_continues_when_a_sample_takes_longer_than_the_interval() -> None:
    class SlowerThanInterval(ScriptedSource):
        def sample(self) -> Snapshot:
            time.sleep(0.08)
            return super().sample()

    app = build_app(source=SlowerThanInterval(), autorefresh=True, interval=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(200):
            if app.samples_applied >= 4:
                break
            await pilot.pause(0.05)
        assert app.samples_applied >= 4
        assert "sampling took" in screen_text(app)  # a slow source is called out in the header


async def test_q_quits_even_with_the_detail_pane_open(windows_app: PooltopApp) -> None:
    async with windows_app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, 2)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not windows_app.is_running
