"""pooltop's records: one immutable snapshot of a machine's kernel pool (or slab) usage.

Counters are stored column-wise (numpy arrays, made read-only) because a Windows server can have
tens of thousands of tags and every refresh computes deltas and a sort over all of them; per-row
Python objects would cost more than the whole refresh budget. `Snapshot.rows()` gives per-row
records for exports and tests, where speed does not matter.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

SNAPSHOT_SCHEMA = "pooltop.snapshot/1"

U32 = 1 << 32

Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]


class Pool(enum.IntEnum):
    """The pool a counter belongs to. Values are stable: recordings store them."""

    NONPAGED = 0
    PAGED = 1
    SESSION = 2
    SLAB = 3
    PROCESS = 4  # a user-mode process's memory, tracked like a tag (pooltop processes)

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def short(self) -> str:
        """poolmon's one-word type column."""
        return {Pool.NONPAGED: "Nonp", Pool.PAGED: "Paged", Pool.SESSION: "Sess", Pool.SLAB: "Slab",
                Pool.PROCESS: "Proc"}[self]

    @classmethod
    def parse(cls, text: str) -> Pool:
        key = text.strip().lower()
        for pool in cls:
            if pool.label == key or pool.short.lower() == key:
                return pool
        raise ValueError(f"unknown pool type {text!r} (use paged, nonpaged, session or slab)")


def _frozen(values: Any, dtype: type[np.generic], copy: bool = True) -> Any:
    arr = np.array(values, dtype=dtype, copy=True) if copy else np.asarray(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


_EMPTY: CounterSet | None = None


@dataclass(frozen=True, eq=False)
class CounterSet:
    """All counters of one snapshot, one row per (tag, pool).

    allocs/frees are cumulative counts (32-bit and wrapping on Windows; absent on Linux, where they
    are 0); diff is outstanding allocations (allocs - frees, or active objects for a slab cache);
    bytes is the memory in use. `extra` holds backend-specific columns (slab: total_objects,
    object_size, slab_pages; session pool: session_id).
    """

    tags: tuple[str, ...]
    pools: UInt8Array
    allocs: Int64Array
    frees: Int64Array
    diff: Int64Array
    bytes: Int64Array
    extra: Mapping[str, Int64Array] = field(default_factory=dict)
    has_alloc_counts: bool = True
    #: width of the allocs/frees counters: 32 (Windows class 22, they wrap) or 64
    counter_bits: int = 32

    @classmethod
    def build(
        cls,
        tags: Sequence[str],
        pools: Sequence[int] | npt.ArrayLike,
        allocs: npt.ArrayLike,
        frees: npt.ArrayLike,
        diff: npt.ArrayLike,
        bytes_: npt.ArrayLike,
        extra: Mapping[str, npt.ArrayLike] | None = None,
        has_alloc_counts: bool = True,
        counter_bits: int = 32,
        copy: bool = True,
    ) -> CounterSet:
        """A set from columns. With copy=False the set takes ownership of numpy arrays given in the
        right dtype (they become read-only): decoders that made fresh arrays save the copies."""
        n = len(tags)
        columns = {
            "pools": _frozen(pools, np.uint8, copy),
            "allocs": _frozen(allocs, np.int64, copy),
            "frees": _frozen(frees, np.int64, copy),
            "diff": _frozen(diff, np.int64, copy),
            "bytes": _frozen(bytes_, np.int64, copy),
        }
        ext = {k: _frozen(v, np.int64, copy) for k, v in (extra or {}).items()}
        for name, col in (*columns.items(), *ext.items()):
            if col.shape != (n,):
                raise ValueError(f"column {name} has {col.shape[0] if col.ndim else 0} rows, expected {n}")
        return cls(
            tags=tuple(tags),
            extra=ext,
            has_alloc_counts=has_alloc_counts,
            counter_bits=counter_bits,
            **columns,
        )

    @classmethod
    def empty(cls) -> CounterSet:
        # Immutable, and asked for on every refresh (no vanished rows): one is enough.
        if cls is CounterSet:
            global _EMPTY
            if _EMPTY is None:
                _EMPTY = cls.build((), (), (), (), (), ())
            return _EMPTY
        return cls.build((), (), (), (), (), ())

    def __len__(self) -> int:
        return len(self.tags)

    def key(self, i: int) -> tuple[str, Pool]:
        return self.tags[i], Pool(int(self.pools[i]))

    def keys(self) -> list[tuple[str, int]]:
        return list(zip(self.tags, self.pools.tolist(), strict=True))

    def same_keys(self, other: CounterSet) -> bool:
        """True when both sets hold the same (tag, pool) rows in the same order (the common case)."""
        # Sources hand out the very same tags tuple while the rows stay (the Windows decoder's
        # TagTextCache): identity first, as comparing two equal 50,000-tuples walks them all.
        return self is other or (
            len(self) == len(other)
            and (self.tags is other.tags or self.tags == other.tags)
            and np.array_equal(self.pools, other.pools)
        )

    def pools_present(self) -> frozenset[int]:
        """The pools that have rows (computed once: the set is immutable)."""
        cached: frozenset[int] | None = self.__dict__.get("_pools_present")
        if cached is None:
            cached = frozenset(np.flatnonzero(np.bincount(self.pools, minlength=1)).tolist())
            object.__setattr__(self, "_pools_present", cached)
        return cached

    def index(self) -> dict[tuple[str, int], int]:
        """(tag, pool) -> row. Built on first use and kept: the set is immutable."""
        cached: dict[tuple[str, int], int] | None = self.__dict__.get("_index")
        if cached is None:
            cached = {k: i for i, k in enumerate(self.keys())}
            object.__setattr__(self, "_index", cached)
        return cached

    def per_alloc(self) -> npt.NDArray[np.float64]:
        """Bytes per outstanding allocation (0 where nothing is outstanding); a slab cache's object
        size, which an empty cache has too."""
        size = self.extra.get("object_size")
        if size is not None:
            return size.astype(np.float64)
        d = self.diff.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(d > 0, self.bytes / np.where(d > 0, d, 1.0), 0.0)
        return out

    def select(self, rows: npt.ArrayLike) -> CounterSet:
        """A new set with the given rows (an index array or boolean mask), in that order."""
        idx = np.asarray(rows)
        if idx.dtype == np.bool_:
            idx = np.flatnonzero(idx)
        ilist = idx.tolist()
        return CounterSet.build(
            [self.tags[i] for i in ilist],
            self.pools[idx],
            self.allocs[idx],
            self.frees[idx],
            self.diff[idx],
            self.bytes[idx],
            {k: v[idx] for k, v in self.extra.items()},
            self.has_alloc_counts,
            self.counter_bits,
        )


@dataclass(frozen=True)
class HostInfo:
    name: str
    os: str
    os_version: str
    arch: str
    uptime_s: float | None = None
    build: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "os": self.os,
            "os_version": self.os_version,
            "arch": self.arch,
            "uptime_s": self.uptime_s,
        }
        if self.build is not None:
            out["build"] = self.build
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HostInfo:
        uptime = obj.get("uptime_s")
        return cls(
            name=str(obj.get("name", "")),
            os=str(obj.get("os", "")),
            os_version=str(obj.get("os_version", "")),
            arch=str(obj.get("arch", "")),
            # NaN or infinity (JSON that is not strict) is no uptime: strict JSON writers refuse it
            uptime_s=float(uptime) if isinstance(uptime, int | float) and math.isfinite(uptime) else None,
            build=str(obj["build"]) if obj.get("build") is not None else None,
        )


