"""Tracking: what changed between snapshots, since a baseline, and over the leak window.

deltas.py (row alignment, mod-2^32 deltas), history.py (time-ordered sample buffers), window.py
(the live leak window the judge reads), tracker.py (the Tracker).
Whether a counter leaks is the judge's call (pooltop.judge); tracking only feeds it.
"""

from pooltop.tracking.deltas import (
    BoolArray,
    Deltas,
    FloatArray,
    IndexArray,
    align,
    compute_deltas,
    identity_mapping,
    is_identity,
)
from pooltop.tracking.tracker import TrackedSample, Tracker

__all__ = [
    "BoolArray",
    "Deltas",
    "FloatArray",
    "IndexArray",
    "TrackedSample",
    "Tracker",
    "align",
    "compute_deltas",
    "identity_mapping",
    "is_identity",
]
