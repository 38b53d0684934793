"""Which cache, which events, which filters."""

from __future__ import annotations

import pytest
from who_fakes import FORMATS_54, FORMATS_60, FORMATS_618

from pooltop.errors import BadInput, Unsupported
from pooltop.who.plan import kmalloc_size, make_plan, resolve_cache
from pooltop.who.tracetext import EventFormat, parse_format

SLABS = ("sigqueue", "kmalloc-192", "dentry", "kmalloc-cg-1k")
ALIASES = {
    "inotify_inode_mark": ("sigqueue",),
    "sigqueue": ("inotify_inode_mark",),
    "twin_a": ("dentry", "sigqueue"),
    "lonely": ("gone",),
}


def _formats(texts: dict[str, str]) -> dict[str, EventFormat]:
    return {k: parse_format(v) for k, v in texts.items()}


def test_resolve_names_and_aliases() -> None:
    assert resolve_cache("sigqueue", SLABS, ALIASES) == "sigqueue"
    assert resolve_cache("inotify_inode_mark", SLABS, ALIASES) == "sigqueue"
    assert resolve_cache("kmalloc-96", SLABS, ALIASES) == "kmalloc-96"  # traced by size anyway
    with pytest.raises(BadInput, match="several"):
        resolve_cache("twin_a", SLABS, ALIASES)
    with pytest.raises(BadInput, match="no slab cache named 'lonely'"):
        resolve_cache("lonely", SLABS, ALIASES)
    with pytest.raises(BadInput, match="not a slab cache name"):
        resolve_cache('x" || name == "y', SLABS, ALIASES)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("kmalloc-192", 192),
        ("kmalloc-cg-1k", 1024),
        ("dma-kmalloc-8k", 8192),
        ("kmalloc-rcl-64", 64),
        ("kmalloc-rnd-03-32", 32),
        ("sigqueue", None),
        ("kmalloc-", None),
        ("my-kmalloc-64", None),
    ],
)
def test_kmalloc_size(name: str, size: int | None) -> None:
    assert kmalloc_size(name) == size


def test_plan_slab_cache_on_618() -> None:
    plan = make_plan("inotify_inode_mark", "sigqueue", _formats(FORMATS_618), stacks=True)
    assert plan.cache == "sigqueue"
    ev = {e.event: e for e in plan.events}
    assert set(ev) == {"kmem_cache_alloc", "kmem_cache_free"}
    assert ev["kmem_cache_alloc"].filter == 'name == "sigqueue"' and ev["kmem_cache_alloc"].alloc
    assert ev["kmem_cache_alloc"].trigger == 'stacktrace if name == "sigqueue"'
    assert ev["kmem_cache_free"].filter == 'name == "sigqueue"' and ev["kmem_cache_free"].specific
    assert ev["kmem_cache_free"].trigger is None


def test_plan_kmalloc_adds_size_filtered_kmalloc_and_kfree() -> None:
    plan = make_plan("kmalloc-192", "kmalloc-192", _formats(FORMATS_618))
    ev = {e.event: e for e in plan.events}
    assert ev["kmalloc"].filter == "bytes_alloc == 192" and ev["kmalloc"].trigger is None
    assert ev["kfree"].filter == "ptr != 0" and not ev["kfree"].specific
    assert ev["kmem_cache_alloc"].filter == 'name == "kmalloc-192"'  # caches merged into kmalloc-192
    assert any("by size" in n for n in plan.notes)


def test_plan_free_without_name_is_unfiltered() -> None:
    plan = make_plan("sigqueue", "sigqueue", _formats(FORMATS_60))
    free = next(e for e in plan.events if e.event == "kmem_cache_free")
    assert free.filter is None and not free.specific
    assert any("paired by pointer" in n for n in plan.notes)


def test_plan_refuses_events_without_the_fields_it_needs() -> None:
    with pytest.raises(Unsupported, match="kmem:kmem_cache_alloc event has no 'name' field"):
        make_plan("sigqueue", "sigqueue", _formats(FORMATS_54))
    with pytest.raises(Unsupported, match="no kmem:kmalloc trace event"):
        no_kmalloc = {k: v for k, v in FORMATS_618.items() if k != "kmalloc"}
        make_plan("kmalloc-64", "kmalloc-64", _formats(no_kmalloc))
    with pytest.raises(Unsupported, match="no kmem:kmem_cache_alloc trace event"):
        make_plan("sigqueue", "sigqueue", {})
