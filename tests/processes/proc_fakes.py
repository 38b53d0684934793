"""Fakes for the process tests: psutil-like processes and scripted (system, process) snapshot pairs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections import namedtuple
from collections.abc import Iterator, Sequence
from typing import Any

import psutil

from pooltop.model import CounterSet, HostInfo, Pool, Snapshot, Totals
from pooltop.processes.source import LINUX_SOURCE, WINDOWS_SOURCE, ProcessOS, ProcessReading, process_counters

HERE = os.path.dirname(__file__)
WINDOWS_FIXTURE = os.path.join(HERE, "data", "windows-psutil-processes.json")
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
LINUX_HOST = HostInfo(name="box", os="Linux", os_version="6.18.44", arch="x86_64", uptime_s=5000.0)
WINDOWS_HOST = HostInfo(name="FS01", os="Windows", os_version="10.0.20348", arch="x86_64", uptime_s=86400.0)
MiB = 1 << 20

LinuxMem = namedtuple("LinuxMem", "rss vms shared text lib data dirty")
LinuxFullMem = namedtuple("LinuxFullMem", "rss vms shared text lib data dirty uss pss swap")
WindowsMem = namedtuple("WindowsMem", "rss vms num_page_faults peak_wset wset peak_paged_pool paged_pool "
                                      "peak_nonpaged_pool nonpaged_pool pagefile peak_pagefile private")

_ERRORS = {"AccessDenied": psutil.AccessDenied, "NoSuchProcess": psutil.NoSuchProcess,
           "ZombieProcess": psutil.ZombieProcess, "Error": psutil.Error}


def _raise(name: str, pid: int) -> None:
    raise _ERRORS[name](pid)


class FakeProcess:
    """The psutil.Process calls the readers make, answered from a dict; "*_error" keys raise."""

    def __init__(self, pid: int, **answers: Any) -> None:
        self.pid = pid
        self.answers = answers

    def oneshot(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _get(self, key: str) -> Any:
        if "error" in self.answers:
            _raise(self.answers["error"], self.pid)
        if f"{key}_error" in self.answers:
            _raise(self.answers[f"{key}_error"], self.pid)
        return self.answers[key]

    def name(self) -> str:
        return str(self._get("name"))

    def status(self) -> str:
        if "error" in self.answers:
            _raise(self.answers["error"], self.pid)
        return str(self.answers.get("status", psutil.STATUS_RUNNING))

    def memory_info(self) -> Any:
        return self._get("memory_info")

    def memory_full_info(self) -> Any:
        return self._get("memory_full_info")

    def num_fds(self) -> int:
        return int(self._get("num_fds"))

    def num_handles(self) -> int:
        return int(self._get("num_handles"))


def linux_process(pid: int, name: str, rss: int, shared: int, uss: int | None = None, swap: int = 0,
                  fds: int | None = 5, vms: int | None = None, **extra: Any) -> FakeProcess:
    mem = LinuxMem(rss, vms if vms is not None else rss * 4, shared, 0, 0, 0, 0)
    answers: dict[str, Any] = {"name": name, "memory_info": mem, **extra}
    if uss is None:
        answers["memory_full_info_error"] = "AccessDenied"
    else:
        answers["memory_full_info"] = LinuxFullMem(*mem, uss, uss, swap)
    if fds is None:
        answers["num_fds_error"] = "AccessDenied"
    else:
        answers["num_fds"] = fds
    return FakeProcess(pid, **answers)


def load_windows_fixture() -> dict[str, Any]:
    with open(WINDOWS_FIXTURE, encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


def windows_processes(doc: dict[str, Any] | None = None) -> list[FakeProcess]:
    doc = doc or load_windows_fixture()
    out = []
    for p in doc["processes"]:
        answers: dict[str, Any] = {k: v for k, v in p.items() if k not in ("pid", "memory_info")}
        if "memory_info" in p:
            answers["memory_info"] = WindowsMem(**p["memory_info"])
        out.append(FakeProcess(p["pid"], **answers))
    return out


# --- scripted snapshots -------------------------------------------------------------------------


def process_snapshot(t_s: float, readings: Sequence[ProcessReading], os_name: ProcessOS = "linux",
                     totals: Totals | None = None, warnings: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(
        source=LINUX_SOURCE if os_name == "linux" else WINDOWS_SOURCE,
        taken_at=T0 + dt.timedelta(seconds=t_s),
        monotonic_ns=int(t_s * 1e9),
        host=LINUX_HOST if os_name == "linux" else WINDOWS_HOST,
        totals=totals or Totals(),
        counters=process_counters(readings, os_name),
        warnings=warnings,
    )


def system_snapshot(t_s: float, totals: Totals, os_name: ProcessOS = "linux",
                    caches: dict[str, int] | None = None, warnings: tuple[str, ...] = ()) -> Snapshot:
    caches = caches or {}
    pool = Pool.SLAB if os_name == "linux" else Pool.NONPAGED
    names = sorted(caches)
    counters = CounterSet.build(names, [pool] * len(names), [0] * len(names), [0] * len(names),
                                [caches[n] // 64 for n in names], [caches[n] for n in names],
                                has_alloc_counts=False, counter_bits=64) if names else CounterSet.empty()
    return Snapshot(
        source="linux-slab" if os_name == "linux" else "windows-pooltag",
        taken_at=T0 + dt.timedelta(seconds=t_s),
        monotonic_ns=int(t_s * 1e9) + 1000,
        host=LINUX_HOST if os_name == "linux" else WINDOWS_HOST,
        totals=totals,
        counters=counters,
        warnings=warnings,
    )


def series(n: int, start: int, step: int) -> Iterator[int]:
    return (start + i * step for i in range(n))
