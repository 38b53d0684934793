"""Real kernel workloads for the leak scenario suite, each run in a child process.

    python benchmarks/workloads.py NAME RATE WORKDIR

The child prints "ready" once set up, then runs until it is told to stop (SIGTERM, SIGINT) or
killed; what it holds (pipes, sockets, eventfds) the kernel frees when it dies. WORKDIR is a
folder the parent created and deletes; the child writes nothing anywhere else.

Leaks hold kernel objects at RATE objects per second. Normal activity allocates and frees, or
allocates once and holds, the way ordinary programs do. `Workload` (parent side) starts one
child, and on every exit path kills it (its whole process group: some children spawn their own)
and waits for it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

_stop = threading.Event()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop.set()


def raise_fd_limit() -> int:
    """As many descriptors as we may hold: root can lift the hard limit up to fs.nr_open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1 << 20, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            continue
    return soft


def _paced(rate: float, make: Callable[[], object], held: list[object], limit: int) -> None:
    """Call make() `rate` times a second (in small batches, on schedule, no drift) until stopped."""
    start = time.monotonic()
    tick = max(0.05, min(0.5, 1.0 / max(rate, 1e-9)))
    while not _stop.is_set():
        due = int((time.monotonic() - start) * rate) + 1
        while len(held) < min(due, limit):
            held.append(make())
        _stop.wait(tick)


def _hold_forever() -> None:
    _stop.wait()


# --- leaks ----------------------------------------------------------------------------------------


def leak_pipes(rate: float, workdir: str) -> None:
    budget = (raise_fd_limit() - 64) // 2
    held: list[object] = []
    print("ready", flush=True)
    _paced(rate, os.pipe, held, budget)


def leak_udp(rate: float, workdir: str) -> None:
    budget = raise_fd_limit() - 64
    held: list[object] = []
    print("ready", flush=True)
    _paced(rate, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), held, budget)


def leak_eventfds(rate: float, workdir: str) -> None:
    budget = raise_fd_limit() - 64
    held: list[object] = []
    print("ready", flush=True)
    _paced(rate, lambda: os.eventfd(0), held, budget)


# --- normal activity ------------------------------------------------------------------------------


def idle(rate: float, workdir: str) -> None:
    print("ready", flush=True)
    _hold_forever()


def tree_walk(rate: float, workdir: str) -> None:
    """Create a tree of 200 x 100 files, then walk it and /usr again and again: dentry and inode
    caches warm up, then level off (every later walk finds them cached)."""
    print("ready", flush=True)
    root = os.path.join(workdir, "tree")
    for d in range(200):
        if _stop.is_set():
            return
        sub = os.path.join(root, f"d{d:03d}")
        os.makedirs(sub)
        for f in range(100):
            with open(os.path.join(sub, f"f{f:03d}"), "w") as fh:
                fh.write("x")
    while not _stop.is_set():
        for top in (root, "/usr"):
            for dirpath, _dirs, files in os.walk(top):
                if _stop.is_set():
                    return
                for name in files:
                    with contextlib.suppress(OSError):
                        os.lstat(os.path.join(dirpath, name))
        _stop.wait(5)


def file_churn(rate: float, workdir: str) -> None:
    """Create, write, close and delete files, `rate` a second."""
    print("ready", flush=True)
    n = 0
    start = time.monotonic()
    while not _stop.is_set():
        path = os.path.join(workdir, f"churn{n % 50}")
        with open(path, "wb") as fh:
            fh.write(b"x" * 4096)
        os.unlink(path)
        n += 1
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            _stop.wait(ahead)


def step_held(rate: float, workdir: str) -> None:
    """A one-off allocation of thousands of objects (4,000 pipes, 2,000 UDP sockets), then held."""
    raise_fd_limit()
    print("ready", flush=True)
    _stop.wait(15)
    held: list[object] = [os.pipe() for _ in range(4000)]
    held += [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2000)]
    _hold_forever()


def ramp_then_flat(rate: float, workdir: str) -> None:
    """Warm-up that levels off: pipes at `rate` a second for 20 s (like a leak), then held."""
    raise_fd_limit()
    print("ready", flush=True)
    held: list[object] = []
    _stop.wait(10)
    _paced_for(rate, os.pipe, held, 20.0)
    _hold_forever()


