"""SIGTERM while the live view traces: the trace is stopped (its cleanup runs) before the process
ends by the signal, as it would have without pooltop's handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import os, signal, sys, threading, time
from pooltop.app.tracing import WhoTraces

marker = sys.argv[1]
started = threading.Event()

class Tracer:
    warnings = []
    def run(self, duration, stop=None, on_update=None, update_every=1.0):
        started.set()
        try:
            stop.wait(30)
        finally:
            time.sleep(0.2)  # a cleanup that takes a moment
            open(marker, "w").write("cleaned up")

traces = WhoTraces(lambda message: None, factory=lambda name: Tracer())
traces.start("sigqueue", 1.0)
started.wait(10)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(10)
print("still alive")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_waits_for_the_trace_cleanup_then_ends_the_process(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.run([sys.executable, "-c", CHILD, str(marker)], capture_output=True, text=True,
                           timeout=60, env=env)
    assert child.returncode == -signal.SIGTERM, child.stderr
    assert "still alive" not in child.stdout
    assert marker.read_text() == "cleaned up"
