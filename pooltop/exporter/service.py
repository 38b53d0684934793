"""The exporter at run time: a sampling thread, the HTTP server, and the loop `pooltop serve` runs.

One thread samples the source, one sample at a time, and publishes an immutable ExporterState; HTTP
scrapes (prometheus_client's server threads) only read the latest state, so a scrape never
queries the kernel, however often Prometheus comes.
"""

from __future__ import annotations

import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app

from pooltop.errors import PooltopError
from pooltop.exporter.frame import FrameBuilder
from pooltop.exporter.metrics import ExporterState, PoolCollector
from pooltop.judge import JudgeThresholds
from pooltop.native import Source
from pooltop.tagdb.owners import OwnerLookupFactory


def log_stderr(message: str) -> None:
    print(f"pooltop: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ExportOptions:
    """How often to sample and how many tags to export."""

    interval: float = 5.0  # seconds between samples
    top: int = 100  # the largest tags by bytes
    max_watch: int = 100  # at most this many more tags at watch level or above
    #: drop per-tag series when the last good sample is older than this (default: 5 intervals, >= 30 s)
    stale_after: float | None = None
    thresholds: JudgeThresholds = field(default_factory=JudgeThresholds)  # the leak judge's numbers

    def __post_init__(self) -> None:
        if not (self.interval > 0 and math.isfinite(self.interval)):
            raise ValueError("interval must be a positive number of seconds")
        if self.top < 0 or self.max_watch < 0:
            raise ValueError("top and max_watch must not be negative")

    @property
    def stale_seconds(self) -> float:
        return self.stale_after if self.stale_after is not None else max(5 * self.interval, 30.0)


class PoolExporter:
    """Samples any Source (live, or a replayed recording) and exposes the latest sample in `registry`.

    `sample_once()` is the whole sampling step (tests call it directly); `start()` runs it every
    `interval` seconds in a daemon thread. A sample that raises is counted in
    pooltop_sample_errors_total and turns pooltop_up to 0; it never stops the exporter.
    """

    def __init__(
        self,
        source: Source,
        options: ExportOptions | None = None,
        owners: OwnerLookupFactory | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = log_stderr,
        process_metrics: bool = True,
    ) -> None:
        self.source = source
        self.options = opts = options or ExportOptions()
        self._clock = clock
        self._monotonic = monotonic
        self._log = log
        self._builder = FrameBuilder(opts.top, opts.max_watch, owners, opts.thresholds,
                                     warn=lambda m: log(f"warning: {m}"))
        self._state = ExporterState(source=getattr(source, "name", "unknown"))
        self._seen_warnings: set[str] = set()
        self.collector = PoolCollector(lambda: self._state, opts.interval, opts.stale_seconds, clock)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        if process_metrics:
            # The exporter's own CPU and memory (Linux only: it reads /proc/self).
            ProcessCollector(registry=self.registry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> ExporterState:
        return self._state

    def sample_once(self) -> bool:
        """Take one sample and publish it. Returns whether it succeeded; never raises."""
        started = self._monotonic()
        try:
            snap = self.source.sample()
            frame = self._builder.update(snap)
        except Exception as e:  # a broken sample is a metric, not a crash
            message = str(e) if isinstance(e, PooltopError) else f"{type(e).__name__}: {e}"
            before = self._state
            self._state = replace(before, up=False, samples=before.samples + 1, errors=before.errors + 1,
                                  last_duration=self._monotonic() - started, last_error=message)
            if message != before.last_error:
                self._log(f"warning: sample failed: {message}")
            return False
        before = self._state
        self._state = replace(before, frame=frame, frame_made_at=self._clock(), up=True,
                              samples=before.samples + 1, last_duration=self._monotonic() - started,
                              last_error=None)
        if before.last_error is not None:
            self._log("sampling recovered")
        for warning in frame.warnings:
            if warning not in self._seen_warnings:
                self._seen_warnings.add(warning)
                self._log(f"warning: {warning}")
        return True

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the exporter is already sampling")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pooltop-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling (waits for a sample in progress up to `timeout`)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        interval = self.options.interval
        due = self._monotonic()
        while not self._stop.is_set():
            self.sample_once()
            due += interval
            now = self._monotonic()
            if due < now:
                # A sample took longer than the interval: skip the missed ticks, never queue them.
                due += math.ceil((now - due) / interval) * interval
            self._stop.wait(due - now)


class _ScrapeServer(ThreadingMixIn, WSGIServer):
    """A thread per scrape, as prometheus_client's own server, with a deep accept queue: that one
    listens with socketserver's backlog of 5, and of 200 scrapes arriving at once up to 38 sat out
    SYN retries until they timed out at 30 s. Daemon threads: a stuck client never holds up exit."""

    daemon_threads = True
    request_queue_size = 1024  # the kernel caps it at net.core.somaxconn


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape is not worth a line on stderr."""


class MetricsServer:
    """The HTTP server for one registry (prometheus_client's WSGI app), in its own daemon thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            # The address family the host asks for (an IPv6 literal needs AF_INET6).
            family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
            server_class = type("ScrapeServer", (_ScrapeServer,), {"address_family": family})
            app = make_wsgi_app(registry)
            self._httpd: WSGIServer = make_server(str(sockaddr[0]), port, app, server_class,
                                                  handler_class=_QuietHandler)
        except OSError as e:
            raise PooltopError(f"cannot listen on {format_address(host, port)}: {e.strerror or e}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="pooltop-http", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return f"http://{format_address(*self.address)}/metrics"

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve_until(
    exporter: PoolExporter,
    host: str,
    port: int,
    stop: threading.Event,
    on_ready: Callable[[MetricsServer], None] = lambda _: None,
) -> None:
    """Serve `exporter` on host:port until `stop` is set; then close the socket and stop sampling."""
    server = MetricsServer(exporter.registry, host, port)
    try:
        exporter.start()
        on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        exporter.stop()
