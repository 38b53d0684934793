"""`pooltop serve` as users run it: argument checks, the real process on loopback, SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from exporter_support import LOOPBACK, free_port, port_is_closed, processes, start_serve, wait_for_http
from helpers import linux_only

from pooltop.cli import main
from pooltop.exporter.command import is_loopback, parse_listen


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9877") == ("127.0.0.1", 9877)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen("localhost:1") == ("localhost", 1)
    assert parse_listen("9877") == ("127.0.0.1", 9877)
    assert parse_listen("0.0.0.0:9877") == ("0.0.0.0", 9877)
    for bad in (":9877", "::1:9877", "[::1]", "host", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("myhost.example")


@pytest.mark.parametrize("args", [
    ["--listen", ":9877"],
    ["--listen", "nonsense"],
    ["--top", "0"],
    ["--interval", "0"],
    ["--leak-window", "0"],
    ["--suspect-window", "5m", "--leak-window", "1m"],
])
def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", *args])
    assert exc.value.code == 2
    assert "Invalid value" in capsys.readouterr().err


@linux_only
def test_sigterm_stops_the_exporter_cleanly() -> None:
    port = free_port()
    with processes() as started:
        proc = start_serve(port, "--interval", "0.5")
        started.append(proc)
        body = wait_for_http(f"http://{LOOPBACK}:{port}/metrics", time.monotonic() + 20, proc,
                             contains="pooltop_samples_total")
        assert "pooltop_up" in body
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert f"serving http://{LOOPBACK}:{port}/metrics" in err
        assert err.rstrip().endswith("pooltop: stopped")
        assert "Traceback" not in err
        assert port_is_closed(port)


@linux_only
def test_a_busy_port_exits_1_with_one_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy, processes() as started:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_serve(port)
        started.append(proc)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert err.strip().splitlines()[-1].startswith(f"pooltop: cannot listen on {LOOPBACK}:{port}: ")
        assert "Traceback" not in err


def test_serve_is_registered_without_importing_prometheus_client() -> None:
    code = ("import sys, click, pooltop.cli as c; "
            "print('serve' in c.cli.list_commands(click.Context(c.cli)), 'prometheus_client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "False"]
