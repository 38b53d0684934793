"""Recording figures: 3,000 tags sampled every second for a simulated 24 hours.

    python benchmarks/bench_recording.py [--hours 24] [--tags 3000]

Targets on the project's 2-core machine: file <= 150 MB, insert <= 5 ms per sample, and
`pooltop report` on that file <= 5 s reading every sample. The simulation: every second about 10%
of the tags change (alloc/free churn), 1% leak steadily, and a few tags appear and vanish each hour.

Baseline, measured in the same run: the report as it was before it read every sample, when it
analysed only the full frames (one sample in 300). `--file PATH` keeps the recording, and a later
run reuses it (the simulation takes a few minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time

import numpy as np

from pooltop.judge import JudgeThresholds
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.record import Recording, RecordingWriter
from pooltop.record.codec import FrameState, decode_frame
from pooltop.report.analysis import analyse
from pooltop.report.render import build_report, render_text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--tags", type=int, default=3000)
    ap.add_argument("--file", default=None, help="Keep the recording here; reuse it if it exists.")
    args = ap.parse_args()
    n, samples = args.tags, int(args.hours * 3600)
    rng = np.random.default_rng(0)
    tags = [f"{chr(65 + i % 26)}{chr(97 + (i // 26) % 26)}{i // 676:02d}"[:4].ljust(4) for i in range(n)]
    pools = np.where(np.arange(n) % 3 == 0, Pool.PAGED, Pool.NONPAGED).astype(np.uint8)
    allocs = rng.integers(0, 1 << 32, n)
    frees = allocs - rng.integers(0, 10_000, n)
    size = rng.integers(16, 4096, n)
    busy = rng.random(n) < 0.10
    leaking = rng.random(n) < 0.01
    host = HostInfo("bench", "Windows", "10.0.20348", "AMD64")
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    path = args.file or os.path.join(tempfile.mkdtemp(), "day.db")
    insert_ns: list[int] = []

    def snapshot(step: int) -> Snapshot:
        diff = (allocs - frees) % (1 << 32)
        c = CounterSet.build(tags, pools, allocs % (1 << 32), frees % (1 << 32), diff, diff * size)
        return Snapshot(
            "windows-pooltag",
            t0 + dt.timedelta(seconds=step),
            step * 10**9,
            host,
            Totals(
                paged_pool=int(diff.sum() * 100),
                nonpaged_pool=int(diff.sum() * 50),
                memory_available=8 << 30,
                commit=4 << 30,
                commit_limit=16 << 30,
            ),
            c,
        )

    if os.path.exists(path):
        print(f"reusing {path}")
    else:
        started = time.monotonic()
        with RecordingWriter(path, snapshot(0), interval_s=1.0) as w:
            for step in range(samples):
                churn = busy & (rng.random(n) < 0.5)
                k = int(churn.sum())
                a = rng.integers(0, 50, k)
                allocs[churn] += a
                frees[churn] += np.minimum(a + rng.integers(-3, 4, k), a + 5)
                allocs[leaking] += step % 3 == 0
                snap = snapshot(step)
                t = time.perf_counter_ns()
                w.append(snap)
                insert_ns.append(time.perf_counter_ns() - t)
                if step and step % 3600 == 0:
                    print(
                        f"  {step // 3600} h simulated, {os.path.getsize(path) / 1e6:.1f} MB, "
                        f"{time.monotonic() - started:.0f} s elapsed",
                        flush=True,
                    )
        mb = os.path.getsize(path) / 1e6
        print(
            f"{n:,} tags x {samples:,} samples: file {mb:.1f} MB (target <= 150 MB); insert median "
            f"{statistics.median(insert_ns) / 1e6:.2f} ms, p99 {np.percentile(insert_ns, 99) / 1e6:.2f} ms "
            f"(target <= 5 ms)"
        )
    with open(path, "rb") as f:  # both reports from the page cache, not one from the disk
        while f.read(1 << 24):
            pass
    t = time.perf_counter()
    old_points, old_leaks = full_frames_report(path)
    old_s = time.perf_counter() - t
    t = time.perf_counter()
    rep = build_report(path, JudgeThresholds())
    text = render_text(rep)
    elapsed = time.perf_counter() - t
    leaks = sum(1 for r in rep.results if r.verdict.label == "leak")
    print(
        f"report, every sample read: {elapsed:.2f} s (target <= 5 s), {rep.points} points, {leaks} leaks "
        f"found (simulated {int(leaking.sum())} leaking tags), {len(text.splitlines())} lines\n"
        f"baseline, full frames only: {old_s:.2f} s, {old_points} points, {old_leaks} leaks; reading every "
        f"sample costs {elapsed / old_s:.1f}x the baseline"
    )


def full_frames_report(path: str) -> tuple[int, int]:
    """The report's reading before it read every sample: the full frames only, then the analysis."""
    with Recording(path) as rec:
        rows = rec.con.execute("SELECT wall_us, frame FROM samples WHERE full = 1 ORDER BY id").fetchall()
        columns = len(rec.info.columns)
        states = []
        for _wall, frame in rows:
            state = FrameState(columns)
            state.apply(True, decode_frame(frame, columns))
            states.append(state)
        ids = np.flatnonzero(states[0].present)
        keys = [(rec.key_tags[i], int(rec.key_pools[i])) for i in ids]
        mats = {name: np.stack([s.values[ids, j] for s in states]).astype(np.float64)
                for j, name in enumerate(rec.info.columns[:4])}
        walls = np.array([w for w, _ in rows], dtype=np.float64)
        results = analyse((walls - walls[0]) / 1e6, keys, mats, [s.totals_record() for s in states],
                          JudgeThresholds(), rec.owners(), rec.aliases)
    return len(rows), sum(1 for r in results if r.verdict.label == "leak")

if __name__ == "__main__":
    main()
