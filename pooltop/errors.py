"""pooltop's own exceptions. OS errors are translated into these at the boundary (native/*), so
the CLI and the UI only ever see these and can print a one-line reason."""

from __future__ import annotations


class PooltopError(Exception):
    """Anything pooltop can explain in one line. The CLI prints str(e) and exits 1."""


class Unsupported(PooltopError):
    """This machine or kernel does not offer the data (e.g. an information class Wine stubs)."""


class NeedsElevation(PooltopError):
    """The data exists but reading it needs Administrator (Windows) or root (Linux)."""


class BadInput(PooltopError):
    """A file or text given to pooltop is not in a format it understands."""
