"""The scan cache: hits, misses, rescans on change, corrupt and shared cache files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pooltop.tagdb.bytesearch import KnownTags
from pooltop.tagdb.cache import ScanCache, default_cache_path
from pooltop.tagdb.candidates import iter_candidates
from pooltop.tagdb.scanner import ScanLimits, scan

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = ROOT / "tests" / "data" / "drivers" / "bin"
SAMPLE = ("basic-x64-O2.sys", "tailcall-i686-Os.sys", "datatags-x64-O0.sys", "bad-truncated.sys")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "drivers"
    folder.mkdir()
    for name in SAMPLE:
        shutil.copy2(BIN / name, folder / name)
    return folder


def run(tree: Path, cache: ScanCache, **kwargs: object) -> tuple[dict[str, object], int, int]:
    report = scan(iter_candidates([tree]), cache=cache, **kwargs)  # type: ignore[arg-type]
    return report.to_json(), report.from_cache, report.analysed


def test_second_scan_comes_from_the_cache_and_matches(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    with ScanCache(db) as cache:
        first, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (0, len(SAMPLE))
    with ScanCache(db) as cache:
        second, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (len(SAMPLE), 0)
    assert second == first  # rejections are cached too: an unchanged tree costs stats only


def test_a_changed_file_is_rescanned(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    with ScanCache(db) as cache:
        run(tree, cache)
    target = tree / "basic-x64-O2.sys"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same size, newer
    with ScanCache(db) as cache:
        _, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (len(SAMPLE) - 1, 1)
    shutil.copy2(BIN / "ndis-x64-O2.sys", target)  # different content and size
    with ScanCache(db) as cache:
        report, hits, analysed = run(tree, cache)
    assert analysed == 1
    tags = {t["tag"] for d in report["drivers"] for t in d["tags"] if d["name"] == "basic-x64-O2.sys"}  # type: ignore[attr-defined,index]
    assert "Nds1" in tags


def test_other_limits_or_scanner_version_rescan(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    with ScanCache(db) as cache:
        run(tree, cache)
    with ScanCache(db) as cache:
        _, hits, analysed = run(tree, cache, limits=ScanLimits(max_file_size=10_000_000))
    assert (hits, analysed) == (0, len(SAMPLE))


def test_bytes_pass_results_are_keyed_by_the_tag_set(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    path = str(tree / "datatags-x64-O0.sys")
    with ScanCache(db) as cache:
        run(tree, cache, known=KnownTags(["DatA"]))
    with ScanCache(db) as cache:
        report, hits, _ = run(tree, cache, known=KnownTags(["Dtb1"]))
        assert hits == len(SAMPLE)  # the code analysis is reused; only the bytes pass runs again
        st = os.stat(path)
        fingerprint = ScanLimits().fingerprint()
        for tags, wanted in ((["DatA"], "DatA"), (["Dtb1"], "Dtb1")):
            rows = cache.lookup_bytes(
                path, st.st_size, st.st_mtime_ns, fingerprint, KnownTags(tags).fingerprint
            )
            assert rows is not None and [r["tag"] for r in rows] == [wanted]
    found = {t["tag"]: t["confidence"] for d in report["drivers"] for t in d["tags"] if d["path"] == path}  # type: ignore[attr-defined,index]
    assert found["Dtb1"] == "bytes"
    assert "DatA" not in found


def test_corrupt_cache_is_moved_aside_and_rebuilt(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    db.write_bytes(b"this is not an SQLite database, just garbage " * 100)
    warnings: list[str] = []
    with ScanCache(db, on_warning=warnings.append) as cache:
        assert cache.enabled
        _, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (0, len(SAMPLE))
    assert len(warnings) == 1 and "moved it to" in warnings[0]
    aside = list(tmp_path.glob("cache.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    with ScanCache(db, on_warning=warnings.append) as cache:
        _, hits, _ = run(tree, cache)
    assert hits == len(SAMPLE)
    assert len(warnings) == 1


def test_damaged_rows_are_rescanned(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    with ScanCache(db) as cache:
        run(tree, cache)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE scans SET result = 'not json'")
    conn.execute("UPDATE scans SET result = '{\"kind\": \"driver\"}' WHERE path LIKE '%basic%'")
    conn.commit()
    conn.close()
    with ScanCache(db) as cache:
        _, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (0, len(SAMPLE))


def test_an_unusable_cache_location_disables_the_cache_with_a_warning(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    warnings: list[str] = []
    with ScanCache(blocker / "sub" / "cache.sqlite3", on_warning=warnings.append) as cache:
        assert not cache.enabled
        _, hits, analysed = run(tree, cache)
    assert (hits, analysed) == (0, len(SAMPLE))
    assert warnings and "disabled" in warnings[0]


def test_default_location_is_the_user_cache_folder() -> None:
    path = default_cache_path()
    assert path.name == "scan-cache.sqlite3"
    assert "pooltop" in path.parent.as_posix().lower()


_WRITER = """
import sys
from pooltop.tagdb.cache import ScanCache
db, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with ScanCache(db, on_warning=lambda m: sys.exit("warning: " + m)) as cache:
    for i in range(count):
        cache.store(f"/w{worker}/f{i}.sys", i, i, "fp", {"kind": "skipped", "path": "x", "reason": "r"})
        if i % 25 == 0:
            cache.flush()
            cache.lookup(f"/w{1 - worker}/f{i}.sys", i, i, "fp")
