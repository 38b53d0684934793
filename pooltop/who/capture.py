"""Ready-to-run commands that capture allocation stacks for the suspect tags or caches.

pooltop tells *which* tag grows; the vendor needs *which code path* allocates what is never
freed. That takes a trace with stacks, filtered to the suspects so it stays small:

- Windows: kernel pool events with stack walks, filtered by tag, from the Windows Performance
  Toolkit. xperf: `-on PROC_THREAD+LOADER+POOL -stackwalk PoolAlloc+PoolFree+PoolAllocSession+
  PoolFreeSession -PoolTag T1+T2+T3+T4` (at most four tags per trace, as documented for `-pooltag`),
  stopped and merged with `xperf -d FILE.etl`. WPR: a profile whose SystemProvider has the Pool
  keyword, the PoolAllocation/PoolAllocationSession/PoolFree/PoolFreeSession stacks and a PoolTags
  list (also at most four). Open the .etl in WPA: Memory > Pool, outstanding allocations by tag
  and stack.
- Linux: the slab allocator's tracepoints / kprobes with kernel stacks. bpftrace on
  kmem_cache_alloc* reads the cache's name (needs kernel BTF); perf can filter the kmem
  tracepoints by object size only (the tracepoints carry no cache name), which catches every
  cache of that size. Writing 1 to /sys/kernel/slab/CACHE/trace is left out on purpose: it needs
  slub_debug, logs every allocation to the kernel log and can stall a busy machine.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

MAX_WINDOWS_TAGS = 4  # xperf -pooltag <P1>+<P2>+<P3>+<P4>; WPR PoolTags holds at most four

_CMD_SAFE_TAG = re.compile(r"[A-Za-z0-9_.\-:#$@!?*()\[\]{}~'`=;,/]{1,4}")
_BPF_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-:()+]{1,64}")


@dataclass(frozen=True)
class CaptureFile:
    name: str  # relative path inside the bundle
    text: str
    description: str


@dataclass(frozen=True)
class CaptureSet:
    files: tuple[CaptureFile, ...]
    notes: tuple[str, ...]  # suspects that could not be put on a command line, and why


def _windows_tag(tag: str) -> str | None:
    """A tag as xperf/WPR take it: the trailing padding dropped; None if it cannot be typed safely."""
    bare = tag.rstrip(" ")
    if "\\x" in bare or not _CMD_SAFE_TAG.fullmatch(bare):
        return None
    return bare


def xperf_start_command(tags: Sequence[str]) -> str:
    """The xperf command line that starts a pool trace with stacks, filtered to `tags` (typable
    ones, at most MAX_WINDOWS_TAGS; none: every tag)."""
    usable = [t for t in (_windows_tag(t) for t in tags) if t is not None][:MAX_WINDOWS_TAGS]
    filter_args = f" -PoolTag {'+'.join(usable)}" if usable else ""
    return (
        "xperf -on PROC_THREAD+LOADER+POOL -stackwalk PoolAlloc+PoolFree+PoolAllocSession+PoolFreeSession"
        f"{filter_args} -BufferSize 1024 -MinBuffers 256 -MaxBuffers 1024 -MaxFile 2048 -FileMode Circular"
    )


def windows_commands(tags: Sequence[str], host: str = "") -> CaptureSet:
    notes: list[str] = []
    usable: list[str] = []
    for tag in tags:
        bare = _windows_tag(tag)
        if bare is None:
            notes.append(f"tag {tag!r} has characters a command line or the trace filter cannot carry; "
                         "capture without -PoolTag and filter by tag in WPA")
        elif bare not in usable:
            usable.append(bare)
    if len(usable) > MAX_WINDOWS_TAGS:
        covered, rest = usable[:MAX_WINDOWS_TAGS], usable[MAX_WINDOWS_TAGS:]
        notes.append(f"a pool trace filters at most {MAX_WINDOWS_TAGS} tags: these commands cover "
                     f"{', '.join(covered)}; run again for {', '.join(rest)}")
        usable = usable[:MAX_WINDOWS_TAGS]
    shown = ", ".join(usable) if usable else "all tags (no usable tag filter)"
    xperf_on = xperf_start_command(usable)
    xperf = f"""@echo off
