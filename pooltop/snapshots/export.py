"""The live view's `x` export: the shown rows to a new timestamped file, never replacing one."""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

from pooltop.atomic import atomic_write
from pooltop.errors import PooltopError
from pooltop.model import Snapshot
from pooltop.snapshots.writers import FORMATTERS
from pooltop.tracking import TrackedSample

#: the UI's `x` export: folder and format, overridable per call
EXPORT_DIR_ENV = "POOLTOP_EXPORT_DIR"
EXPORT_FORMAT_ENV = "POOLTOP_EXPORT_FORMAT"
EXPORT_EXTENSIONS = {"json": "json", "csv": "csv", "text": "txt"}


def export_snapshot(
    sample: Any,
    directory: str | None = None,
    fmt: str | None = None,
    *,
    rows: Any = None,
    owners: Any = None,
    now: dt.datetime | None = None,
) -> str:
    """Write `sample` (a TrackedSample or a Snapshot) to a new timestamped file; return its path.

    `directory` defaults to $POOLTOP_EXPORT_DIR, else the current folder; `fmt` (json, csv or
    text) to $POOLTOP_EXPORT_FORMAT, else json. The name is pooltop-HOST-YYYYMMDD-HHMMSS.EXT from
    the snapshot's time (UTC), with -2, -3... when that file exists: an export never replaces an
    earlier one. Written atomically (temporary file in the same folder, then a rename), so a crash
    never leaves half a file, and nothing is written anywhere but that one file.
    """
    folder = directory or os.environ.get(EXPORT_DIR_ENV) or os.getcwd()
    folder = os.path.expanduser(folder)
    chosen = (fmt or os.environ.get(EXPORT_FORMAT_ENV) or "json").strip().lower()
    if chosen == "txt":
        chosen = "text"
    if chosen not in EXPORT_EXTENSIONS:
        raise PooltopError(f"unknown export format {chosen!r} (use json, csv or text; ${EXPORT_FORMAT_ENV})")
    if not os.path.isdir(folder):
        raise PooltopError(f"cannot export to {folder}: not a folder (${EXPORT_DIR_ENV})")
    if isinstance(sample, TrackedSample):
        snap = sample.snapshot
        changes = sample.interval if sample.sample_number > 1 else None
        leak = sample.leak
    elif isinstance(sample, Snapshot):
        snap, changes, leak = sample, None, None
    else:
        raise TypeError("export_snapshot needs a TrackedSample or a Snapshot")
    host = re.sub(r"[^A-Za-z0-9._-]", "_", snap.host.name) or "host"
    stamp = (now or snap.taken_at).astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    ext = EXPORT_EXTENSIONS[chosen]
    path = os.path.join(folder, f"pooltop-{host}-{stamp}.{ext}")
    n = 2
    while os.path.lexists(path):
        path = os.path.join(folder, f"pooltop-{host}-{stamp}-{n}.{ext}")
        n += 1
    text = FORMATTERS[chosen](snap, rows, changes=changes, owners=owners, leak=leak)
    with atomic_write(path, newline="" if chosen == "csv" else None) as f:
        f.write(text)
    return path
