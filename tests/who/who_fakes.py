"""Fakes for the who tests: tracefs `format` texts as kernels print them, trace lines, and a
fake tracefs tree (a directory with the files pooltop reads and writes) whose instance directory
is made and removed the way the kernel does it (mkdir fills it, rmdir empties it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from helpers import DATA

LINUX_TREE = os.path.join(DATA, "linux", "vm-6.18")  # proc/slabinfo and sys/kernel/slab of a 6.18 VM

_COMMON = """\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
"""


def format_text(
    name: str, fields: Sequence[tuple[str, int]], fmt: str, args: str, event_id: int = 600
) -> str:
    """An event's format file as the kernel writes it: `fields` are (declaration, size)."""
    lines = [f"name: {name}", f"ID: {event_id}", "format:", _COMMON.rstrip("\n")]
    lines.append("")
    offset = 8
    for decl, size in fields:
        lines.append(f"\tfield:{decl};\toffset:{offset};\tsize:{size};\tsigned:0;")
        offset += size
    lines.append("")
    lines.append(f'print fmt: "{fmt}", {args}')
    return "\n".join(lines) + "\n"


_GFP = (
    '(REC->gfp_flags) ? __print_flags(REC->gfp_flags, "|", {( unsigned long)(( gfp_t)((((1UL))) << (6))), '
    '"GFP_KERNEL"}, { 0, ((void *)0) } ) : "none"'
)

# Linux 6.18 (read from this kernel's tracefs, gfp flag table shortened)
FORMATS_618 = {
    "kmem_cache_alloc": format_text(
        "kmem_cache_alloc",
        [
            ("unsigned long call_site", 8),
            ("const void * ptr", 8),
            ("__data_loc char[] name", 4),
            ("size_t bytes_req", 8),
            ("size_t bytes_alloc", 8),
            ("unsigned long gfp_flags", 8),
            ("int node", 4),
            ("bool accounted", 1),
        ],
        "call_site=%pS ptr=%p name=%s bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d accounted=%s",
        f"(void *)REC->call_site, REC->ptr, __get_str(name), REC->bytes_req, REC->bytes_alloc, {_GFP}, "
        'REC->node, REC->accounted ? "true" : "false"',
    ),
    "kmem_cache_free": format_text(
        "kmem_cache_free",
        [("unsigned long call_site", 8), ("const void * ptr", 8), ("__data_loc char[] name", 4)],
        "call_site=%pS ptr=%p name=%s",
        "(void *)REC->call_site, REC->ptr, __get_str(name)",
    ),
    "kmalloc": format_text(
        "kmalloc",
        [
            ("unsigned long call_site", 8),
            ("const void * ptr", 8),
            ("size_t bytes_req", 8),
            ("size_t bytes_alloc", 8),
            ("unsigned long gfp_flags", 8),
            ("int node", 4),
        ],
        "call_site=%pS ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d accounted=%s",
        f'(void *)REC->call_site, REC->ptr, REC->bytes_req, REC->bytes_alloc, {_GFP}, REC->node, "false"',
    ),
    "kfree": format_text(
        "kfree",
        [("unsigned long call_site", 8), ("const void * ptr", 8)],
        "call_site=%pS ptr=%p",
        "(void *)REC->call_site, REC->ptr",
    ),
}

# Linux 5.4: no cache name in either event, call_site printed as a hex number
FORMATS_54 = {
    "kmem_cache_alloc": format_text(
        "kmem_cache_alloc",
        [
            ("unsigned long call_site", 8),
            ("const void * ptr", 8),
            ("size_t bytes_req", 8),
            ("size_t bytes_alloc", 8),
            ("gfp_t gfp_flags", 4),
        ],
        "call_site=%lx ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s",
        f"REC->call_site, REC->ptr, REC->bytes_req, REC->bytes_alloc, {_GFP}",
    ),
    "kmem_cache_free": format_text(
        "kmem_cache_free",
        [("unsigned long call_site", 8), ("const void * ptr", 8)],
        "call_site=%lx ptr=%p",
        "REC->call_site, REC->ptr",
    ),
}

# 6.0-6.1: kmem_cache_alloc has the name, kmem_cache_free not yet
FORMATS_60 = {**FORMATS_618, "kmem_cache_free": FORMATS_54["kmem_cache_free"]}


def alloc_line(
    ptr: int,
    *,
    site: str = "inotify_update_watch+0x18e/0x330",
    comm: str = "python3",
    pid: int = 4242,
    tgid: int | None = None,
    cpu: int = 1,
    ts: float = 100.0,
    cache: str = "sigqueue",
    size: int = 80,
) -> str:
    tg = f"({tgid:>7}) " if tgid is not None else ""
    return (
        f"{comm:>16}-{pid:<7} {tg}[{cpu:03d}] ..... {ts:12.6f}: kmem_cache_alloc: call_site={site} "
        f"ptr={ptr:016x} name={cache} bytes_req={size} bytes_alloc={size} gfp_flags=GFP_KERNEL node=-1 "
        "accounted=true"
    )


def free_line(
    ptr: int,
    *,
    comm: str = "python3",
    pid: int = 4242,
    cpu: int = 1,
    ts: float = 101.0,
    cache: str = "sigqueue",
) -> str:
    return (
        f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... {ts:12.6f}: kmem_cache_free: "
        f"call_site=inotify_free_mark+0x1a/0x30 ptr={ptr:016x} name={cache}"
    )


def stack_lines(
    frames: Sequence[str], *, comm: str = "python3", pid: int = 4242, cpu: int = 1, ts: float = 100.0
) -> list[str]:
    return [f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... {ts:12.6f}: <stack trace>", *(f" => {f}" for f in frames)]


@dataclass
class FakeTracefs:
    """A tracefs-shaped tree. `pipe` is what the next instance's trace_pipe will hold; `removed`
    keeps, per removed instance, the files' contents at the moment of the rmdir."""

    root: str
    formats: dict[str, str]
    pipe: str = ""
    stats: str = "entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\ndropped events: 0\nread events: 0\n"
    removed: dict[str, dict[str, str]] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        os.makedirs(os.path.join(self.root, "instances"), exist_ok=True)
        for event, text in self.formats.items():
            d = os.path.join(self.root, "events", "kmem", event)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "format"), "w") as f:
                f.write(text)

    def mkdir(self, path: str) -> None:
        os.mkdir(path)
        self.made.append(path)
        files = {
            "buffer_size_kb": "1410\n",
            "options/hash-ptr": "1\n",
            "options/record-tgid": "0\n",
            "events/enable": "0\n",
            "trace_pipe": self.pipe,
            "per_cpu/cpu0/stats": self.stats,
            "per_cpu/cpu1/stats": self.stats,
        }
        for event in self.formats:
            files.update(
                {
                    f"events/kmem/{event}/enable": "0\n",
                    f"events/kmem/{event}/filter": "none\n",
                    f"events/kmem/{event}/trigger": "# Available triggers:\n",
                }
            )
        for rel, text in files.items():
            full = os.path.join(path, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)

    def rmdir(self, path: str) -> None:
        state = {}
        for dirpath, _, names in os.walk(path):
            for n in names:
                full = os.path.join(dirpath, n)
                with open(full) as f:
                    state[os.path.relpath(full, path)] = f.read()
        shutil.rmtree(path)
        self.removed[os.path.basename(path)] = state

    def instances(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.root, "instances")))
