"""The judge's entry points: one counter (judge_series), many (judge_matrix), or evidence measured
elsewhere (judge_evidence: the live window keeps its counts incrementally). Same samples in, same
levels out, whichever is called."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from pooltop.judge.decide import Criteria, criteria, decide, scores
from pooltop.judge.evidence import Evidence, measure_series, segments
from pooltop.judge.thresholds import JudgeThresholds, LeakLevel
from pooltop.judge.trend import BoolArray, FloatArray, Int64Array
from pooltop.judge.words import reasons

DEFAULT = JudgeThresholds()


@dataclass(frozen=True)
class Judgement:
    """One counter's verdict and the numbers behind it."""

    level: LeakLevel
    reasons: tuple[str, ...]
    samples: int
    span_s: float
    growth_bytes: float
    slope_bytes_per_s: float
    r2: float
    grew_share: float
    monotony: float
    rising_share: float
    still_growing: bool
    reclaimable: bool


@dataclass(frozen=True, eq=False)
class Judgements:
    """Per-counter verdicts over one window, row-aligned with the counters judged."""

    levels: npt.NDArray[np.int8]
    score: FloatArray  # 0..1, for ranking and highlighting
    evidence: Evidence
    criteria: Criteria = field(repr=False)
    thresholds: JudgeThresholds = field(repr=False)
    under_pressure: bool = False
    #: where the judged series starts in the times given (after the last gap), and the gaps skipped
    start: int = 0
    gaps: tuple[tuple[float, float], ...] = ()

    def __len__(self) -> int:
        return len(self.levels)

    @property
    def ups(self) -> Int64Array:
        return self.evidence.ups

    @property
    def downs(self) -> Int64Array:
        return self.evidence.downs

    @property
    def samples(self) -> Int64Array:
        return self.evidence.samples

    @property
    def growth(self) -> FloatArray:
        return self.evidence.growth

    @property
    def reclaimable(self) -> BoolArray:
        return self.evidence.reclaimable

    def level(self, row: int) -> LeakLevel:
        return LeakLevel(int(self.levels[row]))

    @cached_property
    def slope(self) -> FloatArray:
        """Bytes per second (Theil-Sen) of every candidate row, 0 elsewhere. Computed on first use:
        a refresh only needs each slope's sign, which the rising-pair count gives without sorting."""
        out = self.evidence.trend.slopes(len(self.levels))
        out.flags.writeable = False
        return out

    def slope_at(self, row: int) -> float:
        """One row's slope, without computing the others (the detail pane)."""
        if "slope" in self.__dict__:
            return float(self.slope[row])
        return self.evidence.trend.slope_at(row)

    def reasons(self, row: int) -> tuple[str, ...]:
        ev = self.evidence
        fit = self.evidence.trend.column(row) is not None
        return reasons(row, self.level(row), ev, self.criteria, self.thresholds, self.under_pressure,
                       ev.trend.r2_at(row) if fit else None, self.slope_at(row) if fit else None)

    def at(self, row: int) -> Judgement:
        ev, c = self.evidence, self.criteria
        return Judgement(
            level=self.level(row), reasons=self.reasons(row), samples=int(ev.samples[row]),
            span_s=float(ev.span_s[row]), growth_bytes=float(ev.growth[row]),
            slope_bytes_per_s=self.slope_at(row), r2=ev.trend.r2_at(row),
            grew_share=float(ev.grew_share[row]), monotony=float(ev.monotony[row]),
            rising_share=float(ev.rising_share[row]), still_growing=bool(c.still_growing[row]),
            reclaimable=bool(ev.reclaimable[row]),
        )


def judge_evidence(ev: Evidence, *, under_pressure: bool = False,
                   thresholds: JudgeThresholds = DEFAULT, start: int = 0,
                   gaps: tuple[tuple[float, float], ...] = (),
                   exempt: BoolArray | None = None) -> Judgements:
    """Levels from evidence measured elsewhere; `exempt` rows are not judged (stable)."""
    c = criteria(ev, thresholds, under_pressure, exempt)
    levels = decide(c)
    return Judgements(levels, scores(ev, c, levels), ev, c, thresholds, under_pressure, start, gaps)


def judge_matrix(
    times_s: Sequence[float] | FloatArray,
    values: FloatArray,
    *,
    reclaimable: BoolArray | Sequence[bool] | None = None,
    under_pressure: bool = False,
    thresholds: JudgeThresholds = DEFAULT,
) -> Judgements:
    """Verdicts for each column of `values` (T samples x N counters of bytes; NaN = absent) over
    `times_s` (seconds, ascending). A pause longer than thresholds.gap_intervals sampling intervals
    splits the series; only its last segment is judged, and the gaps are reported."""
    times = np.asarray(times_s, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 2 or vals.shape[0] != len(times):
        raise ValueError("values must be samples x counters, one row per time")
    parts = segments(times, thresholds.gap_intervals)
    start, end = parts[-1] if parts else (0, 0)
    gaps = tuple((float(times[a - 1]), float(times[a])) for a, _ in parts[1:])
    recl = None if reclaimable is None else np.asarray(reclaimable, dtype=np.bool_)
    ev = measure_series(times[start:end], vals[start:end], recl, thresholds)
    return judge_evidence(ev, under_pressure=under_pressure, thresholds=thresholds, start=start, gaps=gaps)


def judge_series(
    times_s: Sequence[float] | FloatArray,
    values: Sequence[float] | FloatArray,
    *,
    reclaimable: bool = False,
    under_pressure: bool = False,
    thresholds: JudgeThresholds = DEFAULT,
) -> Judgement:
    """One counter's verdict (see judge_matrix)."""
    column = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    return judge_matrix(times_s, column, reclaimable=[reclaimable], under_pressure=under_pressure,
                        thresholds=thresholds).at(0)