"""


def test_two_processes_share_one_cache(tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    ScanCache(db).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(w), "300"], env=env, stderr=subprocess.PIPE
        )
        for w in (0, 1)
    ]
    for p in workers:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM scans").fetchone()[0] == 600
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_partial_results_are_not_cached(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    hurried = ScanLimits(max_seconds=-1)  # every analysis runs out of time at once
    with ScanCache(db) as cache:
        report, _, _ = run(tree, cache, limits=hurried)
    assert all(any("time budget" in n for n in d["notes"]) for d in report["drivers"])  # type: ignore[attr-defined,union-attr]
    with ScanCache(db) as cache:
        _, hits, analysed = run(tree, cache)
    drivers = len(report["drivers"])  # type: ignore[arg-type]
    assert (hits, analysed) == (len(SAMPLE) - drivers, drivers)


# --- keyed by absolute path (issue 16) --------------------------------------------------------------


def test_a_scan_from_another_folder_finds_the_cached_rows(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cache.sqlite3"
    monkeypatch.chdir(tree)
    with ScanCache(db) as cache:
        _, _, analysed = run(Path("."), cache)
    assert analysed == len(SAMPLE)
    monkeypatch.chdir(tmp_path)
    with ScanCache(db) as cache:
        second, hits, analysed = run(Path("drivers"), cache)
    assert (hits, analysed) == (len(SAMPLE), 0)
    # named as this scan was given them, not as the first scan was
    listed = [d["path"] for d in second["drivers"]] + [r["path"] for r in second["rejected"]]  # type: ignore[attr-defined]
    assert listed and all(p.startswith("drivers" + os.sep) for p in listed)
    conn = sqlite3.connect(db)
    assert all(os.path.isabs(p) for (p,) in conn.execute("SELECT path FROM scans"))
    conn.close()


def test_the_same_relative_path_in_another_folder_is_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cache.sqlite3"
    for folder in ("a", "b"):  # two copies alike in name, size and time: only the folder differs
        (tmp_path / folder).mkdir()
        shutil.copy2(BIN / "basic-x64-O2.sys", tmp_path / folder / "drv.sys")
        os.utime(tmp_path / folder / "drv.sys", ns=(1, 1))
    hits = []
    for folder in ("a", "b"):
        monkeypatch.chdir(tmp_path / folder)
        with ScanCache(db) as cache:
            hits.append(run(Path("drv.sys"), cache)[1])
    assert hits == [0, 0]


def test_rows_of_the_old_relative_keys_are_dropped_and_absolute_ones_kept(tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite3"
    conn = sqlite3.connect(db)  # a version-1 cache, written here with plain SQL
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE scans (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " fingerprint TEXT NOT NULL, result TEXT NOT NULL, scanned_at REAL NOT NULL);"
        "CREATE TABLE byte_scans (path TEXT NOT NULL, tagset TEXT NOT NULL, size INTEGER NOT NULL,"
        " mtime_ns INTEGER NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL,"
        " PRIMARY KEY (path, tagset));"
        "INSERT INTO meta VALUES ('schema', '1');"
    )
    absolute = str(tmp_path / "kept.sys")
    row = '{"kind": "skipped", "path": "x", "reason": "r"}'
    for path in (absolute, os.path.join("drivers", "gone.sys")):
        conn.execute("INSERT INTO scans VALUES (?, 1, 1, 'fp', ?, 0)", (path, row))
        conn.execute("INSERT INTO byte_scans VALUES (?, 't', 1, 1, 'fp', '[]')", (path,))
    conn.commit()
    conn.close()
    with ScanCache(db) as cache:
        assert cache.lookup(absolute, 1, 1, "fp") is not None
    conn = sqlite3.connect(db)
    assert [p for (p,) in conn.execute("SELECT path FROM scans")] == [absolute]
    assert [p for (p,) in conn.execute("SELECT path FROM byte_scans")] == [absolute]
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)
    conn.close()
