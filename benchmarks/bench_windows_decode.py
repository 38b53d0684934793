"""Decode time of SystemPoolTagInformation (class 22) buffers, x64 layout: pooltop's numpy decoder
against a naive struct.unpack_from loop measured in the same run.

    python benchmarks/bench_windows_decode.py [--runs N]

Targets (issue 3): 5,000 records <= 1 ms and 50,000 records <= 10 ms (median). The buffers are
synthetic: random printable tags, 32-bit alloc/free counters, and like a real machine most tags
use one pool only (35% paged only, 35% nonpaged only, 30% both), so 5,000 records make about
6,500 rows. `--both` puts every tag in both pools (two rows per record, the worst case).
The median is reported with the fastest and slowest quartile boundaries; the decoded result is
released outside the timed region. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pooltop.model import CounterSet, escape_tag
from pooltop.native.windows.layouts import X64, TagTextCache, decode_pooltags

RECORD = struct.Struct("<IIIxxxxQIIQ")  # SYSTEM_POOLTAG, x64


def make_buffer(n: int, both: bool, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    tags = rng.integers(0x21, 0x7F, size=(n, 4), dtype=np.uint8).view("<u4").ravel()
    counters = rng.integers(0, 2**32, size=(n, 4), dtype=np.uint64)
    used = rng.integers(0, 2**36, size=(n, 2), dtype=np.uint64)
    which = rng.random(n)
    out = bytearray(struct.pack("<II", n, 0))
    for i in range(n):
        pa, pf, npa, npf = (int(v) for v in counters[i])
        pu, npu = (int(v) for v in used[i])
        if not both and which[i] < 0.35:
            pa = pf = pu = 0
        elif not both and which[i] < 0.7:
            npa = npf = npu = 0
        out += RECORD.pack(int(tags[i]), pa, pf, pu, npa, npf, npu)
    return bytes(out)


def naive_decode(buf: bytes) -> CounterSet:
    """What a straightforward port would do: one struct.unpack_from per record."""
    (count,) = struct.unpack_from("<I", buf, 0)
    tags: list[str] = []
    pools: list[int] = []
    allocs: list[int] = []
    frees: list[int] = []
    diff: list[int] = []
    used: list[int] = []
    for i in range(count):
        tag, pa, pf, pu, npa, npf, npu = RECORD.unpack_from(buf, 8 + i * RECORD.size)
        text = escape_tag((tag & 0x7FFFFFFF).to_bytes(4, "little"))
        for pool, a, f, u in ((0, npa, npf, npu), (1, pa, pf, pu)):
            if a or f or u:
                tags.append(text)
                pools.append(pool)
                allocs.append(a)
                frees.append(f)
                diff.append((a - f) & 0xFFFFFFFF)
                used.append(u)
    return CounterSet.build(tags, pools, allocs, frees, diff, used)


def timings(fn: Callable[[bytes], Any], buf: bytes, runs: int) -> list[float]:
    fn(buf)  # warm up
    out = []
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            result = fn(buf)
            out.append(time.perf_counter() - t0)
            del result
    finally:
        gc.enable()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=201, help="timed decodes per size (default 201)")
    parser.add_argument("--both", action="store_true", help="every tag in both pools (worst case)")
    args = parser.parse_args()
    targets = {5_000: 1.0, 50_000: 10.0}
    print(
        f"x64 SYSTEM_POOLTAG decode, median of {args.runs} runs "
        f"({'every tag in both pools' if args.both else '30% of tags in both pools'})"
    )
    for n, target_ms in targets.items():
        buf = make_buffer(n, args.both)
        rows = len(decode_pooltags(buf, X64))
        assert sorted(naive_decode(buf).keys()) == sorted(decode_pooltags(buf, X64).keys())
        ours = timings(lambda b: decode_pooltags(b, X64), buf, args.runs)
        naive = timings(naive_decode, buf, max(5, args.runs // 10))
        med, naive_med = statistics.median(ours) * 1e3, statistics.median(naive) * 1e3
        q1, _, q3 = (x * 1e3 for x in statistics.quantiles(ours, n=4))
        steady = steady_ms(buf, args.runs)
        print(
            f"{n:>6} records ({rows} rows): numpy first decode {med:7.3f} ms "
            f"[quartiles {q1:.3f}..{q3:.3f}], steady refresh {steady:6.3f} ms   "
            f"struct loop {naive_med:8.2f} ms ({naive_med / med:5.1f}x slower)   target {target_ms:g} ms: "
            f"first {'meets' if med <= target_ms else 'MISSES'}, "
            f"steady {'meets' if steady <= target_ms else 'MISSES'}"
        )


def steady_ms(buf: bytes, runs: int) -> float:
    """A live source keeps the tag texts while the kernel's tag table stays the same (the usual
    refresh); the first decode pays for every string."""
    cache = TagTextCache()
    decode_pooltags(buf, X64, cache=cache)
    return statistics.median(timings(lambda b: decode_pooltags(b, X64, cache=cache), buf, runs)) * 1e3


if __name__ == "__main__":
    main()
