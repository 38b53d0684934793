"""Writing what the user named with `-o`: files so that a crash or a full disk never leaves a
half-written one, and devices, pipes and `-` (standard output) as the streams they are.

The one place that decides how an output target is written; every command's `-o` goes through
atomic_write.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from pooltop.errors import PooltopError

#: what `-o` refuses, by file type (symlinks are followed first)
_REFUSED = {stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket", stat.S_IFBLK: "a block device"}


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
                 ) -> Iterator[IO[Any]]:
    """Write `path` the way its kind needs.

    - a regular file (or a new one; through a symlink, the file it points to): write a temporary
      file beside it, then rename it over the file in one step, so the old file stays whole until
      the new one is complete;
    - a character device (/dev/null, a terminal, /dev/stdout on one) or a named pipe: write into
      it, as a shell redirection does (replacing it would leave a regular file in its place);
    - `-`: standard output;
    - anything else (a directory, a socket, a block device): refused in one line.

    Every failure is a PooltopError naming `path`.
    """
    if path == "-":
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        kind = stat.S_IFREG  # a new file (or a symlink to one that does not exist yet)
    except OSError as e:
        raise PooltopError(f"cannot write {path}: {e.strerror or e}") from None
    if kind in _REFUSED:
        raise PooltopError(f"{path} is {_REFUSED[kind]}" if kind == stat.S_IFDIR
                           else f"cannot write {path}: it is {_REFUSED[kind]}, not a file")
    if kind == stat.S_IFREG:
        with _replace_file(path, mode, encoding, newline) as f:
            yield f
    else:
        with _write_stream(path, mode, encoding, newline) as f:
            yield f


@contextlib.contextmanager
def _write_stream(path: str, mode: str, encoding: str | None, newline: str | None) -> Iterator[IO[Any]]:
    text = "b" not in mode
    try:
        with open(path, mode, encoding=encoding if text else None, newline=newline if text else None) as f:
            yield f
    except OSError as e:  # /dev/full says ENOSPC when the buffer is flushed; a pipe's reader may leave
        raise PooltopError(f"cannot write {path}: {e.strerror or e}") from None


@contextlib.contextmanager
def _replace_file(path: str, mode: str, encoding: str | None, newline: str | None) -> Iterator[IO[Any]]:
    """Write to a temporary file beside the target, then rename it over the target in one step.

    The temporary file lives in the target's folder so the final os.replace() stays on one file
    system (atomic); on any error it is removed and the old file, if any, is untouched. A symlink
    stays a symlink: the file it points to is the one replaced.
    """
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
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
