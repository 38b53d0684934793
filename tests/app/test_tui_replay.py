"""The replay time cursor (`pooltop view FILE`): a real recording written from the scripted snapshots.

The recording holds make_snapshot(0..SAMPLES-1) of tui_fakes (one second apart), written with
RecordingWriter in each test; sample i's Leak row has 1000 + 100*i allocations, so the allocation
count tells which sample is on screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_fakes import make_snapshot
from tui_screen import screen_text
from tui_support import build_app, settle

from pooltop.app import PooltopApp
from pooltop.app.help import help_text
from pooltop.app.keys import palette_specs
from pooltop.record import RecordingWriter
from pooltop.record.replay import ReplaySource, SequenceSource

SAMPLES = 25


@pytest.fixture
def recording(tmp_path: Path) -> str:
    path = str(tmp_path / "scripted.db")
    with RecordingWriter(path, make_snapshot(0), interval_s=1.0) as writer:
        for i in range(SAMPLES):
            writer.append(make_snapshot(i))
    return path


@pytest.fixture
def replay(recording: str) -> Iterator[ReplaySource]:
    source = ReplaySource(recording)
    yield source
    source.close()


def shown_index(app: PooltopApp) -> int:
    """Which recorded sample is on screen (from the Leak row's allocation count)."""
    m = app.model
    row = m.counters.index()[("Leak", 0)]
    return (int(m.counters.allocs[row]) - 1000) // 100


async def test_replay_starts_on_the_first_sample_with_a_replay_header(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        assert shown_index(app) == 0 and app.replay_position == 0
        text = screen_text(app)
        assert "replay: sample 1/25" in text and "2024-05-01 12:00:00" in text and "speed 1×" in text
        assert "[" in text and "Back" in text  # the footer offers the time cursor


async def test_brackets_step_one_sample(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert shown_index(app) == 1
        assert "replay: sample 2/25" in screen_text(app)
        # One step forward continues the tracking: the change column holds one sample's change.
        sample = app.model.sample
        assert sample is not None and sample.sample_number == 2
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert shown_index(app) == 0
        # Back is a jump: the Tracker started over, no delta across it.
        sample = app.model.sample
        assert sample is not None and sample.sample_number == 1
        assert not sample.interval.bytes.any()


async def test_braces_step_ten_samples_and_reset_tracking(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await pilot.press("right_curly_bracket")
        await settle(pilot)
        assert shown_index(app) == 10
        sample = app.model.sample
        assert sample is not None and sample.sample_number == 1  # a jump: tracking starts over
        assert not sample.interval.bytes.any() and not sample.since_baseline.bytes.any()
        await pilot.press("right_curly_bracket", "right_curly_bracket")
        await settle(pilot)
        assert shown_index(app) == SAMPLES - 1  # clamped at the end
        await pilot.press("left_curly_bracket")
        await settle(pilot)
        assert shown_index(app) == SAMPLES - 11


async def test_home_and_end_jump_to_the_ends(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)
        assert shown_index(app) == SAMPLES - 1
        assert "sample 25/25" in screen_text(app) and "end of the recording" in screen_text(app)
        await pilot.press("home")
        await settle(pilot)
        assert shown_index(app) == 0


async def test_home_and_end_move_the_row_cursor_when_live() -> None:
    app = build_app()
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await pilot.press("end")
        assert app.table.cursor == len(app.model) - 1
        await pilot.press("home")
        assert app.table.cursor == 0
        assert "replay:" not in screen_text(app) and "Back" not in screen_text(app)


async def test_playback_moves_speed_samples_per_refresh(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        app.request_sample()
        await settle(pilot)
        assert shown_index(app) == 1
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert app.replay_speed == 4 and replay.speed == 4
        assert "speed 4×" in screen_text(app)
        app.request_sample()
        await settle(pilot)
        assert shown_index(app) == 5
        sample = app.model.sample
        assert sample is not None and sample.sample_number == 3  # stepping on is not a jump
        await pilot.press("less_than_sign")
        assert replay.speed == 2
        for _ in range(3):
            await pilot.press("less_than_sign")
        assert replay.speed == 1  # never below one sample per refresh


async def test_space_pauses_playback(replay: ReplaySource) -> None:
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        assert app.paused and replay.speed == 0
        assert "speed paused" in screen_text(app)
        app.request_sample()  # a tick while paused shows nothing new
        await settle(pilot)
        assert shown_index(app) == 0 and app.samples_applied == 1
        await pilot.press("right_square_bracket")  # the cursor still moves while paused
        await settle(pilot)
        assert shown_index(app) == 1
        await pilot.press("space")
        assert not app.paused and replay.speed == 1


async def test_replay_at_the_end_shows_nothing_new(replay: ReplaySource) -> None:
    replay.seek(-1)
    app = build_app(source=replay)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        assert shown_index(app) == SAMPLES - 1
        app.request_sample()
        await settle(pilot)
        assert app.samples_applied == 1
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.samples_applied == 1  # nothing to step to: no zero-time delta


async def test_sequence_source_works_the_same() -> None:
    source = SequenceSource([make_snapshot(i) for i in range(12)], speed=0)
    app = build_app(source=source)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        assert app.paused and shown_index(app) == 0  # speed 0 starts paused
        await pilot.press("right_curly_bracket")
        await settle(pilot)
        assert shown_index(app) == 10
        await pilot.press("end")
        await settle(pilot)
        assert shown_index(app) == 11


def test_replay_keys_are_listed_only_when_replaying() -> None:
    assert "One sample back" in help_text(False, replay=True).plain
    assert "One sample back" not in help_text(False).plain
    assert any(s.action == "replay_step(1)" for s in palette_specs(replay=True))
    assert not any(s.replay for s in palette_specs())
