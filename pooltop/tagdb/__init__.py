"""Who owns a tag: pooltag.txt / localtag.txt, the user's overlay, driver scans, slab descriptions."""

from __future__ import annotations

from dataclasses import dataclass

#: confidence values, strongest first. Text sources say whether the entry matched exactly or by
#: wildcard; the driver scanner says how it found the tag (see ../shared/DESIGN.md).
CONFIDENCE_ORDER = ("overlay", "exact", "call-site", "immediate", "wildcard", "bytes", "description")


@dataclass(frozen=True)
class DriverFacts:
    """What a vendor needs to know about a driver binary."""

    path: str
    file_version: str | None = None
    company: str | None = None
    product: str | None = None
    signed: bool | None = None  # carries an Authenticode signature (not verified)
    arch: str | None = None


@dataclass(frozen=True)
class OwnerCandidate:
    """One answer to "who owns this tag?"."""

    tag: str
    owner: str  # driver file name or component: "afd.sys", "nt!cc", "<unknown>", a slab cache group
    description: str
    source: str  # "pooltag.txt", "localtag.txt", "overlay", "scan", "slab"
    confidence: str  # one of CONFIDENCE_ORDER
    driver: DriverFacts | None = None
    pattern: str | None = None  # the wildcard entry ("Afd?") that matched; None for exact matches

    def rank(self) -> int:
        try:
            return CONFIDENCE_ORDER.index(self.confidence)
        except ValueError:
            return len(CONFIDENCE_ORDER)