rem pooltop: capture kernel pool allocation stacks for {shown}{f' on {host}' if host else ''}
rem Run from an elevated command prompt on the machine that leaks. Needs the Windows Performance
rem Toolkit (xperf.exe, wpr.exe, wpa.exe) from the Windows ADK or the Windows SDK.
rem Tags shorter than four characters are padded with spaces in the kernel; if the filter misses
rem one, run the same command without -PoolTag (a bigger trace) and filter by tag in WPA.

{xperf_on}
if errorlevel 1 goto failed

echo Tracing pool allocations of {shown}.
echo Let the leak happen (the tags grow in pooltop or poolmon) for several minutes, then press a key.
pause
xperf -d pool.etl
if errorlevel 1 goto failed
echo Wrote pool.etl: send it (zipped) with this bundle. Analyse: wpa pool.etl, Memory, Pool,
echo outstanding allocations by tag and stack (load symbols).
goto :eof

:failed
echo xperf failed. Is this prompt elevated, and is the Windows Performance Toolkit installed?
xperf -stop >nul 2>&1
"""
    pool_tags = "".join(f"        <PoolTag Value={quoteattr(t)}/>\n" for t in usable)
    pool_tags_block = f"      <PoolTags>\n{pool_tags}      </PoolTags>\n" if usable else ""
    wprp = f"""<?xml version="1.0" encoding="utf-8"?>
<!-- pooltop: pool allocation stacks for {shown}.
     wpr -start pool.wprp!PooltopPool -filemode
     (let the leak happen for several minutes)
     wpr -stop pool-wpr.etl -->
<WindowsPerformanceRecorder Version="1.0" Comments="pooltop pool allocation stacks">
  <Profiles>
    <SystemCollector Id="PooltopSystemCollector" Name="NT Kernel Logger">
      <BufferSize Value="1024"/>
      <Buffers Value="256"/>
    </SystemCollector>
    <SystemProvider Id="PooltopPoolProvider">
      <Keywords>
        <Keyword Value="ProcessThread"/>
        <Keyword Value="Loader"/>
        <Keyword Value="Pool"/>
      </Keywords>
      <Stacks>
        <Stack Value="PoolAllocation"/>
        <Stack Value="PoolAllocationSession"/>
        <Stack Value="PoolFree"/>
        <Stack Value="PoolFreeSession"/>
      </Stacks>
{pool_tags_block}    </SystemProvider>
    <Profile Id="PooltopPool.Verbose.File" Name="PooltopPool" Description="pooltop: pool allocation stacks"
             LoggingMode="File" DetailLevel="Verbose">
      <Collectors>
        <SystemCollectorId Value="PooltopSystemCollector">
          <SystemProviderId Value="PooltopPoolProvider"/>
        </SystemCollectorId>
      </Collectors>
    </Profile>
  </Profiles>
