"""Driver scanner figures (prints them; asserts nothing).

(a) the bytes pass: a generated corpus (default 300 MB in 500 files, 3,000 known tags) searched with one
    multi-pattern pass, against a findstr-like loop that searches each tag separately (measured on a
    slice and extrapolated); then a rescan of the unchanged corpus through the scan cache.
(b) call-site analysis throughput in MB/s of executable code, against a linear capstone disassembly
    with details, on the fixture drivers and on a large driver generated and compiled with mingw-w64 at
    run time (skipped, with a message, when x86_64-w64-mingw32-gcc is not installed).

Everything is generated in a temporary folder and deleted afterwards.

    python benchmarks/bench_scanner.py [--corpus-mb 300] [--files 500] [--tags 3000] [--functions 3000]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import capstone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooltop.tagdb.bytesearch import KnownTags  # noqa: E402
from pooltop.tagdb.cache import ScanCache  # noqa: E402
from pooltop.tagdb.callsites import CALL_SITE_ARCHES, find_call_sites  # noqa: E402
from pooltop.tagdb.candidates import Candidate  # noqa: E402
from pooltop.tagdb.immediates import find_tag_immediates  # noqa: E402
from pooltop.tagdb.pe import load_image  # noqa: E402
from pooltop.tagdb.poolapis import pool_import_slots  # noqa: E402
from pooltop.tagdb.scanner import analyse_image, default_workers, scan  # noqa: E402

FIXTURES = ROOT / "tests" / "data" / "drivers"
ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
MB = 1_000_000


def random_tags(rng: random.Random, count: int) -> list[bytes]:
    tags: set[bytes] = set()
    while len(tags) < count:
        tags.add(bytes(rng.choice(ALNUM) for _ in range(4)))
    return sorted(tags)


def generate_corpus(
    folder: Path, total_bytes: int, files: int, tags: list[bytes], rng: random.Random
) -> None:
    """Driver files: a real fixture driver (so a scan does the whole PE analysis) followed by an overlay
    of driver-like bytes (fixture code and headers repeated, random stretches, zero padding, strings)
    with some of the known tags sprinkled in (about one per 64 KiB)."""
    drivers = [p.read_bytes() for p in sorted((FIXTURES / "bin").glob("*-O2.sys"))]
    seed = b"".join(drivers)
    per_file = total_bytes // files
    text = b"Copyright (c) driver vendor. Device initialisation failed: status %08x\0" * 8
    for i in range(files):
        chunks: list[bytes] = [drivers[i % len(drivers)]]
        size = len(chunks[0])
        while size < per_file:
            kind = rng.random()
            if kind < 0.55:
                start = rng.randrange(len(seed))
                part = seed[start : start + rng.randrange(512, 8192)]
            elif kind < 0.75:
                part = rng.randbytes(rng.randrange(256, 4096))
            elif kind < 0.9:
                part = bytes(rng.randrange(64, 2048))
            else:
                part = text
            chunks.append(part)
            size += len(part)
            if rng.random() < 0.05:
                chunks.append(rng.choice(tags))
        (folder / f"drv{i:04d}.sys").write_bytes(b"".join(chunks)[:per_file])


def bench_bytes(args: argparse.Namespace) -> None:
    print("== (a) bytes pass: known tags anywhere in the files ==")
    rng = random.Random(4)
    tags = random_tags(rng, args.tags)
    t0 = time.perf_counter()
    known = KnownTags([t.decode("ascii") for t in tags])
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="pooltop-bench-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        t0 = time.perf_counter()
        generate_corpus(folder, args.corpus_mb * MB, args.files, tags, rng)
        files = sorted(folder.iterdir())
        total = sum(p.stat().st_size for p in files)
        print(
            f"corpus: {len(files)} files, {total / MB:.0f} MB, {len(tags)} tags (generated in "
            f"{time.perf_counter() - t0:.1f} s; automaton built in {build * 1000:.0f} ms)"
        )

        datas = [p.read_bytes() for p in files]  # timed without disk reads, CPU time, best of 2
        multi, hits = float("inf"), 0
        for _ in range(2):
            t0 = time.process_time()
            hits = sum(sum(m.count for m in known.find(d).values()) for d in datas)
            multi = min(multi, time.process_time() - t0)
        multi_rate = total / MB / multi
        print(
            f"multi-pattern pass (Aho-Corasick): {multi_rate:8.1f} MB/s  ({multi:.2f} s CPU, {hits} matches)"
            "  target >= 400 MB/s"
        )

        workers = default_workers()
        with ThreadPoolExecutor(workers) as pool:
            threaded = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                list(pool.map(known.find, datas))
                threaded = min(threaded, time.perf_counter() - t0)
        print(
            f"  the same on {workers} threads (the search releases the GIL, as scan() uses it): "
            f"{total / MB / threaded:.1f} MB/s wall-clock"
        )

        slice_data = b"".join(datas)[:MB]
        t0 = time.process_time()
        for tag in tags:  # what findstr /m /l does per tag; bytes.find is a C loop, findstr is slower
            position = slice_data.find(tag)
            while position >= 0:
                position = slice_data.find(tag, position + 1)
        per_tag = time.process_time() - t0
        per_tag_rate = len(slice_data) / MB / per_tag
        print(
            f"per-tag find loop (findstr-like):   {per_tag_rate:8.2f} MB/s  (measured on "
            f"{len(slice_data) / MB:.0f} MB, extrapolated: {total / MB / per_tag_rate:.0f} s for the corpus)"
        )
        print(f"ratio: {multi_rate / per_tag_rate:.0f}x")
        del datas

        # the cache: the first scan analyses every driver and runs the bytes pass over every file;
        # the rescan of the unchanged tree only stats the files and reads the cache
        cache_path = Path(tmp) / "cache.sqlite3"
        candidates = [Candidate(str(p), explicit=False) for p in files]
        with ScanCache(cache_path) as cache:
            t0 = time.perf_counter()
            report = scan(candidates, known=known, cache=cache)
            first = time.perf_counter() - t0
        with ScanCache(cache_path) as cache:
            t0 = time.perf_counter()
            again_report = scan(candidates, known=known, cache=cache)
            again = time.perf_counter() - t0
        assert again_report.to_json() == report.to_json()
        print(
            f"scan of the corpus through the cache: first {first:.1f} s ({len(report.drivers)} drivers), "
            f"unchanged rescan {again:.3f} s ({again_report.from_cache}/{len(files)} from the cache)"
            "  target <= 0.5 s"
        )


def code_bytes(image_path: Path) -> int:
    image = load_image(image_path.read_bytes())
    return sum(len(s.data) for s in image.code_sections)


def time_callsites(paths: list[Path], rounds: int = 5) -> tuple[float, int, int]:
    """(CPU seconds of the best round, code bytes, sites): call-site + immediate analysis of `paths`.

    CPU time and the best of several rounds: the machines this runs on are shared."""
    images = [load_image(p.read_bytes()) for p in paths]
    images = [i for i in images if i.arch in CALL_SITE_ARCHES]
    size = sum(len(s.data) for i in images for s in i.code_sections)
    best, sites = float("inf"), 0
    for _ in range(rounds):
        sites = 0
        t0 = time.process_time()
        for image in images:
            slots = pool_import_slots(image.imports)
            result = find_call_sites(
                image.arch, image.image_base, image.code_sections, slots, image.function_starts.tolist()
            )
            find_tag_immediates(image.code_sections)
            sites += len(result.sites)
        best = min(best, time.process_time() - t0)
    return best, size, sites


def time_linear(paths: list[Path], budget_bytes: int, detail: bool = True) -> tuple[float, int]:
    """CPU seconds for a linear disassembly of at most budget_bytes of code (what a naive scanner
    does): with capstone's detail mode, or disasm_lite for the floor of any linear pass."""
    done = 0
    t0 = time.process_time()
    for path in paths:
        image = load_image(path.read_bytes())
        if image.arch not in CALL_SITE_ARCHES:
            continue
        md = capstone.Cs(
            capstone.CS_ARCH_X86, capstone.CS_MODE_64 if image.arch == "x64" else capstone.CS_MODE_32
        )
        md.detail = detail
        for section in image.code_sections:
            data = section.data[: max(0, budget_bytes - done)]
            offset = 0
            while offset < len(data):  # restart one byte after anything that does not decode
                end = offset
                if detail:
                    for insn in md.disasm(data[offset:], section.rva + offset):
                        _ = (insn.mnemonic, insn.op_str)
                        end = insn.address - section.rva + insn.size
                else:
                    for address, size, _mnemonic, _ops in md.disasm_lite(data[offset:], section.rva + offset):
                        end = address - section.rva + size
                offset = max(end, offset) + (1 if end < len(data) else 0)
            done += len(data)
        if done >= budget_bytes:
            break
    return time.process_time() - t0, done


