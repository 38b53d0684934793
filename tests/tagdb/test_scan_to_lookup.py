"""A driver scan's findings reach `tags lookup` through the cache, without rescanning."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from pooltop.tagdb.command import tags
from pooltop.tagdb.findings import cached_owner_candidates

DRIVERS = os.path.join(os.path.dirname(__file__), "..", "data", "drivers")


def test_scanned_tags_are_found_by_lookup(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "scan-cache.sqlite"
    with open(os.path.join(DRIVERS, "expected.json")) as f:
        expected = json.load(f)
    monkeypatch.setattr("pooltop.tagdb.cache.default_cache_path", lambda: cache)
    monkeypatch.setenv("HOME", str(tmp_path))  # no overlay of the machine's user
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    runner = CliRunner()
    out = runner.invoke(tags, ["scan", os.path.join(DRIVERS, "bin"), "--format", "json"])
    assert out.exit_code == 0, out.output
    scanned = json.loads(out.stdout)["drivers"]
    call_site = {(t["tag"], d["name"]) for d in scanned for t in d["tags"] if t["confidence"] == "call-site"}
    assert call_site, "the fixture drivers have call-site tags"
    assert expected  # the hand-written expectations exist

    found = cached_owner_candidates(cache)
    assert {(c.tag, c.owner) for c in found if c.confidence == "call-site"} == call_site
    tag, driver = sorted(call_site)[0]
    out = runner.invoke(tags, ["lookup", tag, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert driver in out.stdout and "scan" in out.stdout


def test_no_cache_no_answers(tmp_path) -> None:
    assert cached_owner_candidates(tmp_path / "missing.sqlite") == []
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database")
    assert cached_owner_candidates(bad) == []
