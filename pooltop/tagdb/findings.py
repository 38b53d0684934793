"""What a driver scan found, in the form the scan cache keeps and the tag database reads.

Light on purpose (no PE parser, no disassembler): `tags lookup`, the exports and the live view read
earlier scans from the cache through `cached_owner_candidates` without loading the scanner.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from pooltop.tagdb import CONFIDENCE_ORDER, DriverFacts, OwnerCandidate, cache

#: the note of a driver whose call-site analysis ran out of time (its result is not cached)
TIME_BUDGET_NOTE = "time budget exceeded: partial call-site analysis"


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
            if current is None or rank(finding.confidence) < rank(current.confidence):
                best[finding.tag] = finding
        return sorted(best.values(), key=lambda f: (rank(f.confidence), f.tag))

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


def as_given(outcome: FileOutcome, path: str) -> FileOutcome:
    """A cached outcome named by the path this scan was given (the cache keeps absolute paths)."""
    if isinstance(outcome, DriverScan):
        outcome.path = path
        outcome.facts = dataclasses.replace(outcome.facts, path=path)
        return outcome
    return dataclasses.replace(outcome, path=path)


def rank(confidence: str) -> int:
    return CONFIDENCE_ORDER.index(confidence) if confidence in CONFIDENCE_ORDER else len(CONFIDENCE_ORDER)


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
    path = Path(cache_path) if cache_path is not None else cache.default_cache_path()
    try:
        if not path.is_file():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except (OSError, sqlite3.Error):
        return []
    report = ScanReport()
    try:
        for key, result in con.execute("SELECT path, result FROM scans"):
            if not isinstance(key, str) or not os.path.isabs(key):
                continue  # a row of pooltop before 2026-12, keyed relative to a folder now unknown
            try:
                outcome = as_given(outcome_from_dict(json.loads(result)), key)
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(outcome, DriverScan):
                report.drivers.append(outcome)
    except sqlite3.Error:
        return []
    finally:
        con.close()
    return owner_candidates(report)
