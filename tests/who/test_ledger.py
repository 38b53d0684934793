"""Pairing allocations with frees, and the ranking (the ledger alone, and fed by trace text)."""

from __future__ import annotations

from who_fakes import FORMATS_54, FORMATS_60, FORMATS_618, alloc_line, free_line, stack_lines

from pooltop.who.ledger import Ledger
from pooltop.who.plan import make_plan
from pooltop.who.reader import TraceReader
from pooltop.who.tracetext import parse_format

SITE_A = "inotify_update_watch+0x18e/0x330"
SITE_B = "__send_signal_locked+0x98/0x460"


def test_pairs_by_pointer_and_ranks_by_outstanding_bytes() -> None:
    led = Ledger()
    for ptr in range(1, 11):
        led.alloc(ptr, SITE_A, ("python3", 10), 80, timestamp=1.0)
    for ptr in range(100, 120):
        led.alloc(ptr, SITE_B, ("bash", 20), 80, timestamp=1.0)
    for ptr in range(100, 119):
        led.free(ptr, specific=True, timestamp=2.0)
    for ptr in (1, 2):
        led.free(ptr, specific=True, timestamp=2.0)
    a = led.attribution("sigqueue", "sigqueue", 5.0)
    assert (a.allocs, a.frees, a.earlier_frees, a.lost) == (30, 21, 0, 0)
    assert [s.call_site for s in a.sites] == [SITE_A, SITE_B]
    first = a.sites[0]
    assert (first.function, first.outstanding, first.bytes, first.allocs, first.frees) == (
        "inotify_update_watch",
        8,
        640,
        10,
        2,
    )
    assert [(p.name, p.pid, p.outstanding, p.allocs) for p in first.processes] == [("python3", 10, 8, 10)]
    assert (a.sites[1].outstanding, a.sites[1].bytes) == (1, 80)
    assert a.attributed


def test_frees_of_objects_from_before_the_trace() -> None:
    led = Ledger()
    led.free(7, specific=True, timestamp=1.0)  # a sigqueue object older than the trace
    led.free(8, specific=False, timestamp=1.0)  # a kfree of who knows what: says nothing
    led.alloc(9, SITE_A, ("p", 1), 80, timestamp=2.0)
    a = led.attribution("x", "x", 1.0)
    assert (a.allocs, a.frees, a.earlier_frees) == (1, 0, 1)
    assert a.sites[0].outstanding == 1


def test_free_printed_before_its_allocation_pairs_with_it() -> None:
    # CPU 1 frees what CPU 0 allocated a moment earlier, but trace_pipe printed the free first
    led = Ledger()
    led.free(5, specific=True, timestamp=10.000002)
    led.alloc(5, SITE_A, ("p", 1), 80, cpu=0, timestamp=10.000001)
    a = led.attribution("x", "x", 1.0)
    assert (a.allocs, a.frees, a.earlier_frees) == (1, 1, 0)
    assert a.sites[0].outstanding == 0 and a.sites[0].bytes == 0


def test_pointer_reused_after_an_old_free_is_a_new_object() -> None:
    led = Ledger()
    led.free(5, specific=True, timestamp=1.0)  # an older object freed...
    led.alloc(5, SITE_A, ("p", 1), 80, timestamp=3.0)  # ...and its memory handed out again later
    a = led.attribution("x", "x", 1.0)
    assert (a.frees, a.earlier_frees, a.sites[0].outstanding) == (0, 1, 1)


def test_old_pending_frees_expire() -> None:
    led = Ledger()
    led.free(5, specific=True, timestamp=1.0)
    led.free(6, specific=True, timestamp=10.0)  # 9 s later: the first is no longer kept
    led.alloc(5, SITE_A, ("p", 1), 80, timestamp=0.5)  # would have paired had it been kept
    assert led.attribution("x", "x", 1.0).sites[0].outstanding == 1


def test_second_allocation_of_a_live_pointer_means_a_missed_free() -> None:
    led = Ledger()
    led.alloc(5, SITE_A, ("p", 1), 80, timestamp=1.0)
    led.alloc(5, SITE_B, ("q", 2), 80, timestamp=2.0)
    a = led.attribution("x", "x", 1.0)
    by_site = {s.call_site: s for s in a.sites}
    assert (by_site[SITE_A].outstanding, by_site[SITE_A].frees) == (0, 1)
    assert by_site[SITE_B].outstanding == 1


def test_lost_events_are_counted_not_dropped() -> None:
    led = Ledger()
    led.add_lost(12)
    assert led.attribution("x", "x", 1.0).lost == 12
    assert led.attribution("x", "x", 1.0, lost=40).lost == 40  # the kernel's statistics say more


def test_stacks_go_with_the_last_allocation_on_that_cpu() -> None:
    led = Ledger()
    led.alloc(1, SITE_A, ("p", 1), 80, cpu=0, tid=1)
    led.alloc(2, SITE_A, ("p", 1), 80, cpu=1, tid=1)
    led.stack(0, 1, ("kmem_cache_alloc_noprof", "inotify_update_watch", "__x64_sys_inotify_add_watch"))
    led.stack(1, 1, ("kmem_cache_alloc_noprof", "inotify_update_watch", "__x64_sys_inotify_add_watch"))
    led.stack(1, 1, ("orphan",))  # a second stack for the same allocation is ignored
    led.alloc(3, SITE_A, ("p", 1), 80, cpu=0, tid=1)
    led.stack(0, 9, ("other thread",))  # not the thread that allocated: ignored
    led.free(2, specific=True)
    a = led.attribution("x", "x", 1.0, stacks=True)
    (stack,) = a.sites[0].stacks
    assert stack.frames[1] == "inotify_update_watch"
    assert (stack.outstanding, stack.allocs) == (1, 2)


