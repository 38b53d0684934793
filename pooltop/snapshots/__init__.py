"""The snapshot format, read and write side by side.

- writers: a snapshot as JSON (the `pooltop.snapshot/1` contract), CSV or poolmon-like text; the
  CSV and text columns come from `model.COLUMNS`
- readers: any file pooltop reads (JSON and CSV exports, recordings, bundles, and through
  `pooltop.importers` poolmon logs and !poolused output) back into Snapshots; `FILE@INDEX`
  references; the live view's export
"""

from pooltop.snapshots.readers import (
    EXPORT_DIR_ENV,
    EXPORT_FORMAT_ENV,
    export_snapshot,
    load_snapshot,
    load_snapshots,
)
from pooltop.snapshots.writers import FORMATS, FORMATTERS

__all__ = [
    "EXPORT_DIR_ENV",
    "EXPORT_FORMAT_ENV",
    "FORMATS",
    "FORMATTERS",
    "export_snapshot",
    "load_snapshot",
    "load_snapshots",
]
