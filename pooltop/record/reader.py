"""Reading a recording: its facts, owners, and any sample rebuilt as a Snapshot."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pooltop.errors import BadInput
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot
from pooltop.record.codec import DamagedFrame, FrameState, Int64Array, decode_frame
from pooltop.record.database import BASE_COLUMNS, SCHEMA, connect, from_wall_us
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import candidate_from_json


@dataclass(frozen=True)
class RecordingInfo:
    path: str
    schema: str
    source: str
    host: HostInfo
    interval_s: float | None
    columns: tuple[str, ...]
    has_alloc_counts: bool
    counter_bits: int
    samples: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None



def _extent(con: sqlite3.Connection) -> tuple[int, object, object]:
    """How many samples, the first and the last wall clock time. Counting reads every page of the
    samples table; when one is damaged, the ends of the table (what reading stops at) still say
    how many samples there were meant to be, and the report keeps those before the damage."""
    try:
        count, first, last = con.execute(
            "SELECT count(*), min(wall_us), max(wall_us) FROM samples"
        ).fetchone()
        return int(count), first, last
    except sqlite3.DatabaseError:
        # one min() or max() per query: SQLite then reads only the edge of the table's b-tree
        low = con.execute("SELECT min(id) FROM samples").fetchone()[0]
        high = con.execute("SELECT max(id) FROM samples").fetchone()[0]
        if low is None:
            raise
        ends = "SELECT wall_us FROM samples WHERE id = ?"
        first, last = (con.execute(ends, (i,)).fetchone()[0] for i in (low, high))
        return high - low + 1, first, last


def _info(path: str, meta: dict[str, str], count: int, first: object, last: object) -> RecordingInfo:
    """The facts of the meta table, each checked for the type it must have."""
    host = json.loads(meta["host"])
    interval = json.loads(meta.get("interval_s", "null"))
    columns = json.loads(meta["columns"])
    bits = json.loads(meta["counter_bits"])
    if not isinstance(host, dict):
        raise TypeError(f"host is {type(host).__name__}, not an object")
    if interval is not None and (not isinstance(interval, int | float) or not interval > 0):
        raise ValueError(f"interval {interval!r}")
    if not isinstance(columns, list) or columns[:4] != list(BASE_COLUMNS) or not all(
        isinstance(c, str) for c in columns
    ):
        raise ValueError(f"columns {columns!r}")
    if bits not in (32, 64):
        raise ValueError(f"counter_bits {bits!r}")
    return RecordingInfo(
        path=path,
        schema=meta["schema"],
        source=str(meta["source"]),
        host=HostInfo.from_json(host),
        interval_s=None if interval is None else float(interval),
        columns=tuple(columns),
        has_alloc_counts=bool(json.loads(meta["has_alloc_counts"])),
        counter_bits=bits,
        samples=int(count),
        # a damaged sample's clock may not be a number: the facts leave it out, reading it says so
        first_at=from_wall_us(first) if isinstance(first, int) else None,
        last_at=from_wall_us(last) if isinstance(last, int) else None,
    )


class SampleRow(NamedTuple):
    """A sample's facts besides its frame."""

    wall_us: int
    monotonic_ns: int
    warnings: str | None  # JSON list, or None


def read_info(path: str, con: sqlite3.Connection | None = None) -> RecordingInfo:
    own = con is None
    con = con or connect(path, create=False)
    try:
        try:
            meta = dict(con.execute("SELECT key, value FROM meta"))
            count, first, last = _extent(con)
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{path} is not a pooltop recording or is damaged ({e})") from None
        if meta.get("schema") != SCHEMA:
            raise BadInput(f"{path} is not a pooltop recording (schema {meta.get('schema')!r})")
        try:
            return _info(path, meta, count, first, last)
        except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as e:
            raise BadInput(f"{path} has damaged recording facts ({type(e).__name__}: {e})") from None
    finally:
        if own:
            con.close()



def apply_frames(con: sqlite3.Connection, state: FrameState, first_id: int, last_id: int) -> SampleRow | None:
    """Apply the frames of samples first_id..last_id to `state`; the last one's row (None if none)."""
    row: SampleRow | None = None
    for wall, mono, warnings, full, frame in con.execute(
        "SELECT wall_us, monotonic_ns, warnings, full, frame FROM samples"
        " WHERE id BETWEEN ? AND ? ORDER BY id",
        (first_id, last_id),
    ):
        state.apply(bool(full), decode_frame(frame, state.columns))
        row = SampleRow(wall, mono, warnings)
    return row


_ROW = "SELECT id, wall_us, monotonic_ns, warnings, full, frame FROM samples"


