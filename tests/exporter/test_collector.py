"""The exporter's collector and sampling, with scripted sources: exposition text parsed back with
prometheus_client's parser (label escaping, the cardinality bound, departed tags, counters, errors)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from exporter_support import port_is_closed
from helpers import HOST, make_snapshot
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pooltop.errors import NeedsElevation, PooltopError
from pooltop.exporter.frame import select_exported
from pooltop.exporter.metrics import METRICS, PER_TAG
from pooltop.exporter.service import ExportOptions, MetricsServer, PoolExporter
from pooltop.judge import JudgeThresholds
from pooltop.model import U32, CounterSet, Pool, Snapshot, Totals, escape_tag, printable
from pooltop.native import Source
from pooltop.tagdb import OwnerCandidate
from pooltop.tagdb.owners import OwnerLookup

NP = int(Pool.NONPAGED)


class ScriptedSource(Source):
    """Returns `next` (a Snapshot) or raises it (an exception); counts calls and overlapping calls."""

    name = "scripted"

    def __init__(self, first: Snapshot | Exception, delay: float = 0.0) -> None:
        self.next: Snapshot | Exception = first
        self.delay = delay
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def sample(self) -> Snapshot:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            item = self.next
            if isinstance(item, Exception):
                raise item
            return item
        finally:
            with self._lock:
                self.active -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def owners_from(table: dict[str, str]) -> Callable[[Snapshot], OwnerLookup]:
    def factory(snap: Snapshot) -> OwnerLookup:
        def lookup(tag: str, pool: Pool) -> Sequence[OwnerCandidate]:
            owner = table.get(tag)
            return [OwnerCandidate(tag, owner, "", "test", "exact")] if owner is not None else []

        return lookup

    return factory


def make_exporter(source: Source, clock: Clock | None = None, log: list[str] | None = None,
                  owners: dict[str, str] | None = None, *, interval: float = 1.0, top: int = 10,
                  max_watch: int = 5) -> PoolExporter:
    opts = ExportOptions(interval=interval, top=top, max_watch=max_watch)
    return PoolExporter(source, opts, owners_from(owners or {}), clock=clock or Clock(),
                        log=(log.append if log is not None else lambda _: None), process_metrics=False)


def scrape(exporter: PoolExporter) -> dict[str, list[Sample]]:
    """Exposition text -> {sample name: samples}, through prometheus_client's own parser."""
    text = generate_latest(exporter.registry).decode("utf-8")
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples: dict[str, list[Sample]], name: str) -> float:
    (only,) = samples[name]
    return float(only.value)


def by_tag(samples: dict[str, list[Sample]], name: str) -> dict[str, float]:
    return {s.labels["tag"]: float(s.value) for s in samples.get(name, [])}


def windows_snapshot(rows: Sequence[tuple[str, int, int, int, int]], t: float) -> Snapshot:
    return make_snapshot(rows, t_s=t, source="windows-pooltag")


def slab_snapshot(rows: Sequence[tuple[str, int, int]], t: float) -> Snapshot:
    """rows: (cache, active objects, object size); like LinuxSource: no alloc/free counts."""
    base = make_snapshot([], t_s=t, source="linux-slab")
    counters = CounterSet.build(
        [r[0] for r in rows], [Pool.SLAB] * len(rows), [0] * len(rows), [0] * len(rows),
        [r[1] for r in rows], [r[1] * r[2] for r in rows], has_alloc_counts=False, counter_bits=64,
    )
    return Snapshot(source="linux-slab", taken_at=base.taken_at, monotonic_ns=base.monotonic_ns, host=HOST,
                    totals=Totals(slab=1 << 24, slab_unreclaimable=1 << 22), counters=counters)


# --- labels -----------------------------------------------------------------------------------


def test_odd_tags_and_owners_round_trip_through_the_exposition_format() -> None:
    odd_tags = ['Io  ', 'a"b ', escape_tag(b"\x01ab\\"), escape_tag(b"\xff\n\x00Z"), "x\\y\n"]
    owners = {'a"b ': 'drv "quoted".sys', "Io  ": "nt!io", "x\\y\n": "back\\slash\nnewline"}
    rows = [(tag, NP, 10, 5, 1000 * (i + 1)) for i, tag in enumerate(odd_tags)]
    exporter = make_exporter(ScriptedSource(windows_snapshot(rows, 0)), owners=owners)
    assert exporter.sample_once()
    text = generate_latest(exporter.registry).decode("utf-8")
    # escape_tag's text is kept as is: its backslash reaches the wire doubled, not decoded to a byte.
    assert 'tag="\\\\x01ab\\\\x5c"' in text
    assert "\x01" not in text and "\x00" not in text
    samples = scrape(exporter)
    got = {(s.labels["tag"], s.labels["pool"], s.labels["owner"]) for s in samples["pooltop_pool_bytes"]}
    # quotes and backslashes round-trip; a control character arrives as model.printable writes it
    assert got == {(printable(tag), "nonpaged", printable(owners.get(tag, ""))) for tag in odd_tags}
    assert ("x\\y\\x0a", "nonpaged", "back\\slash\\x0anewline") in got
    assert by_tag(samples, "pooltop_pool_bytes")[escape_tag(b"\x01ab\\")] == 3000


