"""End-to-end on the real kernel: the verdict names a process that grows, and calls a pipe leak kernel-side.

- A child that appends 5 MiB bytearrays every 0.3 s (touching every page) grows its private memory
  ~16 MiB/s; slab barely moves. The verdict must name it (or, on this shared machine, a process
  that grew even more: the verdict names the biggest steady grower).
- A child that opens pipes in batches grows unreclaimable slab (~1.7 KiB per pipe measured here on
  6.18: two `struct file`, the pipe_inode_info and its pipe_buffer array) while its own private
  memory grows by well under the 8 MiB process threshold: a kernel-side leak, with the child
  named as the one whose open files grew.

Both sample through the real LinuxSource and ProcessSource (doctor.collect_samples), every 0.5 s
over 5 s, with the default thresholds. Children are killed in `finally` whatever happens.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest
from helpers import linux_only, needs_root

from pooltop.native.linux import LinuxSource
from pooltop.processes.doctor import collect_samples
from pooltop.processes.source import ProcessSource
from pooltop.processes.verdict import VerdictKind, VerdictThresholds, fitted_to, judge

pytestmark = [pytest.mark.linux, pytest.mark.slow, linux_only]

WINDOW_S = 5.0
STEP_S = 0.5

GROWER = textwrap.dedent(
    """
    import sys, time
    chunks = []
    print("ready", flush=True)
    while len(chunks) < 30:                      # ~150 MiB in ~9 s
        b = bytearray(5 << 20)
        b[::4096] = b"\\x01" * len(range(0, 5 << 20, 4096))   # touch every page: it is private now
        chunks.append(b)
        time.sleep(0.3)
    sys.stdin.read()
    """
)

PIPE_LEAKER = textwrap.dedent(
    """
    import os, resource, sys, time
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    total = int(sys.argv[1])
    held = []
    print("ready", flush=True)
    batch = max(total // 18, 1)                   # spread over ~4.5 s: every sample interval grows
    while len(held) < total:
        held.extend(os.pipe() for _ in range(min(batch, total - len(held))))
        time.sleep(0.25)
    print("done", flush=True)
    sys.stdin.read()
    """
)


def start(code: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"child did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def child_tag(proc: subprocess.Popen[str], source: ProcessSource) -> str:
    snap = source.sample()
    tags = [t for t in snap.counters.tags if t.endswith(f"[{proc.pid}]")]
    assert tags, f"child {proc.pid} is not among the sampled processes"
    return tags[0]


def test_a_growing_process_is_named() -> None:
    procs = ProcessSource()
    proc = start(GROWER)
    try:
        samples, _ = collect_samples(LinuxSource(), procs, WINDOW_S, STEP_S)
        tag = child_tag(proc, procs)
    finally:
        stop(proc)
    verdict = judge(samples, fitted_to(VerdictThresholds(), WINDOW_S))  # a doctor-style look
    ev = verdict.evidence
    growers = {g.tag: g for g in ev.growing_processes}
    assert tag in growers, f"{tag} not seen growing: {verdict.text} / {ev}"
    child = growers[tag]
    # 5 s at ~16 MiB/s: far above the 8 MiB threshold, and the slope says so too.
    assert child.private_growth >= 40 << 20
    assert child.private_rate >= 5 << 20
    assert ev.samples >= 8 and 4.0 <= ev.seconds <= 8.0
    if verdict.kind is VerdictKind.PROCESS:
        if verdict.subject != tag:  # another process on this shared machine grew even more
            assert ev.growing_processes[0].private_growth >= child.private_growth, verdict.text
        else:
            assert verdict.text.startswith(f"process {tag} is growing: private memory +")
    else:
        # Only when someone else's kernel-side growth happened in the same seconds.
        assert verdict.kind is VerdictKind.KERNEL and ev.system_growing, verdict.text


@needs_root
def test_a_pipe_leak_is_kernel_side() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    pipes = min(9000, (hard - 64) // 2)
    if pipes < 4000:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} allows only {pipes} pipes (4000 give a clear signal)")
    procs = ProcessSource()
    proc = start(PIPE_LEAKER, str(pipes))
    try:
        samples, _ = collect_samples(LinuxSource(), procs, WINDOW_S, STEP_S)
        tag = child_tag(proc, procs)
    finally:
        stop(proc)
    verdict = judge(samples, fitted_to(VerdictThresholds(), WINDOW_S))  # a doctor-style look
    ev = verdict.evidence
    assert verdict.kind is VerdictKind.KERNEL, f"{verdict.text} / {ev}"
    assert verdict.text.startswith("kernel/driver leak: unreclaimable slab +")
    assert ev.system_growing and ev.system_growth is not None
    assert ev.system_growth >= VerdictThresholds().system_min_growth_bytes
    # The child is not a memory grower, but it is the one whose open files grew.
    assert tag not in {g.tag for g in ev.growing_processes}
    hints = {g.tag: g for g in ev.handle_growers}
    assert tag in hints and (hints[tag].handles_growth or 0) >= pipes  # two fds per pipe; ready before 0
    assert f"{tag} opened +" in verdict.text or ev.handle_growers[0].tag != tag
    # The slab counters say where: caches grew between the first and last sample.
    assert ev.top_counters and ev.top_counters[0].bytes_growth > 0
