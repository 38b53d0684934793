"""Metric names and help text (one table: the collector, the tests and the shipped rules read it), and
the Collector that turns the latest export frame into Prometheus metric families.

A scrape only reads the latest immutable state; it never queries the kernel. The collector yields
only the current frame's series, so a tag that leaves the exported set disappears from the next
scrape and Prometheus marks its series stale.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from pooltop import __version__
from pooltop.exporter.frame import ExportFrame
from pooltop.model import Totals


class Kind(enum.Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"


@dataclass(frozen=True)
class MetricSpec:
    """One metric family. `name` is the family name; counters are exposed with `_total` and info
    metrics with `_info` appended (see `exposed`)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()

    @property
    def exposed(self) -> str:
        return self.name + {Kind.GAUGE: "", Kind.COUNTER: "_total", Kind.INFO: "_info"}[self.kind]

    def family(self) -> Metric:
        if self.kind is Kind.COUNTER:
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        if self.kind is Kind.INFO:
            return InfoMetricFamily(self.name, self.help, labels=())
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


TAG_LABELS = ("tag", "pool", "owner")

# --- per tag (bounded: top N by bytes + watch level and above) ----------------------------------
POOL_BYTES = MetricSpec(
    "pooltop_pool_bytes", Kind.GAUGE,
    "Bytes in use by a pool tag (Windows) or slab cache (Linux: active objects x object size).",
    TAG_LABELS)
POOL_OUTSTANDING = MetricSpec(
    "pooltop_pool_outstanding_allocations", Kind.GAUGE,
    "Outstanding allocations: allocs - frees (poolmon's Diff); active objects of a slab cache.",
    TAG_LABELS)
POOL_ALLOCATIONS = MetricSpec(
    "pooltop_pool_allocations", Kind.COUNTER,
    "Allocations since the exporter first saw the tag (Windows' wrapping 32-bit count, made monotonic). "
    "Absent where the OS keeps no count (Linux).",
    TAG_LABELS)
POOL_FREES = MetricSpec(
    "pooltop_pool_frees", Kind.COUNTER,
    "Frees since the exporter first saw the tag (Windows' wrapping 32-bit count, made monotonic). "
    "Absent where the OS keeps no count (Linux).",
    TAG_LABELS)
POOL_LEAK_LEVEL = MetricSpec(
    "pooltop_pool_leak_level", Kind.GAUGE,
    "The leak judge's level over its leak window (what the live view and report say of the same "
    "samples): 0 stable, 1 watch, 2 suspect, 3 leak.",
    TAG_LABELS)
PER_TAG: tuple[MetricSpec, ...] = (
    POOL_BYTES, POOL_OUTSTANDING, POOL_ALLOCATIONS, POOL_FREES, POOL_LEAK_LEVEL)

# --- per pool and system-wide ---------------------------------------------------------------------
TAGS = MetricSpec("pooltop_tags", Kind.GAUGE,
                  "Tags (or slab caches) in the latest sample, exported or not.", ("pool",))
UNEXPORTED_BYTES = MetricSpec(
    "pooltop_unexported_bytes", Kind.GAUGE,
    "Bytes of the tags not exported (outside the top N and below watch level).", ("pool",))

_TOTALS_HELP = {
    "paged_pool": "Paged pool in use (Windows).",
    "nonpaged_pool": "Nonpaged pool in use (Windows).",
    "slab": "Slab memory (Linux /proc/meminfo Slab).",
    "slab_reclaimable": "Reclaimable slab memory (Linux SReclaimable).",
    "slab_unreclaimable": "Unreclaimable slab memory (Linux SUnreclaim).",
    "memory_total": "Physical memory.",
    "memory_available": "Memory available to programs without swapping.",
    "commit": "Committed memory (Windows commit charge; Linux Committed_AS).",
    "commit_limit": "Commit limit.",
    "swap_total": "Swap space.",
    "swap_free": "Free swap space.",
}
#: Totals fields that are no byte figures (node_exporter already exports pressure stall times)
_NOT_BYTES = {"memory_stall_us"}
#: Totals field -> its metric, for every byte figure Totals has (a new one gets a metric by itself)
SYSTEM: dict[str, MetricSpec] = {
    f.name: MetricSpec(f"pooltop_system_{f.name}_bytes", Kind.GAUGE,
                       _TOTALS_HELP.get(f.name, f"System {f.name.replace('_', ' ')}, bytes."))
    for f in fields(Totals) if f.name not in _NOT_BYTES
}

# --- the exporter's own health ----------------------------------------------------------------------
UP = MetricSpec("pooltop_up", Kind.GAUGE,
                "1 when the latest sample of the kernel succeeded, 0 when it failed.")
SAMPLES = MetricSpec("pooltop_samples", Kind.COUNTER, "Samples attempted.")
SAMPLE_ERRORS = MetricSpec("pooltop_sample_errors", Kind.COUNTER, "Samples that failed.")
SAMPLE_DURATION = MetricSpec(
    "pooltop_sample_duration_seconds", Kind.GAUGE,
    "Duration of the latest sample (kernel query, tracking, selection).")
LAST_SUCCESS = MetricSpec(
    "pooltop_last_sample_timestamp_seconds", Kind.GAUGE,
    "Unix time of the latest successful sample (the exporter's clock).")
