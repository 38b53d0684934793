"""Exports read back: JSON and CSV round trips, schema versions, file kinds, references, UI exports."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, HOST, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput, PooltopError
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals, escape_tag
from pooltop.record import RecordingWriter
from pooltop.snapshots.export import EXPORT_DIR_ENV, EXPORT_FORMAT_ENV, export_snapshot
from pooltop.snapshots.readers import (
    FileKind,
    detect_kind,
    load_snapshot,
    load_snapshots,
    snapshot_from_csv,
    snapshot_from_json,
)
from pooltop.snapshots.writers import format_csv, format_json, format_text
from pooltop.tracking import Tracker

TREE = os.path.join(DATA, "linux", "vm-6.18")
NP, PG, SS = int(Pool.NONPAGED), int(Pool.PAGED), int(Pool.SESSION)
ODD_TAGS = ["Io  ", " rx ", "A\\x00b\\x7f", "\\x5cx", "Q,\"z", "Ntf\\xe9", "a b "]


def odd_snapshot() -> Snapshot:
    rows = [(t, [NP, PG, SS][i % 3], 1000 * i + 7, 900 * i, 40 * i + 1) for i, t in enumerate(ODD_TAGS)]
    rows.append(("Wrap", NP, (1 << 32) - 5, (1 << 32) - 9, 123))
    snap = make_snapshot(rows)
    extra = {"session_id": np.array([-1] * len(rows), dtype=np.int64)}
    c = snap.counters
    counters = CounterSet.build(c.tags, c.pools, c.allocs, c.frees, c.diff, c.bytes, extra)
    return Snapshot(
        source="windows-pooltag",
        taken_at=dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC),
        monotonic_ns=5,
        host=HostInfo("srv01", "Windows", "10.0.26100", "AMD64", uptime_s=12.5, build="26100.1"),
        totals=Totals(paged_pool=1 << 30, nonpaged_pool=1 << 29, commit=5, commit_limit=9,
                      memory_available=77),
        counters=counters,
        warnings=("a degraded backend said so",),
    )


def same_counters(a: Snapshot, b: Snapshot) -> None:
    ca, cb = a.counters, b.counters
    assert ca.tags == cb.tags
    for col in ("pools", "allocs", "frees", "diff", "bytes"):
        assert np.array_equal(getattr(ca, col), getattr(cb, col)), col
    assert set(ca.extra) == set(cb.extra)
    for k in ca.extra:
        assert np.array_equal(ca.extra[k], cb.extra[k]), k
    assert ca.has_alloc_counts == cb.has_alloc_counts


def test_json_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = odd_snapshot()
    path = tmp_path / "s.json"
    path.write_text(format_json(snap), encoding="utf-8")
    back = load_snapshot(str(path))
    same_counters(snap, back)
    assert back.counters.counter_bits == 32
    assert back.host == snap.host and back.totals == snap.totals
    assert back.taken_at == snap.taken_at and back.source == snap.source
    assert back.warnings == snap.warnings
    assert "A\\x00b\\x7f" in back.counters.tags and "Io  " in back.counters.tags


def test_csv_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = odd_snapshot()
    path = tmp_path / "s.csv"
    path.write_text(format_csv(snap), encoding="utf-8")
    back = load_snapshot(str(path))
    same_counters(snap, back)
    assert back.source == "windows-pooltag"
    assert any("no host, totals or time" in w for w in back.warnings)


def test_linux_export_round_trips_through_the_cli(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for fmt in ("json", "csv"):
        out = tmp_path / f"linux.{fmt}"
        code, _, err = run("snapshot", "--root", TREE, "--format", fmt, "-o", str(out))
        assert code == 0, err
        back = load_snapshot(str(out))
        assert back.source == "linux-slab" and not back.counters.has_alloc_counts
        assert "object_size" in back.counters.extra
        live = json.loads(run("snapshot", "--root", TREE, "--format", "json")[1])
        by_tag = {c["tag"]: c for c in live["counters"]}
        for r in back.rows():
            assert (r.diff, r.bytes, r.extra["object_size"]) == (
                by_tag[r.tag]["diff"], by_tag[r.tag]["bytes"], by_tag[r.tag]["object_size"])
        if fmt == "json":
            assert back.host.name == live["host"]["name"] and back.totals.slab == live["totals"]["slab"]
            assert any(back.aliases.values())


def test_exports_with_change_columns_and_leak_levels_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    a = make_snapshot([("Aaaa", NP, 10, 5, 100), ("Gone", PG, 1, 0, 8)], 0.0)
    b = make_snapshot([("Aaaa", NP, 20, 5, 300), ("Newx", PG, 3, 1, 64)], 2.0)
    tracker.update(a)
    sample = tracker.update(b)
    for name, fmt in (("c.json", format_json), ("c.csv", format_csv)):
        p = tmp_path / name
        p.write_text(fmt(b, None, changes=sample.interval, leak=sample.leak), encoding="utf-8")
        same_counters(b, load_snapshot(str(p)))


@given(
    tags=st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=12, unique=True),
    seed=st.integers(0, 1000),
)
@settings(max_examples=40, deadline=None)
def test_round_trip_property(tmp_path_factory, tags: list[bytes], seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    texts = list(dict.fromkeys(escape_tag(t) for t in tags))
    rows = [(t, int(rng.integers(0, 3)), int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 32)),
             int(rng.integers(0, 1 << 40))) for t in texts]
    snap = make_snapshot(rows)
    folder = tmp_path_factory.mktemp("rt")
    for name, fmt in (("p.json", format_json), ("p.csv", format_csv)):
        p = folder / name
        p.write_text(fmt(snap), encoding="utf-8")
        same_counters(snap, load_snapshot(str(p)))


# --- schema versions and damaged input ------------------------------------------------------------


def test_unknown_major_schema_is_refused_clearly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(format_json(odd_snapshot()))
    doc["schema"] = "pooltop.snapshot/2"
    with pytest.raises(BadInput, match=r"pooltop.snapshot/2; this pooltop reads pooltop.snapshot/1 .*newer"):
        snapshot_from_json(doc, "new.json")
    doc["schema"] = "pooltop.snapshot/1.3"  # a compatible addition
    assert len(snapshot_from_json(doc).counters) == len(ODD_TAGS) + 1
    doc["schema"] = "something.else/1"
    with pytest.raises(BadInput, match="not a pooltop snapshot"):
        snapshot_from_json(doc)


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("counters"),
    lambda d: d["counters"][0].__setitem__("bytes", "many"),
    lambda d: d["counters"][0].__setitem__("pool", "swimming"),
    lambda d: d["counters"][0].__setitem__("allocs", 1 << 70),
    lambda d: d.__setitem__("taken_at", "yesterday"),
    lambda d: d["counters"].append(7),
])
def test_damaged_json_is_bad_input(mutate) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(format_json(odd_snapshot()))
    mutate(doc)
    with pytest.raises(BadInput):
        snapshot_from_json(doc, "x.json")


def test_damaged_csv_is_bad_input() -> None:
    good = format_csv(odd_snapshot())
    with pytest.raises(BadInput, match="no column"):
        snapshot_from_csv("tag,pool,allocs\nA,paged,1\n")
    with pytest.raises(BadInput, match="not a number"):
        snapshot_from_csv(good.replace("nonpaged,7,0,", "nonpaged,lots,0,", 1))
    with pytest.raises(BadInput, match="fields"):
        snapshot_from_csv(good.splitlines()[0] + "\nIo  ,paged\n")


@pytest.mark.parametrize("content", [b"", b"   \n", b"{not json", b"\x00\x01\x02garbage"])
def test_unreadable_files(tmp_path, content: bytes) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(BadInput):
        load_snapshot(str(p))


# --- kinds and references -------------------------------------------------------------------------


def test_kinds_by_content_not_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = odd_snapshot()
    (tmp_path / "a.csv").write_text(format_json(snap))
    (tmp_path / "b.json").write_text(format_csv(snap))
    assert detect_kind(str(tmp_path / "a.csv")) is FileKind.SNAPSHOT_JSON
    assert detect_kind(str(tmp_path / "b.json")) is FileKind.SNAPSHOT_CSV
    (tmp_path / "t.txt").write_text(format_text(snap))
    with pytest.raises(BadInput, match="text table"):
        load_snapshot(str(tmp_path / "t.txt"))


def test_recording_references(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec = str(tmp_path / "r@x.db")  # an '@' in the name itself
    snaps = [make_snapshot([("Grow", NP, i, 0, 100 * i)], float(i)) for i in range(4)]
    with RecordingWriter(rec, snaps[0]) as w:
        for s in snaps:
            w.append(s)
    assert detect_kind(rec) is FileKind.RECORDING
    assert load_snapshot(rec + "@0").counters.bytes.tolist() == [0]
    assert load_snapshot(rec + "@-1").counters.bytes.tolist() == [300]
    assert load_snapshot(rec + "@2").counters.bytes.tolist() == [200]
    assert load_snapshot(rec).counters.bytes.tolist() == [300]
    assert len(load_snapshots(rec)) == 4
    with pytest.raises(BadInput, match="has 4 samples"):
        load_snapshot(rec + "@9")
    with pytest.raises(PooltopError, match="does not exist"):
        load_snapshot(str(tmp_path / "nope.db@1"))


# --- the UI's export ------------------------------------------------------------------------------


def test_export_snapshot_defaults_env_and_names(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    snap = odd_snapshot()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(EXPORT_DIR_ENV, raising=False)
    monkeypatch.delenv(EXPORT_FORMAT_ENV, raising=False)
    first = export_snapshot(snap)
    assert first == os.path.join(str(tmp_path), "pooltop-srv01-20260304-050607.json")
    second = export_snapshot(snap)
    assert second.endswith("pooltop-srv01-20260304-050607-2.json")  # never replaces an earlier export
    same_counters(snap, load_snapshot(first))

    out = tmp_path / "exports"
    out.mkdir()
    monkeypatch.setenv(EXPORT_DIR_ENV, str(out))
    monkeypatch.setenv(EXPORT_FORMAT_ENV, "csv")
    p = export_snapshot(snap)
    assert os.path.dirname(p) == str(out) and p.endswith(".csv")
    same_counters(snap, load_snapshot(p))
    assert export_snapshot(snap, str(out), "text").endswith(".txt")
    assert sorted(os.listdir(out)) == sorted(os.path.basename(x) for x in (p, p[:-4] + ".txt"))

    tracker = Tracker()
    tracker.update(make_snapshot([("Aaaa", NP, 1, 0, 10)], 0.0))
    sample = tracker.update(make_snapshot([("Aaaa", NP, 5, 0, 50)], 1.0))
    doc = json.loads(Path(export_snapshot(sample, str(out), "json")).read_text())
    assert doc["counters"][0]["change"]["bytes"] == 40 and doc["host"]["name"] == HOST.name


def test_export_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = odd_snapshot()
    with pytest.raises(PooltopError, match="unknown export format"):
        export_snapshot(snap, str(tmp_path), "xml")
    with pytest.raises(PooltopError, match="not a folder"):
        export_snapshot(snap, str(tmp_path / "missing"), "json")
    assert os.listdir(tmp_path) == []


def test_export_never_leaves_a_partial_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pooltop.snapshots.writers as formats

    snap = odd_snapshot()
    good = export_snapshot(snap, str(tmp_path), "json")
    before = Path(good).read_text()

    real_fsync = os.fsync

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(PooltopError, match="No space left"):
        export_snapshot(snap, str(tmp_path), "json")
    monkeypatch.setattr(os, "fsync", real_fsync)
    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setitem(formats.FORMATTERS, "json", boom)
    with pytest.raises(RuntimeError):
        export_snapshot(snap, str(tmp_path), "json")
    assert os.listdir(tmp_path) == [os.path.basename(good)]  # no temp file, no half file
    assert Path(good).read_text() == before
