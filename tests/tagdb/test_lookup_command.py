"""`pooltop tags lookup`, driven through the `tags` click group.

Tag files are written inline with invented tags. The overlay path, the working directory and the
Program Files variables point into tmp_path so no real pooltag.txt or user overlay is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pooltop.errors import PooltopError
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb.command import tags

TAGS = "Zq - nt!zq - general\nZqab - zqdrv.sys - adapter blocks\nZqa? - zqdrv.sys - family\nnot a line\n"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    overlay = tmp_path / "config" / "tags.txt"
    monkeypatch.setattr(pt, "default_overlay_path", lambda: overlay)
    for var in ("ProgramFiles(x86)", "ProgramFiles", "ProgramW6432"):
        monkeypatch.setenv(var, str(tmp_path / "no-kits"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (tmp_path / "tags.txt").write_text(TAGS)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(tags, ["lookup", *args])


def test_text_output_lists_every_candidate(isolated: Path) -> None:
    result = run("Zqab", "--tagfile", str(isolated / "tags.txt"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "'Zqab'"
    assert "exact" in lines[1] and "zqdrv.sys" in lines[1] and "adapter blocks" in lines[1]
    assert "wildcard" in lines[2] and "Zqa?" in lines[2]
    assert len(lines) == 3


def test_json_output(isolated: Path) -> None:
    result = run("Zq", "Zqaz", "--tagfile", str(isolated / "tags.txt"), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [t["tag"] for t in doc["tags"]] == ["Zq  ", "Zqaz"]
    assert doc["tags"][0]["candidates"] == [
        {"owner": "nt!zq", "description": "general", "source": "tags.txt", "confidence": "exact"}
    ]
    assert doc["tags"][1]["candidates"][0]["pattern"] == "Zqa?"
    [source] = doc["sources"]
    assert source["source"] == "tags.txt" and source["entries"] == 3 and source["malformed_lines"] == [4]


def test_malformed_lines_are_reported_on_stderr(isolated: Path) -> None:
    result = run("Zqab", "--tagfile", str(isolated / "tags.txt"))
    assert "1 unreadable line(s) ignored (line 4)" in result.stderr
    assert "unreadable" not in result.stdout


def test_escaped_tags_are_accepted(isolated: Path) -> None:
    result = run("Zqa\\x01", "--tagfile", str(isolated / "tags.txt"), "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["tags"][0]["tag"] == "Zqa\\x01"
    assert doc["tags"][0]["candidates"][0]["owner"] == "zqdrv.sys"


def test_some_tags_unknown_still_exits_zero(isolated: Path) -> None:
    result = run("Zqab", "Nope", "--tagfile", str(isolated / "tags.txt"))
    assert result.exit_code == 0
    assert "'Nope'\n  no owner known" in result.stdout


def test_no_tag_known_fails_with_a_pooltop_error(isolated: Path) -> None:
    result = run("Nope", "Nada", "--tagfile", str(isolated / "tags.txt"))
    assert isinstance(result.exception, PooltopError)
    assert result.exit_code == 1
    assert str(result.exception) == "no owner known for 'Nope', 'Nada'"
    assert "no owner known" in result.stdout


def test_missing_tagfile_is_a_usage_error(isolated: Path) -> None:
    # issue 16: the same exit status in every command (`snapshot` said 2, `tags lookup` 1)
    result = run("Zqab", "--tagfile", str(isolated / "absent.txt"))
    assert result.exit_code == 2
    assert "absent.txt" in result.stderr and "does not exist" in result.stderr
    assert result.stdout == ""


def test_unreadable_tagfile_is_a_pooltop_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pt, "MAX_TAG_FILE_BYTES", 16)  # what a file too large to be a tag file gets
    result = run("Zqab", "--tagfile", str(isolated / "tags.txt"))
    assert isinstance(result.exception, PooltopError) and result.exit_code == 1
    assert "tags.txt" in str(result.exception) and "\n" not in str(result.exception)
    assert result.stdout == ""


def test_a_tag_longer_than_four_bytes_is_a_usage_error(isolated: Path) -> None:
    result = run("Zqabc")
    assert result.exit_code == 2
    assert "--slab" in result.output


def test_overlay_wins_and_no_pooltag_note_is_printed(isolated: Path) -> None:
    pt.add_overlay_entry("Zqab", "mine.sys", "my note", path=pt.default_overlay_path())
    result = run("Zqab", "--format", "json")
    assert result.exit_code == 0, result.output
    [candidate] = json.loads(result.stdout)["tags"][0]["candidates"]
    assert (candidate["owner"], candidate["confidence"], candidate["source"]) == (
        "mine.sys",
        "overlay",
        "overlay",
    )
    assert "no pooltag.txt found" in result.stderr


def test_pooltag_in_working_directory_is_found(isolated: Path) -> None:
    (isolated / "work" / "pooltag.txt").write_text("Zqcd - cwd.sys - found in cwd\n")
    result = run("Zqcd", "--format", "json")
    assert json.loads(result.stdout)["tags"][0]["candidates"][0]["source"] == "pooltag.txt"
    assert "no pooltag.txt found" not in result.stderr


def test_slab_names(isolated: Path) -> None:
    (isolated / "work" / "pooltag.txt").write_text("pid - zq.sys - a pool tag that looks like a slab\n")
    result = run("--slab", "pid", "--format", "json")
    assert result.exit_code == 0, result.output
    [candidate] = json.loads(result.stdout)["tags"][0]["candidates"]
    assert (candidate["source"], candidate["owner"]) == ("slab", "kernel")
