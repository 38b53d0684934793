"""pooltag.txt / localtag.txt parsing, discovery and the user's overlay.

Every tag file in these tests is written here, in the pooltag.txt line format, with invented tags
(the "Zq" family and friends); none of it comes from Microsoft's pooltag.txt.
"""

from __future__ import annotations

import codecs
import fnmatch
import os
import string
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput, PooltopError
from pooltop.model import unescape_tag
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb.pooltag import (
    UNKNOWN_OWNER,
    TagEntry,
    add_overlay_entry,
    discover_tag_files,
    parse_tag_file,
    parse_tag_text,
)

SAMPLE = (
    "rem\r\n"
    "rem  Invented tags for pooltop's tests, in pooltag.txt's layout\r\n"
    "rem\r\n"
    "\r\n"
    "Zq   - nt!zq      - Zq general allocations\r\n"
    "Zqab - zqdrv.sys  - Zq adapter blocks\r\n"
    "ZQAB - <unknown>  - upper-case twin of Zqab\r\n"
    "Zqa? - zqdrv.sys  - Zq wildcard family\r\n"
    "Zqb* - zqfilt.sys - Zq filter - per-stream context - v2\r\n"
    "Zqab - zqold.sys  - Zq adapter blocks (older driver)\r\n"
    "Zqcd - plain words describing it\r\n"
    "Zqce - zqce.sys\r\n"
    "// a C-style comment\r\n"
    "this line has no separator\r\n"
)


def by_tag(entries: tuple[TagEntry, ...]) -> dict[str, list[TagEntry]]:
    out: dict[str, list[TagEntry]] = {}
    for e in entries:
        out.setdefault(e.tag, []).append(e)
    return out


# --- the line format ----------------------------------------------------------------------------


def test_tags_with_a_space_inside_are_the_first_four_characters() -> None:
    # issue 16 item 2: such lines were counted as unreadable
    parsed = parse_tag_text(
        "Zq 1 - <unknown>    - spaced tag, owner unknown\n"
        "Zq ? - zqdd.sys - spaced wildcard\n"
        "Z q - zqs.sys - three characters, one a space\n"
        "Zq 2- zqnb.sys\n"
        "Zq 12 - zq.sys - five characters: not a tag\n"
    )
    entries = by_tag(parsed.entries)
    assert [(e.owner, e.description, e.wildcard) for e in entries["Zq 1"]] == [
        (UNKNOWN_OWNER, "spaced tag, owner unknown", False)
    ]
    assert [(e.owner, e.wildcard) for e in entries["Zq ?"]] == [("zqdd.sys", True)]
    assert [e.owner for e in entries["Z q "]] == ["zqs.sys"]
    assert [e.owner for e in entries["Zq 2"]] == ["zqnb.sys"]
    assert set(entries) == {"Zq 1", "Zq ?", "Z q ", "Zq 2"}
    assert parsed.malformed == (5,)


def test_two_and_three_character_tags_keep_their_rule_beside_spaced_ones() -> None:
    parsed = parse_tag_text(
        "Zq - nt!zq - two\nZqa - zqa.sys - three\nZq  - nt!zq2 - padded\nZ - z.sys - one\n"
    )
    assert [(e.tag, e.owner) for e in parsed.entries] == [
        ("Zq  ", "nt!zq"), ("Zqa ", "zqa.sys"), ("Zq  ", "nt!zq2"), ("Z   ", "z.sys")
    ]
    assert parsed.malformed == ()


def test_short_tags_are_padded_to_four_bytes() -> None:
    parsed = parse_tag_file(SAMPLE.encode())
    [entry] = by_tag(parsed.entries)["Zq  "]
    assert (entry.owner, entry.description, entry.wildcard) == ("nt!zq", "Zq general allocations", False)
    assert "Zq" not in by_tag(parsed.entries)


