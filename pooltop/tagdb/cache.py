"""Scan results in SQLite, so a rescan of an unchanged tree costs one stat per file.

A row is valid for (absolute path, size, mtime_ns, fingerprint); the fingerprint carries the scanner
version and the limits, so a new scanner or other limits rescan. The bytes pass depends on the set of
known tags too and has its own table. The cache is an optimisation, never a reason to fail: a corrupt
file is moved aside and rebuilt, a locked or unwritable one is skipped, each with a warning. Several
pooltop processes may share it (WAL journal, busy timeout).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

#: 2: rows are keyed by absolute path (version 1 kept the path as given, relative to where the scan
#: ran, so another working folder missed it or, worse, found another file's row)
SCHEMA_VERSION = 2
_BUSY_TIMEOUT_MS = 10_000
_FLUSH_EVERY = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scans (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    scanned_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS byte_scans (
    path TEXT NOT NULL,
    tagset TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (path, tagset)
);
"""


def cache_key(path: str) -> str:
    """The key of a file's rows: its absolute path, the same from any working folder."""
    return os.path.abspath(path)


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("pooltop", appauthor=False)) / "scan-cache.sqlite3"


Warn = Callable[[str], None]


class ScanCache:
    """The scan cache. Use as a context manager, or call close()."""

    def __init__(self, path: str | os.PathLike[str] | None = None, on_warning: Warn | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._warn = on_warning or (lambda message: None)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._conn: sqlite3.Connection | None = None
        self._open()

    @property
    def enabled(self) -> bool:
        return self._conn is not None

    # opening ----------------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._warn(f"scan cache disabled: cannot create {self.path.parent}: {e.strerror or e}")
            return
        try:
            self._conn = self._connect()
        except sqlite3.OperationalError as e:
            if _is_corruption(e):
                self._rebuild(e)
            else:  # locked past the timeout, read-only folder, ...
                self._warn(f"scan cache disabled: {self.path}: {e}")
        except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed"
            self._rebuild(e)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                with _transaction(conn):
                    if row[0] == "1":  # absolute paths stay valid; relative ones meant another folder
                        _drop_relative_rows(conn)
                    else:
                        conn.execute("DELETE FROM scans")
                        conn.execute("DELETE FROM byte_scans")
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
            conn.execute("SELECT count(*) FROM scans WHERE path = ''").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _rebuild(self, error: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                extra = Path(str(self.path) + suffix)
                if extra.exists():
                    os.replace(extra, Path(str(aside) + suffix))
        except OSError as e:
            self._warn(f"scan cache disabled: {self.path} is unreadable ({error}) and cannot be moved: {e}")
            return
        self._warn(
            f"scan cache {self.path} was unreadable ({error}); moved it to {aside.name} and started anew"
        )
        try:
            self._conn = self._connect()
        except sqlite3.Error as e:
            self._warn(f"scan cache disabled: {self.path}: {e}")

    # reading ----------------------------------------------------------------------------------------
    def lookup(self, path: str, size: int, mtime_ns: int, fingerprint: str) -> dict[str, Any] | None:
        row = self._query(
            "SELECT result FROM scans WHERE path = ? AND size = ? AND mtime_ns = ? AND fingerprint = ?",
            (cache_key(path), size, mtime_ns, fingerprint),
        )
        result = _decode(row)
        return result if isinstance(result, dict) else None

    def lookup_bytes(
        self, path: str, size: int, mtime_ns: int, fingerprint: str, tagset: str
    ) -> list[dict[str, Any]] | None:
        row = self._query(
            "SELECT result FROM byte_scans WHERE path = ? AND tagset = ? AND size = ? AND mtime_ns = ?"
            " AND fingerprint = ?",
            (cache_key(path), tagset, size, mtime_ns, fingerprint),
        )
        result = _decode(row)
        return result if isinstance(result, list) else None

    def _query(self, sql: str, args: tuple[Any, ...]) -> Any:
        if self._conn is None:
            return None
        try:
            return self._conn.execute(sql, args).fetchone()
        except sqlite3.DatabaseError as e:
            self._disable(e)
            return None

    # writing ----------------------------------------------------------------------------------------
    def store(self, path: str, size: int, mtime_ns: int, fingerprint: str, result: dict[str, Any]) -> None:
        self._pending.append(
            (
                "INSERT OR REPLACE INTO scans VALUES (?, ?, ?, ?, ?, ?)",
                (cache_key(path), size, mtime_ns, fingerprint, json.dumps(result, separators=(",", ":")),
                 time.time()),
            )
        )
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def store_bytes(
        self, path: str, size: int, mtime_ns: int, fingerprint: str, tagset: str, result: list[dict[str, Any]]
    ) -> None:
        self._pending.append(
            (
                "INSERT OR REPLACE INTO byte_scans VALUES (?, ?, ?, ?, ?, ?)",
                (cache_key(path), tagset, size, mtime_ns, fingerprint,
                 json.dumps(result, separators=(",", ":"))),
            )
        )
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if self._conn is None or not pending:
            return
        try:
            with _transaction(self._conn):
                for sql, args in pending:
                    self._conn.execute(sql, args)
        except sqlite3.OperationalError as e:
            if _is_corruption(e):
                self._disable(e)
            else:  # busy past the timeout: lose these rows, keep the cache
                self._warn(f"scan cache: could not save {len(pending)} results: {e}")
        except sqlite3.DatabaseError as e:
            self._disable(e)

    def _disable(self, error: Exception) -> None:
        self._warn(f"scan cache disabled for this run: {self.path}: {error}")
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    # housekeeping -----------------------------------------------------------------------------------
    def clear(self) -> None:
        if self._conn is None:
            return
        with _transaction(self._conn):
            self._conn.execute("DELETE FROM scans")
            self._conn.execute("DELETE FROM byte_scans")

    def close(self) -> None:
        self.flush()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> ScanCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection):  # type: ignore[no-untyped-def]
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _drop_relative_rows(conn: sqlite3.Connection) -> None:
    for table in ("scans", "byte_scans"):
        paths = conn.execute(f"SELECT DISTINCT path FROM {table}").fetchall()
        relative = [(p,) for (p,) in paths if not (isinstance(p, str) and os.path.isabs(p))]
        conn.executemany(f"DELETE FROM {table} WHERE path = ?", relative)


def _is_corruption(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _decode(row: Any) -> Any:
    if row is None:
        return None
    try:
        return json.loads(row[0])
    except (ValueError, TypeError):
        return None
