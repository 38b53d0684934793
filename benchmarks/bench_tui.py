"""Live-view costs: CPU per refresh (5,000 and 50,000 rows, 200x50), idle CPU, time to first frame,
RSS over 10,000 refreshes, and Textual's DataTable doing the same job for comparison.

    /work/venv/bin/python benchmarks/bench_tui.py            # everything (several minutes)
    /work/venv/bin/python benchmarks/bench_tui.py --quick    # fewer refreshes

Prints figures; asserts nothing (targets: <= 10 ms per refresh at 5,000 rows, <= 20 ms at 50,000,
idle CPU < 1 %, first frame < 1 s, RSS flat). "Whole app" is the CPU time of the real app in a
pseudo-terminal (sampling thread, tracker, UI, terminal output, Textual's own threads) per refresh
while it refreshes as fast as it can; the tracker's share is measured apart on the same data.
Idle CPU is given three ways: the synthetic 5,000 rows at the default 1 s, the same paused, and
the real `pooltop` on this machine (its slab caches, with the process sampling of the verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import mmap
import os
import pty
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import psutil
from textual.app import App, ComposeResult
from textual.scroll_view import ScrollView
from textual.widget import Widget
from textual.widgets import DataTable

from pooltop.app import create_app
from pooltop.app.messages import SampleReady
from pooltop.model import COLUMNS, CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.native import Source
from pooltop.tracking import TrackedSample, Tracker

SIZE = (200, 50)
START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


class SyntheticSource(Source):
    """`rows` counters; every sample ~5% of them change, a few grow steadily (leaks)."""

    name = "windows-pooltag"

    def __init__(self, rows: int, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.tags = tuple(f"T{i:05x}"[-4:] if rows <= 65536 else f"T{i:06x}" for i in range(rows))
        self.pools = (np.arange(rows) % 2).astype(np.uint8)
        self.allocs = self.rng.integers(1000, 10**7, rows).astype(np.int64)
        self.frees = self.allocs - self.rng.integers(0, 1000, rows)
        self.size = self.rng.integers(16, 4096, rows).astype(np.int64)
        self.i = 0

    def sample(self) -> Snapshot:
        n = len(self.tags)
        changed = self.rng.random(n) < 0.05
        self.allocs = self.allocs + np.where(changed, self.rng.integers(0, 50, n), 0)
        self.frees = self.frees + np.where(changed, self.rng.integers(0, 50, n), 0)
        self.allocs[:20] += 10  # leaks
        diff = np.maximum(self.allocs - self.frees, 0)
        self.i += 1
        return Snapshot(
            source=self.name,
            taken_at=START + dt.timedelta(seconds=self.i),
            monotonic_ns=10**12 + self.i * 10**9,
            host=HostInfo("bench", "Windows", "10.0", "AMD64", uptime_s=1000.0 + self.i),
            totals=Totals(paged_pool=10**9, nonpaged_pool=5 * 10**8, memory_available=8 << 30),
            counters=CounterSet.build(self.tags, self.pools, self.allocs, self.frees, diff, diff * self.size),
        )


class ReplaySource(Source):
    """Cycles through pre-built snapshots (with fresh times), so a refresh costs what pooltop does,
    not what building a synthetic snapshot does. Keeps its sample count in the file `count_path`
    (mapped in memory: a file write per sample would be a cost of the benchmark, not of pooltop)."""

    name = "windows-pooltag"

    def __init__(self, rows: int, count_path: str | None = None, distinct: int = 30) -> None:
        gen = SyntheticSource(rows)
        self.snaps = [gen.sample() for _ in range(distinct)]
        self.counter: mmap.mmap | None = None
        if count_path is not None:
            with open(count_path, "wb") as f:
                f.write(bytes(8))
            with open(count_path, "r+b") as f:
                self.counter = mmap.mmap(f.fileno(), 8)
        self.i = 0

    def sample(self) -> Snapshot:
        base = self.snaps[self.i % len(self.snaps)]
        self.i += 1
        if self.counter is not None:
            self.counter[:8] = self.i.to_bytes(8, "little")
        return dataclasses.replace(base, monotonic_ns=10**12 + self.i * 10**9,
                                   taken_at=START + dt.timedelta(seconds=self.i))


def child(rows: int, interval: float, count_path: str, distinct: int = 30) -> None:
    """The benchmarked process: the real app, real terminal driver, on a pseudo-terminal.
    `distinct` 1: every sample shows the same counters (nothing changes, only the clock)."""
    create_app(ReplaySource(rows, count_path, distinct), interval=interval, owners=lambda tag, pool: ()).run()


class Child:
    """`bench_tui.py --child` in a pseudo-terminal; its output is read and thrown away."""

    def __init__(self, rows: int, interval: float, tmp: str, distinct: int = 30) -> None:
        self.count_path = os.path.join(tmp, f"count-{rows}-{interval}-{distinct}")
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        env = dict(os.environ, TERM="xterm-256color")
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(rows), str(interval), self.count_path, str(distinct)],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        )
        os.close(slave)
        fcntl_winsize(master, *SIZE)
        self.master = master
        self.ps = psutil.Process(self.proc.pid)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if ready:
                try:
                    os.read(self.master, 1 << 16)
                except OSError:
                    return

    def samples(self) -> int:
        try:
            with open(self.count_path, "rb") as f:
                return int.from_bytes(f.read(8) or bytes(8), "little")
        except OSError:
            return 0

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss_mib(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def key(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.drain(1.0)
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        os.close(self.master)


def fcntl_winsize(fd: int, cols: int, rows: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def steady_refresh(rows: int, tmp: str, seconds: float) -> tuple[float, int]:
    """CPU ms per refresh of the whole app (sampling worker, tracker, UI, terminal output) when it
    refreshes as fast as it can (interval 0.05 s)."""
    c = Child(rows, 0.05, tmp)
    try:
        c.drain(3.0)
        n0, cpu0 = c.samples(), c.cpu()
        c.drain(seconds)
        n1, cpu1 = c.samples(), c.cpu()
    finally:
        c.close()
    return (cpu1 - cpu0) / max(n1 - n0, 1) * 1000, n1 - n0


def tracked(rows: int, count: int) -> tuple[list[TrackedSample], float]:
    """`count` tracked samples of a SyntheticSource, and the tracker's CPU ms per update once its
    leak window is full (the child's steady state)."""
    source = SyntheticSource(rows)
    tracker = Tracker()
    warm = int(tracker.thresholds.leak_window_s) + 5
    snaps = [source.sample() for _ in range(warm + count)]
    out = [tracker.update(s) for s in snaps[:warm]]
    t0 = time.process_time()
    for s in snaps[warm:]:
        out.append(tracker.update(s))
    return out[-count:], (time.process_time() - t0) / count * 1000


def replay_tracker_ms(rows: int, count: int = 60) -> float:
    """The tracker's CPU ms per update on the very snapshots the child replays, window full."""
    source = ReplaySource(rows)
    tracker = Tracker()
    for _ in range(int(tracker.thresholds.leak_window_s) + 5):
        tracker.update(source.sample())
    snaps = [source.sample() for _ in range(count)]
    t0 = time.process_time()
    for s in snaps:
        tracker.update(s)
    return (time.process_time() - t0) / count * 1000


def encode_frame(app: App[Any]) -> None:
    """What the real driver adds in a terminal: the frame as escape sequences (headless skips it)."""
    update = app.screen._compositor.render_update(full=True)
    update.render_segments(app.console)  # type: ignore[union-attr]


async def measure_pooltop(samples: list[TrackedSample]) -> list[float]:
    app = create_app(_Idle(), autorefresh=False, owners=lambda tag, pool: ())
    app.request_sample = lambda: None  # type: ignore[method-assign]  # we feed samples ourselves
    times: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for i, sample in enumerate(samples):
            t0 = time.process_time()
            app.post_message(SampleReady(sample, 0.0))
            await pilot.pause()
            encode_frame(app)
            if i >= 2:  # the first refreshes build caches
                times.append((time.process_time() - t0) * 1000)
    return times


async def measure_render_lines(samples: list[TrackedSample]) -> dict[str, tuple[float, float]]:
    """Per widget, median microseconds for one frame of its lines after a new sample: as the
    table and header hand them over (their render_lines overrides: kept, finished strips) against
    Textual's own Widget.render_lines (styles cache and line filters), the figure behind the
    overrides (pooltop/app/lines.py)."""
    app = create_app(_Idle(), autorefresh=False, owners=lambda tag, pool: ())
    app.request_sample = lambda: None  # type: ignore[method-assign]  # we feed samples ourselves
    ours: dict[str, list[float]] = {"table": [], "header": []}
    textual: dict[str, list[float]] = {"table": [], "header": []}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        widgets: dict[str, tuple[Widget, type[Widget]]] = {
            "table": (app.table, ScrollView), "header": (app.header_widget, Widget)}
        for i, sample in enumerate(samples):
            app.post_message(SampleReady(sample, 0.0))
            await pilot.pause()
            for name, (widget, parent) in widgets.items():
                crop = widget.size.region
                t0 = time.perf_counter()
                widget.render_lines(crop)
                t1 = time.perf_counter()
                widget._styles_cache.clear()
                parent.render_lines(widget, crop)
                t2 = time.perf_counter()
                if i >= 2:
                    ours[name].append((t1 - t0) * 1e6)
                    textual[name].append((t2 - t1) * 1e6)
    return {name: (statistics.median(ours[name]), statistics.median(textual[name])) for name in ours}


class _Idle(Source):
    def sample(self) -> Snapshot:
        raise AssertionError("not used")


class DataTableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()


async def measure_datatable(samples: list[TrackedSample]) -> list[float]:
    """The obvious DataTable version: clear and re-add the sorted rows every refresh."""
    app = DataTableApp()
    times: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        table.add_columns(*(c.title for c in COLUMNS))
        for i, sample in enumerate(samples):
            t0 = time.process_time()
            c = sample.counters
            d = sample.interval
            order = np.argsort(-c.bytes, kind="stable")
            per = c.per_alloc()
            table.clear()
            table.add_rows(
                (c.tags[r], Pool(int(c.pools[r])).short, f"{c.allocs[r]:,}", f"{d.allocs[r]:+,}",
                 f"{c.frees[r]:,}", f"{d.frees[r]:+,}", f"{c.diff[r]:,}", f"{d.diff[r]:+,}",
                 f"{c.bytes[r]:,}", f"{d.bytes[r]:+,}", f"{per[r]:,.0f}", "", "")
                for r in order.tolist()
            )
            await pilot.pause()
            encode_frame(app)
            if i >= 2:
                times.append((time.process_time() - t0) * 1000)
    return times


def summary(times: list[float]) -> str:
    p90 = np.percentile(times, 90)
    return f"median {statistics.median(times):6.1f} ms  p90 {p90:6.1f} ms  (n={len(times)})"


def idle_cpu(rows: int, tmp: str, seconds: float, distinct: int = 30) -> tuple[float, float]:
    """CPU % of the whole app refreshing every second, then paused (space)."""
    c = Child(rows, 1.0, tmp, distinct)
    try:
        c.drain(3.0)
        cpu0, w0 = c.cpu(), time.monotonic()
        c.drain(seconds)
        running = (c.cpu() - cpu0) / (time.monotonic() - w0) * 100
        c.key(b" ")
        c.drain(1.5)
        cpu0, w0 = c.cpu(), time.monotonic()
        c.drain(seconds / 2)
        paused = (c.cpu() - cpu0) / (time.monotonic() - w0) * 100
    finally:
        c.close()
    return running, paused


def _slab_caches() -> str:
    try:
        with open("/proc/slabinfo") as f:
            return str(max(sum(1 for _ in f) - 2, 0))
    except OSError:
        return "?"


def real_idle(seconds: float) -> float:
    """CPU % of `python -m pooltop` (this machine's source, the verdict's process sampling) at the
    default 1 s interval, after a few seconds to start."""
    master, slave = pty.openpty()
    fcntl_winsize(master, *SIZE)
    os.set_blocking(master, False)
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.Popen([sys.executable, "-m", "pooltop"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    c = Child.__new__(Child)  # reuse drain/cpu/close on this process
    c.proc, c.master, c.ps = proc, master, psutil.Process(proc.pid)
    try:
        c.drain(5.0)
        cpu0, w0 = c.cpu(), time.monotonic()
        c.drain(seconds)
        return (c.cpu() - cpu0) / (time.monotonic() - w0) * 100
    finally:
        c.close()


_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


def first_frames(launches: int = 3) -> list[float | None]:
    """first_frame() of `launches` starts after one to warm up: as for a user, whose pip install
    compiled the bytecode (this workplace sets PYTHONDONTWRITEBYTECODE, which would make every
    start compile pooltop's sources again; it is dropped for the child)."""
    first_frame()
    return [first_frame() for _ in range(launches)]


def first_frame() -> float | None:
    """Seconds from starting `python -m pooltop` in a pseudo-terminal until its first sample is on
    screen (the host line shows "every" only once a sample is drawn)."""
    master, slave = pty.openpty()
    fcntl_winsize(master, *SIZE)
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pooltop"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    seen = b""
    found: float | None = None
    try:
        while time.monotonic() - t0 < 15:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if b"every" in _ANSI.sub(b"", seen):
                    found = time.monotonic() - t0
                    break
    finally:
        os.write(master, b"q")
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
    return found


def rss_over(rows: int, tmp: str, refreshes: int,
             warm_at: int = 1_000) -> tuple[float, list[tuple[int, float]]]:
    """RSS (MiB) of the app after its first refreshes, then (refreshes, MiB) at `warm_at` (the
    since-start history buffers are full by then), every 5,000 refreshes after it, and at the end."""
    marks = sorted({warm_at, *range(5_000, refreshes, 5_000), refreshes})
    c = Child(rows, 0.001, tmp)
    points: list[tuple[int, float]] = []
    try:
        while c.samples() < 3:
            c.drain(0.1)
        start = c.rss_mib()
        for mark in marks:
            while c.samples() < mark:
                c.drain(0.5)
            points.append((c.samples(), c.rss_mib()))
    finally:
        c.close()
    return start, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer refreshes (for a smoke run)")
    parser.add_argument("--refreshes", type=int, default=10_000, help="refreshes for the RSS figure")
    parser.add_argument("--no-datatable", action="store_true", help="skip the DataTable baseline")
    parser.add_argument("--rss-only", action="store_true", help="only the RSS figure (issue 18: growth "
                        "between refresh 1,000 and --refreshes, goal < 0.5 MiB at 20,000)")
    parser.add_argument("--child", nargs=4, metavar=("ROWS", "INTERVAL", "COUNT_FILE", "DISTINCT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), float(args.child[1]), args.child[2], int(args.child[3]))
        return
    quick = args.quick
    refreshes = 1_000 if quick else args.refreshes
    tmp = tempfile.mkdtemp(prefix="bench-tui-")
    if args.rss_only:
        print_rss(tmp, refreshes)
        return

    print(f"pooltop live view, {SIZE[0]}x{SIZE[1]} terminal (a pty), CPU time per refresh")
    for rows in (5_000, 50_000):
        tracker_ms = replay_tracker_ms(rows)
        total, n = steady_refresh(rows, tmp, 4.0 if quick else 10.0)
        print(f"  {rows:>6,} rows: whole app {total:5.1f} ms/refresh (n={n}); of it the tracker (sampling "
              f"thread, measured apart, warm) {tracker_ms:4.1f} ms, UI and the rest "
              f"{total - tracker_ms:4.1f} ms")
    if not args.no_datatable:
        samples, _ = tracked(5_000, 10)
        dt_times = asyncio.run(measure_datatable(samples))
        ours = asyncio.run(measure_pooltop(samples))
        print(f"  in-process, headless, 5,000 rows (includes the test pilot's overhead):\n"
              f"    pooltop   {summary(ours)}\n    DataTable {summary(dt_times)}  "
              f"(x{statistics.median(dt_times) / statistics.median(ours):.0f})")
    frames = asyncio.run(measure_render_lines(tracked(5_000, 30)[0]))
    print("  one frame's lines after a sample, 5,000 rows: " + "; ".join(
        f"{name} {kept:.0f} us as kept strips, {plain:.0f} us through Widget.render_lines"
        for name, (kept, plain) in frames.items()))

    seconds = 10.0 if quick else 30.0
    running, paused = idle_cpu(5_000, tmp, seconds)
    quiet, _ = idle_cpu(5_000, tmp, seconds, distinct=1)
    real = real_idle(seconds)
    print(f"CPU at the default 1 s interval, 5,000 rows: {paused:.2f} % paused, {quiet:.2f} % when nothing "
          f"changes, {running:.2f} % with 5 % of the rows and 20 leaks changing every second;\n"
          f"  the real pooltop on this machine ({_slab_caches()} slab caches, the verdict's process "
          f"sampling): {real:.2f} %")

    frames = first_frames()
    print("time to first frame (python -m pooltop, this machine's slab caches, 3 starts): "
          + ", ".join(f"{ff:.2f} s" if ff is not None else "not seen within 15 s" for ff in frames))

    print_rss(tmp, refreshes)


def print_rss(tmp: str, refreshes: int) -> None:
    warm_at = min(1_000, refreshes // 10)
    start, points = rss_over(5_000, tmp, refreshes, warm_at)
    (warm_n, warm), (end_n, end) = points[0], points[-1]
    print(f"RSS, 5,000 rows: {start:.1f} MiB after 3 refreshes, "
          + ", ".join(f"{mib:.1f} MiB after {n:,}" for n, mib in points)
          + f" ({end - warm:+.2f} MiB from refresh {warm_n:,} to {end_n:,})")


if __name__ == "__main__":
    main()
