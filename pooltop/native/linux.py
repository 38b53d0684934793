"""Linux: slab caches from /proc/slabinfo, totals from /proc/meminfo, SLUB aliases from /sys.

Parsers are pure functions of text; `LinuxSource` takes its roots as parameters so tests can point
it at recorded trees (tests/data/linux/...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pooltop.errors import BadInput, NeedsElevation, Unsupported
from pooltop.model import CounterSet, HostInfo, Int64Array, Pool, Snapshot, Totals, printable, utc_now
from pooltop.native import Source

SLABINFO_VERSION = "2.1"

# Data line: name active_objs num_objs objsize objperslab pagesperslab : tunables l b s : slabdata a n s
_DATA_FIELDS = 16


@dataclass(frozen=True, eq=False)
class SlabTable:
    """Parsed /proc/slabinfo, column-wise (int64 arrays)."""

    names: tuple[str, ...]
    active_objs: Int64Array
    num_objs: Int64Array
    objsize: Int64Array
    objperslab: Int64Array
    pagesperslab: Int64Array
    num_slabs: Int64Array
    #: rows left out, one line each (a cache whose name the line format cannot carry)
    warnings: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlabTable):
            return NotImplemented
        return self.names == other.names and all(
            np.array_equal(getattr(self, f), getattr(other, f))
            for f in ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab", "num_slabs")
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_columns(cls, names: tuple[str, ...], columns: npt.ArrayLike,
                     warnings: tuple[str, ...] = ()) -> SlabTable:
        values = np.asarray(columns, dtype=np.int64).reshape(len(_NUMERIC_FIELDS), len(names))
        if values.size and values.min() < 0:
            raise BadInput("slabinfo has a negative count")
        active, num, size, perslab, pages, slabs = values
        return cls(names, active, num, size, perslab, pages, slabs, warnings)


def parse_slabinfo(text: str | bytes) -> SlabTable:
    """Parse /proc/slabinfo (format 2.1). Raises BadInput with the line number on anything else.

    The live UI parses this every refresh, so the common case splits the whole body once and
    converts the numbers in one numpy call; any irregularity falls back to the line-by-line
    parser, which names the offending line.
    """
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    if not data.strip():
        raise BadInput("slabinfo is empty")
    head, _, rest = data.partition(b"\n")
    _check_header(head.decode("utf-8", "replace").strip())
    _, _, body = rest.partition(b"\n") if rest.startswith(b"#") else (b"", b"", rest)
    fast = _parse_body_fast(body)
    return fast if fast is not None else _parse_body_lines(data)


def _check_header(head: str) -> None:
    if not head.startswith("slabinfo - version:"):
        raise BadInput("not slabinfo: the first line must be 'slabinfo - version: 2.1'")
    version = head.partition(":")[2].strip()
    if version != SLABINFO_VERSION:
        raise BadInput(
            f"slabinfo version {version or '?'} is not supported (pooltop reads {SLABINFO_VERSION})"
        )


_NUMERIC_FIELDS = (1, 2, 3, 4, 5, 14)


def _parse_body_fast(body: bytes) -> SlabTable | None:
    """The common case in few C-level passes (a sample is read, parsed and built in ~1.5x the time
    the kernel takes to print the file; the per-name decode and a per-byte digit check were a third
    of the parse)."""
    toks = body.split()
    lines = body.count(b"\n") + (0 if not body or body.endswith(b"\n") else 1)
    n = len(toks) // _DATA_FIELDS
    if (
        len(toks) != _DATA_FIELDS * n
        or n != lines
        or toks[6::_DATA_FIELDS].count(b":") != n
        or toks[11::_DATA_FIELDS].count(b":") != n
    ):
        return None
    if not n:
        return SlabTable.from_columns((), np.zeros(0, np.int64))
    numeric: list[bytes] = []
    for i in _NUMERIC_FIELDS:
        numeric += toks[i::_DATA_FIELDS]
    joined = b" ".join(numeric)
    # Digits only (nothing left once digits and the separators are deleted): anything else goes to
    # the careful parser, which names the line.
    if joined.translate(None, b"0123456789 "):
        return None
    # One C-level parse of all numbers; int() per token costs 3x more on a 250-cache machine.
    values = np.fromstring(joined, dtype=np.int64, sep=" ")
    # fromstring saturates numbers too large for int64; no slab count comes near 2^62.
    if values.size != len(numeric) or int(values.max()) >= 1 << 62:
        return None
    # One decode for all names (names cannot hold a newline: they are whitespace-free tokens).
    names = b"\n".join(toks[0::_DATA_FIELDS]).decode("utf-8", "replace").split("\n")
    return SlabTable.from_columns(tuple(names), values)


def _parse_body_lines(data: bytes) -> SlabTable:
    names: list[str] = []
    cols: list[list[int]] = [[], [], [], [], [], []]
    skipped: list[str] = []
    # Lines end at \n only: a CR (or any other control character) belongs to the line it is in.
    for lineno, line in enumerate(data.split(b"\n")[1:], start=2):
        if not line.strip() or line.startswith(b"#"):
            continue
        head, *fields = line.rsplit(None, _DATA_FIELDS - 1)
        numbers = _slab_numbers(lineno, line, fields)
        name = head.split()
        if len(name) > 1:
            # The name itself holds white space (a CR, say): the numbers are sound, the name cannot
            # be told apart from the columns, so this one row is left out rather than the file.
            shown = printable(head.strip().decode("utf-8", "replace"))
            skipped.append(f"slabinfo line {lineno}: cache name '{shown}' holds white space; row left out")
            continue
        names.append(name[0].decode("utf-8", "replace"))
        for col, value in zip(cols, numbers, strict=True):
            col.append(value)
    return SlabTable.from_columns(tuple(names), cols, tuple(skipped))


def _slab_numbers(lineno: int, line: bytes, fields: list[bytes]) -> tuple[int, ...]:
    """The six numbers pooltop keeps from the 15 fields after a cache's name; BadInput naming the
    line when they are not there."""
    shown = line[:60].decode("utf-8", "replace")
    if len(fields) != _DATA_FIELDS - 1 or fields[5] != b":" or fields[10] != b":":
        raise BadInput(f"slabinfo line {lineno} is malformed: {shown!r}")
    try:
        numbers = tuple(int(fields[i - 1]) for i in _NUMERIC_FIELDS)
    except ValueError:
        raise BadInput(f"slabinfo line {lineno} has a non-numeric field: {shown!r}") from None
    if max(numbers) >= 1 << 62:
        raise BadInput(f"slabinfo line {lineno} has a number out of range: {shown!r}")
    if min(numbers) < 0:
        raise BadInput(f"slabinfo line {lineno} has a negative count: {shown!r}")
    return numbers


#: what a degraded source (slabinfo not readable) shows: no caches, and still no alloc counts
_NO_CACHES = SlabTable.from_columns((), np.zeros(0, np.int64))


def slab_counters(table: SlabTable, reclaimable: frozenset[str] | None = None) -> CounterSet:
    """slabinfo -> counters: tag = cache name, diff = active objects, bytes = active x object size.

    /proc/slabinfo has no cumulative alloc/free counts, so those columns stay 0 and the set says so.
    With `reclaimable` (the names read_reclaimable gives) a `reclaimable` column (1/0) says which
    caches the kernel frees under memory pressure; kmalloc-rcl-* caches are reclaimable by name.
    """
    active = table.active_objs
    size = table.objsize
    n = len(table.names)
    zeros = np.zeros(n, dtype=np.int64)
    return CounterSet.build(
        table.names,
        np.full(n, Pool.SLAB, dtype=np.uint8),
        zeros,
        zeros,
        active,
        active * size,
        extra={
            "total_objects": table.num_objs,
            "object_size": table.objsize,
            "slab_pages": table.num_slabs * table.pagesperslab,
        } | ({} if reclaimable is None else {"reclaimable": np.fromiter(
            (name in reclaimable or name.startswith("kmalloc-rcl-") for name in table.names),
            dtype=np.int64, count=n)}),
        has_alloc_counts=False,
        counter_bits=64,
        copy=False,  # every column is fresh from the parse or made here
    )


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {field: bytes}. Fields without a unit (HugePages_*) are counts, kept as is."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            value = int(fields[0])
        except ValueError:
            continue
        if len(fields) > 1 and fields[1] == "kB":
            value *= 1024
        out[key.strip()] = value
    return out


def meminfo_totals(info: Mapping[str, int]) -> Totals:
    return Totals(
        slab=info.get("Slab"),
        slab_reclaimable=info.get("SReclaimable"),
        slab_unreclaimable=info.get("SUnreclaim"),
        memory_total=info.get("MemTotal"),
        # MemAvailable exists since Linux 3.14; older kernels leave it out.
        memory_available=info.get("MemAvailable"),
        commit=info.get("Committed_AS"),
        commit_limit=info.get("CommitLimit"),
        swap_total=info.get("SwapTotal"),
        swap_free=info.get("SwapFree"),
    )


def read_slub_aliases(sys_root: str = "/sys") -> dict[str, tuple[str, ...]]:
    """Cache name -> the other names merged into the same SLUB cache.

    In /sys/kernel/slab every name of a merged cache is a symlink to one directory (":A-0000040");
    /proc/slabinfo prints just one of those names, which need not be the one whose users grow.
    """
    base = os.path.join(sys_root, "kernel", "slab")
    groups: dict[str, list[str]] = {}
    try:
        entries = list(os.scandir(base))
    except OSError:
        return {}
    for entry in entries:
        try:
            if not entry.is_symlink():
                continue
            target = os.path.basename(os.readlink(entry.path))
        except OSError:
            continue
        groups.setdefault(target, []).append(entry.name)
    out: dict[str, tuple[str, ...]] = {}
    for names in groups.values():
        if len(names) < 2:
            continue
        names.sort()
        for name in names:
            out[name] = tuple(n for n in names if n != name)
    return out


def _gethostname() -> str:
    # gethostname(2) on Linux is uname's nodename; os.uname spares `pooltop snapshot` the socket module.
    return os.uname().nodename


def read_reclaimable(sys_root: str = "/sys") -> frozenset[str]:
    """Names of the slab caches created with SLAB_RECLAIM_ACCOUNT (/sys/kernel/slab/NAME/reclaim_account
    is 1): dentries, inodes, buffer heads... memory the kernel gives back under pressure. Every name
    of a merged cache is listed (they share the one directory). Empty when /sys is not readable.

    A merged cache's directory is named by SLUB's id, ':' + flags + '-' + size, where flag 'a' is
    SLAB_RECLAIM_ACCOUNT (mm/slub.c create_unique_id): only caches with a directory of their own are
    read (139 files instead of 425 here, 6 -> 2 ms that `pooltop snapshot` pays at its start)."""
    base = os.path.join(sys_root, "kernel", "slab")
    try:
        entries = list(os.scandir(base))
    except OSError:
        return frozenset()
    out = set()
    for entry in entries:
        unique = _slub_id(entry)
        if unique is not None:
            reclaim = "a" in unique[1:].partition("-")[0]
        else:
            reclaim = _read_flag(os.path.join(entry.path, "reclaim_account"))
        if reclaim:
            out.add(entry.name)
    return frozenset(out)


def _slub_id(entry: os.DirEntry[str]) -> str | None:
    """The SLUB id (':A-0000192') an entry of /sys/kernel/slab is named by or links to, if any."""
    try:
        name = os.path.basename(os.readlink(entry.path)) if entry.is_symlink() else entry.name
    except OSError:
        return None
    return name if name.startswith(":") else None


def _read_flag(path: str) -> bool:
    """A sysfs 0/1 file is 1 (plain reads: a text file object costs more than the read here)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.read(fd, 16).strip() == b"1"
    except OSError:
        return False
    finally:
        os.close(fd)


