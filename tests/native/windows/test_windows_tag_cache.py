"""The tag-text cache a live Windows source keeps between refreshes."""

from __future__ import annotations

import nt_encoders as enc

from pooltop.native.windows.layouts import X64, TagTextCache, decode_pooltags


def buffer(tags: list[str], allocs: int) -> bytes:
    return enc.pooltag_info(8, [enc.pooltag(8, t, paged=(allocs, 1, 64 * allocs)) for t in tags])


def test_same_tags_reuse_the_same_texts_and_new_tags_are_decoded() -> None:
    cache = TagTextCache()
    first = decode_pooltags(buffer(["Io  ", "Leak", "Ab\\c"], 5), X64, cache=cache)
    again = decode_pooltags(buffer(["Io  ", "Leak", "Ab\\c"], 9), X64, cache=cache)
    assert again.tags is first.tags  # the very same tuple: the tracker sees "same rows" at once
    assert again.allocs.tolist() == [9, 9, 9]  # the counters are new all the same
    changed = decode_pooltags(buffer(["Io  ", "New\x01", "Leak"], 9), X64, cache=cache)
    assert changed.tags == ("Io  ", "New\\x01", "Leak")
    assert changed.tags == decode_pooltags(buffer(["Io  ", "New\x01", "Leak"], 9), X64).tags
    assert first.tags == ("Io  ", "Leak", "Ab\\x5cc")
