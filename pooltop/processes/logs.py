"""The warning signs a leak leaves in the logs, before and after memory runs out.

- Windows: the System event log's srv events 2019 ("the server was unable to allocate from the
  system nonpaged pool because the pool was empty") and 2020 (the same for the paged pool),
  read with wevtutil as XML in the Event schema (http://schemas.microsoft.com/win/2004/08/events/event).
- Linux: kernel messages: page allocation failures, vmalloc failures, SLUB "Unable to allocate
  memory", OOM kills (and the "Unreclaimable slab info" table an OOM report prints when kernel
  slab outgrew user memory), from journalctl -k or dmesg.

The parsers are pure functions of text (tests feed them recorded output); the readers are thin
subprocess calls that return the text, or say in one line why they could not.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
_NS = {"e": EVENT_NS}

SRV_NONPAGED_EMPTY = 2019
SRV_PAGED_EMPTY = 2020

WEVTUTIL_QUERY = (
    "wevtutil", "qe", "System",
    "/q:*[System[Provider[@Name='srv'] and (EventID=2019 or EventID=2020)]]",
    "/f:xml", "/c:20", "/rd:true",
)
JOURNALCTL = ("journalctl", "-k", "-o", "short-iso", "--no-pager", "-n", "2000")
DMESG = ("dmesg",)

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogText:
    """Output of one log reader: the text, or why there is none (`error`, one line)."""

    source: str  # "journalctl", "dmesg", "wevtutil"
    text: str = ""
    error: str | None = None
    denied: bool = False  # the error is a permission problem (report once, as info)


def _run(cmd: Sequence[str], run: Runner, timeout: float) -> tuple[int, str, str] | str:
    try:
        done = run(list(cmd), capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return f"{cmd[0]} not found"
    except subprocess.TimeoutExpired:
        return f"{cmd[0]} did not answer within {timeout:.0f} s"
    except OSError as e:
        return f"{cmd[0]} failed: {e.strerror or e}"
    out = done.stdout.decode("utf-8", "replace") if done.stdout else ""
    err = done.stderr.decode("utf-8", "replace") if done.stderr else ""
    return done.returncode, out, err


_DENIED = re.compile(r"not permitted|permission denied|access is denied|insufficient permissions", re.I)


def _journal_is_empty(text: str) -> bool:
    return not any(line.strip() and not line.startswith("-- ") for line in text.splitlines())


def read_kernel_log(run: Runner = subprocess.run, timeout: float = 15.0) -> LogText:
    """The kernel messages of this boot: journalctl -k if it has any, else dmesg.

    journalctl without a journal (containers, minimal systems) prints "-- No entries --"; dmesg
    needs root where kernel.dmesg_restrict is 1.
    """
    notes = []
    res = _run(JOURNALCTL, run, timeout)
    if isinstance(res, str):
        notes.append(res)
    else:
        code, out, err = res
        if code == 0 and not _journal_is_empty(out):
            return LogText("journalctl", out)
        notes.append(f"journalctl: {(err.strip().splitlines() or ['no kernel entries'])[0]}")
    res = _run(DMESG, run, timeout)
    if isinstance(res, str):
        return LogText("dmesg", error=f"{res}; {'; '.join(notes)}")
    code, out, err = res
    if code == 0:
        return LogText("dmesg", out)
    first = (err.strip().splitlines() or [f"exit status {code}"])[0]
    denied = bool(_DENIED.search(err))
    why = f"{first} (kernel.dmesg_restrict: run as root)" if denied else first
    return LogText("dmesg", error=why, denied=denied)


def read_srv_events(run: Runner = subprocess.run, timeout: float = 30.0) -> LogText:
    """The last 20 srv 2019/2020 events of the System log, newest first (wevtutil, Windows)."""
    res = _run(WEVTUTIL_QUERY, run, timeout)
    if isinstance(res, str):
        return LogText("wevtutil", error=res)
    code, out, err = res
    if code == 0:
        return LogText("wevtutil", out)
    first = (err.strip().splitlines() or [f"exit status {code}"])[0]
    # wevtutil exits with the Win32 error: 5 is ERROR_ACCESS_DENIED.
    denied = code == 5 or bool(_DENIED.search(err))
    return LogText("wevtutil", error=f"wevtutil: {first}", denied=denied)


# --- Windows event XML --------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowsEvent:
    """One <Event> of the Windows event log (the fields pooltop uses)."""

    provider: str
    event_id: int
    time_created: dt.datetime | None
    level: int | None = None
    record_id: int | None = None
    channel: str = ""
    computer: str = ""
    data: tuple[str, ...] = ()
    binary: str = ""
    message: str = ""  # RenderingInfo/Message, when the XML was rendered (/f:RenderedXml)


@dataclass(frozen=True)
class EventParse:
    events: tuple[WindowsEvent, ...]
    malformed: int = 0  # <Event> elements that could not be read


_XML_DECL = re.compile(r"<\?xml[^>]*\?>")
_DOCTYPE = re.compile(r"<!DOCTYPE[^>]*>", re.I)
_EVENT_BLOCK = re.compile(r"<Event[\s>].*?</Event\s*>", re.S)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def parse_event_time(text: str) -> dt.datetime | None:
    """SystemTime: '2025-11-24T03:17:42.6182913Z' (7 fraction digits; Python takes 6)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text.strip())
    if not m:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    try:
        return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").astimezone(dt.UTC)
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _event_from_element(ev: ET.Element) -> WindowsEvent | None:
    system = _child(ev, "System")
    if system is None:
        return None
    provider = _child(system, "Provider")
    event_id = _int(getattr(_child(system, "EventID"), "text", None))
    if provider is None or event_id is None:
        return None
    created = _child(system, "TimeCreated")
    when = parse_event_time(created.get("SystemTime", "")) if created is not None else None
    data: list[str] = []
    binary = ""
    payload = _child(ev, "EventData") or _child(ev, "UserData")
    if payload is not None:
        for item in payload.iter():
            name = _local(item.tag)
            if name == "Data":
                data.append((item.text or "").strip())
            elif name == "Binary":
                binary = (item.text or "").strip()
    rendering = _child(ev, "RenderingInfo")
    message_el = _child(rendering, "Message") if rendering is not None else None
    return WindowsEvent(
        provider=provider.get("Name", "") or provider.get("EventSourceName", ""),
        event_id=event_id,
        time_created=when,
        level=_int(getattr(_child(system, "Level"), "text", None)),
        record_id=_int(getattr(_child(system, "EventRecordID"), "text", None)),
        channel=(getattr(_child(system, "Channel"), "text", None) or "").strip(),
        computer=(getattr(_child(system, "Computer"), "text", None) or "").strip(),
        data=tuple(data),
        binary=binary,
        message=((message_el.text or "").strip() if message_el is not None else ""),
    )


