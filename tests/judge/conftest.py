"""Puts shapes (synthetic series of every shape issue 14 names) on sys.path for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
