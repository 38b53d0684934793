"""Recordings: one SQLite file of host facts, tag owners at start and every sample.

Layout (schema "pooltop.recording/1"):
- meta: key/value facts (schema, host JSON, source, interval, counter columns).
- keys: one id per (tag, pool) ever seen.
- samples: one row per sample: wall and monotonic time, warnings, and a compressed frame. A frame
  is either full (every present counter and the system totals, absolute values) or a delta against
  the previous sample (only the counters that changed, appeared or vanished; totals as differences).
  A full frame is written every FULL_EVERY samples, so any sample is at most that many deltas away
  from a full one, and a long recording can be skimmed by reading only the full frames.
- owners: who owned each tag when recording started (for the report and the vendor bundle).

Every sample is one transaction in WAL mode: a crash (even SIGKILL) loses at most the sample being
written, never the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput, PooltopError
from pooltop.model import CounterSet, HostInfo, Snapshot, Totals
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import candidate_from_json, candidate_to_json

SCHEMA = "pooltop.recording/1"
FULL_EVERY = 300
BASE_COLUMNS = ("allocs", "frees", "diff", "bytes")
SQLITE_MAGIC = b"SQLite format 3\x00"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, pool INTEGER NOT NULL,
                                 UNIQUE (tag, pool));
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    wall_us INTEGER NOT NULL,
    monotonic_ns INTEGER NOT NULL,
    warnings TEXT,
    full INTEGER NOT NULL,
    frame BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (tag TEXT NOT NULL, pool INTEGER NOT NULL, candidates TEXT NOT NULL,
                                   PRIMARY KEY (tag, pool));
CREATE TABLE IF NOT EXISTS aliases (tag TEXT PRIMARY KEY, names TEXT NOT NULL);
"""

Int64Array = npt.NDArray[np.int64]


class RecordingFull(PooltopError):
    """The recording reached --max-size or the disk is full; the file is valid up to here."""


# --- frames ---------------------------------------------------------------------------------
# A frame is zlib(header, dtype codes, arrays). ids are ascending key ids, delta-coded; values are
# column-major (absolute for a full frame, differences for a delta frame); each array is stored in
# the narrowest integer type that holds it, so the typical second (a few hundred small changes)
# costs well under a kilobyte. System totals ride along as a presence mask and values.

_FRAME_HEADER = struct.Struct("<BIIIH")  # version, n changed, n removed, n columns, totals mask
_DTYPES = ("<i1", "<i2", "<i4", "<i8")
TOTAL_FIELDS = tuple(Totals.__dataclass_fields__)


def _narrow(arr: Int64Array) -> tuple[int, bytes]:
    if arr.size == 0:
        return 0, b""
    lo, hi = int(arr.min()), int(arr.max())
    for code, bits in enumerate((8, 16, 32)):
        if -(1 << (bits - 1)) <= lo and hi < 1 << (bits - 1):
            return code, arr.astype(_DTYPES[code]).tobytes()
    return 3, arr.astype("<i8").tobytes()


@dataclass(frozen=True, eq=False)
class Frame:
    ids: Int64Array
    values: Int64Array  # rows x columns
    removed: Int64Array
    totals_mask: int
    totals: Int64Array  # one value per set bit of totals_mask, in TOTAL_FIELDS order


def encode_frame(frame: Frame) -> bytes:
    cols = frame.values.shape[1] if frame.values.ndim == 2 else 0
    arrays = [
        np.diff(frame.ids, prepend=0),
        np.diff(frame.removed, prepend=0),
        *(frame.values[:, j] for j in range(cols)),
        frame.totals,
    ]
    coded = [_narrow(np.asarray(a, dtype=np.int64)) for a in arrays]
    parts = [
        _FRAME_HEADER.pack(2, len(frame.ids), len(frame.removed), cols, frame.totals_mask),
        bytes(code for code, _ in coded),
        *(data for _, data in coded),
    ]
    return zlib.compress(b"".join(parts), 6)


def decode_frame(blob: bytes) -> Frame:
    try:
        raw = zlib.decompress(blob)
        version, n, n_removed, cols, mask = _FRAME_HEADER.unpack_from(raw, 0)
    except (zlib.error, struct.error, TypeError):
        raise BadInput("recording has a damaged sample frame") from None
    if version != 2:
        raise BadInput(f"recording frame version {version} is not supported")
    n_totals = bin(mask).count("1")
    lengths = [n, n_removed, *([n] * cols), n_totals]
    off = _FRAME_HEADER.size
    codes = raw[off : off + len(lengths)]
    off += len(lengths)
    if len(codes) != len(lengths) or any(c > 3 for c in codes):
        raise BadInput("recording has a damaged sample frame (bad header)")
    arrays: list[Int64Array] = []
    for code, length in zip(codes, lengths, strict=True):
        size = length * (1 << code)
        if off + size > len(raw):
            raise BadInput("recording has a damaged sample frame (truncated)")
        arrays.append(np.frombuffer(raw, _DTYPES[code], length, off).astype(np.int64))
        off += size
    if off != len(raw):
        raise BadInput("recording has a damaged sample frame (wrong size)")
    ids = np.cumsum(arrays[0])
    removed = np.cumsum(arrays[1])
    values = np.column_stack(arrays[2 : 2 + cols]) if cols and n else np.zeros((n, cols), np.int64)
    return Frame(ids, values, removed, mask, arrays[-1])


