"""``eventlog collector``: serve the reference collector until interrupted."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import trio

from eventlog._cli import is_interrupt
from eventlog.collector import Faults, open_collector

if TYPE_CHECKING:
    import argparse

__all__ = ["serve_collector"]


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
    async with open_collector(
        host=args.host, port=args.port, db=args.db, faults=faults, max_body=args.max_body
    ) as collector:
        print(
            f"eventlog collector on {collector.url} (database {args.db}); Ctrl-C stops it",
            flush=True,
        )
        await trio.sleep_forever()


def serve_collector(args: argparse.Namespace) -> int:
    """Run until Ctrl-C; 0 on a clean stop."""
    try:
        trio.run(_serve, args)
    except BaseException as exc:
        # Ctrl-C reaches us as a KeyboardInterrupt wrapped in the exception
        # group of the server's nursery.
        if not is_interrupt(exc):
            raise
    print("eventlog collector stopped", file=sys.stderr)
    return 0
