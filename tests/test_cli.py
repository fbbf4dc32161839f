"""The command line's parser and entry point, in process."""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import eventlog
from eventlog._cli import _demo, build_parser, main
from eventlog._cli import _spool as cli_spool
from eventlog._cli._errors import is_interrupt
from eventlog._cli._types import (
    fault_seconds,
    non_negative_seconds,
    port,
    positive_int,
    positive_seconds,
    rate,
    service_name,
    status,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "eventlog" / "_cli"


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
        ["collector", "--port", "99999"],
        ["collector", "--port", "-1"],
        ["collector", "--port", "http"],
        ["collector", "--outage", "1e300"],
        ["collector", "--retry-after", "86401"],
        ["collector", "--latency", "1e9"],
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


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (non_negative_seconds, "0", 0.0),
        (non_negative_seconds, "2.5", 2.5),
        (positive_seconds, "0.1", 0.1),
        (fault_seconds, "0", 0.0),
        (fault_seconds, "86400", 86_400.0),
        (port, "0", 0),
        (port, "65535", 65_535),
        (rate, "0", 0.0),
        (rate, "1", 1.0),
        (positive_int, "1", 1),
        (status, "400", 400),
        (status, "599", 599),
        (service_name, "my-app_2.0", "my-app_2.0"),
    ],
)
def test_option_values_in_range_are_taken(
    parse: Callable[[str], object], text: str, value: object
) -> None:
    """Each option type turns a valid text into its value, both ends of a range included."""
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        (non_negative_seconds, "soon", "'soon' is not a number"),
        (non_negative_seconds, "-1", "'-1' is not a finite number >= 0"),
        (non_negative_seconds, "inf", "'inf' is not a finite number >= 0"),
        (positive_seconds, "0", "'0' must be a positive number of seconds"),
        (positive_seconds, "nan", "'nan' must be a positive number of seconds"),
        (fault_seconds, "86400.5", "'86400.5' is not a number of seconds from 0 to 86400"),
        (port, "http", "'http' is not an integer"),
        (port, "65536", "'65536' is not a port (0 to 65535)"),
        (rate, "half", "'half' is not a number"),
        (rate, "nan", "'nan' is not a probability in [0, 1]"),
        (positive_int, "1.5", "'1.5' is not an integer"),
        (positive_int, "0", "'0' must be at least 1"),
        (status, "5xx", "'5xx' is not an integer"),
        (status, "200", "'200' is not a 4xx or 5xx status"),
        (service_name, "my app", "'my app' must match [A-Za-z0-9._-]{1,128}"),
    ],
)
def test_option_values_out_of_range_are_refused_with_the_reason(
    parse: Callable[[str], object], text: str, reason: str
) -> None:
    """Each option type refuses a bad text with an ArgumentTypeError that says why."""
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    assert str(info.value) == reason


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``eventlog --version`` prints the version and exits 0, without any extra."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"eventlog {eventlog.__version__}\n"


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


def test_demo_runs_with_the_options_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``eventlog demo`` passes its options to the demo and exits with the demo's status."""
    calls: list[dict[str, object]] = []

    def run_demo(**options: object) -> int:
        calls.append(options)
        return 1

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    with pytest.raises(SystemExit) as info:
        main(["demo", "--events", "20", "--outage", "0.5", "--sessions", "2", "--keep"])
    assert info.value.code == 1
    assert calls == [{"events": 20, "outage": 0.5, "sessions": 2, "keep": True}]


@pytest.mark.parametrize(
    "interrupt",
    [
        pytest.param(KeyboardInterrupt(), id="bare"),
        pytest.param(BaseExceptionGroup("g", [KeyboardInterrupt()]), id="in-a-group"),
    ],
)
def test_ctrl_c_in_a_command_exits_130(
    monkeypatch: pytest.MonkeyPatch, interrupt: BaseException
) -> None:
    """Ctrl-C, bare or in trio's exception group, ends a command with status 130, no traceback."""

    def run_demo(**options: object) -> int:
        raise interrupt

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    with pytest.raises(SystemExit) as info:
        main(["demo"])
    assert info.value.code == 130


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(BaseExceptionGroup("g", [KeyboardInterrupt(), ValueError()]), id="group"),
        pytest.param(ModuleNotFoundError("no yaml", name="yaml"), id="other-module"),
    ],
)
def test_a_command_failing_otherwise_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """A group that is not all Ctrl-C, a missing module other than an extra's: raised as is."""

    def run_demo(**options: object) -> int:
        raise error

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    with pytest.raises(type(error)):
        main(["demo"])


