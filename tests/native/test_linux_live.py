"""End-to-end on the real kernel: a child process that holds thousands of pipes really grows slab caches.

Each pipe costs two `struct file` (filp), a dentry, an inode and a pipe_inode_info; 3,000 pipes are
6,000 filp objects, far above what a busy machine's background churn moves in a second or two.
SLUB counts free objects on per-CPU slabs as active, so new files that reuse them do not show:
the checks allow 15% for that (seen here: 4% on 2 CPUs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import PipeLeaker, needs_root

from pooltop.native.linux import LinuxSource
from pooltop.query import sort_rows
from pooltop.tracking import Tracker

PIPES = 3000

HOLDER = textwrap.dedent(
    f"""
    import os, resource, sys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 3 * {PIPES} + 64), hard))
    fds = [os.pipe() for _ in range({PIPES})]
    print("ready", flush=True)
    sys.stdin.read()  # hold the pipes until the test closes our stdin
    """
)


def start_holder() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"pipe holder did not start: {line!r}")
    return proc


def stop_holder(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def growth_of(cache: str, sample) -> int:  # type: ignore[no-untyped-def]
    row = sample.counters.tags.index(cache)
    return int(sample.since_baseline.diff[row])


@needs_root
def test_pipes_held_by_a_child_rank_filp_near_the_top() -> None:
    source = LinuxSource()
    tracker = Tracker()
    tracker.update(source.sample())  # baseline
    holder = start_holder()
    try:
        sample = tracker.update(source.sample())
    finally:
        stop_holder(holder)

    grew = growth_of("filp", sample)
    # 2 files per pipe, less what SLUB's per-CPU slabs hide (see the module docstring).
    assert grew >= 0.85 * 2 * PIPES, f"filp grew by {grew}"
    order = sort_rows(sample.counters, "ddiff", deltas=sample.since_baseline)
    top = [sample.counters.tags[i] for i in order[:5]]
    assert "filp" in top, top
    by_bytes = [sample.counters.tags[i] for i in sort_rows(sample.counters, "dbytes",
                                                            deltas=sample.since_baseline)[:10]]
    assert "filp" in by_bytes, by_bytes

    # Closing the pipes gives the objects back (freed via RCU, so allow a moment).
    deadline = time.monotonic() + 10
    while True:
        after = tracker.update(source.sample())
        if growth_of("filp", after) < grew / 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert growth_of("filp", after) < grew / 2


@needs_root
def test_snapshot_json_reflects_the_held_pipes() -> None:
    def filp_active() -> int:
        out = subprocess.run(
            [sys.executable, "-m", "pooltop", "snapshot", "--format", "json", "--include", "filp"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        doc = json.loads(out.stdout)
        assert doc["schema"] == "pooltop.snapshot/1" and doc["source"] == "linux-slab"
        (row,) = [c for c in doc["counters"] if c["tag"] == "filp"]
        assert row["pool"] == "slab" and row["bytes"] == row["diff"] * row["object_size"]
        return int(row["diff"])

    before = filp_active()
    holder = start_holder()
    try:
        during = filp_active()
    finally:
        stop_holder(holder)
    assert during - before >= 0.85 * 2 * PIPES


@needs_root
def test_snapshot_interval_shows_the_change_columns() -> None:
    # The child opens 100 pipes every 0.1 s for about 10 s, so whenever pooltop's two samples fall
    # (starting Python may take seconds on a busy machine) pipes pile up between them.
    cmd = [sys.executable, "-m", "pooltop", "snapshot", "--format", "json", "--interval", "2",
           "--sort", "ddiff", "--top", "5"]
    with PipeLeaker(per_step=100, step_s=0.1, steps=100):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["interval_s"] >= 2
    tags = [c["tag"] for c in doc["counters"]]
    assert "filp" in tags, tags
    filp = doc["counters"][tags.index("filp")]
    assert filp["change"]["diff"] >= 1000  # 2 s of 1,000 pipes a second is ~4,000 files
