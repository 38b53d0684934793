"""The judge's options, defined once (clikit.judge_options), on the live view, `report` and `serve`."""

from __future__ import annotations

import json

import pytest
from test_everywhere import snaps

from pooltop.__main__ import main
from pooltop.record import RecordingWriter


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize("command", [(), ("report",), ("serve",)])
def test_every_judging_command_has_the_windows(capsys: pytest.CaptureFixture[str],
                                               command: tuple[str, ...]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    out = " ".join(out.split())  # click wraps the help
    for option in ("--leak-window", "--suspect-window", "--min-growth", "--min-up"):
        assert option in out
    assert "(default 3 min)" in out and "%%" not in out and "1% of the starting size" in out


def test_report_windows_change_the_verdict(capsys: pytest.CaptureFixture[str],
                                           tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "rec.db")
    series = snaps()  # 100 s of a leak
    with RecordingWriter(path, series[0], interval_s=1.0) as w:
        for s in series:
            w.append(s)

    def verdict(*options: str) -> str:
        code, out, err = run(capsys, "report", path, "--format", "json", *options)
        assert code == 0, err
        return next(s["verdict"] for s in json.loads(out)["suspects"] if s["tag"] == "leak")

    assert verdict() == "suspect"  # younger than the default 3-minute leak window
    assert verdict("--leak-window", "90s") == "leak"
    assert verdict("--leak-window", "90s", "--min-growth", "1G") == "suspect"


@pytest.mark.parametrize("args", [["--leak-window", "0"], ["--suspect-window", "5m", "--leak-window", "1m"],
                                  ["--min-up", "2"]])
def test_bad_windows_are_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, "report", "nothing.db", *args)
    assert code == 2 and "Invalid value" in err and "Traceback" not in err