def parse_event_xml(text: str) -> EventParse:
    """Events from wevtutil's XML: one <Event> document or several concatenated without a root
    (what `wevtutil qe /f:xml` prints), with or without XML declarations, a BOM or an <Events>
    wrapper. Unreadable <Event> elements are counted, not fatal."""
    body = _DOCTYPE.sub("", _XML_DECL.sub("", text.lstrip("\ufeff"))).strip()
    if not body:
        return EventParse(())
    try:
        root = ET.fromstring(f"<pooltop-events>{body}</pooltop-events>")
    except ET.ParseError:
        return _parse_blocks(body)
    return _events_from(el for el in root.iter() if _local(el.tag) == "Event")


def _parse_blocks(body: str) -> EventParse:
    """Slow path: parse each <Event>...</Event> block on its own (a truncated or broken one is skipped)."""
    blocks = _EVENT_BLOCK.findall(body)
    parsed = _events_from(_element_or_none(block) for block in blocks)
    # A trailing <Event that never closes (output cut off) is malformed too.
    opened = len(re.findall(r"<Event[\s>]", body))
    return EventParse(parsed.events, parsed.malformed + max(opened - len(blocks), 0))


def _element_or_none(block: str) -> ET.Element | None:
    try:
        return ET.fromstring(block)
    except ET.ParseError:
        return None


def _events_from(elements: Iterable[ET.Element | None]) -> EventParse:
    """The events of <Event> elements; one that did not parse (None) or lacks what an event needs
    counts as malformed."""
    events: list[WindowsEvent] = []
    malformed = 0
    for el in elements:
        ev = _event_from_element(el) if el is not None else None
        if ev is None:
            malformed += 1
        else:
            events.append(ev)
    return EventParse(tuple(events), malformed)


def srv_pool_events(parse: EventParse) -> tuple[WindowsEvent, ...]:
    """The srv 2019 / 2020 events (the provider name is matched without case: logs say Srv or srv)."""
    return tuple(e for e in parse.events
                 if e.provider.lower() == "srv" and e.event_id in (SRV_NONPAGED_EMPTY, SRV_PAGED_EMPTY))


