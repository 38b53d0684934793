"""The report: JSON shape (pooltop.who/1) and the text `pooltop who` prints."""

from __future__ import annotations

from pooltop.who.attribution import (
    TEXT_SITES,
    Attribution,
    ProcessShare,
    SiteAttribution,
    StackShare,
    render_text,
)


def _site(i: int, outstanding: int, stacks: tuple[StackShare, ...] = ()) -> SiteAttribution:
    return SiteAttribution(f"f{i}+0x1/0x2", f"f{i}", outstanding, outstanding * 64, outstanding + 1, 1,
                           (ProcessShare("a\x07b", 10 + i, outstanding, outstanding + 1),
                            ProcessShare("shared", 99, 1, 1)), stacks)


def test_json_shape() -> None:
    stack = StackShare(("kmem_cache_alloc_noprof", "f0", "do_syscall_64"), 3, 4)
    a = Attribution("inotify_inode_mark", "sigqueue", 2.12345, 5, 1, 2, 3, (_site(0, 3, (stack,)),), True)
    doc = a.to_json()
    assert list(doc) == ["schema", "target", "cache", "seconds", "events", "sites"]
    assert doc["seconds"] == 2.123
    assert doc["events"] == {"allocs": 5, "frees": 1, "lost": 2, "frees_before_trace": 3}
    (site,) = doc["sites"]
    assert list(site) == ["call_site", "function", "outstanding", "bytes", "allocs", "frees", "processes",
                          "stacks"]
    # JSON keeps a name as the kernel gave it
    assert site["processes"][0] == {"name": "a\x07b", "pid": 10, "outstanding": 3}
    assert site["stacks"] == [{"frames": ["kmem_cache_alloc_noprof", "f0", "do_syscall_64"],
                               "outstanding": 3}]


def test_text_ranks_escapes_warns_and_cuts() -> None:
    sites = tuple(_site(i, 100 - i) for i in range(TEXT_SITES + 3))
    a = Attribution("kmalloc-64", "kmalloc-64", 30.0, 500, 20, 7, 0, sites, notes=("traced by size",))
    text = render_text(a)
    assert text.startswith("Who allocates kmalloc-64: traced 30.0 s\n")
    assert "the kernel dropped 7 events" in text
    assert "note: traced by size" in text
    assert "a\\x07b (10) 100/101" in text and "\x07" not in text
    assert "f0+0x1/0x2" in text and f"f{TEXT_SITES - 1}+0x1/0x2" in text
    assert f"f{TEXT_SITES}+0x1/0x2" not in text
    assert "... 3 more call sites (--format json lists all)" in text
    assert "Run with --stacks" in text
    top = a.top_processes(3)
    assert [(p.name, p.pid, p.outstanding) for p in top] == [("a\x07b", 10, 100), ("a\x07b", 11, 99),
                                                             ("a\x07b", 12, 98)]
    shared = next(p for p in a.top_processes(100) if p.pid == 99)  # summed over every site
    assert (shared.outstanding, shared.allocs) == (TEXT_SITES + 3, TEXT_SITES + 3)


def test_text_with_stacks_and_nothing_seen() -> None:
    stack = StackShare(("kmem_cache_alloc_noprof", "f0"), 2, 2)
    a = Attribution("sigqueue", "sigqueue", 1.0, 2, 0, 0, 0, (_site(0, 2, (stack,)),), stacks_traced=True)
    text = render_text(a)
    assert "stack, 2 outstanding of 2:" in text and "kmem_cache_alloc_noprof" in text
    assert "Run with --stacks" not in text
    empty = render_text(Attribution("sigqueue", "sigqueue", 1.0, 0, 0, 0, 0, ()))
    assert "Nothing was allocated from this cache while pooltop traced it." in empty
    assert not Attribution("x", "x", 1.0, 0, 0, 0, 0, ()).attributed