def test_a_spool_command_missing_rich_is_a_bug_not_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool commands need no extra: a ModuleNotFoundError there propagates, no hint."""

    def scan(directory: str) -> list[object]:
        raise ModuleNotFoundError("No module named 'rich'", name="rich")

    monkeypatch.setattr(cli_spool, "scan", scan)
    with pytest.raises(ModuleNotFoundError):
        main(["spool", "ls", "--dir", str(tmp_path)])


def test_importing_eventlog_main_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m eventlog`` runs the CLI; importing ``eventlog.__main__`` does not."""
    module = importlib.import_module("eventlog.__main__")
    assert module.main is main
    assert capsys.readouterr() == ("", "")


def test_collector_fault_seconds_go_up_to_a_day() -> None:
    """--outage, --retry-after and --latency accept 0 to 86400 seconds, both ends included."""
    args = build_parser().parse_args(
        ["collector", "--outage", "86400", "--retry-after", "0", "--latency", "0.5"]
    )
    assert (args.outage, args.retry_after, args.latency) == (86_400, 0, 0.5)


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A loopback port some other socket listens on for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _cannot_start(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``eventlog collector <argv>``; check exit 2 and one stderr line; return that line."""
    with pytest.raises(SystemExit) as info:
        main(["collector", *argv])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("eventlog collector: ")
    return lines[0]


def test_collector_on_a_port_in_use_says_so_in_one_line(
    port_in_use: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port another socket holds: one line naming the address and the reason, exit 2."""
    line = _cannot_start(["--port", str(port_in_use), "--db", ":memory:"], capsys)
    assert line == (
        f"eventlog collector: cannot listen on 127.0.0.1:{port_in_use}: Address already in use"
    )


@pytest.mark.parametrize(
    "host",
    [
        "203.0.113.1",
        "no.such.host.invalid",
        # A name IDNA cannot encode fails before any lookup.
        pytest.param("\N{SNOWMAN}" * 64, id="label-over-63-characters"),
    ],
)
def test_collector_on_an_unbindable_host_says_so_in_one_line(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An address not of this machine, or a name that does not resolve: one line, exit 2."""
    line = _cannot_start(["--host", host, "--port", "0", "--db", ":memory:"], capsys)
    assert line.startswith(f"eventlog collector: cannot listen on {host}:0: ")


def test_collector_with_an_unusable_db_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --db under a regular file, in a missing directory, a directory, or not SQLite: exit 2."""
    regular = tmp_path / "notes.txt"
    regular.write_text("not a database, and not a directory either\n")
    cases = {
        regular / "c.sqlite": f"{regular} is not a directory",
        tmp_path / "missing" / "c.sqlite": f"directory {tmp_path / 'missing'} does not exist",
        tmp_path: "is a directory",
        regular: "cannot open it as an SQLite database: file is not a database",
    }
    for db, reason in cases.items():
        line = _cannot_start(["--port", "0", "--db", str(db)], capsys)
        assert line == f"eventlog collector: --db {db}: {reason}"
    assert regular.read_text() == "not a database, and not a directory either\n"


class PressCtrlC(io.StringIO):
    """Standard output that presses Ctrl-C (SIGINT) once the collector has said it serves."""

    def write(self, text: str) -> int:
        """Keep ``text``; on the collector's announcement, send SIGINT to this process."""
        written = super().write(text)
        if "\n" in text and "Ctrl-C stops it" in self.getvalue():
            signal.raise_signal(signal.SIGINT)
        return written


class ClosedPipe(io.StringIO):
    """Standard output whose reader has gone, as in ``eventlog collector | head -0``."""

    def write(self, text: str) -> int:
        """Fail as a write to a closed pipe does."""
        raise BrokenPipeError(32, "Broken pipe")


# It serves on a real socket (docs/contributing.md).
@pytest.mark.integration
def test_collector_serves_until_ctrl_c_then_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It announces its URL on stdout; Ctrl-C is a clean stop: one line on stderr, exit 0."""
    out = PressCtrlC()
    monkeypatch.setattr(sys, "stdout", out)
    with pytest.raises(SystemExit) as info:
        main(["collector", "--port", "0", "--db", ":memory:"])
    assert info.value.code == 0
    assert re.fullmatch(
        r"eventlog collector on http://127\.0\.0\.1:\d+ \(database :memory:\); Ctrl-C stops it\n",
        out.getvalue(),
    )
    assert capsys.readouterr().err == "eventlog collector stopped\n"


# It serves on a real socket (docs/contributing.md).
@pytest.mark.integration
def test_collector_failing_otherwise_than_by_ctrl_c_is_no_clean_stop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error other than Ctrl-C propagates (a traceback, exit 1), never "stopped"."""
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    with pytest.RaisesGroup(BrokenPipeError):
        main(["collector", "--port", "0", "--db", ":memory:"])
    assert "stopped" not in capsys.readouterr().err


# -- the package's layout ----------------------------------------------------------


def _module_level_imports(tree: ast.Module) -> Iterator[str]:
    """The modules a module imports when it is imported (not in functions or TYPE_CHECKING)."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_cli_is_a_package_whose_modules_do_not_import_its_root() -> None:
    """Every module of eventlog/_cli/ imports siblings only, never the root: no import cycle."""
    modules = sorted(path.stem for path in CLI.glob("*.py"))
    assert modules == ["__init__", "_collector", "_demo", "_errors", "_output", "_spool", "_types"]
    assert not list((ROOT / "eventlog").glob("_cli_*.py"))
    assert not (ROOT / "eventlog" / "_demo.py").exists()
    root_names = {"eventlog._cli", "eventlog._cli.main", "eventlog._cli.build_parser"}
    for path in CLI.glob("_*.py"):
        if path.name == "__init__.py":
            continue
        imported = set(_module_level_imports(ast.parse(path.read_text())))
        assert not imported & root_names, f"{path.name} imports the package root"


_NO_EXTRAS = """
import sys
# As in a core install: importing any of these raises ImportError.
sys.modules["rich"] = sys.modules["trio"] = sys.modules["hypercorn"] = None
from eventlog._cli import main
for argv in sys.argv[1:]:
    try:
        main(argv.split())
    except SystemExit as exc:
        print("exit", exc.code, flush=True)
"""


def run_without_extras(*commands: str) -> subprocess.CompletedProcess[str]:
    """Run each command line through main() in a process without rich, trio and hypercorn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    return subprocess.run(
        [sys.executable, "-c", _NO_EXTRAS, *commands],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_help_and_version_need_no_extra() -> None:
    """The parser imports without rich, trio and hypercorn: --help and --version work."""
    done = run_without_extras("--help", "--version", "spool ls --help")
    assert done.stderr == ""
    assert done.stdout.count("exit 0") == 3
    assert "usage: eventlog [-h] [--version] COMMAND ..." in done.stdout
    assert f"eventlog {eventlog.__version__}" in done.stdout


def test_collector_and_demo_without_their_extra_say_which_in_one_line() -> None:
    """Without hypercorn, collector and demo print one line naming the extra and exit 1."""
    done = run_without_extras("collector --port 0", "demo --events 1")
    assert done.stdout == "exit 1\nexit 1\n"
    assert done.stderr.splitlines() == [
        f"eventlog: {command} needs the collector extra: pip install 'eventlog-sdk[collector]'"
        for command in ("collector", "demo")
    ]


# -- --help matches docs/cli.md ----------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _documented_usages() -> list[str]:
    """Each ``usage: eventlog ...`` of docs/cli.md, its continuation lines joined."""
    usages: list[str] = []
    within = False
    for line in (ROOT / "docs" / "cli.md").read_text().splitlines():
        if line.startswith("usage: eventlog"):
            usages.append(line)
            within = True
        elif within and line.startswith(" ") and line.strip():
            usages[-1] += " " + line
        else:
            within = False
    return [" ".join(usage.split()) for usage in usages]


def test_usage_lines_of_docs_cli_md_are_those_of_help() -> None:
    """Every command's usage in docs/cli.md is exactly its --help usage (metavars included)."""
    actual = {
        parser.prog: " ".join(parser.format_usage().split()) for parser in _parsers(build_parser())
    }
    documented = _documented_usages()
    by_prog: dict[str, list[str]] = {}
    for usage in documented:
        # The longest program name the usage starts with: "eventlog spool ls" before "eventlog".
        prog = max((p for p in actual if usage.startswith(f"usage: {p} ")), key=len)
        by_prog.setdefault(prog, []).append(usage)
    assert sorted(by_prog) == sorted(actual), "a command without its usage in docs/cli.md"
    for prog, usages in by_prog.items():
        for usage in usages:
            assert usage == actual[prog]