def test_terminal_controls_in_slab_names_and_owners_are_escaped() -> None:
    names = ["evil\x1b[2J", "bell\x07", "back\x08space", "car\rriage"]
    owners = {name: f"drv{name}" for name in names}
    exporter = make_exporter(ScriptedSource(slab_snapshot([(n, 10, 64) for n in names], 0)), owners=owners)
    assert exporter.sample_once()
    text = generate_latest(exporter.registry).decode("utf-8")
    assert not any(ch in text for ch in "\x1b\x07\x08\r")
    got = {(s.labels["tag"], s.labels["owner"]) for s in scrape(exporter)["pooltop_pool_bytes"]}
    assert got == {("evil\\x1b[2J", "drvevil\\x1b[2J"), ("bell\\x07", "drvbell\\x07"),
                   ("back\\x08space", "drvback\\x08space"), ("car\\x0driage", "drvcar\\x0driage")}


# --- cardinality --------------------------------------------------------------------------------


def growing_fleet(t: int, n: int = 400, growing: Sequence[int] = (3, 5, 7, 9, 11, 13, 15)) -> Snapshot:
    """n tags with bytes 1000*i; the `growing` (small) ones gain 10 kB every sample."""
    rows = []
    for i in range(n):
        grow = 10_000 * t if i in growing else 0
        rows.append((f"T{i:03d}", NP, 100 + t, 100, 1000 * i + grow))
    return windows_snapshot(rows, t)


def test_top_n_plus_watch_level_extras_stay_bounded() -> None:
    source = ScriptedSource(growing_fleet(0))
    exporter = make_exporter(source, top=10, max_watch=5)
    for t in range(9):
        source.next = growing_fleet(t)
        assert exporter.sample_once()
    samples = scrape(exporter)
    exported = by_tag(samples, "pooltop_pool_bytes")
    levels = by_tag(samples, "pooltop_pool_leak_level")
    top = {f"T{i:03d}" for i in range(390, 400)}
    assert top <= set(exported)
    extras = set(exported) - top
    # seven small tags grow alike, but only max_watch=5 of them are exported: the largest ones
    assert extras == {"T015", "T013", "T011", "T009", "T007"}
    assert all(levels[tag] >= 1 for tag in extras)
    assert value(samples, "pooltop_exported_tags") == 15
    per_tag_series = sum(len(samples.get(spec.exposed, [])) for spec in PER_TAG)
    assert value(samples, "pooltop_exported_series") == per_tag_series == 15 * 5
    # the rest is summed, so totals still add up
    all_bytes = int(growing_fleet(8).counters.bytes.sum())
    assert sum(exported.values()) + value(samples, "pooltop_unexported_bytes") == all_bytes
    assert value(samples, "pooltop_tags") == 400


def test_tags_that_leave_the_set_are_removed() -> None:
    def exported_tags(exporter: PoolExporter) -> set[str]:
        samples = scrape(exporter)
        per_family = [{s.labels["tag"] for s in samples[spec.exposed]} for spec in PER_TAG]
        assert all(tags == per_family[0] for tags in per_family)
        return per_family[0]

    def snap(t: int, **sizes: int) -> Snapshot:
        return windows_snapshot([(f"{tag:4}", NP, 1, 0, size) for tag, size in sizes.items()], t)

    source = ScriptedSource(snap(0, Big=9000, Gone=8000, Mid=5000, Low=100))
    exporter = make_exporter(source, top=2, max_watch=0)
    exporter.sample_once()
    assert exported_tags(exporter) == {"Big ", "Gone"}
    # Gone vanishes from the kernel's table
    source.next = snap(1, Big=9000, Mid=5000, Low=100)
    exporter.sample_once()
    assert exported_tags(exporter) == {"Big ", "Mid "}
    # Low overtakes Mid: Mid is still in the kernel but leaves the exported set
    source.next = snap(2, Big=9000, Mid=5000, Low=7000)
    exporter.sample_once()
    assert exported_tags(exporter) == {"Big ", "Low "}
    assert value(scrape(exporter), "pooltop_unexported_bytes") == 5000


