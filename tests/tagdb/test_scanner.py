"""The driver scanner on real (tiny) drivers built with mingw-w64: tests/data/drivers (see its README)."""

from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooltop.tagdb.bytesearch import KnownTags, normalize_tag
from pooltop.tagdb.callsites import AnalysisLimits, find_call_sites
from pooltop.tagdb.candidates import Candidate, default_candidates, iter_candidates
from pooltop.tagdb.findings import DriverScan, Rejected, Skipped, owner_candidates
from pooltop.tagdb.immediates import find_tag_immediates, is_tag_shaped
from pooltop.tagdb.pe import CodeSection
from pooltop.tagdb.poolapis import POOL_APIS, tag_text
from pooltop.tagdb.scanner import (
    NO_POOL_IMPORTS,
    UNSUPPORTED_ARCH_NOTE,
    ScanLimits,
    analyse_image,
    scan,
    scan_file,
)

DRIVERS = Path(__file__).resolve().parent.parent / "data" / "drivers"
BIN = DRIVERS / "bin"
EXPECTED = json.loads((DRIVERS / "expected.json").read_text())
BUILT = re.compile(r"^(?P<source>[a-z]+)-(?P<arch>x64|i686)-(?P<opt>O0|O2|Os)(?P<thunks>-thunks)?\.sys$")
BUILT_FILES = sorted(p.name for p in BIN.glob("*.sys") if BUILT.match(p.name))


def analyse(name: str, limits: ScanLimits | None = None) -> DriverScan | Rejected | Skipped:
    return analyse_image((BIN / name).read_bytes(), str(BIN / name), limits)


def driver(name: str) -> DriverScan:
    outcome = analyse(name)
    assert isinstance(outcome, DriverScan), outcome
    return outcome


def confidences(scan_result: DriverScan) -> dict[str, str]:
    return {f.tag: f.confidence for f in scan_result.findings()}


def test_every_fixture_is_accounted_for() -> None:
    """A binary nobody wrote expectations for would silently test nothing."""
    known = set(BUILT_FILES) | set(EXPECTED["variants"]) | set(EXPECTED["rejected"])
    assert {p.name for p in BIN.glob("*.sys")} == known
    sources = {BUILT.match(name)["source"] for name in BUILT_FILES}  # type: ignore[index]
    assert sources == set(EXPECTED["sources"])
    assert len(BUILT_FILES) == 4 * 6 + 2 * 2  # 4 sources x {x64,i686} x {O0,O2,Os} + thunk variants


@pytest.mark.parametrize("name", BUILT_FILES)
def test_call_site_tags_match_the_sources(name: str) -> None:
    m = BUILT.match(name)
    assert m is not None
    expected = EXPECTED["sources"][m["source"]]
    result = driver(name)
    found = confidences(result)
    call_sites = {tag for tag, confidence in found.items() if confidence == "call-site"}

    missing = set(expected["call_site"]) - call_sites
    assert not missing, f"{name}: call-site tags not found: {sorted(missing)}"
    extra = call_sites - set(expected["call_site"])
    assert not extra, f"{name}: call-site tags that are not in the source: {sorted(extra)}"
    for tag in expected["immediate"]:
        assert found.get(tag) == "immediate", f"{name}: {tag} should be an immediate, got {found.get(tag)}"
    for tag in expected["data_only"]:
        assert tag not in found, f"{name}: {tag} lives only in data, yet was reported"
    assert result.arch == ("x64" if m["arch"] == "x64" else "x86")


@pytest.mark.parametrize("name", BUILT_FILES)
def test_call_sites_name_their_api_and_lie_in_code(name: str) -> None:
    result = driver(name)
    for finding in result.tags:
        if finding.confidence != "call-site":
            continue
        assert finding.site_count == len(finding.sites) >= 1
        for site in finding.sites:
            assert site["api"] in POOL_APIS
            assert 0x1000 <= int(site["rva"], 16) < 0x10000


def test_ndis_tag_comes_from_ndis_allocate_memory_with_tag() -> None:
    result = driver("ndis-x64-O2.sys")
    (nds1,) = [f for f in result.tags if f.tag == "Nds1"]
    assert {s["api"] for s in nds1.sites} == {"NdisAllocateMemoryWithTag"}


def test_protected_pool_bit_is_not_part_of_the_tag() -> None:
    for name in ("basic-x64-O2.sys", "basic-i686-O2.sys"):
        found = confidences(driver(name))
        assert found["Bpro"] == "call-site"
        assert not any(tag.startswith("Bpr") and tag != "Bpr1" and tag != "Bpro" for tag in found)


