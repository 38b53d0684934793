"""Windows CPython checks against a real ntdll: under Wine in CI (.ci/windows-stage.sh), or on Windows.

Run with `python -m pytest -m windows tests/windows_wine`. Wine 8 answers SystemModuleInformation
(STATUS_INFO_LENGTH_MISMATCH first, then 3 modules) and stubs the pool classes (22, 66, 67, 255)
with STATUS_INVALID_INFO_CLASS, so under Wine the pool tests check that pooltop says "not
available" cleanly; on real Windows they check that the tables decode.
"""

from __future__ import annotations

import ctypes
import ntpath
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.windows,
    pytest.mark.skipif(
        sys.platform != "win32",
        reason="needs Windows CPython (CI runs these under Wine: .ci/windows-stage.sh)",
    ),
]

if sys.platform == "win32":
    from pooltop.errors import Unsupported
    from pooltop.native.windows import LiveWindowsApi, WindowsSource, list_kernel_modules, ntapi
    from pooltop.native.windows.layouts import decode_bigpool, decode_pooltags
    from pooltop.native.windows.status import NtUnsupported

    UNDER_WINE = ntapi.running_under_wine()
else:
    UNDER_WINE = False

POOL_CLASSES = {
    22: "SystemPoolTagInformation",
    255: "SystemPoolTagInformation2",
    66: "SystemBigPoolInformation",
}


def test_ntdll_loads() -> None:
    ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined,unused-ignore]
    assert ntdll.NtQuerySystemInformation
    assert ctypes.sizeof(ctypes.c_void_p) == 8, "the stage runs 64-bit CPython"
    ntapi.refuse_wow64()  # a 64-bit process is never refused


def test_module_information_grows_its_buffer() -> None:
    result = ntapi.NtApi().query(11, initial_size=16)
    assert result.attempts >= 2, "a 16-byte buffer must come back with STATUS_INFO_LENGTH_MISMATCH"
    count = int.from_bytes(result.data[:4], "little")
    assert count >= 1
    assert len(result.data) >= 8 + count * 0x128


def test_kernel_modules_have_resolved_paths() -> None:
    modules = list_kernel_modules()
    assert modules
    for m in modules:
        assert not m.path.lower().startswith(("\\systemroot\\", "\\??\\")), m.path
        assert ntpath.isabs(m.path) and m.path[1:3] == ":\\", m.path
        assert ntpath.basename(m.path).lower() == m.name.lower()
        assert m.size > 0
    names = {m.name.lower() for m in modules}
    assert "ntoskrnl.exe" in names
    assert any(os.path.exists(m.path) for m in modules), [m.path for m in modules]


@pytest.mark.parametrize("info_class", sorted(POOL_CLASSES))
def test_pool_classes(info_class: int) -> None:
    api = ntapi.NtApi()
    if UNDER_WINE:
        with pytest.raises(Unsupported) as e:
            api.query(info_class)
        assert isinstance(e.value, NtUnsupported)
        assert e.value.status == 0xC0000003
        message = str(e.value)
        assert f"{POOL_CLASSES[info_class]} ({info_class}) is not available" in message
        assert "NtQuerySystemInformation returned STATUS_INVALID_INFO_CLASS (0xC0000003)" in message
        return
    layout = ntapi.process_layout()
    try:
        data = api.query(info_class).data
    except Unsupported:
        if info_class == 255:
            pytest.skip("SystemPoolTagInformation2 needs Windows 11 26H1 or later")
        raise
    if info_class == 66:
        assert decode_bigpool(data, layout)
    else:
        assert len(decode_pooltags(data, layout, info_class)) > 100


def test_sample() -> None:
    source = WindowsSource()
    if UNDER_WINE:
        with pytest.raises(Unsupported, match=r"SystemPoolTagInformation \(22\) is not available"):
            source.sample()
        return
    snap = source.sample()
    assert snap.source == "windows-pooltag" and len(snap.counters) > 100
    assert snap.totals.paged_pool and snap.totals.nonpaged_pool


def test_host_and_totals() -> None:
    api = LiveWindowsApi()
    host = api.host()
    ver = sys.getwindowsversion()  # type: ignore[attr-defined,unused-ignore]
    assert (host.os, host.build) == ("Windows", str(ver.build))
    assert host.os_version == f"{ver.major}.{ver.minor}.{ver.build}"
    assert host.arch in ("x86_64", "arm64")
    assert host.uptime_s is not None and host.uptime_s > 0
    assert host.name
    totals = api.totals()
    assert totals.commit_limit is not None and totals.commit is not None
    assert totals.commit_limit >= totals.commit > 0
    assert totals.memory_available is not None and totals.memory_available > 0
    assert totals.paged_pool is not None and totals.nonpaged_pool is not None


def test_ctypes_windows_sdk_is_kept_away_from_wine() -> None:
    note = ntapi.sdk_note()
    if UNDER_WINE:
        assert "Wine" in note
        assert not any(m.startswith("cwinsdk") for m in sys.modules)
    else:
        assert note


def test_cli_snapshot_fails_with_one_line() -> None:
    if not UNDER_WINE:
        pytest.skip("on real Windows the snapshot succeeds (see test_sample)")
    proc = subprocess.run(
        [sys.executable, "-m", "pooltop", "snapshot"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(err.splitlines()) == 1, err
    assert err.startswith("pooltop: SystemPoolTagInformation (22) is not available"), err
    assert "NtQuerySystemInformation returned STATUS_INVALID_INFO_CLASS (0xC0000003)" in err, err