def test_selection_keeps_one_row_per_key() -> None:
    counters = CounterSet.build(["Dup ", "Dup ", "One "], [NP, NP, NP], [1, 1, 1], [0, 0, 0], [1, 1, 1],
                                [500, 400, 300])
    rows = select_exported(counters, np.array([0, 3, 3], dtype=np.int8), top=3, max_watch=3)
    assert rows.tolist() == [0, 2]


# --- counters -------------------------------------------------------------------------------------


def test_wrapping_windows_counts_become_monotonic_counters() -> None:
    near = U32 - 100
    source = ScriptedSource(windows_snapshot([("Wrap", NP, near, near - 10, 640)], 0))
    exporter = make_exporter(source)
    exporter.sample_once()
    samples = scrape(exporter)
    # counted from when the exporter first saw the tag, not the raw since-boot value
    assert by_tag(samples, "pooltop_pool_allocations_total") == {"Wrap": 0}
    source.next = windows_snapshot([("Wrap", NP, 50, near + 20, 640)], 1)  # allocs wrapped: +150
    exporter.sample_once()
    source.next = windows_snapshot([("Wrap", NP, 80, 30, 640), ("New ", NP, 123_456, 123_000, 64)], 2)
    exporter.sample_once()
    samples = scrape(exporter)
    assert by_tag(samples, "pooltop_pool_allocations_total") == {"Wrap": 180, "New ": 0}
    assert by_tag(samples, "pooltop_pool_frees_total") == {"Wrap": 140, "New ": 0}
    assert by_tag(samples, "pooltop_pool_outstanding_allocations") == {"Wrap": 50, "New ": 456}


def test_slab_caches_have_no_alloc_count_series() -> None:
    source = ScriptedSource(slab_snapshot([("filp", 600, 192), ("dentry", 80_000, 192)], 0))
    exporter = make_exporter(source)
    exporter.sample_once()
    samples = scrape(exporter)
    assert "pooltop_pool_allocations_total" not in samples and "pooltop_pool_frees_total" not in samples
    assert by_tag(samples, "pooltop_pool_bytes") == {"filp": 600 * 192, "dentry": 80_000 * 192}
    assert by_tag(samples, "pooltop_pool_outstanding_allocations") == {"filp": 600, "dentry": 80_000}
    assert {s.labels["pool"] for s in samples["pooltop_pool_bytes"]} == {"slab"}
    assert value(samples, "pooltop_system_slab_bytes") == 1 << 24
    assert value(samples, "pooltop_exported_series") == 2 * 3
    (info,) = samples["pooltop_exporter_info"]
    assert info.labels["source"] == "scripted" and info.labels["os"] == HOST.os


# --- failures and health ----------------------------------------------------------------------------


def test_a_failing_sample_is_a_metric_not_a_crash() -> None:
    log: list[str] = []
    clock = Clock()
    source = ScriptedSource(windows_snapshot([("Good", NP, 2, 1, 100)], 0))
    exporter = make_exporter(source, clock=clock, log=log)
    assert exporter.sample_once()
    last_good = clock.now
    source.next = NeedsElevation("reading the pool tags needs Administrator")
    clock.now += 1
    assert not exporter.sample_once()
    clock.now += 1
    assert not exporter.sample_once()  # the same reason is not logged twice
    samples = scrape(exporter)
    assert value(samples, "pooltop_up") == 0
    assert value(samples, "pooltop_sample_errors_total") == 2
    assert value(samples, "pooltop_samples_total") == 3
    assert value(samples, "pooltop_last_sample_timestamp_seconds") == last_good
    assert value(samples, "pooltop_sample_duration_seconds") >= 0
    # one failed sample does not blank the series (that would reset every alert's `for:`)
    assert by_tag(samples, "pooltop_pool_bytes") == {"Good": 100}
    assert log == ["warning: sample failed: reading the pool tags needs Administrator"]

    source.next = RuntimeError("a bug in a replay source")
    assert not exporter.sample_once()
    assert log[-1] == "warning: sample failed: RuntimeError: a bug in a replay source"
    source.next = windows_snapshot([("Good", NP, 3, 1, 200)], 5)
    assert exporter.sample_once()
    samples = scrape(exporter)
    assert value(samples, "pooltop_up") == 1 and value(samples, "pooltop_sample_errors_total") == 3
    assert by_tag(samples, "pooltop_pool_bytes") == {"Good": 200}
    assert log[-1] == "sampling recovered"


