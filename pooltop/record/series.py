"""A recording as matrices (points x counters per column) for the report."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput
from pooltop.model import Totals
from pooltop.record.codec import FrameState, Int64Array, decode_frame
from pooltop.record.database import from_wall_us
from pooltop.record.reader import Recording


@dataclass(frozen=True, eq=False)
class Series:
    """A recording as matrices: points x counters for each column, NaN where a counter was absent."""

    seconds: npt.NDArray[np.float64]  # since the first point, from the wall clock (survives reboots)
    taken_at: list[dt.datetime]
    sample_index: list[int]
    keys: list[tuple[str, int]]
    columns: dict[str, npt.NDArray[np.float64]]
    totals: list[Totals]


def read_series(rec: Recording, max_points: int = 2000, columns: Sequence[str] | None = None) -> Series:
    """Every sample of `rec`, or an even subset of about `max_points` of them (always the last).

    Long recordings are skimmed through their full frames alone when those are enough, so a
    24-hour recording does not have to replay every delta.
    """
    n = rec.info.samples
    if n == 0:
        raise BadInput(f"{rec.path} holds no samples")
    con = rec.con
    points: list[tuple[int, int, Int64Array, Int64Array, Totals]] = []  # sample id, wall, ids, values, totals
    names = list(rec.info.columns if columns is None else columns)
    wanted = [rec.info.columns.index(c) for c in names]
    try:
        last_id = con.execute("SELECT max(id) FROM samples").fetchone()[0]
        full_count = con.execute("SELECT count(*) FROM samples WHERE full = 1").fetchone()[0]
        skim = n > max_points and full_count >= min(max_points, 100)

        def keep(state: FrameState, sid: int, wall_us: int) -> None:
            ids = np.flatnonzero(state.present)
            rec.check_ids(ids)
            if points and np.array_equal(points[-1][2], ids):
                ids = points[-1][2]  # same counters as the point before: share the array
            points.append((sid, wall_us, ids, state.values[ids][:, wanted], state.totals_record()))

        if skim:
            every = max(1, -(-full_count // max_points))
            rows = con.execute("SELECT id, wall_us, frame FROM samples WHERE full = 1 ORDER BY id")
            for k, (sid, wall_us, frame) in enumerate(rows):
                if k % every == 0 and sid != last_id:
                    state = FrameState(len(rec.info.columns))
                    state.apply(True, decode_frame(frame))
                    keep(state, sid, wall_us)
            state, (wall_us, _mono, _w) = rec.state_at(last_id)
            keep(state, last_id, wall_us)
        else:
            every = max(1, -(-n // max_points))
            state = FrameState(len(rec.info.columns))
            for k, (sid, wall_us, full, frame) in enumerate(
                con.execute("SELECT id, wall_us, full, frame FROM samples ORDER BY id")
            ):
                state.apply(bool(full), decode_frame(frame))
                if k % every == 0 or sid == last_id:
                    keep(state, sid, wall_us)
    except sqlite3.DatabaseError as e:
        raise BadInput(f"{rec.path} is damaged ({e})") from None
    first_ids = points[0][2]
    if all(p[2] is first_ids for p in points):
        # The usual case: the same counters all along; the matrices are plain stacks.
        all_ids = first_ids
        stacked = np.stack([p[3] for p in points]).astype(np.float64)
        mats = {name: stacked[:, :, j] for j, name in enumerate(names)}
    else:
        seen = np.zeros(len(rec.key_tags), dtype=np.bool_)
        for p in points:
            seen[p[2]] = True
        all_ids = np.flatnonzero(seen)
        col_of = np.full(len(seen), -1, dtype=np.int64)
        col_of[all_ids] = np.arange(len(all_ids))
        mats = {name: np.full((len(points), len(all_ids)), np.nan) for name in names}
        for r, (_sid, _wall, ids, vals, _t) in enumerate(points):
            cols = col_of[ids]
            for j, name in enumerate(names):
                mats[name][r, cols] = vals[:, j]
    walls = np.array([p[1] for p in points], dtype=np.float64)
    return Series(
        seconds=(walls - walls[0]) / 1e6,
        taken_at=[from_wall_us(p[1]) for p in points],
        sample_index=[p[0] for p in points],
        keys=[(rec.key_tags[i], int(rec.key_pools[i])) for i in all_ids.tolist()],
        columns=mats,
        totals=[p[4] for p in points],
    )
