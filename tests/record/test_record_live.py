"""`pooltop record` and `pooltop report` for real: a real leak, an idle control, SIGKILL, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from helpers import PipeLeaker, needs_root

from pooltop.record import Recording

POOLTOP = [sys.executable, "-m", "pooltop"]


def report_json(path: str, *options: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [*POOLTOP, "report", path, "--format", "json", *options], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@needs_root
def test_a_real_pipe_leak_is_ranked_first_with_verdict_leak(tmp_path) -> None:
    path = str(tmp_path / "leak.db")
    # 6 s at 5 samples a second; the child starts leaking once the recorder runs (on a busy machine
    # starting Python can take seconds) and keeps leaking past the end: 150 pipes every 0.2 s.
    rec = subprocess.Popen([*POOLTOP, "record", "-o", path, "--interval", "0.2", "--duration", "6"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_samples(path, 1)
        with PipeLeaker(per_step=150, step_s=0.2, steps=60):
            _, err = rec.communicate(timeout=60)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0, err
    assert "recording" in err and path in err and "Ctrl+C" in err
    # Six seconds of evidence: the judge's windows (minutes by default) shrunk to fit, as a user would.
    doc = report_json(path, "--suspect-window", "2s", "--leak-window", "4s")
    suspects = doc["suspects"]
    assert suspects and suspects[0]["verdict"] == "leak", suspects[:3]
    leaks = [s["tag"] for s in suspects if s["verdict"] == "leak"]
    assert "filp" in leaks, leaks
    # the caches that grew come first: filp is among the leaks, ranked above every non-leak
    assert all(s["verdict"] == "leak" for s in suspects[: leaks.index("filp") + 1])
    filp = next(s for s in suspects if s["tag"] == "filp")
    assert filp["growth_bytes"] > 150 * 2 * 15 * 192 * 0.5  # at least half of what 15 steps would add
    assert filp["owners"], "the report names an owner for a slab cache"


@needs_root
def test_an_idle_control_recording_has_no_leak(tmp_path) -> None:
    path = str(tmp_path / "idle.db")
    out = subprocess.run(
        [*POOLTOP, "record", "-o", path, "--interval", "0.2", "--duration", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = report_json(path)
    assert [s["tag"] for s in doc["suspects"] if s["verdict"] == "leak"] == []
    assert doc["recording"]["samples"] >= 20


def wait_for_samples(path: str, count: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Recording(path) as rec:
                if len(rec) >= count:
                    return len(rec)
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {count} samples")


@needs_root
def test_sigkill_loses_nothing_committed_and_recording_continues(tmp_path) -> None:
    path = str(tmp_path / "crash.db")
    proc = subprocess.Popen(
        [*POOLTOP, "record", "-o", path, "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = wait_for_samples(path, 20)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with Recording(path) as rec:
        n = len(rec)
        assert n >= seen
        assert sum(1 for _ in rec.snapshots()) == n  # every sample decodes
    out = subprocess.run(
        [*POOLTOP, "record", "-o", path, "--interval", "0.1", "--duration", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "appending to" in out.stderr
    with Recording(path) as rec:
        assert len(rec) > n
        assert sum(1 for _ in rec.snapshots()) == len(rec)


@needs_root
def test_sigterm_stops_cleanly(tmp_path) -> None:
    path = str(tmp_path / "term.db")
    proc = subprocess.Popen(
        [*POOLTOP, "record", "-o", path, "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_samples(path, 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopped (interrupted)" in err and "Traceback" not in err
    with Recording(path) as rec:
        assert len(rec) >= 5


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_report_on_a_bad_file_is_one_line(tmp_path, content: bytes) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    out = subprocess.run([*POOLTOP, "report", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("pooltop: ") and out.stderr.count("\n") == 1


def test_record_into_a_missing_folder_is_one_line(tmp_path) -> None:
    out = subprocess.run(
        [*POOLTOP, "record", "-o", str(tmp_path / "no" / "x.db"), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("pooltop: ") and out.stderr.count("\n") == 1


def test_record_usage_errors_exit_2(tmp_path) -> None:
    for args in (
        ["record"],
        ["record", "-o", str(tmp_path / "x.db"), "--max-size", "lots"],
        ["record", "-o", str(tmp_path / "x.db"), "--interval", "0"],
    ):
        out = subprocess.run([*POOLTOP, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (args, out.stderr)
