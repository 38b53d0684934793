"""Puts proc_fakes (fake psutil processes, scripted process snapshots) on sys.path for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
