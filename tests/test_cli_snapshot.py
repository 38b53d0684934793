"""`pooltop snapshot` against a recorded Linux tree: formats, filters, sorting, files and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from helpers import DATA

from pooltop.cli import main

TREE = os.path.join(DATA, "linux", "vm-6.18")


def slabinfo_rows() -> dict[str, tuple[int, int]]:
    """cache -> (active objects, object size), read independently of pooltop's parser."""
    out = {}
    with open(os.path.join(TREE, "proc", "slabinfo")) as f:
        for line in f.read().splitlines()[2:]:
            parts = line.split()
            out[parts[0]] = (int(parts[1]), int(parts[3]))
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_json_follows_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "snapshot", "--root", TREE, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.snapshot/1"
    assert doc["source"] == "linux-slab"
    assert doc["taken_at"].endswith("Z")
    assert set(doc["host"]) >= {"name", "os", "os_version", "arch", "uptime_s"}
    with open(os.path.join(TREE, "proc", "sys", "kernel", "hostname")) as f:
        assert doc["host"]["name"] == f.read().strip()
    assert doc["totals"]["slab"] > 0 and "slab_unreclaimable" in doc["totals"]
    expected = slabinfo_rows()
    assert len(doc["counters"]) == len(expected)
    for c in doc["counters"]:
        active, size = expected[c["tag"]]
        assert c["pool"] == "slab" and c["diff"] == active and c["bytes"] == active * size
        assert {"allocs", "frees"} <= set(c)
    sizes = [c["bytes"] for c in doc["counters"]]
    assert sizes == sorted(sizes, reverse=True)  # default sort: bytes, largest first


def test_csv_has_one_row_per_counter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "snapshot", "--root", TREE, "-f", "csv", "--sort", "tag")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["tag"] for r in rows] == sorted(slabinfo_rows())
    assert {"tag", "pool", "allocs", "frees", "diff", "bytes", "per_alloc", "object_size"} <= set(rows[0])


def test_text_looks_like_poolmon(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "snapshot", "--root", TREE, "--top", "5")
    assert code == 0
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("Tag"))
    assert header.split()[:4] == ["Tag", "Type", "Diff", "Bytes"]
    body = lines[lines.index(header) + 1 :]
    assert len(body) == 5
    biggest = max(slabinfo_rows().items(), key=lambda kv: kv[1][0] * kv[1][1])[0]
    assert body[0].split()[0] == biggest


@pytest.mark.parametrize(
    ("args", "predicate"),
    [
        (["--include", "kmalloc-*"], lambda t: t.startswith("kmalloc-")),
        (["--include", "kmalloc-?k"],
         lambda t: t.startswith("kmalloc-") and len(t) == 10 and t.endswith("k")),
        (["--include", "kmalloc-*", "--exclude", "*-cg-*"],
         lambda t: t.startswith("kmalloc-") and "-cg-" not in t),
        (["--exclude", "*"], lambda t: False),
        (["--include", "KMALLOC-*"], lambda t: False),  # case-sensitive, as pool tags are
    ],
)
def test_wildcard_filters(capsys: pytest.CaptureFixture[str], args: list[str], predicate) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "snapshot", "--root", TREE, "-f", "json", *args)
    assert code == 0
    got = {c["tag"] for c in json.loads(out)["counters"]}
    assert got == {t for t in slabinfo_rows() if predicate(t)}


def test_pool_filter_and_top(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "snapshot", "--root", TREE, "-f", "json", "--pool", "paged")
    assert json.loads(out)["counters"] == []
    _, out, _ = run(capsys, "snapshot", "--root", TREE, "-f", "json", "--pool", "slab", "--top", "3",
                    "--sort", "diff", "--ascending")
    diffs = [c["diff"] for c in json.loads(out)["counters"]]
    assert diffs == sorted(v[0] for v in slabinfo_rows().values())[:3]


def test_output_file_is_written_whole(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "snap.json"
    target.write_text("old contents")
    code, out, err = run(capsys, "snapshot", "--root", TREE, "-f", "json", "-o", str(target))
    assert code == 0 and out == "" and str(target) in err
    assert json.loads(target.read_text())["schema"] == "pooltop.snapshot/1"
    assert os.listdir(tmp_path) == ["snap.json"]  # no temporary file left behind


def test_output_into_a_missing_folder_fails_cleanly(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "snapshot", "--root", TREE, "-o", str(tmp_path / "nope" / "x.json"))
    assert code == 1
    assert err.startswith("pooltop: ") and err.count("\n") == 1 and "does not exist" in err


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "keep.csv"
    target.write_text("precious")

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    code, _, err = run(capsys, "snapshot", "--root", TREE, "-f", "csv", "-o", str(target))
    assert code == 1 and "No space left on device" in err
    assert target.read_text() == "precious"
    assert os.listdir(tmp_path) == ["keep.csv"]


@pytest.mark.parametrize(
    "args",
    [
        ["snapshot", "--format", "xml"],
        ["snapshot", "--top", "0"],
        ["snapshot", "--sort", "dbytes"],  # change columns need --interval
        ["snapshot", "--interval", "soon"],
        ["snapshot", "--interval", "-1"],
        ["snapshot", "--ascending", "--descending"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, *args, *(["--root", TREE] if args[0] == "snapshot" else []))
    assert code == 2
    assert "Error" in err and "Traceback" not in err


def test_runtime_errors_are_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "slabinfo").write_text("slabinfo - version: 1.1\n")
    (tmp_path / "proc" / "meminfo").write_text("Slab: 4 kB\n")
    code, _, err = run(capsys, "snapshot", "--root", str(tmp_path))
    assert code == 1
    assert err == "pooltop: slabinfo version 1.1 is not supported (pooltop reads 2.1)\n"


def test_version_and_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "pooltop", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    import pooltop

    assert out.stdout.strip().endswith(pooltop.__version__)


def test_broken_pipe_is_quiet() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m pooltop snapshot --root {TREE} -f json | head -1",
        shell=True, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


def test_subcommands_load_lazily() -> None:
    """The live view's start does not pay for the scanner, exporter, report or share code."""
    code = (
        "import sys, click, pooltop.cli as c; "
        "names = c.cli.list_commands(click.Context(c.cli)); "
        "heavy = [m for m in ('pooltop.tagdb.scanner', 'pooltop.exporter', 'pooltop.report.render', "
        "'pooltop.share', 'capstone', 'pefile', 'matplotlib') if m in sys.modules]; "
        "print(' '.join(names)); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    names, heavy = out.stdout.splitlines()
    assert set(names.split()) >= {"snapshot", "record", "report", "view", "tags", "serve", "processes",
                                  "doctor", "diff", "import", "bundle"}
    assert heavy == "[]"
