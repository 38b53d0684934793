"""Helpers for the live-view tests: build the app around a scripted source, step it sample by sample."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from textual.pilot import Pilot
from tui_fakes import ScriptedSource, fake_owners

from pooltop.app import PooltopApp, create_app
from pooltop.judge import JudgeThresholds
from pooltop.tracking import Tracker

#: The scripted sources take a handful of one-second samples: the judge's evidence windows are
#: shrunk to fit (the live defaults need minutes), so the leak rows these tests draw are leaks.
SHORT_WINDOWS = JudgeThresholds(suspect_window_s=2, leak_window_s=4, suspect_min_growth_bytes=1024)


def build_app(windows: bool = True, **kwargs: Any) -> PooltopApp:
    """The live view around a scripted source, sampling only when a test says so."""
    source = kwargs.pop("source", None) or ScriptedSource(windows=windows)
    kwargs.setdefault("owners", fake_owners)
    kwargs.setdefault("autorefresh", False)
    kwargs.setdefault("tz", dt.UTC)
    kwargs.setdefault("symbols", False)
    kwargs.setdefault("tracker", Tracker(SHORT_WINDOWS))
    return create_app(source, **kwargs)


async def settle(pilot: Pilot[Any], timeout: float = 30.0) -> None:
    """Let the sampling thread and workers finish and their messages be handled."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    for _ in range(3):
        while isinstance(app, PooltopApp) and not app.sampling_idle:
            if time.monotonic() > deadline:
                raise AssertionError("the sampling thread did not go idle")
            await asyncio.sleep(0.002)
        await app.workers.wait_for_complete()
        await pilot.pause()


async def advance(pilot: Pilot[Any], samples: int = 1) -> None:
    """Take `samples` more samples, one after the other, and wait until each is on screen."""
    app = pilot.app
    assert isinstance(app, PooltopApp)
    await settle(pilot)
    for _ in range(samples):
        app.request_sample()
        await settle(pilot)
