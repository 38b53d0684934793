"""Per-process sampling and verdict figures (prints them; asserts nothing).

(a) one ProcessSource sample on this machine, with USS (smaps_rollup per process) and without
    (RSS - shared from statm), median of --repeat runs; plus Tracker.update on the result;
(b) judge() over a window of synthetic (system, process) pairs: --processes processes x --samples;
(c) parse_kernel_log on a --lines-line kernel log made of the recorded fixtures, repeated.

    python benchmarks/bench_processes.py [--repeat 5] [--processes 2000] [--samples 30] [--lines 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooltop.model import CounterSet, HostInfo, Snapshot, Totals  # noqa: E402
from pooltop.processes.logs import parse_kernel_log  # noqa: E402
from pooltop.processes.source import LINUX_SOURCE, ProcessReading, ProcessSource, process_counters  # noqa: E402
from pooltop.processes.verdict import judge  # noqa: E402
from pooltop.tracking import Tracker  # noqa: E402

HOST = HostInfo("bench", "Linux", "6", "x86_64")


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_sampling(repeat: int) -> None:
    for exact in (True, False):
        source = ProcessSource(exact_private=exact)
        source.sample()  # warm psutil's process cache
        secs, snap = timed(source.sample, repeat)
        assert isinstance(snap, Snapshot)
        label = "USS (smaps_rollup)" if exact else "RSS - shared (statm)"
        print(f"(a) sample, {label:21}: {secs * 1e3:7.1f} ms for {len(snap.counters)} processes "
              f"({secs * 1e6 / max(len(snap.counters), 1):.0f} us each)")
    tracker = Tracker()
    tracker.update(snap)
    secs, _ = timed(lambda: tracker.update(source.sample()), repeat)
    print(f"    sample (statm) + Tracker.update: {secs * 1e3:.1f} ms")


def bench_judge(processes: int, samples: int) -> None:
    pairs = []
    for i in range(samples):
        readings = [ProcessReading(pid, f"p{pid}", private=(50 + (pid % 7) * (i % 3)) << 20, rss=0,
                                   handles=pid % 100) for pid in range(processes)]
        t_ns = i * 1_000_000_000
        system = Snapshot("linux-slab", dt.datetime.now(dt.UTC), t_ns, HOST,
                          Totals(slab_unreclaimable=(100 << 20) + i * (1 << 20)), CounterSet.empty())
        procs = Snapshot(LINUX_SOURCE, dt.datetime.now(dt.UTC), t_ns, HOST, Totals(),
                         process_counters(readings, "linux"))
        pairs.append((system, procs))
    secs, verdict = timed(lambda: judge(pairs), 5)
    kind = getattr(verdict, "kind", None)
    print(f"(b) judge, {processes} processes x {samples} samples: {secs * 1e3:.1f} ms ({kind})")


def bench_logs(lines: int) -> None:
    folder = ROOT / "tests" / "data" / "events" / "linux"
    base = "".join(p.read_text() for p in sorted(folder.glob("*.txt")))
    n = base.count("\n")
    text = base * max(lines // max(n, 1), 1)
    secs, events = timed(lambda: parse_kernel_log(text), 5)
    assert isinstance(events, tuple)
    print(f"(c) parse_kernel_log, {text.count(chr(10))} lines: {secs * 1e3:.1f} ms, {len(events)} events")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--lines", type=int, default=20000)
    args = ap.parse_args()
    bench_sampling(args.repeat)
    bench_judge(args.processes, args.samples)
    bench_logs(args.lines)


if __name__ == "__main__":
    main()
