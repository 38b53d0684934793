"""A real Prometheus server scrapes a real `pooltop serve` while a child process leaks pipes.

Debian's prometheus binary runs on a free loopback port with a temporary data folder and scrapes
pooltop every second; pooltop samples /proc/slabinfo every 0.5 s and exports the top 20 caches plus
those at watch level or above. The child opens 200 pipes every 0.5 s (each pipe is two `struct file`
in the filp cache, plus a dentry, an inode and a pipe_inode_info) and holds them, up to 6,000 pipes
(15 s).
The test asks Prometheus's HTTP API until the filp bytes series rises, checks the number of
pooltop_pool_bytes series against the bound at every scrape, and runs the shipped dashboard's
queries against the live data. Every process is stopped in a finally block; the test takes about
15 s and gives up after 55 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from exporter_support import (
    LOOPBACK,
    ROOT,
    free_port,
    processes,
    prom_query,
    scalar,
    start_serve,
    wait_for_http,
)
from helpers import needs_root

PROMETHEUS = shutil.which("prometheus")
TOP = 20
MAX_WATCH = 100  # pooltop serve's default
GROWTH = 150_000  # bytes of filp growth to see once the series exists: ~800 files (a 192-byte filp)

pytestmark = [
    pytest.mark.slow,
    needs_root,
    pytest.mark.skipif(PROMETHEUS is None,
                       reason="the prometheus server is not installed (Debian: apt-get install prometheus)"),
]

# Opens 200 pipes every 0.5 s up to a bound and holds them until its stdin closes or it is killed.
# PR_SET_PDEATHSIG: the kernel kills it if the test process dies without cleaning up.
LEAKER = textwrap.dedent(
    """
    import ctypes, os, resource, signal, sys, threading, time
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 16_384 if hard == resource.RLIM_INFINITY else min(hard, 16_384)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    bound = min(6_000, (limit - 64) // 2)
    held = []
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        for _ in range(200 if len(held) < bound else 0):
            held.append(os.pipe())
        time.sleep(0.5)
    """
)


def prometheus_config(pooltop_port: int) -> str:
    return textwrap.dedent(
        f"""
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: pooltop
            static_configs:
              - targets: ["{LOOPBACK}:{pooltop_port}"]
        """
    )


def dashboard_queries() -> list[str]:
    with open(os.path.join(ROOT, "monitoring", "grafana", "pooltop.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    variables = {"$instance": ".*", "$topk": "10", "$growth_window": "1m"}
    out = []
    for expr in exprs:
        for name, val in variables.items():
            expr = expr.replace(name, val)
        out.append(expr)
    return out


def test_prometheus_sees_a_leaking_cache_within_the_series_bound(tmp_path: Path) -> None:
    started_at = time.monotonic()
    deadline = started_at + 55
    pooltop_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(pooltop_port))
    prom_log = tmp_path / "prometheus.log"

    with processes() as started, open(prom_log, "w") as log:
        serve = start_serve(pooltop_port, "--interval", "0.5", "--top", str(TOP))
        started.append(serve)
        assert PROMETHEUS is not None
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address={LOOPBACK}:{prom_port}", "--log.level=warn"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        started.append(prom)
        wait_for_http(f"http://{LOOPBACK}:{pooltop_port}/metrics", deadline, serve,
                      contains="pooltop_pool_bytes")
        wait_for_http(f"http://{LOOPBACK}:{prom_port}/-/ready", deadline, prom)
        while scalar(prom_query(prom_port, 'up{job="pooltop"}')) != 1:
            assert time.monotonic() < deadline, "Prometheus never scraped pooltop"
            time.sleep(0.2)

        leaker = subprocess.Popen([sys.executable, "-c", LEAKER], stdin=subprocess.PIPE)
        started.append(leaker)

        # filp appears once it is in the top 20 or at watch level, then must keep rising.
        seen: list[float] = []
        while not (seen and seen[-1] - seen[0] >= GROWTH and len(set(seen)) >= 3):
            assert time.monotonic() < deadline, (
                f"filp did not rise by {GROWTH} bytes in Prometheus (saw {seen}); "
                f"prometheus log: {prom_log.read_text()[-2000:]}"
            )
            assert leaker.poll() is None and serve.poll() is None and prom.poll() is None
            v = scalar(prom_query(prom_port, 'pooltop_pool_bytes{job="pooltop", tag="filp", pool="slab"}'))
            if v is not None and (not seen or v != seen[-1]):
                seen.append(v)
            time.sleep(0.5)
        level = scalar(prom_query(prom_port, 'pooltop_pool_leak_level{tag="filp"}'))
        assert level is not None

        # The bound, on one scrape: both counts at the same evaluation time come from the same scrape.
        at = time.time()
        exported = scalar(prom_query(prom_port, 'count(pooltop_pool_bytes{job="pooltop"})', at))
        watching = scalar(prom_query(
            prom_port, 'count(pooltop_pool_leak_level{job="pooltop"} >= 1) or vector(0)', at))
        reported = scalar(prom_query(prom_port, 'pooltop_exported_tags{job="pooltop"}', at))
        assert exported is not None and watching is not None
        assert TOP <= exported <= TOP + min(watching, MAX_WATCH)
        assert reported == exported
        # ... and at every scrape since the start (a subquery at the scrape resolution)
        span = int(time.monotonic() - started_at) + 2
        worst = scalar(prom_query(
            prom_port,
            f'max_over_time((count(pooltop_pool_bytes) - (count(pooltop_pool_leak_level >= 1) or vector(0)))'
            f'[{span}s:1s])', at))
        assert worst is not None and worst <= TOP
        tags = scalar(prom_query(prom_port, 'sum(pooltop_tags{job="pooltop"})', at))
        assert tags is not None and tags > exported  # this kernel has more caches than are exported

        assert scalar(prom_query(prom_port, 'pooltop_up{job="pooltop"}')) == 1
        assert scalar(prom_query(prom_port, 'pooltop_sample_errors_total{job="pooltop"}')) == 0
        # the shipped dashboard's queries parse and run against real data
        for expr in dashboard_queries():
            prom_query(prom_port, expr)

        assert time.monotonic() - started_at < 55
    for proc in (serve, prom):
        assert proc.returncode == 0, f"{proc.args[0]} exited with {proc.returncode}"
