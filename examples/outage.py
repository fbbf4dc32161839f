"""An application that keeps logging events through a server outage.

Run it with ``python examples/outage.py``. Everything
runs in virtual time under trio's ``MockClock``, so a multi-minute outage takes
well under a second:

* ``eventlog.testing.CapturingTransport`` plays the collector. It answers 503
  to every request in the first ``--outage`` seconds, 200 afterwards.
* Two tasks log ``--events`` events spread over the outage and one more
  minute: one calls ``log.log_event``, the other the module-level
  ``eventlog.log_event``, which finds the same logger through a context
  variable.
* The logger batches, spools what fails to a temporary directory, backs off
  (quadratic, with the default 20 % jitter drawn from a seeded
  ``random.Random``, so every run prints the same timeline) and drains the
  spool once the server answers again.

It prints every POST the fake server received, then what was emitted,
delivered (unique ``event_id`` acknowledged), duplicated and lost, and the
logger's final ``stats``. The exit status is 0 only if nothing was lost.

``--max-attempts`` defaults to unlimited here. With the library default (8)
an event is dropped after its 8th failed POST. Under the quadratic backoff
(0.5 s * failures**2, capped at 30 s) the oldest events, which every probe of
the spool carries, reach 8 failed POSTs about 70 s after the first failure, so
``--max-attempts 8`` with the default 120 s outage shows events being lost
(``stats.dropped_max_attempts`` counts them).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from typing import Final

import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport, FrozenWallClock

# Beyond the outage, how long the app keeps logging (virtual seconds).
TAIL: Final = 60.0
# Upper bound on the wait for the spool to drain before leaving the block (seconds).
SETTLE_LIMIT: Final = 300


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--events``, ``--outage``, ``--max-attempts``, ``--seed``."""
    parser = argparse.ArgumentParser(
        description="Log events through a virtual server outage and report what was delivered."
    )
    parser.add_argument(
        "--events", type=int, default=300, help="events to log in total (default: 300)"
    )
    parser.add_argument(
        "--outage",
        type=float,
        default=120.0,
        help="seconds of 503 answers from the start (default: 120)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        help="Config.max_attempts; default: unlimited (the library's default is 8)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the backoff jitter (default: 1)"
    )
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.outage < 0:
        parser.error("--outage must be 0 or more")
    if args.max_attempts is not None and args.max_attempts < 1:
        parser.error("--max-attempts must be at least 1")
    return args


def settled(stats: eventlog.Stats) -> bool:
    """True once every emitted event is acknowledged or dropped (nothing queued or spooled)."""
    resolved = (
        stats.exported
        + stats.dropped_invalid
        + stats.dropped_max_attempts
        + stats.dropped_permanent
        + stats.dropped_spool_limit
        + stats.dropped_disk_error
    )
    return stats.queue_depth == 0 and resolved == stats.emitted


async def page_views(log: eventlog.EventLogger, count: int, interval: float) -> None:
    """A request handler: one ``page_view`` event per request."""
    for i in range(count):
        log.log_event("page_view", {"page": i % 7, "load_ms": 20.0 + i % 13, "cached": i % 3 == 0})
        await trio.sleep(interval)


async def background_jobs(count: int, interval: float) -> None:
    """A worker that does not hold the logger: it uses the module-level function."""
    for i in range(count):
        eventlog.log_event("job_finished", {"job": i, "duration_s": 0.25 * (i % 5), "ok": True})
        await trio.sleep(interval)


async def run(args: argparse.Namespace) -> int:
    """The app; returns the exit status."""
    n_events: int = args.events
    outage: float = args.outage
    transport = CapturingTransport()  # follows the loop's (virtual) clock
    if outage > 0:
        transport.outage(0.0, outage, status=503)
    duration = outage + TAIL
    views = (n_events + 1) // 2
    jobs = n_events - views

    with tempfile.TemporaryDirectory() as storage_dir:
        config = eventlog.Config(
            base_url="http://127.0.0.1:8787",  # never contacted: the transport answers
            storage_dir=storage_dir,
            service_name="outage-demo",
            service_version=eventlog.__version__,
            max_attempts=args.max_attempts,
        )
        print(
            f"outage: 503 for t in [0, {outage:g}) s; logging {n_events} events over "
            f"{duration:g} s; scheduled_delay={config.scheduled_delay:g} s, "
            f"max_export_batch_size={config.max_export_batch_size}, "
            f"max_attempts={config.max_attempts}"
        )
        async with eventlog.open_event_logger(
            config,
            transport=transport,
            clock=FrozenWallClock(),
            random=random.Random(args.seed),
        ) as log:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(page_views, log, views, duration / max(views, 1))
                nursery.start_soon(background_jobs, jobs, duration / max(jobs, 1))
            await log.flush()
            # Leaving the block exports the queue but neither waits for a backoff
            # timer nor drains the spool: poll (bounded) until the spool is empty.
            for _ in range(SETTLE_LIMIT):
                if settled(log.stats):
                    break
                await trio.sleep(1.0)
            left_at = trio.current_time()
        stats = log.stats

    print(f"\nPOST attempts ({len(transport.requests)}):")
    print(f"  {'t (s)':>8}  status  events")
    for request in transport.requests:
        print(f"  {request.time:8.2f}  {request.status:>6}  {len(request.events):>6}")
    print(f"leaving the logger's block at t={left_at:.2f} s")

    ids = transport.event_ids()
    delivered = len(set(ids))
    duplicates = len(ids) - delivered
    lost = n_events - delivered
    print("\nsummary:")
    print(f"  emitted     {n_events}")
    print(f"  delivered   {delivered}  (unique event_ids acknowledged)")
    print(f"  duplicates  {duplicates}")
    print(f"  lost        {lost}")
    print("\nlog.stats:")
    for name in stats.__struct_fields__:
        print(f"  {name:<24}{getattr(stats, name)}")
    if lost:
        print(f"\nFAIL: {lost} events were not delivered")
        return 1
    print("\nOK: every event was delivered")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the app in virtual time."""
    args = parse_args(argv)
    return trio.run(run, args, clock=trio.testing.MockClock(autojump_threshold=0))


if __name__ == "__main__":
    sys.exit(main())
