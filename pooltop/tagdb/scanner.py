"""The driver scanner: which pool tags does each driver binary use?

For every candidate file (paths given, or on Windows the loaded drivers, System32\\drivers and the
DriverStore), keep the PE images that import a pool API and report their tags with a confidence:

- "call-site": the tag is the argument of a pool API call (callsites.py: IAT references, then a bounded
  disassembly before each call);
- "immediate": a tag-shaped imm32 operand elsewhere in code (immediates.py);
- "bytes": a raw byte match of a known tag anywhere in the file (bytesearch.py, one Aho-Corasick pass).

Bad files (not PE, truncated, garbage import table, too large) are rejected with a reason and the scan
goes on. The work per file is bounded (size, sites, time). cache.py keeps results keyed by absolute
path, size and mtime, so an unchanged tree costs one stat per file; findings.py holds the results'
records (what the cache stores and owner lookups read back), candidates.py which files to look at.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pooltop.tagdb import DriverFacts
from pooltop.tagdb.bytesearch import KnownTags
from pooltop.tagdb.cache import ScanCache, cache_key
from pooltop.tagdb.callsites import CALL_SITE_ARCHES, AnalysisLimits, find_call_sites
from pooltop.tagdb.candidates import Candidate
from pooltop.tagdb.findings import (
    DriverScan,
    FileOutcome,
    Rejected,
    ScanReport,
    Skipped,
    TagFinding,
    as_given,
    outcome_from_dict,
    rank,
)
from pooltop.tagdb.immediates import find_tag_immediates
from pooltop.tagdb.pe import BadImage, has_signature, load_image, version_strings
from pooltop.tagdb.poolapis import POOL_APIS, pool_import_slots, tag_text

#: bump when a change to the scanner changes its results: cached results of older versions are ignored
SCANNER_VERSION = 1

DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
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
    tags.sort(key=lambda f: (rank(f.confidence), f.tag))
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
# A whole scan



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
                # stored under its absolute path: owner lookups read it from any folder
                stored = {**outcome.to_dict(), "path": cache_key(job.candidate.path)}
                cache.store(job.candidate.path, job.size, job.mtime_ns, fingerprint, stored)
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
                outcome = as_given(outcome_from_dict(cached), path)
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
