"""Fuzzes every snapshot reader with mutated valid inputs: zero tracebacks, zero hangs.

    python benchmarks/fuzz_readers.py [--cases N] [--seed S] [--save DIR]

The readers: pooltop JSON and CSV snapshots, poolmon logs and screen copies, WinDbg !poolused
output (UTF-8, Latin-1 and UTF-16) and vendor bundles (the zip, and the JSON inside it), each
through `snapshots_from_bytes`, kind detection included. Every snapshot read is then written the
ways `import`, `diff` and `report` write it (JSON, CSV, text, a diff with itself, a one-snapshot
report, a report on a series of five), all encoded as UTF-8 as a terminal or file would. Only
pooltop's own errors (BadInput, PooltopError) may come out; anything else is a failure, and a case
that runs longer than --hang-s seconds a hang. Prints per reader: cases, read, refused cleanly,
failures, hangs and the slowest case; exit 1 when anything failed or hung. --save writes each
failing input to DIR.

The inputs start from valid files (written by pooltop's writers and tests/data/import/) and are
mutated at random: bytes flipped, slices cut or repeated, lines swapped, hostile tokens inserted
(lone surrogates, control characters, formulas, huge numbers, deep nesting), JSON values changed
to other types, bundles re-zipped with other compressions or damaged streams.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import random
import signal
import sys
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from pooltop.errors import PooltopError
from pooltop.judge import JudgeThresholds
from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.report.render import render_json, render_text
from pooltop.report.series import build_series_report, render_single
from pooltop.share.diff import RENDERERS, diff_snapshots
from pooltop.snapshots.readers import snapshots_from_bytes
from pooltop.snapshots.writers import FORMATTERS

IMPORT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "import")

TOKENS = [
    "\\ud800", "\\udfff", "\\u0000", "\\u001b[31m", "\x1b[2J", "\x07", "\x08", "\r", "\t", "\x00", "\ufeff",
    "=cmd|'/C calc'!A0", "+SUM(1)", "@x", "-x", "'", '"', ",", "\n", "\r\n", "(", ")", "( -5)", "[", "]",
    "-1", "0", "4294967296", "18446744073709551616", "99999999999999999999999999", "1e400", "-1e400", "NaN",
    "Infinity", "-0", "1.5", "true", "null", "[]", "{}", "[" * 3000, "{\"a\":" * 3000,
    " Nonp ", " Paged ", " Sess ", "\tNonp\t", " Tag  Type     Allocs ", " Memory:1K Avail:2K ",
    " Pool N:5K P:6K ", "Session 3 pool information", "All sessions pool information", "TOTAL 1 2 3 4",
    "0: kd> !poolused 8", "0: kd> !poolused zz", "  Pool Used:", "NonPaged Paged Session",
    " Tag    Allocs     Used    Allocs     Used", "[snip]", "C:\\>", "\xff\xfe", "\udcff", "é", "ÿ",
    "pooltop.snapshot/2", "pooltop.snapshot/1.9", "tag,pool,allocs,frees,diff,bytes",
]


# --- seeds ------------------------------------------------------------------------------------


def _snapshots() -> list[Snapshot]:
    t = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    win = CounterSet.build(
        ["Io  ", " rx ", "A\\x00b", "Wrap", "Q,\"z"], [0, 1, 2, 0, 1],
        [1000, 5, (1 << 32) - 5, 7, 9], [900, 1, (1 << 32) - 9, 7, 2], [100, 4, 4, 0, 7],
        [6400, 256, 123, 0, 448], {"session_id": [-1, -1, 3, -1, -1]},
    )
    slab = CounterSet.build(
        ["dentry", "kmalloc-64", "UDP"], [int(Pool.SLAB)] * 3, [0, 0, 0], [0, 0, 0], [100, 7, 3],
        [19200, 448, 3072], {"total_objects": [120, 64, 4], "object_size": [192, 64, 1024]},
        has_alloc_counts=False, counter_bits=64,
    )
    return [
        Snapshot("windows-pooltag", t, 1,
                 HostInfo("srv01", "Windows", "10.0.26100", "AMD64", 12.5, "26100.1"),
                 Totals(paged_pool=1 << 30, nonpaged_pool=1 << 29), win, warnings=("degraded",)),
        Snapshot("linux-slab", t, 2, HostInfo("box", "Linux", "6.18", "x86_64"), Totals(slab=1 << 22), slab,
                 aliases={"kmalloc-64": ("a", "b")}),
    ]


def _zip(member: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("snapshot.json", member)
        z.writestr("README.txt", b"a pooltop bundle")
    return buf.getvalue()


def seeds() -> dict[str, list[bytes]]:
    snaps = _snapshots()
    json_seeds = [FORMATTERS["json"](s).encode() for s in snaps]
    out: dict[str, list[bytes]] = {
        "json": json_seeds,
        "csv": [FORMATTERS["csv"](s).encode() for s in snaps],
        "poolmon": [],
        "poolused": [],
        "bundle": [_zip(j) for j in json_seeds],
    }
    for name in sorted(os.listdir(IMPORT_DATA)):
        kind = name.split("-", 1)[0]
        if kind in ("poolmon", "poolused"):
            with open(os.path.join(IMPORT_DATA, name), "rb") as f:
                out[kind].append(f.read())
    return out


# --- mutations --------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "surrogatepass")
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str, rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.05:
        return text.encode("utf-16", "surrogatepass")
    if pick < 0.10:
        return text.encode("latin-1", "replace")
    try:  # the file's own odd bytes back as they were
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate a mutation made: its UTF-8-like bytes, as broken files hold
        return text.encode("utf-8", "surrogatepass")


def mutate_text(text: str, rng: random.Random) -> str:
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        n = len(text)
        at = rng.randrange(n + 1)
        op = rng.randrange(8)
        if op == 0 and n:
            code = rng.choice((rng.randrange(32), rng.randrange(256), rng.randrange(0x110000)))
            text = text[:at] + chr(code) + text[at + 1:]
        elif op == 1:
            text = text[:at] + text[at + rng.randrange(1, 200):]
        elif op == 2:
            end = min(n, at + rng.randrange(1, 300))
            text = text[:end] + text[at:end] * rng.randrange(1, 4) + text[end:]
        elif op == 3:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif op == 4:
            text = text[: rng.randrange(n + 1)]
        elif op == 5:
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif op == 6:
            digits = [k for k in range(n) if text[k].isdigit()]
            if digits:
                k = rng.choice(digits)
                swap = rng.choice(("9" * rng.randrange(1, 40), "-", "-9", "0", " ", ""))
                text = text[:k] + swap + text[k + 1:]
        else:
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))])
            text = "\n".join(lines)
    return text


def _odd_value(rng: random.Random) -> Any:
    return rng.choice([None, True, -1, 0, 1 << 64, -(1 << 70), 1.5, 1e308, float("inf"), float("nan"), -0.0,
                       "", "x\ud800", "\x1b", [], {}, [1], {"a": 1}, "nonpaged", "slab",
                       "2026-13-45T00:00:00Z", "9999-12-31T23:59:59-01:00",
                       "0001-01-01T00:00:00+01:00", "pooltop.snapshot/1"])


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """Change the structure: values to other types, keys removed or added."""
    obj = json.loads(data)
    for _ in range(rng.randrange(1, 4)):
        target = obj
        path: list[Any] = []
        while isinstance(target, dict | list) and target and rng.random() < 0.7:
            key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
            path.append((target, key))
            target = target[key]
        if not path:
            continue
        parent, key = path[-1]
        choice = rng.random()
        if choice < 0.6:
            parent[key] = _odd_value(rng)
        elif choice < 0.8 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[rng.choice(("tag", "pool", "allocs", "x\ud800", "extra", "schema"))] = _odd_value(rng)
        else:
            parent.append(_odd_value(rng))
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def mutate(kind: str, seed: bytes, rng: random.Random) -> bytes:
    if kind == "bundle":
        member = zipfile.ZipFile(io.BytesIO(seed)).read("snapshot.json")
        roll = rng.random()
        if roll < 0.3:
            methods = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
            return _zip(mutate(kind="json", seed=member, rng=rng), rng.choice(methods))
        raw = bytearray(seed)
        for _ in range(rng.randrange(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        if roll > 0.9:
            raw = raw[: rng.randrange(len(raw))]
        return bytes(raw)
    if kind == "json" and rng.random() < 0.4:
        with contextlib.suppress(ValueError):
            return mutate_json(seed, rng)
    return _encode(mutate_text(_text(seed), rng), rng)


# --- running ----------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


def exercise(data: bytes) -> int:
    """Read `data` as pooltop does and write what it read the ways the commands do."""
    snaps = snapshots_from_bytes(data, "fuzz.input", 1e9)
    for snap in snaps[:2]:
        for fmt in ("json", "csv", "text"):
            FORMATTERS[fmt](snap).encode("utf-8")
        d = diff_snapshots(snap, snap, "a", "b")
        for render in RENDERERS.values():
            render(d, d.rows, 0).encode("utf-8")
        for fmt in ("text", "json"):
            render_single("fuzz.input", snap, fmt, 20).encode("utf-8")
    if snaps:
        # a series, as `pooltop report a b c d e` analyses it: what was read, five minutes apart
        items = [(f"fuzz@{i}", dataclasses.replace(snaps[i % len(snaps)],
                                                   taken_at=_EPOCH + dt.timedelta(minutes=i)))
                 for i in range(5)]
        rep = build_series_report(items, JudgeThresholds(), "fuzz")
        render_text(rep, True, 20).encode("utf-8")
        render_json(rep, True, 20).encode("utf-8")
    return len(snaps)


_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _where(e: Exception) -> str:
    """The exception and the deepest pooltop line it came through."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f"{os.sep}pooltop{os.sep}" in f.filename]
    if not frames:
        return f"{type(e).__name__}: {e}"
    last = frames[-1]
    return f"{type(e).__name__}: {e} at {os.path.relpath(last.filename)}:{last.lineno} ({last.name})"