def test_tags_are_case_sensitive() -> None:
    tags = by_tag(parse_tag_file(SAMPLE.encode()).entries)
    assert [e.owner for e in tags["ZQAB"]] == ["<unknown>"]
    assert [e.owner for e in tags["Zqab"]] == ["zqdrv.sys", "zqold.sys"]


def test_duplicate_tags_are_all_kept_in_file_order() -> None:
    tags = by_tag(parse_tag_file(SAMPLE.encode()).entries)
    assert [(e.owner, e.line) for e in tags["Zqab"]] == [("zqdrv.sys", 6), ("zqold.sys", 10)]


def test_wildcard_entries_keep_their_pattern() -> None:
    tags = by_tag(parse_tag_file(SAMPLE.encode()).entries)
    assert tags["Zqa?"][0].wildcard and tags["Zqb*"][0].wildcard
    assert not tags["Zqab"][0].wildcard


def test_short_question_mark_pattern_is_padded_but_star_pattern_is_not() -> None:
    parsed = parse_tag_text("Zq? - a.sys - x\nZ* - b.sys - y\n")
    assert [(e.tag, e.wildcard) for e in parsed.entries] == [("Zq? ", True), ("Z*", True)]


def test_description_may_contain_the_separator() -> None:
    [entry] = by_tag(parse_tag_file(SAMPLE.encode()).entries)["Zqb*"]
    assert entry.owner == "zqfilt.sys"
    assert entry.description == "Zq filter - per-stream context - v2"


def test_unknown_and_component_owners() -> None:
    tags = by_tag(parse_tag_file(SAMPLE.encode()).entries)
    assert tags["ZQAB"][0].owner == "<unknown>"
    assert tags["Zq  "][0].owner == "nt!zq"


@pytest.mark.parametrize(
    ("line", "owner", "description"),
    [
        ("Zqcd - plain words describing it", UNKNOWN_OWNER, "plain words describing it"),
        ("Zqce - zqce.sys", "zqce.sys", ""),
        ("Zqcf - nt!zqcf", "nt!zqcf", ""),
        ("Zqcg - <unknown>", "<unknown>", ""),
        ("Zqch - zqa.sys, zqb.sys", "zqa.sys, zqb.sys", ""),
        ("Zqci - Temporary", UNKNOWN_OWNER, "Temporary"),
        ("Zqcj -  - owner column left empty", UNKNOWN_OWNER, "owner column left empty"),
        ("Zqck - zqck.sys -", "zqck.sys", ""),
    ],
)
def test_two_field_lines_put_the_field_where_it_belongs(line: str, owner: str, description: str) -> None:
    [entry] = parse_tag_text(line).entries
    assert (entry.owner, entry.description) == (owner, description)


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_line_endings_do_not_matter(newline: str) -> None:
    reference = parse_tag_file(SAMPLE.encode())
    parsed = parse_tag_file(SAMPLE.replace("\r\n", newline).encode())
    assert parsed == reference


def test_comments_and_blank_lines_are_neither_entries_nor_malformed() -> None:
    text = "rem\nREM upper case\n  rem indented\n// slashes\n\n   \t\n\x1a"
    parsed = parse_tag_text(text)
    assert parsed.entries == () and parsed.malformed == ()
    assert parsed.line_count == 7


def test_malformed_lines_are_counted_with_line_numbers_and_do_not_stop_parsing() -> None:
    text = "\n".join(
        [
            "Zqaa - a.sys - fine",  # 1
            "this line has no separator",  # 2
            "Toolong - a.sys - five bytes is not a tag",  # 3
            "Zqab -",  # 4: nothing after the tag
            "**** - a.sys - nothing but wildcards",  # 5
            "Zq\x01b - a.sys - control byte in the tag",  # 6
            "Zqac - a.sys - fine again",  # 7
        ]
    )
    parsed = parse_tag_text(text)
    assert [e.line for e in parsed.entries] == [1, 7]
    assert parsed.malformed == (2, 3, 4, 5, 6)


