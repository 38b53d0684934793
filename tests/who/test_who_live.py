"""`pooltop who` on the real kernel (root, Linux): it names the code and the process that leak
inotify marks, and leaves no tracing instance behind on any way out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pooltop.who.tracefs import TRACEFS_MOUNT

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                       reason="tracing the kernel needs Linux and root (CI runs as root)"),
    pytest.mark.skipif(not os.path.isdir(os.path.join(TRACEFS_MOUNT, "instances")),
                       reason=f"no tracefs at {TRACEFS_MOUNT}"),
    pytest.mark.linux, pytest.mark.root, pytest.mark.slow,
]

INSTANCES = os.path.join(TRACEFS_MOUNT, "instances")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Waits for a line on stdin, adds WATCHES inotify watches (each one an inotify mark, which SLUB
# merges into another cache of the same size), reports, and holds them until stdin closes.
WATCHER = """
import ctypes, os, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
folder = tempfile.mkdtemp()
paths = []
for i in range(int(sys.argv[1])):
    p = os.path.join(folder, str(i))
    open(p, "w").close()
    paths.append(p)
print("ready", flush=True)
sys.stdin.readline()
for p in paths:
    if libc.inotify_add_watch(fd, p.encode(), 0x100) < 0:
        raise SystemExit("inotify_add_watch failed: %d" % ctypes.get_errno())
print("watching", flush=True)
sys.stdin.readline()
os.close(fd)
for p in paths:
    os.remove(p)
os.rmdir(folder)
"""
WATCHES = 200


def _pooltop(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-m", "pooltop", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_instance(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    path = os.path.join(INSTANCES, f"pooltop-{proc.pid}")
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(path, "events", "kmem", "kmem_cache_alloc", "enable")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "pooltop never created its instance"
        time.sleep(0.05)
    # enabled last: wait until the trace is on
    deadline = time.monotonic() + timeout
    while True:
        with open(os.path.join(path, "events", "kmem", "kmem_cache_alloc", "enable")) as f:
            if f.read().startswith("1"):  # "1*" with a trigger on it
                return path
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture
def watcher() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", WATCHER, str(WATCHES)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_names_the_function_and_the_process_that_leak_inotify_marks(watcher: subprocess.Popen[str]) -> None:
    pooltop = _pooltop("who", "inotify_inode_mark", "--duration", "4", "--stacks", "--format", "json")
    try:
        instance = _wait_for_instance(pooltop)
        assert watcher.stdin is not None and watcher.stdout is not None
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        assert watcher.stdout.readline().strip() == "watching"
        out, err = pooltop.communicate(timeout=60)
    finally:
        if pooltop.poll() is None:
            pooltop.kill()
            pooltop.wait()
    assert pooltop.returncode == 0, err
    assert not os.path.exists(instance)
    doc = json.loads(out)
    assert doc["target"] == "inotify_inode_mark"
    sites = {s["function"]: s for s in doc["sites"]}
    assert "inotify_update_watch" in sites, sorted(sites)
    site = sites["inotify_update_watch"]
    mine = sum(p["outstanding"] for p in site["processes"] if p["pid"] == watcher.pid)
    assert mine == WATCHES  # every watch of the child: outstanding, by its pid
    assert site["outstanding"] >= WATCHES and site["bytes"] >= WATCHES * 8
    frames = [f.split("+", 1)[0] for st in site["stacks"] for f in st["frames"]]
    assert "__x64_sys_inotify_add_watch" in frames or "__se_sys_inotify_add_watch" in frames


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_trace_reports_and_removes_the_instance(signum: int) -> None:
    pooltop = _pooltop("who", "sigqueue", "--duration", "120")
    try:
        instance = _wait_for_instance(pooltop)
        os.kill(pooltop.pid, signum)
        out, err = pooltop.communicate(timeout=30)
    finally:
        if pooltop.poll() is None:
            pooltop.kill()
            pooltop.wait()
    assert pooltop.returncode in (0, 1), err  # 1: nothing was allocated from sigqueue meanwhile
    assert "Who allocates sigqueue" in out  # what was seen until the signal
    assert "Traceback" not in err
    assert not os.path.exists(instance)


def test_stale_instance_of_a_dead_pooltop_is_removed() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = os.path.join(INSTANCES, f"pooltop-{dead.pid}")
    os.mkdir(stale)
    try:
        with open(os.path.join(stale, "events", "kmem", "kmem_cache_free", "enable"), "w") as f:
            f.write("1")
        pooltop = _pooltop("who", "sigqueue", "--duration", "0.2")
        _, err = pooltop.communicate(timeout=60)
        assert pooltop.returncode in (0, 1), err
        assert not os.path.exists(stale)
        assert not os.path.exists(os.path.join(INSTANCES, f"pooltop-{pooltop.pid}"))
    finally:
        if os.path.exists(stale):
            os.rmdir(stale)
