"""`pooltop processes` and `pooltop doctor` through the real entry point: formats, filters, files,
exit codes (0, 1 with one line, 2 usage, 4 doctor findings)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from helpers import linux_only
from proc_fakes import load_windows_fixture, process_snapshot, windows_processes

import pooltop.native
import pooltop.processes.doctor
import pooltop.processes.source
from pooltop.cli import main
from pooltop.errors import PooltopError, Unsupported
from pooltop.model import Totals
from pooltop.processes.logs import LogText

pytestmark = linux_only


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def own_tag(doc: dict[str, Any]) -> dict[str, Any]:
    mine: list[dict[str, Any]] = [p for p in doc["processes"] if p["pid"] == os.getpid()]
    assert len(mine) == 1, "this test process is not in the list"
    return mine[0]


# --- processes ----------------------------------------------------------------------------------


def test_json_lists_this_process_with_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "processes", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.processes/1" and doc["source"] == "linux-processes"
    assert doc["taken_at"].endswith("Z") and doc["host"]["os"] == "Linux"
    assert "slab_unreclaimable" in doc["totals"] and "memory_available" in doc["totals"]
    me = own_tag(doc)
    assert me["tag"] == f"{me['name']}[{os.getpid()}]"
    assert set(me) >= {"tag", "name", "pid", "private", "fds", "rss", "swap", "private_is_uss"}
    assert 0 < me["private"] <= me["rss"] and me["fds"] >= 3
    privates = [p["private"] for p in doc["processes"]]
    assert privates == sorted(privates, reverse=True)  # default sort: private, largest first
    assert doc["scan"]["rows"] == len(doc["processes"])
    assert all(p["fds"] is None or p["fds"] >= 0 for p in doc["processes"])


def test_text_table_top_and_include(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "processes", "--top", "3")
    assert code == 0
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("Process"))
    assert header.split() == ["Process", "Private", "Files", "RSS", "Swap"]
    assert len(lines) - lines.index(header) - 1 == 3
    me = own_tag(json.loads(run(capsys, "processes", "-f", "json")[1]))
    code, out, _ = run(capsys, "processes", "--include", me["tag"].replace("[", "?").replace("]", "?"))
    assert code == 0
    lines = out.splitlines()
    body = lines[next(i for i, ln in enumerate(lines) if ln.startswith("Process")) + 1:]
    assert [ln.split()[0] for ln in body] == [me["tag"]]


def test_csv_with_interval_has_change_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "processes", "-f", "csv", "--interval", "200ms", "--sort", "dprivate")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["process", "private", "d_private", "fds", "d_fds", "rss", "swap", "new"]
    changes = [int(r["d_private"]) for r in rows]
    assert changes == sorted(changes, reverse=True)
    code, out, _ = run(capsys, "processes", "-f", "json", "--interval", "0.1", "--sort", "dfds", "--top", "2")
    doc = json.loads(out)
    assert code == 0 and doc["interval_s"] > 0 and "vanished" in doc
    assert set(doc["processes"][0]["change"]) == {"private", "fds", "new"}


def test_output_file_is_written(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "procs.json"
    code, out, err = run(capsys, "processes", "-f", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert f"pooltop: wrote {target}" in err
    assert json.loads(target.read_text())["schema"] == "pooltop.processes/1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sort", "dprivate"], "--sort dprivate needs --interval"),
        (["--sort", "pool"], "--sort pool does not exist on Linux"),
        (["--sort", "allocs"], "Invalid value for '--sort'"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--ascending", "--descending"], "exclude each other"),
        (["--interval", "soon"], "is not a duration"),
        (["--top", "0"], "--top"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(capsys, "processes", *args)
    assert code == 2 and out == ""
    assert message in err


def test_runtime_failures_are_one_line_exit_1(capsys: pytest.CaptureFixture[str], tmp_path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(capsys, "processes", "-o", str(tmp_path / "no" / "such" / "folder.txt"))
    assert code == 1 and out == ""
    *warnings, last = err.splitlines()
    assert last.startswith("pooltop: cannot write") and "does not exist" in last
    assert all(w.startswith("pooltop: warning: ") for w in warnings)

    def broken(self: object) -> None:
        raise PooltopError("cannot list processes: /proc is not mounted")

    monkeypatch.setattr(pooltop.processes.source.ProcessSource, "sample_with_stats", broken)
    code, out, err = run(capsys, "processes")
    assert (code, out, err) == (1, "", "pooltop: cannot list processes: /proc is not mounted\n")


def test_windows_columns_and_keys_from_the_recorded_fixture(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load_windows_fixture()
    real = pooltop.processes.source.ProcessSource

    def windows_source(*args: object, **kwargs: object) -> pooltop.processes.source.ProcessSource:
        return real("win32", process_iter=lambda: windows_processes(doc),
                    totals=lambda: Totals(**doc["totals"]),
                    host=lambda: process_snapshot(0, [], "windows").host)

    monkeypatch.setattr(pooltop.processes.source, "ProcessSource", windows_source)
    code, out, err = run(capsys, "processes", "--sort", "pool", "--top", "2")
    assert code == 0
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("Process"))
    assert header.split() == ["Process", "Private", "Paged", "Nonpaged", "Handles", "RSS", "PeakPaged",
                              "PeakNonp", "PeakPriv"]
    first = lines[lines.index(header) + 1]
    assert first.startswith("AcmeBackupAgent.exe[3104]") and "251,377" in first
    assert "1 process read only in part (handle counts unknown)" in err
    code, out, err = run(capsys, "processes", "--sort", "swap")
    assert code == 2 and "--sort swap does not exist on Windows" in err
    code, out, _ = run(capsys, "processes", "-f", "csv", "--include", "csrss*")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["process"] == "csrss.exe[596]" and row["handles"] == ""  # unknown stays empty


# --- doctor -------------------------------------------------------------------------------------


def test_doctor_json_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "doctor", "--window", "0.5", "--format", "json")
    doc = json.loads(out)
    assert doc["schema"] == "pooltop.doctor/1"
    assert code == doc["exit_code"] and code in (0, 4), err
    assert doc["status"] in ("ok", "info", "warning", "critical")
    assert doc["samples"] == 5 and doc["verdict"]["kind"] in ("kernel", "process", "nothing")
    checks = {f["check"] for f in doc["findings"]}
    assert {"verdict", "kernel-memory", "available-memory", "swap"} <= checks
    assert checks & {"kernel-log", "permissions"}


def recent_oom_log(os_name: str) -> LogText:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return LogText("journalctl", f"{when} box kernel: Out of memory: Killed process 4242 (leaky) "
                                 "total-vm:8000000kB, anon-rss:7900000kB, file-rss:0kB, shmem-rss:0kB\n")


def test_doctor_exits_4_on_a_critical_finding(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pooltop.processes.doctor, "read_log", recent_oom_log)
    code, out, _ = run(capsys, "doctor", "-w", "0.3")
    assert code == 4
    lines = out.splitlines()
    assert lines[0].startswith("pooltop doctor: ") and lines[1].startswith("verdict: ")
    assert any(ln.startswith("[critical] kernel-log") and "leaky[4242]" in ln for ln in lines)
    assert lines[-1] == "status: critical (exit 4)"


def test_doctor_failures_and_usage(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(capsys, "doctor", "--window", "0")
    assert code == 2 and "must be a positive duration" in err
    code, out, err = run(capsys, "doctor", "--format", "csv")
    assert code == 2
    code, out, _ = run(capsys, "doctor", "--help")
    help_text = " ".join(out.split())
    assert code == 0 and "Exit codes: 0 all findings ok or info; 4 at least one warning or" in help_text

    def unsupported(*args: object, **kwargs: object) -> None:
        raise Unsupported("pooltop has no kernel memory source for plan9")

    monkeypatch.setattr(pooltop.native, "open_source", unsupported)
    code, out, err = run(capsys, "doctor", "-w", "0.2")
    assert (code, out, err) == (1, "", "pooltop: pooltop has no kernel memory source for plan9\n")


@pytest.mark.slow
def test_the_installed_entry_point() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "pooltop", "doctor", "--window", "0.4", "-f", "json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == json.loads(done.stdout)["exit_code"], done.stderr
    done = subprocess.run([sys.executable, "-m", "pooltop", "processes", "--top", "1", "--sort", "bogus"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and done.stdout == ""
