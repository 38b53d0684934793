"""benchmarks/fuzz_readers.py in small: a few hundred mutated inputs per reader, a fixed seed, no
traceback and no hang (the script's full runs print the figures; see its docstring)."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from types import ModuleType

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "fuzz_readers.py")


def load_fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_readers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the fuzzer times cases out with SIGALRM")
def test_every_reader_survives_mutated_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    fuzzer = load_fuzzer()
    tallies = dict(fuzzer.fuzz(cases=150, seed=2026, hang_s=10.0))
    assert set(tallies) == {"json", "csv", "poolmon", "poolused", "bundle"}
    for kind, tally in tallies.items():
        assert tally.cases == 150
        assert tally.failures == [], (kind, tally.failures[0][0])
        assert tally.read > 0 and tally.refused > 0, kind  # the mutations reach both outcomes