def generate_driver_sources(functions: int, units: int, rng: random.Random) -> list[str]:
    """C for a driver of `functions` functions split into `units` files (compiled in parallel).

    Roughly like real drivers: loops, branches, calls between functions, and a pool allocation in
    about one function in eight, a free in one in twenty (one pool call per ~1-2 KB of code)."""
    header = [
        '#include "pooltop_ddk.h"',
        "typedef struct _CTX { ULONG state, count, flags; PVOID items[16]; ULONG hist[32]; } CTX;",
        "extern ULONG g_table[256];",
        "extern CTX g_ctx;",
    ]
    header += [f"NOINLINE ULONG Fn{i}(CTX *ctx, ULONG x);" for i in range(functions)]
    bodies: list[list[str]] = [[] for _ in range(units)]
    for i in range(functions):
        tag = ", ".join(f"'{chr(rng.choice(ALNUM))}'" for _ in range(4))
        body = [
            f"NOINLINE ULONG Fn{i}(CTX *ctx, ULONG x) {{",
            f"    ULONG acc = x ^ 0x{rng.getrandbits(32):08x}u, k;",
            f"    for (k = 0; k < (x & {rng.choice((3, 7, 15))}); k++) {{",
            "        acc = (acc << 3) ^ g_table[(acc + k) & 255] ^ ctx->count;",
            f"        ctx->hist[(acc >> {rng.randrange(1, 9)}) & 31] += acc & 0xff;",
            "    }",
            f"    if ((acc & 0x{rng.getrandbits(8) | 1:02x}) == {rng.randrange(4)}) ctx->flags ^= acc >> 4;",
        ]
        if rng.random() < 0.125:
            api = rng.choice(
                (
                    "ExAllocatePoolWithTag(NonPagedPoolNx",
                    "ExAllocatePoolWithTag(PagedPool",
                    "ExAllocatePool2(POOL_FLAG_NON_PAGED",
                )
            )
            body += [
                f"    if (acc & {1 << rng.randrange(8)}) {{",
                f"        PVOID p = {api}, {rng.randrange(16, 4096)} + (acc & 63), TAG({tag}));",
                "        if (!p) return 0;",
                "        ctx->items[acc & 15] = p;",
                "    }",
            ]
        if rng.random() < 0.05:
            body.append(f"    if (ctx->flags & {1 << rng.randrange(8)})")
            body.append(f"        ExFreePoolWithTag(ctx->items[x & 15], TAG({tag}));")
        callees = [rng.randrange(functions) for _ in range(3)]
        body += [
            "    switch (acc % 5) {",
            f"    case 0: ctx->state += Fn{callees[0]}(ctx, acc >> 1); break;",
            f"    case 1: ctx->count ^= Fn{callees[1]}(ctx, acc + {i}); break;",
            f"    case 2: ctx->hist[acc & 31] = Fn{callees[2]}(ctx, ctx->hist[(acc >> 5) & 31]); break;",
            "    case 3: ctx->state = (ctx->state * 33) ^ acc; break;",
            "    default: ctx->flags |= acc; break;",
            "    }",
            "    return acc + ctx->state;",
            "}",
        ]
        bodies[i % units] += body
    sources = ["\n".join(header + unit) + "\n" for unit in bodies]
    sources[0] += (
        "ULONG g_table[256];\nCTX g_ctx;\n"
        "NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath) {\n"
        "    (void)DriverObject; (void)RegistryPath;\n"
        "    return (NTSTATUS)Fn0(&g_ctx, 1);\n"
        "}\n"
    )
    return sources