class Recording:
    """Read access to a recording: facts, owners and the samples as Snapshots."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.con = connect(path, create=False)
        try:
            self.info = read_info(path, self.con)
            keys = read_keys(path, self.con)
            top = max((i for i, _t, _p in keys), default=0) + 1
            self.key_tags = [""] * top
            self.key_pools = np.zeros(top, dtype=np.uint8)
            self.key_defined = np.zeros(top, dtype=np.bool_)
            for i, tag, pool in keys:
                self.key_tags[i], self.key_pools[i], self.key_defined[i] = tag, pool, True
            self.aliases = self._aliases()
        except BaseException:
            self.con.close()
            raise

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.info.samples

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Turns what a damaged file raises into one line that names the file."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None
        except DamagedFrame as e:
            raise BadInput(f"{self.path} has a {e}") from None

    def owners(self) -> dict[tuple[str, int], list[OwnerCandidate]]:
        """Who owned each tag when recording started; what cannot be read (a damaged row, or no
        owners table at all) is left out: owners name suspects, they are not the evidence."""
        out: dict[tuple[str, int], list[OwnerCandidate]] = {}
        try:
            rows = self.con.execute("SELECT tag, pool, candidates FROM owners").fetchall()
        except sqlite3.DatabaseError:
            return out
        for tag, pool, cands in rows:
            try:
                out[(str(tag), int(pool))] = [candidate_from_json(str(tag), o) for o in json.loads(cands)]
            except (ValueError, TypeError, AttributeError):
                continue
        return out

    def _aliases(self) -> dict[str, tuple[str, ...]]:
        """Each Linux cache's SLUB alias group; like owners, what cannot be read is left out."""
        out: dict[str, tuple[str, ...]] = {}
        try:
            rows = self.con.execute("SELECT tag, names FROM aliases").fetchall()
        except sqlite3.DatabaseError:
            return out
        for tag, names in rows:
            try:
                group = json.loads(names)
            except (ValueError, TypeError):
                continue
            if isinstance(group, list) and all(isinstance(n, str) for n in group):
                out[str(tag)] = tuple(group)
        return out

    def check_ids(self, ids: Int64Array) -> None:
        if len(ids) and (int(ids.max()) >= len(self.key_tags) or not self.key_defined[ids].all()):
            raise BadInput(f"{self.path} refers to a counter it does not define")

    def snapshot(self, state: FrameState, row: SampleRow) -> Snapshot:
        """The sample `row` whose frames `state` holds, as a Snapshot."""
        wall_us, mono, warnings = row
        ids = np.flatnonzero(state.present)
        self.check_ids(ids)
        vals = state.values[ids]
        cols = self.info.columns
        try:
            counters = CounterSet.build(
                [self.key_tags[i] for i in ids.tolist()],
                self.key_pools[ids],
                vals[:, 0],
                vals[:, 1],
                vals[:, 2],
                vals[:, 3],
                extra={name: vals[:, 4 + j] for j, name in enumerate(cols[4:])},
                has_alloc_counts=self.info.has_alloc_counts,
                counter_bits=self.info.counter_bits,
            )
            warn = tuple(json.loads(warnings)) if warnings else ()
            taken = from_wall_us(wall_us)
        except (ValueError, TypeError, IndexError, OverflowError) as e:
            raise BadInput(f"{self.path} has a damaged sample ({e})") from None
        return Snapshot(
            source=self.info.source,
            taken_at=taken,
            monotonic_ns=int(mono),
            host=self.info.host,
            totals=state.totals_record(),
            counters=counters,
            aliases=self.aliases,
            warnings=warn,
        )

    def snapshots(self, every: int = 1) -> Iterator[tuple[int, Snapshot]]:
        """(sample index, snapshot) in order; every `every`-th sample (the last one always)."""
        state = FrameState(len(self.info.columns))
        last_index = self.info.samples - 1
        with self.reading():
            for index, (_sid, wall_us, mono, warnings, full, frame) in enumerate(
                self.con.execute(_ROW + " ORDER BY id")
            ):
                state.apply(bool(full), decode_frame(frame, state.columns))
                if index % every == 0 or index == last_index:
                    yield index, self.snapshot(state, SampleRow(wall_us, mono, warnings))

    def sample_ids(self) -> list[int]:
        """The row id of every sample, in order (what state_at and advance take)."""
        with self.reading():
            return [r[0] for r in self.con.execute("SELECT id FROM samples ORDER BY id")]

    def state_at(self, sample_id: int) -> tuple[FrameState, SampleRow]:
        """The counters at sample `sample_id`, rebuilt from the last full frame before it."""
        with self.reading():
            start = self.con.execute(
                "SELECT max(id) FROM samples WHERE full = 1 AND id <= ?", (sample_id,)
            ).fetchone()[0]
            if start is None:
                raise BadInput(f"{self.path} is damaged (no full frame before sample id {sample_id})")
            state = FrameState(len(self.info.columns))
            row = apply_frames(self.con, state, start, sample_id)
        assert row is not None
        return state, row

    def advance(self, state: FrameState, sample_id: int) -> SampleRow:
        """Move `state` on by the one sample `sample_id` (the one after the state's)."""
        with self.reading():
            row = apply_frames(self.con, state, sample_id, sample_id)
        if row is None:
            raise BadInput(f"{self.path} has no sample id {sample_id}")
        return row

    def snapshot_at(self, index: int) -> Snapshot:
        """Sample `index` (0-based; negative counts from the end), rebuilt from the last full frame."""
        n = self.info.samples
        if n == 0:
            raise BadInput(f"{self.path} holds no samples")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise BadInput(f"{self.path} has {n} samples; there is no sample {index}")
        with self.reading():
            target = self.con.execute(
                "SELECT id FROM samples ORDER BY id LIMIT 1 OFFSET ?", (index,)
            ).fetchone()[0]
        state, row = self.state_at(target)
        return self.snapshot(state, row)



def read_keys(path: str, con: sqlite3.Connection) -> list[tuple[int, str, int]]:
    """(id, tag, pool) of every counter, refusing what no writer wrote: a pool pooltop does not
    know, a tag that is not text, ids far beyond the number of keys (they count up from 1)."""
    try:
        rows = con.execute("SELECT id, tag, pool FROM keys").fetchall()
    except sqlite3.DatabaseError as e:
        raise BadInput(f"{path} is damaged ({e})") from None
    top = max((i for i, _t, _p in rows), default=0)
    if top > 2 * len(rows) + 1024 or min((i for i, _t, _p in rows), default=1) < 1:
        raise BadInput(f"{path} is damaged (the keys table has ids out of range)")
    known = {int(p) for p in Pool}
    for i, tag, pool in rows:
        if not isinstance(tag, str) or not isinstance(pool, int) or pool not in known:
            raise BadInput(f"{path} is damaged (counter {i} has tag {tag!r} and pool {pool!r})")
    return rows
