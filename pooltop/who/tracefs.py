"""The kernel's tracing filesystem, thinly: a private instance, its filters, triggers and events,
its trace_pipe, and taking all of it away again.

pooltop works in its own instance (`instances/pooltop-<pid>`) so other tracers (perf, trace-cmd,
another pooltop) are neither disturbed nor disturbing. Whatever it switches on it switches off on
the way out; an instance whose pooltop died without that (SIGKILL, a crash of the machine's
power aside) is removed by the next pooltop that traces. OS errors become pooltop's errors here.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import time
from collections.abc import Callable, Iterator

from pooltop.errors import BadInput, NeedsElevation, PooltopError, Unsupported

TRACEFS_MOUNT = "/sys/kernel/tracing"
OLD_TRACEFS_MOUNT = "/sys/kernel/debug/tracing"  # kernels before 4.1 only had it under debugfs
INSTANCE_PREFIX = "pooltop-"
_INSTANCE = re.compile(r"pooltop-(?P<pid>\d+)")
# Per CPU. Enough for a few hundred thousand events between two reads; bounded in total so a
# 128-CPU machine does not lend half a gigabyte to a trace.
BUFFER_KB_PER_CPU = 4096
BUFFER_KB_TOTAL = 64 * 1024
PIPE_READ = 1 << 16
_ACTIVE: set[str] = set()  # paths of this process's live instances


def _error(action: str, path: str, e: OSError) -> PooltopError:
    """An OS error at the tracefs boundary, in one line."""
    if e.errno == errno.EACCES:
        return NeedsElevation(f"{action} {path} needs root (run pooltop with sudo)")
    if e.errno == errno.EPERM:
        return Unsupported(f"the kernel refused to let pooltop {action} {path} (EPERM: is the kernel "
                           "locked down, or tracing restricted by a security module?)")
    if e.errno == errno.ENOENT:
        return Unsupported(f"{path} does not exist (a kernel without this trace event?)")
    if e.errno == errno.EINVAL:
        return BadInput(f"the kernel refused {action} {path} (EINVAL)")
    return PooltopError(f"cannot {action} {path}: {e.strerror or e}")


def write(path: str, text: str, action: str = "write") -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise _error(action, path, e) from None


def read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise _error("read", path, e) from None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def locate(root: str | None = None, mount: bool = True) -> tuple[str, bool]:
    """The tracefs to use, and whether pooltop mounted it (and so unmounts it at the end).

    `root` is a tracefs-like tree to use instead (tests). Otherwise tracing needs root; where
    tracefs is not mounted, root mounts it at /sys/kernel/tracing.
    """
    if root is not None:
        if not os.path.isdir(os.path.join(root, "instances")):
            raise Unsupported(f"{root} is not a tracing filesystem (no instances/ in it)")
        return root, False
    if os.geteuid() != 0:
        raise NeedsElevation("tracing kernel allocations needs root (run pooltop with sudo)")
    for path in (TRACEFS_MOUNT, OLD_TRACEFS_MOUNT):
        if os.path.isdir(os.path.join(path, "instances")):
            return path, False
    if not mount or not os.path.isdir(TRACEFS_MOUNT):
        raise Unsupported(f"the kernel's tracing filesystem is not available ({TRACEFS_MOUNT} is missing: "
                          "a kernel built without CONFIG_TRACING?)")
    libc = _libc()
    if libc.mount(b"nodev", TRACEFS_MOUNT.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise Unsupported(f"tracefs is not mounted and mounting it at {TRACEFS_MOUNT} failed "
                          f"({os.strerror(err)}); try: mount -t tracefs nodev {TRACEFS_MOUNT}")
    return TRACEFS_MOUNT, True


def unmount(path: str) -> None:
    """Undo locate()'s mount; a tracefs someone else started using meanwhile stays (EBUSY)."""
    _libc().umount2(path.encode(), 0)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def instance_name(pid: int | None = None) -> str:
    return f"{INSTANCE_PREFIX}{os.getpid() if pid is None else pid}"


def _instances(tracefs: str) -> Iterator[tuple[str, int]]:
    base = os.path.join(tracefs, "instances")
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        m = _INSTANCE.fullmatch(name)
        if m is not None:
            yield os.path.join(base, name), int(m.group("pid"))


def remove_stale(tracefs: str, alive: Callable[[int], bool] = pid_alive,
                 rmdir: Callable[[str], None] = os.rmdir) -> list[str]:
    """Remove the instances of pooltops that are gone; their names. Removing an instance also
    disables its events and drops its triggers (the kernel does that), but the events are switched
    off first so the instance stops costing anything even if the rmdir is refused. An instance
    named after this very process that it is not using was left by an earlier process with the
    same pid (pids are reused)."""
    removed = []
    for path, pid in _instances(tracefs):
        if (alive(pid) and pid != os.getpid()) or path in _ACTIVE:
            continue
        with contextlib.suppress(OSError), open(os.path.join(path, "events", "enable"), "w") as f:
            f.write("0")
        try:
            rmdir(path)
        except OSError:
            continue
        removed.append(os.path.basename(path))
    return removed


