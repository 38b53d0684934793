"""The driver scanner: which pool tags does each driver binary use?

For every candidate file (paths given, or on Windows the loaded drivers, System32\\drivers and the
DriverStore), keep the PE images that import a pool API and report their tags with a confidence:

- "call-site": the tag is the argument of a pool API call (callsites.py: IAT references, then a bounded
  disassembly before each call);
- "immediate": a tag-shaped imm32 operand elsewhere in code;
- "bytes": a raw byte match of a known tag anywhere in the file (bytesearch.py, one Aho-Corasick pass).

Bad files (not PE, truncated, garbage import table, too large) are rejected with a reason and the scan
goes on. The work per file is bounded (size, sites, time). cache.py keeps results keyed by path, size
and mtime, so an unchanged tree costs one stat per file.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from pooltop.tagdb import CONFIDENCE_ORDER, DriverFacts, OwnerCandidate
from pooltop.tagdb.bytesearch import KnownTags
from pooltop.tagdb.callsites import (
    CALL_SITE_ARCHES,
    POOL_APIS,
    TIME_BUDGET_NOTE,
    AnalysisLimits,
    find_call_sites,
    find_tag_immediates,
    pool_import_slots,
    tag_text,
)
from pooltop.tagdb.pe import BadImage, has_signature, load_image, version_strings

if TYPE_CHECKING:
    from pooltop.tagdb.cache import ScanCache

#: bump when a change to the scanner changes its results: cached results of older versions are ignored
SCANNER_VERSION = 1

DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
#: suffixes taken when walking a directory (a file named explicitly is always tried)
PE_SUFFIXES = frozenset((".sys", ".dll", ".exe", ".drv", ".efi"))
UNSUPPORTED_ARCH_NOTE = "unsupported architecture for call-site analysis"
NO_POOL_IMPORTS = "imports no pool API (" + ", ".join(POOL_APIS) + ")"


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on the work for one file. Part of the cache key: other limits, other results."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_sites: int = 20_000
    max_seconds: float = 30.0  # per file; the analysis stops with a note, never hangs
    max_listed_sites: int = 16  # sites listed per tag (the count is always complete)

    def fingerprint(self) -> str:
        return (
            f"v{SCANNER_VERSION}/size{self.max_file_size}/sites{self.max_sites}/list{self.max_listed_sites}"
        )


@dataclass
class TagFinding:
    tag: str
    confidence: str  # "call-site" | "immediate" | "bytes"
    site_count: int
    sites: list[dict[str, str]]  # {"rva", "api"} / {"rva"} / {"offset"}, as hex strings

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "confidence": self.confidence,
            "sites": self.sites,
            "site_count": self.site_count,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TagFinding:
        return cls(d["tag"], d["confidence"], int(d["site_count"]), list(d["sites"]))


@dataclass
class DriverScan:
    """A driver that imports a pool API, and the tags found in its code."""

    path: str
    facts: DriverFacts
    tags: list[TagFinding]  # call-site and immediate findings (independent of --tag)
    notes: list[str] = field(default_factory=list)
    unresolved_sites: int = 0  # pool calls whose tag could not be recovered
    byte_tags: list[TagFinding] = field(default_factory=list)  # the bytes pass, for the current tag set

    @property
    def name(self) -> str:
        return PureWindowsPath(self.path).name if "\\" in self.path else Path(self.path).name

    @property
    def arch(self) -> str:
        return self.facts.arch or "unknown"

    @property
    def partial(self) -> bool:
        """The time budget ran out: the call-site analysis is incomplete."""
        return any(note.startswith(TIME_BUDGET_NOTE) for note in self.notes)

    def findings(self) -> list[TagFinding]:
        """One finding per tag, the strongest confidence wins; strongest first, then by tag."""
        best: dict[str, TagFinding] = {}
        for finding in [*self.tags, *self.byte_tags]:
            current = best.get(finding.tag)
            if current is None or _rank(finding.confidence) < _rank(current.confidence):
                best[finding.tag] = finding
        return sorted(best.values(), key=lambda f: (_rank(f.confidence), f.tag))

    def to_dict(self) -> dict[str, Any]:
        """The cacheable part (everything but the bytes pass)."""
        return {
            "kind": "driver",
            "path": self.path,
            "facts": {
                "file_version": self.facts.file_version,
                "company": self.facts.company,
                "product": self.facts.product,
                "signed": self.facts.signed,
                "arch": self.facts.arch,
            },
            "tags": [t.to_dict() for t in self.tags],
            "notes": self.notes,
            "unresolved_sites": self.unresolved_sites,
        }


@dataclass(frozen=True)
class Rejected:
    """A file the scanner could not use, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "rejected", "path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Skipped:
    """A valid image that allocates no pool memory itself (most of System32)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "skipped", "path": self.path, "reason": self.reason}


FileOutcome = DriverScan | Rejected | Skipped


def outcome_from_dict(d: dict[str, Any]) -> FileOutcome:
    kind = d["kind"]
    if kind == "rejected":
        return Rejected(d["path"], d["reason"])
    if kind == "skipped":
        return Skipped(d["path"], d["reason"])
    facts = d["facts"]
    return DriverScan(
        path=d["path"],
        facts=DriverFacts(
            path=d["path"],
            file_version=facts.get("file_version"),
            company=facts.get("company"),
            product=facts.get("product"),
            signed=facts.get("signed"),
            arch=facts.get("arch"),
        ),
        tags=[TagFinding.from_dict(t) for t in d["tags"]],
        notes=list(d.get("notes", [])),
        unresolved_sites=int(d.get("unresolved_sites", 0)),
    )


def _rank(confidence: str) -> int:
    return CONFIDENCE_ORDER.index(confidence) if confidence in CONFIDENCE_ORDER else len(CONFIDENCE_ORDER)


# ---------------------------------------------------------------------------------------------------
# One image


def analyse_image(data: bytes, path: str, limits: ScanLimits | None = None) -> FileOutcome:
    """Everything the scanner learns from the bytes of one file (no bytes pass: see find_known_tags)."""
    limits = limits or ScanLimits()
    if len(data) > limits.max_file_size:
        return Rejected(path, _too_large(len(data), limits))
    try:
        image = load_image(data)
    except BadImage as e:
        return Rejected(path, str(e))
    slots = pool_import_slots(image.imports)
    if not slots:
        return Skipped(path, NO_POOL_IMPORTS)

    version = version_strings(image)
    facts = DriverFacts(
        path=path,
        file_version=version.get("FileVersion"),
        company=version.get("CompanyName"),
        product=version.get("ProductName"),
        signed=has_signature(image, data),
        arch=image.arch,
    )
    notes: list[str] = []
    tags: list[TagFinding] = []
    unresolved = 0
    if image.arch in CALL_SITE_ARCHES:
        analysis = find_call_sites(
            image.arch,
            image.image_base,
            image.code_sections,
            slots,
            image.function_starts.tolist(),
            AnalysisLimits(max_sites=limits.max_sites, deadline=time.monotonic() + limits.max_seconds),
        )
        if analysis.truncated:
            notes.append(analysis.truncated)
        by_tag: dict[int, list[tuple[int, str]]] = {}
        for site in analysis.sites:
            if site.tag is None:
                unresolved += 1
            else:
                by_tag.setdefault(site.tag, []).append((site.rva, site.api))
        for value, sites in by_tag.items():
            tags.append(
                TagFinding(
                    tag_text(value),
                    "call-site",
                    len(sites),
                    [{"rva": f"{rva:#x}", "api": api} for rva, api in sites[: limits.max_listed_sites]],
                )
            )
        for value, rvas in find_tag_immediates(image.code_sections).items():
            if value in by_tag:
                continue
            tags.append(
                TagFinding(
                    tag_text(value),
                    "immediate",
                    len(rvas),
                    [{"rva": f"{rva:#x}"} for rva in rvas[: limits.max_listed_sites]],
                )
            )
    else:
        notes.append(f"{UNSUPPORTED_ARCH_NOTE} ({image.arch}); bytes pass only")
    tags.sort(key=lambda f: (_rank(f.confidence), f.tag))
    return DriverScan(path=path, facts=facts, tags=tags, notes=notes, unresolved_sites=unresolved)


def find_known_tags(data: bytes, known: KnownTags, limits: ScanLimits | None = None) -> list[TagFinding]:
    """The bytes pass over a whole file."""
    limits = limits or ScanLimits()
    return [
        TagFinding(tag, "bytes", m.count, [{"offset": f"{o:#x}"} for o in m.offsets])
        for tag, m in sorted(known.find(data, limits.max_listed_sites).items())
    ]


def _too_large(size: int, limits: ScanLimits) -> str:
    mib = 1024 * 1024
    return f"too large: {size / mib:.1f} MiB, the limit is {limits.max_file_size / mib:.0f} MiB (--max-size)"


def scan_file(path: str, limits: ScanLimits | None = None, known: KnownTags | None = None) -> FileOutcome:
    """Read and analyse one file; never raises for a bad file."""
    limits = limits or ScanLimits()
    try:
        size = os.stat(path).st_size
        if size > limits.max_file_size:
            return Rejected(path, _too_large(size, limits))
        with open(path, "rb") as f:
            data = f.read(limits.max_file_size + 1)
    except OSError as e:
        return Rejected(path, f"cannot read: {e.strerror or e}")
    outcome = _analyse_guarded(data, path, limits)
    if isinstance(outcome, DriverScan) and known:
        outcome.byte_tags = find_known_tags(data, known, limits)
    return outcome


def _analyse_guarded(data: bytes, path: str, limits: ScanLimits) -> FileOutcome:
    try:
        return analyse_image(data, path, limits)
    except MemoryError:
        return Rejected(path, "out of memory while analysing")
    except Exception as e:  # one hostile file must not end a scan of thousands
        return Rejected(path, f"internal error while analysing: {type(e).__name__}: {e}")


# ---------------------------------------------------------------------------------------------------
# Which files


@dataclass(frozen=True)
class Candidate:
    path: str
    explicit: bool  # named by the user: report it even if it is not a pool-using driver


def iter_candidates(paths: Iterable[str | os.PathLike[str]], explicit: bool = True) -> Iterator[Candidate]:
    """Files to scan: files as given, directories walked recursively for PE_SUFFIXES; no duplicates."""
    seen: set[str] = set()
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            for found in _walk(path):
                key = os.path.normcase(os.path.abspath(found))
                if key not in seen:
                    seen.add(key)
                    yield Candidate(found, explicit=False)
        else:
            key = os.path.normcase(os.path.abspath(path))
            if key not in seen:
                seen.add(key)
                yield Candidate(path, explicit=explicit)


def _walk(root: str) -> Iterator[str]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                items = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue  # unreadable folder (DriverStore has some): skip it, as dir /s would
        for entry in items:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in PE_SUFFIXES:
                    yield entry.path
            except OSError:
                continue


def windows_driver_dirs(system_root: str | os.PathLike[str]) -> list[Path]:
    """The default scan roots below %SystemRoot%."""
    root = Path(system_root)
    return [root / "System32" / "drivers", root / "System32" / "DriverStore" / "FileRepository"]


def default_candidates(
    system_root: str,
    loaded_drivers: Iterable[str] = (),
) -> Iterator[Candidate]:
    """What `pooltop tags scan` looks at without paths, on Windows: the loaded drivers first (Win32
    paths, as pooltop.native.windows.list_kernel_modules gives them), then System32\\drivers and the
    DriverStore. Missing folders are skipped."""
    roots = [str(p) for p in windows_driver_dirs(system_root) if p.is_dir()]
    yield from iter_candidates([*loaded_drivers, *roots], explicit=False)


# ---------------------------------------------------------------------------------------------------
# A whole scan


@dataclass
class ScanReport:
    drivers: list[DriverScan] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0
    from_cache: int = 0
    analysed: int = 0

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (see DESIGN.md) plus version facts, notes and rejections."""
        return {
            "drivers": [
                {
                    "path": d.path,
                    "name": d.name,
                    "arch": d.arch,
                    "version": d.facts.file_version,
                    "company": d.facts.company,
                    "product": d.facts.product,
                    "signed": d.facts.signed,
                    "tags": [f.to_dict() for f in d.findings()],
                    "unresolved_sites": d.unresolved_sites,
                    "notes": d.notes,
                }
                for d in self.drivers
            ],
            "rejected": [{"path": r.path, "reason": r.reason} for r in self.rejected],
            "skipped": self.skipped,
        }


