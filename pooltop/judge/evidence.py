"""Measure: the numbers the judge decides on, per counter, over one series (T samples x N counters).

Everything here is a measurement; no threshold decides anything except which rows are worth the
trend arithmetic at all (growing, with enough samples): at 50,000 counters only a few percent are,
and the live view measures every refresh.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from pooltop.judge.thresholds import JudgeThresholds
from pooltop.judge.trend import (
    BoolArray,
    FloatArray,
    IndexArray,
    Int64Array,
    rising_pairs,
    robust_r2,
    theil_sen_rising,
    theil_sen_slopes,
    trend_rows,
)


@dataclass(frozen=True)
class TrendPoints:
    """The trend points of the candidate rows: thinned times, values (points x candidates) and
    which rows the candidates are (ascending). Slopes and fits are computed from them on demand."""

    times: FloatArray
    values: FloatArray
    rows: IndexArray

    def column(self, row: int) -> int | None:
        i = int(np.searchsorted(self.rows, row))
        return i if i < len(self.rows) and int(self.rows[i]) == row else None

    def slopes(self, n: int) -> FloatArray:
        out = np.zeros(n, dtype=np.float64)
        if len(self.rows):
            out[self.rows] = theil_sen_slopes(self.times, self.values)
        return out

    def slope_at(self, row: int) -> float:
        i = self.column(row)
        return 0.0 if i is None else float(theil_sen_slopes(self.times, self.values[:, i : i + 1])[0])

    def r2_at(self, row: int) -> float:
        i = self.column(row)
        if i is None:
            return 0.0
        col = self.values[:, i : i + 1]
        return float(robust_r2(self.times, col, theil_sen_slopes(self.times, col))[0])


_NO_TREND = TrendPoints(np.zeros(0), np.zeros((0, 0)), np.zeros(0, dtype=np.intp))


@dataclass(frozen=True, eq=False)
class Evidence:
    """Per-counter measures, row-aligned. Trend measures (rises, pairs, thirds, rising) are those of
    candidate rows; other rows hold zeros (they are not growing, or have too few samples)."""

    samples: Int64Array  # valid samples in the series
    span_s: FloatArray  # seconds from the row's first to its last valid sample
    ups: Int64Array  # intervals that grew
    downs: Int64Array  # intervals that shrank
    first: FloatArray
    last: FloatArray
    reclaimable: BoolArray
    candidate: BoolArray  # growing with enough samples: the rows the trend was measured for
    rising: BoolArray  # Theil-Sen slope > 0
    rises: Int64Array  # trend-point pairs whose later value is higher
    pairs: Int64Array  # trend-point pairs with both ends present
    thirds: FloatArray  # (N, 3): growth in each third of the row's span
    #: the last suspect_window_s of the row: 7 evenly spaced values' growth, growth in each of its
    #: thirds, and rising pairs among the 7 (what a suspect is decided on, so a leak that starts
    #: in a row watched for long is seen as soon as in a new one)
    recent_growth: FloatArray
    recent_thirds: FloatArray  # (N, 3)
    recent_rises: Int64Array
    recent_pairs: Int64Array
    trend: TrendPoints = field(default=_NO_TREND, repr=False)

    def __len__(self) -> int:
        return len(self.samples)

    @cached_property
    def growth(self) -> FloatArray:
        out: FloatArray = np.where(self.samples > 0, self.last - self.first, 0.0)
        out.flags.writeable = False
        return out

    @cached_property
    def monotony(self) -> FloatArray:
        """ups / (ups + downs): the share of the intervals that changed which grew."""
        out: FloatArray = self.ups / np.maximum(self.ups + self.downs, 1)
        return out

    @cached_property
    def rising_share(self) -> FloatArray:
        out: FloatArray = self.rises / np.maximum(self.pairs, 1)
        return out

    @cached_property
    def recent_rising_share(self) -> FloatArray:
        out: FloatArray = self.recent_rises / np.maximum(self.recent_pairs, 1)
        return out

    @cached_property
    def grew_share(self) -> FloatArray:
        """Intervals that grew / all intervals."""
        out: FloatArray = self.ups / np.maximum(self.samples - 1, 1)
        return out


def measure_series(
    times: FloatArray,
    values: FloatArray,
    reclaimable: BoolArray | None,
    thresholds: JudgeThresholds,
) -> Evidence:
    """Evidence over a whole matrix (no gaps in it: see segments())."""
    t_count, n = values.shape
    valid = ~np.isnan(values)
    samples = valid.sum(axis=0).astype(np.int64)
    steps = np.diff(values, axis=0)  # NaN where either side is absent
    with np.errstate(invalid="ignore"):
        ups = (steps > 0).sum(axis=0).astype(np.int64)
        downs = (steps < 0).sum(axis=0).astype(np.int64)
    if t_count == 0:
        first_row = last_row = np.zeros(n, dtype=np.intp)
    else:
        first_row = np.argmax(valid, axis=0)
        last_row = t_count - 1 - np.argmax(valid[::-1], axis=0)
    return measure_counts(times, values, samples, ups, downs, first_row, last_row, reclaimable, thresholds)


def measure_counts(
    times: FloatArray,
    values: npt.NDArray[Any],
    samples: Int64Array,
    ups: Int64Array,
    downs: Int64Array,
    first_row: IndexArray,
    last_row: IndexArray,
    reclaimable: BoolArray | None,
    thresholds: JudgeThresholds,
    *,
    first: FloatArray | None = None,
    last: FloatArray | None = None,
) -> Evidence:
    """Evidence from counts kept elsewhere (the live window keeps ups and downs incrementally) and
    the series itself, which is read only at each row's ends and at the trend points of candidates."""
    n = len(samples)
    th = thresholds
    cols = np.arange(n)
    if len(times) and n:
        first = values[first_row, cols].astype(np.float64) if first is None else first
        last = values[last_row, cols].astype(np.float64) if last is None else last
        span = np.where(samples > 0, times[last_row] - times[first_row], 0.0)
    else:
        first = last = span = np.zeros(n)
    recl = np.zeros(n, dtype=np.bool_) if reclaimable is None else np.asarray(reclaimable, np.bool_)
    growth = np.where(samples > 0, last - first, 0.0)
    candidate = (samples >= th.min_samples) & (ups >= th.watch_min_ups) & (growth > 0) & (ups > downs)
    rising = np.zeros(n, dtype=np.bool_)
    rises = np.zeros(n, dtype=np.int64)
    pairs = np.zeros(n, dtype=np.int64)
    thirds = np.zeros((n, 3), dtype=np.float64)
    recent_thirds = np.zeros((n, 3), dtype=np.float64)
    recent_growth = np.zeros(n, dtype=np.float64)
    recent_rises = np.zeros(n, dtype=np.int64)
    recent_pairs = np.zeros(n, dtype=np.int64)
    trend = _NO_TREND
    cand = np.flatnonzero(candidate)
    if len(cand):
        picked = trend_rows(times, th.trend_points)
        t_p = times[picked]
        # Rows first (contiguous copies), then one gather; the result must be C-ordered: the pair
        # counts run along rows, 5x slower in Fortran order (what a[:, idx] may give).
        v_p = np.take(values[picked], cand, axis=1).astype(np.float64, order="C")
        trend = TrendPoints(t_p, v_p, cand)
        counts = rising_pairs(v_p)
        rises[cand], pairs[cand] = counts
        rising[cand] = theil_sen_rising(t_p, v_p, counts)
        ends = times[first_row[cand]], times[last_row[cand]]
        thirds[cand] = _thirds(t_p, v_p, *ends, first[cand], last[cand])
        # The recent window decides suspect only: read it for rows that can still be one.
        c_ups, c_downs = ups[cand], downs[cand]
        hopeful = cand[rising[cand] & (span[cand] >= th.suspect_window_s * 0.999)
                       & (c_ups >= th.suspect_monotony * (c_ups + c_downs))]
        if len(hopeful):
            v_r = _recent(times, values, hopeful, last_row[hopeful], th.suspect_window_s)
            recent_growth[hopeful] = v_r[-1] - v_r[0]
            recent_thirds[hopeful] = (v_r[[2, 4, 6]] - v_r[[0, 2, 4]]).T
            recent_rises[hopeful], recent_pairs[hopeful] = rising_pairs(v_r)
    for arr in (samples, ups, downs, first, last, rising, rises, pairs, thirds, span, recent_growth,
                recent_thirds, recent_rises, recent_pairs):
        arr.flags.writeable = False
    return Evidence(samples, span, ups, downs, first, last, recl, candidate, rising, rises, pairs, thirds,
                    recent_growth, recent_thirds, recent_rises, recent_pairs, trend)


