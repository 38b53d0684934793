"""Word: the reasons behind one row's level, as short phrases the UI and the report print."""

from __future__ import annotations

from pooltop.judge.decide import Criteria
from pooltop.judge.evidence import Evidence
from pooltop.judge.thresholds import JudgeThresholds, LeakLevel, seconds_text
from pooltop.model import human_bytes


def too_few_samples(th: JudgeThresholds) -> str:
    return f"too few samples for a verdict (at least {th.min_samples})"


NOT_JUDGED = "not judged: pooltop's own process"
RECLAIMABLE = "reclaimable: the kernel frees it under memory pressure"


def reasons(row: int, level: LeakLevel, ev: Evidence, c: Criteria, th: JudgeThresholds,
            under_pressure: bool, r2: float | None, slope: float | None) -> tuple[str, ...]:
    """Why `row` got `level`: the measures first, then what held it below the next level."""
    if c.exempt[row]:
        return (NOT_JUDGED,)
    if not c.enough_samples[row]:
        return (too_few_samples(th),) + ((RECLAIMABLE,) if ev.reclaimable[row] else ())
    span = float(ev.span_s[row])
    growth = float(ev.growth[row])
    out: list[str] = []
    if ev.candidate[row]:
        out.append(f"grew in {ev.grew_share[row]:.0%} of intervals over {seconds_text(span)}, "
                   f"{ev.monotony[row]:.0%} of its changes up")
        rate = f" ({human_bytes(slope)}/s)" if slope is not None and slope > 0 else ""
        out.append(f"growth {'+' if growth > 0 else ''}{human_bytes(growth)}{rate}")
        if r2 is not None:
            out.append(f"a straight line explains {max(r2, 0.0):.0%} of it")
        out.append("still growing at the end" if c.still_growing[row] else "levelled off at the end")
    elif growth <= 0:
        out.append("not growing" if growth == 0 else f"shrank by {human_bytes(-growth)}")
    elif ev.ups[row] < th.watch_min_ups:
        out.append(f"grew {human_bytes(growth)} in {int(ev.ups[row])} interval(s) only (a step?)")
    else:
        out.append(f"grew {human_bytes(growth)} but fell in as many intervals as it grew")
    out.extend(_held_back(row, level, ev, c, th))
    if ev.reclaimable[row]:
        out.append(RECLAIMABLE + ("; it grew while memory was short" if under_pressure
                                  else "; no memory pressure, so at most watch"))
    return tuple(out)


def _held_back(row: int, level: LeakLevel, ev: Evidence, c: Criteria, th: JudgeThresholds) -> list[str]:
    if level >= LeakLevel.LEAK or level < LeakLevel.WATCH or c.capped[row]:
        return []
    out = []
    if level == LeakLevel.WATCH and not c.long_enough_to_suspect[row]:
        out.append(f"too young: {seconds_text(float(ev.span_s[row]))} of the "
                   f"{seconds_text(th.suspect_window_s)} a suspect needs")
    elif not c.long_enough_to_leak[row]:
        out.append(f"too young for a leak: {seconds_text(float(ev.span_s[row]))} of the "
                   f"{seconds_text(th.leak_window_s)} leak window")
    need = th.suspect_min_growth_bytes if level == LeakLevel.WATCH else float(c.min_leak_growth[row])
    if ev.growth[row] < need:
        out.append(f"grew less than the {human_bytes(need)} a {_next(level)} needs")
    if level == LeakLevel.SUSPECT and not c.sustained[row]:
        grew = int((ev.thirds[row] >= th.min_third_share * ev.growth[row]).sum())
        out.append(f"grew in {grew} of 3 thirds of its time (a step, burst or warm-up?)")
    return out


def _next(level: LeakLevel) -> str:
    return LeakLevel(min(int(level) + 1, int(LeakLevel.LEAK))).label
