"""Data sources. One module per OS; `open_source()` picks the one for this machine.

Windows modules are imported only on Windows (they load ntdll through ctypes), so importing
pooltop on Linux never touches them.
"""

from __future__ import annotations

import abc
import sys
from dataclasses import dataclass

from pooltop.errors import Unsupported
from pooltop.model import Snapshot


@dataclass(frozen=True)
class BigPoolAllocation:
    """One large pool allocation (Windows SystemBigPoolInformation)."""

    address: int
    size: int
    tag: str
    nonpaged: bool


class Source(abc.ABC):
    """A live (or replayed) producer of snapshots."""

    #: the snapshot `source` value, e.g. "linux-slab", "windows-pooltag"
    name: str = "unknown"

    @abc.abstractmethod
    def sample(self) -> Snapshot:
        """Take one snapshot. Raises pooltop.errors.PooltopError subclasses only."""

    def big_pool_allocations(self, tag: str | None = None) -> list[BigPoolAllocation]:
        """Large allocations, optionally of one tag. Windows only."""
        raise Unsupported(f"{self.name} has no big-pool allocation list")

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing open
        """Release OS handles."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(platform: str | None = None, root: str | None = None) -> Source:
    """The live source for this machine (or for `platform`, a sys.platform value).

    `root` reads a copied Linux tree instead of the running kernel: ROOT/proc/slabinfo,
    ROOT/proc/meminfo and ROOT/sys/kernel/slab (e.g. an unpacked sosreport).
    """
    plat = platform or sys.platform
    if root is not None:
        import os

        from pooltop.native.linux import LinuxSource

        if not os.path.isdir(root):
            raise Unsupported(f"{root} is not a folder")
        return LinuxSource(os.path.join(root, "proc"), os.path.join(root, "sys"))
    if plat.startswith("linux"):
        from pooltop.native.linux import LinuxSource

        return LinuxSource()
    if plat == "win32":
        from pooltop.native.windows import WindowsSource

        source: Source = WindowsSource()
        return source
    raise Unsupported(f"pooltop has no kernel memory source for {plat} (Windows and Linux are supported)")