def totals_vector(t: Totals) -> tuple[int, Int64Array]:
    present = [(i, v) for i, name in enumerate(TOTAL_FIELDS) if (v := getattr(t, name)) is not None]
    mask = sum(1 << i for i, _ in present)
    return mask, np.array([v for _, v in present], dtype=np.int64)


def _wall_us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _from_wall_us(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)


class _State:
    """Current value of every key id (dense arrays indexed by key id) and of the totals."""

    def __init__(self, n_columns: int) -> None:
        self.values = np.zeros((0, n_columns), dtype=np.int64)
        self.present = np.zeros(0, dtype=np.bool_)
        self.totals = np.zeros(len(TOTAL_FIELDS), dtype=np.int64)
        self.totals_mask = 0

    def grow(self, size: int) -> None:
        if size > len(self.present):
            extra = size - len(self.present) + 256
            self.values = np.vstack([self.values, np.zeros((extra, self.values.shape[1]), np.int64)])
            self.present = np.concatenate([self.present, np.zeros(extra, np.bool_)])

    def totals_record(self) -> Totals:
        return Totals(
            **{name: int(self.totals[i]) for i, name in enumerate(TOTAL_FIELDS) if self.totals_mask >> i & 1}
        )

    def apply(self, full: bool, frame: Frame) -> None:
        ids, values, removed = frame.ids, frame.values, frame.removed
        if (len(ids) and int(ids.min()) < 0) or (len(removed) and int(removed.min()) < 0):
            raise BadInput("recording has a damaged sample frame (negative id)")
        top = max(int(ids.max()) + 1 if len(ids) else 0, int(removed.max()) + 1 if len(removed) else 0)
        self.grow(top)
        slots = [i for i in range(len(TOTAL_FIELDS)) if frame.totals_mask >> i & 1]
        if full:
            self.present[:] = False
            self.values[ids] = values
            self.totals[:] = 0
            self.totals[slots] = frame.totals
        else:
            # A counter that was absent comes back with its absolute value, not a difference.
            back = ~self.present[ids]
            self.values[ids[back]] = values[back]
            self.values[ids[~back]] += values[~back]
            had = np.array([self.totals_mask >> i & 1 for i in slots], dtype=np.bool_)
            slot_arr = np.array(slots, dtype=np.intp)
            self.totals[slot_arr[~had]] = frame.totals[~had]
            self.totals[slot_arr[had]] += frame.totals[had]
        self.totals_mask = frame.totals_mask
        self.present[ids] = True
        self.present[removed] = False


# --- writing -----------------------------------------------------------------------------------


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


def _connect(path: str, create: bool) -> sqlite3.Connection:
    if not create:
        _check_sqlite_file(path)
    else:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise PooltopError(f"cannot write {path}: folder {folder} does not exist")
    try:
        # check_same_thread off: a replay is read by the UI's sampling thread; callers serialise access.
        con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed sample survives a process crash; only a power loss can
        # drop the last few, and the file stays consistent either way.
        con.execute("PRAGMA synchronous=NORMAL")
        return con
    except sqlite3.DatabaseError as e:
        raise BadInput(f"{path} is not a pooltop recording ({e})") from None


