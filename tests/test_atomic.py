"""`-o` targets: regular files are replaced atomically, devices, named pipes and `-` are written into,
other kinds are refused in one line. Device tests use device nodes made in the test's own folder
(the same major/minor numbers as /dev/null and /dev/full), never the machine's /dev entries."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading

import pytest
from helpers import DATA

from pooltop.atomic import atomic_write
from pooltop.errors import PooltopError

TREE = os.path.join(DATA, "linux", "vm-6.18")
posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and device nodes are POSIX")


def device(tmp_path, name: str, minor: int) -> str:
    """A character device node like /dev/null (1, 3) or /dev/full (1, 7), made here; or, for a user
    who may not make one (and so cannot replace /dev entries either), the machine's own."""
    path = str(tmp_path / name)
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (OSError, AttributeError):
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            pytest.skip("mknod is not allowed here, and as root a bug could replace the real /dev node")
        return f"/dev/{name}"
    return path


def run_pooltop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooltop", *args], capture_output=True, text=True,
                          timeout=60)


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    with atomic_write(str(target)) as f:
        f.write("new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file(tmp_path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(str(target)) as f:
        f.write("half")
        raise RuntimeError("stop")
    assert target.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_a_symlink_keeps_pointing_at_the_new_file(tmp_path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_write(str(link)) as f:
        f.write("new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"


@posix_only
def test_a_named_pipe_is_written_into_not_replaced(tmp_path) -> None:
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    thread = threading.Thread(target=reader)
    thread.start()
    with atomic_write(fifo) as f:
        f.write("through the pipe\n")
    thread.join(timeout=30)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@posix_only
def test_a_symlink_to_a_named_pipe_is_followed(tmp_path) -> None:
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    link = tmp_path / "stdout-like"
    link.symlink_to(fifo)
    received: list[bytes] = []
    thread = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))  # noqa: SIM115
    thread.start()
    with atomic_write(str(link), "wb") as f:
        f.write(b"\x00zip")
    thread.join(timeout=30)
    assert received == [b"\x00zip"]
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@posix_only
def test_a_null_device_is_written_into_not_replaced(tmp_path) -> None:
    null = device(tmp_path, "null", 3)
    before = os.lstat(null)
    with atomic_write(null) as f:
        f.write("gone\n")
    after = os.lstat(null)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@posix_only
def test_a_full_device_gives_a_one_line_error_and_stays_a_device(tmp_path) -> None:
    full = device(tmp_path, "full", 7)
    with pytest.raises(PooltopError) as e, atomic_write(full) as f:
        f.write("x" * 100)
    assert str(e.value) == f"cannot write {full}: No space left on device"
    assert stat.S_ISCHR(os.lstat(full).st_mode)


@posix_only
def test_snapshot_into_devices_and_a_pipe_through_the_command(tmp_path) -> None:
    null, full = device(tmp_path, "null", 3), device(tmp_path, "full", 7)
    done = run_pooltop("snapshot", "--root", TREE, "-f", "json", "-o", null)
    assert done.returncode == 0 and done.stderr.endswith(f"pooltop: wrote {null}\n")
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    failed = run_pooltop("snapshot", "--root", TREE, "-o", full)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == f"pooltop: cannot write {full}: No space left on device\n"
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_dash_is_standard_output(tmp_path) -> None:
    done = run_pooltop("snapshot", "--root", TREE, "-f", "csv", "-o", "-")
    assert done.returncode == 0 and done.stdout.startswith("tag,") and "wrote" not in done.stderr
    assert not os.path.exists(tmp_path / "-") and not os.path.exists("-")


@posix_only
def test_a_socket_or_directory_is_refused_in_one_line(tmp_path) -> None:
    sock_path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(sock_path)
        with pytest.raises(PooltopError, match=r"^cannot write .*/s: it is a socket, not a file$"):
            atomic_write(sock_path).__enter__()
        done = run_pooltop("snapshot", "--root", TREE, "-o", sock_path)
        assert done.returncode == 1
        assert done.stderr == f"pooltop: cannot write {sock_path}: it is a socket, not a file\n"
    with pytest.raises(PooltopError, match="is a directory"):
        atomic_write(str(tmp_path)).__enter__()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_a_stdout_symlink_writes_to_standard_output(tmp_path) -> None:
    # What /dev/stdout is, made here: a symlink to /proc/self/fd/1 (here a pipe to this test).
    stdout_link = tmp_path / "stdout"
    stdout_link.symlink_to("/proc/self/fd/1")
    done = run_pooltop("snapshot", "--root", TREE, "-f", "csv", "-o", str(stdout_link))
    assert done.returncode == 0 and done.stdout.startswith("tag,")
    assert stdout_link.is_symlink() and os.readlink(stdout_link) == "/proc/self/fd/1"
