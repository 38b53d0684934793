"""Reading a recording: its facts, owners, and any sample rebuilt as a Snapshot."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pooltop.errors import BadInput
from pooltop.model import CounterSet, HostInfo, Snapshot
from pooltop.record.codec import FrameState, Int64Array, decode_frame
from pooltop.record.database import SCHEMA, connect, from_wall_us
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
            count, first, last = con.execute(
                "SELECT count(*), min(wall_us), max(wall_us) FROM samples"
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{path} is not a pooltop recording or is damaged ({e})") from None
        if meta.get("schema") != SCHEMA:
            raise BadInput(f"{path} is not a pooltop recording (schema {meta.get('schema')!r})")
        try:
            return RecordingInfo(
                path=path,
                schema=meta["schema"],
                source=meta["source"],
                host=HostInfo.from_json(json.loads(meta["host"])),
                interval_s=json.loads(meta.get("interval_s", "null")),
                columns=tuple(json.loads(meta["columns"])),
                has_alloc_counts=bool(json.loads(meta["has_alloc_counts"])),
                counter_bits=int(json.loads(meta["counter_bits"])),
                samples=int(count),
                first_at=from_wall_us(first) if first is not None else None,
                last_at=from_wall_us(last) if last is not None else None,
            )
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise BadInput(f"{path} has damaged recording facts ({e})") from None
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
            self._keys = {i: (t, p) for i, t, p in self.con.execute("SELECT id, tag, pool FROM keys")}
            self.aliases = {
                t: tuple(json.loads(a)) for t, a in self.con.execute("SELECT tag, names FROM aliases")
            }
        except (sqlite3.DatabaseError, ValueError) as e:
            self.con.close()
            raise BadInput(f"{path} is damaged ({e})") from None
        except BaseException:
            self.con.close()
            raise
        top = max(self._keys, default=0) + 1
        self.key_tags = [""] * top
        self.key_pools = np.zeros(top, dtype=np.uint8)
        for i, (t, p) in self._keys.items():
            self.key_tags[i] = t
            self.key_pools[i] = p if 0 <= p < 256 else 0

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.info.samples

    def owners(self) -> dict[tuple[str, int], list[OwnerCandidate]]:
        out: dict[tuple[str, int], list[OwnerCandidate]] = {}
        for tag, pool, cands in self.con.execute("SELECT tag, pool, candidates FROM owners"):
            try:
                out[(tag, pool)] = [candidate_from_json(tag, o) for o in json.loads(cands)]
            except (ValueError, TypeError, AttributeError):
                continue
        return out

    def check_ids(self, ids: Int64Array) -> None:
        if len(ids) and int(ids.max()) >= len(self.key_tags):
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
        try:
            for index, (_sid, wall_us, mono, warnings, full, frame) in enumerate(
                self.con.execute(_ROW + " ORDER BY id")
            ):
                state.apply(bool(full), decode_frame(frame, state.columns))
                if index % every == 0 or index == last_index:
                    yield index, self.snapshot(state, SampleRow(wall_us, mono, warnings))
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None

    def sample_ids(self) -> list[int]:
        """The row id of every sample, in order (what state_at and advance take)."""
        try:
            return [r[0] for r in self.con.execute("SELECT id FROM samples ORDER BY id")]
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None

    def state_at(self, sample_id: int) -> tuple[FrameState, SampleRow]:
        """The counters at sample `sample_id`, rebuilt from the last full frame before it."""
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
        try:
            target = self.con.execute(
                "SELECT id FROM samples ORDER BY id LIMIT 1 OFFSET ?", (index,)
            ).fetchone()[0]
            state, row = self.state_at(target)
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None
        return self.snapshot(state, row)

