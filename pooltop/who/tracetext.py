"""The kernel's tracing text, parsed: event `format` files and the lines of `trace_pipe`.

Pure functions of text. Kernels differ in which fields an event has (kmem_cache_free gained `name`
in 6.x; kmalloc has no cache name at all) and in how a line's head looks (record-tgid adds a
`(  tgid)` column, irq-info the flags column, and old kernels print four flag characters, 6.x five),
so nothing here assumes a field list: the payload parser is built from the event's own
`print fmt`, which is also how the kernel prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from pooltop.errors import BadInput


@dataclass(frozen=True)
class EventFormat:
    """One event's `format` file: its binary fields (what a filter may test) and its print format
    (what trace_pipe prints)."""

    name: str
    fields: tuple[str, ...]  # without the common_* header fields
    print_fmt: str  # the C format string, unquoted


_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]*);")
_PRINT_FMT = re.compile(r'^print fmt:\s*"(?P<fmt>(?:[^"\\]|\\.)*)"', re.MULTILINE)


def parse_format(text: str) -> EventFormat:
    """An event's `format` file -> EventFormat. Raises BadInput when it is not one."""
    name = ""
    fields: list[str] = []
    for line in text.splitlines():
        if line.startswith("name:"):
            name = line.partition(":")[2].strip()
            continue
        m = _FIELD.match(line)
        if m is None:
            continue
        # "unsigned long call_site", "const void * ptr", "__data_loc char[] name", "char comm[16]"
        decl = m.group("decl").strip()
        ident = re.search(r"(\w+)\s*(?:\[[^\]]*\])?$", decl)
        if ident is not None and not ident.group(1).startswith("common_"):
            fields.append(ident.group(1))
    fmt = _PRINT_FMT.search(text)
    if not name or fmt is None:
        raise BadInput("not a tracefs event format (no 'name:' or 'print fmt:' line)")
    return EventFormat(name, tuple(fields), fmt.group("fmt").replace('\\"', '"'))


# A printf conversion as the kernel's trace formats use them: %p with its extension letters
# (%pS, %pK, %pI4), otherwise flags, width, precision, length and the conversion letter.
_CONVERSION = re.compile(r"%(?:%|p[A-Za-z]*\d?|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[diouxXcsfeEgG])")


class PayloadParser:
    """Reads an event's printed payload back into its named values.

    "call_site=%pS ptr=%p name=%s" becomes `call_site=(.*?) ptr=(.*?) name=(.*?)$`: the literal
    text between conversions anchors each value, so a value with spaces (a module symbol,
    `foo+0x1/0x2 [nf_conntrack]`) still lands in one piece.
    """

    def __init__(self, print_fmt: str) -> None:
        pieces = _CONVERSION.split(print_fmt)
        conversions = _CONVERSION.findall(print_fmt)
        pattern = [re.escape(pieces[0])]
        keys: list[str] = []
        for conv, literal_before, literal_after in zip(conversions, pieces, pieces[1:], strict=False):
            if conv == "%%":
                pattern.append("%" + re.escape(literal_after))
                continue
            key = re.search(r"(\w+)=$", literal_before)
            name = key.group(1) if key is not None and key.group(1) not in keys else None
            if name is not None:
                keys.append(name)
                pattern.append(f"(?P<{name}>.*?)")
            else:
                pattern.append("(?:.*?)")
            pattern.append(re.escape(literal_after))
        self.keys: tuple[str, ...] = tuple(keys)
        self._regex = re.compile("".join(pattern) + r"\s*$")

    def parse(self, payload: str) -> dict[str, str] | None:
        m = self._regex.match(payload)
        return m.groupdict() if m is not None else None


class EventLine(NamedTuple):
    """One event as trace_pipe prints it: who ran (thread comm and id, process id if recorded),
    where and when, which event, and the payload text after `event: `. A named tuple: one is
    made per line, tens of thousands a second (a frozen dataclass costs three times as much)."""

    comm: str
    tid: int
    tgid: int | None  # None unless the record-tgid option is on and the kernel knew the process
    cpu: int
    timestamp: float
    event: str
    payload: str

    @property
    def pid(self) -> int:
        """The process: the thread group if known, else the thread."""
        return self.tgid if self.tgid is not None else self.tid


@dataclass(frozen=True)
class StackFrame:
    """A ` => function+0x1/0x2` line of a stack that the `stacktrace` trigger printed."""

    function: str


@dataclass(frozen=True)
class LostEvents:
    """`CPU:3 [LOST 120 EVENTS]`: the reader fell behind and the ring buffer overwrote events."""

    cpu: int
    count: int


STACK_TRACE = "<stack trace>"  # the pseudo-event name of a stack's head line

_HEAD = re.compile(
    # lazy: the name rarely holds a dash, so this stops at the first "-digits " instead of
    # backtracking from the end of the line
    r"^\s*(?P<comm>.*?)-(?P<tid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>\d+|-+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>\S{4,5})\s+)?"
    r"(?P<ts>\d+(?:\.\d+)?):\s(?P<rest>.*)$"
)
_LOST = re.compile(r"^CPU:(?P<cpu>\d+) \[LOST (?P<count>\d+) EVENTS\]")
_FRAME = " => "


def parse_line(line: str) -> EventLine | StackFrame | LostEvents | None:
    """One line of trace_pipe; None for anything else (a blank line, a line cut by the reader)."""
    if line.startswith(_FRAME):
        return StackFrame(line[len(_FRAME):].strip())
    head = _HEAD.match(line)
    if head is None:
        lost = _LOST.match(line)
        return LostEvents(int(lost.group("cpu")), int(lost.group("count"))) if lost is not None else None
    comm, tid, tgid, cpu, ts, rest = head.group("comm", "tid", "tgid", "cpu", "ts", "rest")
    if rest.startswith(STACK_TRACE):
        event, payload = STACK_TRACE, ""
    else:
        event, sep, payload = rest.partition(": ")
        if not sep:
            event, payload = rest.rstrip(":"), ""
    # "(-------)": the kernel did not know the thread's process
    known = tgid is not None and tgid[0] != "-"
    return EventLine(comm, int(tid), int(tgid) if known else None, int(cpu), float(ts), event, payload)


def site_function(call_site: str) -> str:
    """`inotify_update_watch+0x18e/0x330` -> `inotify_update_watch`; `f+0x1/0x2 [mod]` -> `f`;
    an address the kernel could not symbolize stays as it is."""
    symbol = call_site.strip().split(" ", 1)[0]
    return symbol.split("+", 1)[0] or call_site.strip()


def parse_pointer(text: str) -> int | None:
    """A printed pointer (%p: hex, hashed or not) -> int; None for NULL or anything unreadable."""
    t = text.strip()
    try:
        value = int(t, 16)
    except ValueError:
        return None
    return value or None