def test_8bit_text_is_decoded_per_line() -> None:
    data = (
        b"Zqaa - a.sys - cp1252 \x93quotes\x94\r\n"  # cp1252 smart quotes
        b"Zqab - b.sys - utf-8 caf\xc3\xa9\r\n"  # valid UTF-8
        b"Zqac - c.sys - byte \x81 is undefined in cp1252\r\n"  # falls back to latin-1
    )
    descriptions = [e.description for e in parse_tag_file(data).entries]
    assert descriptions == [
        "cp1252 \u201cquotes\u201d",
        "utf-8 caf\u00e9",
        "byte \\x81 is undefined in cp1252",  # a C1 control: shown escaped, never raw
    ]


def test_8bit_tag_bytes_are_kept_exactly() -> None:
    [entry] = parse_tag_file(b"Zq\xe9 - a.sys - tag with a high byte\n").entries
    assert unescape_tag(entry.tag) == b"Zq\xe9 "
    assert entry.tag == "Zq\\xe9 "


def test_escaped_tag_bytes_in_a_file_are_read_as_bytes() -> None:
    [entry] = parse_tag_text("\\x01Zq - a.sys - escaped first byte").entries
    assert unescape_tag(entry.tag) == b"\x01Zq "


def test_control_characters_in_text_fields_are_escaped() -> None:
    [entry] = parse_tag_text("Zqaa - a.sys - bell\x07 and escape\x1b[31m").entries
    assert entry.description == "bell\\x07 and escape\\x1b[31m"


def test_utf8_bom_and_utf16_files() -> None:
    line = "Zqaa - a.sys - caf\u00e9\r\n"
    expected = parse_tag_text(line).entries
    assert parse_tag_file(codecs.BOM_UTF8 + line.encode()).entries == expected
    assert parse_tag_file(line.encode("utf-16")).entries == expected


# --- fuzzing --------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_never_raise_and_every_line_is_accounted_for(data: bytes) -> None:
    assume(not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))
    parsed = parse_tag_file(data)
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    assert parsed.line_count == len(body.splitlines())
    entry_lines = [e.line for e in parsed.entries]
    assert len(set(entry_lines) | set(parsed.malformed)) == len(entry_lines) + len(parsed.malformed)
    assert all(1 <= n <= parsed.line_count for n in [*entry_lines, *parsed.malformed])
    for e in parsed.entries:
        raw = unescape_tag(e.tag)
        if e.wildcard:
            assert b"*" in raw or len(raw) >= 4
        else:
            assert len(raw) == 4
        for text in (e.owner, e.description):
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


_FIELD_CHARS = string.ascii_letters + string.digits + "()_,.'/"
# "rem" starts a comment line: a tag spelled so cannot be listed (pooltag.py says why)
_tag_text = st.text(string.ascii_letters + string.digits, min_size=1, max_size=4).filter(
    lambda tag: tag.lower() != "rem"
)
_owner = st.sampled_from(["zq.sys", "nt!zq", "<unknown>", "zq_filter.sys"])
_description = st.lists(st.text(_FIELD_CHARS, min_size=1, max_size=8), min_size=1, max_size=5).map(
    lambda words: " - ".join(words[:2]) + " " + " ".join(words[2:])
)


@given(
    st.lists(st.tuples(_tag_text, _owner, _description, st.sampled_from(["\n", "\r\n"])), max_size=20),
    st.sampled_from([" ", "  ", "\t", "   "]),
)
def test_fuzz_well_formed_lines_round_trip(rows: list[tuple[str, str, str, str]], gap: str) -> None:
    text = "".join(f"{tag}{gap}-{gap}{owner}{gap}-{gap}{desc}{nl}" for tag, owner, desc, nl in rows)
    parsed = parse_tag_text(text)
    assert parsed.malformed == ()
    assert [(e.tag, e.owner, e.description) for e in parsed.entries] == [
        (tag.ljust(4), owner, desc.strip()) for tag, owner, desc, _ in rows
    ]


