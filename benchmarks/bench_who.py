"""What `pooltop who` costs (prints figures; asserts nothing). Linux, root.

A child process opens and closes /dev/null in a loop paced to a target rate: each open takes one
object from the `filp` slab cache (kmem_cache_alloc) and each close gives it back. At each rate
the same workload runs twice, untraced and while `pooltop who filp` traces it, and the figures are:
- the workload's CPU time per open+close, untraced and traced (the better of --repeat runs), and
  the slowdown between them: the kernel's cost of the enabled events lands on the workload.
  Each open+close fires six kmem events (names_cache, filp, lsm_file_cache; alloc and free):
  all six pay for the tracepoint and the filter, the two of filp are recorded;
- what that costs at the rate: the extra CPU per operation times the rate, in percent of one CPU;
- pooltop's CPU while tracing, in percent of one CPU (its start-up, measured once with nothing
  to trace, taken off);
- the events pooltop counted and the events it lost.
Target (issue 15): under 10% slowdown at 10,000 allocations/s.

    sudo python benchmarks/bench_who.py [--seconds 3] [--rates 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = "filp"
FLOOR_CACHE = "sigqueue"  # a cache the workload never allocates from

WORKLOAD = """
import os, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
cpu = time.process_time()  # the loop's own CPU, without the interpreter's start-up
start = time.monotonic()
done = 0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = int(rate * elapsed) + 1 if rate > 0 else done + 1000
    while done < due:
        os.close(os.open("/dev/null", os.O_RDONLY))
        done += 1
    if rate > 0:
        time.sleep(0.01)  # bursts of rate/100: fewer wake-ups to blur the per-operation cost
print(done, time.monotonic() - start, time.process_time() - cpu, flush=True)
"""


def run_workload(rate: float, seconds: float) -> tuple[int, float, float]:
    """(operations, wall seconds, CPU seconds of the child's loop)."""
    child = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(rate), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    ops, wall, cpu = child.stdout.read().split()
    child.wait()
    return int(ops), float(wall), float(cpu)


def start_pooltop(seconds: float, cache: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pooltop", "who", cache, "--duration", f"{seconds}",
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    enable = f"/sys/kernel/tracing/instances/pooltop-{proc.pid}/events/kmem/kmem_cache_alloc/enable"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(enable) as f:
                if f.read().startswith("1"):
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"pooltop who failed: {proc.communicate()[1].strip()}")
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("pooltop who did not start tracing within 30 s")


def finish_pooltop(proc: subprocess.Popen[str]) -> tuple[dict[str, object], float]:
    """(its JSON, its CPU seconds)."""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        doc = json.loads(out)
    except ValueError:
        raise SystemExit(f"pooltop who failed: {err.strip()}") from None
    return doc, usage.ru_utime + usage.ru_stime


def measure(rate: float, cache: str, seconds: float, repeat: int, startup_cpu: float) -> str:
    """One row of the table: the workload at `rate`, untraced and while `pooltop who cache` runs."""
    per_base = per_traced = float("inf")
    reached = busy = 0.0
    allocs = lost = 0
    for _ in range(repeat):
        base_ops, _, base_cpu = run_workload(rate, seconds)
        per_base = min(per_base, base_cpu / max(base_ops, 1) * 1e6)
        tracer = start_pooltop(seconds + 1.0, cache)
        ops, wall, cpu = run_workload(rate, seconds)
        doc, pooltop_cpu = finish_pooltop(tracer)
        if cpu / max(ops, 1) * 1e6 < per_traced:
            per_traced = cpu / max(ops, 1) * 1e6
            events = doc["events"]
            assert isinstance(events, dict)
            reached, allocs, lost = ops / wall, int(events["allocs"]), int(events["lost"])
            busy = max(0.0, pooltop_cpu - startup_cpu) / (seconds + 1.0)
    load = (per_traced - per_base) * 1e-6 * reached
    return (f"{rate:>9,.0f} {cache:>9} {reached:>10,.0f} {per_base:>15.2f} {per_traced:>13.2f} "
            f"{per_traced / per_base - 1:>+9.1%} {load:>8.1%} {busy:>12.1%} {allocs:>12,} {lost:>8,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each workload run")
    ap.add_argument("--rates", default="1000,10000,100000", help="allocations per second to try")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, the best counts")
    args = ap.parse_args()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise SystemExit("bench_who: needs Linux and root (tracefs)")
    seconds = args.seconds

    ops, wall, _ = run_workload(0, 1.0)
    ceiling = ops / wall
    print(f"workload: open+close /dev/null ({CACHE}: one kmem_cache_alloc and one kmem_cache_free each); "
          f"unpaced {ceiling:,.0f}/s on this machine, {os.cpu_count()} CPUs")
    _, startup_cpu = finish_pooltop(start_pooltop(0.1, CACHE))
    print(f"pooltop who start-up + set-up + cleanup, nothing traced: {startup_cpu * 1e3:.0f} ms CPU "
          "(taken off the figures below)")
    print()
    print(f"{'rate/s':>9} {'traced':>9} {'reached/s':>10} {'us/op untraced':>15} {'us/op traced':>13} "
          f"{'slowdown':>9} {'at rate':>8} {'pooltop CPU':>12} {'allocs seen':>12} {'lost':>8}")
    rates = [float(r) for r in args.rates.split(",")]
    for rate in rates:
        if rate > 0.9 * ceiling:
            print(f"{rate:>9,.0f}  not reachable here (the unpaced loop makes {ceiling:,.0f}/s)")
            continue
        print(measure(rate, CACHE, seconds, args.repeat, startup_cpu))
    floor_rate = min(rates, key=lambda r: abs(r - 10_000))
    # The same events enabled, filtered to a cache the workload never touches: the kernel's price
    # of the enabled tracepoints and filters alone, with nothing recorded or read.
    print(measure(floor_rate, FLOOR_CACHE, seconds, args.repeat, startup_cpu))
    print()
    print("slowdown: the workload's CPU per open+close while traced over the same untraced; at rate: that "
          "extra CPU at the rate reached, in percent of one CPU; pooltop CPU: its CPU time over the trace's "
          "length, in percent of one CPU; allocs seen: allocations of the traced cache by every process "
          f"(the machine's too). The {FLOOR_CACHE} row traces a cache the workload does not use: what the "
          "enabled events and their filters cost before anything is recorded.")


if __name__ == "__main__":
    main()
