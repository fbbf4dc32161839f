"""``eventlog collector``: serve the reference collector until interrupted."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from typing import TYPE_CHECKING

import trio

from eventlog._cli._errors import is_interrupt
from eventlog.collector import Faults, open_collector

if TYPE_CHECKING:
    import argparse

__all__ = ["serve_collector"]


class _CannotStart(Exception):
    """The collector could not start; the message says why, in one line."""


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _db_problem(db: str) -> str | None:
    """Why ``db`` cannot be the database, when that shows before opening it."""
    if db == ":memory:":
        return None
    if os.path.isdir(db):
        return f"--db {db}: is a directory"
    parent = os.path.dirname(os.path.abspath(db))
    if not os.path.exists(parent):
        return f"--db {db}: directory {parent} does not exist"
    if not os.path.isdir(parent):
        return f"--db {db}: {parent} is not a directory"
    return None


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults(
        outage_until=trio.current_time() + args.outage,
        retry_after=args.retry_after,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
        latency=args.latency,
        require_token=args.require_token,
        seed=args.seed,
    )
    async with contextlib.AsyncExitStack() as stack:
        try:
            collector = await stack.enter_async_context(
                open_collector(
                    host=args.host,
                    port=args.port,
                    db=args.db,
                    faults=faults,
                    max_body=args.max_body,
                )
            )
        except sqlite3.Error as exc:
            raise _CannotStart(
                f"--db {args.db}: cannot open it as an SQLite database: {exc}"
            ) from None
        except OSError as exc:
            # open_collector's documented error for an address it cannot bind.
            reason = exc.strerror or str(exc)
            raise _CannotStart(
                f"cannot listen on {_address(args.host, args.port)}: {reason}"
            ) from None
        print(
            f"eventlog collector on {collector.url} (database {args.db}); Ctrl-C stops it",
            flush=True,
        )
        await trio.sleep_forever()


def serve_collector(args: argparse.Namespace) -> int:
    """Run until Ctrl-C; 0 on a clean stop, 2 (after one line on stderr) if it cannot start."""
    problem = _db_problem(args.db)
    if problem is None:
        try:
            trio.run(_serve, args)
        except _CannotStart as exc:
            problem = str(exc)
        except BaseException as exc:
            # Ctrl-C reaches us as a KeyboardInterrupt wrapped in the exception
            # group of the server's nursery.
            if not is_interrupt(exc):
                raise
    if problem is not None:
        print(f"eventlog collector: {problem}", file=sys.stderr)
        return 2
    print("eventlog collector stopped", file=sys.stderr)
    return 0