def parse_memory_pressure(text: str) -> int | None:
    """/proc/pressure/memory -> the `some` line's total: microseconds some task stalled on memory."""
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind != "some":
            continue
        for field_ in rest.split():
            key, _, value = field_.partition("=")
            if key == "total" and value.isdigit():
                return int(value)
    return None


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class LinuxSource(Source):
    """Slab caches of the running kernel (or of a recorded /proc + /sys tree)."""

    name = "linux-slab"

    def __init__(
        self,
        proc_root: str = "/proc",
        sys_root: str = "/sys",
        *,
        alias_refresh_s: float = 30.0,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        hostname: Callable[[], str] | None = None,
    ) -> None:
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._alias_refresh_ns = int(alias_refresh_s * 1e9)
        self._monotonic_ns = monotonic_ns
        self._hostname = hostname or _gethostname
        self._aliases: dict[str, tuple[str, ...]] = {}
        self._reclaimable: frozenset[str] = frozenset()
        self._aliases_at: int | None = None
        self._pressure_readable = True
        # Host name, kernel release and build, read again every alias_refresh_s (a live view asks
        # every refresh; only the uptime moves)
        self._host_facts: tuple[str, str, str, str | None] | None = None
        self._host_facts_at: int | None = None

    def _proc(self, name: str) -> str:
        return os.path.join(self.proc_root, name)

    def host(self) -> HostInfo:
        """Host facts from proc_root (so a copied tree describes its own machine, not this one)."""
        uptime: float | None = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            uptime = float(_read_text(self._proc("uptime")).split()[0])
        now = self._monotonic_ns()
        facts, facts_at = self._host_facts, self._host_facts_at
        if facts is None or facts_at is None or now - facts_at >= self._alias_refresh_ns:
            live = os.path.realpath(self.proc_root) == "/proc"
            uts = os.uname() if live else None

            def kernel_fact(name: str, fallback: str) -> str:
                try:
                    return _read_text(self._proc(f"sys/kernel/{name}")).strip() or fallback
                except OSError:
                    return fallback

            facts = (
                self._hostname() if live else kernel_fact("hostname", "unknown"),
                kernel_fact("osrelease", uts.release if uts else "unknown"),
                uts.machine if uts else kernel_fact("arch", "unknown"),
                kernel_fact("version", uts.version if uts else "") or None,
            )
            self._host_facts, self._host_facts_at = facts, now
        name, release, arch, build = facts
        return HostInfo(name=name, os="Linux", os_version=release, arch=arch, uptime_s=uptime, build=build)

    def read_slabinfo(self) -> bytes:
        path = self._proc("slabinfo")
        try:
            # Unbuffered: the kernel hands /proc/slabinfo out a page per read (seq_file), so a
            # buffer in between only adds copies.
            with open(path, "rb", buffering=0) as f:
                return f.readall()
        except PermissionError:
            raise NeedsElevation("reading /proc/slabinfo needs root (run pooltop with sudo)") from None
        except FileNotFoundError:
            raise Unsupported(f"{path} does not exist (a kernel without slab statistics?)") from None
        except OSError as e:
            raise Unsupported(f"cannot read {path}: {e.strerror}") from None

    def aliases(self, now_ns: int) -> dict[str, tuple[str, ...]]:
        if self._aliases_at is None or now_ns - self._aliases_at >= self._alias_refresh_ns:
            self._aliases = read_slub_aliases(self.sys_root)
            self._reclaimable = read_reclaimable(self.sys_root)
            self._aliases_at = now_ns
        return self._aliases

    def memory_stall_us(self) -> int | None:
        """The pressure stall total (Linux 4.20+ with CONFIG_PSI; None elsewhere, asked once)."""
        if not self._pressure_readable:
            return None
        try:
            return parse_memory_pressure(_read_text(self._proc("pressure/memory")))
        except OSError:
            self._pressure_readable = False
            return None

    def sample(self) -> Snapshot:
        warnings: list[str] = []
        try:
            table = parse_slabinfo(self.read_slabinfo())
            self.aliases(self._monotonic_ns())  # also refreshes the reclaimable names
        except (NeedsElevation, Unsupported) as e:
            # Degraded: say why once, still show the totals that are readable.
            warnings.append(f"{e}; showing system totals only")
            table = _NO_CACHES
        warnings.extend(table.warnings)
        counters = slab_counters(table, self._reclaimable)
        try:
            totals = dataclasses.replace(meminfo_totals(parse_meminfo(_read_text(self._proc("meminfo")))),
                                         memory_stall_us=self.memory_stall_us())
        except OSError as e:
            warnings.append(f"cannot read {self._proc('meminfo')}: {e.strerror}")
            totals = Totals()
        now = self._monotonic_ns()
        return Snapshot(
            source=self.name,
            taken_at=utc_now(),
            monotonic_ns=now,
            host=self.host(),
            totals=totals,
            counters=counters,
            aliases=self.aliases(now) if len(counters) else {},
            warnings=tuple(warnings),
        )