def test_tag_passed_as_parameter_is_not_a_call_site_but_is_counted() -> None:
    result = driver("tailcall-x64-O2.sys")
    assert confidences(result)["Parm"] == "immediate"
    assert result.unresolved_sites == 1  # the call inside AllocWithTag


def test_import_stubs_nobody_calls_are_not_counted_as_sites() -> None:
    """dllimport builds still carry the import library's `jmp [IAT]` stubs."""
    assert driver("basic-x64-O2.sys").unresolved_sites == 0


def test_version_facts() -> None:
    facts = driver("basic-x64-O2.sys").facts
    want = EXPECTED["version"]["with_resource"]
    assert (facts.file_version, facts.company, facts.product) == (
        want["file_version"],
        want["company"],
        want["product"],
    )
    assert facts.arch == "x64"
    assert facts.signed is False
    bare = driver("datatags-i686-O2.sys").facts
    assert (bare.file_version, bare.company, bare.product, bare.arch) == (None, None, None, "x86")


def test_signature_presence() -> None:
    assert driver("signed-basic-x64-O2.sys").facts.signed is True
    assert confidences(driver("signed-basic-x64-O2.sys")) == confidences(driver("basic-x64-O2.sys"))


def test_arm64_gets_a_note_and_the_bytes_pass_only() -> None:
    outcome = scan_file(str(BIN / "arm64-basic.sys"), known=KnownTags(["Bas1"]))
    assert isinstance(outcome, DriverScan)
    assert outcome.arch == "arm64"
    assert any(UNSUPPORTED_ARCH_NOTE in note for note in outcome.notes)
    assert outcome.tags == []
    assert confidences(outcome) == {"Bas1": "bytes"}


@pytest.mark.parametrize(("name", "reason"), sorted(EXPECTED["rejected"].items()))
def test_bad_files_are_rejected_with_a_reason(name: str, reason: str) -> None:
    outcome = analyse(name)
    assert isinstance(outcome, Rejected)
    assert reason in outcome.reason


@pytest.mark.parametrize("data", [b"MZ\x90\x00", b"MZ", b"MZ" + bytes(61)])
def test_a_stub_of_an_mz_header_is_called_truncated(data: bytes) -> None:
    # issue 16: a 4-byte MZ\x90\x00 file was "not a PE file (no MZ header)"
    outcome = analyse_image(data, "stub.sys")
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("truncated PE") and f"{len(data)} bytes" in outcome.reason
    assert "no MZ header" not in outcome.reason


def test_a_file_without_mz_is_not_a_pe_file() -> None:
    outcome = analyse_image(b"\x7fELF" + bytes(100), "elf.sys")
    assert isinstance(outcome, Rejected) and outcome.reason == "not a PE file (no MZ header)"


def test_too_large_is_rejected_with_the_limit() -> None:
    outcome = scan_file(str(BIN / "basic-x64-O2.sys"), ScanLimits(max_file_size=1000))
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("too large")
    assert "--max-size" in outcome.reason


def test_a_scan_goes_on_past_bad_files(tmp_path: Path) -> None:
    unreadable = tmp_path / "gone.sys"
    candidates = [Candidate(str(unreadable), True), *iter_candidates([BIN])]
    report = scan(candidates)
    assert len(report.drivers) == len(BUILT_FILES) + len(EXPECTED["variants"])
    reasons = {Path(r.path).name: r.reason for r in report.rejected}
    assert set(reasons) == {*EXPECTED["rejected"], "gone.sys"}
    assert reasons["gone.sys"].startswith("cannot read")


def test_image_without_pool_imports_is_skipped(tmp_path: Path) -> None:
    data = bytearray((BIN / "datatags-x64-O2.sys").read_bytes())
    for api in POOL_APIS:  # rename the imports: still a valid PE, no pool API any more
        data = bytearray(data.replace(api.encode(), b"X" * len(api)))
    outcome = analyse_image(bytes(data), "renamed.sys")
    assert isinstance(outcome, Skipped)
    assert outcome.reason == NO_POOL_IMPORTS
    path = tmp_path / "renamed.sys"
    path.write_bytes(bytes(data))
    walked = scan(iter_candidates([tmp_path]))
    assert (walked.skipped, walked.rejected) == (1, [])
    named = scan(iter_candidates([path]))  # a file the user named is reported, not silently dropped
    assert [r.reason for r in named.rejected] == [NO_POOL_IMPORTS]


# --- the bytes pass --------------------------------------------------------------------------------


