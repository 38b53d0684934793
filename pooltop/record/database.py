"""The recording file: one SQLite database of host facts, tag owners at start and every sample.

Layout (schema "pooltop.recording/1"):
- meta: key/value facts (schema, host JSON, source, interval, counter columns).
- keys: one id per (tag, pool) ever seen.
- samples: one row per sample: wall and monotonic time, warnings, and a compressed frame
  (record/codec.py). A frame is either full (every present counter and the system totals,
  absolute values) or a delta against the previous sample (only the counters that changed,
  appeared or vanished; totals as differences). A full frame is written every FULL_EVERY samples,
  so any sample is at most that many deltas away from a full one, and a long recording can be
  skimmed by reading only the full frames.
- owners: who owned each tag when recording started (for the report and the vendor bundle).
- aliases: the SLUB alias group of each Linux cache.

Every sample is one transaction in WAL mode: a crash (even SIGKILL) loses at most the sample being
written, never the file.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

from pooltop.errors import BadInput, PooltopError

SCHEMA = "pooltop.recording/1"
FULL_EVERY = 300
BASE_COLUMNS = ("allocs", "frees", "diff", "bytes")
SQLITE_MAGIC = b"SQLite format 3\x00"

DDL = """
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



def wall_us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def from_wall_us(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)



def connect(path: str, create: bool) -> sqlite3.Connection:
    if not create:
        check_sqlite_file(path)
    else:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise PooltopError(f"cannot write {path}: folder {folder} does not exist")
    try:
        # check_same_thread off: a replay is read by the UI's sampling thread; callers serialise access.
        con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        # Text that is not UTF-8 (a damaged page) reads with U+FFFD in place of the bad bytes instead
        # of failing the whole query: the rest of the recording stays readable.
        con.text_factory = lambda raw: raw.decode("utf-8", "replace")
        con.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed sample survives a process crash; only a power loss can
        # drop the last few, and the file stays consistent either way.
        con.execute("PRAGMA synchronous=NORMAL")
        return con
    except sqlite3.DatabaseError as e:
        raise BadInput(f"{path} is not a pooltop recording ({e})") from None


def check_sqlite_file(path: str) -> None:
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