@dataclass(frozen=True)
class Totals:
    """System-wide figures, in bytes. Each backend fills what its OS gives; the rest stay None."""

    paged_pool: int | None = None
    nonpaged_pool: int | None = None
    slab: int | None = None
    slab_reclaimable: int | None = None
    slab_unreclaimable: int | None = None
    memory_total: int | None = None
    memory_available: int | None = None
    commit: int | None = None
    commit_limit: int | None = None
    swap_total: int | None = None
    swap_free: int | None = None
    #: Linux 4.20+: /proc/pressure/memory "some" total, microseconds some task stalled on memory
    #: (cumulative; its growth over a window says the kernel was short of memory then)
    memory_stall_us: int | None = None

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Totals:
        known = cls.__dataclass_fields__
        return cls(**{k: int(v) for k, v in obj.items() if k in known and isinstance(v, int | float)})

    def items(self) -> Iterator[tuple[str, int]]:
        yield from self.to_json().items()


@dataclass(frozen=True)
class Snapshot:
    """One sample of one machine. Immutable: workers hand it to the UI and recorders as is."""

    source: str
    taken_at: dt.datetime
    monotonic_ns: int
    host: HostInfo
    totals: Totals
    counters: CounterSet
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is None:
            raise ValueError("Snapshot.taken_at must be timezone-aware (UTC)")

    def rows(self) -> Iterator[PoolCounter]:
        c = self.counters
        pa = c.per_alloc()
        extra_names = list(c.extra)
        for i, tag in enumerate(c.tags):
            yield PoolCounter(
                tag=tag,
                pool=Pool(int(c.pools[i])),
                allocs=int(c.allocs[i]),
                frees=int(c.frees[i]),
                diff=int(c.diff[i]),
                bytes=int(c.bytes[i]),
                per_alloc=float(pa[i]),
                extra={k: int(c.extra[k][i]) for k in extra_names},
                aliases=self.aliases.get(tag, ()),
            )


@dataclass(frozen=True)
class PoolCounter:
    """One row of a snapshot, for exports and tests."""

    tag: str
    pool: Pool
    allocs: int
    frees: int
    diff: int
    bytes: int
    per_alloc: float = 0.0
    extra: Mapping[str, int] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


