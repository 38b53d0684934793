"""WindowsSource assembled over a fake WindowsApi (Linux): class choice, warnings, totals, modules."""

from __future__ import annotations

import nt_encoders as enc
import pytest

from pooltop.errors import BadInput, NeedsElevation, PooltopError, Unsupported
from pooltop.model import HostInfo, Pool, Totals
from pooltop.native.windows import WindowsSource, list_kernel_modules
from pooltop.native.windows.layouts import NO_SESSION, SESSION_ID_COLUMN, X64, Layout
from pooltop.native.windows.ntapi import QueryResult
from pooltop.native.windows.status import (
    STATUS_ACCESS_DENIED,
    STATUS_INVALID_INFO_CLASS,
    error_for_status,
)

HOST = HostInfo(
    name="box", os="Windows", os_version="10.0.26100", arch="x86_64", uptime_s=12.5, build="26100"
)
TOTALS = Totals(paged_pool=1 << 30, nonpaged_pool=1 << 29, commit=5, commit_limit=9, memory_available=3)

POOL22 = enc.pooltag_info(
    8, [enc.pooltag(8, "Leak", nonpaged=(9, 1, 8192)), enc.pooltag(8, "Io  ", paged=(3, 1, 64))]
)
POOL255 = enc.pooltag_info(8, [enc.pooltag2(8, "Wide", paged=(2**33, 1, 64))])
SESSIONS = enc.session_info(8, [(1, [enc.pooltag(8, "Gla5", paged=(4, 1, 96))])])
BIGPOOL = enc.array_info(
    8,
    [
        enc.bigpool(8, 0xFFFF_8000_0000_1000, 0x4000, "Leak", nonpaged=True),
        enc.bigpool(8, 0xFFFF_8000_0001_0000, 0x2000, "Othr"),
    ],
)
MODULES = enc.array_info(
    8,
    [
        enc.module(8, 0xFFFFF800_00000000, 0x100000, b"\\SystemRoot\\system32\\ntoskrnl.exe"),
        enc.module(8, 0, 0x8000, b"\\??\\C:\\Vendor\\leaky.sys"),
    ],
)


def fail(code: int, info_class: int) -> PooltopError:
    return error_for_status("NtQuerySystemInformation", code, info_class)


class FakeApi:
    layout: Layout = X64

    def __init__(self, answers: dict[int, bytes | PooltopError], totals: Totals | PooltopError = TOTALS):
        self.answers = answers
        self._totals = totals
        self.asked: list[int] = []

    def query(self, info_class: int, initial_size: int | None = None) -> QueryResult:
        self.asked.append(info_class)
        answer = self.answers.get(info_class, fail(STATUS_INVALID_INFO_CLASS, info_class))
        if isinstance(answer, PooltopError):
            raise answer
        return QueryResult(info_class, answer, 1)

    def totals(self) -> Totals:
        if isinstance(self._totals, PooltopError):
            raise self._totals
        return self._totals

    def host(self) -> HostInfo:
        return HOST


def test_prefers_class_255() -> None:
    api = FakeApi({255: POOL255, 22: POOL22, 67: SESSIONS})
    source = WindowsSource(api)
    snap = source.sample()
    assert snap.source == "windows-pooltag"
    assert [(r.tag, r.pool) for r in snap.rows()] == [("Wide", Pool.PAGED), ("Gla5", Pool.SESSION)]
    assert snap.rows().__next__().allocs == 2**33
    assert snap.warnings == ()
    source.sample()
    assert api.asked == [255, 67, 255, 67]  # the class that answered is remembered


def test_falls_back_to_class_22_and_adds_session_rows() -> None:
    api = FakeApi({22: POOL22, 67: SESSIONS})
    snap = WindowsSource(api).sample()
    rows = list(snap.rows())
    assert [(r.tag, r.pool.label, r.diff, r.bytes) for r in rows] == [
        ("Leak", "nonpaged", 8, 8192),
        ("Io  ", "paged", 2, 64),
        ("Gla5", "session", 3, 96),
    ]
    assert [r.extra[SESSION_ID_COLUMN] for r in rows] == [NO_SESSION, NO_SESSION, 1]
    assert snap.counters.counter_bits == 32
    assert snap.totals == TOTALS and snap.host == HOST
    assert snap.taken_at.tzinfo is not None
    assert api.asked == [255, 22, 67]


