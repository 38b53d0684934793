"""The one owner lookup (tagdb/owners.py): text files, wildcards, the scan cache, SLUB aliases, a
broken database, and the one JSON form of a candidate.

Tag files are written inline with invented tags; the scan cache is a SQLite file built here with
plain sqlite3 and JSON (the scanner's cache layout, written without the scanner). The overlay, the
Windows Kits folders and the working directory point into tmp_path.
"""

from __future__ import annotations

import json
import sqlite3
import types
from pathlib import Path

import pytest

from pooltop.errors import PooltopError
from pooltop.model import Pool
from pooltop.tagdb import DriverFacts, OwnerCandidate
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb.owners import (
    SLAB_SOURCE,
    candidate_from_json,
    candidate_to_json,
    live_owner_lookup,
    owner_lookup,
    recorded_first,
)

TAGS = "Zqab - zqdrv.sys - adapter blocks\nZqa? - zqdrv.sys - family\nAml* - acpi.sys - AML\n"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pt, "default_overlay_path", lambda: tmp_path / "config" / "tags.txt")
    for var in ("ProgramFiles(x86)", "ProgramFiles", "ProgramW6432"):
        monkeypatch.setenv(var, str(tmp_path / "no-kits"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # no scan cache of this machine's user
    monkeypatch.setattr("pooltop.tagdb.cache.default_cache_path", lambda: tmp_path / "no-cache.sqlite3")
    (tmp_path / "tags.txt").write_text(TAGS)
    return tmp_path


def write_scan_cache(path: Path, driver_path: str, tag: str, confidence: str) -> None:
    """One driver scan row, the way `pooltop tags scan` leaves it in its cache."""
    result = {
        "kind": "driver",
        "path": driver_path,
        "facts": {"file_version": "1.2.3.4", "company": "Zq Corp", "product": None, "signed": True,
                  "arch": "x64"},
        "tags": [{"tag": tag, "confidence": confidence, "site_count": 2,
                  "sites": [{"rva": "0x1000", "api": "ExAllocatePool2"}]}],
        "notes": [],
        "unresolved_sites": 0,
    }
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE scans (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                "fingerprint TEXT, result TEXT, scanned_at REAL)")
    con.execute("INSERT INTO scans VALUES (?, 1, 1, 'v1', ?, 0)", (driver_path, json.dumps(result)))
    con.commit()
    con.close()


def test_exact_and_wildcard_entries_of_a_tagfile(isolated: Path) -> None:
    lookup = owner_lookup("windows-pooltag", [isolated / "tags.txt"])
    exact = lookup("Zqab", Pool.NONPAGED)
    assert [(c.owner, c.confidence) for c in exact] == [("zqdrv.sys", "exact"), ("zqdrv.sys", "wildcard")]
    (wild,) = lookup("Zqaz", Pool.PAGED)
    assert (wild.tag, wild.pattern, wild.description) == ("Zqaz", "Zqa?", "family")
    (star,) = lookup("AmlX", Pool.PAGED)
    assert star.owner == "acpi.sys" and star.pattern == "Aml*"
    assert list(lookup("Nope", Pool.PAGED)) == []


def test_the_scan_cache_names_owners_without_a_rescan(isolated: Path) -> None:
    cache = isolated / "scan-cache.sqlite3"
    write_scan_cache(cache, str(isolated / "zqnet.sys"), "Zqnt", "call-site")
    (found,) = owner_lookup("windows-pooltag", scan_cache=cache)("Zqnt", Pool.NONPAGED)
    assert (found.owner, found.source, found.confidence) == ("zqnet.sys", "scan", "call-site")
    assert found.driver is not None and found.driver.company == "Zq Corp"


def test_the_default_scan_cache_is_read_too(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = isolated / "default-cache.sqlite3"
    write_scan_cache(cache, str(isolated / "zqnet.sys"), "Zqnt", "immediate")
    monkeypatch.setattr("pooltop.tagdb.cache.default_cache_path", lambda: cache)
    found = owner_lookup("windows-pooltag")("Zqnt", Pool.PAGED)
    assert [(c.owner, c.confidence) for c in found] == [("zqnet.sys", "immediate")]


def test_slab_rows_get_descriptions_and_their_alias_group(isolated: Path) -> None:
    cache = isolated / "scan-cache.sqlite3"
    write_scan_cache(cache, str(isolated / "zqnet.sys"), "dentry", "call-site")  # never for slab rows
    lookup = owner_lookup(SLAB_SOURCE, aliases={"dentry": ("zq_cache", "zq_other")}, scan_cache=cache)
    found = lookup("dentry", Pool.SLAB)
    assert all(c.source == "slab" for c in found)
    assert any("zq_cache" in c.description and "zq_other" in c.description for c in found)
    assert not any("SLUB merged" in c.description for c in lookup("inode_cache", Pool.SLAB))


def test_aliases_can_follow_the_latest_sample(isolated: Path) -> None:
    latest: dict[str, tuple[str, ...]] = {}
    lookup = owner_lookup(SLAB_SOURCE, aliases=lambda: latest)
    assert not any("SLUB merged" in c.description for c in lookup("zq_a", Pool.SLAB))
    latest["zq_a"] = ("zq_b",)
    assert any("zq_b" in c.description for c in lookup("zq_a", Pool.SLAB))


def test_a_broken_database_warns_once_and_hides_the_owners(isolated: Path) -> None:
    said: list[str] = []
    assert live_owner_lookup("windows-pooltag", [isolated / "missing.txt"], warn=said.append) is None
    assert len(said) == 1 and "tag database not loaded" in said[0] and "missing.txt" in said[0]
    with pytest.raises(PooltopError, match=r"missing\.txt"):
        owner_lookup("windows-pooltag", [isolated / "missing.txt"])


def test_a_working_database_says_nothing(isolated: Path) -> None:
    said: list[str] = []
    lookup = live_owner_lookup("windows-pooltag", [isolated / "tags.txt"], warn=said.append)
    assert lookup is not None and lookup("Zqab", Pool.PAGED)[0].owner == "zqdrv.sys"
    assert said == []


def test_recorded_owners_come_first() -> None:
    mine = OwnerCandidate("Zqab", "recorded.sys", "", "pooltag.txt", "exact")
    here = OwnerCandidate("Zqab", "local.sys", "", "pooltag.txt", "exact")
    lookup = recorded_first({("Zqab", int(Pool.PAGED)): [mine]}, lambda tag, pool: [here])
    assert list(lookup("Zqab", Pool.PAGED)) == [mine]
    assert list(lookup("Zqab", Pool.NONPAGED)) == [here]
    assert list(recorded_first({}, None)("Zqab", Pool.PAGED)) == []


def test_the_json_form_of_a_candidate() -> None:
    driver = DriverFacts(path="C:\\zq.sys", file_version="1.0", company=None, signed=False, arch="x64")
    c = OwnerCandidate("Zqab", "zq.sys", "blocks", "scan", "call-site", driver, None)
    assert candidate_to_json(c) == {
        "owner": "zq.sys", "description": "blocks", "source": "scan", "confidence": "call-site",
        "driver": {"path": "C:\\zq.sys", "file_version": "1.0", "signed": False, "arch": "x64"},
    }
    wild = OwnerCandidate("Zqaz", "zq.sys", "family", "pooltag.txt", "wildcard", pattern="Zqa?")
    assert candidate_to_json(wild) == {"owner": "zq.sys", "description": "family", "source": "pooltag.txt",
                                       "confidence": "wildcard", "pattern": "Zqa?"}
    assert candidate_from_json("Zqab", json.loads(json.dumps(candidate_to_json(c)))) == c
    assert candidate_from_json("Zqaz", json.loads(json.dumps(candidate_to_json(wild)))) == wild


def test_foreign_json_is_read_without_trusting_it() -> None:
    c = candidate_from_json("Zqab", {"owner": 5, "driver": {"company": "no path"}, "pattern": 7})
    assert (c.owner, c.description, c.driver, c.pattern) == ("5", "", None, None)


def test_scan_rows_of_relative_paths_name_no_owner(isolated: Path) -> None:
    # rows of pooltop before the cache was keyed by absolute path: which folder they meant is lost
    cache = isolated / "scan-cache.sqlite3"
    write_scan_cache(cache, "drivers/zqnet.sys", "Zqnt", "call-site")
    assert list(owner_lookup("windows-pooltag", scan_cache=cache)("Zqnt", Pool.NONPAGED)) == []


class _FakeSlabSource:
    name = SLAB_SOURCE

    def close(self) -> None:
        pass


class _FakeApp:
    """What run_live needs of the app: run(), and the sample on screen (pool_model.sample)."""

    def __init__(self, owners: object) -> None:
        self.owners = owners
        self.pool_model = types.SimpleNamespace(sample=None)

    def run(self) -> None:
        pass


def _run_live_capturing(monkeypatch: pytest.MonkeyPatch) -> _FakeApp:
    import pooltop.app as app_pkg
    import pooltop.native as native

    made: list[_FakeApp] = []

    def create_app(source: object, **kwargs: object) -> _FakeApp:
        made.append(_FakeApp(kwargs["owners"]))
        return made[-1]

    monkeypatch.setattr(native, "open_source", lambda platform=None: _FakeSlabSource())
    monkeypatch.setattr(app_pkg, "create_app", create_app)
    monkeypatch.setattr(app_pkg, "default_process_source", lambda: None)
    app_pkg.run_live(interval=1.0)
    return made[0]


def test_the_live_view_uses_the_one_lookup_with_the_aliases_on_screen(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run_live_capturing(monkeypatch)
    assert callable(app.owners)
    assert not any("SLUB merged" in c.description for c in app.owners("zq_a", Pool.SLAB))
    snapshot = types.SimpleNamespace(aliases={"zq_a": ("zq_b",)})
    app.pool_model.sample = types.SimpleNamespace(snapshot=snapshot)
    assert any("zq_b" in c.description for c in app.owners("zq_a", Pool.SLAB))


def test_the_live_view_runs_without_owners_when_the_database_breaks(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise PooltopError("cannot read tag file tags.txt: Permission denied")

    monkeypatch.setattr("pooltop.tagdb.owners.TagDatabase.load", broken)
    app = _run_live_capturing(monkeypatch)
    assert app.owners is None  # the Owner column hides
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tag database not loaded" in err and "Permission denied" in err
