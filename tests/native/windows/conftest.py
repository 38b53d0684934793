"""Puts nt_encoders (the independent struct.pack encoder) on sys.path for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