# --- Linux kernel messages ----------------------------------------------------------------------


class KernelEventKind(enum.Enum):
    PAGE_ALLOC_FAILURE = "page-allocation-failure"
    VMALLOC_FAILURE = "vmalloc-failure"
    SLAB_FAILURE = "slab-allocation-failure"
    OOM_KILL = "oom-kill"
    UNRECLAIMABLE_SLAB = "unreclaimable-slab"  # an OOM report's "Unreclaimable slab info" table


@dataclass(frozen=True)
class KernelEvent:
    kind: KernelEventKind
    line: str  # the message, without its time prefix
    time: dt.datetime | None = None  # journalctl: wall-clock time
    uptime_s: float | None = None  # dmesg: seconds since boot
    process: str | None = None  # who allocated (page allocation failure) or the OOM victim
    pid: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: UNRECLAIMABLE_SLAB: (cache, used bytes, total bytes), largest first
    caches: tuple[tuple[str, int, int], ...] = ()


# 2026-01-02T03:04:05+0100 host kernel: msg  (short-iso; newer systemd prints +01:00; -precise
# adds microseconds)
_JOURNAL = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+\S+\s+kernel:\s?(?P<msg>.*)$"
)
# [ 1234.567890] msg, optionally with a caller id: [ 1234.567890] [  T123] msg
_DMESG = re.compile(r"^\[\s*(?P<up>\d+\.\d+)\]\s?(?:\[\s*[TC]\d+\]\s?)?(?P<msg>.*)$")

_PAGE_ALLOC = re.compile(
    r"^(?P<comm>.+?): page allocation failure: order:(?P<order>\d+), mode:(?P<mode>0x[0-9a-f]+)"
    r"(?:\((?P<flags>[^)]*)\))?"
)
_VMALLOC = re.compile(
    r"^(?:(?P<comm>.+?): )?vmalloc(?: error|: allocation failure):? (?:size )?(?P<size>\d+)"
)
_SLUB = re.compile(
    # 3.x: "on node -1 (gfp=0x20)"; 4.x-6.x: "on node -1, gfp=0x...(FLAGS)"; recent 6.x names the CPU
    # too: "on CPU 1 (of node 0) on node -1, gfp=..."
    r"^SLUB: Unable to allocate memory on (?:CPU \d+ \(of node -?\d+\) on )?node (?P<node>-?\d+)"
    r"(?:, | \()gfp=(?P<gfp>0x[0-9a-f]+)"
    r"(?:\((?P<flags>[^)]*)\))?"
)
_SLUB_CACHE = re.compile(r"^\s*cache: (?P<cache>[^,]+), object size: (?P<size>\d+)")
_KILLED = re.compile(
    r"^(?P<memcg>Memory cgroup )?(?:[Oo]ut of memory(?: \(oom_kill_allocating_task\))?: )?"
    r"Kill(?:ed)? process (?P<pid>\d+) \((?P<name>[^)]*)\)(?P<rest>.*)$"
)
_OOM_KILL_LINE = re.compile(r"^oom-kill:(?P<fields>.*)$")
_WORTH_A_LOOK = re.compile(r"allocation failure|vmalloc|SLUB: Unable|Kill|oom-kill:|Unreclaimable slab")
_OOM_LINES = 8  # the lines of one OOM kill that name its victim are this close together
_UNRECLAIMABLE = re.compile(r"^Unreclaimable slab info:")
_SLAB_ROW = re.compile(r"^\s*(?P<name>\S+)\s+(?P<used>\d+)KB\s+(?P<total>\d+)KB\s*$")


def _split_prefix(line: str) -> tuple[str, dt.datetime | None, float | None]:
    m = _JOURNAL.match(line)
    if m:
        ts = m.group("ts").replace(",", ".")
        ts = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", ts)
        return m.group("msg"), parse_event_time(ts), None
    m = _DMESG.match(line)
    if m:
        return m.group("msg"), None, float(m.group("up"))
    return line, None, None


def _kv(fields: str) -> dict[str, str]:
    out = {}
    for part in fields.split(","):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
        elif part.strip():
            out[part.strip()] = ""
    return out


