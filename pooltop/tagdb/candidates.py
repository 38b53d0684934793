"""Which files a driver scan looks at: the paths given (folders walked for PE suffixes), or on
Windows the loaded drivers, System32\\drivers and the DriverStore."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: suffixes taken when walking a directory (a file named explicitly is always tried)
PE_SUFFIXES = frozenset((".sys", ".dll", ".exe", ".drv", ".efi"))


@dataclass(frozen=True)
class Candidate:
    path: str
    explicit: bool  # named by the user: report it even if it is not a pool-using driver


def iter_candidates(paths: Iterable[str | os.PathLike[str]], explicit: bool = True) -> Iterator[Candidate]:
    """Files to scan: files as given, directories walked recursively for PE_SUFFIXES; no duplicates."""
    seen: set[str] = set()
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            for found in _walk(path):
                key = os.path.normcase(os.path.abspath(found))
                if key not in seen:
                    seen.add(key)
                    yield Candidate(found, explicit=False)
        else:
            key = os.path.normcase(os.path.abspath(path))
            if key not in seen:
                seen.add(key)
                yield Candidate(path, explicit=explicit)


def _walk(root: str) -> Iterator[str]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                items = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue  # unreadable folder (DriverStore has some): skip it, as dir /s would
        for entry in items:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in PE_SUFFIXES:
                    yield entry.path
            except OSError:
                continue


def windows_driver_dirs(system_root: str | os.PathLike[str]) -> list[Path]:
    """The default scan roots below %SystemRoot%."""
    root = Path(system_root)
    return [root / "System32" / "drivers", root / "System32" / "DriverStore" / "FileRepository"]


def default_candidates(
    system_root: str,
    loaded_drivers: Iterable[str] = (),
) -> Iterator[Candidate]:
    """What `pooltop tags scan` looks at without paths, on Windows: the loaded drivers first (Win32
    paths, as pooltop.native.windows.list_kernel_modules gives them), then System32\\drivers and the
    DriverStore. Missing folders are skipped."""
    roots = [str(p) for p in windows_driver_dirs(system_root) if p.is_dir()]
    yield from iter_candidates([*loaded_drivers, *roots], explicit=False)