</WindowsPerformanceRecorder>
"""
    files = (
        CaptureFile("capture/xperf-pool.cmd", xperf.replace("\n", "\r\n"),
                    "Windows: starts a pool trace with stacks filtered to the suspect tags (xperf), waits "
                    "for a key, then writes pool.etl. Run it elevated on the leaking machine."),
        CaptureFile("capture/pool.wprp", wprp,
                    "Windows: the same trace as a Windows Performance Recorder profile: "
                    "wpr -start pool.wprp!PooltopPool -filemode, later wpr -stop pool-wpr.etl."),
    )
    return CaptureSet(files, tuple(notes))


def linux_commands(caches: Sequence[tuple[str, int | None]], host: str = "") -> CaptureSet:
    """`caches`: (name, object size or None) of each suspect slab cache."""
    notes: list[str] = []
    usable: list[tuple[str, int | None]] = []
    for name, size in caches:
        if _BPF_SAFE_NAME.fullmatch(name):
            usable.append((name, size))
        else:
            notes.append(f"cache {name!r} has characters a shell or bpftrace string cannot carry safely; "
                         "adapt the commands by hand")
    names = [n for n, _ in usable]
    shown = " ".join(names) or "(none)"
    cond = " || ".join(f'$n == "{n}"' for n in names) or "0"
    kmalloc = [(n, s) for n, s in usable if n.startswith("kmalloc-")]
    sized = sorted({s for n, s in usable if s and not n.startswith("kmalloc-")})
    lines = [
        "#!/bin/sh",
        f"# pooltop: capture allocation stacks for the slab caches {shown}{f' on {host}' if host else ''}",
        "# Run as root on the machine that leaks, while the caches grow. Each method writes a text file",
        "# of kernel stacks with counts; send the files with this bundle. DURATION is in seconds.",
        "#",
        "# SLUB merges caches of the same size (see the aliases in snapshot.json): if the growing cache",
        "# is a merged one, booting once with slab_nomerge on the kernel command line separates them.",
        "# Not used here on purpose: echo 1 > /sys/kernel/slab/CACHE/trace (needs slub_debug, logs",
        "# every allocation to the kernel log and can stall a busy machine).",
        "set -eu",
        'DURATION="${DURATION:-60}"',
        "",
    ]
    if names:
        program = (f"kprobe:kmem_cache_alloc* {{ $n = str(((struct kmem_cache *)arg0)->name); "
                   f"if ({cond}) {{ @allocs[$n, kstack] = count(); }} }} "
                   "interval:s:$DURATION { exit(); }")
        lines += [
            "# 1. bpftrace (needs bpftrace >= 0.12 and kernel BTF): allocation stacks from these caches,",
            "#    by the cache's own name.",
            "if command -v bpftrace >/dev/null 2>&1; then",
            "  bpftrace -e " + shlex.quote(program).replace("$DURATION", "'\"$DURATION\"'")
            + " > pooltop-slab-bpftrace.txt",
            "  echo wrote pooltop-slab-bpftrace.txt",
            "fi",
            "",
        ]
    for name, size in kmalloc:
        n = size or _kmalloc_size(name)
        if n is None:
            continue
        lines += [
            f"# kmalloc cache {name}: kmalloc() calls of {n} bytes (the kmem:kmalloc tracepoint)",
            "if command -v bpftrace >/dev/null 2>&1; then",
            "  bpftrace -e " + shlex.quote(
                f"tracepoint:kmem:kmalloc /args->bytes_alloc == {n}/ {{ @allocs[kstack] = count(); }} "
                "interval:s:$DURATION { exit(); }").replace("$DURATION", "'\"$DURATION\"'")
            + f" > {shlex.quote('pooltop-' + name + '-bpftrace.txt')}",
            "fi",
            "",
        ]
    if sized:
        filt = " || ".join(f"bytes_req == {s}" for s in sized)
        lines += [
            "# 2. perf (no BTF needed): kmem_cache_alloc events of the suspects' object sizes",
            "#    (bytes_req is the cache's object size), with stacks. The tracepoint has no cache name,",
            "#    so other caches of the same object size show too.",
            "if command -v perf >/dev/null 2>&1; then",
            f"  perf record -a -g -e kmem:kmem_cache_alloc --filter {shlex.quote(filt)} "
            '-o pooltop-slab.perf.data -- sleep "$DURATION"',
            "  perf report -i pooltop-slab.perf.data --stdio --no-children > pooltop-slab-perf.txt",
            "  echo wrote pooltop-slab-perf.txt",
            "fi",
            "",
        ]
    elif names:
        notes.append("the snapshot has no object sizes for these caches, so the perf commands were left out")
    script = "\n".join(lines) + "\n"
    files = (
        CaptureFile("capture/linux-slab.sh", script,
                    "Linux: captures kernel stacks of allocations from the suspect slab caches with "
                    "bpftrace (by cache name) and perf (by object size). Run it as root on the leaking "
                    "machine."),
    )
    return CaptureSet(files, tuple(notes))


def _kmalloc_size(name: str) -> int | None:
    m = re.search(r"-(\d+)(k?)$", name)
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) else 1)
