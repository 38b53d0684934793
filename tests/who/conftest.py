"""Puts who_fakes (format texts, trace lines, a fake tracefs tree) on sys.path for these tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from who_fakes import FORMATS_618, FakeTracefs


@pytest.fixture
def fake_tracefs(tmp_path: Path) -> FakeTracefs:
    return FakeTracefs(os.path.join(str(tmp_path), "tracing"), dict(FORMATS_618))