ProgressCallback = Callable[[str, int], None]  # (path, bytes just handled)


def default_workers() -> int:
    """Threads for file work: reading and the bytes pass run without the GIL."""
    return max(1, min(4, os.cpu_count() or 1))


def scan(
    candidates: Iterable[Candidate],
    *,
    limits: ScanLimits | None = None,
    known: KnownTags | None = None,
    cache: ScanCache | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> ScanReport:
    """Scan every candidate, through the cache when one is given. Bad files end up in `rejected`.

    Stats and cache lookups happen in the calling thread (one SQLite connection); reading, analysing
    and the bytes pass of the files that need it run on `workers` threads, a bounded number at a time.
    """
    limits = limits or ScanLimits()
    fingerprint = limits.fingerprint()
    report = ScanReport()
    workers = workers or default_workers()

    def finish(candidate: Candidate, outcome: FileOutcome, size: int) -> None:
        if isinstance(outcome, DriverScan):
            report.drivers.append(outcome)
        elif isinstance(outcome, Rejected):
            report.rejected.append(outcome)
        elif candidate.explicit:
            report.rejected.append(Rejected(outcome.path, outcome.reason))
        else:
            report.skipped += 1
        if progress is not None:
            progress(candidate.path, size)

    def collect(job: _Job, future: Future[FileOutcome]) -> None:
        outcome = future.result()
        if cache is not None:
            partial = isinstance(outcome, DriverScan) and outcome.partial
            if job.cached is None and not partial:  # a slow moment must not be remembered
                cache.store(job.candidate.path, job.size, job.mtime_ns, fingerprint, outcome.to_dict())
            if isinstance(outcome, DriverScan) and known:
                rows = [t.to_dict() for t in outcome.byte_tags]
                cache.store_bytes(
                    job.candidate.path, job.size, job.mtime_ns, fingerprint, known.fingerprint, rows
                )
        finish(job.candidate, outcome, job.size)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pooltop-scan") as pool:
        pending: deque[tuple[_Job, Future[FileOutcome]]] = deque()
        for candidate in candidates:
            job = _prepare(candidate, fingerprint, known, cache, report)
            if isinstance(job, tuple):
                finish(candidate, *job)
                continue
            pending.append((job, pool.submit(_file_work, job, limits, known)))
            while len(pending) > 4 * workers:
                collect(*pending.popleft())
        while pending:
            collect(*pending.popleft())
    if cache is not None:
        cache.flush()
    report.drivers.sort(key=lambda d: d.path)
    report.rejected.sort(key=lambda r: r.path)
    return report


@dataclass
class _Job:
    """A file that must be read: analysed (cached is None) or only searched for known tags."""

    candidate: Candidate
    size: int
    mtime_ns: int
    cached: DriverScan | None


def _prepare(
    candidate: Candidate,
    fingerprint: str,
    known: KnownTags | None,
    cache: ScanCache | None,
    report: ScanReport,
) -> _Job | tuple[FileOutcome, int]:
    """What a file needs; the outcome itself when the cache has everything (or the file is gone)."""
    path = candidate.path
    try:
        st = os.stat(path)
    except OSError as e:
        return Rejected(path, f"cannot read: {e.strerror or e}"), 0
    size, mtime_ns = st.st_size, st.st_mtime_ns
    outcome: FileOutcome | None = None
    if cache is not None:
        cached = cache.lookup(path, size, mtime_ns, fingerprint)
        if cached is not None:
            try:
                outcome = outcome_from_dict(cached)
            except (KeyError, TypeError, ValueError):
                outcome = None  # a row of another shape: rescan
    if outcome is None:
        report.analysed += 1
        return _Job(candidate, size, mtime_ns, None)
    report.from_cache += 1
    if isinstance(outcome, DriverScan) and known:
        rows = cache.lookup_bytes(path, size, mtime_ns, fingerprint, known.fingerprint) if cache else None
        if rows is None:
            return _Job(candidate, size, mtime_ns, outcome)
        try:
            outcome.byte_tags = [TagFinding.from_dict(r) for r in rows]
        except (KeyError, TypeError, ValueError):
            return _Job(candidate, size, mtime_ns, outcome)
    return outcome, size


def _file_work(job: _Job, limits: ScanLimits, known: KnownTags | None) -> FileOutcome:
    """Runs on a worker thread: no cache access here."""
    if job.cached is None:
        return scan_file(job.candidate.path, limits, known)
    outcome = job.cached
    try:
        with open(job.candidate.path, "rb") as f:
            data = f.read(limits.max_file_size + 1)
    except OSError:
        return outcome
    if known:
        outcome.byte_tags = find_known_tags(data, known, limits)
    return outcome


def owner_candidates(report: ScanReport) -> list[OwnerCandidate]:
    """The scan as answers for the tag database (TagDatabase.add_scan)."""
    out = []
    for driver in report.drivers:
        for finding in driver.findings():
            apis = sorted({site["api"] for site in finding.sites if "api" in site})
            how = f"{finding.confidence}: " + (", ".join(apis) if apis else "found by the driver scan")
            plural = "s" if finding.site_count != 1 else ""
            out.append(
                OwnerCandidate(
                    tag=finding.tag,
                    owner=driver.name,
                    description=f"{how} ({finding.site_count} site{plural})",
                    source="scan",
                    confidence=finding.confidence,
                    driver=driver.facts,
                )
            )
    return out


def cached_owner_candidates(cache_path: str | os.PathLike[str] | None = None) -> list[OwnerCandidate]:
    """Every driver scan remembered in the cache, as tag database answers, without scanning.

    `tags lookup` and the exports use this so that an earlier `tags scan` keeps naming owners.
    Only what the cache holds is read; a missing or unreadable cache gives no answers.
    """
    import json
    import sqlite3

    from pooltop.tagdb.cache import default_cache_path

    path = Path(cache_path) if cache_path is not None else default_cache_path()
    try:
        if not path.is_file():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except (OSError, sqlite3.Error):
        return []
    report = ScanReport()
    try:
        for (result,) in con.execute("SELECT result FROM scans"):
            try:
                outcome = outcome_from_dict(json.loads(result))
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(outcome, DriverScan):
                report.drivers.append(outcome)
    except sqlite3.Error:
        return []
    finally:
        con.close()
    return owner_candidates(report)
