"""Helpers for the exporter's process tests: free ports, HTTP polling, a `pooltop serve` subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel's choice; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return int(r.status), r.read().decode("utf-8")


def wait_for_http(url: str, deadline: float, proc: subprocess.Popen[str] | None = None,
                  contains: str = "") -> str:
    """Poll `url` until it answers 200 (with `contains` in the body) or `deadline` (monotonic) passes."""
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            status, body = http_get(url, timeout=1.0)
            if status == 200 and contains in body:
                return body
            last = status
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time (last: {last})")


def port_is_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect((LOOPBACK, port))
        except ConnectionRefusedError:
            return True
        return False


def start_serve(port: int, *args: str) -> subprocess.Popen[str]:
    """`python -m pooltop serve --listen 127.0.0.1:PORT ARGS...`; stderr is captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "pooltop", "serve", "--listen", f"{LOOPBACK}:{port}", *args],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`: for finally blocks (never raises)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    """A list to append started processes to; all are stopped on exit, last started first."""
    started: list[subprocess.Popen[Any]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            stop_process(proc)


def prom_query(port: int, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """Prometheus /api/v1/query: the result vector (raises on an error answer)."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"http://{LOOPBACK}:{port}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        _, body = http_get(url, timeout=5.0)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"query {expr!r} failed: {e.read().decode('utf-8', 'replace')}") from None
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def scalar(result: list[dict[str, Any]]) -> float | None:
    """The single value of an instant-vector answer, None when it is empty."""
    if not result:
        return None
    assert len(result) == 1, result
    return float(result[0]["value"][1])
