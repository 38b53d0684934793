"""Log parsers on recorded-format fixtures (tests/data/events, see its README) and the thin readers
over a fake subprocess.run."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from helpers import DATA

from pooltop.processes.logs import (
    DMESG,
    JOURNALCTL,
    WEVTUTIL_QUERY,
    KernelEventKind,
    parse_event_time,
    parse_event_xml,
    parse_kernel_log,
    read_kernel_log,
    read_srv_events,
    srv_pool_events,
)

EVENTS = os.path.join(DATA, "events")
K = KernelEventKind


def fixture(*parts: str) -> str:
    with open(os.path.join(EVENTS, *parts), encoding="utf-8", newline="") as f:
        return f.read()


# --- Linux kernel messages ----------------------------------------------------------------------


def test_journalctl_short_iso_oom_report() -> None:
    events = parse_kernel_log(fixture("linux", "journalctl-short-iso-oom.txt"))
    assert [e.kind for e in events] == [K.PAGE_ALLOC_FAILURE, K.OOM_KILL, K.SLAB_FAILURE]
    page, oom, slab = events
    assert page.process == "kworker/u8:3" and page.detail["order"] == 4
    assert page.detail["mode"] == "0x40cc0" and page.detail["flags"] == "GFP_KERNEL|__GFP_COMP"
    assert page.time == dt.datetime(2026, 1, 2, 3, 12, 40, tzinfo=dt.UTC)  # +0100 read as such
    assert page.uptime_s is None
    # "oom-kill:constraint=..." and "Out of memory: Killed process ..." are one event
    assert (oom.process, oom.pid) == ("postgres", 48190)
    assert oom.detail["constraint"] == "CONSTRAINT_NONE"
    assert oom.detail["task_memcg"] == "/system.slice/postgresql@15-main.service"
    assert oom.detail["anon_rss_kb"] == 7680444
    assert oom.line.startswith("Out of memory: Killed process 48190 (postgres)")
    assert slab.detail["cache"] == "skbuff_head_cache" and slab.detail["gfp"] == "0xa20"


def test_dmesg_with_the_unreclaimable_slab_table() -> None:
    events = parse_kernel_log(fixture("linux", "dmesg-unreclaimable-slab.txt"))
    kinds = [e.kind for e in events]
    assert kinds == [K.VMALLOC_FAILURE, K.SLAB_FAILURE, K.UNRECLAIMABLE_SLAB, K.OOM_KILL]
    vm, slab, table, oom = events
    assert vm.process == "nfsd" and vm.detail["size"] == 8392704 and vm.uptime_s == 3811.020114
    assert slab.detail["cache"] == "kmalloc-1k"
    assert table.caches[0] == ("kmalloc-1k", 13683616 * 1024, 13683616 * 1024)
    assert [c[0] for c in table.caches] == ["kmalloc-1k", "kmalloc-512", "filp", "task_struct", "kmalloc-64"]
    assert (oom.process, oom.pid, oom.detail["constraint"]) == ("sshd", 601, "CONSTRAINT_NONE")


def test_old_kernel_two_line_oom_kills_and_memcg() -> None:
    events = parse_kernel_log(fixture("linux", "dmesg-memcg-old-kernel.txt"))
    assert [e.kind for e in events] == [K.PAGE_ALLOC_FAILURE, K.OOM_KILL, K.OOM_KILL, K.SLAB_FAILURE]
    page, memcg, global_oom, slab = events
    assert page.process == "swapper/1" and page.detail["order"] == 0
    assert (memcg.process, memcg.pid, memcg.detail["constraint"]) == ("java", 23114, "CONSTRAINT_MEMCG")
    assert memcg.detail["anon_rss_kb"] == 1047628  # from the second line of the pair
    assert (global_oom.process, global_oom.pid) == ("mysqld", 3321)
    assert "constraint" not in global_oom.detail
    assert slab.detail["gfp"] == "0x20" and slab.detail["cache"] == "kmalloc-4096"  # 3.x/4.x "(gfp=...)"


def test_caller_ids_and_the_newer_slub_format() -> None:
    events = parse_kernel_log(fixture("linux", "dmesg-caller-id-6.12.txt"))
    assert [e.kind for e in events] == [K.SLAB_FAILURE, K.PAGE_ALLOC_FAILURE]
    assert events[0].detail["cache"] == "kmalloc-cg-192" and events[0].detail["node"] == -1
    assert events[1].process == "kswapd0" and events[1].uptime_s == 415.880112


@pytest.mark.parametrize("name", ["journalctl-clean.txt", "journalctl-no-entries.txt"])
def test_clean_logs_have_no_events(name: str) -> None:
    assert parse_kernel_log(fixture("linux", name)) == ()


def test_bare_lines_and_other_prefixes() -> None:
    text = (
        "2026-01-02T03:04:05.123456+01:00 h kernel: Out of memory: Killed process 7 (a) total-vm:1kB\n"
        "Killed process 9 (b b) total-vm:2kB, anon-rss:1kB\n"
        "oom-kill:constraint=CONSTRAINT_MEMCG,task=c,pid=11,uid=0\n"
        "oom_reaper: reaped process 7 (a), now anon-rss:0kB\n"
        "insmod: vmalloc: allocation failure: 8392704 bytes, mode:0x24000c0\n"
    )
    events = parse_kernel_log(text)
    assert [(e.kind, e.pid) for e in events] == [(K.OOM_KILL, 7), (K.OOM_KILL, 9), (K.OOM_KILL, 11),
                                                 (K.VMALLOC_FAILURE, None)]
    assert events[0].time == dt.datetime(2026, 1, 2, 2, 4, 5, 123456, tzinfo=dt.UTC)
    assert events[1].process == "b b" and events[2].detail["constraint"] == "CONSTRAINT_MEMCG"
    assert events[3].process == "insmod" and events[3].detail["size"] == 8392704


# --- Windows event XML --------------------------------------------------------------------------


def test_concatenated_wevtutil_events() -> None:
    parsed = parse_event_xml(fixture("windows", "wevtutil-srv-concatenated.xml"))
    assert parsed.malformed == 0
    ids = [(e.event_id, e.record_id) for e in parsed.events]
    assert ids == [(2019, 184467), (2019, 184466), (2020, 184460), (2019, 184411)]
    first = parsed.events[0]
    assert first.provider == "srv" and first.level == 2 and first.channel == "System"
    assert first.computer == "FS01.corp.example.com"
    assert first.time_created == dt.datetime(2026, 1, 2, 2, 51, 7, 618291, tzinfo=dt.UTC)
    assert first.data == ("\\Device\\LanmanServer",) and "E30700C0" in first.binary
    assert len(srv_pool_events(parsed)) == 4


def test_crlf_bom_capitalised_provider_and_rendered_message() -> None:
    parsed = parse_event_xml(fixture("windows", "wevtutil-srv-old-crlf.xml"))
    assert [e.event_id for e in srv_pool_events(parsed)] == [2020, 2020]
    assert parsed.events[0].provider == "Srv"
    assert parsed.events[0].message.startswith("The server was unable to allocate from the system paged pool")


def test_truncated_output_keeps_the_complete_events() -> None:
    parsed = parse_event_xml(fixture("windows", "wevtutil-srv-truncated.xml"))
    assert [e.record_id for e in parsed.events] == [184467, 184466]
    assert parsed.malformed == 1


def test_wrappers_declarations_and_other_providers() -> None:
    one = fixture("windows", "wevtutil-srv-concatenated.xml").split("</Event>")[0] + "</Event>"
    other = one.replace("Name='srv'", "Name='Microsoft-Windows-Kernel-General'")
    no_id = one.replace("<EventID Qualifiers='49152'>2019</EventID>", "")
    text = f"<?xml version='1.0' encoding='utf-8'?>\n<Events>{one}{other}{no_id}</Events>"
    parsed = parse_event_xml(text)
    assert len(parsed.events) == 2 and parsed.malformed == 1
    assert len(srv_pool_events(parsed)) == 1
    assert parse_event_xml(fixture("windows", "wevtutil-empty.xml")).events == ()
    assert parse_event_xml("not xml at all").events == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T02:51:07.6182913Z", dt.datetime(2026, 1, 2, 2, 51, 7, 618291, tzinfo=dt.UTC)),
        ("2026-01-02T02:51:07Z", dt.datetime(2026, 1, 2, 2, 51, 7, tzinfo=dt.UTC)),
        ("2026-01-02T03:51:07+01:00", dt.datetime(2026, 1, 2, 2, 51, 7, tzinfo=dt.UTC)),
        ("yesterday", None),
        ("2026-13-02T02:51:07Z", None),
    ],
)
def test_event_times(text: str, expected: dt.datetime | None) -> None:
    assert parse_event_time(text) == expected


# --- readers ------------------------------------------------------------------------------------


def fake_run(answers: dict[str, Any]) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """answers: program -> (returncode, stdout, stderr) or an exception to raise."""

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        assert kwargs["capture_output"] and kwargs["timeout"] > 0 and kwargs["check"] is False
        answer = answers[cmd[0]]
        if isinstance(answer, BaseException):
            raise answer
        code, out, err = answer
        return subprocess.CompletedProcess(cmd, code, out.encode(), err.encode())

    return run


def test_journalctl_is_used_when_it_has_kernel_entries() -> None:
    text = fixture("linux", "journalctl-short-iso-oom.txt")
    got = read_kernel_log(fake_run({"journalctl": (0, text, ""), "dmesg": AssertionError("not asked")}))
    assert (got.source, got.text, got.error) == ("journalctl", text, None)
    assert JOURNALCTL == ("journalctl", "-k", "-o", "short-iso", "--no-pager", "-n", "2000")


@pytest.mark.parametrize(
    "journal",
    [(0, "-- No entries --\n", ""), (1, "", "No journal files were found.\n"), FileNotFoundError()],
)
def test_dmesg_when_the_journal_has_nothing(journal: Any) -> None:
    text = fixture("linux", "dmesg-unreclaimable-slab.txt")
    got = read_kernel_log(fake_run({"journalctl": journal, "dmesg": (0, text, "")}))
    assert (got.source, got.text, got.error) == ("dmesg", text, None)
    assert DMESG == ("dmesg",)


def test_restricted_dmesg_is_a_permission_gap() -> None:
    got = read_kernel_log(fake_run({
        "journalctl": (0, "-- No entries --\n", ""),
        "dmesg": (1, "", "dmesg: read kernel buffer failed: Operation not permitted\n"),
    }))
    assert got.denied and got.error is not None
    assert got.error.startswith("dmesg: read kernel buffer failed: Operation not permitted")
    assert "root" in got.error


def test_no_log_tools_at_all() -> None:
    got = read_kernel_log(fake_run({"journalctl": FileNotFoundError(), "dmesg": FileNotFoundError()}))
    assert not got.denied and got.error == "dmesg not found; journalctl not found"
    slow = read_kernel_log(fake_run({"journalctl": subprocess.TimeoutExpired("journalctl", 15),
                                     "dmesg": (0, "[ 1.0] hello\n", "")}))
    assert slow.source == "dmesg" and slow.text


def test_wevtutil_reader() -> None:
    xml = fixture("windows", "wevtutil-srv-concatenated.xml")
    calls: list[list[str]] = []
    run = fake_run({"wevtutil": (0, xml, "")})

    def recording(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(cmd)
        return run(cmd, **kwargs)

    got = read_srv_events(recording)
    assert got.text == xml and got.error is None
    assert calls == [list(WEVTUTIL_QUERY)]
    assert calls[0][3] == "/q:*[System[Provider[@Name='srv'] and (EventID=2019 or EventID=2020)]]"
    message = fixture("windows", "wevtutil-access-denied.txt")
    denied = read_srv_events(fake_run({"wevtutil": (5, "", message)}))
    assert denied.denied and denied.error == "wevtutil: Failed to read events. Access is denied."
    missing = read_srv_events(fake_run({"wevtutil": FileNotFoundError()}))
    assert not missing.denied and missing.error == "wevtutil not found"
