"""Hypothesis: random, truncated and inconsistent buffers give BadInput or valid records, never
another exception and never a read past the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nt_encoders as enc
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooltop.errors import BadInput
from pooltop.model import CounterSet, Pool
from pooltop.native import BigPoolAllocation
from pooltop.native.windows.layouts import (
    LAYOUTS,
    SESSION_ID_COLUMN,
    KernelModule,
    Layout,
    decode_bigpool,
    decode_modules,
    decode_pooltags,
)
from pooltop.native.windows.sessions import decode_session_pooltags

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

layouts_st = st.sampled_from(sorted(LAYOUTS.values(), key=lambda layout: layout.name))


def check_counters(cs: CounterSet, session: bool = False) -> None:
    n = len(cs)
    for col in (cs.pools, cs.allocs, cs.frees, cs.diff, cs.bytes):
        assert col.shape == (n,)
    assert all(isinstance(t, str) and t.isprintable() for t in cs.tags)
    allowed = {Pool.SESSION} if session else {Pool.NONPAGED, Pool.PAGED}
    assert set(cs.pools.tolist()) <= {int(p) for p in allowed}
    if session:
        assert cs.extra[SESSION_ID_COLUMN].shape == (n,)


def decode_or_bad_input(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BadInput as e:
        assert str(e)  # a message a user can read
        return None


DECODERS: dict[str, Callable[[bytes, Layout], Any]] = {
    "pooltag": lambda b, layout: decode_pooltags(b, layout, 22),
    "pooltag2": lambda b, layout: decode_pooltags(b, layout, 255),
    "session": lambda b, layout: decode_session_pooltags(b, layout),
    "bigpool": lambda b, layout: decode_bigpool(b, layout),
    "modules": lambda b, layout: decode_modules(b, layout),
}


def check_result(kind: str, out: Any) -> None:
    if out is None:
        return
    if kind in ("pooltag", "pooltag2", "session"):
        check_counters(out, session=kind == "session")
    elif kind == "bigpool":
        assert all(isinstance(a, BigPoolAllocation) and a.address % 2 == 0 for a in out)
    else:
        assert all(isinstance(m, KernelModule) for m in out)


@FUZZ
@given(kind=st.sampled_from(sorted(DECODERS)), layout=layouts_st, data=st.binary(max_size=600))
def test_random_bytes(kind: str, layout: Layout, data: bytes) -> None:
    check_result(kind, decode_or_bad_input(lambda: DECODERS[kind](data, layout)))


@FUZZ
@given(
    kind=st.sampled_from(sorted(DECODERS)),
    layout=layouts_st,
    count=st.integers(0, 2**32 - 1),
    body=st.binary(max_size=400),
)
def test_any_count_with_any_body(kind: str, layout: Layout, count: int, body: bytes) -> None:
    """Count fields from 0 to 2^32-1 never make a decoder read past the end or allocate wildly."""
    data = enc.header(layout.pointer_size, count) + body
    check_result(kind, decode_or_bad_input(lambda: DECODERS[kind](data, layout)))


def valid_buffer(kind: str, layout: Layout, n: int, seed: int) -> bytes:
    p = layout.pointer_size
    rng = np.random.default_rng(seed)
    vals = [int(v) for v in rng.integers(0, 2**32, size=8 * max(n, 1), dtype=np.uint64)]
    tags = [v.to_bytes(8, "little")[:4] for v in vals]
    if kind == "pooltag":
        return enc.pooltag_info(
            p, [enc.pooltag(p, tags[i], tuple(vals[i : i + 3]), tuple(vals[i + 3 : i + 6])) for i in range(n)]
        )
    if kind == "pooltag2":
        return enc.pooltag_info(
            p,
            [enc.pooltag2(p, tags[i], tuple(vals[i : i + 3]), tuple(vals[i + 3 : i + 6])) for i in range(n)],
        )
    if kind == "session":
        recs = [enc.pooltag(p, tags[i], tuple(vals[i : i + 3]), tuple(vals[i + 3 : i + 6])) for i in range(n)]
        return enc.session_info(
            p, [(1, recs[: n // 2]), (vals[0] % 4, recs[n // 2 :])], swapped=bool(seed % 2)
        )
    if kind == "bigpool":
        return enc.array_info(
            p, [enc.bigpool(p, vals[i] & ~1, vals[i + 1], tags[i], bool(i % 2)) for i in range(n)]
        )
    return enc.array_info(
        p,
        [
            enc.module(p, vals[i], vals[i + 1], b"\\SystemRoot\\" + bytes(tags[i]).hex().encode())
            for i in range(n)
        ],
    )


@FUZZ
@given(
    kind=st.sampled_from(sorted(DECODERS)),
    layout=layouts_st,
    n=st.integers(0, 12),
    seed=st.integers(0, 2**16),
    cut=st.integers(0, 2000),
)
def test_truncated_valid_buffers(kind: str, layout: Layout, n: int, seed: int, cut: int) -> None:
    data = valid_buffer(kind, layout, n, seed)
    check_result(kind, DECODERS[kind](data, layout))  # the whole buffer decodes
    check_result(kind, decode_or_bad_input(lambda: DECODERS[kind](data[: min(cut, len(data))], layout)))


@FUZZ
@given(
    kind=st.sampled_from(sorted(DECODERS)),
    layout=layouts_st,
    n=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    pos=st.integers(0, 10_000),
    value=st.integers(0, 255),
)
def test_inconsistent_buffers(kind: str, layout: Layout, n: int, seed: int, pos: int, value: int) -> None:
    """One byte anywhere changed (counts, NextEntryOffset, offsets to file names...)."""
    data = bytearray(valid_buffer(kind, layout, n, seed))
    data[pos % len(data)] = value
    check_result(kind, decode_or_bad_input(lambda: DECODERS[kind](bytes(data), layout)))


@FUZZ
@given(
    layout=layouts_st,
    entries=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**16)), max_size=6
    ),
    tail=st.binary(max_size=200),
)
def test_session_headers_with_arbitrary_fields(
    layout: Layout, entries: list[tuple[int, int, int]], tail: bytes
) -> None:
    """Arbitrary NextEntryOffset / SessionId / Count triples: a clean verdict, never a hang."""
    p = layout.pointer_size
    data = (
        b"".join(
            nxt.to_bytes(p, "little") + a.to_bytes(4, "little") + b.to_bytes(4, "little")
            for a, b, nxt in entries
        )
        + tail
    )
    check_result("session", decode_or_bad_input(lambda: decode_session_pooltags(data, layout)))
