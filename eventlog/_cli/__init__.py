"""The ``eventlog`` command line (``eventlog ...`` or ``python -m eventlog ...``).

Its boundary: presentation only. These modules parse arguments, print rich
or plain text and choose exit statuses; what the commands do is library code
they call: the spool administration of :mod:`eventlog._spool._admin`,
:mod:`eventlog.collector`, and the demo's run function (:mod:`._demo`, a
sample application of the SDK). Nothing here reads, locks or parses a spool
file.

Commands::

    eventlog --version
    eventlog collector [--host HOST] [--port PORT] [--db PATH] [faults...]
    eventlog demo [--events N] [--outage SECONDS] [--sessions K] [--keep]
    eventlog spool ls|show|replay|purge [--dir PATH | --service NAME]

Modules: this one (the parser, :func:`main`), :mod:`._spool` (the spool
commands), :mod:`._collector`, :mod:`._demo`, :mod:`._types` (argument value
types), :mod:`._output` (rich or plain text, fitted to the terminal),
:mod:`._errors` (Ctrl-C). None of them imports this one, so there is no
import cycle. The parser and the spool commands need neither rich nor trio
(the core install); ``collector`` and ``demo`` need the ``collector`` extra
and are imported only when run.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

from eventlog._cli._errors import is_interrupt
from eventlog._cli._spool import add_spool_parser
from eventlog._cli._types import fault_seconds, port, positive_int, rate, status
from eventlog._cli._types import non_negative_seconds as seconds
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
    # The metavars are those of docs/cli.md, which a test holds them to.
    collector.add_argument(
        "--host", metavar="HOST", default="127.0.0.1", help="address to bind (127.0.0.1)"
    )
    collector.add_argument(
        "--port", metavar="PORT", type=port, default=8787, help="port to bind (8787; 0: any)"
    )
    collector.add_argument(
        "--db",
        metavar="PATH",
        default="eventlog-collector.sqlite",
        help="SQLite file (eventlog-collector.sqlite)",
    )
    collector.add_argument(
        "--max-body",
        metavar="BYTES",
        type=positive_int,
        default=10 * 1024 * 1024,
        help="largest body (10485760)",
    )
    collector.add_argument(
        "--outage",
        metavar="SECONDS",
        type=fault_seconds,
        default=0.0,
        help="answer 503 for SECONDS after start",
    )
    collector.add_argument(
        "--retry-after",
        metavar="SECONDS",
        type=fault_seconds,
        default=None,
        help="Retry-After sent during an outage",
    )
    collector.add_argument(
        "--fail-rate", metavar="P", type=rate, default=0.0, help="probability that a batch fails"
    )
    collector.add_argument(
        "--fail-status",
        metavar="CODE",
        type=status,
        default=503,
        help="status of random failures (503)",
    )
    collector.add_argument(
        "--latency",
        metavar="SECONDS",
        type=fault_seconds,
        default=0.0,
        help="seconds before every batch answer",
    )
    collector.add_argument(
        "--require-token",
        metavar="TOKEN",
        default=None,
        help="answer 401 without 'Authorization: Bearer TOKEN'",
    )
    collector.add_argument(
        "--seed", metavar="N", type=int, default=None, help="seed of --fail-rate draws"
    )
    collector.set_defaults(func=_run_collector)

    demo = commands.add_parser(
        "demo", help="run a sample app through an outage against an embedded collector"
    )
    demo.add_argument(
        "--events", metavar="N", type=positive_int, default=3000, help="events to log (3000)"
    )
    demo.add_argument(
        "--outage", metavar="SECONDS", type=seconds, default=3.0, help="seconds of outage (3)"
    )
    demo.add_argument(
        "--sessions", metavar="K", type=positive_int, default=3, help="app sessions (3)"
    )
    demo.add_argument("--keep", action="store_true", help="keep the database; print its path")
    demo.set_defaults(func=_run_demo)

    add_spool_parser(commands)
    return parser


def _run_collector(args: argparse.Namespace) -> int:
    from eventlog._cli._collector import serve_collector

    return serve_collector(args)


def _run_demo(args: argparse.Namespace) -> int:
    from eventlog._cli._demo import run_demo

    return run_demo(events=args.events, outage=args.outage, sessions=args.sessions, keep=args.keep)


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
        # The spool commands need neither rich nor trio: a missing module there is a bug.
        if args.command in ("collector", "demo") and exc.name in ("hypercorn", "rich", "trio"):
            print(
                f"eventlog: {args.command} needs the collector extra: "
                "pip install 'eventlog-sdk[collector]'",
                file=sys.stderr,
            )
            status = 1
        else:
            raise
    sys.exit(status)
