"""Exporter figures: one sampling step (tracking + selection + frame), one scrape, and a burst of
200 concurrent scrapes against pooltop's server beside prometheus_client's own (same run).

    python benchmarks/bench_exporter.py

Prints medians for 5,000 and 50,000 Windows-like tags (top 100 + up to 100 at watch level, the
`pooltop serve` defaults) and, on Linux as root, for the live /proc/slabinfo. A scrape only
formats the latest frame, so its cost depends on the exported tags, not on the kernel's table.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

import numpy as np
from prometheus_client import generate_latest, start_http_server

from pooltop.exporter.service import ExportOptions, MetricsServer, PoolExporter
from pooltop.model import CounterSet, HostInfo, Snapshot, Totals
from pooltop.native import Source

HOST = HostInfo("bench", "Windows", "10.0.26100", "AMD64")


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


class SyntheticSource(Source):
    """n tags; a few hundred of them grow every sample so the watch-level extras are exercised."""

    name = "synthetic"

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(7)
        self.tags = [f"{i:04x}"[-4:] + ("" if i < 65536 else str(i)) for i in range(n)]
        self.pools = rng.integers(0, 2, n)
        self.bytes = rng.integers(1_000, 10_000_000, n)
        self.allocs = rng.integers(0, 2**32, n)
        self.growing = rng.choice(n, size=min(300, n), replace=False)
        self.t = 0

    def sample(self) -> Snapshot:
        self.t += 1
        self.bytes[self.growing] += 4096
        self.allocs = (self.allocs + 1000) % 2**32
        counters = CounterSet.build(self.tags, self.pools, self.allocs, self.allocs // 2, self.allocs // 2,
                                    self.bytes)
        return Snapshot(self.name, dt.datetime.now(dt.UTC), self.t * 1_000_000_000, HOST,
                        Totals(paged_pool=1 << 30, nonpaged_pool=1 << 29), counters)


def bench(label: str, source: Source, runs: int) -> None:
    exporter = PoolExporter(source, ExportOptions(interval=1.0), log=lambda _: None, process_metrics=False)
    for _ in range(10):
        exporter.sample_once()
    sample = median_ms(exporter.sample_once, runs)
    scrape = median_ms(lambda: generate_latest(exporter.registry), runs)
    size = len(generate_latest(exporter.registry))
    frame = exporter.state.frame
    exported = len(frame) if frame is not None else 0
    print(f"{label}: sample step {sample:7.2f} ms, scrape {scrape:6.2f} ms "
          f"({exported} tags exported, {size / 1000:.0f} kB of text)")


def burst(url: str, scrapes: int, timeout: float) -> tuple[list[float], int]:
    """Latencies of `scrapes` requests released at once, and how many failed or timed out."""
    gate = threading.Barrier(scrapes)
    took: list[float] = []
    failed = [0]

    def one() -> None:
        gate.wait()
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                r.read()
            took.append(time.perf_counter() - t0)
        except OSError:
            failed[0] += 1

    threads = [threading.Thread(target=one) for _ in range(scrapes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return took, failed[0]


def bench_burst(scrapes: int = 200, timeout: float = 10.0) -> None:
    exporter = PoolExporter(SyntheticSource(5_000), ExportOptions(interval=1.0), log=lambda _: None,
                            process_metrics=False)
    exporter.sample_once()
    ours = MetricsServer(exporter.registry, "127.0.0.1", 0)
    theirs, thread = start_http_server(0, addr="127.0.0.1", registry=exporter.registry)
    try:
        for label, port in (("pooltop serve's server", ours.address[1]),
                            ("prometheus_client's server (baseline)", theirs.server_address[1])):
            took, failed = burst(f"http://127.0.0.1:{port}/metrics", scrapes, timeout)
            worst = f"slowest {max(took):.2f} s, median {statistics.median(took):.2f} s" if took else "none"
            print(f"{scrapes} concurrent scrapes, {label}: {len(took)} answered ({worst}), "
                  f"{failed} failed or timed out at {timeout:g} s (target: all, each <= 5 s)")
    finally:
        ours.close()
        theirs.shutdown()
        theirs.server_close()
        thread.join(5)


def main() -> None:
    for n in (5_000, 50_000):
        bench(f"{n:>6} synthetic tags", SyntheticSource(n), runs=30)
    bench_burst()
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        from pooltop.native.linux import LinuxSource

        with LinuxSource() as live:
            bench("live /proc/slabinfo", live, runs=30)


if __name__ == "__main__":
    main()