INTERVAL = MetricSpec("pooltop_sample_interval_seconds", Kind.GAUGE, "Configured time between samples.")
EXPORTED_TAGS = MetricSpec("pooltop_exported_tags", Kind.GAUGE, "Tags exported in this scrape.")
EXPORTED_SERIES = MetricSpec(
    "pooltop_exported_series", Kind.GAUGE, "Per-tag series (pooltop_pool_*) in this scrape.")
EXPORTER_INFO = MetricSpec(
    "pooltop_exporter", Kind.INFO, "pooltop's version and the source it samples.",
    ("version", "source", "os"))
HEALTH: tuple[MetricSpec, ...] = (UP, SAMPLES, SAMPLE_ERRORS, SAMPLE_DURATION, LAST_SUCCESS, INTERVAL,
                                  EXPORTED_TAGS, EXPORTED_SERIES, EXPORTER_INFO)

METRICS: tuple[MetricSpec, ...] = (*PER_TAG, TAGS, UNEXPORTED_BYTES, *SYSTEM.values(), *HEALTH)


@dataclass(frozen=True)
class ExporterState:
    """What the sampling thread last published. Replaced as a whole (one reference assignment), so a
    scrape always sees one consistent state."""

    frame: ExportFrame | None = None
    #: exporter clock (Unix seconds) when `frame` was made; staleness is judged on this, not on the
    #: snapshot's taken_at, which a replayed recording sets in the past
    frame_made_at: float | None = None
    up: bool = False
    samples: int = 0
    errors: int = 0
    last_duration: float | None = None
    last_error: str | None = None
    source: str = "unknown"


class PoolCollector:
    """A prometheus_client Collector over the latest ExporterState.

    Per-tag and system series come from the latest successful frame while it is younger than
    `stale_after` seconds: one failed sample does not blank the series (that would reset every
    alert's `for:`), but a source that stopped answering does not keep stale numbers alive forever.
    """

    def __init__(
        self,
        state: Callable[[], ExporterState],
        interval: float,
        stale_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._interval = interval
        self._stale_after = stale_after
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        """Names only (lets the registry's ?name[]= filter find this collector)."""
        for spec in METRICS:
            yield spec.family()

    def collect(self) -> Iterator[Metric]:
        st = self._state()
        frame = st.frame
        if frame is not None and (st.frame_made_at is None
                                  or self._clock() - st.frame_made_at > self._stale_after):
            frame = None
        series = 0
        if frame is not None:
            families = list(self._per_tag(frame))
            series = sum(len(f.samples) for f in families)
            yield from families
            yield from self._system(frame)
        yield from self._health(st, frame, series)

    @staticmethod
    def _per_tag(frame: ExportFrame) -> Iterator[Metric]:
        columns: list[tuple[MetricSpec, tuple[int, ...] | None]] = [
            (POOL_BYTES, frame.bytes),
            (POOL_OUTSTANDING, frame.outstanding),
            (POOL_ALLOCATIONS, frame.allocations),
            (POOL_FREES, frame.frees),
            (POOL_LEAK_LEVEL, frame.leak_levels),
        ]
        for spec, values in columns:
            if values is None:
                continue  # the source keeps no such count: no series rather than fake zeros
            family = spec.family()
            add = family.add_metric  # type: ignore[attr-defined]
            for labels, value in zip(frame.labels, values, strict=True):
                add(labels, value)
            yield family

    @staticmethod
    def _system(frame: ExportFrame) -> Iterator[Metric]:
        tags = GaugeMetricFamily(TAGS.name, TAGS.help, labels=TAGS.labels)
        for pool, count in frame.tags_by_pool:
            tags.add_metric((pool,), count)
        yield tags
        other = GaugeMetricFamily(UNEXPORTED_BYTES.name, UNEXPORTED_BYTES.help,
                                  labels=UNEXPORTED_BYTES.labels)
        for pool, value in frame.unexported_bytes_by_pool:
            other.add_metric((pool,), value)
        yield other
        for field_name, value in frame.totals.items():
            spec = SYSTEM.get(field_name)
            if spec is not None:
                yield GaugeMetricFamily(spec.name, spec.help, value=value)

    def _health(self, st: ExporterState, frame: ExportFrame | None, series: int) -> Iterator[Metric]:
        yield GaugeMetricFamily(UP.name, UP.help, value=1 if st.up else 0)
        yield CounterMetricFamily(SAMPLES.name, SAMPLES.help, value=st.samples)
        yield CounterMetricFamily(SAMPLE_ERRORS.name, SAMPLE_ERRORS.help, value=st.errors)
        if st.last_duration is not None:
            yield GaugeMetricFamily(SAMPLE_DURATION.name, SAMPLE_DURATION.help, value=st.last_duration)
        if st.frame_made_at is not None:
            yield GaugeMetricFamily(LAST_SUCCESS.name, LAST_SUCCESS.help, value=st.frame_made_at)
        yield GaugeMetricFamily(INTERVAL.name, INTERVAL.help, value=self._interval)
        yield GaugeMetricFamily(EXPORTED_TAGS.name, EXPORTED_TAGS.help, value=len(frame) if frame else 0)
        yield GaugeMetricFamily(EXPORTED_SERIES.name, EXPORTED_SERIES.help, value=series)
        info = InfoMetricFamily(EXPORTER_INFO.name, EXPORTER_INFO.help)
        host_os = st.frame.host.os if st.frame is not None else ""
        info.add_metric((), {"version": __version__, "source": st.source, "os": host_os})
        yield info
