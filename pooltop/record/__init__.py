"""Recordings: samples written unattended into one SQLite file, and read back.

- database: the file's layout (tables, schema), opening and recognising it
- codec: one sample's frame (full or delta) and the state frames are applied to
- writer: RecordingWriter appends samples; recorder: the unattended loop of `pooltop record`
- reader: Recording (facts, owners, any sample as a Snapshot); series: every sample as matrices of
  intervals (last, lowest, highest value), swept by sweep.KeyTrack
- replay: a recording (or snapshots) played back through the live view's Source interface
- command: the `record` command
"""

from pooltop.record.database import is_recording
from pooltop.record.reader import Recording, RecordingInfo, read_info
from pooltop.record.series import Series, read_series
from pooltop.record.writer import RecordingFull, RecordingWriter

__all__ = [
    "Recording",
    "RecordingFull",
    "RecordingInfo",
    "RecordingWriter",
    "Series",
    "is_recording",
    "read_info",
    "read_series",
]
