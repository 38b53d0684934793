"""A recording read as matrices: every sample, reduced to intervals that keep their last, lowest and
highest value. Expectations come from the snapshots written, never from the reader."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
import sys
import zlib

import numpy as np
import pytest
from frame_encoder import encode
from helpers import churn, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.model import Pool, Snapshot, Totals
from pooltop.record import Recording, RecordingWriter, read_series
from pooltop.record.codec import DamagedFrame, decode_frames

NP = int(Pool.NONPAGED)


def write(path: str, snaps: list[Snapshot], full_every: int = 300) -> None:
    with RecordingWriter(path, snaps[0], interval_s=1.0, full_every=full_every) as w:
        for s in snaps:
            w.append(s)


def with_totals(snaps: list[Snapshot]) -> list[Snapshot]:
    """Totals that change, and fields that come and go."""
    return [
        dataclasses.replace(s, totals=Totals(paged_pool=1000 + 7 * i, commit=(i * 13) if i % 5 else None))
        for i, s in enumerate(snaps)
    ]


def bytes_of(snap: Snapshot) -> dict[tuple[str, int], int]:
    c = snap.counters
    return {k: int(c.bytes[i]) for i, k in enumerate(c.keys())}


def intervals(n: int, points: int) -> list[range]:
    ends = [(b + 1) * n // points - 1 for b in range(points)]
    return [range(ends[b - 1] + 1 if b else 0, ends[b] + 1) for b in range(points)]


def check_series(path: str, snaps: list[Snapshot], points: int) -> None:
    with Recording(path) as rec:
        series = read_series(rec, max_points=points)
    spans = intervals(len(snaps), min(points, len(snaps)))
    assert len(series.seconds) == len(spans) and series.samples == len(snaps) and series.damage is None
    for p, span in enumerate(spans):
        last = snaps[span[-1]]
        assert series.taken_at[p] == last.taken_at
        assert series.totals[p] == last.totals
        for j, key in enumerate(series.keys):
            seen = [b[key] for b in map(bytes_of, (snaps[i] for i in span)) if key in b]
            now = bytes_of(last).get(key)
            got_last = series.columns["bytes"][p, j]
            assert (math.isnan(got_last) if now is None else got_last == now), (p, key)
            low, high = series.minimum["bytes"][p, j], series.maximum["bytes"][p, j]
            if seen:
                assert (low, high) == (min(seen), max(seen)), (p, key)
            else:
                assert math.isnan(low) and math.isnan(high), (p, key)


@given(st.integers(0, 10_000), st.integers(1, 12), st.sampled_from([3, 7, 16, 200]))
@settings(max_examples=25, deadline=None)
def test_every_sample_is_in_some_interval(tmp_path_factory, seed: int, full_every: int, points: int) -> None:
    path = str(tmp_path_factory.mktemp("s") / "rec.db")
    snaps = with_totals(churn(60, seed))
    write(path, snaps, full_every)
    check_series(path, snaps, points)


def test_a_spike_between_points_and_a_late_leak_are_kept(tmp_path) -> None:
    n = 1000
    rows = []
    for i in range(n):
        spike = 50_000_000 if i == 333 else 0  # one sample high, far from any interval's end
        late = 4096 * max(0, i - 990)  # grows only in the last ten samples
        rows.append(make_snapshot([("Spik", NP, i, i, 1_000_000 + spike), ("Late", NP, i, 0, 8192 + late)],
                                  float(i)))
    path = str(tmp_path / "rec.db")
    write(path, rows)
    with Recording(path) as rec:
        series = read_series(rec, max_points=20)
    spik, late = series.keys.index(("Spik", NP)), series.keys.index(("Late", NP))
    assert series.samples == n and len(series.seconds) == 20
    assert series.maximum["bytes"][:, spik].max() == 51_000_000
    assert series.columns["bytes"][:, spik].max() == 1_000_000  # the spike is no interval's last sample
    assert series.columns["bytes"][-1, late] == 8192 + 4096 * 9
    assert series.columns["bytes"][-2, late] == 8192


# --- the batch decoder, against frames encoded here by hand ---------------------------------------


def test_decode_frames_reads_every_width_at_any_alignment() -> None:
    frames = [
        encode([1, 2, 300], [], [[5, -6, 7], [70000, 2, 3]], 0b101, [2**40, -1],
               ["<i2", "<i1", "<i1", "<i4", "<i8"]),
        encode([4], [1, 2], [[-(2**40)], [9]], 0, [], ["<i1", "<i1", "<i8", "<i2", "<i1"]),
        encode([], [7], [[], []], 0b1, [3], ["<i1", "<i1", "<i1", "<i1", "<i4"]),
    ]
    batch = decode_frames(frames, 2)
    assert batch.changed.tolist() == [3, 1, 0] and batch.removed_count.tolist() == [0, 2, 1]
    assert batch.ids.tolist() == [1, 2, 300, 4]
    assert batch.values.tolist() == [[5, 70000], [-6, 2], [7, 3], [-(2**40), 9]]
    assert batch.removed.tolist() == [1, 2, 7]
    assert batch.masks.tolist() == [0b101, 0, 0b1] and batch.totals.tolist() == [2**40, -1, 3]
    second = batch.frame(1)
    assert second.ids.tolist() == [4] and second.removed.tolist() == [1, 2] and second.totals.tolist() == []


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (b"not zlib", "damaged sample frame"),
        (zlib.compress(struct.pack("<BIIIH", 3, 0, 0, 2, 0) + b"\0" * 5), "version 3"),
        (zlib.compress(struct.pack("<BIIIH", 2, 0, 0, 5, 0) + b"\0" * 8), "5 columns, not 2"),
        (zlib.compress(struct.pack("<BIIIH", 2, 9, 0, 2, 0) + b"\0" * 5 + b"\1" * 9), "truncated"),
        (zlib.compress(struct.pack("<BIIIH", 2, 0, 0, 2, 0) + b"\0" * 5 + b"extra"), "wrong size"),
        (zlib.compress(struct.pack("<BIIIH", 2, 0, 0, 2, 0) + b"\0\0\0\0\7"), "bad header"),
        (zlib.compress(struct.pack("<BIIIH", 2, 0, 0, 2, 1 << 15) + b"\0" * 5 + b"\1"), "unknown totals"),
    ],
)
def test_decode_frames_names_the_first_damaged_frame(blob: bytes, why: str) -> None:
    good = encode([1], [], [[1], [2]], 0, [], ["<i1"] * 5)
    with pytest.raises(DamagedFrame, match=why) as exc:
        decode_frames([good, good, blob, good], 2)
    assert exc.value.index == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_report_shows_a_progress_bar_on_a_terminal_only(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import pooltop.report.command as report_command
    from pooltop.cli import main

    path = str(tmp_path / "rec.db")
    write(path, churn(40, 3))
    monkeypatch.setattr(report_command, "PROGRESS_MIN_SAMPLES", 10)  # a "large" recording, for the test
    for terminal, bar in ((False, False), (True, True)):
        stderr = Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stderr)
        with pytest.raises(SystemExit) as exc:
            main(["report", path, "--format", "json"])
        assert exc.value.code == 0
        assert json.loads(capsys.readouterr().out)["recording"]["samples"] == 40
        assert ("reading" in stderr.getvalue() and "40/40" in stderr.getvalue()) is bar, stderr.getvalue()


@pytest.mark.parametrize("size", [3000, 70_000])  # radix passes, and the 64-bit sort beyond 16-bit keys
def test_events_sort_by_key_then_frame_then_entries_before_removals(size: int) -> None:
    from pooltop.record.sweep import _event_order

    rng = np.random.default_rng(size)
    frames = np.sort(rng.integers(0, 300, 5000))
    keys = rng.integers(0, size, 5000)
    kind = rng.integers(0, 2, 5000)
    within = frames * 2 + kind
    expected = np.lexsort((np.arange(5000), within, keys))
    assert np.array_equal(_event_order(keys, within, size, 300), expected)
    in_frame_order = np.lexsort((np.arange(5000), frames))
    expected = np.lexsort((np.arange(5000), frames[in_frame_order], keys[in_frame_order]))
    assert np.array_equal(_event_order(keys[in_frame_order], None, size, 300), expected)
