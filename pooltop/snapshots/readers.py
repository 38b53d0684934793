"""Reading snapshots back from files, whatever wrote them.

Kinds of file, told apart by content (never by name):

| kind | how it is recognised | snapshots |
|---|---|---|
| recording | SQLite header | one per sample |
| pooltop JSON | a JSON object with `schema` "pooltop.snapshot/N" | one |
| pooltop CSV | header line starting `tag,pool,allocs,frees,diff,bytes` | one |
| vendor bundle | a zip with snapshot.json (see share/bundle.py) | one |
| poolmon log | `poolmon /n` output (importers/poolmon.py) | one per table |
| !poolused | WinDbg output (importers/poolused.py) | one per table |

A reference names one snapshot: `FILE` (its only, or for a multi-snapshot file its last one) or
`FILE@INDEX` (0-based; negative counts from the end: `rec.db@0`, `rec.db@-1`). A path that
exists as given wins over the `@INDEX` reading, so files with `@` in their name still work.

JSON keeps everything the contract has (host, totals, time, warnings, aliases, extra columns).
CSV has the counters only: host, totals and time are not in it, so an imported CSV carries the
file's modification time and a note saying so.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pooltop.errors import BadInput, PooltopError
from pooltop.importers.poolmon import parse_poolmon_log
from pooltop.importers.poolused import parse_poolused
from pooltop.importers.textfile import INT64_MAX, decode_text, file_time
from pooltop.model import SNAPSHOT_SCHEMA, CounterSet, HostInfo, Pool, Snapshot, Totals, escape_surrogates
from pooltop.snapshots.writers import csv_text_back

SCHEMA_PREFIX, _, SCHEMA_MAJOR = SNAPSHOT_SCHEMA.partition("/")
SQLITE_MAGIC = b"SQLite format 3\x00"
ZIP_MAGIC = b"PK\x03\x04"
MAX_TEXT_BYTES = 512 * 1024 * 1024

_BASE_COLUMNS = ("allocs", "frees", "diff", "bytes")
#: JSON/CSV fields that are derived or annotations, never counter columns
_NOT_EXTRA = frozenset(
    {"tag", "pool", "per_alloc", "aliases", "change", "owners", "leak", "owner", "owner_source",
     "owner_confidence", "description", "d_allocs", "d_frees", "d_diff", "d_bytes", "new", *_BASE_COLUMNS}
)


class FileKind(enum.Enum):
    RECORDING = "recording"
    SNAPSHOT_JSON = "pooltop JSON snapshot"
    SNAPSHOT_CSV = "pooltop CSV snapshot"
    BUNDLE = "pooltop vendor bundle"
    POOLMON_LOG = "poolmon log"
    WINDBG_POOLUSED = "WinDbg !poolused output"


# --- telling files apart ----------------------------------------------------------------------

_POOLUSED_HINT = re.compile(
    r"!poolused\b|^\s*Pool\s+Used\s*:|^\s*Tag\s+Allocs\s+(?:Frees\s+Diff\s+)?Used\b|^\s*Sorting\s+by\b",
    re.IGNORECASE | re.MULTILINE,
)
_POOLMON_HINT = re.compile(
    r"^\s*Tag\s+Type\s+Allocs\b|Pool\s+N:\s*\d+K|^.{0,8}\S.{0,3}[ \t](?:Nonp|Paged)[ \t]+\d+",
    re.IGNORECASE | re.MULTILINE,
)
_POOLTOP_TEXT = re.compile(r"^.* UTC  source \S+\s*$")


def detect_text_kind(text: str) -> FileKind | None:
    """Which text format `text` is, or None."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("{"):
        return FileKind.SNAPSHOT_JSON
    first = body.split("\n", 1)[0].strip()
    if first.replace('"', "").startswith("tag,pool,allocs,frees,diff,bytes"):
        return FileKind.SNAPSHOT_CSV
    head = body[:200_000]
    if _POOLUSED_HINT.search(head):
        return FileKind.WINDBG_POOLUSED
    if _POOLMON_HINT.search(head):
        return FileKind.POOLMON_LOG
    return None


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        raise PooltopError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise PooltopError(f"{path} is a directory") from None
    except OSError as e:
        raise PooltopError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise BadInput(f"{path} is larger than {MAX_TEXT_BYTES >> 20} MiB; not a snapshot pooltop reads")
    return data


def detect_kind(path: str) -> FileKind:
    """The kind of file at `path`; BadInput when it is none pooltop reads."""
    data = _read_bytes(path)
    return _kind_of(path, data)[0]


def _kind_of(path: str, data: bytes) -> tuple[FileKind, str]:
    if data.startswith(SQLITE_MAGIC):
        return FileKind.RECORDING, ""
    if data.startswith(ZIP_MAGIC):
        return FileKind.BUNDLE, ""
    if not data.strip():
        raise BadInput(f"{path} is empty")
    text = decode_text(data)
    if _POOLTOP_TEXT.match(text.lstrip("\ufeff \t\r\n").split("\n", 1)[0]):
        raise BadInput(
            f"{path} is pooltop's text table, which is for reading, not re-reading: "
            "export with --format json (or csv) instead"
        )
    kind = detect_text_kind(text)
    if kind is None:
        raise BadInput(
            f"{path} is not a file pooltop reads (expected a pooltop snapshot in JSON or CSV, a recording, "
            "poolmon /n output or WinDbg !poolused output)"
        )
    return kind, text


# --- JSON -------------------------------------------------------------------------------------


def _int(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{name}: {what} is not a number ({value!r:.40})")
    if isinstance(value, float) and not value.is_integer():
        raise BadInput(f"{name}: {what} is not a whole number ({value!r})")
    number = int(value)
    if not -INT64_MAX <= number <= INT64_MAX:
        raise BadInput(f"{name}: {what} is out of range ({number})")
    return number


def _time(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise BadInput(f"{name}: taken_at is missing or not a string")
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    except ValueError:
        raise BadInput(f"{name}: taken_at {value!r:.40} is not an ISO 8601 time") from None
    except OverflowError:  # year 9999 an hour west of UTC is past what a datetime holds
        raise BadInput(f"{name}: taken_at {value!r:.40} is out of range") from None


def check_schema(schema: Any, name: str) -> None:
    """Accept pooltop.snapshot/1 (and 1.x); say clearly what to do with anything else."""
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX + "/"):
        raise BadInput(f"{name} is JSON but not a pooltop snapshot (schema {schema!r:.60})")
    version = schema.partition("/")[2]
    major = version.split(".", 1)[0]
    if major != SCHEMA_MAJOR:
        newer = major.isdigit() and int(major) > int(SCHEMA_MAJOR)
        raise BadInput(
            f"{name} is {schema}; this pooltop reads {SNAPSHOT_SCHEMA}"
            + (" (the file comes from a newer pooltop: upgrade to read it)" if newer else "")
        )


@dataclass
class _Columns:
    """Counter columns as they are read, row by row."""

    tags: list[str]
    pools: list[int]
    values: dict[str, list[int]]  # the base columns, then the extra ones
    extra: list[str]

    @classmethod
    def start(cls, extra: Sequence[str] = ()) -> _Columns:
        return cls([], [], {c: [] for c in (*_BASE_COLUMNS, *extra)}, list(extra))

    def counters(self, source: str, has_alloc_counts: bool) -> CounterSet:
        v = self.values
        return CounterSet.build(
            self.tags, self.pools, v["allocs"], v["frees"], v["diff"], v["bytes"],
            {c: v[c] for c in self.extra},
            has_alloc_counts=has_alloc_counts, counter_bits=_counter_bits(source, v),
        )


def _json_counter(cols: _Columns, aliases: dict[str, tuple[str, ...]], i: int, row: Any, name: str) -> None:
    """Counter `i` of a JSON snapshot, appended to `cols`."""
    if not isinstance(row, dict):
        raise BadInput(f"{name}: counter {i} is not an object")
    tag, pool = row.get("tag"), row.get("pool")
    if not isinstance(tag, str) or not isinstance(pool, str):
        raise BadInput(f"{name}: counter {i} has no tag or pool")
    try:
        cols.pools.append(int(Pool.parse(pool)))
    except ValueError as e:
        raise BadInput(f"{name}: counter {i}: {e}") from None
    cols.tags.append(tag)
    for col in _BASE_COLUMNS:
        cols.values[col].append(_int(row.get(col), f"counter {i} ({tag!r}) {col}", name))
    for key, value in row.items():
        if key not in _NOT_EXTRA and isinstance(value, int) and not isinstance(value, bool):
            if key not in cols.values:
                cols.values[key] = [0] * i
                cols.extra.append(key)
            cols.values[key].append(_int(value, f"counter {i} {key}", name))
    for key in cols.extra:
        if len(cols.values[key]) < i + 1:
            cols.values[key].append(0)
    names = row.get("aliases")
    if isinstance(names, list) and names:
        aliases[tag] = tuple(str(n) for n in names)


def snapshot_from_json(obj: Any, name: str = "input") -> Snapshot:
    """A `pooltop.snapshot/1` object (as `pooltop snapshot --format json` writes it) -> Snapshot."""
    if not isinstance(obj, dict):
        raise BadInput(f"{name} is JSON but not a pooltop snapshot (not an object)")
    check_schema(obj.get("schema"), name)
    rows = obj.get("counters")
    if not isinstance(rows, list):
        raise BadInput(f"{name}: `counters` is missing or not a list")
    cols = _Columns.start()
    aliases: dict[str, tuple[str, ...]] = {}
    for i, row in enumerate(rows):
        _json_counter(cols, aliases, i, row, name)
    source = obj.get("source")
    if not isinstance(source, str) or not source:
        raise BadInput(f"{name}: `source` is missing")
    taken_at = _time(obj.get("taken_at"), name)
    host = obj.get("host")
    totals = obj.get("totals")
    warnings = obj.get("warnings")
    alloc_counts = obj.get("alloc_counts")
    has_alloc_counts = bool(alloc_counts) if isinstance(alloc_counts, bool) else source != "linux-slab"
    try:
        return Snapshot(
            source=source,
            taken_at=taken_at,
            monotonic_ns=int(taken_at.timestamp() * 1e9),
            host=HostInfo.from_json(host if isinstance(host, dict) else {}),
            totals=Totals.from_json(totals if isinstance(totals, dict) else {}),
            counters=cols.counters(source, has_alloc_counts),
            aliases=aliases,
            warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
        )
    except (ValueError, TypeError, OverflowError) as e:
        raise BadInput(f"{name}: {e}") from None


def _counter_bits(source: str, base: Mapping[str, Sequence[int]]) -> int:
    """The JSON does not say how wide allocs/frees were. Windows' class 22 counters are 32-bit and
    wrap; a value past 2^32 shows wider ones. Linux and process rows keep 64-bit counts."""
    if source.startswith(("linux", "process")):
        return 64
    wide = any(v >= 1 << 32 or v < 0 for col in ("allocs", "frees") for v in base[col])
    return 64 if wide else 32


# --- CSV --------------------------------------------------------------------------------------


def _csv_counter(cols: _Columns, col: Mapping[str, int], row: Sequence[str], line_no: int, name: str) -> None:
    """One CSV line's counter, appended to `cols`."""
    cols.tags.append(csv_text_back(row[col["tag"]]))
    try:
        cols.pools.append(int(Pool.parse(row[col["pool"]])))
    except ValueError as e:
        raise BadInput(f"{name}: line {line_no}: {e}") from None
    for c, column in cols.values.items():
        cell = row[col[c]].strip()
        try:
            number = int(cell) if cell else 0
        except ValueError:
            if c in _BASE_COLUMNS:
                raise BadInput(f"{name}: line {line_no}: {c} {cell!r:.30} is not a number") from None
            number = 0
        if not -INT64_MAX <= number <= INT64_MAX:
            raise BadInput(f"{name}: line {line_no}: {c} is out of range")
        column.append(number)


def snapshot_from_csv(text: str, name: str = "input", mtime: float | None = None) -> Snapshot:
    """`pooltop snapshot --format csv` output -> Snapshot (counters only; see the module notes)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput(f"{name} is empty") from None
    except csv.Error as e:
        raise BadInput(f"{name}: not CSV ({e})") from None
    col = {h.strip(): i for i, h in enumerate(header)}
    missing = [c for c in ("tag", "pool", *_BASE_COLUMNS) if c not in col]
    if missing:
        raise BadInput(f"{name}: CSV has no column {', '.join(missing)}")
    cols = _Columns.start([h for h in col if h not in _NOT_EXTRA and h])
    try:
        for line_no, row in enumerate(reader, 2):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < len(header):
                raise BadInput(f"{name}: line {line_no} has {len(row)} fields, the header {len(header)}")
            _csv_counter(cols, col, row, line_no, name)
    except csv.Error as e:
        raise BadInput(f"{name}: damaged CSV ({e})") from None
    slab_only = bool(cols.pools) and all(p == Pool.SLAB for p in cols.pools)
    source = "linux-slab" if slab_only else "windows-pooltag"
    taken_at = file_time(mtime)
    return Snapshot(
        source=source,
        taken_at=taken_at,
        monotonic_ns=int(taken_at.timestamp() * 1e9),
        host=HostInfo(name="", os="Linux" if slab_only else "Windows", os_version="", arch=""),
        totals=Totals(),
        counters=cols.counters(source, has_alloc_counts=not slab_only),
        warnings=("a CSV export has no host, totals or time: the file's modification time stands in",),
    )


# --- loading ----------------------------------------------------------------------------------


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def read_snapshots(path: str) -> list[Snapshot]:
    """Every snapshot in a file that is not a recording (recordings: use Recording, they are big)."""
    data = _read_bytes(path)
    if data.startswith(SQLITE_MAGIC):
        from pooltop.record import Recording

        with Recording(path) as rec:
            return [snap for _, snap in rec.snapshots()]
    return snapshots_from_bytes(data, path, _mtime(path))


def snapshots_from_bytes(data: bytes, path: str = "input", mtime: float | None = None) -> list[Snapshot]:
    """Every snapshot in a file's bytes (any kind but a recording, which SQLite reads from a file).
    `path` names the file in errors; `mtime` stands in for the time that text formats lack."""
    kind, text = _kind_of(path, data)
    name = os.path.basename(path) or path
    if kind is FileKind.RECORDING:
        raise BadInput(f"{path} is a recording: read it from its file")
    if kind is FileKind.BUNDLE:
        return [_snapshot_from_bundle(path, data)]
    if kind is FileKind.SNAPSHOT_JSON:
        return [snapshot_from_json(_load_json(text, path), path)]
    if kind is FileKind.SNAPSHOT_CSV:
        return [snapshot_from_csv(text, path, mtime)]
    if kind is FileKind.POOLMON_LOG:
        return parse_poolmon_log(text, mtime, name)
    return parse_poolused(text, mtime, name)


#: what the snapshot.json of a bundle may inflate to. A zip can inflate a thousandfold (a 1.5 MB
#: bundle to 1.5 GiB took 3.2 GB of memory): the size is checked before and while inflating.
MAX_BUNDLE_SNAPSHOT_BYTES = 128 * 1024 * 1024
#: what a damaged or unusual member raises while it is inflated (zlib, bz2, lzma, truncation,
#: encryption, an unknown method)
_INFLATE_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, lzma.LZMAError,
                   RuntimeError, NotImplementedError)


def _bundle_member(path: str, data: bytes, member: str) -> bytes:
    limit = MAX_BUNDLE_SNAPSHOT_BYTES
    too_big = f"{path}: {member} inflates to more than {limit >> 20} MiB; not a bundle pooltop wrote"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo(member)
            if info.file_size > limit:
                raise BadInput(too_big)
            with z.open(info) as f:
                raw = f.read(limit + 1)
    except KeyError:
        raise BadInput(f"{path} is a zip without {member} (not a pooltop bundle)") from None
    except _INFLATE_ERRORS as e:
        raise BadInput(f"{path} is a damaged zip ({e})") from None
    if len(raw) > limit:
        raise BadInput(too_big)
    return raw


def _snapshot_from_bundle(path: str, data: bytes) -> Snapshot:
    raw = _bundle_member(path, data, "snapshot.json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: snapshot.json is not valid JSON ({e})") from None
    return snapshot_from_json(_load_json(text, f"{path}: snapshot.json"), f"{path}:snapshot.json")


#: a JSON escape of a surrogate ("\ud800"): only then can a decoded string hold a lone one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _load_json(text: str, what: str) -> Any:
    """JSON text -> objects. Lone surrogates ("\\ud800" in a host name or tag) become the text
    \\ud800: no file, terminal or database can hold them (UTF-8 cannot encode them)."""
    hook = _pairs_without_surrogates if _SURROGATE_ESCAPE.search(text) else None
    try:
        return json.loads(text, object_pairs_hook=hook)
    except (ValueError, RecursionError) as e:
        raise BadInput(f"{what} is not valid JSON ({e})") from None


def _pairs_without_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return escape_surrogates(value)
        if isinstance(value, list):
            return [escape_surrogates(v) if isinstance(v, str) else v for v in value]
        return value

    return {escape_surrogates(k): clean(v) for k, v in pairs}


_REF = re.compile(r"^(?P<path>.+)@(?P<index>-?\d{1,9})$")


@dataclass(frozen=True)
class SnapshotRef:
    """A file, and optionally which of its snapshots."""

    path: str
    index: int | None = None

    @property
    def label(self) -> str:
        return self.path if self.index is None else f"{self.path}@{self.index}"


def parse_ref(text: str) -> SnapshotRef:
    if os.path.exists(text):
        return SnapshotRef(text)
    m = _REF.match(text)
    if m and os.path.exists(m.group("path")):
        return SnapshotRef(m.group("path"), int(m.group("index")))
    if m:
        raise PooltopError(f"{m.group('path')} does not exist")
    raise PooltopError(f"{text} does not exist")


def count_snapshots(path: str) -> int:
    """How many snapshots a file holds (a recording: its samples)."""
    if detect_kind(path) is FileKind.RECORDING:
        from pooltop.record import read_info

        return read_info(path).samples
    return len(read_snapshots(path))


def load_ref(ref: SnapshotRef) -> Snapshot:
    """The snapshot a reference names. A file with several and no index gives its last one."""
    index = -1 if ref.index is None else ref.index
    if detect_kind(ref.path) is FileKind.RECORDING:
        from pooltop.record import Recording

        with Recording(ref.path) as rec:
            return rec.snapshot_at(index)
    snaps = read_snapshots(ref.path)
    n = len(snaps)
    if not -n <= index < n:
        raise BadInput(f"{ref.path} holds {n} snapshot{'s' if n != 1 else ''}; there is no snapshot {index}")
    return snaps[index]


def load_snapshot(ref: str) -> Snapshot:
    """One snapshot from `FILE` or `FILE@INDEX`, whatever kind of file it is (see the module notes)."""
    return load_ref(parse_ref(ref))


def load_snapshots(path: str) -> list[Snapshot]:
    """Every snapshot of a file, in order (a recording's every sample)."""
    return read_snapshots(path)
