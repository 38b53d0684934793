"""The leak report as text, JSON (`pooltop.report/1`) or one self-contained HTML file with charts."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pooltop import __version__
from pooltop.errors import PooltopError
from pooltop.judge import JudgeThresholds, LeakLevel, seconds_text, too_few_samples
from pooltop.model import HostInfo, Totals, human_bytes
from pooltop.record import Recording, read_series
from pooltop.report.analysis import CounterAnalysis, analyse, gaps, verdict_counts

REPORT_SCHEMA = "pooltop.report/1"


@dataclass(frozen=True)
class Report:
    path: str
    source: str
    host: HostInfo
    first_at: dt.datetime
    last_at: dt.datetime
    samples: int
    points: int
    thresholds: JudgeThresholds
    results: list[CounterAnalysis]
    # for charts: seconds since start, per-counter bytes (only for the charted ones), totals
    seconds: np.ndarray
    bytes_by_key: dict[tuple[str, int], np.ndarray]
    totals: list[Totals]
    # each point's lowest and highest bytes, where a point stands for an interval of several samples
    bytes_range_by_key: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict
    )
    damage: str | None = None  # why the recording was read only up to a damaged sample

    @property
    def too_few(self) -> bool:
        """Fewer samples than the judge needs: no verdict at all."""
        return self.points < self.thresholds.min_samples

    @property
    def gaps(self) -> list[tuple[int, float]]:
        """(sample index after it, seconds) of each gap; only the samples after the last are judged."""
        return gaps(self.seconds, self.thresholds)

    def gap_lines(self) -> list[str]:
        out = []
        for index, pause in self.gaps:
            at = self.first_at + dt.timedelta(seconds=float(self.seconds[index - 1]))
            out.append(f"gap: no samples for {seconds_text(pause)} after {_when(at)}")
        if out:
            start = self.first_at + dt.timedelta(seconds=float(self.seconds[self.gaps[-1][0]]))
            out.append(f"verdicts are on the samples after the last gap (from {_when(start)}): "
                       "nothing is computed across a gap")
        return out

    def suspects(self, include_stable: bool = False) -> list[CounterAnalysis]:
        return [r for r in self.results if include_stable or r.verdict > LeakLevel.STABLE]

    @property
    def span_s(self) -> float:
        return (self.last_at - self.first_at).total_seconds()


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render_json(rep: Report, include_stable: bool = False, top: int | None = None) -> str:
    suspects = rep.suspects(include_stable)[:top]
    doc: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "generator": f"pooltop {__version__}",
        "recording": {
            "path": rep.path,
            "source": rep.source,
            "host": rep.host.to_json(),
            "first_at": rep.first_at.isoformat(),
            "last_at": rep.last_at.isoformat(),
            "span_s": rep.span_s,
            "samples": rep.samples,
            "points_analysed": rep.points,
            "gaps": [{"after_s": float(rep.seconds[i - 1]), "seconds": pause} for i, pause in rep.gaps],
        },
        "thresholds": asdict(rep.thresholds),
        "counts": verdict_counts(rep.results),
        **({"too_few_samples": too_few_samples(rep.thresholds)} if rep.too_few else {}),
        "suspects": [r.to_json() for r in suspects],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _headline(rep: Report) -> list[str]:
    counts = verdict_counts(rep.results)
    h = rep.host
    return [
        f"pooltop leak report: {rep.path}",
        f"{h.name}  {h.os} {h.os_version} {h.arch}  source {rep.source}",
        f"{_when(rep.first_at)} .. {_when(rep.last_at)} ({_span(rep.span_s)}, {rep.samples} samples, "
        f"{rep.points} analysed)",
        "verdicts: " + (too_few_samples(rep.thresholds) if rep.too_few
                        else ", ".join(f"{n} {k}" for k, n in counts.items())),
        *rep.gap_lines(),
    ]


def _owner_text(r: CounterAnalysis) -> str:
    if not r.owners:
        return "owner unknown"
    o = r.owners[0]
    text = f"{o.owner} {o.description}".strip()
    if o.driver is not None and o.driver.file_version:
        text += f" (v{o.driver.file_version})"
    return f"{text} [{o.source}, {o.confidence}]"


def render_text(rep: Report, include_stable: bool = False, top: int | None = None) -> str:
    lines = _headline(rep)
    lines.append("")
    suspects = rep.suspects(include_stable)[:top]
    if rep.too_few:
        lines.append(f"No verdict: {too_few_samples(rep.thresholds)}; record for longer.")
        return "\n".join(lines) + "\n"
    if not suspects:
        lines.append("No counter grew like a leak over this recording.")
        return "\n".join(lines) + "\n"
    width = max(len(r.tag) for r in suspects)
    lines.append(
        f"{'Verdict':<8} {'Tag':<{width}} {'Type':<5} {'Growth':>11} {'Per day':>11} "
        f"{'Fit':>4} {'Up':>4} {'Runs out in':>11}  Owner"
    )
    for r in suspects:
        lines.append(
            f"{r.verdict.label:<8} {r.tag:<{width}} {r.pool.short:<5} {human_bytes(r.growth_bytes):>11} "
            f"{human_bytes(r.projected_bytes_per_day):>11} {max(r.r2, 0):>4.0%} {r.monotony:>4.0%} "
            f"{'reclaimable' if r.reclaimable else _span(r.exhaustion_s):>11}  {_owner_text(r)}"
        )
    lines.append("")
    lines.append(
        "Growth: since the start of the recording. Per day: robust (Theil-Sen) slope. Fit: how much a"
    )
    lines.append(
        "straight line explains. Up: share of changes that were increases. Runs out in: at that rate,"
    )
    lines.append("until available memory (paged pool: commit) is gone; reclaimable memory the kernel frees")
    lines.append("under pressure never runs out.")
    for r in [s for s in suspects if s.verdict >= LeakLevel.SUSPECT][:10]:
        lines.append(f"  {r.tag.strip()} ({r.pool.label}): " + "; ".join(r.reasons))
        if r.aliases:
            lines.append(f"    merged with: {', '.join(r.aliases)}")
    return "\n".join(lines) + "\n"


def _figure_svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def render_html(rep: Report, include_stable: bool = False, top: int | None = None, charts: int = 8) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PooltopError("the HTML report needs matplotlib: pip install 'pooltop[report]'") from None
    plt.rcParams.update({"svg.fonttype": "none", "figure.dpi": 96})
    suspects = rep.suspects(include_stable)[:top]
    hours = rep.seconds / 3600.0
    blocks: list[str] = []

    # System totals over time: the context every vendor asks for first.
    fig, ax = plt.subplots(figsize=(9, 3))
    for field, label in (
        ("paged_pool", "paged pool"),
        ("nonpaged_pool", "nonpaged pool"),
        ("slab_unreclaimable", "unreclaimable slab"),
        ("slab", "slab"),
        ("memory_available", "available memory"),
    ):
        values = [getattr(t, field) for t in rep.totals]
        if any(v is not None for v in values):
            ax.plot(hours, [np.nan if v is None else v / 2**20 for v in values], label=label)
    ax.set_xlabel("hours since start")
    ax.set_ylabel("MiB")
    ax.set_title("System totals")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    blocks.append(_figure_svg(fig))
    plt.close(fig)

    for r in [s for s in suspects if s.verdict >= LeakLevel.WATCH][:charts]:
        series = rep.bytes_by_key.get((r.tag, int(r.pool)))
        if series is None:
            continue
        fig, ax = plt.subplots(figsize=(9, 2.6))
        spread = rep.bytes_range_by_key.get((r.tag, int(r.pool)))
        if spread is not None:
            ax.fill_between(hours, spread[0] / 2**20, spread[1] / 2**20, color="#0072b2", alpha=0.2,
                            linewidth=0, label="lowest to highest between points")
        ax.plot(
            hours,
            series / 2**20,
            color="#d55e00" if r.verdict == LeakLevel.LEAK else "#0072b2",
            label="bytes in use",
        )
        valid = ~np.isnan(series)
        if valid.any():
            t0 = rep.seconds[valid][0]
            ax.plot(
                hours[valid],
                (series[valid][0] + r.slope_bytes_per_s * (rep.seconds[valid] - t0)) / 2**20,
                linestyle="--",
                color="#555555",
                label=f"trend {human_bytes(r.projected_bytes_per_day)}/day",
            )
        ax.set_title(f"{r.tag} ({r.pool.label}): {r.verdict.label}")
        ax.set_xlabel("hours since start")
        ax.set_ylabel("MiB")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        blocks.append(_figure_svg(fig))
        plt.close(fig)

    rows = "".join(
        f"<tr class='{html.escape(r.verdict.label)}'><td>{html.escape(r.verdict.label)}</td>"
        f"<td><code>{html.escape(r.tag)}</code></td><td>{r.pool.label}</td>"
        f"<td>{human_bytes(r.growth_bytes)}</td><td>{human_bytes(r.projected_bytes_per_day)}</td>"
        f"<td>{max(r.r2, 0):.0%}</td><td>{r.monotony:.0%}</td>"
        f"<td>{'reclaimable' if r.reclaimable else _span(r.exhaustion_s)}</td>"
        f"<td>{html.escape(_owner_text(r))}</td><td>{html.escape('; '.join(r.reasons))}</td></tr>"
        for r in suspects
    )
    head = "".join(f"<p>{html.escape(line)}</p>" for line in _headline(rep))
    table = (
        "<table><thead><tr><th>Verdict</th><th>Tag</th><th>Type</th><th>Growth</th><th>Per day</th>"
        "<th>Fit</th><th>Up</th><th>Runs out in</th><th>Owner</th><th>Evidence</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if suspects and not rep.too_few
        else f"<p>No verdict: {html.escape(too_few_samples(rep.thresholds))}.</p>" if rep.too_few
        else "<p>No counter grew like a leak.</p>"
    )
    data = base64.b64encode(render_json(rep, include_stable, top).encode()).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pooltop leak report: {html.escape(rep.host.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }}
tr.leak td:first-child {{ background: #d55e00; color: white; font-weight: bold; }}
tr.suspect td:first-child {{ background: #e69f00; }}
tr.watch td:first-child {{ background: #f0e442; }}
svg {{ max-width: 100%; height: auto; display: block; margin: 1em 0; }}
</style></head><body>
<h1>pooltop leak report</h1>
{head}
{table}
<h2>Charts</h2>
{"".join(blocks)}
<p><small>Generated by pooltop {__version__}. The report as JSON:
<a download="pooltop-report.json"
   href="data:application/json;base64,{data}">pooltop-report.json</a></small></p>
</body></html>
"""


