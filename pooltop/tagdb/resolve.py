"""Who owns a tag: every source merged into one ranked answer, fast enough for a live table.

Sources, strongest first (see CONFIDENCE_ORDER): the user's overlay, exact entries of the text
files (--tagfile, pooltag.txt, localtag.txt, in that order), the driver scanner's call sites and
immediates, wildcard entries of the text files, the scanner's raw byte matches, Linux slab
descriptions. Every candidate stays available; `best` is the first.

Lookups: a server has tens of thousands of tags, and the table asks again at every refresh.
Exact entries sit in a dict. Pool tags are exactly 4 bytes, so every wildcard pattern is expanded
once into 4-byte `?` patterns (`Aml*` -> `Aml?`); patterns that share the same `?` positions share
a mask, and a lookup is one AND and one dict probe per distinct mask (at most 15), whatever the
number of patterns. Tags of another length (slab cache names, odd imports) fall back to the
compiled patterns. Results are memoised per tag.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pooltop.errors import PooltopError
from pooltop.model import escape_tag, unescape_tag
from pooltop.tagdb import CONFIDENCE_ORDER, OwnerCandidate
from pooltop.tagdb import pooltag as pt
from pooltop.tagdb import slabs as slabdb

_MEMO_LIMIT = 1 << 18  # entries; a refresh never holds that many distinct tags

_SortKey = tuple[int, int, int, int]  # confidence rank, wildcard?, source precedence, sequence
_Hit = tuple[_SortKey, OwnerCandidate]
_MemoKey = str | bytes | tuple[str | bytes, tuple[str, ...]]  # the tag alone when there are no aliases


@dataclass(frozen=True)
class TagTable:
    """One parsed tag file and the label its candidates carry."""

    source: str  # "pooltag.txt", "localtag.txt", "overlay", a --tagfile's name
    parsed: pt.ParsedTagFile
    overlay: bool = False


@dataclass(frozen=True)
class LoadReport:
    """What loading one file gave, for `pooltop tags lookup` and the UI's status line."""

    source: str
    path: str | None
    entries: int = 0
    malformed: tuple[int, ...] = ()  # line numbers
    error: str | None = None  # set when a discovered file could not be read (then it was skipped)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "path": self.path,
            "entries": self.entries,
            "malformed_lines": list(self.malformed),
            "error": self.error,
        }


def _tag_bytes(tag: str | bytes) -> bytes:
    if isinstance(tag, bytes):
        return tag
    if "\\" in tag:
        return unescape_tag(tag)
    try:
        return tag.encode("latin-1")
    except UnicodeEncodeError:
        return tag.encode("utf-8", "backslashreplace")


def tag_key(tag: str | bytes) -> str:
    """The form tags are stored and looked up in: escape_tag of the bytes, padded to 4 with spaces."""
    raw = _tag_bytes(tag)
    if len(raw) < pt.POOL_TAG_LEN:
        raw = raw.ljust(pt.POOL_TAG_LEN, b" ")
    return escape_tag(raw)


