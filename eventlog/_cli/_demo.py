"""``eventlog demo``: the whole system on one machine, through an outage.

It starts the reference collector on a free loopback port with its SQLite
database in a temporary directory, makes it answer 503 for ``outage``
seconds, and runs a sample app: several sessions log events at a steady rate
through the outage and after it. The first session stops in the middle of the
outage, as if the app were closed, leaving its undelivered events in the
spool; a restart of it, once the outage is over, replays them. The other
sessions ride the outage out on backoff. A live table shows every session;
the final table compares what was emitted with what the collector stored.

A sample application of the SDK, run by ``eventlog demo``: the command line
only parses its options. Its tables fit 80 columns; when the output is not a
terminal, nothing is wrapped.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from functools import partial
from typing import TYPE_CHECKING, Final, final

import trio
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

import eventlog
from eventlog.collector import Collector, Faults, open_collector

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["run_demo"]

_REFRESH: Final = 0.125
# Wider than any line the demo prints: output that is not a terminal is not wrapped.
_UNWRAPPED: Final = 10_000
_SETTLE_BUDGET: Final = 30.0
_NAMES: Final = ("page_view", "button_click", "search", "checkout")


@final
class _Session:
    """One run of the sample app, as the live table shows it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "waiting"
        self.log: eventlog.EventLogger | None = None
        self.final: eventlog.Stats | None = None

    def stats(self) -> eventlog.Stats:
        if self.log is not None and self.final is None:
            return self.log.stats
        return self.final if self.final is not None else eventlog.Stats()


def _config(collector: Collector, spool: str, session: str) -> eventlog.Config:
    # Short intervals so that the demo shows a whole outage in seconds.
    return eventlog.Config(
        base_url=collector.url,
        storage_dir=spool,
        session_id=session,
        service_name="eventlog-demo",
        service_version=eventlog.__version__,
        scheduled_delay=0.2,
        base_backoff=0.2,
        max_backoff=1.0,
        max_attempts=None,
        shutdown_timeout=2.0,
        enabled=True,  # the demo is about delivery: DO_NOT_TRACK must not empty it
    )


async def _settle(log: eventlog.EventLogger, deadline: float) -> None:
    """Wait until nothing is queued or spooled (or the deadline)."""
    while trio.current_time() < deadline:
        stats = log.stats
        if stats.queue_depth == 0 and stats.spool_bytes == 0:
            return
        await trio.sleep(0.05)


async def _emit(
    session: _Session,
    collector: Collector,
    spool: str,
    count: int,
    duration: float,
    *,
    settle: bool,
    seed: int,
) -> None:
    rng = random.Random(seed)
    async with eventlog.open_event_logger(_config(collector, spool, session.name)) as log:
        session.log = log
        session.state = "running"
        pause = duration / max(count, 1)
        start = trio.current_time()
        for i in range(count):
            log.log_event(rng.choice(_NAMES), {"i": i, "latency_ms": rng.uniform(5, 250)})
            await trio.sleep_until(start + (i + 1) * pause)
        if settle:
            session.state = "draining"
            await _settle(log, trio.current_time() + _SETTLE_BUDGET)
        session.state = "closing"
    session.final = log.stats
    # "closed": the app was closed in the middle of the outage (docs/cli.md).
    session.state = "done" if settle else "closed"


async def _restart(session: _Session, collector: Collector, spool: str, not_before: float) -> None:
    await trio.sleep_until(not_before)
    session.state = "replaying"
    async with eventlog.open_event_logger(_config(collector, spool, session.name)) as log:
        session.log = log
        await trio.sleep(0.1)  # let the replay task take the files over
        await _settle(log, trio.current_time() + _SETTLE_BUDGET)
        session.state = "closing"
    session.final = log.stats
    session.state = "done"


def _row(session: _Session) -> tuple[str, ...]:
    stats = session.stats()
    return (
        session.name,
        session.state,
        str(stats.emitted),
        str(stats.queue_depth),
        str(stats.spooled),
        # Its own events and those an earlier session left behind.
        str(stats.exported + stats.replayed),
        str(stats.export_failures),
    )


