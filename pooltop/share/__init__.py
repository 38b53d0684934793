"""Sharing the evidence: snapshot files read back, diffs, imports of poolmon and WinDbg output,
the vendor bundle, and the live view's export.

- snapshot_io: tell file kinds apart by content, read any of them into Snapshots, export_snapshot
- poolmon, poolused: importers for `poolmon /n` logs and WinDbg `!poolused` output
- diff: per-tag change between two snapshots
- series: `pooltop report` on snapshot files (one point in time, or a series)
- bundle, capture: the zip for a driver's vendor, with stack-capture commands
- cli: the `diff`, `import` and `bundle` commands
"""

from pooltop.share.snapshot_io import (
    EXPORT_DIR_ENV,
    EXPORT_FORMAT_ENV,
    export_snapshot,
    load_snapshot,
    load_snapshots,
)

__all__ = ["EXPORT_DIR_ENV", "EXPORT_FORMAT_ENV", "export_snapshot", "load_snapshot", "load_snapshots"]
