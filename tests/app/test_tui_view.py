"""The live view's pure parts: number formatting, column layout, filters."""

from __future__ import annotations

import pytest
from tui_fakes import make_snapshot
from tui_support import build_app

from pooltop.app.cells import fit, format_count
from pooltop.app.columns import layout_columns
from pooltop.app.view import OwnerBook, TableModel, filter_pattern
from pooltop.model import Pool, printable
from pooltop.tracking import Tracker


def test_format_count_fits_its_width() -> None:
    assert format_count(1234567, 12) == "1,234,567"
    assert format_count(1234567, 8) == "1.2M"  # never bare digits beside 1,234 (issue 17)
    assert format_count(123456789012, 8) == "123.5G"
    assert format_count(0, 8, signed=True) == "0"
    assert format_count(-1234, 8, signed=True) == "-1,234"
    assert format_count(12345678, 6, signed=True) == "+12.3M"
    for value in (0, 5, 10**6, 10**12, 2**62):
        for width in (6, 8, 10, 12):
            assert len(format_count(value, width)) <= width


def test_fit_pads_and_crops_in_cells() -> None:
    assert fit("ab", 4) == "ab  "
    assert fit("ab", 4, right=True) == "  ab"
    assert fit("abcdef", 4) == "abc…"
    assert fit("日本語", 4) == "日 …"  # wide characters count two cells


def test_printable_escapes_control_characters() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("ok") == "ok"


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160, 200, 300])
def test_layout_never_overflows(width: int) -> None:
    for alloc_counts, single_pool, owners, symbols, tag_width in [
        (True, False, True, False, 4), (False, True, True, True, 28), (True, False, False, True, 12)]:
        cols = layout_columns(width, tag_width, alloc_counts, single_pool, owners, symbols)
        assert cols[0].column.key == "tag"
        assert cols[-1].x + cols[-1].width <= max(width, cols[0].width + 2)
        keys = [c.column.key for c in cols]
        assert ("allocs" in keys) <= alloc_counts and ("pool" in keys) <= (not single_pool)


def test_layout_drops_by_priority() -> None:
    keys = [c.column.key for c in layout_columns(80, 4, True, False, True, False)]
    assert "d_frees" not in keys and "d_allocs" not in keys  # priority 7 and 6 go first
    assert {"tag", "bytes", "d_bytes", "diff", "leak"} <= set(keys)


def test_filter_pattern() -> None:
    p = filter_pattern("leak")
    assert p is not None and p.match("LeakyDriver") and p.match("my leak")
    p = filter_pattern("Io*")
    assert p is not None and p.match("Io  ") and not p.match("xIo")
    assert filter_pattern("   ") is None


def test_filter_uses_owner_text_and_aliases() -> None:
    tracker = Tracker()
    sample = tracker.update(make_snapshot(0, windows=False))
    model = TableModel(OwnerBook(None))
    model.apply(sample)
    model.set_filter("filp")  # a SLUB alias of Leak
    assert [model.counters.tags[i] for i in model.order] == ["Leak"]


def test_owner_book_survives_a_failing_lookup() -> None:
    def broken(tag: str, pool: Pool) -> list[object]:
        raise RuntimeError("tag database exploded")

    book = OwnerBook(broken)  # type: ignore[arg-type]
    assert book.candidates("Leak", 0) == ()
    assert book.text("Leak", 0) == ""


def test_no_color_environment_turns_on_symbols(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert build_app(symbols=None).symbols
    monkeypatch.delenv("NO_COLOR")
    assert not build_app(symbols=None).symbols


def test_a_header_line_wraps_at_its_break_points_and_keeps_every_item() -> None:
    from pooltop.app.textline import Line

    line = Line(" ")
    for item in ("Slab 143.1 MiB", "Unreclaimable 47.7 MiB", "Avail 4.0 GiB", "Commit 3.0 GiB/10.0 GiB"):
        line.brk()
        line.append(f"  {item}")
    for width in (30, 40, 80, 200):
        wrapped = line.wrap(width)
        assert all(len(part.plain) <= width for part in wrapped)
        text = " ".join(part.plain for part in wrapped)
        for item in ("Slab 143.1 MiB", "Unreclaimable 47.7 MiB", "Avail 4.0 GiB", "Commit 3.0 GiB/10.0 GiB"):
            assert item in text
    assert len(line.wrap(200)) == 1 and len(line.wrap(40)) == 3
    sentence = Line(" verdict: " + "word " * 30)  # no break points: wraps between words
    assert all(len(part.plain) <= 40 for part in sentence.wrap(40))


def test_row_facts_of_a_linux_cache() -> None:
    from pooltop.app.view import row_facts

    tracker = Tracker()
    tracker.update(make_snapshot(0, windows=False))
    model = TableModel(OwnerBook(None))
    model.apply(tracker.update(make_snapshot(1, windows=False)))
    facts = row_facts(model, ("Leak", int(Pool.SLAB)))
    assert facts is not None
    assert facts.allocs is None and facts.frees is None  # no alloc counts on Linux
    assert facts.object_size == 256 and facts.diff == 190 and facts.change_diff == 90
    assert row_facts(model, ("Nope", int(Pool.SLAB))) is None