def test_bytes_pass_finds_known_tags_in_data() -> None:
    outcome = scan_file(str(BIN / "datatags-x64-O2.sys"), known=KnownTags(["DatA", "Dtb1", "Nope", "Real"]))
    assert isinstance(outcome, DriverScan)
    found = confidences(outcome)
    assert found["DatA"] == "bytes"
    assert found["Dtb1"] == "bytes"
    assert found["Real"] == "call-site"  # the strongest evidence wins
    assert "Nope" not in found


def test_bytes_pass_matches_protected_immediates() -> None:
    data = (BIN / "basic-x64-O2.sys").read_bytes()
    assert b"Bpro" not in data  # only `tag | PROTECTED_POOL` is in the code
    assert set(KnownTags(["Bpro"]).find(data)) == {"Bpro"}


def test_known_tags_are_normalised() -> None:
    assert normalize_tag("Io") == "Io  "
    assert normalize_tag("\\x01Ab") == "\\x01Ab "
    assert normalize_tag("") is None
    assert normalize_tag("Toolong") is None
    known = KnownTags(["Io", "Io  ", "Abcd"])
    assert known.tags == ("Abcd", "Io  ")
    assert set(known.find(b"..Io  ..Abcd..Abcd")) == {"Io  ", "Abcd"}
    assert known.find(b"..Abcd..Abcd")["Abcd"].offsets == [2, 8]


def test_tag_shape() -> None:
    assert is_tag_shaped(int.from_bytes(b"Pool", "little"))
    assert is_tag_shaped(int.from_bytes(b"Ab1 ", "little"))
    assert is_tag_shaped(int.from_bytes(b"Bpr\xef", "little"))  # PROTECTED_POOL set
    assert not is_tag_shaped(int.from_bytes(b"Io  ", "little"))  # fewer than 3 alnum
    assert not is_tag_shaped(0x00000200)
    assert tag_text(int.from_bytes(b"\x01Ab ", "little")) == "\\x01Ab "


# --- call-site analysis on hand-assembled code -------------------------------------------------------

IAT = 0x3000  # RVA of the one import slot in the synthetic images below
ALLOC = {IAT: "ExAllocatePoolWithTag"}
FREE = {IAT: "ExFreePoolWithTag"}


def x64_call_iat(at: int) -> bytes:
    """call qword ptr [rip+IAT] placed at RVA `at`."""
    return b"\xff\x15" + struct.pack("<i", IAT - (at + 6))


def x64_tags(code: bytes, slots: dict[int, str] = ALLOC) -> list[str | None]:
    sites = find_call_sites("x64", 0x140000000, [CodeSection(".text", 0x1000, code)], slots).sites
    return [tag_text(s.tag) if s.tag is not None else None for s in sites]


def test_x64_mov_r8d_then_call() -> None:
    prologue = b"\x48\x83\xec\x28" + b"\xb9\x00\x02\x00\x00" + b"\xba\x40\x00\x00\x00"  # sub rsp; ecx; edx
    code = prologue + b"\x41\xb8Tag1"
    code += x64_call_iat(0x1000 + len(code)) + b"\x48\x83\xc4\x28\xc3"
    assert x64_tags(code) == ["Tag1"]


def test_x64_intervening_call_clobbers_r8() -> None:
    code = b"\x41\xb8Tag1" + b"\xe8\x00\x00\x00\x00"  # mov r8d, 'Tag1'; call next
    code += x64_call_iat(0x1000 + len(code)) + b"\xc3"
    assert x64_tags(code) == [None]


def test_x64_free_takes_the_tag_from_edx_not_r8() -> None:
    code = b"\x41\xb8Nop1" + b"\xbaFre1" + b"\x48\x89\xc1"  # r8d, edx, mov rcx, rax
    code += x64_call_iat(0x1000 + len(code)) + b"\xc3"
    assert x64_tags(code, FREE) == ["Fre1"]
    assert x64_tags(code, ALLOC) == ["Nop1"]


def test_x64_tag_through_a_register_and_the_protected_bit() -> None:
    code = b"\xb8" + struct.pack("<I", int.from_bytes(b"Reg1", "little") | 0x80000000)  # mov eax, imm
    code += b"\x41\x89\xc0"  # mov r8d, eax
    code += x64_call_iat(0x1000 + len(code)) + b"\xc3"
    assert x64_tags(code) == ["Reg1"]


@pytest.mark.parametrize(
    ("between", "tag"),
    [
        (b"", "Reg2"),
        (b"\x89\xc1", "Reg2"),  # mov ecx, eax: another register
        (b"\x83\xc3\x01", "Seg2"),  # add ebx, 1: the machine does the arithmetic
        (b"\x0f\xa2", None),  # cpuid writes ebx
        (b"\x87\xd9", None),  # xchg ecx, ebx
    ],
)
def test_x64_tag_kept_in_a_callee_saved_register(between: bytes, tag: str | None) -> None:
    code = b"\xbbReg2" + between + b"\x41\x89\xd8"  # mov ebx, 'Reg2'; ...; mov r8d, ebx
    code += x64_call_iat(0x1000 + len(code)) + b"\xc3"
    assert x64_tags(code) == [tag]


