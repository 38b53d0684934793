"""A recording as matrices (points x counters per column) for the report.

Every sample is read. A recording with more samples than points is cut into that many even
intervals, and each point keeps its interval's last value and, for the columns named in
`extremes`, the lowest and highest value any of its samples had (record/sweep.py): a leak that
starts in the last minutes moves the last points, and a spike between two points shows in
`maximum`. A damaged sample ends the series there: what came before it is kept, and `damage`
says what was wrong.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput
from pooltop.model import Totals
from pooltop.record.codec import TOTAL_FIELDS, DamagedFrame, FrameBatch, Int64Array, decode_frames
from pooltop.record.database import from_wall_us
from pooltop.record.reader import Recording
from pooltop.record.sweep import Events, KeyTrack

FloatArray = npt.NDArray[np.float64]
#: frames decoded together at most (a full frame also starts a new batch)
BATCH_FRAMES = 512
Row = tuple[int, int, int, bytes]  # sample id, wall clock (us), full, frame


@dataclass(frozen=True, eq=False)
class Series:
    """A recording as matrices: points x counters for each column, NaN where a counter was absent."""

    seconds: FloatArray  # since the first point, from the wall clock (survives reboots)
    taken_at: list[dt.datetime]
    sample_index: list[int]  # the sample (row id) whose values each point holds: its interval's last
    keys: list[tuple[str, int]]
    columns: dict[str, FloatArray]  # each interval's last value
    minimum: dict[str, FloatArray]  # each interval's lowest and highest value, for the `extremes`
    maximum: dict[str, FloatArray]
    totals: list[Totals]
    samples: int  # how many samples the points cover (fewer than the recording's if damaged)
    damage: str | None = None  # why reading stopped early


class _Stop(Exception):
    def __init__(self, samples: int, reason: str) -> None:
        super().__init__(reason)
        self.samples = samples
        self.reason = reason


class _Sweep:
    """Reads a recording's frames in batches into the points' matrices."""

    def __init__(self, rec: Recording, names: Sequence[str], points: int, extremes: Sequence[int]) -> None:
        self.rec = rec
        n = rec.info.samples
        self.columns = [rec.info.columns.index(c) for c in names]
        self.ends = (np.arange(1, points + 1, dtype=np.int64) * n) // points - 1
        bucket_of = np.repeat(np.arange(points, dtype=np.int64), np.diff(self.ends, prepend=-1))
        size = len(rec.key_tags)
        self.counters = KeyTrack(size, len(names), bucket_of, extremes)
        self.totals_track = KeyTrack(len(TOTAL_FIELDS), 1, bucket_of)
        self.walls = np.zeros(n, dtype=np.int64)
        self.sample_ids = np.zeros(n, dtype=np.int64)
        self.done = 0

    def totals(self, points: int) -> list[Totals]:
        """Each point's system totals (floats on the way: exact up to 2^53 bytes, 8 PiB)."""
        rows = self.totals_track.last[0, :points].tolist()
        return [Totals(**{k: int(v) for k, v in zip(TOTAL_FIELDS, row, strict=True) if not math.isnan(v)})
                for row in rows]

    def apply(self, rows: Sequence[Row], decoded: Callable[[], FrameBatch]) -> None:
        """Apply consecutive samples (their frames from `decoded`); a damaged one applies those before
        it, then stops the sweep."""
        try:
            clock = next((i for i, r in enumerate(rows) if not isinstance(r[1], int)), None)
            if clock is not None:
                raise DamagedFrame(clock, f"damaged clock time ({rows[clock][1]!r})")
            batch = decoded()
            bad = self._bad_ids(batch)
            if bad is not None:
                raise DamagedFrame(bad, "damaged sample frame (a counter the keys table does not define)")
            walls = np.array([r[1] for r in rows], dtype=np.int64)
            ids = np.array([r[0] for r in rows], dtype=np.int64)
        except DamagedFrame as e:
            if e.index:
                good = rows[: e.index]
                self.apply(good, lambda: decode_frames([r[3] for r in good], len(self.rec.info.columns)))
            raise _Stop(self.done, f"sample {self.done} has a {e}") from None
        except (ValueError, TypeError, OverflowError) as e:
            raise _Stop(self.done, f"sample {self.done} is damaged ({e})") from None
        s0, count = self.done, len(rows)
        self.walls[s0 : s0 + count] = walls
        self.sample_ids[s0 : s0 + count] = ids
        ends = self.ends[(self.ends >= s0) & (self.ends < s0 + count)] - s0
        reset = bool(rows[0][2])
        frames = np.arange(count, dtype=np.int64)
        self.counters.advance(
            Events(batch.ids, np.repeat(frames, batch.changed), batch.values.T[self.columns],
                   batch.removed, np.repeat(frames, batch.removed_count)),
            s0, count, reset, ends,
        )
        bits = (batch.masks[:, None] >> np.arange(len(TOTAL_FIELDS))) & 1
        have_f, have_slot = np.nonzero(bits)
        gone_f, gone_slot = np.nonzero(bits == 0)
        self.totals_track.advance(
            Events(have_slot, have_f, batch.totals[None, :], gone_slot, gone_f),
            s0, count, reset, ends,
        )
        self.done += count

    def _bad_ids(self, batch: FrameBatch) -> int | None:
        """The first frame that names a counter id the recording's keys table does not hold."""
        defined = self.rec.key_defined
        worst: int | None = None
        for ids, counts in ((batch.ids, batch.changed), (batch.removed, batch.removed_count)):
            outside = (ids < 1) | (ids >= len(defined))
            bad = np.flatnonzero(outside | ~defined[np.where(outside, 0, ids)])
            if len(bad):
                frame = int(np.searchsorted(np.cumsum(counts), bad[0], side="right"))
                worst = frame if worst is None else min(worst, frame)
        return worst

    def finish_early(self) -> int:
        """After a damaged sample: the point holding the last good sample ends there. Points kept."""
        last = self.done - 1
        point = int(self.counters.bucket_of[last])
        if self.ends[point] != last:
            self.ends[point] = last
            self.counters.write_row(point)
            self.totals_track.write_row(point)
        return point + 1