def test_unknown_thread_name_takes_the_process_real_name() -> None:
    led = Ledger()
    led.alloc(1, SITE_A, ("<...>", 77), 80)
    led.alloc(2, SITE_A, ("python3", 77), 80)
    (proc,) = led.attribution("x", "x", 1.0).sites[0].processes
    assert (proc.name, proc.pid, proc.outstanding) == ("python3", 77, 2)


def test_nothing_allocated_is_not_attributed() -> None:
    a = Ledger().attribution("x", "x", 1.0)
    assert not a.attributed and a.sites == ()


def _reader(formats: dict[str, str], cache: str = "sigqueue", stacks: bool = False) -> TraceReader:
    parsed = {k: parse_format(v) for k, v in formats.items()}
    return TraceReader(make_plan(cache, cache, parsed, stacks), parsed, object_size=80)


def test_reader_chunks_split_lines_and_stacks_anywhere() -> None:
    frames = [
        "trace_event_raw_event_kmem_cache_alloc",
        "kmem_cache_alloc_noprof",
        "inotify_update_watch",
        "__x64_sys_inotify_add_watch",
    ]
    text = (
        "\n".join(
            [
                alloc_line(0x10, tgid=4242),
                *stack_lines(frames),
                alloc_line(0x20, tgid=4242, cpu=0),
                *stack_lines(frames, cpu=0),
                free_line(0x10, ts=102.0),
                "CPU:1 [LOST 3 EVENTS]",
                "garbage that is no trace line",
                free_line(0x99, ts=103.0),
            ]
        )
        + "\n"
    )
    for size in (1, 7, 50, len(text)):
        reader = _reader(FORMATS_618, stacks=True)
        for i in range(0, len(text), size):
            reader.feed(text[i : i + size])
        reader.flush()
        a = reader.ledger.attribution("inotify_inode_mark", "sigqueue", 1.0, stacks=True)
        assert (a.allocs, a.frees, a.earlier_frees, a.lost) == (2, 1, 1, 3), size
        (site,) = a.sites
        assert (site.function, site.outstanding, site.bytes) == ("inotify_update_watch", 1, 80)
        (stack,) = site.stacks
        # the tracing machinery's own frames are dropped
        assert stack.frames == (
            "kmem_cache_alloc_noprof",
            "inotify_update_watch",
            "__x64_sys_inotify_add_watch",
        )
        assert stack.outstanding == 1


def test_reader_ignores_other_events_and_unreadable_payloads() -> None:
    reader = _reader(FORMATS_618)
    reader.feed("a-1 [000] ..... 1.0: sched_switch: prev_comm=a\n")
    reader.feed("a-1 [000] ..... 1.0: kmem_cache_alloc: this is not the printed format\n")
    reader.feed(alloc_line(0, ts=1.0) + "\n")  # NULL: a failed allocation
    reader.flush()
    assert reader.ledger.allocs == 0
    assert reader.unreadable == 1


def test_reader_on_an_old_kernel_reads_hex_call_sites_and_unnamed_frees() -> None:
    reader = _reader(FORMATS_60)
    reader.feed(alloc_line(0x10) + "\n")
    reader.feed(
        "python3-4242 [001] .... 101.0: kmem_cache_free: call_site=ffffffff81234567 ptr=0000000000000010\n"
    )
    reader.feed(
        "python3-4242 [001] .... 101.0: kmem_cache_free: call_site=ffffffff81234567 ptr=0000000000000077\n"
    )
    reader.flush()
    a = reader.ledger.attribution("x", "sigqueue", 1.0)
    # kmem_cache_free has no cache name here: an unknown pointer may be any cache's
    assert (a.allocs, a.frees, a.earlier_frees) == (1, 1, 0)
    old = _reader({**FORMATS_54, "kmem_cache_alloc": FORMATS_618["kmem_cache_alloc"]})
    old.feed(alloc_line(0x10, site="ffffffff81234567") + "\n")
    old.flush()
    assert old.ledger.attribution("x", "sigqueue", 1.0).sites[0].function == "ffffffff81234567"


def test_reader_kmalloc_pairs_kfree_by_pointer() -> None:
    reader = _reader(FORMATS_618, cache="kmalloc-192")
    reader.feed(
        "nginx-300 [000] ..... 5.0: kmalloc: call_site=alloc_thing+0x10/0x40 ptr=0000000000000100 "
        "bytes_req=150 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
    )
    reader.feed(
        "nginx-300 [000] ..... 5.0: kmalloc: call_site=alloc_thing+0x10/0x40 ptr=0000000000000200 "
        "bytes_req=150 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
    )
    reader.feed("nginx-300 [000] ..... 6.0: kfree: call_site=free_thing+0x1/0x9 ptr=0000000000000100\n")
    reader.feed("nginx-300 [000] ..... 6.0: kfree: call_site=free_other+0x1/0x9 ptr=0000000000000999\n")
    reader.flush()
    a = reader.ledger.attribution("kmalloc-192", "kmalloc-192", 1.0)
    assert (a.allocs, a.frees, a.earlier_frees) == (2, 1, 0)  # kfree of 0x999 says nothing
    assert (a.sites[0].function, a.sites[0].outstanding, a.sites[0].bytes) == ("alloc_thing", 1, 192)