# --- column metadata ---------------------------------------------------------------------------


class ColumnKind(enum.Enum):
    TEXT = "text"
    COUNT = "count"
    BYTES = "bytes"
    LEVEL = "level"


@dataclass(frozen=True)
class Column:
    """One column of the pool table. The TUI, the text/CSV exports and the help screen read these."""

    key: str
    title: str
    kind: ColumnKind
    help: str
    unit: str = ""
    is_change: bool = False
    width: int = 10
    # Lower priority columns are hidden first on narrow terminals.
    priority: int = 5
    sort_key: str | None = None


COLUMNS: tuple[Column, ...] = (
    Column("tag", "Tag", ColumnKind.TEXT, "Pool tag (Windows) or slab cache name (Linux)",
           width=4, priority=0, sort_key="t"),
    Column("pool", "Type", ColumnKind.TEXT, "Pool type: Nonp(aged), Paged, Sess(ion) or Slab",
           width=5, priority=1),
    Column("allocs", "Allocs", ColumnKind.COUNT, "Allocations since boot (32-bit, wraps)",
           unit="allocations", width=11, priority=3, sort_key="a"),
    Column("d_allocs", "dAllocs", ColumnKind.COUNT, "Change in allocations",
           unit="allocations", is_change=True, width=8, priority=6),
    Column("frees", "Frees", ColumnKind.COUNT, "Frees since boot (32-bit, wraps)",
           unit="frees", width=11, priority=4, sort_key="f"),
    Column("d_frees", "dFrees", ColumnKind.COUNT, "Change in frees",
           unit="frees", is_change=True, width=8, priority=7),
    Column("diff", "Diff", ColumnKind.COUNT,
           "Outstanding allocations (allocs - frees; active objects on Linux)",
           unit="allocations", width=10, priority=1, sort_key="d"),
    Column("d_diff", "dDiff", ColumnKind.COUNT, "Change in outstanding allocations",
           unit="allocations", is_change=True, width=8, priority=2),
    Column("bytes", "Bytes", ColumnKind.BYTES, "Bytes in use", unit="bytes", width=12, priority=0,
           sort_key="b"),
    Column("d_bytes", "dBytes", ColumnKind.BYTES, "Change in bytes in use", unit="bytes",
           is_change=True, width=10, priority=1),
    Column("per_alloc", "Per Alloc", ColumnKind.BYTES, "Bytes per outstanding allocation", unit="bytes",
           width=9, priority=5, sort_key="m"),
    Column("owner", "Owner", ColumnKind.TEXT, "Driver or cache that owns the tag (tag database)",
           width=24, priority=2),
    Column("leak", "Leak", ColumnKind.LEVEL, "Leak level (the leak judge; ~ reclaimable)", width=7,
           priority=1),
)

COLUMN_BY_KEY: Mapping[str, Column] = {c.key: c for c in COLUMNS}


def human_bytes(n: float) -> str:
    """Compact, signed byte size: 1023 B, 1.5 KiB, 12.0 MiB."""
    if not math.isfinite(n):
        return "?"
    sign = "-" if n < 0 else ""
    v = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{sign}{int(v)} {unit}" if unit == "B" else f"{sign}{v:.1f} {unit}"
        v /= 1024
    raise AssertionError("unreachable")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def escape_tag(raw: bytes) -> str:
    """A tag's bytes as text that is safe to print: printable ASCII as is (padding kept), the rest \\xNN.

    Tags come from kernel memory and from files users send us; a raw escape byte must never reach
    a terminal.
    """
    if all(0x20 <= b < 0x7F and b != 0x5C for b in raw):
        return raw.decode("ascii")
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


# C0, DEL and C1: a terminal acts on them (ESC, BEL, BS, CR; 0x9B is CSI to some terminals).
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
# A lone surrogate (from JSON "\\ud800" or a surrogateescape'd name) cannot be encoded as UTF-8 at all.
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """Text safe to put on a terminal, in a CSV cell or a Prometheus label: control characters as
    \\xNN and lone surrogates as \\uNNNN. Tags are escaped already; names, owners and descriptions
    from the kernel, files and replayed data may not be."""
    if text.isprintable():
        return text
    return escape_surrogates(text.translate(_CONTROL))


def escape_surrogates(text: str) -> str:
    """Lone surrogates as \\uNNNN, the rest as is: a string from JSON ("\\ud800") or a
    surrogateescape'd name that must become UTF-8 (a file, a terminal, SQLite)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def unescape_tag(text: str) -> bytes:
    """Inverse of escape_tag, for tags typed by a user or read back from an export."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x", i) and i + 4 <= len(text):
            try:
                out.append(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out += text[i].encode("latin-1", "replace")
        i += 1
    return bytes(out)
