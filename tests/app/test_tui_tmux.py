"""The real `pooltop` on this Linux machine, in a detached tmux session: keys in, screen out.

Skipped where tmux is missing (CI installs it: apt-get install tmux) or off Linux. Without root,
/proc/slabinfo is unreadable and pooltop shows a degraded-backend warning instead of rows; the
test checks that case too rather than skipping it.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.linux,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs the live Linux slab source"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]

WIDTH, HEIGHT = 120, 32


def slabinfo_readable() -> bool:
    try:
        with open("/proc/slabinfo", "rb") as f:
            f.read(1)
    except OSError:
        return False
    return True


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.name, *args], check=True, capture_output=True, text=True,
                             timeout=10)
        return out.stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)
        time.sleep(0.3)  # a key right after Esc would read as Alt+key

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def stable_screen(self, timeout: float = 10.0) -> str:
        """A screen that read the same twice 0.1 s apart: not one caught while the terminal was
        being repainted (the app writes only the lines that changed, one after the other)."""
        deadline = time.monotonic() + timeout
        before = self.screen()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.screen()
            if now == before:
                return now
            before = now
        raise AssertionError(f"the screen never settled; the last was:\n{before}")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out; the screen was:\n{screen}")


def start_tmux(tmp_path: Path, pooltop_args: str) -> Iterator[Tmux]:
    name = f"pooltop-test-{uuid.uuid4().hex[:8]}"
    session = Tmux(name)
    exit_file = tmp_path / "exit-code"
    command = (
        f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(sys.executable)} -m pooltop {pooltop_args}; "
        f"echo $? > {shlex.quote(str(exit_file))}; sleep 60"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    # A server of its own (-L): a tmux server already running on the default socket (another
    # user's, another test's) would start the command with *its* environment, and so with another
    # PYTHONPATH: the pooltop under test would not be this checkout's.
    subprocess.run(
        ["tmux", "-L", name, "-f", "/dev/null", "new-session", "-d", "-s", name, "-x", str(WIDTH),
         "-y", str(HEIGHT), command],
        check=True, env=env, timeout=10,
    )
    session.exit_file = exit_file  # type: ignore[attr-defined]
    try:
        yield session
    finally:
        subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, timeout=10)


def quit_cleanly(tmux: Tmux) -> None:
    tmux.send("q")
    deadline = time.monotonic() + 15
    exit_file: Path = tmux.exit_file  # type: ignore[attr-defined]
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert exit_file.exists(), tmux.screen()
    assert exit_file.read_text().strip() == "0"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    yield from start_tmux(tmp_path, "--interval 0.5")


@pytest.fixture
def tmux_view(tmp_path: Path) -> Iterator[Tmux]:
    """`pooltop view` on a recording of the scripted snapshots (tui_fakes.make_snapshot 0-29), paused."""
    from tui_fakes import make_snapshot

    from pooltop.record import RecordingWriter

    path = tmp_path / "scripted.db"
    with RecordingWriter(str(path), make_snapshot(0, windows=False), interval_s=1.0) as writer:
        for i in range(30):
            writer.append(make_snapshot(i, windows=False))
    yield from start_tmux(tmp_path, f"view {shlex.quote(str(path))} --speed 0")


def test_live_pooltop_in_tmux(tmux: Tmux) -> None:
    readable = slabinfo_readable()
    screen = tmux.wait_for(lambda s: "pooltop" in s and "Sort" in s and "#2" in s)
    assert "Linux" in screen
    if not readable:
        assert "needs root" in screen
    else:
        assert "Tag" in screen and "Bytes" in screen
        assert "kmalloc" in screen or "dentry" in screen or "inode" in screen

    tmux.send("b")
    screen = tmux.wait_for(lambda s: "Sort Bytes▼" in s)

    # Typed in one burst, as a fast typist or a paste sends it: every key after "/" must land in
    # the filter box, none may reach the table's own keys (m, a, l, c would sort and toggle).
    tmux.send("/kmalloc", literal=True)
    tmux.send("Enter")
    screen = tmux.wait_for(lambda s: "Filter kmalloc" in s)
    assert "Sort Bytes▼" in screen and "Δ per refresh" in screen and "highlight off" not in screen
    if readable:
        # Fewer rows than before, and kmalloc caches among them (the filter also matches owner
        # descriptions, so other caches may remain).
        match = re.search(r"Rows ([\d,]+)/([\d,]+)", screen)
        assert match, screen
        shown, total = (int(g.replace(",", "")) for g in match.groups())
        assert 0 < shown < total
        assert "kmalloc-" in screen.split("Filter kmalloc", 1)[1]

    quit_cleanly(tmux)


CHURN = """
import random, socket, time
held = []
while True:  # a changing number of socket pairs and pipes: slab caches that move every second
    for _ in range(random.randint(0, 300)):
        held.append(socket.socketpair())
    random.shuffle(held)
    while len(held) > random.randint(0, 300):
        for s in held.pop():
            s.close()
    time.sleep(0.2)
