"""`pooltop who` as users run it: output formats, -o, exit codes, Windows."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

import pytest
from who_fakes import FORMATS_54, LINUX_TREE, FakeTracefs, alloc_line, free_line

from pooltop.cli import main
from pooltop.who import command
from pooltop.who.session import WhoTracer

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return invoke


@pytest.fixture
def on_fake(fake_tracefs: FakeTracefs, monkeypatch: pytest.MonkeyPatch) -> FakeTracefs:
    def make(name: str, stacks: bool) -> WhoTracer:
        return WhoTracer(
            name,
            stacks=stacks,
            tracefs_root=fake_tracefs.root,
            proc_root=os.path.join(LINUX_TREE, "proc"),
            sys_root=os.path.join(LINUX_TREE, "sys"),
            platform="linux",
            mkdir=fake_tracefs.mkdir,
            rmdir=fake_tracefs.rmdir,
        )

    monkeypatch.setattr(command, "make_tracer", make)
    monkeypatch.setattr(command, "current_platform", lambda: "linux")
    return fake_tracefs


def test_json_output(on_fake: FakeTracefs, run: Run) -> None:
    on_fake.pipe = "\n".join([alloc_line(0x10, tgid=321), alloc_line(0x20, tgid=321), free_line(0x10)]) + "\n"
    code, out, err = run("who", "inotify_inode_mark", "--duration", "100ms", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.who/1"
    assert (doc["target"], doc["cache"]) == ("inotify_inode_mark", "sigqueue")
    assert doc["events"] == {"allocs": 2, "frees": 1, "lost": 0, "frees_before_trace": 0}
    (site,) = doc["sites"]
    assert site == {
        "call_site": "inotify_update_watch+0x18e/0x330",
        "function": "inotify_update_watch",
        "outstanding": 1,
        "bytes": 80,
        "allocs": 2,
        "frees": 1,
        "processes": [{"name": "python3", "pid": 321, "outstanding": 1}],
        "stacks": [],
    }
    assert isinstance(doc["seconds"], float)
    assert on_fake.instances() == []


def test_text_output_to_a_file(on_fake: FakeTracefs, run: Run, tmp_path: os.PathLike[str]) -> None:
    on_fake.pipe = alloc_line(0x10, comm="leaky\x1b[31m", tgid=77) + "\n"
    target = os.path.join(str(tmp_path), "who.txt")
    code, out, err = run("who", "sigqueue", "-d", "0.1", "-o", target)
    assert code == 0 and out == ""
    assert f"wrote {target}" in err
    with open(target) as f:
        text = f.read()
    assert "inotify_update_watch+0x18e/0x330" in text
    assert "leaky\\x1b[31m (77)" in text  # a thread name is escaped before it reaches a terminal
    assert "\x1b" not in text


def test_nothing_allocated_exits_1_after_the_report(on_fake: FakeTracefs, run: Run) -> None:
    code, out, err = run("who", "sigqueue", "-d", "0.05")
    assert code == 1
    assert "Nothing was allocated" in out
    assert err.strip().startswith("pooltop: nothing was allocated from sigqueue in")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("who",),
        ("who", 'sig"queue'),
        ("who", "sigqueue", "-d", "soon"),
        ("who", "sigqueue", "--format", "csv"),
    ],
)
def test_usage_errors_exit_2(on_fake: FakeTracefs, run: Run, args: tuple[str, ...]) -> None:
    code, _, _ = run(*args)
    assert code == 2
    assert on_fake.made == []


def test_unknown_cache_exits_1_with_one_line(on_fake: FakeTracefs, run: Run) -> None:
    code, out, err = run("who", "no_such_cache", "-d", "0.05")
    assert (code, out) == (1, "")
    assert err == ("pooltop: no slab cache named 'no_such_cache' "
                   "(see /proc/slabinfo, or /sys/kernel/slab for aliases)\n")


def test_not_root_exits_1_with_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "current_platform", lambda: "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, out, err = run("who", "sigqueue", "-d", "0.05")
    assert (code, out) == (1, "")
    assert err == "pooltop: tracing kernel allocations needs root (run pooltop with sudo)\n"


def test_windows_prints_the_capture_commands_and_exits_1(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "current_platform", lambda: "win32")
    code, out, err = run("who", "Leak")
    assert code == 1
    assert "xperf -on PROC_THREAD+LOADER+POOL -stackwalk PoolAlloc+PoolFree" in out
    assert "-PoolTag Leak" in out
    assert "xperf -d pool.etl" in out
    assert "wpr -start pool.wprp!PooltopPool -filemode" in out
    assert '<PoolTag Value="Leak"/>' in out
    assert "wpa pool.etl" in out
    assert err.startswith("pooltop: live attribution on Windows is not built yet")
    assert len(err.strip().splitlines()) == 1


def test_windows_tag_that_cannot_be_filtered(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "current_platform", lambda: "win32")
    code, out, _ = run("who", "a b|")
    assert code == 1
    assert "PoolFreeSession -BufferSize" in out and "<PoolTags>" not in out  # no tag filter
    assert "note: tag 'a b|'" in out


def test_an_event_without_a_needed_field_exits_1_with_one_line(on_fake: FakeTracefs, run: Run) -> None:
    for event, text in FORMATS_54.items():  # a 5.4 kernel: kmem_cache_alloc has no cache name
        with open(os.path.join(on_fake.root, "events", "kmem", event, "format"), "w") as f:
            f.write(text)
    shutil.rmtree(os.path.join(on_fake.root, "events", "kmem", "kmalloc"))
    code, out, err = run("who", "sigqueue", "-d", "0.05")
    assert (code, out) == (1, "")
    assert err == "pooltop: this kernel's kmem:kmem_cache_alloc event has no 'name' field\n"
    assert on_fake.made == []
