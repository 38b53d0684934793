"""Writing user files so that a crash or a full disk never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from pooltop.errors import PooltopError


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
                 ) -> Iterator[IO[Any]]:
    """Write to a temporary file beside `path`, then rename it over `path` in one step.

    The temporary file lives in the target's folder so the final os.replace() stays on one file
    system (atomic); on any error it is removed and the old file, if any, is untouched.
    """
    target = os.path.abspath(path)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise PooltopError(f"{path} is a directory")
    if not os.path.isdir(folder):
        raise PooltopError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise PooltopError(f"cannot write {path}: {e.strerror}") from None
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            # Keep the permissions an existing file had (mkstemp creates 0600).
            os.chmod(tmp, os.stat(target).st_mode & 0o7777 if os.path.exists(target) else 0o644)
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise PooltopError(f"cannot write {path}: {e.strerror or e}") from None
        raise