#: values the recent window is read at (7: thirds at 0, 2, 4, 6 and 21 pairs to count)
RECENT_POINTS = 7


def _recent(times: FloatArray, values: npt.NDArray[Any], cols: IndexArray, last_row: IndexArray,
            window_s: float) -> FloatArray:
    """Each column's values at RECENT_POINTS instants evenly spread over the `window_s` seconds up
    to its last sample (the sample at or just before each instant; absent ones read as the last
    present before them, or NaN). Points x columns."""
    t_last = times[last_row]
    marks = t_last[None, :] - window_s * (1 - np.linspace(0.0, 1.0, RECENT_POINTS))[:, None]
    if len(last_row) and last_row.min() == last_row.max():  # the live window: one end for every row
        rows_1 = (np.searchsorted(times, marks[:, 0], side="right") - 1).clip(0, int(last_row[0]))
        out: FloatArray = np.take(values[rows_1], cols, axis=1).astype(np.float64, order="C")
    else:
        rows = (np.searchsorted(times, marks.ravel(), side="right") - 1).reshape(marks.shape).clip(0)
        rows = np.minimum(rows, last_row[None, :])
        out = values[rows, cols[None, :]].astype(np.float64, order="C")
    return np.nan_to_num(out, nan=0.0) if not np.isnan(out).any() else _fill_back(out)


