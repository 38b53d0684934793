"""Appending samples to a recording (record/database.py describes the file)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence

import numpy as np

from pooltop.errors import BadInput, PooltopError
from pooltop.model import CounterSet, Snapshot
from pooltop.record.codec import (
    TOTAL_FIELDS,
    DamagedFrame,
    Frame,
    FrameState,
    Int64Array,
    encode_frame,
    totals_vector,
)
from pooltop.record.database import BASE_COLUMNS, DDL, FULL_EVERY, SCHEMA, connect, wall_us
from pooltop.record.reader import apply_frames, read_info, read_keys
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import candidate_to_json

#: the .db file alone holds every sample up to this long ago (and always the first one)
CHECKPOINT_EVERY_S = 60.0


class RecordingFull(PooltopError):
    """The recording reached --max-size or the disk is full; the file is valid up to here."""



class RecordingWriter:
    """Appends samples to a recording. Use as a context manager; every append() commits."""

    def __init__(
        self,
        path: str,
        first: Snapshot,
        interval_s: float | None = None,
        owners: Mapping[tuple[str, int], Sequence[OwnerCandidate]] | None = None,
        max_size: int | None = None,
        full_every: int = FULL_EVERY,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.full_every = full_every
        self.checkpoint_every_s = checkpoint_every_s
        self._checkpointed: float | None = None  # monotonic time of the last checkpoint
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        self.con = connect(path, create=not exists)
        try:
            if exists:
                self._open_existing(first)
            else:
                self._create(first, interval_s, owners or {})
        except sqlite3.DatabaseError as e:
            self.con.close()
            why = f"is damaged ({e}); record into another file" if exists else (
                f"is not a pooltop recording ({e})")
            raise BadInput(f"{path} {why}") from None
        except DamagedFrame as e:
            self.con.close()
            raise BadInput(f"{path} has a {e}; record into another file") from None
        except BaseException:
            self.con.close()
            raise

    # setup

    def _create(
        self,
        first: Snapshot,
        interval_s: float | None,
        owners: Mapping[tuple[str, int], Sequence[OwnerCandidate]],
    ) -> None:
        c = first.counters
        self.columns = (*BASE_COLUMNS, *c.extra)
        con = self.con
        con.execute("BEGIN")
        for stmt in DDL.strip().split(";"):
            if stmt.strip():
                con.execute(stmt)
        meta = {
            "schema": SCHEMA,
            "source": first.source,
            "host": json.dumps(first.host.to_json()),
            "interval_s": json.dumps(interval_s),
            "columns": json.dumps(self.columns),
            "has_alloc_counts": json.dumps(c.has_alloc_counts),
            "counter_bits": json.dumps(c.counter_bits),
            "created_at": first.taken_at.isoformat(),
        }
        con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        con.executemany(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?)",
            [
                (tag, pool, json.dumps([candidate_to_json(o) for o in cands]))
                for (tag, pool), cands in owners.items()
                if cands
            ],
        )
        con.execute("COMMIT")
        self.source = first.source
        self.host = first.host
        self._keys: dict[tuple[str, int], int] = {}
        self._state = FrameState(len(self.columns))
        self._since_full = self.full_every  # first frame is full
        self._ids_cache: tuple[CounterSet, Int64Array] | None = None
        self.samples = 0

    def _open_existing(self, first: Snapshot) -> None:
        info = read_info(self.path, self.con)
        if info.source != first.source:
            raise PooltopError(f"{self.path} records {info.source}, not {first.source}; use another file")
        if (info.host.name, info.host.os) != (first.host.name, first.host.os):
            raise PooltopError(
                f"{self.path} was recorded on {info.host.name} ({info.host.os}); "
                f"this is {first.host.name}: use another file"
            )
        columns = (*BASE_COLUMNS, *first.counters.extra)
        if info.columns != columns:
            raise PooltopError(f"{self.path} has columns {info.columns}, this source gives {columns}")
        self.columns = columns
        self.source, self.host = info.source, info.host
        self._keys = {(t, p): i for i, t, p in read_keys(self.path, self.con)}
        self._state = FrameState(len(self.columns))
        # Only the frames since the last full one are needed to know where the file left off.
        last = "SELECT max(id) FILTER (WHERE full = 1), max(id) FROM samples"
        start, end = self.con.execute(last).fetchone()
        if start is not None:
            apply_frames(self.con, self._state, start, end)
        self.samples = info.samples
        self._since_full = self.full_every  # continue with a full frame
        self._ids_cache = None

    # appending

    def _key_ids(self, counters: CounterSet) -> tuple[Int64Array, list[tuple[int, str, int]]]:
        cached = self._ids_cache
        if cached is not None and counters.same_keys(cached[0]):
            return cached[1], []
        new_keys: list[tuple[int, str, int]] = []
        ids = np.empty(len(counters), dtype=np.int64)
        keys = self._keys
        for i, key in enumerate(zip(counters.tags, counters.pools.tolist(), strict=True)):
            kid = keys.get(key)
            if kid is None:
                kid = len(keys) + 1
                keys[key] = kid
                new_keys.append((kid, key[0], key[1]))
            ids[i] = kid
        self._ids_cache = (counters, ids)
        return ids, new_keys

    def append(self, snap: Snapshot) -> None:
        c = snap.counters
        ids, new_keys = self._key_ids(c)
        cur = (
            np.column_stack([c.allocs, c.frees, c.diff, c.bytes, *(c.extra[k] for k in self.columns[4:])])
            if len(c)
            else np.zeros((0, len(self.columns)), np.int64)
        )
        order = np.argsort(ids)
        ids_sorted, cur_sorted = ids[order], cur[order]
        st = self._state
        st.grow(int(ids_sorted[-1]) + 1 if len(ids_sorted) else 0)
        full = self._since_full >= self.full_every
        if full:
            frame_ids, frame_values = ids_sorted, cur_sorted
            removed = np.zeros(0, np.int64)
        else:
            prev = st.values[ids_sorted]
            was = st.present[ids_sorted]
            changed = ~was | np.any(prev != cur_sorted, axis=1)
            frame_ids = ids_sorted[changed]
            frame_values = cur_sorted[changed] - np.where(was[changed, None], prev[changed], 0)
            still = np.zeros(len(st.present), np.bool_)
            still[ids_sorted] = True
            removed = np.flatnonzero(st.present & ~still).astype(np.int64)
        mask, tot = totals_vector(snap.totals)
        if not full:
            # totals as differences where the previous sample had the same field
            had = np.array(
                [st.totals_mask >> i & 1 for i in range(len(TOTAL_FIELDS)) if mask >> i & 1], dtype=np.bool_
            )
            slots = np.array([i for i in range(len(TOTAL_FIELDS)) if mask >> i & 1], dtype=np.intp)
            tot = np.where(had, tot - st.totals[slots] if len(slots) else tot, tot)
        frame = Frame(frame_ids, frame_values, removed, mask, tot)
        blob = encode_frame(frame)
        warnings = json.dumps(list(snap.warnings)) if snap.warnings else None
        con = self.con
        try:
            con.execute("BEGIN")
            if new_keys:
                con.executemany("INSERT INTO keys VALUES (?, ?, ?)", new_keys)
            if snap.aliases and (new_keys or self.samples == 0):
                con.executemany(
                    "INSERT OR REPLACE INTO aliases VALUES (?, ?)",
                    [(t, json.dumps(list(a))) for t, a in snap.aliases.items()],
                )
            con.execute(
                "INSERT INTO samples (wall_us, monotonic_ns, warnings, full, frame) VALUES (?, ?, ?, ?, ?)",
                (wall_us(snap.taken_at), snap.monotonic_ns, warnings, int(full), blob),
            )
            con.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            for _kid, tag, pool in new_keys:
                self._keys.pop((tag, pool), None)
            self._ids_cache = None
            if "full" in str(e).lower():
                raise RecordingFull(
                    f"the disk is full; {self.path} is valid up to the previous sample"
                ) from None
            raise PooltopError(f"cannot write {self.path}: {e}") from None
        # only now, after the commit, does the in-memory state move on
        st.apply(full, frame)
        self._since_full = 1 if full else self._since_full + 1
        self.samples += 1
        self._checkpoint_when_due()
        if self.max_size is not None and self.size() >= self.max_size:
            raise RecordingFull(
                f"{self.path} reached --max-size ({self.size():,} bytes); it is valid and complete"
            )

    def _checkpoint_when_due(self) -> None:
        now = time.monotonic()
        if self._checkpointed is None or now - self._checkpointed >= self.checkpoint_every_s:
            self.checkpoint()
            self._checkpointed = now

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the main file, without waiting for readers. Until then a
        sample lives only in FILE-wal: a copy of the .db alone (after a hard kill, say) would lack it,
        or lack the tables themselves before the first checkpoint."""
        with contextlib.suppress(sqlite3.DatabaseError):
            self.con.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def size(self) -> int:
        """The recording's size once checkpointed (the WAL holds page copies that fold back in)."""
        pages = self.con.execute("PRAGMA page_count").fetchone()[0]
        page_size = self.con.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(page_size)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.DatabaseError):
            # Fold the WAL back into the main file so the recording is one file again.
            self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.con.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
