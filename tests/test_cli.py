"""The command line's parser and entry point, in process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from eventlog._cli import build_parser, is_interrupt, main

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["collector", "--outage", "-1"],
        ["collector", "--outage", "inf"],
        ["collector", "--latency", "nan"],
        ["collector", "--fail-rate", "1.5"],
        ["collector", "--fail-status", "200"],
        ["collector", "--max-body", "0"],
        ["demo", "--events", "0"],
        ["demo", "--sessions", "-2"],
        ["demo", "--outage", "soon"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad commands and option values are usage errors (exit status 2) with a reason."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "usage: eventlog" in capsys.readouterr().err


def test_defaults() -> None:
    """The documented defaults of collector and demo."""
    collector = build_parser().parse_args(["collector"])
    assert (collector.host, collector.port, collector.db) == (
        "127.0.0.1",
        8787,
        "eventlog-collector.sqlite",
    )
    assert (collector.outage, collector.fail_rate, collector.fail_status) == (0.0, 0.0, 503)
    demo = build_parser().parse_args(["demo"])
    assert (demo.events, demo.outage, demo.sessions, demo.keep) == (3000, 3.0, 3, False)


def test_is_interrupt() -> None:
    """Ctrl-C is recognised bare and inside (nested) exception groups, and nothing else."""
    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(BaseExceptionGroup("g", [KeyboardInterrupt()]))
    assert is_interrupt(BaseExceptionGroup("g", [BaseExceptionGroup("h", [KeyboardInterrupt()])]))
    assert not is_interrupt(BaseExceptionGroup("g", [KeyboardInterrupt(), ValueError()]))
    assert not is_interrupt(ValueError())


def test_main_runs_a_command_and_exits_with_its_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() parses, runs the command and exits with the status it returned."""
    with pytest.raises(SystemExit) as info:
        main(["spool", "ls", "--dir", str(tmp_path / "none")])
    assert info.value.code == 0
    assert "nothing spooled" in " ".join(capsys.readouterr().out.split())
