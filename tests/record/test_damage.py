"""Damaged recordings, each damage made with sqlite3 directly: every reader (report, diff, view,
record's continue, bundle) ends in one line that names the file and what is wrong, exit 1, and
what is still readable is read (the report covers the samples before a damaged one, and says so)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Callable

import pytest
from frame_encoder import encode
from helpers import churn

from pooltop.cli import main
from pooltop.errors import BadInput
from pooltop.model import Totals
from pooltop.record import Recording, RecordingWriter

SAMPLES = 120  # full frames at sample ids 1, 11, ... 111; the samples table spans several pages
DAMAGED_ID = 115  # after the last full frame: the last sample, and continuing, need it


def snaps() -> list:  # type: ignore[type-arg]
    return [dataclasses.replace(s, totals=Totals(paged_pool=i + 1)) for i, s in enumerate(churn(SAMPLES, 7))]


@pytest.fixture
def rec(tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "rec.db")
    with RecordingWriter(path, snaps()[0], interval_s=1.0, full_every=10) as w:
        for s in snaps():
            w.append(s)
    return path


def sql(*statements: str) -> Callable[[str], None]:
    def damage(path: str) -> None:
        con = sqlite3.connect(path)
        for statement in statements:
            con.execute(statement)
        con.commit()
        con.close()

    return damage


def wrong_shape(path: str) -> None:
    frame = encode([1], [], [[1], [2], [3]], 0, [], ["<i1"] * 6)  # 3 columns; the recording has 4
    con = sqlite3.connect(path)
    con.execute("UPDATE samples SET frame = ? WHERE id = ?", (frame, DAMAGED_ID))
    con.commit()
    con.close()


def malformed_page(path: str) -> None:
    con = sqlite3.connect(path)
    try:
        pages = con.execute("SELECT pageno FROM dbstat WHERE name = 'samples' AND pagetype = 'leaf'")
        leaves = [p for (p,) in pages]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find the samples' pages")
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    page = leaves[len(leaves) // 2]
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xa5" * size)


# damage -> what `report`, `diff` (first vs last) and the readers of the last sample (`view --start -1`,
# continuing with `record`) say: "ok", a warning (the report covers the samples before the damage),
# or the one-line error they fail with.
DAMAGES: dict[str, tuple[Callable[[str], None], str, str, str]] = {
    "foreign pool": (sql("UPDATE keys SET pool = 99 WHERE id = 1"), *["error:pool 99"] * 3),
    "no keys table": (sql("DROP TABLE keys"), *["error:no such table: keys"] * 3),
    "no meta table": (sql("DROP TABLE meta"), *["error:no such table: meta"] * 3),
    "no owners table": (sql("DROP TABLE owners"), "ok", "ok", "ok"),
    "host not an object": (sql("UPDATE meta SET value = '5' WHERE key = 'host'"), *["error:host is int"] * 3),
    "columns not a list": (sql("UPDATE meta SET value = '{}' WHERE key = 'columns'"), *["error:columns"] * 3),
    "text not UTF-8": (sql("UPDATE keys SET tag = CAST(x'ff41ff41' AS TEXT) WHERE id = 1",
                           "UPDATE meta SET value = CAST(x'c3' AS TEXT) WHERE key = 'created_at'"),
                       "ok", "ok", "ok"),
    "frame of another shape": (wrong_shape, "warning:3 columns, not 4", *["error:3 columns, not 4"] * 2),
    "frame not zlib": (sql(f"UPDATE samples SET frame = x'00ff' WHERE id = {DAMAGED_ID}"),
                       "warning:not zlib data", *["error:not zlib data"] * 2),
    "time not a number": (sql(f"UPDATE samples SET wall_us = 'noon' WHERE id = {DAMAGED_ID}"),
                          f"warning:sample {DAMAGED_ID - 1}", "ok", "ok"),
    # the last counter to appear, gone again before the first and the last sample
    "counter not defined": (sql("DELETE FROM keys WHERE id = (SELECT max(id) FROM keys)"),
                            "warning:does not define", "ok", "ok"),
    "malformed page": (malformed_page, "warning:malformed", *["error:malformed"] * 2),
}


def pooltop(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def check(result: tuple[int, str, str], expect: str, path: str) -> None:
    code, _out, err = result
    lines = err.splitlines()
    assert "Traceback" not in err
    assert all(line.startswith("pooltop: ") for line in lines), err
    if expect.startswith("error:"):
        assert code == 1 and len(lines) == 1, err
        assert path in lines[0] and expect[6:] in lines[0], err
    elif expect.startswith("warning:"):
        assert code == 0, err
        warned = [line for line in lines if line.startswith("pooltop: warning: ")]
        assert len(warned) == 1 and path in warned[0] and expect[8:] in warned[0], err
        assert "covers the samples before it" in warned[0]
    else:
        assert code == 0 and "warning" not in err, err


@pytest.mark.parametrize("name", DAMAGES)
def test_report_and_diff_of_a_damaged_recording(capsys, rec: str, name: str) -> None:  # type: ignore[no-untyped-def]
    damage, on_report, on_diff, _on_last = DAMAGES[name]
    damage(rec)
    check(pooltop(capsys, "report", rec, "--format", "json", "--points", "10"), on_report, rec)
    check(pooltop(capsys, "diff", rec), on_diff, rec)


@pytest.mark.parametrize("name", [n for n, (_d, _r, _f, on_last) in DAMAGES.items() if on_last != "ok"])
def test_view_and_continuing_a_damaged_recording(capsys, monkeypatch, rec: str, name: str) -> None:  # type: ignore[no-untyped-def]
    damage, _on_report, _on_diff, on_last = DAMAGES[name]
    damage(rec)

    def live_view(*args: object, **kwargs: object) -> None:
        raise AssertionError("the live view started on a recording whose last sample is damaged")

    monkeypatch.setattr("pooltop.app.command.run_live", live_view)
    # the last sample is unreadable, so the replay stops before the live view starts
    check(pooltop(capsys, "view", "--start", "-1", rec), on_last, rec)
    with pytest.raises(BadInput) as exc:
        RecordingWriter(rec, snaps()[0]).close()
    assert rec in str(exc.value) and on_last[6:] in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", [n for n, (_d, report, _f, _l) in DAMAGES.items() if report[:5] != "error"])
def test_bundle_of_a_readable_damaged_recording(capsys, rec: str, tmp_path, name: str) -> None:  # type: ignore[no-untyped-def]
    damage, on_report, _on_diff, _on_last = DAMAGES[name]
    damage(rec)
    out = str(tmp_path / "out.zip")
    check(pooltop(capsys, "bundle", "-o", out, "--recording", rec, "--snapshot", f"{rec}@0"), on_report,
          rec)
    assert os.path.getsize(out) > 0


def test_the_report_of_a_damaged_recording_covers_the_samples_before_it(rec: str) -> None:
    from pooltop.record import read_series

    wrong_shape(rec)
    with Recording(rec) as r:
        series = read_series(r, max_points=1000)
    assert series.samples == DAMAGED_ID - 1 and len(series.seconds) == DAMAGED_ID - 1
    assert series.damage is not None and f"sample {DAMAGED_ID - 1}" in series.damage
    assert series.totals[-1] == Totals(paged_pool=DAMAGED_ID - 1)