@given(st.text(max_size=300))
def test_fuzz_random_text_never_raises(text: str) -> None:
    parsed = parse_tag_text(text)
    assert len(parsed.entries) + len(parsed.malformed) <= parsed.line_count


# --- wildcard expansion ---------------------------------------------------------------------------


@given(st.text("ab?*", min_size=1, max_size=7), st.text("abc", min_size=4, max_size=4))
def test_four_byte_expansion_agrees_with_fnmatch(pattern: str, tag: str) -> None:
    expanded = list(pt.expand_pattern4(pattern.encode()))
    assert all(len(p) == 4 and b"*" not in p for p in expanded)
    by_expansion = any(fnmatch.fnmatchcase(tag, p.decode()) for p in expanded)
    assert by_expansion == fnmatch.fnmatchcase(tag, pattern)


# --- discovery ------------------------------------------------------------------------------------


def make_kit(root: Path, version: str, arch: str, *, localtag: bool = False) -> Path:
    triage = root / "Windows Kits" / version / "Debuggers" / arch / "triage"
    triage.mkdir(parents=True)
    (triage / "pooltag.txt").write_text("Zqaa - a.sys - kit\n")
    if localtag:
        (triage / "localtag.txt").write_text("Zqab - b.sys - local\n")
    return triage


def test_discovery_order_explicit_then_kit_then_localtag(tmp_path: Path) -> None:
    pf86, work = tmp_path / "pf86", tmp_path / "work"
    triage = make_kit(pf86, "10", "x64", localtag=True)
    work.mkdir()
    (work / "localtag.txt").write_text("Zqac - c.sys - cwd\n")
    mine = tmp_path / "mine.txt"
    refs = discover_tag_files([mine], environ={"ProgramFiles(x86)": str(pf86)}, windows=True, cwd=work)
    assert [(r.path, r.source, r.explicit) for r in refs] == [
        (mine, "mine.txt", True),
        (triage / "pooltag.txt", "pooltag.txt", False),
        (triage / "localtag.txt", "localtag.txt", False),
        (work / "localtag.txt", "localtag.txt", False),
    ]


def test_discovery_prefers_newest_kit_and_x64(tmp_path: Path) -> None:
    pf86, pf = tmp_path / "pf86", tmp_path / "pf"
    make_kit(pf86, "8.1", "x64")
    make_kit(pf86, "10", "x86")
    best = make_kit(pf86, "10", "x64")
    make_kit(pf, "10", "arm64")
    environ = {"ProgramFiles(x86)": str(pf86), "ProgramFiles": str(pf)}
    refs = discover_tag_files(environ=environ, windows=True, cwd=tmp_path)
    assert [r.path for r in refs] == [best / "pooltag.txt"]


def test_discovery_falls_back_to_program_files(tmp_path: Path) -> None:
    triage = make_kit(tmp_path / "pf", "8.0", "arm64")
    refs = discover_tag_files(environ={"ProgramFiles": str(tmp_path / "pf")}, windows=True, cwd=tmp_path)
    assert [r.path for r in refs] == [triage / "pooltag.txt"]


def test_discovery_ignores_kits_when_not_on_windows(tmp_path: Path) -> None:
    make_kit(tmp_path / "pf86", "10", "x64")
    refs = discover_tag_files(
        environ={"ProgramFiles(x86)": str(tmp_path / "pf86")}, windows=False, cwd=tmp_path
    )
    assert refs == []


def test_discovery_uses_working_directory_copies(tmp_path: Path) -> None:
    (tmp_path / "pooltag.txt").write_text("Zqaa - a.sys - x\n")
    (tmp_path / "localtag.txt").write_text("Zqab - b.sys - y\n")
    refs = discover_tag_files(environ={}, windows=False, cwd=tmp_path)
    assert [(r.path.name, r.source) for r in refs] == [
        ("pooltag.txt", "pooltag.txt"),
        ("localtag.txt", "localtag.txt"),
    ]


