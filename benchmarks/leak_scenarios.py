"""Labelled real-kernel leak scenarios: how often pooltop's leak judge is right (root, Linux).

    sudo python benchmarks/leak_scenarios.py [--quick] [--only NAME[,NAME]] [--out DIR]
    python benchmarks/leak_scenarios.py --evaluate DIR        # judge saved recordings again
    python benchmarks/leak_scenarios.py --calibrate           # which caches grow per object here

Each scenario runs one real workload in a child process (benchmarks/workloads.py) while
`pooltop record --interval 1s` records the slab, started a few seconds before the workload and
stopped (SIGINT) after the scenario's duration, before the workload is stopped (so a leak is still
held when the recording ends). Leaks: pipes, UDP sockets and eventfds held at ~100/s (fast) and
~2/s (slow). Normal activity: an idle control, a directory tree created and walked, files created
and deleted, a one-off allocation then held, a warm-up that levels off, bursts allocated and freed,
`pip install` of a local wheel into fresh venvs, fork/exec, loopback TCP churn, a thread pool.

Every recording lands in DIR (default /work/scen-data) with `scenarios.json` (labels: kind, target
caches, rate, start/end wall times) and a README.md, rewritten as soon as each scenario finishes.
The evaluation (scenario_rules.py) then prints, per scenario and in one table, what pooltop's judge
said (the `report` command, and the live view's Tracker replayed sample by sample) beside two naive
rules. The machine is shared: the idle control measures the background noise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from workloads import Workload, raise_fd_limit

DEFAULT_OUT = "/work/scen-data"
LEAD_S = 5.0  # the recorder runs this long before the workload starts
LABELS = "scenarios.json"

# Which caches grow per held object on this kernel (6.18, SLUB), from --calibrate: a pipe adds two
# filp, a pipe_inode_info (kmalloc-cg-192), its buffer array (kmalloc-cg-1k), an inode and a
# dentry; a UDP socket a UDP sock, a socket inode, a dentry, a filp and a kmalloc-64; an eventfd
# a filp, its context (kmalloc-64) and a dentry. `targets` are the unreclaimable ones (what a
# leak judge must find); `reclaimable` ones grow too but the kernel can free them under pressure.
PIPE_TARGETS = ("filp", "kmalloc-cg-1k", "kmalloc-cg-192")
UDP_TARGETS = ("UDP", "filp", "kmalloc-64")
EVENTFD_TARGETS = ("filp", "kmalloc-64")


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "leak" | "normal" | "control"
    workload: str
    rate: float  # objects (or operations) per second; 0 where it does not apply
    duration_s: float
    quick_s: float
    targets: tuple[str, ...] = ()
    reclaimable: tuple[str, ...] = ()
    note: str = ""


FAST, SLOW, NORMAL = 90.0, 330.0, 120.0

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("leak_pipes_fast", "leak", "leak_pipes", 100, FAST, 25, PIPE_TARGETS, ("inode_cache", "dentry"),
             "100 pipes/s held"),
    Scenario("leak_udp_fast", "leak", "leak_udp", 100, FAST, 25, UDP_TARGETS, ("sock_inode_cache", "dentry"),
             "100 UDP sockets/s held"),
    Scenario("leak_eventfd_fast", "leak", "leak_eventfds", 100, FAST, 25, EVENTFD_TARGETS, ("dentry",),
             "100 eventfds/s held"),
    Scenario("idle", "control", "idle", 0, NORMAL, 20, note="nothing: the machine's background noise"),
    Scenario("tree_walk", "normal", "tree_walk", 0, NORMAL, 25,
             note="20,000 files created in a tree, then it and /usr walked (lstat) every 5 s"),
    Scenario("file_churn", "normal", "file_churn", 200, NORMAL, 20,
             note="200 files/s created, written, deleted"),
    Scenario("step_held", "normal", "step_held", 0, NORMAL, 25,
             note="after 15 s, 4,000 pipes and 2,000 UDP sockets at once, then held"),
    Scenario("ramp_then_flat", "normal", "ramp_then_flat", 100, NORMAL, 40,
             note="after 10 s, 100 pipes/s for 20 s (2,000), then held: warm-up that levels off"),
    Scenario("burst_freed", "normal", "burst_freed", 0, NORMAL, 25,
             note="every 20 s, 3,000 eventfds + 1,000 UDP sockets for 3 s, then freed"),
    Scenario("pip_install", "normal", "pip_install", 0, NORMAL, 30,
             note="every 40 s: fresh venv (ensurepip), pip install of a local wheel, venv deleted"),
    Scenario("fork_exec", "normal", "fork_exec", 20, NORMAL, 20, note="/bin/true 20 times a second"),
    Scenario("tcp_churn", "normal", "tcp_churn", 100, NORMAL, 20,
             note="loopback TCP connect/accept/close 100/s (TIME_WAIT piles up 60 s, then levels)"),
    Scenario("thread_pool", "normal", "thread_pool", 0, NORMAL, 20,
             note="a 64-thread pool started, used and shut down every 2 s"),
    Scenario("leak_pipes_slow", "leak", "leak_pipes", 2, SLOW, 40, PIPE_TARGETS, ("inode_cache", "dentry"),
             "2 pipes/s held"),
    Scenario("leak_udp_slow", "leak", "leak_udp", 2, SLOW, 40, UDP_TARGETS, ("sock_inode_cache", "dentry"),
             "2 UDP sockets/s held"),
    Scenario("leak_eventfd_slow", "leak", "leak_eventfds", 2, SLOW, 40, EVENTFD_TARGETS, ("dentry",),
             "2 eventfds/s held"),
)
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass
class RunRecord:
    """One recorded scenario, as written to scenarios.json."""

    name: str
    kind: str
    workload: str
    rate: float
    targets: list[str]
    reclaimable: list[str]
    note: str
    file: str
    interval_s: float
    recorder_start: str
    start: str  # the workload's start and end, ISO 8601 UTC
    end: str
    duration_s: float
    #: /proc/pressure/memory "some" total (µs) when the workload started and ended: pressure stalls
    psi_some_us: tuple[int | None, int | None] = (None, None)
    host: str = field(default_factory=socket.gethostname)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _samples(path: str) -> int:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT count(*) FROM samples").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _wait_for_samples(path: str, count: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pooltop record exited with {proc.returncode}")
        if _samples(path) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{path} got no samples in {timeout:.0f} s")


def _stop_recorder(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record_scenario(sc: Scenario, out: str, duration: float, interval: float) -> RunRecord:
    """Record one scenario into OUT/NAME.db; the workload and the recorder are stopped and waited
    for on every exit path, and the workload's temp folder is deleted."""
    path = os.path.join(out, f"{sc.name}.db")
    for stale in (path, path + "-wal", path + "-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    log = os.path.join(out, f"{sc.name}.log")
    workdir = tempfile.mkdtemp(prefix=f"pooltop-scen-{sc.name}-")
    with open(log, "wb") as log_fh:
        recorder = subprocess.Popen(
            [sys.executable, "-m", "pooltop", "record", "-o", path, "--interval", f"{interval}s"],
            stdin=subprocess.DEVNULL, stdout=log_fh, stderr=log_fh,
        )
    try:
        recorder_start = _now()
        _wait_for_samples(path, 1, recorder)
        time.sleep(LEAD_S)
        with Workload(sc.workload, sc.rate, workdir, log) as _:
            start, psi_start = _now(), memory_stall_us()
            t0 = time.monotonic()
            time.sleep(duration)
            end, psi_end = _now(), memory_stall_us()
            _stop_recorder(recorder)
            took = time.monotonic() - t0
    finally:
        _stop_recorder(recorder)
        shutil.rmtree(workdir, ignore_errors=True)
    return RunRecord(sc.name, sc.kind, sc.workload, sc.rate, list(sc.targets), list(sc.reclaimable), sc.note,
                     os.path.basename(path), interval, recorder_start, start, end, round(took, 1),
                     (psi_start, psi_end))


def memory_stall_us() -> int | None:
    """The `some` total of /proc/pressure/memory (Linux 4.20+ with PSI), None where absent."""
    try:
        with open("/proc/pressure/memory") as fh:
            first = fh.readline()
    except OSError:
        return None
    fields = dict(kv.split("=", 1) for kv in first.split()[1:])
    return int(fields["total"]) if "total" in fields else None


# --- labels --------------------------------------------------------------------------------------


def reclaim_flags(names: list[str]) -> dict[str, bool]:
    """SLAB_RECLAIM_ACCOUNT per cache (`kmalloc-rcl-*` are reclaimable by name)."""
    out = {}
    for name in names:
        try:
            with open(f"/sys/kernel/slab/{name}/reclaim_account") as fh:
                out[name] = fh.read().strip() == "1"
        except OSError:
            out[name] = name.startswith("kmalloc-rcl-")
    return out


def slab_caches() -> dict[str, tuple[int, int]]:
    """name -> (active objects, object size) from /proc/slabinfo."""
    out = {}
    with open("/proc/slabinfo") as fh:
        for line in fh.read().splitlines()[2:]:
            f = line.split()
            out[f[0]] = (int(f[1]), int(f[3]))
    return out


def load_labels(out: str) -> dict[str, object]:
    try:
        with open(os.path.join(out, LABELS)) as fh:
            doc: dict[str, object] = json.load(fh)
            return doc
    except (OSError, ValueError):
        return {"schema": "pooltop.scenarios/1", "scenarios": []}


def save_labels(out: str, doc: dict[str, object]) -> None:
    tmp = os.path.join(out, LABELS + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, os.path.join(out, LABELS))


def add_run(out: str, run: RunRecord) -> None:
    doc = load_labels(out)
    runs = [r for r in doc["scenarios"] if r["name"] != run.name]  # type: ignore[attr-defined]
    runs.append(asdict(run))
    doc["scenarios"] = runs
    doc["reclaimable"] = {k: v for k, v in reclaim_flags(sorted(slab_caches())).items() if v}
    save_labels(out, doc)
    write_readme(out, doc)


def write_readme(out: str, doc: dict[str, object]) -> None:
    lines = [
        "# pooltop leak scenarios: labelled real-kernel recordings",
        "",
        "Made by `benchmarks/leak_scenarios.py` (pooltop repository). One SQLite recording per scenario",
        "(`pooltop record --interval 1s`, started ~5 s before the workload, stopped before it), and",
        f"`{LABELS}` with the labels: `kind` (leak | normal | control), `targets` (unreclaimable caches",
        "a leak grows; a judge must find one of them), `reclaimable` (caches that grow too but are",
        "SLAB_RECLAIM_ACCOUNT), `rate` (objects/s), `start`/`end` (the workload's wall times, UTC),",
        "`psi_some_us` (/proc/pressure/memory `some` total at the workload's start and end: memory",
        "pressure), `calibration` (slab growth per object measured on this kernel) and `reclaimable`",
        "(all caches with reclaim_account = 1 here). The machine is shared with other jobs: the `idle`",
        "control shows the background noise. Re-judge with",
        "`python benchmarks/leak_scenarios.py --evaluate DIR`.",
        "",
        "| scenario | kind | rate/s | s | targets | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["scenarios"]:  # type: ignore[attr-defined]
        lines.append(f"| {r['name']} | {r['kind']} | {r['rate']:g} | {r['duration_s']:g} | "
                     f"{', '.join(r['targets']) or '-'} | {r['note']} |")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


# --- calibration ---------------------------------------------------------------------------------


def calibrate(count: int = 2000) -> dict[str, dict[str, float]]:
    """Objects per held kernel object, per cache that grew by at least 0.5 each, measured here."""
    raise_fd_limit()
    kinds = {
        "pipe": (os.pipe, lambda p: (os.close(p[0]), os.close(p[1]))),
        "udp": (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), lambda s: s.close()),
        "eventfd": (lambda: os.eventfd(0), os.close),
    }
    out: dict[str, dict[str, float]] = {}
    for kind, (make, free) in kinds.items():
        before = slab_caches()
        held = [make() for _ in range(count)]  # type: ignore[no-untyped-call]
        time.sleep(0.5)
        after = slab_caches()
        for h in held:
            free(h)  # type: ignore[no-untyped-call]
        grew = {n: (a[0] - before.get(n, (0, 0))[0]) / count for n, a in after.items()}
        out[kind] = {n: round(g, 2) for n, g in sorted(grew.items(), key=lambda kv: -kv[1]) if g >= 0.5}
        time.sleep(1)
    return out


# --- command line --------------------------------------------------------------------------------


def pick(only: str | None) -> list[Scenario]:
    if not only:
        return list(SCENARIOS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"leak_scenarios: unknown scenario {', '.join(unknown)} "
                         f"(known: {', '.join(BY_NAME)})")
    return [BY_NAME[n] for n in names]


def run_all(args: argparse.Namespace) -> None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise SystemExit("leak_scenarios: recording needs root on Linux (/proc/slabinfo)")
    out = args.out
    os.makedirs(out, exist_ok=True)
    doc = load_labels(out)
    doc["calibration"] = calibrate()
    save_labels(out, doc)
    print(f"calibration (objects per held object): {json.dumps(doc['calibration'])}", flush=True)
    for sc in pick(args.only):
        duration = sc.quick_s if args.quick else sc.duration_s
        if args.scale:
            duration *= args.scale
        print(f"{_now()[:19]} {sc.name}: {sc.kind}, {duration:g} s ...", flush=True)
        run = record_scenario(sc, out, duration, args.interval)
        add_run(out, run)
        samples = _samples(os.path.join(out, run.file))
        print(f"{_now()[:19]} {sc.name}: recorded {run.file} ({samples} samples)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="results folder (recordings, labels, README)")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--quick", action="store_true", help="short durations (a smoke run, not figures)")
    ap.add_argument("--scale", type=float, help="multiply every duration by this")
    ap.add_argument("--interval", type=float, default=1.0, help="recording interval, seconds")
    ap.add_argument("--evaluate", metavar="DIR", help="only judge the recordings saved in DIR")
    ap.add_argument("--no-evaluate", action="store_true", help="record only")
    ap.add_argument("--calibrate", action="store_true", help="print slab growth per object and stop")
    ap.add_argument("--list", action="store_true", help="list the scenarios and stop")
    args = ap.parse_args()
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:18} {sc.kind:7} {sc.duration_s:5g} s  {sc.note}")
        return
    if args.calibrate:
        print(json.dumps(calibrate(), indent=1))
        return
    if not args.evaluate:
        run_all(args)
        if args.no_evaluate:
            return
    from scenario_rules import evaluate  # the judge and rules; imports pooltop's numerics

    evaluate(args.evaluate or args.out, only=[s.name for s in pick(args.only)] if args.only else None)


if __name__ == "__main__":
    main()
