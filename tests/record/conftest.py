"""Puts frame_encoder (recording frames encoded by hand) on sys.path for these tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
