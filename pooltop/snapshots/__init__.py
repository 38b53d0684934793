"""The snapshot format, read and write side by side.

- writers: a snapshot as JSON (the `pooltop.snapshot/1` contract), CSV or poolmon-like text; the
  CSV and text columns come from `model.COLUMNS`
- readers: any file pooltop reads (JSON and CSV exports, recordings, bundles, and through
  `pooltop.importers` poolmon logs and !poolused output) back into Snapshots; `FILE@INDEX`
  references
- export: the live view's `x` export to a new timestamped file
- compat: whether snapshots can be compared (one kind of kernel memory; which machines)
- texttable: aligned plain-text tables (snapshot and diff text)
"""

from pooltop.snapshots.export import EXPORT_DIR_ENV, EXPORT_FORMAT_ENV, export_snapshot
from pooltop.snapshots.readers import load_snapshot, load_snapshots
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