"""


def _count(text: str) -> float:
    """A table number as shown: 1,234 / +1,234 / -1.2M / 0."""
    text = text.strip().replace(",", "")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}.get(text[-1:], 1.0)
    return float(text.rstrip("KMGTP")) * scale


def table_column(screen: str, title: str) -> list[tuple[str, float]]:
    """(first word, value) of each table row on screen, for the right-aligned column `title`."""
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if re.search(r"\bTag", line) and "Bytes" in line)
    match = re.search(rf"(?<![\w]){re.escape(title)}[▼▲]?(?=\s|$)", lines[head])
    assert match, lines[head]
    rows = []
    for line in lines[head + 1:]:
        # Right-aligned under the title: the number ends where the title does (and may start
        # before it: +3,191,856 is wider than "dBytes▼").
        words = line[:match.end()].split()
        cell = words[-1] if words else ""
        if not re.fullmatch(r"[+-]?[\d,.]+[KMGTP]?", cell):
            break
        rows.append((line.split()[0], _count(cell)))
    return rows


@pytest.mark.skipif(not slabinfo_readable(), reason="needs root: /proc/slabinfo is unreadable")
def test_sort_by_dbytes_under_churn_shows_the_top_changers(tmux: Tmux, tmp_path: Path) -> None:
    """Issue 17: sorted by change, with a child churning sockets, the screen shows the top of the
    order (cursor on the first row) refresh after refresh, largest changes first."""
    churn = subprocess.Popen([sys.executable, "-c", CHURN])
    try:
        tmux.wait_for(lambda s: "Sort" in s and "#2" in s)
        tmux.send(")", literal=True)
        tmux.wait_for(lambda s: "Sort dBytes▼" in s)
        seen_change = False
        for _ in range(6):
            time.sleep(0.6)  # a refresh every 0.5 s
            screen = tmux.stable_screen()
            rows = table_column(screen, "dBytes")
            assert len(rows) > 5, screen
            values = [v for _, v in rows]
            # largest first (values rounded to a unit may tie), and the cursor on the first row
            assert all(a >= b for a, b in itertools.pairwise(values)), screen
            assert rows[0][0].startswith("▶"), screen
            seen_change = seen_change or values[0] > 0
        assert seen_change  # the churn moved some cache up within three seconds
    finally:
        churn.kill()
        churn.wait()
    quit_cleanly(tmux)


def test_processes_view_and_verdict_in_tmux(tmux: Tmux) -> None:
    """P switches the real table to this machine's processes; the header carries the verdict."""
    tmux.wait_for(lambda s: "pooltop" in s and "Sort" in s and "#2" in s)
    tmux.send("P")
    # processes are sampled every 5 s; the view switches at once and fills on the first one
    screen = tmux.wait_for(lambda s: "Pools processes" in s and re.search(r"\w+\[\d+\]", s) is not None,
                           timeout=20)
    assert "python" in screen or "tmux" in screen or "pooltop" in screen  # a process we know runs
    tmux.wait_for(lambda s: "verdict:" in s, timeout=20)
    tmux.send("P")
    tmux.wait_for(lambda s: "Pools processes" not in s)
    quit_cleanly(tmux)


def test_view_replays_a_recording_in_tmux(tmux_view: Tmux) -> None:
    tmux = tmux_view
    screen = tmux.wait_for(lambda s: "replay: sample 1/30" in s)
    assert "speed paused" in screen and "testbox" in screen
    tmux.send("]")
    tmux.wait_for(lambda s: "replay: sample 2/30" in s)
    tmux.send("}")
    tmux.wait_for(lambda s: "replay: sample 12/30" in s)
    tmux.send("End")
    tmux.wait_for(lambda s: "replay: sample 30/30" in s and "end of the recording" in s)
    tmux.send("Home")
    tmux.wait_for(lambda s: "replay: sample 1/30" in s)
    tmux.send(">")
    tmux.send("Space")
    tmux.wait_for(lambda s: "speed 2×" in s)
    quit_cleanly(tmux)