@dataclass
class Tally:
    cases: int = 0
    read: int = 0
    refused: int = 0
    failures: list[tuple[str, bytes]] = field(default_factory=list)
    hangs: int = 0
    slowest_s: float = 0.0


def fuzz(cases: int, seed: int, hang_s: float) -> Iterator[tuple[str, Tally]]:
    rng = random.Random(seed)
    pool = seeds()
    signal.signal(signal.SIGALRM, _alarm)
    for kind, inputs in pool.items():
        tally = Tally()
        for _ in range(cases):
            data = mutate(kind, rng.choice(inputs), rng)
            tally.cases += 1
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, hang_s)
            try:
                exercise(data)
                tally.read += 1
            except PooltopError:
                tally.refused += 1
            except Hang:
                tally.hangs += 1
                tally.failures.append(("hang", data))
            except Exception as e:  # what the fuzzer is looking for
                tally.failures.append((_where(e), data))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            tally.slowest_s = max(tally.slowest_s, time.perf_counter() - t0)
        yield kind, tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000, help="mutated inputs per reader (default 2000)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--hang-s", type=float, default=5.0, help="a case running longer is a hang")
    ap.add_argument("--save", metavar="DIR", help="write each failing input to DIR")
    args = ap.parse_args(argv)
    print(f"{'reader':<10} {'cases':>7} {'read':>7} {'refused':>8} {'failed':>7} {'hangs':>6} {'slowest':>9}")
    bad = 0
    report: Callable[[str], None] = print
    for kind, t in fuzz(args.cases, args.seed, args.hang_s):
        failed = len(t.failures) - t.hangs
        bad += len(t.failures)
        report(f"{kind:<10} {t.cases:>7} {t.read:>7} {t.refused:>8} {failed:>7} {t.hangs:>6} "
               f"{t.slowest_s * 1000:>7.1f}ms")
        seen: set[str] = set()
        for i, (why, data) in enumerate(t.failures):
            if why not in seen:
                seen.add(why)
                print(f"  {kind} failure: {why}")
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                with open(os.path.join(args.save, f"{kind}-{i}.bin"), "wb") as f:
                    f.write(data)
    print("no tracebacks, no hangs" if not bad else f"{bad} failing cases")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
