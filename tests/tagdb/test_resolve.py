"""TagDatabase: ranking across sources, wildcard matching, loading and diagnostics.

Tag files are written inline with invented tags (pooltag.txt's line format, none of its content).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pooltop.errors import PooltopError
from pooltop.tagdb import CONFIDENCE_ORDER, OwnerCandidate
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb.resolve import TagDatabase, TagTable, format_owner, tag_key


def table(source: str, text: str, *, overlay: bool = False) -> TagTable:
    max_len = pt.OVERLAY_TAG_LEN if overlay else pt.POOL_TAG_LEN
    return TagTable(source, pt.parse_tag_text(text, max_tag_len=max_len), overlay)


def scan(tag: str, owner: str, confidence: str) -> OwnerCandidate:
    return OwnerCandidate(tag=tag, owner=owner, description="", source="scan", confidence=confidence)


def owners(found: list[OwnerCandidate]) -> list[str]:
    return [c.owner for c in found]


def test_candidates_are_ranked_overlay_exact_callsite_immediate_wildcard_bytes() -> None:
    db = TagDatabase(
        [
            table("pooltag.txt", "Zqa? - wild.sys - family\nZqab - exact.sys - adapter\n"),
            table("overlay", "Zqab - mine.sys - my note\n", overlay=True),
        ],
        scan=[
            scan("Zqab", "bytes.sys", "bytes"),
            scan("Zqab", "immediate.sys", "immediate"),
            scan("Zqab", "callsite.sys", "call-site"),
        ],
    )
    found = db.candidates("Zqab")
    assert [c.confidence for c in found] == [
        "overlay",
        "exact",
        "call-site",
        "immediate",
        "wildcard",
        "bytes",
    ]
    assert [c.confidence for c in found] == [c for c in CONFIDENCE_ORDER if c != "description"]
    assert owners(found) == [
        "mine.sys",
        "exact.sys",
        "callsite.sys",
        "immediate.sys",
        "wild.sys",
        "bytes.sys",
    ]


def test_exact_beats_wildcard_even_when_the_wildcard_comes_first_in_the_file() -> None:
    db = TagDatabase([table("pooltag.txt", "Zq* - wild.sys - w\nZqab - exact.sys - e\n")])
    assert owners(db.candidates("Zqab")) == ["exact.sys", "wild.sys"]


def test_overlay_wildcard_beats_every_text_file_entry() -> None:
    db = TagDatabase(
        [
            table("pooltag.txt", "Zqab - exact.sys - e\n"),
            table("overlay", "Zq* - mine.sys - m\n", overlay=True),
        ]
    )
    assert owners(db.candidates("Zqab")) == ["mine.sys", "exact.sys"]


def test_earlier_files_rank_first_among_equals_and_duplicates_keep_file_order() -> None:
    db = TagDatabase(
        [
            table("mine.txt", "Zqab - first.sys - a\n"),
            table("pooltag.txt", "Zqab - second.sys - b\nZqab - third.sys - c\n"),
            table("localtag.txt", "Zqab - fourth.sys - d\n"),
        ]
    )
    found = db.candidates("Zqab")
    assert [(c.owner, c.source) for c in found] == [
        ("first.sys", "mine.txt"),
        ("second.sys", "pooltag.txt"),
        ("third.sys", "pooltag.txt"),
        ("fourth.sys", "localtag.txt"),
    ]


def test_short_tags_are_padded_and_tags_are_case_sensitive() -> None:
    db = TagDatabase([table("pooltag.txt", "Zq - nt!zq - general\nzq - lower.sys - other\n")])
    assert owners(db.candidates("Zq")) == ["nt!zq"]
    assert owners(db.candidates("Zq  ")) == ["nt!zq"]
    assert owners(db.candidates(b"Zq  ")) == ["nt!zq"]
    assert owners(db.candidates("zq")) == ["lower.sys"]
    assert db.candidates("ZQ") == []


def test_wildcard_candidates_name_the_queried_tag_and_the_pattern() -> None:
    db = TagDatabase([table("pooltag.txt", "Zqa? - wild.sys - family\n")])
    [c] = db.candidates("Zqa\\x01")
    assert (c.tag, c.pattern, c.confidence) == ("Zqa\\x01", "Zqa?", "wildcard")


def test_a_pattern_with_two_stars_matches_once() -> None:
    db = TagDatabase([table("pooltag.txt", "Z*a* - w.sys - twice\n")])
    assert owners(db.candidates("Zaaa")) == ["w.sys"]


def test_scan_candidates_can_be_added_later() -> None:
    db = TagDatabase([table("pooltag.txt", "Zqab - text.sys - t\n")])
    assert owners(db.candidates("Zqab")) == ["text.sys"]
    db.add_scan([scan("Zqab", "scanned.sys", "call-site"), scan("Zq", "short.sys", "immediate")])
    assert owners(db.candidates("Zqab")) == ["text.sys", "scanned.sys"]
    assert owners(db.candidates("Zq  ")) == ["short.sys"]


def test_returned_lists_are_copies() -> None:
    db = TagDatabase([table("pooltag.txt", "Zqab - a.sys - a\n")])
    db.candidates("Zqab").clear()
    assert owners(db.candidates("Zqab")) == ["a.sys"]


def test_best_and_describe() -> None:
    db = TagDatabase(
        [table("pooltag.txt", "Zqab - zqdrv.sys - adapter blocks\nZqac - <unknown> - mystery\n")]
    )
    best = db.best("Zqab")
    assert best is not None and best.owner == "zqdrv.sys"
    assert db.describe("Zqab") == "zqdrv.sys  adapter blocks"
    assert db.describe("Zqac") == "mystery"
    assert db.best("Nope") is None
    assert db.describe("Nope") == ""


def test_format_owner_without_description() -> None:
    assert format_owner(scan("Zqab", "zqdrv.sys", "call-site")) == "zqdrv.sys"


def test_tag_key_pads_and_escapes() -> None:
    assert tag_key("Io") == "Io  "
    assert tag_key(b"\x01ab") == "\\x01ab "
    assert tag_key("\\x01ab") == "\\x01ab "


# --- wildcard matching agrees with fnmatch --------------------------------------------------------


def reference_matches(pattern: str, tag: str) -> bool:
    """fnmatch on the pattern as the parser normalises it (shorter ?-patterns padded with spaces)."""
    if "*" not in pattern:
        pattern = pattern.ljust(4)
    return fnmatch.fnmatchcase(tag, pattern)


_patterns = st.lists(
    st.text("ab?*", min_size=1, max_size=6).filter(lambda p: p.strip("?*") and len(p.replace("*", "")) <= 4),
    min_size=1,
    max_size=12,
    unique=True,
)


@given(_patterns, st.text("ab ", min_size=4, max_size=4))
def test_four_byte_lookups_match_the_same_patterns_as_fnmatch(patterns: list[str], tag: str) -> None:
    text = "".join(f"{p} - p{i}.sys - pattern {p}\n" for i, p in enumerate(patterns))
    db = TagDatabase([table("pooltag.txt", text)])
    expected = {f"p{i}.sys" for i, p in enumerate(patterns) if reference_matches(p, tag)}
    assert set(owners(db.candidates(tag))) == expected


@given(_patterns, st.text("ab-", min_size=5, max_size=9))
def test_longer_names_use_the_compiled_patterns(patterns: list[str], name: str) -> None:
    text = "".join(f"{p} - p{i}.sys - pattern {p}\n" for i, p in enumerate(patterns))
    db = TagDatabase([table("overlay", text, overlay=True)])
    expected = {f"p{i}.sys" for i, p in enumerate(patterns) if reference_matches(p, name)}
    assert set(owners(db.candidates(name))) == expected


# --- slabs ------------------------------------------------------------------------------------------


def test_slab_mode_adds_descriptions_and_alias_groups() -> None:
    db = TagDatabase([table("overlay", "dentry - me - my own note\n", overlay=True)], slabs=True)
    found = db.candidates("dentry", aliases=("dentry", "zq_cache"))
    assert [(c.source, c.confidence) for c in found] == [
        ("overlay", "overlay"),
        ("slab", "description"),
        ("slab", "description"),
    ]
    assert "zq_cache" in found[2].description
    assert all(c.tag == "dentry" for c in found[1:])


def test_slab_descriptions_are_off_for_pool_tags() -> None:
    assert TagDatabase().candidates("filp") == []


# --- loading ------------------------------------------------------------------------------------------


def make_kit(root: Path, text: str) -> Path:
    triage = root / "Windows Kits" / "10" / "Debuggers" / "x64" / "triage"
    triage.mkdir(parents=True)
    (triage / "pooltag.txt").write_text(text)
    return triage


def test_load_reads_explicit_kit_local_and_overlay_and_reports_them(tmp_path: Path) -> None:
    triage = make_kit(tmp_path / "pf86", "Zqab - kit.sys - kit\nbroken line\n")
    (triage / "localtag.txt").write_text("Zqab - local.sys - local\n")
    mine = tmp_path / "mine.txt"
    mine.write_text("Zqab - mine.sys - mine\n")
    overlay = tmp_path / "cfg" / "tags.txt"
    pt.add_overlay_entry("Zqab", "overlay.sys", "users", path=overlay)
    db = TagDatabase.load(
        [mine],
        overlay_path=overlay,
        environ={"ProgramFiles(x86)": str(tmp_path / "pf86")},
        windows=True,
        cwd=tmp_path,
    )
    assert owners(db.candidates("Zqab")) == ["overlay.sys", "mine.sys", "kit.sys", "local.sys"]
    assert [(r.source, r.entries, r.malformed) for r in db.reports] == [
        ("overlay", 1, ()),
        ("mine.txt", 1, ()),
        ("pooltag.txt", 1, (2,)),
        ("localtag.txt", 1, ()),
    ]
    assert db.malformed_count == 1


def test_load_without_overlay_or_discovery(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("Zqab - mine.sys - mine\n")
    (tmp_path / "pooltag.txt").write_text("Zqab - cwd.sys - cwd\n")
    db = TagDatabase.load([mine], discover=False, overlay=False, cwd=tmp_path)
    assert owners(db.candidates("Zqab")) == ["mine.sys"]


def test_load_missing_explicit_file_raises(tmp_path: Path) -> None:
    with pytest.raises(PooltopError, match=r"absent\.txt"):
        TagDatabase.load([tmp_path / "absent.txt"], overlay=False, environ={}, windows=False, cwd=tmp_path)


def test_load_directory_given_as_tag_file_raises(tmp_path: Path) -> None:
    with pytest.raises(PooltopError):
        TagDatabase.load([tmp_path], overlay=False, environ={}, windows=False, cwd=tmp_path)


def test_load_skips_an_unreadable_discovered_file_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pooltag.txt").write_text("Zqab - cwd.sys - cwd\n")
    (tmp_path / "localtag.txt").write_text("Zqab - local.sys - local\n")
    real_read = pt.read_tag_file

    def read(path: Path, *, max_tag_len: int = 4) -> pt.ParsedTagFile:
        if path.name == "pooltag.txt":
            raise PooltopError(f"cannot read tag file {path}: Permission denied")
        return real_read(path, max_tag_len=max_tag_len)

    monkeypatch.setattr(pt, "read_tag_file", read)
    db = TagDatabase.load(overlay=False, environ={}, windows=False, cwd=tmp_path)
    assert owners(db.candidates("Zqab")) == ["local.sys"]
    [failed] = [r for r in db.reports if r.error]
    assert failed.source == "pooltag.txt" and "Permission denied" in (failed.error or "")


def test_spaced_wildcards_match_spaced_tags() -> None:
    db = TagDatabase([table("tags.txt", "Zq ? - zqdd.sys - family\nZq 1 - zq1.sys - one\n")])
    assert [(c.owner, c.confidence) for c in db.candidates("Zq 1")] == [
        ("zq1.sys", "exact"),
        ("zqdd.sys", "wildcard"),
    ]
    assert [c.pattern for c in db.candidates("Zq 7")] == ["Zq ?"]
    assert db.candidates("Zqx7") == []
