"""Recordings: exact round trips, appends, size limits, disk full, damaged files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from helpers import as_dict, churn, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput, PooltopError
from pooltop.model import HostInfo, Pool, Snapshot
from pooltop.record import Recording, RecordingFull, RecordingWriter, read_series

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)


def test_every_sample_comes_back_exactly(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    snaps = churn(60)
    with RecordingWriter(path, snaps[0], interval_s=1.0, full_every=7) as w:
        for s in snaps:
            w.append(s)
    with Recording(path) as rec:
        assert len(rec) == 60
        got = [s for _, s in rec.snapshots()]
        assert [as_dict(s) for s in got] == [as_dict(s) for s in snaps]
        assert [s.taken_at for s in got] == [s.taken_at for s in snaps]
        assert got[5].totals == snaps[5].totals and got[5].host.name == snaps[0].host.name
        for i in (0, 6, 7, 33, 59, -1):
            assert as_dict(rec.snapshot_at(i)) == as_dict(snaps[i])
        with pytest.raises(BadInput, match="has 60 samples"):
            rec.snapshot_at(60)


@given(st.integers(0, 10_000), st.integers(1, 9))
@settings(max_examples=20, deadline=None)
def test_round_trip_property(tmp_path_factory, seed: int, full_every: int) -> None:
    path = str(tmp_path_factory.mktemp("p") / "rec.db")
    snaps = churn(25, seed)
    with RecordingWriter(path, snaps[0], full_every=full_every) as w:
        for s in snaps:
            w.append(s)
    with Recording(path) as rec:
        assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(s) for s in snaps]


def test_series_matrix_and_skimming(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    snaps = [
        make_snapshot([("Grow", NP, i, 0, 1000 * i), ("Flat", PG, 5, 5, 77)], float(i)) for i in range(50)
    ]
    with RecordingWriter(path, snaps[0], full_every=5) as w:
        for s in snaps:
            w.append(s)
    with Recording(path) as rec:
        full = read_series(rec)
        assert full.keys == [("Grow", NP), ("Flat", PG)]
        assert full.columns["bytes"][:, 0].tolist() == [1000.0 * i for i in range(50)]
        assert full.seconds.tolist() == [float(i) for i in range(50)]
        few = read_series(rec, max_points=10)
        assert 2 <= len(few.seconds) <= 11
        assert few.columns["bytes"][-1, 0] == 49_000.0  # the last sample is always there
        assert few.sample_index[-1] == full.sample_index[-1]


def test_append_continues_the_same_host(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    first, second = churn(10, 1), churn(10, 2)
    with RecordingWriter(path, first[0]) as w:
        for s in first:
            w.append(s)
    with RecordingWriter(path, second[0]) as w:
        assert w.samples == 10
        for s in second:
            w.append(s)
    with Recording(path) as rec:
        assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(s) for s in first + second]


def test_append_refuses_another_host(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    snap = churn(1)[0]
    with RecordingWriter(path, snap) as w:
        w.append(snap)
    other = Snapshot(**{**snap.__dict__, "host": HostInfo("elsewhere", "Windows", "10", "AMD64")})
    with pytest.raises(PooltopError, match="recorded on testhost"):
        RecordingWriter(path, other)
    with Recording(path) as rec:
        assert len(rec) == 1


def test_max_size_stops_with_a_valid_file(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    snaps = churn(400, 3)
    written = 0
    with (
        pytest.raises(RecordingFull, match="max-size"),
        RecordingWriter(path, snaps[0], max_size=70_000) as w,
    ):
        for s in snaps:
            w.append(s)
            written += 1
    with Recording(path) as rec:
        # the sample that crossed the limit was committed before the writer said stop
        assert len(rec) == written + 1 < 400
        assert as_dict(rec.snapshot_at(-1)) == as_dict(snaps[written])
    assert os.path.getsize(path) <= 70_000 + 16 * 4096


class FullDisk:
    """Stands in for the SQLite connection once the disk fills up."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT INTO samples"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.con.execute(sql, *args)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.con, name)


def test_disk_full_keeps_every_committed_sample(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    snaps = churn(20, 4)
    with RecordingWriter(path, snaps[0]) as w:
        for s in snaps[:12]:
            w.append(s)
        real = w.con
        w.con = FullDisk(real)  # type: ignore[assignment]
        with pytest.raises(RecordingFull, match="disk is full"):
            w.append(snaps[12])
        w.con = real
    with Recording(path) as rec:
        assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(s) for s in snaps[:12]]


@pytest.mark.parametrize("content", [b"", b"hello, not a database", b"SQLite format 3\x00" + b"\x00" * 50])
def test_damaged_files_give_a_clear_error(tmp_path, content: bytes) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    with pytest.raises(BadInput) as exc:
        Recording(str(path))
    assert "\n" not in str(exc.value)


def test_another_sqlite_database_is_not_a_recording(tmp_path) -> None:
    path = str(tmp_path / "other.db")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match="not a pooltop recording"):
        Recording(path)


def test_truncated_recording_gives_a_clear_error(tmp_path) -> None:
    path = tmp_path / "rec.db"
    snaps = churn(200, 5)
    with RecordingWriter(str(path), snaps[0]) as w:
        for s in snaps:
            w.append(s)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput), Recording(str(path)) as rec:
        for _ in rec.snapshots():
            pass


def test_missing_file(tmp_path) -> None:
    with pytest.raises(PooltopError, match="does not exist"):
        Recording(str(tmp_path / "nope.db"))
    assert not os.path.exists(tmp_path / "nope.db")  # reading never creates a file


def copy_db_alone(path: str, folder) -> str:  # type: ignore[no-untyped-def]
    """What a user copies off a machine: the .db file, without its -wal."""
    copy = str(folder / "copy.db")
    with open(path, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    return copy


def test_the_db_alone_holds_every_sample_up_to_the_last_checkpoint(tmp_path) -> None:
    snaps = churn(12, 6)
    path = str(tmp_path / "rec.db")
    rarely = RecordingWriter(path, snaps[0], checkpoint_every_s=3600)
    try:
        for s in snaps:
            rarely.append(s)
        with Recording(copy_db_alone(path, tmp_path)) as rec:  # the first sample is always checkpointed
            assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(snaps[0])]
    finally:
        rarely.close()
    os.remove(path)
    often = RecordingWriter(path, snaps[0], checkpoint_every_s=0)
    try:
        for s in snaps:
            often.append(s)
        with Recording(copy_db_alone(path, tmp_path)) as rec:
            assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(s) for s in snaps]
    finally:
        often.close()


KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from helpers import churn
from pooltop.record import RecordingWriter
snaps = churn(30, 8)
w = RecordingWriter(sys.argv[1], snaps[0], checkpoint_every_s=0)
for s in snaps:
    w.append(s)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_copy_of_the_db_alone_after_a_hard_kill_is_a_valid_recording(tmp_path) -> None:
    path = str(tmp_path / "rec.db")
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, path, tests], timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert os.path.exists(path + "-wal")  # the kill left the WAL behind
    with Recording(copy_db_alone(path, tmp_path)) as rec:
        assert [as_dict(s) for _, s in rec.snapshots()] == [as_dict(s) for s in churn(30, 8)]