def read_series(
    rec: Recording,
    max_points: int = 2000,
    columns: Sequence[str] | None = None,
    extremes: Sequence[str] = ("bytes",),
    progress: Callable[[int], None] | None = None,
) -> Series:
    """Every sample of `rec` as at most `max_points` points (the last sample always one of them);
    `progress(samples)` after each batch read."""
    n = rec.info.samples
    if n == 0:
        raise BadInput(f"{rec.path} holds no samples")
    names = list(rec.info.columns if columns is None else columns)
    missing = [c for c in names if c not in rec.info.columns]
    if missing:
        raise BadInput(f"{rec.path} has no column {missing[0]!r}")
    points = min(n, max_points)
    reduce = points < n
    extreme_names = [c for c in extremes if c in names]
    sweep = _Sweep(rec, names, points, [names.index(c) for c in extreme_names] if reduce else [])
    damage = None
    try:
        _read_all(rec, sweep, progress)
    except _Stop as stop:
        if stop.samples == 0:
            raise BadInput(f"{rec.path} is damaged ({stop.reason})") from None
        damage = stop.reason
        points = sweep.finish_early()
    return _series(rec, sweep, names, extreme_names, points, damage)


def _row_batches(rec: Recording) -> Iterator[list[Row]]:
    """The samples in batches, each cut before a full frame and at BATCH_FRAMES. An unreadable page
    raises sqlite3.DatabaseError after the batch read before it."""
    batch: list[Row] = []
    try:
        # LIMIT: a recording still being written grows while it is read; the points cover info.samples
        for row in rec.con.execute(
            "SELECT id, wall_us, full, frame FROM samples ORDER BY id LIMIT ?", (rec.info.samples,)
        ):
            if batch and (row[2] or len(batch) >= BATCH_FRAMES):
                yield batch
                batch = []
            batch.append(row)
    except sqlite3.DatabaseError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _read_all(rec: Recording, sweep: _Sweep, progress: Callable[[int], None] | None) -> None:
    """Sweep every batch while a worker thread decodes the next one (zlib and numpy let go of the
    GIL: on two cores the read takes about 2/3 of the time)."""
    columns = len(rec.info.columns)
    unreadable = None
    with ThreadPoolExecutor(max_workers=1) as worker:
        ahead: tuple[list[Row], Future[FrameBatch]] | None = None
        try:
            for rows in _row_batches(rec):
                decoding = worker.submit(decode_frames, [r[3] for r in rows], columns)
                if ahead is not None:
                    sweep.apply(ahead[0], ahead[1].result)
                    if progress is not None:
                        progress(sweep.done)
                ahead = (rows, decoding)
        except sqlite3.DatabaseError as e:
            unreadable = f"sample {sweep.done + (len(ahead[0]) if ahead else 0)} is unreadable ({e})"
        if ahead is not None:
            sweep.apply(ahead[0], ahead[1].result)
            if progress is not None:
                progress(sweep.done)
    if unreadable is not None:
        raise _Stop(sweep.done, unreadable)
    if sweep.done < rec.info.samples:
        raise _Stop(sweep.done, f"{rec.info.samples - sweep.done} samples are missing")


def _series(rec: Recording, sweep: _Sweep, names: Sequence[str], extreme_names: Sequence[str], points: int,
            damage: str | None) -> Series:
    seen = sweep.counters.seen
    keep = np.flatnonzero(seen)
    if np.array_equal(keep, np.arange(1, len(seen))):
        pick: slice | Int64Array = slice(1, None)  # every key: a view, not a copy of each matrix
    else:
        pick = keep
    last = sweep.counters.last[:, :points]
    cols = {name: last[j][:, pick] for j, name in enumerate(names)}
    low, high = {}, {}
    for j, name in enumerate(extreme_names):
        if sweep.counters.extremes:
            lo, hi = sweep.counters.ranges(j, points)
            low[name], high[name] = lo[:, pick], hi[:, pick]
        else:  # one sample per point: nothing between the points
            low[name] = high[name] = cols[name]
    ends = sweep.ends[:points]
    walls = sweep.walls[ends].astype(np.float64)
    return Series(
        seconds=(walls - walls[0]) / 1e6,
        taken_at=[from_wall_us(int(w)) for w in sweep.walls[ends]],
        sample_index=sweep.sample_ids[ends].tolist(),
        keys=[(rec.key_tags[i], int(rec.key_pools[i])) for i in keep.tolist()],
        columns=cols,
        minimum=low,
        maximum=high,
        totals=sweep.totals(points),
        samples=int(ends[-1]) + 1,
        damage=damage,
    )