def test_falls_back_when_255_needs_elevation() -> None:
    api = FakeApi(
        {255: fail(STATUS_ACCESS_DENIED, 255), 22: POOL22},
    )
    assert len(WindowsSource(api, include_sessions=False).sample().counters) == 2


def test_no_pool_class_is_unsupported_with_one_line() -> None:
    with pytest.raises(Unsupported, match=r"^SystemPoolTagInformation \(22\) is not available") as e:
        WindowsSource(FakeApi({})).sample()
    assert "\n" not in str(e.value)


def test_elevation_error_surfaces() -> None:
    api = FakeApi({255: fail(STATUS_INVALID_INFO_CLASS, 255), 22: fail(STATUS_ACCESS_DENIED, 22)})
    with pytest.raises(NeedsElevation, match="elevated"):
        WindowsSource(api).sample()


def test_unsupported_session_class_is_a_warning_and_not_asked_again() -> None:
    api = FakeApi({22: POOL22})
    source = WindowsSource(api)
    first, second = source.sample(), source.sample()
    assert len(first.counters) == 2 and SESSION_ID_COLUMN in first.counters.extra
    for snap in (first, second):
        (warning,) = snap.warnings
        assert warning.startswith("session pool tags not read: SystemSessionPoolTagInformation (67)")
    assert api.asked.count(67) == 1


def test_undecodable_session_buffer_is_a_warning() -> None:
    api = FakeApi({22: POOL22, 67: b"\x10\0\0\0\0\0\0\0\x01\0\0\0\xff\xff\0\0"})
    source = WindowsSource(api)
    for _ in range(2):
        snap = source.sample()
        assert len(snap.counters) == 2
        assert snap.warnings[0].startswith("session pool tags not read: session pool tag buffer")
    assert api.asked.count(67) == 2  # a bad buffer may be a race: asked again


def test_include_sessions_false_and_totals_failure() -> None:
    api = FakeApi({22: POOL22}, totals=PooltopError("GetPerformanceInfo failed: boom"))
    snap = WindowsSource(api, include_sessions=False).sample()
    assert snap.totals == Totals()
    assert snap.warnings == ("pool totals not read: GetPerformanceInfo failed: boom",)
    assert 67 not in api.asked


def test_bad_pool_buffer_fails_the_sample() -> None:
    with pytest.raises(BadInput):
        WindowsSource(FakeApi({22: POOL22[:-3]})).sample()


def test_big_pool_allocations() -> None:
    source = WindowsSource(FakeApi({22: POOL22, 66: BIGPOOL}))
    (leak,) = source.big_pool_allocations("Leak")
    assert (leak.address, leak.size, leak.nonpaged) == (0xFFFF_8000_0000_1000, 0x4000, True)
    assert len(source.big_pool_allocations()) == 2
    with pytest.raises(Unsupported, match=r"SystemBigPoolInformation \(66\)"):
        WindowsSource(FakeApi({22: POOL22})).big_pool_allocations()


def test_kernel_modules_have_win32_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", "C:\\Windows")
    monkeypatch.setenv("SYSTEMDRIVE", "C:")
    mods = list_kernel_modules(FakeApi({11: MODULES}))
    assert [(m.name, m.path, m.base, m.size) for m in mods] == [
        ("ntoskrnl.exe", "C:\\Windows\\system32\\ntoskrnl.exe", 0xFFFFF800_00000000, 0x100000),
        ("leaky.sys", "C:\\Vendor\\leaky.sys", 0, 0x8000),
    ]
    assert WindowsSource(FakeApi({11: MODULES})).kernel_modules() == mods