def test_x64_code_before_a_ret_does_not_leak_into_the_next_function() -> None:
    code = b"\x41\xb8Old1\xc3" + b"\xcc" * 3  # previous function: mov r8d; ret; padding
    code += b"\x48\x89\xca"  # mov rdx, rcx (r8 is a parameter here)
    code += x64_call_iat(0x1000 + len(code)) + b"\xc3"
    assert x64_tags(code) == [None]


def test_x64_bytes_that_only_look_like_a_call_are_not_sites() -> None:
    # mov eax, imm32 whose immediate happens to read FF 15 ...: the pattern sits inside an instruction
    code = b"\x41\xb8Tag1" + b"\x48\x8d\x05" + b"\x00\x00\x00\x00" + b"\xb8\x90\xff\x15" + b"\x00" * 8
    sites = find_call_sites("x64", 0x140000000, [CodeSection(".text", 0x1000, code)], ALLOC).sites
    assert [s.tag for s in sites if s.tag is not None] == []


def test_x86_third_push_back_is_the_tag() -> None:
    iat_va = 0x10000 + IAT
    code = b"\x68Tag3" + b"\x6a\x40" + b"\x6a\x00"  # push 'Tag3'; push 64; push 0
    code += b"\xff\x15" + struct.pack("<I", iat_va)  # call dword ptr [iat]
    code += b"\xc3"
    sites = find_call_sites("x86", 0x10000, [CodeSection(".text", 0x1000, code)], ALLOC).sites
    assert [tag_text(s.tag) for s in sites if s.tag] == ["Tag3"]
    # ExAllocatePool2 takes a 64-bit POOL_FLAGS first: its tag is the fourth push back
    code2 = b"\x68Tag4" + b"\x6a\x40" + b"\x6a\x00" + b"\x6a\x40" + b"\xff\x15" + struct.pack("<I", iat_va)
    sites = find_call_sites(
        "x86", 0x10000, [CodeSection(".text", 0x1000, code2)], {IAT: "ExAllocatePool2"}
    ).sites
    assert [tag_text(s.tag) for s in sites if s.tag] == ["Tag4"]


@pytest.mark.parametrize(
    ("between", "tag"),
    [
        (b"", "Psh1"),
        (b"\x50", "Psh1"),  # push eax before the tag's push
        (b"\x83\xc6\x01", "Qsh1"),  # add esi, 1: the machine does the arithmetic
        (b"\x46", None),  # inc esi: not modelled, so unknown
        (b"\xac", None),  # lodsb moves esi
        (b"\x5e", None),  # pop esi
    ],
)
def test_x86_tag_pushed_from_a_register(between: bytes, tag: str | None) -> None:
    code = b"\xbePsh1" + between + b"\x56" + b"\x6a\x40" + b"\x6a\x00"  # mov esi; ...; push esi; 64; 0
    code += b"\xff\x15" + struct.pack("<I", 0x10000 + IAT) + b"\xc3"
    sites = find_call_sites("x86", 0x10000, [CodeSection(".text", 0x1000, code)], ALLOC).sites
    assert [tag_text(s.tag) if s.tag else None for s in sites] == [tag]


def test_x86_byte_before_the_call_is_not_taken_for_a_rex_prefix() -> None:
    code = b"\x68Tag5" + b"\x6a\x40" + b"\x6a\x00" + b"\x40"  # ...; inc eax (0x40 is REX only on x64)
    code += b"\xff\x15" + struct.pack("<I", 0x10000 + IAT) + b"\xc3"
    sites = find_call_sites("x86", 0x10000, [CodeSection(".text", 0x1000, code)], ALLOC).sites
    assert [tag_text(s.tag) for s in sites if s.tag] == ["Tag5"]


def test_immediates_are_found_by_pattern() -> None:
    code = b"\x41\xb8Imm1" + b"\x68Imm2" + b"\xc7\x44\x24\x08Imm3" + b"\x81\xf9Imm4" + b"\xb8\x01\x02\x03\x04"
    found = {tag_text(v) for v in find_tag_immediates([CodeSection(".text", 0x1000, code)])}
    assert found == {"Imm1", "Imm2", "Imm3", "Imm4"}


