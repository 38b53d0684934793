"""trace_pipe text -> the ledger. Pure: it is fed text in chunks as the pipe gives it (a chunk may
end in the middle of a line or of a stack) and never reads the kernel itself."""

from __future__ import annotations

from collections.abc import Mapping

from pooltop.who.ledger import Ledger
from pooltop.who.plan import EventPlan, TracePlan
from pooltop.who.tracetext import (
    STACK_TRACE,
    EventFormat,
    EventLine,
    LostEvents,
    PayloadParser,
    StackFrame,
    parse_line,
    parse_pointer,
)

# Frames of the tracing machinery itself, at the top of every stack the trigger prints.
_TRACING_FRAMES = ("trace_event_raw_event_", "perf_trace_", "__traceiter_", "trace_buffer_", "event_trigger")


class TraceReader:
    def __init__(self, plan: TracePlan, formats: Mapping[str, EventFormat], object_size: int = 0) -> None:
        self.plan = plan
        self.ledger = Ledger()
        self.object_size = object_size  # for an allocation event that does not print its size
        self._events: dict[str, tuple[PayloadParser, EventPlan]] = {
            e.event: (PayloadParser(formats[e.event].print_fmt), e) for e in plan.events
        }
        self._partial = ""
        self._stack: tuple[int, int, list[str]] | None = None  # cpu, thread, frames so far
        self.lines = 0
        self.unreadable = 0  # lines of a traced event whose payload did not parse

    def feed(self, text: str) -> None:
        if not text:
            return
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        """The trace ended: a last line without its newline, and a stack still being read."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self._end_stack()

    def _line(self, line: str) -> None:
        parsed = parse_line(line)
        if isinstance(parsed, StackFrame):
            if self._stack is not None:
                self._stack[2].append(parsed.function)
            return
        self._end_stack()
        if parsed is None:
            return
        self.lines += 1
        if isinstance(parsed, LostEvents):
            self.ledger.add_lost(parsed.count)
            return
        if parsed.event == STACK_TRACE:
            self._stack = (parsed.cpu, parsed.tid, [])
            return
        self._event(parsed)

    def _event(self, line: EventLine) -> None:
        known = self._events.get(line.event)
        if known is None:
            return
        parser, plan = known
        values = parser.parse(line.payload)
        ptr = parse_pointer(values.get("ptr", "")) if values is not None else None
        if values is None or ptr is None:
            self.unreadable += values is None
            return
        if plan.alloc:
            size_text = values.get("bytes_alloc", "")
            size = int(size_text) if size_text.isdigit() else self.object_size
            self.ledger.alloc(ptr, values.get("call_site", "?").strip(), (line.comm, line.pid), size,
                              cpu=line.cpu, tid=line.tid, timestamp=line.timestamp)
        else:
            self.ledger.free(ptr, specific=plan.specific, timestamp=line.timestamp)

    def _end_stack(self) -> None:
        if self._stack is None:
            return
        cpu, tid, frames = self._stack
        self._stack = None
        while frames and frames[0].startswith(_TRACING_FRAMES):
            frames.pop(0)
        self.ledger.stack(cpu, tid, tuple(frames))
