"""`pooltop report` on snapshot files: one point in time, a few, and a series."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from helpers import DATA, make_snapshot

from pooltop.model import Pool
from pooltop.record import RecordingWriter
from pooltop.snapshots.writers import format_csv, format_json

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)
IMPORT = os.path.join(DATA, "import")


def write_series(folder, count: int, step_s: float = 600.0) -> list[str]:  # type: ignore[no-untyped-def]
    paths = []
    for i in range(count):
        snap = make_snapshot(
            [("Leak", NP, 1000 * i, 10 * i, 1_000_000 + 500_000 * i), ("Flat", PG, 50 + i, 50 + i, 4096),
             ("Saw ", NP, 10 * i, 10 * i, 8192 if i % 2 else 0)],
            t_s=i * step_s,
        )
        p = folder / f"s{i}.{'json' if i % 2 else 'csv'}"
        p.write_text(format_json(snap) if i % 2 else format_csv(snap))
        if not i % 2:  # CSV has no time of its own: the file's modification time is its time
            stamp = snap.taken_at.timestamp()
            os.utime(p, (stamp, stamp))
        paths.append(str(p))
    return paths


def test_one_snapshot_says_what_it_can_and_cannot_tell(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (p,) = write_series(tmp_path, 2)[1:]
    code, out, err = run("report", p)
    assert code == 0, err
    assert "(one snapshot)" in out and "cannot show a leak" in out and "Largest now" in out
    assert out.index("Leak") < out.index("Flat")  # largest first
    code, out, _ = run("report", p, "--format", "json")
    doc = json.loads(out)
    assert doc["single_point"] is True and doc["suspects"] == [] and doc["largest"][0]["tag"] == "Leak"
    assert "growth over time" in doc["limitations"]


def test_imported_poolmon_log_reports_as_one_point(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("report", os.path.join(IMPORT, "poolused-default.txt"))
    assert code == 0, err
    assert "Lk1x" in out and "cannot show a leak" in out and "modification times" in out
    assert "pooltop: warning:" in err and "outstanding allocations only" in err


def test_a_few_snapshots_list_growth_without_a_verdict(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    paths = write_series(tmp_path, 3)
    code, out, err = run("report", *reversed(paths))  # order on the command line does not matter
    assert code == 0, err
    assert "too few samples for a verdict (at least 5)" in out and "Leak" in out and "not a judgement" in out
    code, out, _ = run("report", *paths, "-f", "json")
    doc = json.loads(out)
    assert doc["too_few_points"] is True and doc["suspects"] == []
    assert doc["growth"][0]["tag"] == "Leak" and doc["growth"][0]["growth_bytes"] == 1_000_000
    assert doc["growth"][0]["per_day"] == 1_000_000 / 1200 * 86400


def test_a_series_of_snapshots_gets_verdicts(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    paths = write_series(tmp_path, 8)
    code, out, err = run("report", *paths, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.report/1"
    assert doc["suspects"][0]["tag"] == "Leak" and doc["suspects"][0]["verdict"] == "leak"
    assert doc["recording"]["samples"] == 8 and len(doc["inputs"]) == 8
    assert all(s["tag"] != "Flat" for s in doc["suspects"])
    code, out, _ = run("report", *paths)
    assert code == 0 and "leak" in out and "Leak" in out
    html_out = tmp_path / "r.html"
    code, _, err = run("report", *paths, "-f", "html", "-o", str(html_out))
    assert code == 0, err
    assert html_out.read_text().startswith("<!doctype html>")


def test_a_recording_still_reports_as_before(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    snaps = [make_snapshot([("Leak", NP, 10 * i, 0, 500_000 * i)], float(60 * i)) for i in range(10)]
    with RecordingWriter(rec, snaps[0]) as w:
        for s in snaps:
            w.append(s)
    code, out, err = run("report", rec, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["suspects"][0]["verdict"] == "leak"
    other = tmp_path / "x.json"
    other.write_text(format_json(snaps[0]))
    code, _, err = run("report", rec, str(other))
    assert code == 1 and "is a recording" in err


def test_snapshots_without_distinct_times_or_from_two_machines(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = make_snapshot([("Aaaa", NP, 1, 0, 1)])
    (tmp_path / "a.json").write_text(format_json(a))
    (tmp_path / "b.json").write_text(format_json(a))
    code, _, err = run("report", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert code == 1 and "same time" in err and err.count("\n") == 1
    other = make_snapshot([("Aaaa", NP, 1, 0, 1)], t_s=5)
    doc = json.loads(format_json(other))
    doc["host"]["name"] = "elsewhere"
    (tmp_path / "b.json").write_text(json.dumps(doc))
    code, _, err = run("report", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert code == 1 and "different machines" in err


def test_times_of_imported_text_files_come_from_the_files(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Path(IMPORT, "poolmon-two-tables.log").read_text(encoding="latin-1")
    first, second = src.split("\n\n Memory", 1)
    base = dt.datetime(2026, 5, 1, tzinfo=dt.UTC).timestamp()
    paths = []
    for i, text in enumerate((first + "\n", " Memory" + second)):
        p = tmp_path / f"poolsnap{i}.log"
        p.write_text(text, encoding="latin-1")
        os.utime(p, (base + 3600 * i, base + 3600 * i))
        paths.append(str(p))
    code, out, err = run("report", *paths, "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["growth"][0]["tag"] == "Lk1x" and doc["growth"][0]["growth_bytes"] == 10_000_000
    assert doc["recording"]["span_s"] == 3600.0