def test_site_limit_truncates_with_a_note() -> None:
    code = b""
    for _ in range(10):
        code += b"\x41\xb8Tag1" + x64_call_iat(0x1000 + len(code) + 6)
    result = find_call_sites(
        "x64", 0x140000000, [CodeSection(".text", 0x1000, code)], ALLOC, limits=AnalysisLimits(max_sites=3)
    )
    assert len(result.sites) == 3
    assert result.truncated is not None and "3" in result.truncated


# --- which files -------------------------------------------------------------------------------------


def test_walk_takes_pe_suffixes_recursively_and_explicit_files_always(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.sys", "a/b/y.DLL", "a/notes.txt", "a/b/z.inf", "plain"):
        (tmp_path / name).write_bytes(b"")
    found = {(Path(c.path).relative_to(tmp_path).as_posix(), c.explicit) for c in iter_candidates([tmp_path])}
    assert found == {("a/x.sys", False), ("a/b/y.DLL", False)}
    explicit = list(iter_candidates([tmp_path / "plain", tmp_path / "plain", tmp_path / "a"]))
    assert [(Path(c.path).name, c.explicit) for c in explicit] == [
        ("plain", True),
        ("x.sys", False),
        ("y.DLL", False),
    ]


def test_default_candidates_on_a_fake_windows_tree(tmp_path: Path) -> None:
    root = tmp_path / "Windows"
    drivers = root / "System32" / "drivers"
    store = root / "System32" / "DriverStore" / "FileRepository" / "pkg.inf_amd64_1"
    for folder in (drivers, store):
        folder.mkdir(parents=True)
    (drivers / "a.sys").write_bytes(b"")
    (store / "b.sys").write_bytes(b"")
    loaded = [str(drivers / "a.sys"), str(tmp_path / "elsewhere.sys")]
    paths = [c.path for c in default_candidates(str(root), loaded)]
    assert paths == [str(drivers / "a.sys"), str(tmp_path / "elsewhere.sys"), str(store / "b.sys")]


def test_owner_candidates_for_the_tag_database() -> None:
    report = scan(iter_candidates([BIN / "ndis-x64-O2.sys"]))
    owners = {c.tag: c for c in owner_candidates(report)}
    assert owners["Nds1"].owner == "ndis-x64-O2.sys"
    assert owners["Nds1"].source == "scan"
    assert owners["Nds1"].confidence == "call-site"
    assert "NdisAllocateMemoryWithTag" in owners["Nds1"].description
    assert owners["Nds1"].driver is not None and owners["Nds1"].driver.company == "pooltop test fixtures"


# --- hostile input -----------------------------------------------------------------------------------

SEEDS = [
    (BIN / name).read_bytes() for name in ("basic-x64-O2.sys", "tailcall-i686-O2.sys", "ndis-x64-O0.sys")
]


@st.composite
def mutated_pe(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    # most edits land in the headers and tables (first 1 KiB), where parsers are most fragile
    for _ in range(draw(st.integers(1, 24))):
        limit = 0x400 if draw(st.booleans()) else len(data) - 1
        data[draw(st.integers(0, limit))] = draw(st.integers(0, 255))
    if draw(st.integers(0, 4)) == 0:
        del data[draw(st.integers(0x40, len(data))) :]
    if draw(st.integers(0, 6)) == 0:  # an absurd count or size somewhere in the optional header
        at = draw(st.integers(0x80, 0x200))
        data[at : at + 4] = draw(
            st.sampled_from([b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80"])
        )
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_pe())
def test_mutated_images_never_crash_or_hang(data: bytes) -> None:
    started = time.monotonic()
    outcome = analyse_image(data, "fuzz.sys", ScanLimits(max_seconds=5.0))
    assert time.monotonic() - started < 20  # bounded work per file (generous: shared CI machines)
    if isinstance(outcome, Rejected):
        assert outcome.reason and not outcome.reason.startswith("internal error"), outcome.reason
    elif isinstance(outcome, DriverScan):
        for finding in outcome.findings():
            assert finding.confidence in ("call-site", "immediate")
            assert len(finding.tag) >= 4


def test_time_budget_gives_a_partial_result_with_a_note() -> None:
    result = find_call_sites(
        "x64",
        0x140000000,
        [CodeSection(".text", 0x1000, b"\x41\xb8Tag1" + x64_call_iat(0x1006))],
        ALLOC,
        limits=AnalysisLimits(deadline=time.monotonic() - 1),
    )
    assert result.truncated is not None and result.truncated.startswith("time budget")
    outcome = analyse(name="basic-x64-O2.sys", limits=ScanLimits(max_seconds=-1))
    assert isinstance(outcome, DriverScan) and outcome.partial
