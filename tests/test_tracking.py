from __future__ import annotations

import numpy as np
import pytest
from helpers import make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.judge import JudgeThresholds, LeakLevel, judge_matrix
from pooltop.model import U32, CounterSet, Pool
from pooltop.tracking import Tracker, compute_deltas

NP, PG = int(Pool.NONPAGED), int(Pool.PAGED)


def by_key(counters: CounterSet, values: np.ndarray) -> dict[tuple[str, int], int]:
    return {k: int(v) for k, v in zip(counters.keys(), values.tolist(), strict=True)}


def test_allocs_and_frees_wrap_mod_2_32() -> None:
    a = make_snapshot([("Leak", NP, U32 - 10, U32 - 30, 640)], 0.0)
    # 25 more allocs and 5 more frees, both counters wrapped past 2^32.
    b = make_snapshot([("Leak", NP, 15, (U32 - 25) % U32, 1280)], 2.0)
    d = compute_deltas(a.counters, b.counters, 2.0)
    assert d.allocs.tolist() == [25]
    assert d.frees.tolist() == [5]
    assert d.diff.tolist() == [20]
    assert d.bytes.tolist() == [640]
    assert d.rate("allocs").tolist() == [12.5]


def test_diff_change_can_be_negative_across_a_wrap() -> None:
    a = make_snapshot([("Frag", PG, U32 - 1, U32 - 5, 100)])
    b = make_snapshot([("Frag", PG, 2, 10, 50)], 1.0)  # 3 allocs, 15 frees
    d = compute_deltas(a.counters, b.counters, 1.0)
    assert (d.allocs.tolist(), d.frees.tolist(), d.diff.tolist()) == ([3], [15], [-12])


def test_wide_counters_do_not_wrap_at_2_32() -> None:
    a = make_snapshot([("Big ", NP, U32 + 5, 0, 0)], counter_bits=64)
    b = make_snapshot([("Big ", NP, U32 + 9, 1, 0)], 1.0, counter_bits=64)
    d = compute_deltas(a.counters, b.counters, 1.0)
    assert (d.allocs.tolist(), d.frees.tolist(), d.diff.tolist()) == ([4], [1], [3])


def test_new_and_vanished_tags() -> None:
    a = make_snapshot([("Old ", NP, 5, 1, 40), ("Keep", PG, 10, 0, 100)])
    b = make_snapshot([("Keep", PG, 12, 1, 110), ("New ", NP, 3, 0, 30)], 1.0)
    d = compute_deltas(a.counters, b.counters, 1.0)
    assert by_key(b.counters, d.bytes) == {("Keep", PG): 10, ("New ", NP): 30}
    assert by_key(b.counters, d.is_new) == {("Keep", PG): 0, ("New ", NP): 1}
    assert d.vanished.keys() == [("Old ", NP)]


def test_same_tag_in_two_pools_is_two_counters() -> None:
    a = make_snapshot([("Io  ", NP, 1, 0, 10), ("Io  ", PG, 1, 0, 10)])
    b = make_snapshot([("Io  ", PG, 2, 0, 20), ("Io  ", NP, 5, 0, 50)], 1.0)
    d = compute_deltas(a.counters, b.counters, 1.0)
    assert by_key(b.counters, d.allocs) == {("Io  ", PG): 1, ("Io  ", NP): 4}


def test_linux_sets_have_no_alloc_deltas_and_use_active_objects() -> None:
    def slab(active: int, t: float) -> CounterSet:
        return CounterSet.build(["filp"], [Pool.SLAB], [0], [0], [active], [active * 192],
                                has_alloc_counts=False, counter_bits=64)

    d = compute_deltas(slab(100, 0), slab(160, 1), 1.0)
    assert (d.allocs.tolist(), d.frees.tolist(), d.diff.tolist(), d.bytes.tolist()) == (
        [0], [0], [60], [60 * 192])


def test_tracker_baseline_and_reset() -> None:
    tr = Tracker()
    s0 = tr.update(make_snapshot([("Tag1", NP, 10, 0, 100)], 0))
    assert s0.interval.bytes.tolist() == [0] and s0.since_baseline.bytes.tolist() == [0]
    tr.update(make_snapshot([("Tag1", NP, 20, 0, 200)], 1))
    s2 = tr.update(make_snapshot([("Tag1", NP, 25, 0, 250)], 2))
    assert s2.interval.bytes.tolist() == [50]
    assert s2.since_baseline.bytes.tolist() == [150]
    assert s2.since_baseline.seconds == pytest.approx(2.0)
    tr.reset_baseline()  # the last sample (t=2) becomes the baseline
    s3 = tr.update(make_snapshot([("Tag1", NP, 30, 0, 300), ("Tag2", PG, 1, 0, 8)], 3))
    assert by_key(s3.counters, s3.since_baseline.bytes) == {("Tag1", NP): 50, ("Tag2", PG): 8}
    assert by_key(s3.counters, s3.since_baseline.is_new) == {("Tag1", NP): 0, ("Tag2", PG): 1}
    assert s3.baseline_taken_at_ns == 2_000_000_000


