"""The ``eventlog`` command line (``eventlog ...`` or ``python -m eventlog ...``).

Commands::

    eventlog --version
    eventlog collector [--host H] [--port P] [--db PATH] [faults...]
    eventlog demo [--events N] [--outage S] [--sessions K] [--keep]
    eventlog spool ls|show|replay|purge [--dir PATH]

The collector, the demo and the spool commands' display need the
``collector`` extra (hypercorn, rich).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

from eventlog._cli_types import fault_seconds, port, positive_int, rate, status
from eventlog._cli_types import non_negative_seconds as seconds
from eventlog._version import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="eventlog", description="eventlog: collector, demo and spool tools."
    )
    parser.add_argument(
        "--version", action="version", version=f"eventlog {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    collector = commands.add_parser(
        "collector", help="run the reference collector (SQLite, fault injection)"
    )
    collector.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    collector.add_argument("--port", type=port, default=8787, help="port to bind (8787; 0: any)")
    collector.add_argument(
        "--db", default="eventlog-collector.sqlite", help="SQLite file (eventlog-collector.sqlite)"
    )
    collector.add_argument(
        "--max-body", type=positive_int, default=10 * 1024 * 1024, help="largest body, bytes"
    )
    collector.add_argument(
        "--outage",
        type=fault_seconds,
        default=0.0,
        help="answer 503 for SECONDS after start",
    )
    collector.add_argument(
        "--retry-after",
        type=fault_seconds,
        default=None,
        help="Retry-After sent during an outage",
    )
    collector.add_argument(
        "--fail-rate", type=rate, default=0.0, help="probability that a batch fails"
    )
    collector.add_argument(
        "--fail-status", type=status, default=503, help="status of random failures (503)"
    )
    collector.add_argument(
        "--latency",
        type=fault_seconds,
        default=0.0,
        help="seconds before every batch answer",
    )
    collector.add_argument(
        "--require-token", default=None, help="answer 401 without 'Authorization: Bearer TOKEN'"
    )
    collector.add_argument("--seed", type=int, default=None, help="seed of --fail-rate draws")
    collector.set_defaults(func=_run_collector)

    demo = commands.add_parser(
        "demo", help="run a sample app through an outage against an embedded collector"
    )
    demo.add_argument("--events", type=positive_int, default=3000, help="events to log (3000)")
    demo.add_argument("--outage", type=seconds, default=3.0, help="seconds of collector outage (3)")
    demo.add_argument("--sessions", type=positive_int, default=3, help="app sessions (3)")
    demo.add_argument("--keep", action="store_true", help="keep the database; print its path")
    demo.set_defaults(func=_run_demo)

    from eventlog._cli_spool import add_spool_parser

    add_spool_parser(commands)
    return parser


def _run_collector(args: argparse.Namespace) -> int:
    from eventlog._cli_collector import serve_collector

    return serve_collector(args)


def _run_demo(args: argparse.Namespace) -> int:
    from eventlog._demo import run_demo

    return run_demo(events=args.events, outage=args.outage, sessions=args.sessions, keep=args.keep)


def is_interrupt(exc: BaseException) -> bool:
    """True for a KeyboardInterrupt, also inside the exception groups trio raises."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_interrupt(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``eventlog`` console script and ``python -m eventlog``."""
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except BaseExceptionGroup as group:
        if not is_interrupt(group):
            raise
        status = 130
    except KeyboardInterrupt:
        status = 130
    except ModuleNotFoundError as exc:
        if exc.name in ("hypercorn", "rich", "trio"):
            print(
                f"eventlog: {args.command} needs the collector extra: "
                "pip install 'eventlog-sdk[collector]'",
                file=sys.stderr,
            )
            status = 1
        else:
            raise
    sys.exit(status)
