"""The vendor bundle: every part there and readable, commands name the suspects, atomic writes."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import DATA, make_snapshot

from pooltop.errors import PooltopError
from pooltop.judge import JudgeThresholds
from pooltop.model import Pool
from pooltop.record import RecordingWriter
from pooltop.report.render import build_report
from pooltop.share.bundle import BundleInputs, BundlePart, assemble, make_bundle, write_bundle
from pooltop.snapshots.readers import load_snapshot
from pooltop.snapshots.writers import format_json
from pooltop.tagdb import DriverFacts, OwnerCandidate
from pooltop.who.capture import linux_commands, windows_commands

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)
TREE = os.path.join(DATA, "linux", "vm-6.18")
DRIVER = DriverFacts(path=r"C:\Windows\System32\drivers\leaky.sys", file_version="2.4.1.7",
                     company="Leaky Devices Ltd", product="Leaky NIC", signed=True, arch="x64")


def owners(tag: str, pool: Pool) -> list[OwnerCandidate]:
    if tag.startswith("Lk"):
        return [OwnerCandidate(tag, "leaky.sys", "Leaky NIC buffers", "scan", "call-site", driver=DRIVER)]
    return []


def leaky_recording(path: str) -> None:
    snaps = [
        make_snapshot([("Lk1x", NP, 100 * i, 5 * i, 400_000 * i), ("Io  ", NP, 50, 40, 8192),
                       ("Lk2y", PG, 10 * i, 0, 300_000 * i), ("Saw ", NP, 7, 7, 4096 if i % 2 else 0)],
                      float(300 * i))
        for i in range(12)
    ]
    with RecordingWriter(path, snaps[0], interval_s=300.0,
                         owners={("Lk1x", NP): owners("Lk1x", Pool.NONPAGED)}) as w:
        for s in snaps:
            w.append(s)


def open_bundle(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return {name: z.read(name) for name in z.namelist()}


def check_readme_names_every_file(parts: dict[str, bytes]) -> str:
    readme = parts["README.txt"].decode("utf-8")
    for name in parts:
        assert name in readme, name
    return readme


def test_bundle_with_a_recording_has_every_part(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)
    out = str(tmp_path / "evidence.zip")
    snap_file = tmp_path / "now.json"
    snap_file.write_text(format_json(load_snapshot(rec)))
    code, _, err = run("bundle", "-o", out, "--recording", rec, "--snapshot", str(snap_file))
    assert code == 0, err
    parts = open_bundle(out)
    assert set(parts) == {"README.txt", "snapshot.json", "snapshot.txt", "report.txt", "report.json",
                          "report.html", "facts.json", "capture/xperf-pool.cmd", "capture/pool.wprp"}
    readme = check_readme_names_every_file(parts)
    snap = json.loads(parts["snapshot.json"])
    assert snap["schema"] == "pooltop.snapshot/1" and {c["tag"] for c in snap["counters"]} >= {"Lk1x", "Lk2y"}
    report = json.loads(parts["report.json"])
    assert report["schema"] == "pooltop.report/1" and report["suspects"][0]["verdict"] == "leak"
    assert parts["report.html"].startswith(b"<!doctype html>") and b"Lk1x" in parts["report.html"]
    assert b"Lk1x" in parts["report.txt"] and b"Lk1x" in parts["snapshot.txt"]
    facts = json.loads(parts["facts.json"])
    assert facts["host"]["name"] == "testhost" and facts["recording"]["samples"] == 12
    suspects = {s["tag"]: s for s in facts["suspects"]}
    assert set(suspects) == {"Lk1x", "Lk2y"}  # the report's leaks, not the flat or saw-tooth tags
    lk = suspects["Lk1x"]
    assert lk["why"] == "report verdict: leak" and lk["analysis"]["verdict"] == "leak"
    drv = lk["owners"][0]["driver"]
    assert (drv["path"], drv["file_version"], drv["company"], drv["signed"]) == (
        DRIVER.path, "2.4.1.7", "Leaky Devices Ltd", True)
    assert "leaky.sys" in readme and "version 2.4.1.7" in readme and "signed" in readme
    cmd = parts["capture/xperf-pool.cmd"].decode()
    assert "-PoolTag Lk1x+Lk2y" in cmd and "PoolAlloc+PoolFree+PoolAllocSession+PoolFreeSession" in cmd
    assert "xperf -d pool.etl" in cmd and "\r\n" in cmd
    wprp = parts["capture/pool.wprp"].decode()
    assert '<PoolTag Value="Lk1x"/>' in wprp and '<PoolTag Value="Lk2y"/>' in wprp
    assert '<Keyword Value="Pool"/>' in wprp and '<Stack Value="PoolAllocation"/>' in wprp
    import xml.dom.minidom

    xml.dom.minidom.parseString(wprp)  # well-formed
    assert sorted(os.listdir(tmp_path)) == ["evidence.zip", "now.json", "rec.db"]  # nothing else written


def test_bundle_of_a_linux_snapshot_names_the_caches(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "linux.zip")
    code, _, err = run("bundle", "-o", out, "--root", TREE, "--tag", "dentry", "--tag", "kmalloc-256")
    assert code == 0, err
    parts = open_bundle(out)
    assert set(parts) == {"README.txt", "snapshot.json", "snapshot.txt", "facts.json",
                          "capture/linux-slab.sh"}
    readme = check_readme_names_every_file(parts)
    assert "no leak verdict" in readme
    script = parts["capture/linux-slab.sh"].decode()
    assert '$n == "dentry"' in script and '$n == "kmalloc-256"' in script
    assert "args->bytes_alloc == 256" in script
    assert "perf record" in script and "kmem:kmem_cache_alloc" in script
    facts = json.loads(parts["facts.json"])
    assert {s["tag"] for s in facts["suspects"]} == {"dentry", "kmalloc-256"}
    assert facts["source"] == "linux-slab"


def test_bundle_without_recording_or_tags_lists_the_largest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = make_snapshot([("Big1", NP, 9, 1, 9_000_000), ("Mid2", PG, 5, 1, 50_000), ("Tiny", NP, 1, 0, 16)])
    parts = {p.name: p for p in assemble(BundleInputs(snap, "taken live", max_suspects=2, owners=owners))}
    facts = json.loads(parts["facts.json"].data)
    assert [s["tag"] for s in facts["suspects"]] == ["Big1", "Mid2"]
    assert all("not a leak verdict" in s["why"] for s in facts["suspects"])
    assert "-PoolTag Big1+Mid2" in parts["capture/xperf-pool.cmd"].data.decode()


def test_html_degrades_to_text_and_json_without_matplotlib(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)
    report = build_report(rec, JudgeThresholds())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    parts = {p.name: p for p in assemble(BundleInputs(load_snapshot(rec), "test", report, "rec.db"))}
    assert "report.html" not in parts and {"report.txt", "report.json"} <= set(parts)
    readme = parts["README.txt"].data.decode()
    assert "report.html is missing" in readme and "matplotlib" in readme


def test_without_matplotlib_the_terminal_hears_of_the_missing_page(run, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = str(tmp_path / "b.zip")
    code, _, err = run("bundle", "-o", out, "--recording", rec, "--snapshot", f"{rec}@-1")
    assert code == 0
    warned = [line for line in err.splitlines() if "report.html" in line]
    assert len(warned) == 1 and warned[0].startswith("pooltop: warning: ") and "matplotlib" in warned[0]
    assert "report.html" not in open_bundle(out)


def test_a_tag_that_matches_nothing_is_said_on_the_terminal(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)
    out = str(tmp_path / "b.zip")
    code, _, err = run("bundle", "-o", out, "--recording", rec, "--snapshot", f"{rec}@-1", "--tag", "nosuch",
                       "--tag", "Lk1*")
    assert code == 0
    assert [line for line in err.splitlines() if "nosuch" in line] == [
        "pooltop: warning: --tag nosuch: no such tag in the snapshot or the report; "
        "the capture commands still name it"
    ]
    facts = json.loads(open_bundle(out)["facts.json"])
    assert [s["tag"] for s in facts["suspects"]] == ["nosuch", "Lk1x"]


def test_capture_commands_refuse_unsafe_tags_and_cap_at_four() -> None:
    win = windows_commands(["Ab&c", "Io  ", "A\\x01b", "T1", "T2", "T3", "T4"])
    cmd = win.files[0].text
    assert "-PoolTag Io+T1+T2+T3 " in cmd and "Ab&c" not in cmd
    assert any("Ab&c" in n for n in win.notes) and any("at most 4" in n and "T4" in n for n in win.notes)
    lin = linux_commands([("dentry", 192), ("bad'name", 64)])
    script = lin.files[0].text
    assert "bad'name" not in script and any("bad'name" in n for n in lin.notes)
    assert "bytes_req == 192" in script


# --- atomic writes ----------------------------------------------------------------------------------


def test_a_failure_midway_leaves_no_file_and_the_old_one_intact(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "b.zip")
    snap = make_snapshot([("Lk1x", NP, 9, 1, 9000)])
    make_bundle(out, BundleInputs(snap, "first"))
    before = Path(out).read_bytes()

    calls = {"n": 0}
    real = zipfile.ZipFile.writestr

    def failing(self, info, data, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, info, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(PooltopError, match="No space left"):
        make_bundle(out, BundleInputs(snap, "second"))
    assert calls["n"] == 3
    assert os.listdir(tmp_path) == ["b.zip"]  # no temporary file left behind
    assert Path(out).read_bytes() == before  # the earlier bundle is untouched

    monkeypatch.setattr(zipfile.ZipFile, "writestr", real)
    fresh = str(tmp_path / "new.zip")
    monkeypatch.setattr("pooltop.share.bundle.render_text", lambda *a, **k: 1 / 0)
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)
    with pytest.raises(ZeroDivisionError):
        make_bundle(fresh, BundleInputs(snap, "x", build_report(rec, JudgeThresholds())))
    assert not os.path.exists(fresh)


@pytest.mark.parametrize("name", ["../evil.txt", "/abs.txt", "a/../../b", "C:/x", "dir\\x", ""])
def test_members_never_point_outside_the_zip(tmp_path, name: str) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "x.zip")
    with pytest.raises(PooltopError, match="refusing"):
        write_bundle(out, [BundlePart("README.txt", b"hi", ""), BundlePart(name, b"x", "")])
    assert os.listdir(tmp_path) == []


def test_cli_refuses_to_overwrite_an_input_and_reports_errors(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap_file = tmp_path / "s.json"
    snap_file.write_text(format_json(make_snapshot([("Aaaa", NP, 1, 0, 1)])))
    code, _, err = run("bundle", "-o", str(snap_file), "--snapshot", str(snap_file))
    assert code == 2 and "overwrite an input" in err
    code, _, err = run("bundle", "-o", str(tmp_path / "no" / "b.zip"), "--snapshot", str(snap_file))
    assert code == 1 and err.startswith("pooltop: ") and "does not exist" in err
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


def test_a_recording_of_another_machine_brings_its_own_snapshot(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "rec.db")
    leaky_recording(rec)  # recorded on "testhost", a Windows machine; this one is not it
    out = str(tmp_path / "b.zip")
    code, _, err = run("bundle", "-o", out, "-r", rec)
    assert code == 0, err
    assert "using the recording's last sample" in err
    parts = open_bundle(out)
    facts = json.loads(parts["facts.json"])
    assert facts["snapshot"]["origin"] == "the last sample of rec.db" and facts["host"]["name"] == "testhost"
    assert "capture/xperf-pool.cmd" in parts  # commands for the recorded machine's OS
