"""Parsing tracefs format files and trace_pipe lines (texts written here, as kernels print them)."""

from __future__ import annotations

import pytest
from who_fakes import FORMATS_54, FORMATS_618, alloc_line

from pooltop.errors import BadInput
from pooltop.who.tracetext import (
    STACK_TRACE,
    EventLine,
    LostEvents,
    PayloadParser,
    StackFrame,
    parse_format,
    parse_line,
    parse_pointer,
    site_function,
)


def test_format_618_fields_and_print_fmt() -> None:
    f = parse_format(FORMATS_618["kmem_cache_alloc"])
    assert f.name == "kmem_cache_alloc"
    assert f.fields == (
        "call_site",
        "ptr",
        "name",
        "bytes_req",
        "bytes_alloc",
        "gfp_flags",
        "node",
        "accounted",
    )
    assert f.print_fmt.startswith("call_site=%pS ptr=%p name=%s")
    assert f.print_fmt.endswith("accounted=%s")  # stops at the closing quote, not in the flag table


def test_format_kfree_and_old_kernel() -> None:
    assert parse_format(FORMATS_618["kfree"]).fields == ("call_site", "ptr")
    old = parse_format(FORMATS_54["kmem_cache_alloc"])
    assert "name" not in old.fields
    assert old.print_fmt.startswith("call_site=%lx")


def test_format_array_field_and_escaped_quote() -> None:
    text = (
        "name: sched_switch\nID: 1\nformat:\n\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\n"
        'print fmt: "prev_comm=%s say=\\"%d\\"", REC->prev_comm, 1\n'
    )
    f = parse_format(text)
    assert f.fields == ("prev_comm",)
    assert f.print_fmt == 'prev_comm=%s say="%d"'


@pytest.mark.parametrize("text", ["", "hello\n", "name: x\nformat:\n"])
def test_format_rejects_other_text(text: str) -> None:
    with pytest.raises(BadInput):
        parse_format(text)


def test_payload_parser_reads_back_values() -> None:
    p = PayloadParser(parse_format(FORMATS_618["kmem_cache_alloc"]).print_fmt)
    assert p.keys[:3] == ("call_site", "ptr", "name")
    values = p.parse(
        "call_site=nf_conntrack_alloc+0x5a/0x2d0 [nf_conntrack] ptr=ffff8881234 name=nf_conntrack "
        "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_ATOMIC|__GFP_NOWARN node=-1 accounted=false"
    )
    assert values is not None
    assert (
        values["call_site"] == "nf_conntrack_alloc+0x5a/0x2d0 [nf_conntrack]"
    )  # a module symbol has a space
    assert values["name"] == "nf_conntrack"
    assert values["bytes_alloc"] == "256"
    assert values["gfp_flags"] == "GFP_ATOMIC|__GFP_NOWARN"
    assert p.parse("something else entirely") is None


def test_payload_parser_percent_and_unnamed() -> None:
    p = PayloadParser("load=%d%% at %s ptr=%p")
    assert p.keys == ("load", "ptr")
    assert p.parse("load=50% at somewhere ptr=00ab") == {"load": "50", "ptr": "00ab"}


def test_line_618_with_tgid() -> None:
    line = (
        "           mkdir-9300    (   9300) [001] dN.2.  5920.776902: kmem_cache_alloc: "
        "call_site=__send_signal_locked+0x98/0x460 ptr=00000000050dce45 name=sigqueue bytes_req=80"
    )
    e = parse_line(line)
    assert isinstance(e, EventLine)
    assert (e.comm, e.tid, e.tgid, e.pid, e.cpu, e.event) == (
        "mkdir",
        9300,
        9300,
        9300,
        1,
        "kmem_cache_alloc",
    )
    assert e.timestamp == pytest.approx(5920.776902)
    assert e.payload.startswith("call_site=__send_signal_locked")


def test_line_thread_of_another_process() -> None:
    e = parse_line("  worker-7    (    5) [000] ..... 1.5: kmem_cache_free: call_site=a+0x1/0x2 ptr=1 name=x")
    assert isinstance(e, EventLine)
    assert (e.tid, e.tgid, e.pid) == (7, 5, 5)


@pytest.mark.parametrize(
    ("head", "comm", "tid"),
    [
        ("Web Content-123 [000] .... 5.000001", "Web Content", 123),  # spaces; old 4-flag kernels
        ("kworker/u8:2-77 [001] d..2. 5.000001", "kworker/u8:2", 77),
        ("my-tool-2-4321 [001] 5.000001", "my-tool-2", 4321),  # dashes and digits in the name; irq-info off
        ("<...>-99 (-------) [000] ..... 5.000001", "<...>", 99),  # name and process not kept by the kernel
    ],
)
def test_line_heads(head: str, comm: str, tid: int) -> None:
    e = parse_line(f"{head}: kfree: call_site=x+0x1/0x2 ptr=0000000000000010")
    assert isinstance(e, EventLine)
    assert (e.comm, e.tid, e.event) == (comm, tid, "kfree")
    assert e.tgid is None or e.tgid == tid
    assert e.payload == "call_site=x+0x1/0x2 ptr=0000000000000010"


def test_unknown_tgid_falls_back_to_thread() -> None:
    e = parse_line("<...>-99 (-------) [000] ..... 5.000001: kfree: call_site=x ptr=10")
    assert isinstance(e, EventLine)
    assert e.tgid is None and e.pid == 99


def test_stack_lines_and_lost() -> None:
    head = parse_line("         python3-15762   (  15762) [000] ...1.  6001.000002: <stack trace>")
    assert isinstance(head, EventLine) and head.event == STACK_TRACE and head.tid == 15762
    assert parse_line(" => inotify_update_watch") == StackFrame("inotify_update_watch")
    assert parse_line(" => kmem_cache_alloc_noprof+0x2f3/0x410") == StackFrame(
        "kmem_cache_alloc_noprof+0x2f3/0x410"
    )
    assert parse_line("CPU:3 [LOST 120 EVENTS]") == LostEvents(3, 120)


@pytest.mark.parametrize(
    "odd",
    [
        "",
        "   ",
        "garbage",
        "python3-12 [001] no timestamp here",
        "=> not a frame",
        "CPU:x [LOST many EVENTS]",
        alloc_line(1)[:30],
    ],
)
def test_odd_lines_are_none(odd: str) -> None:
    assert parse_line(odd) is None


def test_event_without_payload() -> None:
    e = parse_line("a-1 [000] ..... 1.0: tracing_mark_write:")
    assert isinstance(e, EventLine) and e.event == "tracing_mark_write" and e.payload == ""


def test_site_function_and_pointer() -> None:
    assert site_function("inotify_update_watch+0x18e/0x330") == "inotify_update_watch"
    assert site_function("nf_conntrack_alloc+0x5a/0x2d0 [nf_conntrack]") == "nf_conntrack_alloc"
    assert site_function("ffffffffc0a1b2c3") == "ffffffffc0a1b2c3"
    assert parse_pointer("00000000131ddd68") == 0x131DDD68
    assert parse_pointer("0000000000000000") is None
    assert parse_pointer("(null)") is None
