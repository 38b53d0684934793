"""`pooltop record`: sample unattended for hours into a recording, and stop cleanly on any signal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from pooltop.errors import PooltopError
from pooltop.model import Pool, Snapshot, human_bytes
from pooltop.native import Source
from pooltop.record.writer import RecordingFull, RecordingWriter
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup

#: consecutive failed samples after which recording gives up
MAX_FAILURES = 10


@dataclass
class RecordResult:
    samples: int
    size: int
    reason: str  # why it stopped: "duration", "signal", "max-size", "disk-full", "failures"
    ok: bool


class StopFlag:
    """Set by SIGINT/SIGTERM (or a test); the loop finishes the sample in hand, then stops."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def install(self) -> Callable[[], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.signal = signum
            self.event.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore


def record(
    source: Source,
    path: str,
    interval_s: float,
    duration_s: float | None = None,
    max_size: int | None = None,
    owners_for: Callable[[Snapshot], OwnerLookup] | None = None,
    say: Callable[[str], None] = print,
    stop: StopFlag | None = None,
    full_every: int | None = None,
) -> RecordResult:
    stop = stop or StopFlag()
    restore = stop.install() if threading.current_thread() is threading.main_thread() else (lambda: None)
    try:
        first = source.sample()
        owners: dict[tuple[str, int], Sequence[OwnerCandidate]] = {}
        if owners_for is not None:
            lookup = owners_for(first)
            owners = {key: list(lookup(key[0], Pool(key[1]))) for key in first.counters.keys()}  # noqa: SIM118
        kwargs = {"full_every": full_every} if full_every else {}
        with RecordingWriter(path, first, interval_s, owners, max_size=max_size, **kwargs) as writer:
            continuing = writer.samples > 0
            until = f" for {_duration(duration_s)}" if duration_s else ""
            say(
                f"pooltop: {'appending to' if continuing else 'recording'} {path}: {first.source} on "
                f"{first.host.name}, every {_duration(interval_s)}{until}"
                f"{f', at most {human_bytes(max_size)}' if max_size else ''}. Stop with Ctrl+C."
            )
            for w in first.warnings:
                say(f"pooltop: warning: {w}")
            return _loop(source, writer, first, interval_s, duration_s, stop, say)
    finally:
        restore()


def _loop(
    source: Source,
    writer: RecordingWriter,
    first: object,
    interval_s: float,
    duration_s: float | None,
    stop: StopFlag,
    say: Callable[[str], None],
) -> RecordResult:
    start = time.monotonic()
    next_at = start
    snap = first
    failures = 0
    reason = "signal"
    ok = True
    while True:
        if snap is not None:
            try:
                writer.append(snap)  # type: ignore[arg-type]
            except RecordingFull as e:
                say(f"pooltop: {e}")
                reason = "disk-full" if "disk" in str(e) else "max-size"
                ok = reason == "max-size"
                break
        # Deadlines on the monotonic clock: no drift over a 24-hour recording.
        next_at += interval_s
        now = time.monotonic()
        if next_at < now:
            next_at = now  # we fell behind (a slow sample); do not try to catch up in a burst
        if duration_s is not None and next_at - start > duration_s + 1e-9:
            reason = "duration"
            break
        if stop.event.wait(max(0.0, next_at - now)):
            break
        try:
            snap = source.sample()
            failures = 0
        except PooltopError as e:
            failures += 1
            snap = None
            if failures == 1:
                say(f"pooltop: warning: sample failed: {e}")
            if failures >= MAX_FAILURES:
                say(f"pooltop: {failures} samples in a row failed; stopping ({e})")
                reason, ok = "failures", False
                break
    say(
        f"pooltop: stopped ({_REASONS[reason]}); {writer.samples} samples in {writer.path} "
        f"({human_bytes(writer.size())})"
    )
    return RecordResult(writer.samples, writer.size(), reason, ok)


_REASONS = {
    "duration": "duration reached",
    "signal": "interrupted",
    "max-size": "size limit reached",
    "disk-full": "disk full",
    "failures": "the source kept failing",
}


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:g}s"