def buffer_kb(cpus: int | None = None) -> int:
    n = max(1, cpus or os.cpu_count() or 1)
    return max(256, min(BUFFER_KB_PER_CPU, BUFFER_KB_TOTAL // n))


class TraceInstance:
    """One private tracing instance. Everything set through it is undone by remove(), which is
    safe to call at any point (also half-way through set-up) and more than once.

    `mkdir`/`rmdir` are the tracefs directory operations (creating an instance directory makes
    the kernel fill it); tests pass ones that copy and delete a fake tree.
    """

    def __init__(self, tracefs: str, name: str | None = None, *, buffer_kb_per_cpu: int | None = None,
                 mkdir: Callable[[str], None] = os.mkdir, rmdir: Callable[[str], None] = os.rmdir) -> None:
        self.tracefs = tracefs
        self.name = name or instance_name()
        self.path = os.path.join(tracefs, "instances", self.name)
        self.buffer_kb = buffer_kb_per_cpu or buffer_kb()
        self._mkdir = mkdir
        self._rmdir = rmdir
        self._created = False
        self._enabled: list[str] = []
        self._triggers: list[str] = []
        self._filters: list[str] = []
        self._pipe: int | None = None

    def event_dir(self, system: str, event: str) -> str:
        return os.path.join(self.path, "events", system, event)

    def create(self) -> None:
        try:
            self._mkdir(self.path)
        except FileExistsError:
            raise PooltopError(f"{self.path} exists: this pooltop is tracing already") from None
        except OSError as e:
            raise _error("create", self.path, e) from None
        self._created = True
        _ACTIVE.add(self.path)
        write(os.path.join(self.path, "buffer_size_kb"), str(self.buffer_kb))
        # Pointers unhashed: the hash is 32 bits, so tens of thousands of live objects would
        # collide and mis-pair. The text never leaves pooltop (and only root can read it).
        self._option("hash-ptr", "0")
        # The process (thread group) beside the thread on every line.
        self._option("record-tgid", "1")
        # Without the irq/preempt flags column: shorter lines to format and read, never used.
        self._option("irq-info", "0")

    def _option(self, name: str, value: str) -> None:
        path = os.path.join(self.path, "options", name)
        if os.path.exists(path):  # older kernels lack some options; they are niceties
            write(path, value)

    def set_filter(self, system: str, event: str, text: str) -> None:
        path = os.path.join(self.event_dir(system, event), "filter")
        self._filters.append(path)
        write(path, text, f"set the filter {text!r} in")

    def set_trigger(self, system: str, event: str, text: str) -> None:
        path = os.path.join(self.event_dir(system, event), "trigger")
        self._triggers.append(path)
        write(path, text, f"set the trigger {text!r} in")

    def enable(self, system: str, event: str) -> None:
        path = os.path.join(self.event_dir(system, event), "enable")
        self._enabled.append(path)
        write(path, "1", "enable")

    def open_pipe(self) -> None:
        path = os.path.join(self.path, "trace_pipe")
        try:
            self._pipe = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            raise _error("open", path, e) from None

    def read_pipe(self) -> bytes:
        """What the pipe holds now (b"" when it is empty); never waits."""
        if self._pipe is None:
            return b""
        try:
            return os.read(self._pipe, PIPE_READ)
        except BlockingIOError:
            return b""
        except OSError as e:
            raise _error("read", os.path.join(self.path, "trace_pipe"), e) from None

    def lost(self) -> int:
        """Events the ring buffer overwrote (overrun) or refused (dropped), over all CPUs."""
        total = 0
        base = os.path.join(self.path, "per_cpu")
        with contextlib.suppress(OSError):
            for cpu in os.listdir(base):
                with contextlib.suppress(OSError):
                    total += parse_lost(read(os.path.join(base, cpu, "stats")))
        return total

    def remove(self) -> list[str]:
        """Switch off and remove everything; the steps that failed (none, normally)."""
        problems: list[str] = []

        def attempt(path: str, text: str) -> None:
            try:
                with open(path, "w") as f:
                    f.write(text)
            except OSError as e:
                problems.append(f"{path}: {e.strerror or e}")

        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = None
        for path in reversed(self._enabled):
            attempt(path, "0")
        for path in reversed(self._triggers):
            attempt(path, "!stacktrace")
        for path in reversed(self._filters):
            attempt(path, "0")
        self._enabled, self._triggers, self._filters = [], [], []
        if self._created:
            for delay in (0.0, 0.05, 0.2, 0.5):  # the kernel may still hold the pipe a moment (EBUSY)
                time.sleep(delay)
                try:
                    self._rmdir(self.path)
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno == errno.EBUSY and delay < 0.5:
                        continue
                    problems.append(f"{self.path}: {e.strerror or e}")
                    break
                else:
                    break
            self._created = False
            _ACTIVE.discard(self.path)
        return problems


def parse_lost(stats: str) -> int:
    """A per_cpu/cpuN/stats file -> overrun + dropped events."""
    lost = 0
    for line in stats.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("overrun", "dropped events"):
            with contextlib.suppress(ValueError):
                lost += int(value.strip())
    return lost