def test_reset_before_any_sample_uses_the_first() -> None:
    tr = Tracker()
    tr.reset_baseline()
    s = tr.update(make_snapshot([("A   ", NP, 1, 0, 1)], 5))
    assert s.baseline_taken_at_ns == 5_000_000_000


def _series_snapshots(values_by_tag: dict[str, list[int]], step_s: float = 1.0):
    n = len(next(iter(values_by_tag.values())))
    for i in range(n):
        rows = [(tag, NP, 0, 0, vals[i]) for tag, vals in values_by_tag.items()]
        yield make_snapshot(rows, i * step_s, diff=[0] * len(rows))


def test_leak_levels_from_the_tracker_window() -> None:
    n = 30
    series = {
        "Leak": [1_000_000 + 100_000 * i for i in range(n)],  # grows every interval
        "Flat": [500_000] * n,
        "Saw ": [400_000 + (100_000 if i % 2 else 0) for i in range(n)],  # alloc/free cycles
        "Step": [200_000] * 15 + [900_000] * 15,  # one jump, then flat
    }
    # A 30-sample series can only be a leak with a leak window that short (issue 14: evidence in time).
    tr = Tracker(JudgeThresholds(suspect_window_s=10, leak_window_s=29))
    for snap in _series_snapshots(series):
        sample = tr.update(snap)
    levels = {t: sample.leak.level(i) for i, t in enumerate(sample.counters.tags)}
    assert levels == {"Leak": LeakLevel.LEAK, "Flat": LeakLevel.STABLE, "Saw ": LeakLevel.STABLE,
                      "Step": LeakLevel.STABLE}
    leak_row = sample.counters.tags.index("Leak")
    assert sample.leak.slope[leak_row] == pytest.approx(100_000)
    assert sample.leak.score[leak_row] > 0.5


def test_warm_up_plateau_loses_its_level_as_the_window_slides() -> None:
    warm = [1_000_000 + 200_000 * i for i in range(10)] + [3_000_000] * 40
    tr = Tracker(JudgeThresholds(suspect_window_s=5, leak_window_s=19))
    levels = []
    for snap in _series_snapshots({"Warm": warm}):
        levels.append(tr.update(snap).leak.level(0))
    # While it grows it looks like one, but it is younger than the leak window (issue 14: it was
    # LEAK here before; rows younger than the window cannot be leak).
    assert max(levels[:12]) == LeakLevel.SUSPECT
    assert levels[-1] == LeakLevel.STABLE  # once it levels off, it is not


def test_history_since_start_is_bounded_and_keeps_the_first_sample() -> None:
    tr = Tracker(history=16)
    for i in range(100):
        tr.update(make_snapshot([("Hist", NP, i, 0, i * 10)], float(i)))
    times, bytes_, diff = tr.history("Hist", NP)
    assert len(times) <= 17
    assert times[0] == 0.0 and times[-1] == 99.0
    assert bytes_[-1] == 990.0 and diff[-1] == 99.0
    assert times == sorted(times)


def test_history_of_a_tag_that_appeared_late_is_nan_before() -> None:
    tr = Tracker()
    tr.update(make_snapshot([("A   ", NP, 1, 0, 1)], 0))
    tr.update(make_snapshot([("A   ", NP, 1, 0, 1), ("B   ", NP, 2, 0, 7)], 1))
    times, bytes_, _ = tr.history("B   ", NP)
    assert times == [0.0, 1.0]
    assert np.isnan(bytes_[0]) and bytes_[1] == 7.0
    assert tr.history("Nope", NP) == ([], [], [])


# --- property: deltas agree with an independent dict-based reference -------------------------

TAGS = ["Aaaa", "Bbbb", "Cccc", "Dddd", "Io  "]
counter_rows = st.lists(
    st.tuples(st.sampled_from(TAGS), st.sampled_from([NP, PG]), st.integers(0, U32 - 1),
              st.integers(0, U32 - 1), st.integers(0, 1 << 40)),
    max_size=8,
    unique_by=lambda r: (r[0], r[1]),
)


