"""The command line's parser and entry point, in process."""

from __future__ import annotations

import argparse
import ast
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import eventlog
from eventlog._cli import build_parser, main
from eventlog._cli._errors import is_interrupt

if TYPE_CHECKING:
    from collections.abc import Iterator

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
