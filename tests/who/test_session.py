"""A whole trace against a fake tracefs: set-up, reading, and cleanup on every way out."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading

import pytest
from who_fakes import LINUX_TREE, FakeTracefs, alloc_line, free_line, stack_lines

from pooltop.errors import NeedsElevation, PooltopError, Unsupported
from pooltop.who import tracefs
from pooltop.who.attribution import Attribution
from pooltop.who.session import WINDOWS_NOT_BUILT, WhoTracer, stop_on_signals

FRAMES = [
    "trace_event_raw_event_kmem_cache_alloc",
    "kmem_cache_alloc_noprof",
    "inotify_update_watch",
    "__x64_sys_inotify_add_watch",
]
PIPE = (
    "\n".join(
        [
            alloc_line(0x10, tgid=4242),
            *stack_lines(FRAMES),
            alloc_line(0x20, tgid=4242),
            *stack_lines(FRAMES),
            free_line(0x20),
            free_line(0x30),
        ]
    )
    + "\n"
)


def _tracer(fake: FakeTracefs, target: str = "inotify_inode_mark", **kw: object) -> WhoTracer:
    return WhoTracer(
        target,
        tracefs_root=fake.root,
        proc_root=os.path.join(LINUX_TREE, "proc"),
        sys_root=os.path.join(LINUX_TREE, "sys"),
        platform="linux",
        mkdir=fake.mkdir,
        rmdir=fake.rmdir,
        **kw,
    )  # type: ignore[arg-type]


def _instance_files(fake: FakeTracefs) -> dict[str, str]:
    (name,) = fake.instances()
    base = os.path.join(fake.root, "instances", name)
    out = {}
    for dirpath, _, names in os.walk(base):
        for n in names:
            with open(os.path.join(dirpath, n)) as f:
                out[os.path.relpath(os.path.join(dirpath, n), base)] = f.read()
    return out


def test_trace_sets_up_reads_and_removes_everything(fake_tracefs: FakeTracefs) -> None:
    fake_tracefs.pipe = PIPE
    during: list[dict[str, str]] = []
    updates: list[Attribution] = []

    def on_update(a: Attribution) -> None:
        updates.append(a)
        if not during:
            during.append(_instance_files(fake_tracefs))

    a = _tracer(fake_tracefs, stacks=True).run(0.35, on_update=on_update, update_every=0.1)
    # what the kernel was asked while tracing
    seen = during[0]
    alloc, free = "events/kmem/kmem_cache_alloc/", "events/kmem/kmem_cache_free/"
    assert seen[alloc + "filter"] == 'name == "sigqueue"'
    assert seen[alloc + "trigger"] == 'stacktrace if name == "sigqueue"'
    assert seen[alloc + "enable"] == "1" and seen[free + "enable"] == "1"
    assert seen[free + "filter"] == 'name == "sigqueue"'
    assert seen["options/hash-ptr"] == "0" and seen["options/record-tgid"] == "1"
    assert seen["buffer_size_kb"] == str(tracefs.buffer_kb())
    assert seen["events/kmem/kmalloc/enable"] == "0\n"  # not a kmalloc cache
    # ... and all of it undone before the instance went
    assert fake_tracefs.instances() == []
    (state,) = fake_tracefs.removed.values()
    assert state[alloc + "enable"] == "0" and state[free + "enable"] == "0"
    assert state[alloc + "trigger"] == "!stacktrace"
    assert state[alloc + "filter"] == "0" and state[free + "filter"] == "0"
    assert list(fake_tracefs.removed) == [tracefs.instance_name()]
    # what it found
    assert (a.target, a.cache, a.allocs, a.frees, a.earlier_frees) == (
        "inotify_inode_mark",
        "sigqueue",
        2,
        1,
        1,
    )
    (site,) = a.sites
    assert (site.function, site.outstanding, site.processes[0].pid) == ("inotify_update_watch", 1, 4242)
    assert site.stacks[0].frames[1] == "inotify_update_watch"
    assert updates and updates[-1].allocs == 2
    assert a.seconds == pytest.approx(0.35, abs=0.3)


def test_lost_events_come_from_the_kernel_statistics(fake_tracefs: FakeTracefs) -> None:
    fake_tracefs.pipe = alloc_line(0x10) + "\n"
    fake_tracefs.stats = "entries: 0\noverrun: 5\ncommit overrun: 0\ndropped events: 2\n"
    a = _tracer(fake_tracefs).run(0.05)
    assert a.lost == 14  # (5 overrun + 2 dropped) on each of two CPUs


def test_error_during_setup_removes_the_instance(fake_tracefs: FakeTracefs) -> None:
    def broken_mkdir(path: str) -> None:
        fake_tracefs.mkdir(path)
        bad = os.path.join(path, "events", "kmem", "kmem_cache_free", "filter")
        os.remove(bad)
        os.mkdir(bad)  # the write of the filter fails

    tracer = _tracer(fake_tracefs)
    tracer._mkdir = broken_mkdir
    with pytest.raises(PooltopError, match="filter"):
        tracer.run(1.0)
    assert fake_tracefs.instances() == []
    (state,) = fake_tracefs.removed.values()
    assert state["events/kmem/kmem_cache_alloc/filter"] == "0"  # the filter set before the failure is undone


@pytest.mark.parametrize("exc", [RuntimeError("the UI broke"), KeyboardInterrupt()])
def test_exception_while_reading_removes_the_instance(fake_tracefs: FakeTracefs, exc: BaseException) -> None:
    def on_update(a: Attribution) -> None:
        raise exc

    with pytest.raises(type(exc)):
        _tracer(fake_tracefs).run(5.0, on_update=on_update, update_every=0.0)
    assert fake_tracefs.instances() == []
    (state,) = fake_tracefs.removed.values()
    assert state["events/kmem/kmem_cache_alloc/enable"] == "0"


def test_stop_ends_the_trace_early_with_what_was_seen(fake_tracefs: FakeTracefs) -> None:
    fake_tracefs.pipe = PIPE
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    a = _tracer(fake_tracefs).run(None, stop)
    assert a.allocs == 2 and a.seconds < 5
    assert fake_tracefs.instances() == []


def test_stale_instances_of_dead_pooltops_are_removed(fake_tracefs: FakeTracefs) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now a dead pooltop's
    dead = os.path.join(fake_tracefs.root, "instances", f"pooltop-{child.pid}")
    alive = os.path.join(fake_tracefs.root, "instances", f"pooltop-{os.getppid()}")
    other = os.path.join(fake_tracefs.root, "instances", "someone-else")
    for path in (dead, alive, other):
        fake_tracefs.mkdir(path)
    _tracer(fake_tracefs).run(0.01)
    assert fake_tracefs.instances() == sorted([os.path.basename(alive), "someone-else"])
    assert fake_tracefs.removed[f"pooltop-{child.pid}"]["events/enable"] == "0"


def test_a_second_trace_in_the_same_process_is_refused(fake_tracefs: FakeTracefs) -> None:
    first = tracefs.TraceInstance(fake_tracefs.root, mkdir=fake_tracefs.mkdir, rmdir=fake_tracefs.rmdir)
    first.create()
    try:
        with pytest.raises(PooltopError, match="tracing already"):
            _tracer(fake_tracefs).run(0.01)
        assert fake_tracefs.instances() == [tracefs.instance_name()]  # the first trace's: left alone
    finally:
        assert first.remove() == []
    assert fake_tracefs.instances() == []


def test_an_instance_left_by_an_earlier_process_with_this_pid_is_stale(fake_tracefs: FakeTracefs) -> None:
    fake_tracefs.pipe = alloc_line(0x10) + "\n"
    fake_tracefs.mkdir(os.path.join(fake_tracefs.root, "instances", tracefs.instance_name()))
    a = _tracer(fake_tracefs).run(0.01)
    assert a.allocs == 1
    assert fake_tracefs.instances() == []


def test_unknown_cache_fails_before_touching_tracefs(fake_tracefs: FakeTracefs) -> None:
    with pytest.raises(PooltopError, match="no slab cache named 'no_such_cache'"):
        _tracer(fake_tracefs, "no_such_cache").run(0.01)
    assert fake_tracefs.made == []


def test_windows_and_other_platforms(fake_tracefs: FakeTracefs) -> None:
    tracer = _tracer(fake_tracefs)
    tracer.platform = "win32"
    with pytest.raises(Unsupported, match="not built yet"):
        tracer.run(0.01)
    assert "not built yet" in WINDOWS_NOT_BUILT
    tracer.platform = "darwin"
    with pytest.raises(Unsupported, match="darwin"):
        tracer.run(0.01)


def test_locate_needs_root_and_a_tracefs(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Unsupported, match="not a tracing filesystem"):
        tracefs.locate(str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NeedsElevation, match="needs root"):
        tracefs.locate()


@pytest.mark.parametrize(
    ("err", "kind", "words"),
    [
        (errno.EACCES, NeedsElevation, "needs root"),
        (errno.EPERM, Unsupported, "locked down"),
        (errno.ENOSPC, PooltopError, "cannot create"),
    ],
)
def test_os_errors_become_one_line(
    fake_tracefs: FakeTracefs, err: int, kind: type[Exception], words: str
) -> None:
    def refuse(path: str) -> None:
        raise OSError(err, os.strerror(err), path)

    inst = tracefs.TraceInstance(fake_tracefs.root, mkdir=refuse, rmdir=fake_tracefs.rmdir)
    with pytest.raises(kind, match=words):
        inst.create()
    assert inst.remove() == []


def test_parse_lost() -> None:
    assert (
        tracefs.parse_lost("entries: 3\noverrun: 7\ncommit overrun: 1\ndropped events: 2\nread events: 9\n")
        == 9
    )
    assert tracefs.parse_lost("nonsense") == 0


def test_buffer_is_bounded_in_total() -> None:
    assert tracefs.buffer_kb(2) == tracefs.BUFFER_KB_PER_CPU
    assert tracefs.buffer_kb(1024) * 1024 <= max(tracefs.BUFFER_KB_TOTAL, 256 * 1024)


def test_signals_set_stop_and_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    before_int = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
    assert signal.getsignal(signal.SIGTERM) is before
    stop.clear()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(2.0)
    assert signal.getsignal(signal.SIGINT) is before_int
