"""`pooltop bundle --who NAME`: the traces land in the zip and the README explains them."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from who_fakes import LINUX_TREE, FakeTracefs, alloc_line

from pooltop.cli import main
from pooltop.who import command
from pooltop.who.session import WhoTracer


def _bundle(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["bundle", *args])
    return int(exc.value.code or 0), capsys.readouterr().err


def _snapshot_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A snapshot of the recorded 6.18 tree (taking one live needs root)."""
    path = str(tmp_path / "snap.json")
    with pytest.raises(SystemExit) as exc:
        main(["snapshot", "--root", LINUX_TREE, "-f", "json", "-o", path])
    assert not exc.value.code
    capsys.readouterr()
    return path


def test_who_cannot_go_with_a_copied_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "b.zip")
    code, err = _bundle("-o", out, "--root", LINUX_TREE, "--who", "sigqueue", capsys=capsys)
    assert code == 2 and "--who traces this machine's kernel" in err
    assert not (tmp_path / "b.zip").exists()


def _zip(path: str) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist()}


def test_bundle_carries_who_files(fake_tracefs: FakeTracefs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    fake_tracefs.pipe = alloc_line(0x10, tgid=55) + "\n"

    def make(name: str, stacks: bool) -> WhoTracer:
        return WhoTracer(name, stacks=stacks, tracefs_root=fake_tracefs.root,
                         proc_root=os.path.join(LINUX_TREE, "proc"), sys_root=os.path.join(LINUX_TREE, "sys"),
                         platform="linux", mkdir=fake_tracefs.mkdir, rmdir=fake_tracefs.rmdir)

    monkeypatch.setattr(command, "make_tracer", make)
    monkeypatch.setattr(command, "current_platform", lambda: "linux")
    out = str(tmp_path / "b.zip")
    snap = _snapshot_file(tmp_path, capsys)
    code, err = _bundle("-o", out, "--snapshot", snap, "--who", "inotify_inode_mark", "--who", "no_such",
                        "--who-duration", "0.1", capsys=capsys)
    assert code == 0, err
    parts = _zip(out)
    doc = json.loads(parts["who-inotify_inode_mark.json"])
    assert doc["schema"] == "pooltop.who/1" and doc["cache"] == "sigqueue"
    assert doc["sites"][0]["function"] == "inotify_update_watch"
    assert "inotify_update_watch+0x18e/0x330" in parts["who-inotify_inode_mark.txt"]
    readme = parts["README.txt"]
    assert "who-inotify_inode_mark.json" in readme and "who-inotify_inode_mark.txt" in readme
    assert "The who-*.txt files name the kernel functions" in readme
    assert "--who no_such: not traced: no slab cache named 'no_such'" in readme
    assert "who-no_such.json" not in parts
    assert fake_tracefs.instances() == []


def test_bundle_who_on_windows_carries_the_capture_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(command, "current_platform", lambda: "win32")
    out = str(tmp_path / "b.zip")
    code, err = _bundle("-o", out, "--snapshot", _snapshot_file(tmp_path, capsys), "--who", "Leak",
                        capsys=capsys)
    assert code == 0, err
    parts = _zip(out)
    assert "xperf -on PROC_THREAD+LOADER+POOL" in parts["who-Leak.txt"]
    assert "who-Leak.txt" in parts["README.txt"]
