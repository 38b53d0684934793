"""The leak judge: one pure function family that says whether counters leak, and why.

Numbers in (a series of times and bytes per counter, whether each is reclaimable, whether the
kernel was short of memory), verdicts out (a LeakLevel and its reasons per counter). The live view,
its detail pane and header, `report` (recordings and snapshot series), `bundle` and the Prometheus
exporter all call it, so the same samples get the same verdict wherever they are shown.

It works in three steps, each its own module: measure (evidence.py: growth, ups and downs, rising
pairs, growth per third of the series), decide (decide.py: thresholds -> levels), word (words.py:
reasons). thresholds.py holds the levels and the one dataclass of numbers.
"""

from typing import TYPE_CHECKING

from pooltop.lazy import lazy_names

if TYPE_CHECKING:
    from pooltop.judge.decide import under_memory_pressure
    from pooltop.judge.evidence import Evidence, measure_counts, measure_series, segments, usual_interval
    from pooltop.judge.judgement import Judgement, Judgements, judge_evidence, judge_matrix, judge_series
    from pooltop.judge.reclaim import reclaimable_rows
    from pooltop.judge.thresholds import JudgeThresholds, LeakLevel, seconds_text
    from pooltop.judge.trend import robust_r2, theil_sen_rising, theil_sen_slopes, trend_rows
    from pooltop.judge.words import RECLAIMABLE, too_few_samples

#: where each name lives: loaded on first use, so `pooltop --help` (whose options show the
#: thresholds' defaults) starts without numpy
_HOME = {
    "JudgeThresholds": "thresholds", "LeakLevel": "thresholds",
    "under_memory_pressure": "decide",
    "Evidence": "evidence", "measure_counts": "evidence", "measure_series": "evidence",
    "segments": "evidence", "usual_interval": "evidence",
    "Judgement": "judgement", "Judgements": "judgement", "judge_evidence": "judgement",
    "judge_matrix": "judgement", "judge_series": "judgement",
    "reclaimable_rows": "reclaim",
    "robust_r2": "trend", "theil_sen_rising": "trend", "theil_sen_slopes": "trend", "trend_rows": "trend",
    "RECLAIMABLE": "words", "seconds_text": "thresholds", "too_few_samples": "words",
}


__getattr__ = lazy_names(__name__, _HOME)


__all__ = [
    "RECLAIMABLE",
    "Evidence",
    "JudgeThresholds",
    "Judgement",
    "Judgements",
    "LeakLevel",
    "judge_evidence",
    "judge_matrix",
    "judge_series",
    "measure_counts",
    "measure_series",
    "reclaimable_rows",
    "robust_r2",
    "seconds_text",
    "segments",
    "theil_sen_rising",
    "theil_sen_slopes",
    "too_few_samples",
    "trend_rows",
    "under_memory_pressure",
    "usual_interval",
]
