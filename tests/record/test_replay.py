from __future__ import annotations

import threading

import pytest
from helpers import as_dict, churn

from pooltop.errors import BadInput
from pooltop.record import RecordingWriter
from pooltop.record.replay import ReplaySource


@pytest.fixture
def recorded(tmp_path):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "rec.db")
    snaps = churn(30, 9)
    with RecordingWriter(path, snaps[0], full_every=4) as w:
        for s in snaps:
            w.append(s)
    return path, snaps


def test_plays_every_sample_in_order_then_stays_at_the_end(recorded) -> None:  # type: ignore[no-untyped-def]
    path, snaps = recorded
    with ReplaySource(path) as src:
        got = [src.sample() for _ in range(len(snaps) + 3)]
    assert [as_dict(s) for s in got[: len(snaps)]] == [as_dict(s) for s in snaps]
    assert as_dict(got[-1]) == as_dict(snaps[-1])
    times = [s.monotonic_ns for s in got[: len(snaps)]]
    assert times == sorted(times) and times[1] - times[0] == 1_000_000_000  # the recording's clock


def test_seek_step_and_speed(recorded) -> None:  # type: ignore[no-untyped-def]
    path, snaps = recorded
    with ReplaySource(path, start=-1) as src:
        assert src.position == len(snaps) - 1 and src.at_end
        src.seek(10)
        assert as_dict(src.current()) == as_dict(snaps[10]) and src.generation == 1
        src.step()
        assert as_dict(src.current()) == as_dict(snaps[11]) and src.generation == 1  # forward: no jump
        src.step(-5)
        assert as_dict(src.current()) == as_dict(snaps[6]) and src.generation == 2
        src.speed = 3
        src.sample()
        assert src.position == 9
        src.speed = 0  # paused
        src.sample()
        assert src.position == 9
        src.seek(1000)
        assert src.position == len(snaps) - 1


def test_sampling_from_another_thread(recorded) -> None:  # type: ignore[no-untyped-def]
    path, snaps = recorded
    out = []
    with ReplaySource(path) as src:
        t = threading.Thread(target=lambda: out.append(src.sample()))
        t.start()
        t.join()
    assert as_dict(out[0]) == as_dict(snaps[0])


def test_empty_or_bad_files(tmp_path) -> None:
    bad = tmp_path / "x.db"
    bad.write_text("nope")
    with pytest.raises(BadInput):
        ReplaySource(str(bad))