def test_discovery_lists_an_explicit_file_once(tmp_path: Path) -> None:
    (tmp_path / "pooltag.txt").write_text("Zqaa - a.sys - x\n")
    refs = discover_tag_files([tmp_path / "pooltag.txt"], environ={}, windows=False, cwd=tmp_path)
    assert [(r.source, r.explicit) for r in refs] == [("pooltag.txt", True)]


def test_reading_a_missing_file_is_a_one_line_pooltop_error(tmp_path: Path) -> None:
    with pytest.raises(PooltopError, match="cannot read tag file") as info:
        pt.read_tag_file(tmp_path / "absent.txt")
    assert "\n" not in str(info.value)


# --- the overlay ----------------------------------------------------------------------------------


def test_overlay_entry_is_created_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "tags.txt"
    add_overlay_entry("Zq", "zqdrv.sys", "my own note - with a dash", path=path)
    [entry] = pt.read_tag_file(path, max_tag_len=pt.OVERLAY_TAG_LEN).entries
    assert (entry.tag, entry.owner, entry.description) == ("Zq  ", "zqdrv.sys", "my own note - with a dash")


def test_overlay_replaces_the_same_tag_and_keeps_other_lines_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "tags.txt"
    original = b"rem my notes\r\nZqaa - old.sys - old\r\nZqab - keep.sys - caf\xe9 in cp1252\r\n// end"
    path.write_bytes(original)
    add_overlay_entry("Zqaa", "new.sys", "new", path=path)
    data = path.read_bytes()
    assert (
        data == b"rem my notes\r\nZqab - keep.sys - caf\xe9 in cp1252\r\n// end\r\nZqaa - new.sys - new\r\n"
    )


def test_overlay_owner_without_description_stays_an_owner(tmp_path: Path) -> None:
    path = tmp_path / "tags.txt"
    add_overlay_entry("Zqaa", "Contoso Filter", path=path)
    [entry] = pt.read_tag_file(path).entries
    assert (entry.owner, entry.description) == ("Contoso Filter", "")


@pytest.mark.parametrize("tag", ["Ab-", "rem", "Rem ", "//ab", "\\x01\\x20b", "a\\x5cb", "kmalloc-64", "Zq*"])
def test_overlay_tags_that_need_escaping_round_trip(tmp_path: Path, tag: str) -> None:
    path = tmp_path / "tags.txt"
    add_overlay_entry(tag, "x.sys", "d", path=path)
    [entry] = pt.read_tag_file(path, max_tag_len=pt.OVERLAY_TAG_LEN).entries
    expected = pt.normalise_tag_field(tag, "utf-8", pt.OVERLAY_TAG_LEN)
    assert expected is not None
    assert entry.tag == expected[0]


@pytest.mark.parametrize(
    ("tag", "owner", "description"),
    [("", "a.sys", "d"), ("Z q", "a.sys", "d"), ("Zqaa", "a - b", "d"), ("Zqaa", "a.sys", "two\nlines")],
)
def test_overlay_rejects_entries_it_could_not_read_back(
    tmp_path: Path, tag: str, owner: str, description: str
) -> None:
    path = tmp_path / "tags.txt"
    with pytest.raises(BadInput):
        add_overlay_entry(tag, owner, description, path=path)
    assert not path.exists()


def test_overlay_write_failure_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tags.txt"
    path.write_bytes(b"Zqaa - a.sys - precious\n")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PooltopError, match="cannot write"):
        add_overlay_entry("Zqab", "b.sys", "new", path=path)
    assert path.read_bytes() == b"Zqaa - a.sys - precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tags.txt"]


def test_default_overlay_path_is_in_the_user_config_dir() -> None:
    path = pt.default_overlay_path()
    assert path.name == "tags.txt"
    assert "pooltop" in path.parent.parts[-2:]