def build_large_driver(folder: Path, functions: int) -> Path | None:
    gcc, dlltool = "x86_64-w64-mingw32-gcc", "x86_64-w64-mingw32-dlltool"
    if shutil.which(gcc) is None or shutil.which(dlltool) is None:
        print(f"large generated driver: skipped ({gcc} not installed; Debian: apt-get install gcc-mingw-w64)")
        return None
    src = FIXTURES / "src"
    shutil.copy(src / "pooltop_ddk.h", folder)
    subprocess.run([dlltool, "-d", str(src / "ntoskrnl64.def"), "-l", str(folder / "libnt.a")], check=True)
    units = max(2, os.cpu_count() or 2)
    t0 = time.perf_counter()
    compiles = []
    for n, text in enumerate(generate_driver_sources(functions, units, random.Random(7))):
        (folder / f"big{n}.c").write_text(text)
        cflags = ["-O2", "-ffreestanding", "-fno-stack-protector", "-mno-stack-arg-probe", "-Wno-multichar"]
        compiles.append(
            subprocess.Popen([gcc, *cflags, "-c", str(folder / f"big{n}.c"), "-o", str(folder / f"big{n}.o")])
        )
    if any(p.wait() != 0 for p in compiles):
        print("large generated driver: skipped (the compiler failed)")
        return None
    out = folder / "big.sys"
    objects = [str(folder / f"big{n}.o") for n in range(units)]
    link = ["-nostdlib", "-shared", "-s", "-Wl,--subsystem,native", "-Wl,--entry,DriverEntry"]
    subprocess.run([gcc, *link, "-o", str(out), *objects, str(folder / "libnt.a")], check=True)
    print(
        f"large generated driver: {functions} functions, {out.stat().st_size / MB:.1f} MB file, "
        f"{code_bytes(out) / MB:.2f} MB of code (compiled in {time.perf_counter() - t0:.0f} s)"
    )
    return out


