"""One trace of one cache, from finding tracefs to leaving the kernel as it was.

`WhoTracer.run()` is what the command, the bundle and the live view call. It never returns or
raises with pooltop's instance still in the kernel: set-up, reading and the end all run inside
one try/finally, and signals only ask the reading loop to stop (stop_on_signals) instead of
raising in the middle of a write to tracefs.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from pooltop.errors import PooltopError, Unsupported
from pooltop.native.linux import LinuxSource, parse_slabinfo, read_slub_aliases
from pooltop.who import tracefs
from pooltop.who.attribution import Attribution
from pooltop.who.plan import (
    CACHE_ALLOC,
    CACHE_FREE,
    KFREE,
    KMALLOC,
    SYSTEM,
    kmalloc_size,
    make_plan,
    resolve_cache,
)
from pooltop.who.reader import TraceReader
from pooltop.who.tracetext import EventFormat, parse_format

UPDATE_EVERY_S = 1.0
IDLE_WAIT_S = 0.1  # how long the loop sleeps when the pipe is empty (the stop check's latency)
WINDOWS_NOT_BUILT = (
    "live attribution on Windows is not built yet: capture the tag's allocation stacks "
    "with ETW (`pooltop who TAG` prints the commands) and open them in WPA"
)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl+C and SIGTERM set `stop` (the trace ends early and reports what it saw) instead of
    raising wherever the program happens to be. Only the main thread can take signals; elsewhere
    this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class WhoTracer:
    """Traces one cache (a name, a SLUB alias or kmalloc-N).

    The roots are injectable so tests run it against a fake tracefs and a copied /proc and /sys;
    `mkdir`/`rmdir` are passed on to the instance (see TraceInstance).
    """

    def __init__(
        self,
        target: str,
        *,
        stacks: bool = False,
        tracefs_root: str | None = None,
        proc_root: str = "/proc",
        sys_root: str = "/sys",
        platform: str | None = None,
        mkdir: Callable[[str], None] = os.mkdir,
        rmdir: Callable[[str], None] = os.rmdir,
        buffer_kb_per_cpu: int | None = None,
    ) -> None:
        self.target = target
        self.stacks = stacks
        self.tracefs_root = tracefs_root
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.platform = platform or sys.platform
        self._mkdir = mkdir
        self._rmdir = rmdir
        self._buffer_kb = buffer_kb_per_cpu
        self.warnings: list[str] = []  # said once on stderr by the command (cleanup trouble)

    def _cache(self) -> tuple[str, int]:
        """The cache to trace and its object size (0 when unknown)."""
        source = LinuxSource(self.proc_root, self.sys_root)
        table = parse_slabinfo(source.read_slabinfo())
        cache = resolve_cache(self.target, table.names, read_slub_aliases(self.sys_root))
        sizes = dict(zip(table.names, table.objsize.tolist(), strict=True))
        return cache, int(sizes.get(cache, kmalloc_size(cache) or 0))

    def _formats(self, root: str) -> dict[str, EventFormat]:
        formats = {}
        for event in (CACHE_ALLOC, CACHE_FREE, KMALLOC, KFREE):
            path = os.path.join(root, "events", SYSTEM, event, "format")
            if os.path.exists(path):
                formats[event] = parse_format(tracefs.read(path))
        return formats

    def run(
        self,
        duration: float | None,
        stop: threading.Event | None = None,
        on_update: Callable[[Attribution], None] | None = None,
        update_every: float = UPDATE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> Attribution:
        """Trace for `duration` seconds (None: until `stop` is set) and rank what was seen.
        `on_update` gets the ranking so far about every `update_every` seconds."""
        if not self.platform.startswith("linux"):
            raise Unsupported(
                WINDOWS_NOT_BUILT
                if self.platform == "win32"
                else f"tracing allocations is not supported on {self.platform}"
            )
        stop = stop or threading.Event()
        root, mounted = tracefs.locate(self.tracefs_root)
        try:
            return self._trace(root, duration, stop, on_update, update_every, clock)
        finally:
            if mounted:
                tracefs.unmount(root)

    def _trace(
        self,
        root: str,
        duration: float | None,
        stop: threading.Event,
        on_update: Callable[[Attribution], None] | None,
        update_every: float,
        clock: Callable[[], float],
    ) -> Attribution:
        tracefs.remove_stale(root, rmdir=self._rmdir)
        cache, object_size = self._cache()
        formats = self._formats(root)
        plan = make_plan(self.target, cache, formats, self.stacks)
        reader = TraceReader(plan, formats, object_size)
        instance = tracefs.TraceInstance(
            root, buffer_kb_per_cpu=self._buffer_kb, mkdir=self._mkdir, rmdir=self._rmdir
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        started = clock()
        try:
            instance.create()
            for ev in plan.events:
                if ev.filter is not None:
                    instance.set_filter(SYSTEM, ev.event, ev.filter)
                if ev.trigger is not None:
                    instance.set_trigger(SYSTEM, ev.event, ev.trigger)
            instance.open_pipe()
            for ev in plan.events:
                instance.enable(SYSTEM, ev.event)
            started = clock()
            next_update = started + update_every
            while not stop.is_set():
                now = clock()
                if duration is not None and now - started >= duration:
                    break
                chunk = instance.read_pipe()
                if chunk:
                    reader.feed(decoder.decode(chunk))
                else:
                    stop.wait(
                        IDLE_WAIT_S
                        if duration is None
                        else max(0.0, min(IDLE_WAIT_S, duration - (now - started)))
                    )
                if on_update is not None and now >= next_update:
                    next_update = now + update_every
                    on_update(self._result(reader, plan.notes, now - started, instance.lost()))
            for ev in plan.events:  # stop the events, then read what they left in the buffer
                with contextlib.suppress(PooltopError):
                    tracefs.write(os.path.join(instance.event_dir(SYSTEM, ev.event), "enable"), "0")
            seconds = clock() - started
            while chunk := instance.read_pipe():
                reader.feed(decoder.decode(chunk))
            reader.feed(decoder.decode(b"", final=True))
            reader.flush()
            lost = instance.lost()
        finally:
            problems = instance.remove()
            if problems:
                self.warnings.append(f"could not undo everything in {instance.path}: {'; '.join(problems)}")
        return self._result(reader, plan.notes, seconds, lost)

    def _result(self, reader: TraceReader, notes: tuple[str, ...], seconds: float, lost: int) -> Attribution:
        return reader.ledger.attribution(
            self.target, reader.plan.cache, seconds, stacks=self.stacks, notes=notes, lost=lost
        )
