"""The leak judge on synthetic series of every shape issue 14 names (pure and fast).

`live_levels` slides the live view's window (the last leak_window_s seconds) over a series the way
the Tracker does, so "never reaches leak" is checked at every moment, not only at the end.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapes
from hypothesis import given, settings
from hypothesis import strategies as st

from pooltop.judge import (
    JudgeThresholds,
    LeakLevel,
    judge_matrix,
    judge_series,
    reclaimable_rows,
    segments,
    theil_sen_rising,
    theil_sen_slopes,
    under_memory_pressure,
)

TH = JudgeThresholds()


def live_levels(values: np.ndarray, th: JudgeThresholds = TH, every: int = 5) -> list[LeakLevel]:
    """The level at every `every` seconds, judged over the window the live view holds then."""
    t = shapes.seconds(len(values))
    out = []
    for end in range(every, len(values) + 1, every):
        start = max(0, end - 1 - int(th.leak_window_s))
        out.append(judge_series(t[start:end], values[start:end], thresholds=th).level)
    return out


def first_time_at(levels: list[LeakLevel], level: LeakLevel, every: int = 5) -> float | None:
    for i, lv in enumerate(levels):
        if lv >= level:
            return (i + 1) * every
    return None


# A slow leak (2 objects/s) in a cache whose churn moves it by ~20 objects a sample grows less
# per interval than the noise: as many intervals fall as rise, so it stays suspect.
@pytest.mark.parametrize("objects_per_s, within_s, at_the_end", [
    (100, 60, LeakLevel.LEAK), (20, 120, LeakLevel.LEAK), (2, 300, LeakLevel.SUSPECT)])
def test_steady_leaks_reach_suspect_in_time(objects_per_s: float, within_s: float,
                                            at_the_end: LeakLevel) -> None:
    series = shapes.steady_leak(600, objects_per_s)
    levels = live_levels(series)
    found = first_time_at(levels, LeakLevel.SUSPECT)
    assert found is not None and found <= within_s
    assert min(levels[-60:]) is at_the_end


def test_a_slow_leak_in_a_quiet_cache_is_a_leak() -> None:
    # Two objects a second, never freed, nothing else moving the cache.
    values = shapes.BASE + np.arange(400) * 2 * shapes.OBJ
    assert live_levels(values)[-1] is LeakLevel.LEAK


def test_a_leak_that_starts_later_is_found_in_an_old_row() -> None:
    levels = live_levels(shapes.steady_leak(900, 100, start=400))
    found = first_time_at(levels, LeakLevel.SUSPECT)
    assert found is not None and 400 < found <= 460
    assert levels[-1] is LeakLevel.LEAK


@pytest.mark.parametrize("name, series", [
    ("step", shapes.step(900, at=300)),
    ("warm-up", shapes.warm_up(900)),
    ("saw-tooth", shapes.saw_tooth(900)),
    ("burst freed", shapes.burst_freed(900, at=300)),
    ("install", shapes.install(900, at=300)),
    ("noise", shapes.BASE + shapes.noise(900, 7, objects=200)),
])
def test_normal_activity_never_reaches_leak(name: str, series: np.ndarray) -> None:
    assert max(live_levels(series, every=1)) < LeakLevel.LEAK, name
    assert judge_series(shapes.seconds(len(series)), series).level < LeakLevel.LEAK, name


def test_a_flat_counter_is_stable_and_says_so() -> None:
    j = judge_series(shapes.seconds(60), np.full(60, 1e6))
    assert j.level is LeakLevel.STABLE and j.reasons == ("not growing",)


def test_too_few_samples_give_no_verdict_and_say_how_many_are_needed() -> None:
    j = judge_series([0.0, 1.0, 2.0, 3.0], [1.0, 1e6, 2e6, 3e6])
    assert j.level is LeakLevel.STABLE
    assert j.reasons == ("too few samples for a verdict (at least 5)",)
    assert judge_series([0.0], [1.0]).reasons == j.reasons


def test_a_row_younger_than_the_leak_window_is_at_most_suspect_and_says_why() -> None:
    series = shapes.steady_leak(120, 100)
    j = judge_series(shapes.seconds(120), series)
    assert j.level is LeakLevel.SUSPECT
    assert "too young for a leak: 119 s of the 3 min leak window" in j.reasons
    assert "still growing at the end" in j.reasons
    assert any(r.startswith("grew in ") and "over 119 s" in r for r in j.reasons)


def test_a_leak_names_its_growth_fit_and_rate() -> None:
    j = judge_series(shapes.seconds(300), shapes.steady_leak(300, 100))
    assert j.level is LeakLevel.LEAK
    assert j.slope_bytes_per_s == pytest.approx(100 * shapes.OBJ, rel=0.05)
    assert j.r2 > 0.95 and j.still_growing and not j.reclaimable
    assert any(r.startswith("growth +") and "KiB/s)" in r for r in j.reasons)
    assert "a straight line explains 100% of it" in j.reasons


def test_warm_up_says_it_levelled_off() -> None:
    j = judge_series(shapes.seconds(300), shapes.warm_up(300))
    assert j.level < LeakLevel.SUSPECT
    assert not j.still_growing


def test_reclaimable_stays_at_watch_without_memory_pressure_and_leaks_with_it() -> None:
    t, series = shapes.seconds(300), shapes.steady_leak(300, 100)
    calm = judge_series(t, series, reclaimable=True)
    assert calm.level is LeakLevel.WATCH and calm.reclaimable
    assert any(r.startswith("reclaimable") and "at most watch" in r for r in calm.reasons)
    pressed = judge_series(t, series, reclaimable=True, under_pressure=True)
    assert pressed.level is LeakLevel.LEAK
    assert any("memory was short" in r for r in pressed.reasons)


def test_memory_pressure_is_available_memory_falling_while_tasks_stall() -> None:
    falling = np.array([8e9, 7e9, 6e9])
    assert under_memory_pressure(falling)  # no pressure stall information: falling is enough
    assert under_memory_pressure(falling, np.array([0.0, 10.0, 500.0]))
    assert not under_memory_pressure(falling, np.array([5.0, 5.0, 5.0]))  # nothing stalled
    assert not under_memory_pressure(falling[::-1], np.array([0.0, 10.0, 500.0]))
    assert not under_memory_pressure(np.array([np.nan, 8e9]))


def test_reclaimable_rows_take_the_column_and_the_kmalloc_rcl_names() -> None:
    tags = ["dentry", "kmalloc-rcl-64", "filp"]
    assert reclaimable_rows(tags, [1, 0, 0]).tolist() == [True, True, False]
    assert reclaimable_rows(tags).tolist() == [False, True, False]


def test_a_gap_splits_the_series_and_only_the_last_segment_is_judged() -> None:
    # A leak before a 17-minute pause, flat after it: judged on the flat part alone.
    before = shapes.steady_leak(200, 100)
    t = np.r_[shapes.seconds(200), 1220.0 + shapes.seconds(100)]
    values = np.r_[before, np.full(100, before[-1])]
    judged = judge_matrix(t, values[:, None])
    assert judged.gaps == ((199.0, 1220.0),)
    assert judged.start == 200
    assert judged.level(0) is LeakLevel.STABLE
    assert segments(t, 3.0) == [(0, 200), (200, 300)]


def test_a_short_pause_is_no_gap() -> None:
    t = np.r_[shapes.seconds(100), 102.0 + shapes.seconds(100)]
    assert segments(t, 3.0) == [(0, 200)]


def test_absent_samples_are_skipped_not_read_as_zero() -> None:
    series = shapes.steady_leak(300, 100)
    holes = series.copy()
    holes[[10, 11, 150, 151, 152]] = np.nan
    j = judge_series(shapes.seconds(300), holes)
    assert j.level is LeakLevel.LEAK and j.samples == 295


def test_matrix_and_series_agree_row_by_row() -> None:
    t = shapes.seconds(400)
    columns = [shapes.steady_leak(400, 100), shapes.step(400, 200), shapes.warm_up(400),
               shapes.saw_tooth(400), shapes.steady_leak(400, 2)]
    matrix = judge_matrix(t, np.stack(columns, axis=1), reclaimable=[False, False, True, False, False])
    for i, col in enumerate(columns):
        one = judge_series(t, col, reclaimable=i == 2)
        assert (matrix.level(i), matrix.reasons(i)) == (one.level, one.reasons)


def test_thresholds_are_the_users() -> None:
    t, series = shapes.seconds(100), shapes.steady_leak(100, 100)
    assert judge_series(t, series).level is LeakLevel.SUSPECT
    short = JudgeThresholds(suspect_window_s=10, leak_window_s=60)
    assert judge_series(t, series, thresholds=short).level is LeakLevel.LEAK
    with pytest.raises(ValueError, match="suspect window"):
        JudgeThresholds(suspect_window_s=100, leak_window_s=60)
    with pytest.raises(ValueError, match="leak_window_s"):
        JudgeThresholds(leak_window_s=-1)


def test_theil_sen_ignores_an_outlier() -> None:
    t = np.arange(11.0)
    v = 5.0 * t
    v[5] = 10_000.0
    assert theil_sen_slopes(t, v[:, None])[0] == pytest.approx(5.0)


# Columns of small integers (many equal values, so many zero slopes and exact ties), NaN gaps, and
# repeated or unevenly spaced times: where a sign count could go wrong.
_column = st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=2, max_size=20)


@given(st.lists(_column, min_size=1, max_size=6), st.lists(st.floats(0.0, 5.0), min_size=20, max_size=20),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_rising_matches_the_sign_of_the_exact_theil_sen_slope(
    columns: list[list[int | None]], gaps: list[float], repeat_a_time: bool
) -> None:
    t_count = min(len(c) for c in columns)
    times = np.cumsum(np.array(gaps[:t_count]) + (0.0 if repeat_a_time else 0.5))
    values = np.array([[np.nan if v is None else float(v) for v in c[:t_count]] for c in columns]).T
    exact = theil_sen_slopes(times, values)
    assert theil_sen_rising(times, values).tolist() == (exact > 0).tolist()


def test_rising_breaks_an_even_split_with_the_slopes_themselves() -> None:
    # 4 samples, 6 pairs, 3 rising: the median is the mean of the 3rd and 4th slopes.
    times = np.arange(4.0)
    middle_up = np.array([0.0, 10.0, 0.0, 1.0])  # slopes -10 -4.5 0 | 1/3 1 10: median +1/6
    middle_down = np.array([0.0, 1.0, 2.0, -10.0])  # slopes -12 -5.5 -10/3 | 1 1 1: median -7/6
    values = np.stack([middle_up, middle_down], axis=1)
    exact = theil_sen_slopes(times, values)
    assert exact[0] > 0 > exact[1]
    assert theil_sen_rising(times, values).tolist() == (exact > 0).tolist()