def bench_callsites(args: argparse.Namespace) -> None:
    print("== (b) call-site analysis vs linear disassembly (CPU time, best of several rounds) ==")
    fixtures = sorted(p for p in (FIXTURES / "bin").glob("*.sys") if not p.name.startswith("bad-"))
    seconds, size, sites = time_callsites(fixtures)
    print(
        f"fixture drivers: {len(fixtures)} files, {size / 1000:.0f} KB of code, {sites} sites (one per "
        f"{size / max(sites, 1):.0f} bytes): {seconds / len(fixtures) * 1000:.1f} ms per file, "
        f"{size / MB / seconds:.2f} MB/s (tiny files: fixed per-file costs dominate)"
    )
    lin_seconds, lin_size = time_linear(fixtures, 10 * MB)
    print(f"  linear disassembly with details of the same: {lin_size / MB / lin_seconds:.2f} MB/s")
    with tempfile.TemporaryDirectory(prefix="pooltop-bench-") as tmp:
        big = build_large_driver(Path(tmp), args.functions)
        if big is None:
            return
        seconds, size, sites = time_callsites([big], rounds=3)
        rate = size / MB / seconds
        print(
            f"large driver call-site analysis: {rate:.1f} MB/s of code ({seconds:.3f} s, {sites} sites, "
            f"one per {size / max(sites, 1):.0f} bytes, {seconds / max(sites, 1) * 1e6:.0f} us per site)"
            "  target >= 20 MB/s"
        )
        source = "".join(p.read_text() for p in sorted(Path(tmp).glob("big*.c")))
        wanted = {"".join(m) for m in re.findall(r"TAG\('(.)', '(.)', '(.)', '(.)'\)", source)}
        outcome = analyse_image(big.read_bytes(), str(big))
        found = {f.tag for f in getattr(outcome, "tags", []) if f.confidence == "call-site"}
        print(
            f"  call-site tags: {len(found & wanted)} of the {len(wanted)} in the generated source, "
            f"{len(found - wanted)} not in it"
        )
        budget = min(size, MB // 4)
        lin_seconds, lin_size = time_linear([big], budget)
        lin_rate = lin_size / MB / lin_seconds
        lite_seconds, lite_size = time_linear([big], budget, detail=False)
        print(
            f"large driver linear disassembly with details: {lin_rate:.2f} MB/s (on {lin_size / MB:.2f} MB; "
            f"the whole code: {size / MB / lin_rate:.1f} s); "
            f"without details: {lite_size / MB / lite_seconds:.2f} MB/s"
        )
        print(f"ratio: {rate / lin_rate:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-mb", type=int, default=300)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--tags", type=int, default=3000)
    parser.add_argument("--functions", type=int, default=2000)
    parser.add_argument("--skip-bytes", action="store_true")
    parser.add_argument("--skip-callsites", action="store_true")
    args = parser.parse_args()
    if not args.skip_bytes:
        bench_bytes(args)
    if not args.skip_callsites:
        bench_callsites(args)


if __name__ == "__main__":
    main()
