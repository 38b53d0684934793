"""Hostile and odd input (issue 16 items 4, 6, 7) and honest comparisons (issue 14 item 5): lone
surrogates, control characters and formulas in names, damaged and inflating bundles, mixed kinds of
kernel memory, two machines."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import zipfile
import zlib

import pytest
from helpers import DATA, make_snapshot

import pooltop.snapshots.readers as readers
from pooltop.errors import BadInput
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.snapshots import load_snapshot
from pooltop.snapshots.writers import format_csv, format_json, format_text

NP = int(Pool.NONPAGED)
POOLMON = os.path.join(DATA, "import", "poolmon-system.log")


def snapshot_doc(tag: str = "Aaaa", host: str = "testhost", t_s: float = 0.0) -> dict:  # type: ignore[type-arg]
    """A pooltop.snapshot/1 object written here, not by the code under test."""
    taken = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC) + dt.timedelta(seconds=t_s)
    return {
        "schema": "pooltop.snapshot/1",
        "source": "windows-pooltag",
        "taken_at": taken.isoformat().replace("+00:00", "Z"),
        "host": {"name": host, "os": "Windows", "os_version": "10", "arch": "AMD64"},
        "totals": {"paged_pool": 1 << 20},
        "counters": [
            {"tag": tag, "pool": "nonpaged", "allocs": 10 + int(t_s), "frees": 2, "diff": 8 + int(t_s),
             "bytes": 640 + 64 * int(t_s)},
            {"tag": "Same", "pool": "paged", "allocs": 5, "frees": 5, "diff": 0, "bytes": 0},
        ],
    }


def write_json(path: os.PathLike[str] | str, doc: object) -> str:
    # ensure_ascii keeps a lone surrogate as the escape "\ud800", as another program would write it
    with open(path, "w", encoding="ascii") as f:
        json.dump(doc, f)
    return str(path)


def linux_snapshot(t_s: float = 0.0) -> Snapshot:
    c = CounterSet.build(["dentry"], [int(Pool.SLAB)], [0], [0], [100], [19200], has_alloc_counts=False,
                         counter_bits=64)
    return Snapshot("linux-slab", dt.datetime(2026, 1, 2, tzinfo=dt.UTC) + dt.timedelta(seconds=t_s), 0,
                    HostInfo("box", "Linux", "6.18", "x86_64"), Totals(), c)


# --- item 4: lone surrogates ------------------------------------------------------------------


def test_lone_surrogates_never_crash_an_output(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = write_json(tmp_path / "a.json", snapshot_doc("A\ud800b", "h\udfffost"))
    b = write_json(tmp_path / "b.json", snapshot_doc("A\ud800b", "h\udfffost", t_s=60))
    for args in (("import", a), ("import", a, "-f", "csv"), ("import", a, "-f", "text"), ("report", a),
                 ("report", a, b, "-f", "json"), ("diff", a, b), ("diff", a, b, "-f", "json"),
                 ("diff", a, b, "-f", "csv")):
        code, out, err = run(*args)
        assert code == 0, (args, err)
        out.encode("utf-8")  # strict: a lone surrogate would raise here, as it did on stdout
        err.encode("utf-8")
        assert "\\ud800" in out or args[0] == "report", args
    code, out, _ = run("import", a)
    back = json.loads(out)
    assert back["host"]["name"] == "h\\udfffost" and back["counters"][0]["tag"] == "A\\ud800b"
    bundle = str(tmp_path / "b.zip")
    code, _, err = run("bundle", "-o", bundle, "--snapshot", a)
    assert code == 0, err
    with zipfile.ZipFile(bundle) as z:
        assert "A\\\\ud800b" in z.read("snapshot.json").decode("utf-8")


def test_json_writers_escape_a_lone_surrogate_whatever_the_source() -> None:
    """A name holding a lone surrogate (a live source, a replayed file) is written as its JSON
    escape: the text encodes as UTF-8 and reads back to the same string."""
    c = CounterSet.build(["a\ud800b"], [int(Pool.SLAB)], [0], [0], [1], [64], has_alloc_counts=False,
                         counter_bits=64)
    snap = Snapshot("linux-slab", dt.datetime(2026, 1, 2, tzinfo=dt.UTC), 0,
                    HostInfo("h\udc80", "Linux", "6.18", "x86_64"), Totals(), c)
    text = format_json(snap)
    assert "\\ud800" in text.encode("utf-8").decode("ascii", "replace")
    doc = json.loads(text)
    assert doc["counters"][0]["tag"] == "a\ud800b" and doc["host"]["name"] == "h\udc80"


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_times_past_what_a_datetime_holds_are_bad_input(tmp_path, when: str) -> None:  # type: ignore[no-untyped-def]
    """Found by benchmarks/fuzz_readers.py: OverflowError from converting to UTC."""
    doc = snapshot_doc()
    doc["taken_at"] = when
    with pytest.raises(BadInput, match="out of range"):
        load_snapshot(write_json(tmp_path / "a.json", doc))


@pytest.mark.parametrize("uptime", [float("nan"), float("inf")])
def test_an_uptime_that_is_not_a_number_is_no_uptime(run, tmp_path, uptime: float) -> None:  # type: ignore[no-untyped-def]
    """Found by benchmarks/fuzz_readers.py: NaN read from lenient JSON made `report --format json`
    fail (strict JSON has no NaN)."""
    doc = snapshot_doc()
    doc["host"]["uptime_s"] = uptime
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))  # Python writes NaN and Infinity, as lenient writers do
    assert load_snapshot(str(path)).host.uptime_s is None
    b = tmp_path / "b.json"
    doc["taken_at"] = "2026-01-02T04:04:05Z"
    b.write_text(json.dumps(doc))
    code, out, err = run("report", str(path), str(b), "-f", "json")
    assert code == 0, err
    json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the report"))


# --- item 4: damaged and inflating bundles ----------------------------------------------------


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def make_zip(path: str, member: str, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(member, data)


def test_damaged_deflate_stream_is_one_line(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "b.zip")
    make_zip(path, "snapshot.json", json.dumps(snapshot_doc()).encode())
    raw = bytearray(read_bytes(path))
    start = 30 + len("snapshot.json")  # the local header, then the deflate stream
    # A stored-block header with a length and its complement that disagree: zlib.error
    raw[start] = 0x00
    raw[start + 1 : start + 5] = b"\x05\x00\x05\x00"
    with open(path, "wb") as f:
        f.write(raw)
    with zipfile.ZipFile(path) as z, pytest.raises(zlib.error):
        z.read("snapshot.json")  # what pooltop met before
    with pytest.raises(BadInput, match="damaged zip"):
        load_snapshot(path)
    code, out, err = run("import", path)
    assert code == 1 and out == "" and err.startswith("pooltop: ") and err.count("\n") == 1


def test_a_bundle_that_inflates_too_far_is_refused(run, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(readers, "MAX_BUNDLE_SNAPSHOT_BYTES", 1 << 20)
    doc = json.dumps(snapshot_doc())
    path = str(tmp_path / "bomb.zip")
    make_zip(path, "snapshot.json", (doc[:-1] + " " * (2 << 20) + "}").encode())
    assert os.path.getsize(path) < 10_000
    code, _, err = run("import", path)
    assert code == 1 and "inflates to more than 1 MiB" in err and err.count("\n") == 1
    ok = str(tmp_path / "ok.zip")
    make_zip(ok, "snapshot.json", doc.encode())
    assert load_snapshot(ok).counters.tags == ("Aaaa", "Same")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_damaged_streams(tmp_path, method: int) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "b.zip")
    make_zip(path, "snapshot.json", json.dumps(snapshot_doc()).encode(), method)
    raw = bytearray(read_bytes(path))
    start = 30 + len("snapshot.json")
    raw[start + 4 : start + 24] = bytes(20)
    with open(path, "wb") as f:
        f.write(raw)
    with pytest.raises(BadInput):
        load_snapshot(path)


# --- item 6: control characters; item 7: formulas in CSV ----------------------------------------


def odd_names() -> Snapshot:
    tags = ["Esc\x1b[31m", "Bel\x07", "Bs\x08x", "Cr\rx"]
    c = CounterSet.build(tags, [int(Pool.SLAB)] * 4, [0] * 4, [0] * 4, [1, 2, 3, 4], [64, 128, 192, 256],
                         has_alloc_counts=False, counter_bits=64)
    return Snapshot("linux-slab", dt.datetime(2026, 1, 2, tzinfo=dt.UTC), 0,
                    HostInfo("bad\x1bhost", "Linux", "6.18", "x86_64"), Totals(), c,
                    warnings=("a warning with \x07 in it",))


def test_control_characters_are_escaped_in_text_and_csv_and_kept_in_json() -> None:
    snap = odd_names()
    for text in (format_text(snap), format_csv(snap)):
        assert not any(ch in text for ch in "\x1b\x07\x08\r")
        assert "Esc\\x1b[31m" in text and "Bel\\x07" in text and "Cr\\x0dx" in text
    assert "bad\\x1bhost" in format_text(snap) and "\\x07 in it" in format_text(snap)
    doc = json.loads(format_json(snap))  # lossless: json escapes them, a reader gets them back
    assert [c["tag"] for c in doc["counters"]] == list(snap.counters.tags)


def test_control_characters_never_reach_the_terminal_from_diff_import_or_a_series_report(
        run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    docs = []
    for t_s in (0.0, 60.0):
        doc = snapshot_doc("Esc\x1b[31m", "h\x1bx", t_s)
        doc["warnings"] = ["a warning \x07"]
        docs.append(write_json(tmp_path / f"s{int(t_s)}.json", doc))
    for args in (("import", docs[0], "-f", "text"), ("import", docs[0], "-f", "csv"), ("diff", *docs),
                 ("report", docs[0]), ("report", *docs), ("report", docs[0], "-f", "html")):
        code, out, err = run(*args)
        assert code == 0, (args, err)
        assert not any(ch in out + err for ch in "\x1b\x07"), args
        assert "\\x1b" in out, args


FORMULAS = ["=cmd|'/C calc'!A0", "+SUM(1)", "-x", "@x", "'quoted", "\tTab", "\rCr", "Io  "]


def test_csv_cells_are_neutralised_against_formulas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = make_snapshot([(t, NP, 5, 1, -64 if i == 2 else 64) for i, t in enumerate(FORMULAS)])
    text = format_csv(snap)
    cells = [row["tag"] for row in csv.DictReader(io.StringIO(text))]
    assert cells == ["'=cmd|'/C calc'!A0", "'+SUM(1)", "'-x", "'@x", "''quoted", "\\x09Tab", "\\x0dCr",
                     "Io  "]
    assert "\n-x" not in text and ",-64," in text  # numbers stay numbers
    path = tmp_path / "s.csv"
    path.write_text(text)
    back = load_snapshot(str(path)).counters.tags
    assert back[:5] == tuple(FORMULAS[:5]) and back[-1] == "Io  "


def test_poolmon_imported_tags_are_neutralised_too(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "poolsnap.log"
    log.write_text(" Tag  Type     Allocs      Frees     Diff      Bytes  Per Alloc\n"
                   " =1+2 Nonp          5          1        4        256       64\n"
                   " @abc Paged         3          1        2        128       64\n")
    code, out, err = run("import", str(log), "-f", "csv")
    assert code == 0, err
    assert [r["tag"] for r in csv.DictReader(io.StringIO(out))] == ["'=1+2", "'@abc"]


# --- diff: the smaller items ------------------------------------------------------------------


def test_diff_of_a_file_with_itself_says_nothing_changed(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = write_json(tmp_path / "a.json", snapshot_doc())
    code, out, _ = run("diff", a, a)
    assert code == 0 and "No counter changed." in out and "No counter matches." not in out
    b = write_json(tmp_path / "b.json", snapshot_doc(t_s=60))
    code, out, _ = run("diff", a, b, "--include", "Nothing*")
    assert code == 0 and "No counter matches." in out


def test_diff_all_says_why_rows_are_not_shown(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = write_json(tmp_path / "a.json", snapshot_doc())
    b = write_json(tmp_path / "b.json", snapshot_doc(t_s=60))
    code, out, _ = run("diff", a, b, "--all", "--include", "Aaa*")
    assert code == 0
    summary = [line for line in out.splitlines() if "not shown" in line]
    assert summary == ["1 grew, 0 shrank, 0 new, 0 vanished, 1 unchanged; 1 row not shown "
                       "(1 left out by --include/--exclude)"]
    code, out, _ = run("diff", a, b)
    assert "1 row not shown (--all shows the unchanged ones)" in out


# --- issue 14 item 5: mixed kinds refused, two machines warned --------------------------------


def test_diff_and_report_refuse_mixed_kinds_of_memory(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    linux = [str(tmp_path / f"l{i}.json") for i in range(2)]
    for i, p in enumerate(linux):
        with open(p, "w") as f:
            f.write(format_json(linux_snapshot(60.0 * i)))
    code, out, err = run("diff", linux[0], POOLMON)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "is Linux slab" in err and "is Windows pool" in err and "does not compare" in err
    code, out, err = run("report", *linux, POOLMON)
    assert code == 1 and err.count("\n") == 1 and "does not report on different kinds" in err
    code, out, err = run("diff", *linux)
    assert code == 0, err


def test_diff_of_two_machines_of_one_kind_warns_naming_both(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = write_json(tmp_path / "a.json", snapshot_doc(host="alpha"))
    b = write_json(tmp_path / "b.json", snapshot_doc(host="beta", t_s=60))
    code, out, err = run("diff", a, b)
    assert code == 0
    warning = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "alpha" in warning[0] and "beta" in warning[0]
    code, out, err = run("diff", a, b, "-f", "json")
    assert code == 0 and "alpha" in err and "beta" in err and err.startswith("pooltop: warning:")
    assert json.loads(out)["warnings"] == [warning[0].removeprefix("warning: ")]
    code, _, err = run("report", a, b)
    assert code == 1 and "different machines" in err
