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

from typing import TYPE_CHECKING

from pooltop.lazy import lazy_names

if TYPE_CHECKING:
    from pooltop.snapshots.export import EXPORT_DIR_ENV, EXPORT_FORMAT_ENV, export_snapshot
    from pooltop.snapshots.readers import load_snapshot, load_snapshots
    from pooltop.snapshots.writers import FORMATS, FORMATTERS

#: name -> submodule; loaded on first use: `pooltop snapshot` needs only the writers, and the readers
#: bring every importer (~40 ms of CPU at its start)
_HOME = {"EXPORT_DIR_ENV": "export", "EXPORT_FORMAT_ENV": "export", "export_snapshot": "export",
         "load_snapshot": "readers", "load_snapshots": "readers",
         "FORMATS": "writers", "FORMATTERS": "writers"}


__getattr__ = lazy_names(__name__, _HOME)


__all__ = [
    "EXPORT_DIR_ENV",
    "EXPORT_FORMAT_ENV",
    "FORMATS",
    "FORMATTERS",
    "export_snapshot",
    "load_snapshot",
    "load_snapshots",
]
