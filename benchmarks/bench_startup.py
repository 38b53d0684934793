"""Start-up of whole `pooltop` processes beside a bare Python start, measured in turn in one run.

    python benchmarks/bench_startup.py [--runs N]

Issue 18 item 3 targets: `pooltop --help` <= 3x and `pooltop snapshot` <= 5x `python -c pass`
(the same interpreter and environment). Each command starts as a new process `--runs` times; the
commands take turns so a noisy neighbour slows each alike; medians are printed. `snapshot` reads
this machine's counters (as root on Linux: /proc/slabinfo) and writes them to /dev/null. Also
prints which of the heavy modules each command loaded (none should, but numpy for snapshot).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY = ("numpy", "capstone", "pefile", "sqlite3", "rich", "textual", "prometheus_client", "psutil",
         "matplotlib", "ahocorasick_rs", "platformdirs", "pooltop.tagdb.scanner", "pooltop.record",
         "pooltop.share", "pooltop.exporter", "pooltop.processes", "pooltop.app")

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "pooltop --help": [sys.executable, "-m", "pooltop", "--help"],
    "pooltop snapshot": [sys.executable, "-m", "pooltop", "snapshot"],
}
TARGETS = {"pooltop --help": 3.0, "pooltop snapshot": 5.0}


#: the processes' environment: bytecode caches on (as an installed package has them), kept in a
#: folder of the benchmark's own so the tree stays clean; set up in main()
ENV: dict[str, str] = {}


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall time, and the CPU time (user + system) the process used: on a busy machine the CPU
    time says more about the program than the wall time, which waits for the other processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def loaded(argv: list[str]) -> list[str]:
    """The heavy modules a command imports (it runs in-process under a tracing wrapper)."""
    args = argv[argv.index("pooltop") + 1:] if "pooltop" in argv else []
    code = ("import sys, runpy\n"
            f"sys.argv = ['pooltop', *{args!r}]\n"
            "try:\n    runpy.run_module('pooltop', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.__stderr__)\n")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, check=False, env=ENV)
    return out.stderr.strip().splitlines()[-1].split() if out.stderr.strip() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="starts of each command (default 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pooltop-bench-pyc-") as cache:
        ENV.update(os.environ, PYTHONPYCACHEPREFIX=cache)
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # without it every start compiles pooltop anew
        measure(args.runs)


def measure(runs: int) -> None:
    env_note = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')!r}"
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the page cache
        run_once(argv)
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            wall, cpu = run_once(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base = statistics.median(walls["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    print(f"start-up, median of {runs} runs each, in turn ({sys.executable}, {env_note}, "
          f"load average {os.getloadavg()[0]:.1f})")
    for name in COMMANDS:
        med, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        line = (f"{name:18s} wall {med * 1e3:6.1f} ms = {med / base:5.2f}x python -c pass;"
                f"  CPU {cpu * 1e3:6.1f} ms = {cpu / base_cpu:5.2f}x")
        if name in TARGETS:
            target = TARGETS[name]
            line += f"  (target <= {target:g}x: {'meets' if med / base <= target else 'MISSES'})"
            line += f"; loads: {' '.join(loaded(COMMANDS[name])) or 'none of the heavy modules'}"
        print(line)


if __name__ == "__main__":
    main()
