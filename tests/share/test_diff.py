"""`pooltop diff`: growth, new and vanished tags, 32-bit wraps, recordings and imported files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

import pytest
from helpers import DATA, make_snapshot

from pooltop.model import Pool
from pooltop.record import RecordingWriter
from pooltop.share.diff import diff_snapshots, render_text, select_rows
from pooltop.snapshots.writers import format_csv, format_json

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)
U32 = 1 << 32
IMPORT = os.path.join(DATA, "import")


def by_tag(rows):  # type: ignore[no-untyped-def]
    return {r.tag: r for r in rows}


def test_growth_new_vanished_and_wrapped_counters() -> None:
    a = make_snapshot([
        ("Grow", NP, 1000, 400, 60_000),
        ("Wrap", NP, U32 - 10, U32 - 30, 2_000),  # allocs and frees wrap past 2^32
        ("Same", PG, 5, 5, 0),
        ("Gone", PG, 9, 1, 4_096),
    ], t_s=0.0)
    b = make_snapshot([
        ("Grow", NP, 1500, 500, 160_000),
        ("Wrap", NP, 15, U32 - 2, 2_500),
        ("Same", PG, 5, 5, 0),
        ("Newt", PG, 40, 10, 7_000),
    ], t_s=3600.0)
    d = diff_snapshots(a, b, "a.json", "b.json")
    rows = by_tag(d.rows)
    assert d.seconds == 3600.0 and d.alloc_counts
    grow = rows["Grow"]
    assert (grow.status, grow.change.bytes, grow.change.diff) == ("changed", 100_000, 400)
    w = rows["Wrap"]
    assert w.wrapped and w.change.allocs == 25 and w.change.frees == 28 and w.change.diff == -3
    assert rows["Newt"].status == "new" and rows["Newt"].before is None and rows["Newt"].change.bytes == 7_000
    assert rows["Gone"].status == "vanished" and rows["Gone"].after is None
    assert rows["Gone"].change.bytes == -4_096 and rows["Gone"].change.diff == -8
    assert rows["Same"].status == "same"
    shown = select_rows(d)
    assert [r.tag for r in shown] == ["Grow", "Newt", "Wrap", "Gone"]  # growth first, unchanged hidden
    by_name = select_rows(d, include_same=True, sort="tag")
    assert [r.tag for r in by_name] == ["Gone", "Grow", "Newt", "Same", "Wrap"]
    assert [r.tag for r in select_rows(d, top=1)] == ["Grow"]
    assert [r.tag for r in select_rows(d, include=["G*"])] == ["Grow", "Gone"]
    text = render_text(d, shown, 1)
    assert "Wrap" in text and "changed*" in text and "wrapped" in text and "1 new, 1 vanished" in text


def test_wide_counters_on_either_side_do_not_wrap() -> None:
    a = make_snapshot([("Big1", NP, U32 + 100, 50, 10)], counter_bits=64)
    b = make_snapshot([("Big1", NP, U32 + 400, 60, 20)], t_s=1.0, counter_bits=32)
    d = diff_snapshots(a, b)
    r = d.rows[0]
    assert (r.change.allocs, r.change.frees, r.change.diff) == (300, 10, 290) and not r.wrapped


def test_no_alloc_counts_compares_outstanding_only() -> None:
    a = make_snapshot([("filp", int(Pool.SLAB), 0, 0, 1000)], diff=[10])
    b = make_snapshot([("filp", int(Pool.SLAB), 0, 0, 5000)], diff=[50], t_s=5.0)
    a = dataclasses.replace(a, counters=dataclasses.replace(a.counters, has_alloc_counts=False))
    d = diff_snapshots(a, b)
    assert not d.alloc_counts and d.rows[0].change.diff == 40 and d.rows[0].change.allocs == 0
    assert any("not counted on both sides" in n for n in d.notes)
    assert "dAllocs" not in render_text(d, d.rows)


def test_cli_between_two_files_all_formats(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = make_snapshot([("Grow", NP, 10, 0, 100), ("Gone", PG, 1, 0, 64)])
    b = make_snapshot([("Grow", NP, 30, 0, 900), ("Newt", NP, 2, 0, 32)], t_s=60)
    (tmp_path / "a.json").write_text(format_json(a))
    (tmp_path / "b.csv").write_text(format_csv(b))
    code, out, err = run("diff", str(tmp_path / "a.json"), str(tmp_path / "b.csv"), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.diff/1"
    assert [(c["tag"], c["status"], c["change"]["bytes"]) for c in doc["counters"]] == [
        ("Grow", "changed", 800), ("Newt", "new", 32), ("Gone", "vanished", -64)]
    assert "no host, totals or time" in err  # the CSV's note reaches stderr
    a_path, b_path = str(tmp_path / "a.json"), str(tmp_path / "b.csv")
    code, out, _ = run("diff", a_path, b_path, "-f", "csv", "--sort", "tag")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["tag"] for r in rows] == ["Gone", "Grow", "Newt"] and rows[1]["d_bytes"] == "800"
    code, out, _ = run("diff", str(tmp_path / "a.json"), str(tmp_path / "b.csv"))
    assert code == 0 and out.startswith("pooltop diff") and "Grow" in out


def test_cli_recording_points(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    snaps = [make_snapshot([("Leak", NP, 100 * i, 10 * i, 1000 * i), ("Flat", PG, 5, 5, 0)], float(i))
             for i in range(6)]
    with RecordingWriter(rec, snaps[0]) as w:
        for s in snaps:
            w.append(s)
    code, out, err = run("diff", rec, "-f", "json")  # a lone recording: first vs last
    assert code == 0, err
    doc = json.loads(out)
    assert doc["before"]["file"] == rec + "@0" and doc["after"]["file"] == rec + "@-1"
    assert doc["counters"][0]["change"]["bytes"] == 5000 and doc["seconds"] == 5.0
    code, out, _ = run("diff", rec + "@1", rec + "@3", "-f", "json")
    assert json.loads(out)["counters"][0]["change"]["bytes"] == 2000
    code, _, err = run("diff", rec + "@7", rec + "@0")
    assert code == 1 and err.startswith("pooltop: ") and "6 samples" in err


def test_cli_imported_tables(run, generator) -> None:  # type: ignore[no-untyped-def]
    two = os.path.join(IMPORT, "poolmon-two-tables.log")
    code, out, err = run("diff", two, "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(c["tag"], c["change"]["bytes"]) for c in doc["counters"]] == [("Lk1x", 10_000_000)]
    assert doc["summary"]["same"] > 0
    code, out, _ = run("diff", os.path.join(IMPORT, "poolused-default.txt"),
                       os.path.join(IMPORT, "poolused-verbose.txt"), "-f", "json")
    assert code == 0
    assert json.loads(out)["alloc_counts"] is False  # !poolused's default display has no counts since boot


def test_cli_errors_are_one_line(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    single = tmp_path / "one.json"
    single.write_text(format_json(make_snapshot([("Aaaa", NP, 1, 0, 1)])))
    code, _, err = run("diff", str(single))
    assert code == 1 and "holds one snapshot" in err and err.count("\n") == 1
    code, _, err = run("diff", str(tmp_path / "missing.json"), str(single))
    assert code == 1 and "does not exist" in err
    code, _, err = run("diff", str(single) + "@0")
    assert code == 2


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_cli_output_file_is_written_atomically(run, tmp_path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a.json"
    a.write_text(format_json(make_snapshot([("Aaaa", NP, 1, 0, 1)])))
    b = tmp_path / "b.json"
    b.write_text(format_json(make_snapshot([("Aaaa", NP, 2, 0, 9)], t_s=1)))
    out = tmp_path / f"d.{fmt}"
    code, stdout, err = run("diff", str(a), str(b), "-f", fmt, "-o", str(out))
    assert code == 0 and stdout == "" and "wrote" in err
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json", f"d.{fmt}"]