def _status(collector: Collector) -> tuple[str, str]:
    left = collector.faults.outage_left()
    outage = f"outage: {left:.1f}s left" if left > 0 else "outage: over"
    ingest = collector.stats
    return (
        f"collector {collector.url}  {outage}",
        f"stored {ingest.stored}  duplicates {ingest.duplicates}  refused {ingest.faulted}",
    )


def _board(rows: Sequence[Sequence[str]], status: Sequence[str]) -> Group:
    """The live table: short headers and states, no borders but the header's, for 80 columns."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("session", "state", "emitted", "queued", "spooled", "sent", "retries"):
        table.add_column(
            column, justify="left" if column in ("session", "state") else "right", no_wrap=True
        )
    for row in rows:
        table.add_row(*row)
    return Group(*(Text(line) for line in status), table)


def _live_table(sessions: list[_Session], collector: Collector) -> Group:
    return _board([_row(session) for session in sessions], _status(collector))


def _verdict(console: Console, emitted: int, stored: int, duplicates: int, kept: str | None) -> int:
    """Print the result table and the verdict; 0 only if no event was lost."""
    lost = emitted - stored
    summary = Table()
    summary.add_column("", justify="left")
    summary.add_column("events", justify="right")
    for label, value in (
        ("emitted", emitted),
        ("delivered", stored),
        ("duplicates", duplicates),
        ("lost", lost),
    ):
        summary.add_row(label, str(value))
    console.print("Result, from the collector's database:")
    console.print(summary)
    if kept is not None:
        # A path is a token: on a line of its own rather than cut when it is too long.
        line = f"database kept: {kept}"
        if len(line) <= console.width:
            console.print(line, soft_wrap=True, highlight=False)
        else:
            console.print("database kept:")
            console.print(kept, soft_wrap=True, highlight=False)
    if lost:
        console.print(f"[bold red]FAILED[/]: {lost} events were lost")
        return 1
    console.print("[bold green]OK[/]: every event was delivered")
    return 0


async def _demo(
    events: int, outage: float, sessions: int, workdir: str, console: Console
) -> tuple[int, int, int]:
    """Run the demo; ``(emitted, stored, duplicates)``."""
    spool = os.path.join(workdir, "spool")
    faults = Faults(outage_until=trio.current_time() + outage)
    async with open_collector(db=os.path.join(workdir, "collector.sqlite"), faults=faults) as c:
        duration = outage + 1.5
        apps = [_Session(f"session-{n + 1}") for n in range(sessions)]
        board = list(apps)
        shares = [events // sessions + (1 if n < events % sessions else 0) for n in range(sessions)]
        with Live(_live_table(board, c), console=console, refresh_per_second=8) as live:

            async def refresh() -> None:
                while True:
                    live.update(_live_table(board, c))
                    await trio.sleep(_REFRESH)

            async with trio.open_nursery() as display:
                display.start_soon(refresh)
                async with trio.open_nursery() as nursery:
                    for n, (session, share) in enumerate(zip(apps, shares, strict=True)):
                        # Session 1 is closed halfway through the outage (when there
                        # is one and other sessions go on), then restarted after it.
                        closes_early = n == 0 and sessions > 1 and outage > 0
                        nursery.start_soon(
                            partial(
                                _emit,
                                session,
                                c,
                                spool,
                                share,
                                outage / 2 if closes_early else duration,
                                settle=not closes_early,
                                seed=n,
                            )
                        )
                        if closes_early:
                            restart = _Session(f"{session.name}-restart")
                            board.append(restart)
                            nursery.start_soon(
                                _restart, restart, c, spool, trio.current_time() + outage + 0.2
                            )
                display.cancel_scope.cancel()
            live.update(_live_table(board, c))
        console.line()
        emitted = sum(s.stats().emitted for s in apps)
        return emitted, await c.count(), c.stats.duplicates


def run_demo(*, events: int, outage: float, sessions: int, keep: bool) -> int:
    """Run the demo and print its verdict; 0 only if no event was lost."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=_UNWRAPPED)
    workdir = tempfile.mkdtemp(prefix="eventlog-demo-")
    try:
        emitted, stored, duplicates = trio.run(_demo, events, outage, sessions, workdir, console)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    kept = os.path.join(workdir, "collector.sqlite") if keep else None
    return _verdict(console, emitted, stored, duplicates, kept)
