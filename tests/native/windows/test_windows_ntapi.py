"""The NtQuerySystemInformation call protocol, on Linux, with a fake NtQuerySystemInformation."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from typing import Any

import pytest

from pooltop.errors import BadInput, NeedsElevation, PooltopError, Unsupported
from pooltop.native.windows import ntapi, status
from pooltop.native.windows.ntapi import NtApi, result_is_ntstatus
from pooltop.native.windows.status import (
    STATUS_ACCESS_DENIED,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS,
    STATUS_NOT_IMPLEMENTED,
    STATUS_PRIVILEGE_NOT_HELD,
    STATUS_SUCCESS,
    NtNeedsElevation,
    NtStatusError,
    NtUnsupported,
)


class FakeNtQuery:
    """Answers like the kernel: INFO_LENGTH_MISMATCH (with the needed size) until the buffer fits.

    `grow_by` makes the table grow between calls; `fixed_status` fails every call with that status.
    """

    def __init__(
        self,
        payload: bytes = b"\x03\0\0\0" + b"M" * 60,
        *,
        grow_by: int = 0,
        fixed_status: int | None = None,
        report_length: bool = True,
        mismatch: int = STATUS_INFO_LENGTH_MISMATCH,
        signed: bool = False,
    ):
        self.payload = payload
        self.grow_by = grow_by
        self.fixed_status = fixed_status
        self.report_length = report_length
        self.mismatch = mismatch
        self.signed = signed
        self.calls: list[tuple[int, int]] = []

    def __call__(self, info_class: int, buffer: Any, length: int, returned: Any) -> int:
        self.calls.append((info_class, length))
        assert ctypes.sizeof(buffer) == length  # the length passed is the buffer's
        if self.fixed_status is not None:
            return self._ret(self.fixed_status)
        data = self.payload + b"G" * (self.grow_by * (len(self.calls) - 1))
        if length < len(data):
            returned.value = len(data) if self.report_length else 0
            return self._ret(self.mismatch)
        ctypes.memmove(buffer, data, len(data))
        returned.value = len(data)
        return STATUS_SUCCESS

    def _ret(self, code: int) -> int:
        # a ctypes c_int32 restype hands back negative numbers for 0xC... codes
        return code - (1 << 32) if self.signed and code >= 0x80000000 else code


def test_grows_to_the_returned_length() -> None:
    fake = FakeNtQuery()
    result = NtApi(fake, initial_size=16).query(11)
    assert result.data == fake.payload
    assert result.attempts == 2
    assert fake.calls[0] == (11, 16)
    assert fake.calls[1][1] >= len(fake.payload) + ntapi.MIN_SLACK  # slack for a growing table


def test_first_call_fits() -> None:
    fake = FakeNtQuery()
    result = NtApi(fake).query(22)
    assert (result.attempts, result.data, result.info_class) == (1, fake.payload, 22)
    assert fake.calls == [(22, ntapi.DEFAULT_INITIAL_SIZE)]


def test_table_growing_between_calls_still_converges() -> None:
    fake = FakeNtQuery(payload=b"\0" * 20_000, grow_by=3_000)  # less than the slack per call
    result = NtApi(fake, initial_size=64).query(22)
    assert result.attempts == 2
    assert len(result.data) == 23_000


@pytest.mark.parametrize("mismatch", [STATUS_INFO_LENGTH_MISMATCH, STATUS_BUFFER_TOO_SMALL])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-c_int32"])
def test_both_grow_statuses_and_signed_returns(mismatch: int, signed: bool) -> None:
    fake = FakeNtQuery(mismatch=mismatch, signed=signed)
    assert NtApi(fake, initial_size=16).query(66).attempts == 2


def test_no_returned_length_doubles() -> None:
    fake = FakeNtQuery(payload=b"\0" * 100, report_length=False)
    result = NtApi(fake, initial_size=16).query(11)
    assert [size for _, size in fake.calls] == [16, 32, 64, 128]
    assert result.attempts == 4


def test_retry_bound() -> None:
    fake = FakeNtQuery(payload=b"\0" * 1000, grow_by=10**6)  # grows faster than we can follow
    api = NtApi(fake, initial_size=16, max_attempts=5)
    with pytest.raises(PooltopError, match=r"SystemPoolTagInformation \(22\).*gave up after 5 calls") as e:
        api.query(22)
    assert not isinstance(e.value, Unsupported | NeedsElevation)
    assert len(fake.calls) == 5


def test_size_limit() -> None:
    fake = FakeNtQuery(payload=b"\0" * 5000)
    with pytest.raises(PooltopError, match="over pooltop's limit of 4096 bytes"):
        NtApi(fake, initial_size=16, max_size=4096).query(22)
    with pytest.raises(PooltopError, match="over the limit"):
        NtApi(fake, initial_size=8192, max_size=4096).query(22)


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (
            STATUS_INVALID_INFO_CLASS,
            Unsupported,
            ["SystemPoolTagInformation (22)", "not available", "STATUS_INVALID_INFO_CLASS (0xC0000003)"],
        ),
        (STATUS_NOT_IMPLEMENTED, Unsupported, ["STATUS_NOT_IMPLEMENTED (0xC0000002)"]),
        (
            STATUS_ACCESS_DENIED,
            NeedsElevation,
            ["run pooltop from an elevated (Administrator) prompt", "STATUS_ACCESS_DENIED (0xC0000022)"],
        ),
        (STATUS_PRIVILEGE_NOT_HELD, NeedsElevation, ["elevated (Administrator)", "0xC0000061"]),
        (
            0xC0000005,
            PooltopError,
            [
                "NtQuerySystemInformation(SystemPoolTagInformation (22)) failed",
                "STATUS_ACCESS_VIOLATION (0xC0000005)",
            ],
        ),
        (0xC0DE0001, PooltopError, ["NTSTATUS 0xC0DE0001"]),
        (0x80000005, PooltopError, ["STATUS_BUFFER_OVERFLOW (0x80000005)"]),  # a warning is not NT_SUCCESS
    ],
)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-c_int32"])
def test_status_mapping(code: int, kind: type[PooltopError], words: list[str], signed: bool) -> None:
    fake = FakeNtQuery(fixed_status=code, signed=signed)
    with pytest.raises(kind) as e:
        NtApi(fake).query(22)
    err = e.value
    assert isinstance(err, NtStatusError)
    assert (err.api, err.status, err.info_class) == ("NtQuerySystemInformation", code, 22)
    if kind is PooltopError:
        assert not isinstance(err, Unsupported | NeedsElevation | BadInput)
    message = str(err)
    assert "\n" not in message
    for word in words:
        assert word in message
    assert len(fake.calls) == 1  # failures other than the grow statuses are not retried


def test_status_classes() -> None:
    assert issubclass(NtUnsupported, Unsupported) and issubclass(NtUnsupported, NtStatusError)
    assert issubclass(NtNeedsElevation, NeedsElevation) and issubclass(NtNeedsElevation, NtStatusError)
    assert status.status_name(-1073741820) == "STATUS_INFO_LENGTH_MISMATCH (0xC0000004)"
    assert status.nt_success(0x00000103) and status.nt_success(0x40000000)
    assert not status.nt_success(0x80000005) and not status.nt_success(-1)
    assert status.info_class_label(999) == "information class (999)"


def test_register_names_keeps_ours() -> None:
    before = status.status_name(STATUS_INFO_LENGTH_MISMATCH)
    added = status.register_names(
        {
            "STATUS_OTHER_NAME": STATUS_INFO_LENGTH_MISMATCH - (1 << 32),
            "STATUS_TEST_ONLY_CODE": 0xC0FF0001,
            "NOT_A_STATUS": 5,
        }
    )
    assert added == 1
    assert status.status_name(STATUS_INFO_LENGTH_MISMATCH) == before
    assert status.status_name(0xC0FF0001) == "STATUS_TEST_ONLY_CODE (0xC0FF0001)"


def test_errcheck_directly() -> None:
    class Fn:
        __name__ = "NtQuerySystemInformation"

    args = (255, None, 0, None)
    assert result_is_ntstatus(0, Fn(), args) is args
    with pytest.raises(NtUnsupported, match=r"SystemPoolTagInformation2 \(255\)"):
        result_is_ntstatus(STATUS_INVALID_INFO_CLASS - (1 << 32), Fn(), args)


def test_refuse_wow64() -> None:
    with pytest.raises(Unsupported, match=r"32-bit Python on 64-bit Windows \(WOW64\).*64-bit Python"):
        ntapi.refuse_wow64(lambda: True, pointer_size=4)
    ntapi.refuse_wow64(lambda: False, pointer_size=4)  # 32-bit Windows: fine

    def never() -> bool:
        raise AssertionError("a 64-bit process does not ask")

    ntapi.refuse_wow64(never, pointer_size=8)


def test_totals_from_performance_information() -> None:
    info = ntapi.performance_information_struct(ctypes.c_uint64)()
    info.PageSize = 4096
    info.KernelPaged, info.KernelNonpaged = 1000, 500
    info.PhysicalTotal, info.PhysicalAvailable = 4_000_000, 1_000_000
    info.CommitTotal, info.CommitLimit = 2_000_000, 6_000_000
    totals = ntapi.totals_from_performance_information(info)
    assert totals.to_json() == {
        "paged_pool": 4096_000,
        "nonpaged_pool": 2048_000,
        "memory_total": 4_000_000 * 4096,
        "memory_available": 1_000_000 * 4096,
        "commit": 2_000_000 * 4096,
        "commit_limit": 6_000_000 * 4096,
    }


def test_windows_only_calls_refuse_on_linux() -> None:
    if sys.platform == "win32":
        pytest.skip("Linux behaviour")
    with pytest.raises(Unsupported):
        NtApi()
    with pytest.raises(Unsupported):
        ntapi.performance_totals()
    assert ntapi.tick_count_ms() is None
    assert not ntapi.running_under_wine()
    assert "not used" in ntapi.sdk_note()


def test_machine_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_ARCHITECTURE", "x86")
    monkeypatch.setenv("PROCESSOR_ARCHITEW6432", "ARM64")
    assert ntapi.machine() == "ARM64"  # a 32-bit process on ARM64 sees its OS in ...W6432
    monkeypatch.delenv("PROCESSOR_ARCHITEW6432")
    assert ntapi.machine() == "x86"


def test_importing_pooltop_on_linux_loads_no_windows_module() -> None:
    code = (
        "import sys, pooltop, pooltop.native, pooltop.native.windows, pooltop.native.windows.layouts\n"
        "bad = [m for m in sys.modules if m.startswith('cwinsdk') or m == 'pooltop.native.windows.ntapi']\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
