"""Importers of foreign formats: other tools' text turned into pooltop Snapshots.

- poolmon: `poolmon /n` logs and copies of poolmon's screen
- poolused: WinDbg `!poolused` output (debugger logs, pasted text)
- textfile: what they share: decoding, tags, bounded numbers, counting the lines skipped
"""
