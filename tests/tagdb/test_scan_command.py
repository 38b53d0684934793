"""`pooltop tags scan`: the JSON contract, the other formats, -o, errors and exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pooltop.cli import main
from pooltop.errors import PooltopError
from pooltop.tagdb import CONFIDENCE_ORDER
from pooltop.tagdb.pooltag import parse_tag_text

BIN = Path(__file__).resolve().parent.parent / "data" / "drivers" / "bin"


def pooltop(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = pooltop(capsys, "tags", "scan", str(BIN), "--format", "json", "--no-cache")
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    doc = json.loads(out)
    assert set(doc) >= {"drivers", "rejected"}
    assert doc["drivers"], "the fixtures hold drivers"
    for d in doc["drivers"]:
        assert {"path", "name", "arch", "tags"} <= set(d)
        assert d["name"] == Path(d["path"]).name
        assert d["arch"] in ("x64", "x86", "arm64")
        for t in d["tags"]:
            assert {"tag", "confidence", "sites"} <= set(t)
            assert t["confidence"] in ("call-site", "immediate", "bytes")
            assert isinstance(t["sites"], list)
        ranks = [CONFIDENCE_ORDER.index(t["confidence"]) for t in d["tags"]]
        assert ranks == sorted(ranks)  # strongest evidence first
    by_name = {d["name"]: d for d in doc["drivers"]}
    basic = by_name["basic-x64-O2.sys"]
    assert {t["tag"]: t["confidence"] for t in basic["tags"]}["Bas1"] == "call-site"
    assert (basic["version"], basic["company"], basic["signed"]) == (
        "1.2.3.4",
        "pooltop test fixtures",
        False,
    )
    assert by_name["signed-basic-x64-O2.sys"]["signed"] is True
    rejected = {Path(r["path"]).name: r["reason"] for r in doc["rejected"]}
    assert set(rejected) == {"bad-truncated.sys", "bad-garbage-imports.sys", "bad-not-pe.sys"}


def test_tag_option_adds_the_bytes_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = pooltop(
        capsys,
        "tags",
        "scan",
        str(BIN / "datatags-x64-O2.sys"),
        "-f",
        "json",
        "--no-cache",
        "-t",
        "DatA,Dtb1",
        "--tag",
        "Real",
    )
    assert code == 0
    (d,) = json.loads(out)["drivers"]
    found = {t["tag"]: t["confidence"] for t in d["tags"]}
    assert (found["DatA"], found["Dtb1"], found["Real"]) == ("bytes", "bytes", "call-site")
    assert all("offset" in s for t in d["tags"] if t["confidence"] == "bytes" for s in t["sites"])


def test_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = pooltop(
        capsys, "tags", "scan", str(BIN / "tailcall-x64-O2.sys"), str(BIN / "bad-not-pe.sys"), "--no-cache"
    )
    assert code == 0
    assert "Tail   call-site" in out
    assert "ExAllocatePoolWithTag" in out
    assert "bad-not-pe.sys: not a PE file" in out
    assert out.rstrip().endswith("1 driver(s) with pool calls, 1 rejected")


def test_localtag_output_reads_back_as_a_tag_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = pooltop(
        capsys, "tags", "scan", str(BIN / "basic-i686-O2.sys"), "-f", "localtag", "--no-cache"
    )
    assert code == 0
    parsed = parse_tag_text(out)
    assert parsed.malformed == ()
    entries = {e.tag: e for e in parsed.entries}
    assert set(entries) >= {"Bas1", "Bas2", "Bfr1", "Bpro"}
    assert entries["Bas1"].owner == "basic-i686-O2.sys"
    assert entries["Bas1"].description.startswith("call-site")


def test_output_file_is_written_whole(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "scan.json"
    code, out, _ = pooltop(
        capsys, "tags", "scan", str(BIN / "ndis-x64-Os.sys"), "-f", "json", "--no-cache", "-o", str(target)
    )
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["drivers"][0]["name"] == "ndis-x64-Os.sys"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json"]  # no temporary file left


def test_failed_write_leaves_the_old_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "localtag.txt"
    target.write_text("old contents\n")

    def explode(report: object) -> str:
        raise PooltopError("disk full (simulated)")

    monkeypatch.setattr("pooltop.tagdb.command.scan.format_localtag", explode)
    code, _, err = pooltop(
        capsys,
        "tags",
        "scan",
        str(BIN / "ndis-x64-Os.sys"),
        "-f",
        "localtag",
        "--no-cache",
        "-o",
        str(target),
    )
    assert code == 1
    assert err.strip() == "pooltop: disk full (simulated)"
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["localtag.txt"]


def test_output_into_a_missing_folder_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = pooltop(
        capsys, "tags", "scan", str(BIN / "ndis-x64-Os.sys"), "--no-cache", "-o", str(tmp_path / "no" / "x")
    )
    assert code == 1
    assert err.startswith("pooltop: cannot write") and err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = pooltop(capsys, "tags", "scan", str(tmp_path / "missing.sys"))
    assert code == 2
    code, _, _ = pooltop(capsys, "tags", "scan", str(BIN), "--tag", "Toolong")
    assert code == 2
    code, _, _ = pooltop(capsys, "tags", "scan", str(BIN), "--format", "xml")
    assert code == 2


@pytest.mark.skipif(sys.platform == "win32", reason="on Windows the default folders are scanned")
def test_no_path_off_windows_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = pooltop(capsys, "tags", "scan", "--no-cache")
    assert code == 2
    assert "only on Windows" in err


def test_cache_file_option_and_unchanged_rescan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    args = ("tags", "scan", str(BIN), "--cache-file", str(db))
    code, first, _ = pooltop(capsys, *args)
    assert code == 0 and "from the cache" not in first
    code, second, _ = pooltop(capsys, *args)
    assert code == 0 and "from the cache" in second
    assert first.splitlines()[:-1] == second.splitlines()[:-1]
    db.write_bytes(b"garbage" * 50)
    code, third, err = pooltop(capsys, *args)
    assert code == 0
    assert "pooltop: warning: scan cache" in err
    assert third.splitlines()[:-1] == first.splitlines()[:-1]


def test_max_size_rejects_large_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    big = tmp_path / "big.sys"
    big.write_bytes((BIN / "basic-x64-O2.sys").read_bytes() + bytes(2 * 1024 * 1024))
    code, out, _ = pooltop(capsys, "tags", "scan", str(big), "-f", "json", "--no-cache", "--max-size", "1")
    assert code == 0
    (rejected,) = json.loads(out)["rejected"]
    assert rejected["reason"].startswith("too large")


def test_unreadable_files_do_not_stop_the_scan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.sys").write_bytes((BIN / "basic-x64-O2.sys").read_bytes())
    try:
        os.symlink(tmp_path / "nowhere.sys", folder / "broken.sys")
    except OSError:
        pytest.skip("cannot create symbolic links here")
    code, out, _ = pooltop(capsys, "tags", "scan", str(folder), "-f", "json", "--no-cache")
    assert code == 0
    assert [d["name"] for d in json.loads(out)["drivers"]] == ["a.sys"]