def _fill_back(v: FloatArray) -> FloatArray:
    """NaN (an absent sample) -> the value before it in the column (the first present one at the start)."""
    out = v.copy()
    for k in range(1, len(out)):
        hole = np.isnan(out[k])
        out[k, hole] = out[k - 1, hole]
    for k in range(len(out) - 2, -1, -1):
        hole = np.isnan(out[k])
        out[k, hole] = out[k + 1, hole]
    return out


def _thirds(t_p: FloatArray, v_p: FloatArray, t_first: FloatArray, t_last: FloatArray,
            first: FloatArray, last: FloatArray) -> FloatArray:
    """Growth in each third of every column's span: value at the trend point nearest each boundary
    (present ones only), from the first value to the last."""
    span = t_last - t_first
    cols = np.arange(v_p.shape[1])
    bounds = []
    for k in (1, 2):
        at = t_first + span * k / 3.0
        after = np.searchsorted(t_p, at).clip(1, len(t_p) - 1)
        nearest = np.where(at - t_p[after - 1] <= t_p[after] - at, after - 1, after)
        value = v_p[nearest, cols]
        absent = np.flatnonzero(np.isnan(value))
        if len(absent):  # the nearest present point instead
            distance = np.abs(t_p[:, None] - at[None, absent])
            distance[np.isnan(v_p[:, absent])] = np.inf
            value[absent] = v_p[np.argmin(distance, axis=0), absent]
        bounds.append(value)
    v1, v2 = bounds
    out: FloatArray = np.stack([v1 - first, v2 - v1, last - v2], axis=1)
    return np.nan_to_num(out, nan=0.0)


def usual_interval(steps: FloatArray) -> float:
    """The median sampling interval (np.partition: a refresh of the live window asks every time)."""
    n = len(steps)
    if n == 0:
        return 0.0
    middle = np.partition(steps, [(n - 1) // 2, n // 2])
    return float(middle[(n - 1) // 2] + middle[n // 2]) / 2


def segments(times: FloatArray, gap_intervals: float) -> list[tuple[int, int]]:
    """[start, end) sample ranges between gaps: a pause longer than `gap_intervals` times the median
    sampling interval splits the series (a suspended machine or a recording resumed later)."""
    t_count = len(times)
    if t_count < 3:
        return [(0, t_count)] if t_count else []
    steps = np.diff(times)
    usual = usual_interval(steps)
    if usual <= 0:
        return [(0, t_count)]
    cuts = (np.flatnonzero(steps > gap_intervals * usual) + 1).tolist()
    edges = [0, *cuts, t_count]
    return list(itertools.pairwise(edges))