@given(st.lists(counter_rows, min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_tracker_deltas_match_a_reference(sequence: list[list[tuple[str, int, int, int, int]]]) -> None:
    tr = Tracker(JudgeThresholds(suspect_window_s=2, leak_window_s=3))
    first: dict[tuple[str, int], tuple[int, int, int]] = {}
    prev: dict[tuple[str, int], tuple[int, int, int]] = {}
    for step, rows in enumerate(sequence):
        sample = tr.update(make_snapshot(rows, float(step)))
        cur = {(t, p): (a, f, b) for t, p, a, f, b in rows}
        if step == 0:
            first = cur
        for i, key in enumerate(sample.counters.keys()):
            for ref, deltas in ((prev, sample.interval), (first, sample.since_baseline)):
                if step == 0:
                    continue
                a0, f0, b0 = ref.get(key, (0, 0, 0))
                a1, f1, b1 = cur[key]
                assert int(deltas.allocs[i]) == (a1 - a0) % U32
                assert int(deltas.frees[i]) == (f1 - f0) % U32
                assert int(deltas.bytes[i]) == b1 - b0
                assert bool(deltas.is_new[i]) == (key not in ref)
        if step:
            assert set(sample.interval.vanished.keys()) == set(prev) - set(cur)
        assert len(sample.leak.levels) == len(rows)
        prev = cur


@given(
    st.lists(
        st.dictionaries(st.sampled_from(TAGS), st.integers(0, 1 << 24), min_size=0, max_size=5),
        min_size=1, max_size=25,
    ),
    st.integers(2, 8),
)
@settings(max_examples=150, deadline=None)
def test_incremental_leak_window_matches_the_judge(steps: list[dict[str, int]], window: int) -> None:
    """The tracker's incremental verdicts equal judge_matrix over an independently kept matrix of
    the samples its window holds (the last `window` seconds, one sample a second)."""
    th = JudgeThresholds(min_samples=2, watch_min_ups=1, suspect_window_s=1, leak_window_s=window,
                         suspect_min_growth_bytes=1, leak_min_growth_bytes=1, max_window_samples=64)
    tr = Tracker(th)
    history: list[tuple[float, dict[str, int]]] = []
    for i, values in enumerate(steps):
        sample = tr.update(make_snapshot([(t, NP, 0, 0, b) for t, b in values.items()], float(i),
                                         diff=[0] * len(values)))
        history.append((float(i), values))
        recent = history[-(window + 1):]
        tags = list(sample.counters.tags)
        matrix = np.full((len(recent), len(tags)), np.nan)
        for r, (_, vals) in enumerate(recent):
            for c, tag in enumerate(tags):
                # a counter's run of samples must be unbroken up to now to count (it restarts when it returns)
                if tag in vals and all(tag in v for _, v in recent[r:]):
                    matrix[r, c] = vals[tag]
        batch = judge_matrix(np.array([t for t, _ in recent]), matrix, thresholds=th)
        assert sample.leak.ups.tolist() == batch.ups.tolist()
        assert sample.leak.downs.tolist() == batch.downs.tolist()
        assert sample.leak.samples.tolist() == batch.samples.tolist()
        assert sample.leak.growth.tolist() == batch.growth.tolist()
        assert sample.leak.levels.tolist() == batch.levels.tolist()
        rows = range(len(tags))
        assert [sample.leak.reasons(r) for r in rows] == [batch.reasons(r) for r in rows]


def test_tracker_slopes_are_computed_on_demand_and_agree() -> None:
    series = {
        "Fast": [1_000_000 + 300_000 * i for i in range(20)],
        "Slow": [2_000_000 + 1_000 * i for i in range(20)],
        "Flat": [500_000] * 20,
    }
    tr = Tracker()
    for snap in _series_snapshots(series):
        sample = tr.update(snap)
    leak = sample.leak
    rows = {t: i for i, t in enumerate(sample.counters.tags)}
    one_by_one = {t: leak.slope_at(i) for t, i in rows.items()}  # before the whole array exists
    assert one_by_one == {"Fast": pytest.approx(300_000), "Slow": pytest.approx(1_000), "Flat": 0.0}
    assert {t: float(leak.slope[i]) for t, i in rows.items()} == one_by_one
    assert not leak.slope.flags.writeable


def test_a_pause_longer_than_three_intervals_starts_the_leak_window_anew() -> None:
    th = JudgeThresholds(suspect_window_s=5, leak_window_s=10)
    tr = Tracker(th)
    for i in range(20):
        sample = tr.update(make_snapshot([("Leak", NP, 0, 0, 100_000 * i)], float(i), diff=[0]))
    assert sample.leak.level(0) is LeakLevel.LEAK and tr.window_samples == 11
    # a suspended machine: 60 s without samples, then the same counter, still growing
    sample = tr.update(make_snapshot([("Leak", NP, 0, 0, 100_000 * 20)], 80.0, diff=[0]))
    assert tr.window_samples == 1 and sample.leak.level(0) is LeakLevel.STABLE
    assert sample.leak.reasons(0) == ("too few samples for a verdict (at least 5)",)
    assert sample.interval.bytes.tolist() == [100_000]  # deltas still span the pause


def test_a_fast_refresh_keeps_the_window_bounded() -> None:
    th = JudgeThresholds(suspect_window_s=5, leak_window_s=10, max_window_samples=21)
    tr = Tracker(th)
    for i in range(400):  # ten samples a second for 40 s
        sample = tr.update(make_snapshot([("Leak", NP, 0, 0, 10_000 * i)], i / 10, diff=[0]))
    assert tr.window_samples <= th.max_window_samples + 3  # not the 101 samples of the last 10 s
    assert sample.leak.level(0) is LeakLevel.LEAK
    assert 9.9 <= float(sample.leak.evidence.span_s[0]) <= 10.6
