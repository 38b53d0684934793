"""The same samples get the same verdict in the live view (Tracker), `report` (a recording, and a
snapshot series) and the exporter (pooltop_pool_leak_level); reclaimable memory never "runs out";
a one-sample recording gets no verdict; a gap splits a recording."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
from helpers import HOST, T0

from pooltop.exporter.frame import FrameBuilder
from pooltop.judge import JudgeThresholds, LeakLevel
from pooltop.model import CounterSet, Pool, Snapshot, Totals
from pooltop.record import RecordingWriter
from pooltop.report.render import build_report, render_json, render_text
from pooltop.report.series import build_series_report
from pooltop.tracking import Tracker

#: 101 one-second samples fit a 100 s leak window whole: every path sees the same samples
TH = JudgeThresholds(suspect_window_s=20, leak_window_s=100)
TAGS = ("leak", "step", "saw", "flat", "dentry", "slow")
RECLAIMABLE = np.array([0, 0, 0, 0, 1, 0])


def values(i: int) -> list[int]:
    rng = np.random.default_rng(i)
    noise = int(rng.integers(-8, 9)) * 256
    return [
        4_000_000 + 200 * 256 * i + noise,  # 200 objects/s held
        3_000_000 + (2_000_000 if i >= 50 else 0) + noise,  # one-off allocation, then held
        2_000_000 + (i % 10) * 40_000,  # alloc/free saw-tooth
        1_000_000,
        6_000_000 + 100 * 192 * i,  # reclaimable, growing like a leak
        5_000_000 + 3 * 256 * i + noise,  # a slow leak under noise
    ]


def slab_snapshot(i: int, t0: float = 0.0, available: int = 8 << 30) -> Snapshot:
    b = np.array(values(i), dtype=np.int64)
    n = len(TAGS)
    counters = CounterSet.build(TAGS, [Pool.SLAB] * n, [0] * n, [0] * n, b // 256, b,
                                extra={"reclaimable": RECLAIMABLE}, has_alloc_counts=False, counter_bits=64)
    t = t0 + i
    return Snapshot(source="linux-slab", taken_at=T0 + dt.timedelta(seconds=t), monotonic_ns=int(t * 1e9),
                    host=dataclasses.replace(HOST, os="Linux"), totals=Totals(memory_available=available),
                    counters=counters)


def snaps(count: int = 101) -> list[Snapshot]:
    return [slab_snapshot(i) for i in range(count)]


def live_levels(series: list[Snapshot]) -> dict[str, LeakLevel]:
    tracker = Tracker(TH)
    for s in series:
        sample = tracker.update(s)
    return {tag: sample.leak.level(i) for i, tag in enumerate(sample.counters.tags)}


def test_live_report_series_and_exporter_agree(tmp_path) -> None:  # type: ignore[no-untyped-def]
    series = snaps()
    live = live_levels(series)

    builder = FrameBuilder(top=10, max_watch=10, thresholds=TH)
    for s in series:
        frame = builder.update(s)
    exported = {label[0]: LeakLevel(level)
                for label, level in zip(frame.labels, frame.leak_levels, strict=True)}

    path = str(tmp_path / "rec.db")
    with RecordingWriter(path, series[0], interval_s=1.0) as w:
        for s in series:
            w.append(s)
    recorded = {r.tag: r.verdict for r in build_report(path, TH).results}
    from_files = {r.tag: r.verdict for r in build_series_report([(f"s{i}", s) for i, s in enumerate(series)],
                                                                  TH, "series").results}
    assert live == exported == recorded == from_files
    # and the shapes get what they should
    assert live["leak"] is LeakLevel.LEAK and live["flat"] is LeakLevel.STABLE
    assert live["step"] < LeakLevel.SUSPECT and live["saw"] < LeakLevel.LEAK
    assert live["dentry"] is LeakLevel.WATCH  # reclaimable, no memory pressure


def test_reclaimable_is_named_and_never_runs_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "rec.db")
    # memory running short while dentry grows: reclaimable growth under pressure is judged
    series = [slab_snapshot(i, available=(8 << 30) - i * (1 << 24)) for i in range(101)]
    with RecordingWriter(path, series[0], interval_s=1.0) as w:
        for s in series:
            w.append(s)
    rep = build_report(path, TH)
    dentry = next(r for r in rep.results if r.tag == "dentry")
    assert dentry.reclaimable and dentry.verdict is LeakLevel.LEAK and dentry.exhaustion_s is None
    leak = next(r for r in rep.results if r.tag == "leak")
    assert leak.exhaustion_s is not None
    text = render_text(rep)
    dentry_line = next(line for line in text.splitlines() if line.startswith("leak") and " dentry " in line)
    assert "reclaimable" in dentry_line
    assert any("reclaimable: the kernel frees it under memory pressure; it grew while memory was short"
               in r for r in dentry.reasons)
    doc = json.loads(render_json(rep))
    assert next(s for s in doc["suspects"] if s["tag"] == "dentry")["reclaimable"] is True


def test_a_one_sample_recording_gets_no_verdict(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "one.db")
    first = slab_snapshot(0)
    with RecordingWriter(path, first, interval_s=1.0) as w:
        w.append(first)
    rep = build_report(path, JudgeThresholds())
    text = render_text(rep, include_stable=True)
    assert "verdicts: too few samples for a verdict (at least 5)" in text
    assert "No verdict: too few samples for a verdict (at least 5); record for longer." in text
    assert "stable" not in text and "No counter grew like a leak" not in text
    assert json.loads(render_json(rep))["too_few_samples"] == "too few samples for a verdict (at least 5)"


def test_a_gap_splits_a_recording_and_the_report_says_where(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "gap.db")
    # 101 s of a leak, a 17-minute pause, then 101 s with the same counters flat
    before = snaps()
    after = [dataclasses.replace(slab_snapshot(100, t0=1120.0 + i - 100), counters=before[-1].counters)
             for i in range(101)]
    with RecordingWriter(path, before[0], interval_s=1.0) as w:
        for s in (*before, *after):
            w.append(s)
    rep = build_report(path, TH)
    assert [round(pause) for _, pause in rep.gaps] == [1020]
    assert {r.tag: r.verdict for r in rep.results}["leak"] is LeakLevel.STABLE  # judged after the gap
    text = render_text(rep, include_stable=True)
    assert "gap: no samples for 17 min after " in text
    assert "verdicts are on the samples after the last gap" in text
    assert json.loads(render_json(rep))["recording"]["gaps"] == [{"after_s": 100.0, "seconds": 1020.0}]