def _check_sqlite_file(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise PooltopError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise PooltopError(f"{path} is a directory") from None
    except OSError as e:
        raise PooltopError(f"cannot read {path}: {e.strerror}") from None
    if head != SQLITE_MAGIC:
        raise BadInput(f"{path} is not a pooltop recording (not an SQLite file)")


def is_recording(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


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
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.full_every = full_every
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        self.con = _connect(path, create=not exists)
        try:
            if exists:
                self._open_existing(first)
            else:
                self._create(first, interval_s, owners or {})
        except sqlite3.DatabaseError as e:
            self.con.close()
            raise BadInput(f"{path} is not a pooltop recording ({e})") from None
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
        for stmt in _DDL.strip().split(";"):
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
        self._state = _State(len(self.columns))
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
        self._keys = {(t, p): i for i, t, p in self.con.execute("SELECT id, tag, pool FROM keys")}
        self._state = _State(len(self.columns))
        # Only the frames since the last full one are needed to know where the file left off.
        start = self.con.execute("SELECT max(id) FROM samples WHERE full = 1").fetchone()[0]
        if start is not None:
            for full, frame in self.con.execute(
                "SELECT full, frame FROM samples WHERE id >= ? ORDER BY id", (start,)
            ):
                self._state.apply(bool(full), decode_frame(frame))
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
                (_wall_us(snap.taken_at), snap.monotonic_ns, warnings, int(full), blob),
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
        if self.max_size is not None and self.size() >= self.max_size:
            raise RecordingFull(
                f"{self.path} reached --max-size ({self.size():,} bytes); it is valid and complete"
            )

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


# --- reading -----------------------------------------------------------------------------------


def read_info(path: str, con: sqlite3.Connection | None = None) -> RecordingInfo:
    own = con is None
    con = con or _connect(path, create=False)
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
                first_at=_from_wall_us(first) if first is not None else None,
                last_at=_from_wall_us(last) if last is not None else None,
            )
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise BadInput(f"{path} has damaged recording facts ({e})") from None
    finally:
        if own:
            con.close()


_ROW = "SELECT id, wall_us, monotonic_ns, warnings, full, frame FROM samples"


class Recording:
    """Read access to a recording: facts, owners and the samples as Snapshots."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.con = _connect(path, create=False)
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
        self._tags = [""] * top
        self._pools = np.zeros(top, dtype=np.uint8)
        for i, (t, p) in self._keys.items():
            self._tags[i] = t
            self._pools[i] = p if 0 <= p < 256 else 0

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

    def _check_ids(self, ids: Int64Array) -> None:
        if len(ids) and int(ids.max()) >= len(self._tags):
            raise BadInput(f"{self.path} refers to a counter it does not define")

    def _snapshot(self, state: _State, wall_us: int, mono: int, warnings: str | None) -> Snapshot:
        ids = np.flatnonzero(state.present)
        self._check_ids(ids)
        vals = state.values[ids]
        cols = self.info.columns
        try:
            counters = CounterSet.build(
                [self._tags[i] for i in ids.tolist()],
                self._pools[ids],
                vals[:, 0],
                vals[:, 1],
                vals[:, 2],
                vals[:, 3],
                extra={name: vals[:, 4 + j] for j, name in enumerate(cols[4:])},
                has_alloc_counts=self.info.has_alloc_counts,
                counter_bits=self.info.counter_bits,
            )
            warn = tuple(json.loads(warnings)) if warnings else ()
            taken = _from_wall_us(wall_us)
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
        state = _State(len(self.info.columns))
        last_index = self.info.samples - 1
        try:
            for index, (_sid, wall_us, mono, warnings, full, frame) in enumerate(
                self.con.execute(_ROW + " ORDER BY id")
            ):
                state.apply(bool(full), decode_frame(frame))
                if index % every == 0 or index == last_index:
                    yield index, self._snapshot(state, wall_us, mono, warnings)
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None

    def _state_at(self, target_id: int) -> tuple[_State, tuple[int, int, str | None]]:
        start = self.con.execute(
            "SELECT max(id) FROM samples WHERE full = 1 AND id <= ?", (target_id,)
        ).fetchone()[0]
        if start is None:
            raise BadInput(f"{self.path} is damaged (no full frame before sample id {target_id})")
        state = _State(len(self.info.columns))
        row: tuple[int, int, str | None] | None = None
        for _sid, wall_us, mono, warnings, full, frame in self.con.execute(
            _ROW + " WHERE id BETWEEN ? AND ? ORDER BY id", (start, target_id)
        ):
            state.apply(bool(full), decode_frame(frame))
            row = (wall_us, mono, warnings)
        assert row is not None
        return state, row

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
            state, row = self._state_at(target)
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{self.path} is damaged ({e})") from None
        return self._snapshot(state, *row)


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

        def keep(state: _State, sid: int, wall_us: int) -> None:
            ids = np.flatnonzero(state.present)
            rec._check_ids(ids)
            if points and np.array_equal(points[-1][2], ids):
                ids = points[-1][2]  # same counters as the point before: share the array
            points.append((sid, wall_us, ids, state.values[ids][:, wanted], state.totals_record()))

        if skim:
            every = max(1, -(-full_count // max_points))
            rows = con.execute("SELECT id, wall_us, frame FROM samples WHERE full = 1 ORDER BY id")
            for k, (sid, wall_us, frame) in enumerate(rows):
                if k % every == 0 and sid != last_id:
                    state = _State(len(rec.info.columns))
                    state.apply(True, decode_frame(frame))
                    keep(state, sid, wall_us)
            state, (wall_us, _mono, _w) = rec._state_at(last_id)
            keep(state, last_id, wall_us)
        else:
            every = max(1, -(-n // max_points))
            state = _State(len(rec.info.columns))
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
        seen = np.zeros(len(rec._tags), dtype=np.bool_)
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
        taken_at=[_from_wall_us(p[1]) for p in points],
        sample_index=[p[0] for p in points],
        keys=[(rec._tags[i], int(rec._pools[i])) for i in all_ids.tolist()],
        columns=mats,
        totals=[p[4] for p in points],
    )
