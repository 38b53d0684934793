"""Sharing the evidence: diffs and the vendor bundle.

- diff: per-tag change between two snapshots
- bundle, capture: the zip for a driver's vendor, with stack-capture commands
- cli: the `diff`, `import` and `bundle` commands

The snapshot format itself (reading and writing) is `pooltop.snapshots`; poolmon and !poolused
importers are `pooltop.importers`; `pooltop report` on snapshot files is `pooltop.report.series`.
"""