class TagDatabase:
    """Owner candidates for pool tags (and slab caches) from every loaded source.

    Safe to share between the sampling worker and the UI: lookups only read the indexes, and the
    memo is a plain dict (a lost race costs one recomputation).
    """

    def __init__(
        self,
        tables: Sequence[TagTable] = (),
        *,
        scan: Iterable[OwnerCandidate] = (),
        slabs: bool = False,
        reports: Sequence[LoadReport] = (),
    ) -> None:
        self.reports: tuple[LoadReport, ...] = tuple(reports)
        self.slabs = slabs
        self._exact: dict[str, list[_Hit]] = {}
        self._masks: dict[int, dict[int, list[_Hit]]] = {}
        self._mask_order: tuple[tuple[int, dict[int, list[_Hit]]], ...] = ()
        self._patterns: list[tuple[re.Pattern[bytes], _Hit]] = []
        self._seq = itertools.count(1)  # insertion order, the last tie-breaker
        self._precedence = 0
        self._memo: dict[_MemoKey, tuple[OwnerCandidate, ...]] = {}
        self._describe_memo: dict[_MemoKey, str] = {}
        for table in tables:
            self._add_table(table)
        self.add_scan(scan)

    # --- building ---

    @classmethod
    def load(
        cls,
        tagfiles: Sequence[str | os.PathLike[str]] = (),
        *,
        discover: bool = True,
        overlay: bool = True,
        overlay_path: Path | None = None,
        scan: Iterable[OwnerCandidate] = (),
        slabs: bool = False,
        environ: Mapping[str, str] | None = None,
        windows: bool | None = None,
        cwd: Path | None = None,
    ) -> TagDatabase:
        """Load the explicit files, the discovered ones (pooltag.txt, localtag.txt) and the overlay.

        An explicit file that cannot be read raises PooltopError; a discovered one or the overlay is
        skipped and reported in `reports`.
        """
        refs = (
            pt.discover_tag_files(tagfiles, environ=environ, windows=windows, cwd=cwd)
            if discover
            else [pt.TagFileRef(Path(p), Path(p).name, True) for p in tagfiles]
        )
        tables: list[TagTable] = []
        reports: list[LoadReport] = []

        def read(source: str, path: Path, max_tag_len: int, explicit: bool, is_overlay: bool = False) -> None:
            try:
                parsed = pt.read_tag_file(path, max_tag_len=max_tag_len)
            except PooltopError as e:
                if explicit:
                    raise
                reports.append(LoadReport(source, str(path), error=str(e)))
                return
            tables.append(TagTable(source, parsed, is_overlay))
            reports.append(LoadReport(source, str(path), len(parsed.entries), parsed.malformed))

        if overlay:
            path = pt.default_overlay_path() if overlay_path is None else overlay_path
            try:
                present = path.exists()
            except OSError as e:
                # e.g. sudo -u someone with HOME still pointing at root's folder
                reports.append(LoadReport("overlay", str(path), error=f"cannot read: {e.strerror}"))
                present = False
            if present:
                read("overlay", path, pt.OVERLAY_TAG_LEN, False, True)
        for ref in refs:
            read(ref.source, ref.path, pt.POOL_TAG_LEN, ref.explicit)
        return cls(tables, scan=scan, slabs=slabs, reports=reports)

    def _add_table(self, table: TagTable) -> None:
        precedence = self._next_precedence()
        source = table.source
        exact_confidence = "overlay" if table.overlay else "exact"
        exact_rank = CONFIDENCE_ORDER.index(exact_confidence)
        wild_confidence = "overlay" if table.overlay else "wildcard"
        exact = self._exact
        for entry in table.parsed.entries:  # a hot loop at start-up: ~30,000 entries in a big file
            tag = entry.tag
            if entry.wildcard:
                candidate = OwnerCandidate(
                    tag, entry.owner, entry.description, source, wild_confidence, None, tag
                )
                self._add_pattern(tag, candidate, precedence)
            else:
                candidate = OwnerCandidate(tag, entry.owner, entry.description, source, exact_confidence)
                hit = ((exact_rank, 0, precedence, next(self._seq)), candidate)
                bucket = exact.get(tag)
                if bucket is None:
                    exact[tag] = [hit]
                else:
                    bucket.append(hit)
        self._memo.clear()
        self._describe_memo.clear()

    def add_scan(self, candidates: Iterable[OwnerCandidate]) -> None:
        """Add the driver scanner's answers (exact tags, confidence call-site/immediate/bytes)."""
        precedence = self._next_precedence()
        added = False
        for candidate in candidates:
            key = tag_key(candidate.tag)
            self._add_exact(key, dataclasses.replace(candidate, tag=key), precedence)
            added = True
        if added:
            self._memo.clear()
            self._describe_memo.clear()

    def _next_precedence(self) -> int:
        self._precedence += 1
        return self._precedence

    def _sort_key(self, candidate: OwnerCandidate, wildcard: bool, precedence: int) -> _SortKey:
        return (candidate.rank(), int(wildcard), precedence, next(self._seq))

    def _add_exact(self, key: str, candidate: OwnerCandidate, precedence: int) -> None:
        self._exact.setdefault(key, []).append((self._sort_key(candidate, False, precedence), candidate))

    def _add_pattern(self, pattern: str, candidate: OwnerCandidate, precedence: int) -> None:
        hit = (self._sort_key(candidate, True, precedence), candidate)
        raw = pt.pattern_bytes(pattern)
        self._patterns.append((pt.pattern_regex(raw), hit))
        for fixed in pt.expand_pattern4(raw):
            mask = value = 0
            for i, byte in enumerate(fixed):
                if byte != 0x3F:  # '?'
                    mask |= 0xFF << (8 * i)
                    value |= byte << (8 * i)
            bucket = self._masks.setdefault(mask, {}).setdefault(value, [])
            if not bucket or bucket[-1] is not hit:  # "A*b*" can expand twice into one mask
                bucket.append(hit)
        self._mask_order = tuple(self._masks.items())

    # --- lookups ---

    def candidates(self, tag: str | bytes, aliases: Sequence[str] = ()) -> list[OwnerCandidate]:
        """Every owner candidate for `tag`, strongest first.

        `tag` is the escape_tag form a snapshot carries ("Io  ", "\\x01abc") or raw bytes; a tag
        shorter than 4 bytes is padded with spaces. `aliases` are the SLUB alias group of a slab
        cache (Snapshot.aliases), used when the database was built with slabs=True.
        """
        memo_key: _MemoKey = (tag, tuple(aliases)) if aliases else tag
        found = self._memo.get(memo_key)
        if found is None:
            found = self._lookup(tag, tuple(aliases))
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = found
        return list(found)

    def best(self, tag: str | bytes, aliases: Sequence[str] = ()) -> OwnerCandidate | None:
        found = self.candidates(tag, aliases)
        return found[0] if found else None

    def describe(self, tag: str | bytes, aliases: Sequence[str] = ()) -> str:
        """Short owner text for a table cell: "afd.sys  AFD objects"; "" when nothing is known."""
        memo_key: _MemoKey = (tag, tuple(aliases)) if aliases else tag
        text = self._describe_memo.get(memo_key)
        if text is None:
            best = self.best(tag, aliases)
            text = "" if best is None else format_owner(best)
            if len(self._describe_memo) >= _MEMO_LIMIT:
                self._describe_memo.clear()
            self._describe_memo[memo_key] = text
        return text

    def _lookup(self, tag: str | bytes, aliases: tuple[str, ...]) -> tuple[OwnerCandidate, ...]:
        raw = _tag_bytes(tag)
        if len(raw) < pt.POOL_TAG_LEN:
            raw = raw.ljust(pt.POOL_TAG_LEN, b" ")
        key = escape_tag(raw)
        hits: list[_Hit] = list(self._exact.get(key, ()))
        wild: list[_Hit] = []
        if len(raw) == pt.POOL_TAG_LEN:
            value = int.from_bytes(raw, "little")
            for mask, table in self._mask_order:
                bucket = table.get(value & mask)
                if bucket:
                    wild.extend(bucket)
        else:
            wild = [hit for regex, hit in self._patterns if regex.fullmatch(raw)]
        if wild:
            seen: set[int] = set()
            for sort_key, candidate in wild:
                if sort_key[3] not in seen:  # one pattern can sit under several masks
                    seen.add(sort_key[3])
                    hits.append((sort_key, _retag(candidate, key)))
        hits.sort(key=lambda hit: hit[0])
        result = [candidate for _, candidate in hits]
        if self.slabs:
            name = tag if isinstance(tag, str) else escape_tag(tag)
            result += slabdb.slab_candidates(name)
            alias = slabdb.alias_candidate(name, aliases)
            if alias is not None:
                result.append(alias)
        return tuple(result)

    # --- diagnostics ---

    @property
    def malformed_count(self) -> int:
        return sum(len(r.malformed) for r in self.reports)


def _retag(c: OwnerCandidate, tag: str) -> OwnerCandidate:
    # positional: dataclasses.replace costs several times more per wildcard hit; wildcard candidates
    # come from text files only and carry no other fields
    return OwnerCandidate(tag, c.owner, c.description, c.source, c.confidence, c.driver, c.pattern)


def format_owner(candidate: OwnerCandidate) -> str:
    """Owner and description for a table cell ("afd.sys  AFD objects"); either alone if one is unknown."""
    owner = "" if candidate.owner == pt.UNKNOWN_OWNER else candidate.owner
    return "  ".join(part for part in (owner, candidate.description) if part) or candidate.owner