def parse_kernel_log(text: str) -> tuple[KernelEvent, ...]:
    """Memory trouble in kernel messages (journalctl short-iso, dmesg "[ seconds]" or bare lines).

    One OOM kill is printed over several lines ("invoked oom-killer", "oom-kill:constraint=...",
    "Out of memory: Killed process ..."; older kernels add "Kill process ... or sacrifice child"
    before "Killed process"): they make one OOM_KILL event, keyed by the victim's pid.
    """
    events: list[KernelEvent] = []
    last_kill: dict[int, tuple[int, int]] = {}  # victim pid -> (index in events, line number)
    lines = text.splitlines()
    i = 0

    def add_kill(ev: KernelEvent, lineno: int) -> None:
        assert ev.pid is not None
        prior = last_kill.get(ev.pid)
        if prior is not None and lineno - prior[1] <= _OOM_LINES:
            old = events[prior[0]]
            keep_line = ev.line if "Kill" in ev.line else old.line
            events[prior[0]] = KernelEvent(
                KernelEventKind.OOM_KILL, keep_line, old.time or ev.time,
                old.uptime_s if old.uptime_s is not None else ev.uptime_s,
                process=ev.process or old.process, pid=ev.pid, detail={**old.detail, **ev.detail})
            last_kill[ev.pid] = (prior[0], lineno)
        else:
            events.append(ev)
            last_kill[ev.pid] = (len(events) - 1, lineno)

    while i < len(lines):
        if _WORTH_A_LOOK.search(lines[i]) is None:  # most lines: one cheap search, no prefix parsing
            i += 1
            continue
        msg, when, up = _split_prefix(lines[i].rstrip("\r"))
        i += 1
        if (m := _PAGE_ALLOC.match(msg)) is not None:
            events.append(KernelEvent(
                KernelEventKind.PAGE_ALLOC_FAILURE, msg, when, up, process=m.group("comm"),
                detail={"order": int(m.group("order")), "mode": m.group("mode"),
                        "flags": m.group("flags") or ""}))
        elif (m := _SLUB.match(msg)) is not None:
            detail: dict[str, Any] = {"node": int(m.group("node")), "gfp": m.group("gfp"),
                                      "flags": m.group("flags") or ""}
            if i < len(lines) and (c := _SLUB_CACHE.match(_split_prefix(lines[i])[0])) is not None:
                detail["cache"] = c.group("cache").strip()
                detail["object_size"] = int(c.group("size"))
                i += 1
            events.append(KernelEvent(KernelEventKind.SLAB_FAILURE, msg, when, up, detail=detail))
        elif (m := _VMALLOC.match(msg)) is not None:
            events.append(KernelEvent(KernelEventKind.VMALLOC_FAILURE, msg, when, up,
                                      process=m.group("comm"), detail={"size": int(m.group("size"))}))
        elif (m := _OOM_KILL_LINE.match(msg)) is not None:
            kv = _kv(m.group("fields"))
            pid = _int(kv.get("pid"))
            if pid is not None:
                add_kill(KernelEvent(KernelEventKind.OOM_KILL, msg, when, up, process=kv.get("task"),
                                     pid=pid, detail=_oom_detail(kv)), i)
        elif (m := _KILLED.match(msg)) is not None:
            detail = {}
            if m.group("memcg"):
                detail["constraint"] = "CONSTRAINT_MEMCG"
            for key, value in re.findall(r"([\w-]+):(\d+)kB", m.group("rest")):
                detail[key.replace("-", "_") + "_kb"] = int(value)
            add_kill(KernelEvent(KernelEventKind.OOM_KILL, msg, when, up, process=m.group("name"),
                                 pid=int(m.group("pid")), detail=detail), i)
        elif _UNRECLAIMABLE.match(msg):
            caches: list[tuple[str, int, int]] = []
            while i < len(lines):
                row = _split_prefix(lines[i])[0]
                if row.strip().startswith("Name") and "Used" in row:
                    i += 1
                    continue
                r = _SLAB_ROW.match(row)
                if r is None:
                    break
                caches.append((r.group("name"), int(r.group("used")) * 1024, int(r.group("total")) * 1024))
                i += 1
            caches.sort(key=lambda c: -c[1])
            events.append(KernelEvent(KernelEventKind.UNRECLAIMABLE_SLAB, msg, when, up,
                                      caches=tuple(caches)))
    return tuple(events)


def _oom_detail(kv: dict[str, str]) -> dict[str, Any]:
    keys = ("constraint", "task_memcg", "oom_memcg", "uid")
    return {k: kv[k] for k in keys if k in kv}