def test_stale_samples_stop_being_served() -> None:
    clock = Clock()
    source = ScriptedSource(windows_snapshot([("Good", NP, 2, 1, 100)], 0))
    exporter = make_exporter(source, clock=clock, interval=2.0)
    exporter.sample_once()
    assert exporter.options.stale_seconds == 30.0  # 5 intervals, at least 30 s
    source.next = PooltopError("gone")
    clock.now += 31
    exporter.sample_once()
    samples = scrape(exporter)
    assert not any(name.startswith(("pooltop_pool_", "pooltop_system_")) for name in samples)
    assert value(samples, "pooltop_exported_tags") == 0 and value(samples, "pooltop_exported_series") == 0
    assert value(samples, "pooltop_up") == 0
    assert value(samples, "pooltop_last_sample_timestamp_seconds") == clock.now - 31


def test_before_the_first_sample_only_health_is_served() -> None:
    exporter = make_exporter(ScriptedSource(PooltopError("not yet")))
    samples = scrape(exporter)
    assert value(samples, "pooltop_up") == 0 and value(samples, "pooltop_samples_total") == 0
    assert "pooltop_last_sample_timestamp_seconds" not in samples
    assert "pooltop_pool_bytes" not in samples


def test_owner_lookup_failure_leaves_the_label_empty() -> None:
    def broken(snap: Snapshot) -> OwnerLookup:
        raise PooltopError("cannot read tags.txt")

    log: list[str] = []
    exporter = PoolExporter(ScriptedSource(windows_snapshot([("Tag1", NP, 1, 0, 10)], 0)), ExportOptions(),
                            broken, log=log.append, process_metrics=False)
    assert exporter.sample_once() and exporter.sample_once()
    assert {s.labels["owner"] for s in scrape(exporter)["pooltop_pool_bytes"]} == {""}
    assert log == ["warning: owner lookup disabled: cannot read tags.txt"]


def test_every_family_is_described() -> None:
    exporter = make_exporter(ScriptedSource(windows_snapshot([("Tag1", NP, 1, 0, 10)], 0)))
    exporter.sample_once()
    described = {m.name for m in exporter.collector.describe()}
    collected = {m.name for m in exporter.collector.collect()}
    assert collected <= described == {spec.name for spec in METRICS}
    assert all(spec.name.startswith("pooltop_") for spec in METRICS)
    only = generate_latest(exporter.registry.restricted_registry(["pooltop_pool_bytes"])).decode()
    assert "pooltop_pool_bytes{" in only and "pooltop_up" not in only


# --- threads and HTTP ----------------------------------------------------------------------------


def test_scrapes_never_sample_and_samples_never_overlap() -> None:
    source = ScriptedSource(windows_snapshot([("Tag1", NP, 1, 0, 10)], 0), delay=0.02)
    exporter = PoolExporter(source, ExportOptions(interval=0.005), log=lambda _: None, process_metrics=False)
    exporter.start()
    try:
        deadline = time.monotonic() + 10
        while source.calls < 5 and time.monotonic() < deadline:
            generate_latest(exporter.registry)
            time.sleep(0.005)
    finally:
        exporter.stop()
    calls = source.calls
    assert calls >= 5 and source.max_active == 1
    for _ in range(20):
        generate_latest(exporter.registry)
    assert source.calls == calls


def test_the_http_server_serves_metrics_and_closes_its_socket() -> None:
    exporter = make_exporter(ScriptedSource(windows_snapshot([("Tag1", NP, 1, 0, 10)], 0)))
    exporter.sample_once()
    server = MetricsServer(exporter.registry, "127.0.0.1", 0)
    host, port = server.address
    try:
        assert host == "127.0.0.1" and server.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(server.url, timeout=5) as r:
            body = r.read().decode()
        assert 'pooltop_pool_bytes{owner="",pool="nonpaged",tag="Tag1"} 10.0' in body
    finally:
        server.close()
    assert port_is_closed(port)


def test_a_busy_port_is_a_pooltop_error() -> None:
    exporter = make_exporter(ScriptedSource(PooltopError("unused")))
    server = MetricsServer(exporter.registry, "127.0.0.1", 0)
    try:
        with pytest.raises(PooltopError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            MetricsServer(exporter.registry, "127.0.0.1", server.address[1])
    finally:
        server.close()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        ExportOptions(interval=0)
    with pytest.raises(ValueError):
        ExportOptions(thresholds=JudgeThresholds(leak_window_s=1, suspect_window_s=2))
    assert ExportOptions(interval=0.5).stale_seconds == 30.0
    assert ExportOptions(interval=60).stale_seconds == 300.0
