"""Every command's --tagfile fails the same way (issue 16): a path that does not exist or is a folder
is a usage error (2), a file that cannot be read a runtime failure (1) with one line naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import DATA

from pooltop.cli import main
from pooltop.tagdb import pooltag as pt

TREE = os.path.join(DATA, "linux", "vm-6.18")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    _out, err = capsys.readouterr()
    return int(exc.value.code or 0), err


@pytest.mark.parametrize(
    "command",
    [
        ["snapshot", "--root", TREE],
        ["record", "-o", "rec.db"],
        ["bundle", "-o", "evidence.zip"],
        ["serve"],
        ["tags", "lookup", "Zqab"],
    ],
    ids=lambda c: c[0] if c[0] != "tags" else "tags lookup",
)
@pytest.mark.parametrize("bad", ["absent.txt", "folder"])
def test_a_tagfile_that_is_not_there_is_a_usage_error(
    command: list[str], bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    code, err = run(capsys, *command, "--tagfile", str(tmp_path / bad))
    assert code == 2, err
    assert bad in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["folder"]  # nothing started, nothing written


def test_a_tagfile_that_cannot_be_read_is_a_runtime_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tagfile = tmp_path / "tags.txt"
    tagfile.write_text("Zqab - zqdrv.sys - adapter blocks\n")
    monkeypatch.setattr(pt, "MAX_TAG_FILE_BYTES", 16)  # what a file too large to be a tag file gets
    code, err = run(capsys, "snapshot", "--root", TREE, "--tagfile", str(tagfile))
    assert code == 1
    assert err.startswith("pooltop: ") and "tags.txt" in err and err.count("\n") == 1