RENDERERS = {"text": render_text, "json": render_json, "html": render_html}


def build_report(
    path: str,
    thresholds: JudgeThresholds,
    max_points: int = 2000,
    chart_keys: Sequence[tuple[str, int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Open a recording, analyse it and keep what the renderers need. Every sample is read; more
    than `max_points` are reduced to that many intervals (record/series.py). `progress(samples)`
    follows the reading."""
    with Recording(path) as rec:
        # The reclaimable column (Linux slab, reclaim_account) when the recording has it.
        read = ("allocs", "frees", "diff", "bytes", *(c for c in ("reclaimable",) if c in rec.info.columns))
        series = read_series(rec, max_points=max_points, columns=read, progress=progress)
        owners = rec.owners()
        info = rec.info
        aliases = rec.aliases
    results = analyse(
        series.seconds,
        series.keys,
        series.columns,
        series.totals,
        thresholds,
        owners,
        aliases,
        counter_bits=info.counter_bits,
        has_alloc_counts=info.has_alloc_counts,
    )
    col = {k: i for i, k in enumerate(series.keys)}
    wanted = chart_keys if chart_keys is not None else [(r.tag, int(r.pool)) for r in results[:20]]
    charted = [k for k in wanted if k in col]
    bytes_by_key = {k: series.columns["bytes"][:, col[k]] for k in charted}
    reduced = series.samples > len(series.seconds)
    ranges = {k: (series.minimum["bytes"][:, col[k]], series.maximum["bytes"][:, col[k]])
              for k in charted} if reduced else {}
    return Report(
        path=path,
        source=info.source,
        host=info.host,
        first_at=series.taken_at[0],
        last_at=series.taken_at[-1],
        samples=info.samples,
        points=len(series.seconds),
        thresholds=thresholds,
        results=results,
        seconds=series.seconds,
        bytes_by_key=bytes_by_key,
        totals=series.totals,
        bytes_range_by_key=ranges,
        damage=series.damage,
    )
