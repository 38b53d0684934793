"""`pooltop serve`: a Prometheus exporter for pool tags / slab caches.

Imports nothing heavy at module level: `pooltop serve --help` loads this module, and
prometheus_client is only needed when `serve` itself runs.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Sequence
from functools import partial
from types import FrameType

import click

from pooltop.clikit import TAG_FILE, Duration, judge_options
from pooltop.judge import JudgeThresholds

DEFAULT_LISTEN = "127.0.0.1:9877"


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9877', '[::1]:9877', 'localhost:9877', or a bare port (on 127.0.0.1) -> (host, port)."""
    t = text.strip()
    if t.isdigit():
        host, port_text = "127.0.0.1", t
    elif t.startswith("["):
        host, _, rest = t[1:].partition("]")
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: write an IPv6 address as [ADDR]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = t.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{text!r} is not HOST:PORT (write an IPv6 address as [ADDR]:PORT)")
    if not host:
        raise ValueError(f"{text!r} has no host: give one (127.0.0.1, or 0.0.0.0 for every interface)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it reaches other machines


class ListenAddress(click.ParamType):  # type: ignore[type-arg]  # generic only in click stubs
    name = "host:port"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None
                ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return str(value[0]), int(value[1])
        try:
            return parse_listen(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


@click.command()
@click.option("--listen", "-l", type=ListenAddress(), default=DEFAULT_LISTEN, show_default=True,
              help="Address to serve /metrics on. Loopback unless told otherwise; 0.0.0.0:PORT serves every "
                   "interface (without authentication).")
@click.option("--interval", "-i", type=Duration(), default=5.0, show_default=True,
              help="Time between samples of the kernel (scrapes never sample).")
@click.option("--top", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Export the N largest tags by bytes ...")
@click.option("--max-watch", type=click.IntRange(min=0), default=100, show_default=True,
              help="... plus at most this many more at leak level watch or above.")
@click.option("--root", type=click.Path(file_okay=False, exists=True), default=None,
              help="Serve a copied Linux tree (ROOT/proc/slabinfo, ROOT/sys/kernel/slab), not this kernel.")
@click.option("--tagfile", "tagfiles", multiple=True, type=TAG_FILE,
              help="A pooltag.txt-format file to name tag owners (the owner label). Repeatable.")
@judge_options
def serve(
    listen: tuple[str, int] = ("127.0.0.1", 9877),
    interval: float = 5.0,
    top: int = 100,
    max_watch: int = 100,
    root: str | None = None,
    tagfiles: Sequence[str] = (),
    thresholds: JudgeThresholds | None = None,
) -> None:
    """Serve Prometheus metrics: per-tag bytes, counts and leak level, system totals, exporter health.

    Exports the top N tags by bytes plus the tags at watch level or above (bounded by --max-watch),
    so thousands of tags do not flood Prometheus. The leak level is the leak judge's (the one
    the live view and `report` show for the same samples), over --leak-window. Stops cleanly on
    SIGTERM or Ctrl-C.
    """
    from pooltop.errors import PooltopError

    try:
        from pooltop.exporter.service import (
            ExportOptions,
            MetricsServer,
            PoolExporter,
            log_stderr,
            serve_until,
        )
    except ImportError as e:
        if e.name != "prometheus_client":
            raise
        raise PooltopError("pooltop serve needs prometheus-client (pip install prometheus-client)") from None
    from pooltop.native import open_source
    from pooltop.tagdb.owners import snapshot_owner_lookup

    host, port = listen
    if not is_loopback(host):
        log_stderr(f"warning: listening on {host}:{port} serves pool tags and driver names to every machine "
                   f"that can reach it, without authentication (the default is {DEFAULT_LISTEN})")
    options = ExportOptions(interval=interval, top=top, max_watch=max_watch,
                            thresholds=thresholds or JudgeThresholds())

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_ready(server: MetricsServer) -> None:
        log_stderr(f"serving {server.url} (sampling every {interval:g} s, top {top} + up to {max_watch} "
                   "at watch level or above)")

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        with open_source(root=root) as source:
            exporter = PoolExporter(source, options, partial(snapshot_owner_lookup, tagfiles=tagfiles))
            serve_until(exporter, host, port, stop, on_ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log_stderr("stopped")
