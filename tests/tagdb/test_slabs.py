"""Linux slab cache descriptions and SLUB alias groups."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pooltop.tagdb.slabs import SLAB_DESCRIPTIONS, alias_candidate, slab_candidates, slab_description

WILD = set("*?")


def reference(name: str) -> tuple[str, str] | None:
    """The table read naively: an exact row first, else the first row whose one `*` matches something."""
    for row_name, owner, text in SLAB_DESCRIPTIONS:
        if not WILD & set(row_name) and row_name == name:
            return owner, text
    for row_name, owner, text in SLAB_DESCRIPTIONS:
        if "*" in row_name:
            prefix, suffix = row_name.split("*")
            star = name[len(prefix) : len(name) - len(suffix)]
            if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
                return owner.format(star), text.format(star)
    return None


@pytest.mark.parametrize(
    ("name", "owners"),
    [
        ("filp", {"vfs"}),
        ("dentry", {"vfs"}),
        ("inode_cache", {"vfs"}),
        ("ext4_inode_cache", {"ext4"}),
        ("kmalloc-64", {"mm"}),
        ("kmalloc-rcl-128", {"mm"}),
        ("kmalloc-cg-1k", {"mm"}),
        ("dma-kmalloc-512", {"mm"}),
        ("task_struct", {"kernel"}),
        ("mm_struct", {"mm"}),
        ("vm_area_struct", {"mm"}),
        ("anon_vma", {"mm"}),
        ("anon_vma_chain", {"mm"}),
        ("skbuff_head_cache", {"net"}),
        ("skbuff_fclone_cache", {"net"}),
        ("sock_inode_cache", {"net"}),
        ("TCP", {"net"}),
        ("UDP", {"net"}),
        ("RAW", {"net"}),
        ("names_cache", {"vfs"}),
        ("buffer_head", {"vfs", "block"}),
        ("radix_tree_node", {"mm"}),
        ("pid", {"kernel"}),
        ("cred_jar", {"kernel"}),
        ("files_cache", {"vfs"}),
        ("signal_cache", {"kernel"}),
        ("sighand_cache", {"kernel"}),
        ("fs_cache", {"vfs"}),
        ("eventpoll_epi", {"epoll", "vfs"}),
        ("eventpoll_pwq", {"epoll", "vfs"}),
        ("kernfs_node_cache", {"kernfs"}),
        ("proc_inode_cache", {"procfs"}),
        ("shmem_inode_cache", {"shmem"}),
        ("ext4_extent_status", {"ext4"}),
        ("ext4_io_end", {"ext4"}),
        ("xfs_inode", {"xfs"}),
        ("xfs_buf", {"xfs"}),
        ("btrfs_extent_buffer", {"btrfs"}),
        ("nf_conntrack", {"netfilter"}),
        ("bio-248", {"block"}),
        ("biovec-128", {"block"}),
        ("request_queue", {"block"}),
        ("vmap_area", {"mm"}),
        ("maple_node", {"mm"}),
        ("pool_workqueue", {"workqueue"}),
        ("pipe_inode_info", {"vfs"}),
    ],
)
def test_common_caches_have_an_owner_and_a_description(name: str, owners: set[str]) -> None:
    [c] = slab_candidates(name)
    assert c.owner in owners
    assert c.description and "{" not in c.description
    assert (c.tag, c.source, c.confidence) == (name, "slab", "description")


def test_specific_kmalloc_patterns_win_over_the_generic_one() -> None:
    rows = {row[0]: row for row in SLAB_DESCRIPTIONS}
    for name, row in [
        ("kmalloc-cg-64", "kmalloc-cg-*"),
        ("kmalloc-rcl-64", "kmalloc-rcl-*"),
        ("kmalloc-64", "kmalloc-*"),
    ]:
        assert slab_description(name) == (rows[row][1], rows[row][2].format("64"))


def test_star_text_is_substituted() -> None:
    assert slab_description("zqfs_inode_cache") == ("zqfs", "in-memory inodes of the zqfs filesystem")


def test_unnamed_merged_caches_are_explained() -> None:
    owner, text = slab_description(":A-0000064") or ("", "")
    assert owner == "slub" and "64-byte" in text and "flags A" in text
    owner, text = slab_description(":0000192") or ("", "")
    assert owner == "slub" and "192-byte" in text


def test_unknown_names_have_no_candidate() -> None:
    assert slab_candidates("zq_private_cache") == []
    assert slab_candidates("kmalloc-") == []  # a pattern's * must match something
    assert slab_candidates("") == []


def test_table_is_consistent() -> None:
    exact = [name for name, _, _ in SLAB_DESCRIPTIONS if not WILD & set(name)]
    assert len(exact) == len(set(exact)), "an exact name is listed twice"
    for name, owner, text in SLAB_DESCRIPTIONS:
        assert "?" not in name and name.count("*") <= 1, "reference() reads one * per pattern"
        if "{0}" in owner + text:
            assert "*" in name, name
        assert "{1}" not in owner + text


_piece = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=6)


@given(st.sampled_from([name for name, _, _ in SLAB_DESCRIPTIONS]), _piece)
def test_compiled_patterns_pick_the_same_row_as_a_naive_reading(pattern: str, filler: str) -> None:
    name = pattern.replace("*", filler)
    assert not name.startswith(":")  # unnamed merged caches are handled apart (tested above)
    assert slab_description(name) == reference(name)


# --- SLUB alias groups ----------------------------------------------------------------------------


def test_alias_candidate_lists_the_other_names_and_their_subsystems() -> None:
    c = alias_candidate("kmalloc-64", ("kmalloc-64", "fs_cache", "eventpoll_pwq"))
    assert c is not None
    assert (c.tag, c.source, c.confidence) == ("kmalloc-64", "slab", "description")
    assert "fs_cache" in c.description and "eventpoll_pwq" in c.description
    assert "kmalloc-64" not in c.description
    assert set(c.owner.split("+")) == {"mm", "vfs", "epoll"}


def test_alias_candidate_needs_another_name() -> None:
    assert alias_candidate("dentry", ()) is None
    assert alias_candidate("dentry", ("dentry",)) is None


def test_alias_candidate_of_unknown_caches_is_owned_by_slub() -> None:
    c = alias_candidate("zq_a", ("zq_b",))
    assert c is not None and c.owner == "slub"


def test_long_alias_groups_are_shortened() -> None:
    others = tuple(f"zq_cache_{i}" for i in range(10))
    c = alias_candidate("zq_main", others, shown=3)
    assert c is not None
    assert "and 7 more" in c.description
    assert sum(name in c.description for name in others) == 3
