"""The CLI as users run it, and the import fixtures' generator (tests/cli_fixtures.py)."""

from cli_fixtures import generator, run

__all__ = ["generator", "run"]
