"""Fixtures for the snapshot, importer and share tests: the CLI as users run it, and the import
fixtures' expected values. Each of those folders' conftest.py imports them."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType

import pytest
from helpers import DATA

from pooltop.cli import main

IMPORT_DATA = os.path.join(DATA, "import")
LINUX_TREE = os.path.join(DATA, "linux", "vm-6.18")

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`pooltop ARGS...` in-process: (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return invoke


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_import_fixtures", os.path.join(IMPORT_DATA,
                                                                                      "make_fixtures.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    """tests/data/import/make_fixtures.py: its TAGS are what the fixture files hold."""
    return _load_generator()