def _paced_for(rate: float, make: Callable[[], object], held: list[object], seconds: float) -> None:
    timer = threading.Timer(seconds, _stop.set)
    timer.start()
    _paced(rate, make, held, 1 << 30)
    timer.cancel()
    _stop.clear()


def burst_freed(rate: float, workdir: str) -> None:
    """Every 20 s: 3,000 eventfds and 1,000 UDP sockets allocated at once, held 3 s, freed."""
    raise_fd_limit()
    print("ready", flush=True)
    while not _stop.is_set():
        held: list[Any] = [os.eventfd(0) for _ in range(3000)]
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(1000)]
        _stop.wait(3)
        for fd in held:
            os.close(fd)
        for s in socks:
            s.close()
        _stop.wait(17)


def tiny_wheel(folder: str) -> str:
    """A pure-Python wheel of one module, built by hand (no network, no build backend)."""
    name, version = "pooltop_scen_tiny", "0.1"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: pooltop-scen\nRoot-Is-Purelib: true\n"
                          "Tag: py3-none-any\n"),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for arc, text in files.items():
            zf.writestr(arc, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{a},,\n" for a in files) + f"{info}/RECORD,,\n")
    return path


def pip_install(rate: float, workdir: str) -> None:
    """Every 40 s: a fresh venv (ensurepip installs pip's bundled wheel), `pip install` of a tiny
    local wheel into it with no index, then the venv is deleted: thousands of files come and go."""
    wheel = tiny_wheel(workdir)
    base = getattr(sys, "_base_executable", sys.executable)
    print("ready", flush=True)
    n = 0
    while not _stop.is_set():
        started = time.monotonic()
        venv = os.path.join(workdir, f"venv{n}")
        n += 1
        subprocess.run([base, "-m", "venv", venv], check=False, capture_output=True)
        py = os.path.join(venv, "bin", "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check",
                        wheel], check=False, capture_output=True)
        shutil.rmtree(venv, ignore_errors=True)
        _stop.wait(max(0.0, 40 - (time.monotonic() - started)))


def fork_exec(rate: float, workdir: str) -> None:
    """/bin/true started and reaped `rate` times a second."""
    print("ready", flush=True)
    start = time.monotonic()
    n = 0
    while not _stop.is_set():
        subprocess.run(["/bin/true"], check=False)
        n += 1
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            _stop.wait(ahead)


def tcp_churn(rate: float, workdir: str) -> None:
    """Loopback TCP connect / accept / close, `rate` a second (TIME_WAIT sockets pile up for 60 s,
    then expire as fast as they come: a warm-up that levels off)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def accept() -> None:
        server.settimeout(0.5)
        while not _stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    print("ready", flush=True)
    start = time.monotonic()
    n = 0
    while not _stop.is_set():
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"x")
        n += 1
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            _stop.wait(ahead)
    server.close()


def thread_pool(rate: float, workdir: str) -> None:
    """A pool of 64 threads started, given short tasks, and shut down, every 2 s."""
    print("ready", flush=True)
    while not _stop.is_set():
        with ThreadPoolExecutor(max_workers=64) as pool:
            list(pool.map(lambda i: sum(range(1000 + i)), range(256)))
        _stop.wait(2)


WORKLOADS: dict[str, Callable[[float, str], None]] = {
    f.__name__: f
    for f in (leak_pipes, leak_udp, leak_eventfds, idle, tree_walk, file_churn, step_held,
              ramp_then_flat, burst_freed, pip_install, fork_exec, tcp_churn, thread_pool)
}


# --- parent side ----------------------------------------------------------------------------------


class Workload:
    """One workload child: started in its own process group, stopped (SIGTERM, then SIGKILL) and
    waited for on every exit path; its output goes to `log_path`."""

    def __init__(self, name: str, rate: float, workdir: str, log_path: str) -> None:
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r}")
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), name, str(rate), workdir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != b"ready":
            self.stop()
            raise RuntimeError(f"workload {name} did not start (see {log_path})")

    def stop(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        # what the child started (pip, /bin/true) goes with it
        self._signal_group(signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()
        self._log.close()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> Workload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> None:
    name, rate, workdir = argv[0], float(argv[1]), argv[2]
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    WORKLOADS[name](rate, workdir)


if __name__ == "__main__":
    main(sys.argv[1:])
