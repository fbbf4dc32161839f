"""End-to-end delivery: from ``log_event`` to a real HTTP server on loopback.

Run with ``python -m benchmarks e2e [--quick]`` (or as part of ``python -m
benchmarks``, ``nox -s bench``). The server is ``benchmarks/sink.py``, a
minimal HTTP/1.1 sink in a process of its own that counts distinct event ids;
two run side by side, one answering at once and one 50 ms late. Every
scenario runs in a fresh process of its own (``python -m benchmarks.e2e
--child KIND``), so its CPU time and peak RSS are its own, with the default
:class:`eventlog.Config` except what the scenario names (``base_url``, a
temporary ``storage_dir``, ``service_name``, and for the bursts
``max_queue_size=131072``, so the queue can hold the whole burst); the
environment's ``EVENTLOG_*``, ``OTEL_*`` and ``DO_NOT_TRACK`` variables are
removed. Each figure is printed next to a floor or a baseline measured in
the same run. The bursts and their baseline run ``REPEATS`` times (once with
``--quick``), interleaved (floor, SDK, baseline, floor, SDK, ...), and each of
their figures is the median over the runs: on a shared machine a single run
varies by half. The steady runs are long enough to run once, but for their
baseline, which runs before, between and after them.

1. **sink capacity**: a raw-socket client posts SDK-shaped batches over one
   keep-alive connection, so the sink is shown not to be the bottleneck.
2. **burst**: ``BURST_EVENTS`` calls of ``log.log_event("bench", {5 numeric
   fields})`` in a plain loop, then the block exits (default
   ``shutdown_timeout``). Measured: events per second from the first call to
   the moment the sink held the last event, whether all were at the sink when
   the block exited, CPU seconds and peak RSS of the process, the logger's
   stats. The floor, in a process of the same shape: a deque of ``(name,
   metadata, time.time())`` tuples appended in the loop, then popped 200 at a
   time, ``msgspec.json.encode`` of small dict envelopes, one ``httpx`` POST
   per 200, one at a time.
3. **steady**: ``STEADY_RATE`` events per second, spread evenly (every
   millisecond, as many as are due), for ``STEADY_SECONDS``; then the block
   exits. Measured: delivered, dropped, spooled, shutdown seconds, CPU per
   event above the baseline (below). The floor sends a POST whenever 200 are
   queued. Once more with ``write_ahead=True``.
4. **latency**: the burst and the steady run against the sink that answers
   50 ms late (where concurrent exports matter).
5. **host impact**: in every scenario a trio task sleeps 1 ms in a loop and
   records how late it wakes (for a burst, only after the loop, which blocks
   the event loop by itself). The baselines run the same ticker and the same
   emitter appending to a deque instead of logging, with no logger.
6. **stages**: in one process, the cost per event of each stage of an
   export (transform of a chunk of 200, body join, POST to the sink) next to
   the floor's (``msgspec.json.encode``, POST).
7. **spool** (issue 11): ``SPOOL_RATE`` events per second, spread evenly,
   with real threads and a real disk, each scenario next to a host-impact
   baseline measured in the same run (the ticker and the emitter with a
   deque, no logger, at the same rate, run before, between and after them):
   an *outage* (a third sink answers 503) up to and past ``max_spool_bytes``
   (``OUTAGE_CAP``); *write-ahead* against the healthy sink (a run of its
   own at this rate); the *replay* of an earlier run's log of
   ``REPLAY_EVENTS`` events (segment lines written as the spool writes them)
   by a logger (``batch_delay=0``, ``max_spool_bytes=REPLAY_SPOOL_BYTES``)
   that keeps emitting until the last of them is acknowledged, its peak RSS
   next to the same emitter's in a logger with nothing to replay;
   a *full disk* (``storage_dir`` on a tmpfs of ``FULL_DISK_SIZE``, mounted
   for the run; the server answers 503, so the spool must write); and a
   *startup* with ``LEFTOVER_LOGS`` earlier logs of ``LEFTOVER_BYTES`` each
   (the server healthy, the takeover and the replay under way). The spool's
   file operations are counted (a :class:`~eventlog._spool.FileOps` that
   counts and calls the real one), to show how often it writes.
8. **cheap start**: in a fresh process, the time from entering
   ``open_event_logger`` (empty storage directory) to the block's body, and
   the ticker from then until ``START_SECONDS`` later, next to the same
   ticker with no logger.

Benchmarks are not tests: whatever they measure, they exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import httpx
import msgspec
import trio

import eventlog
from benchmarks.sink import BATCH_PATH, Counts
from benchmarks.spool import write_earlier_log
from eventlog import _seams
from eventlog._spool import FileOps

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["main", "run"]

BURST_EVENTS: Final = 100_000
BURST_QUEUE_SIZE: Final = 131_072
STEADY_RATE: Final = 10_000
STEADY_SECONDS: Final = 15.0
LATENCY: Final = 0.05
FLOOR_BATCH: Final = 200
TICK: Final = 0.001
IDLE_SECONDS: Final = 3.0
"""How long the burst baseline's ticker runs after its loop."""
NAME: Final = "bench"
PATH: Final = BATCH_PATH.decode()

REPEATS: Final = 3
"""Runs of each burst scenario and of the steady baseline; figures are their medians."""
QUICK_BURST_EVENTS: Final = 20_000
QUICK_STEADY_SECONDS: Final = 3.0
QUICK_IDLE_SECONDS: Final = 1.0
QUICK_REPEATS: Final = 1

# Targets (issue 10): benchmark figures, not timed tests.
BURST_RATE_TARGET: Final = 0.5
"""End-to-end burst rate at least this times the floor's."""
RSS_TARGET: Final = 1.5
"""Peak RSS of a burst at most this times the floor's."""
SHUTDOWN_TARGET: Final = 0.5
"""Seconds the block exit of a steady run may take."""
TICK_MAX_SLACK: Final = 0.010
TICK_P99_SLACK: Final = 0.001
CPU_BEFORE_RATIO: Final = 4.5
"""Background CPU per event of the SDK over the floor's, before the pipeline
rewrite (issue 10: ~41 µs against the floor's 9); the target is a third of it."""
CPU_TARGET_RATIO: Final = CPU_BEFORE_RATIO / 3
SINK_MARGIN: Final = 2.0
"""The sink must ingest at least this times the floor's burst rate."""

# The spool scenarios (issue 11).
SPOOL_RATE: Final = 5_000
SPOOL_SECONDS: Final = 10.0
QUICK_SPOOL_SECONDS: Final = 4.0
OUTAGE_CAP: Final = 16 << 20
"""``max_spool_bytes`` of the outage: four segments of 4 MiB, passed after about 5 s."""
QUICK_OUTAGE_CAP: Final = 8 << 20
REPLAY_EVENTS: Final = 200_000
QUICK_REPLAY_EVENTS: Final = 40_000
REPLAY_SPOOL_BYTES: Final = 256 << 20
"""``max_spool_bytes`` of the replay: the default (64 MiB) would trim a log of
200,000 SDK-sized events (~125 MiB) at takeover."""
REPLAY_LIMIT: Final = 60.0
"""Seconds the replay scenario waits for the last earlier event."""
QUICK_REPLAY_LIMIT: Final = 30.0
LEFTOVER_LOGS: Final = 20
LEFTOVER_BYTES: Final = 20 << 20
QUICK_LEFTOVER_BYTES: Final = 2 << 20
STARTUP_SECONDS: Final = 5.0
QUICK_STARTUP_SECONDS: Final = 2.0
FULL_DISK_SIZE: Final = "256k"
START_SECONDS: Final = 1.0
"""How long the cheap start's ticker runs after the block's body begins."""
WATCH_INTERVAL: Final = 0.01
"""How often the spool scenarios read ``log.stats``."""
REPLAY_RATE_TARGET: Final = 50_000
REPLAY_RSS_SLACK: Final = 64 << 20
OPEN_TARGET: Final = 0.010
"""Seconds from entering ``open_event_logger`` to the block's body (issue 10)."""
FAILED_WRITES_TARGET: Final = 1.0
FAILED_WRITES_PER: Final = 10.0
"""On a full disk, at most one failed spool write per ten chunks spooled: the
writes are retried on a backoff (1, 2, 4 ... s), not once per export."""

_STRIPPED_ENV: Final = ("EVENTLOG_", "OTEL_", "DO_NOT_TRACK")
_HEADERS: Final = {"content-type": "application/json"}


def _metadata(i: int) -> dict[str, int | float | bool | None]:
    return {"a": 1, "b": 2.5, "c": True, "d": i, "e": 0.25}


def _raw_metadata(i: int) -> dict[object, object]:
    """The metadata as ``log_event`` keeps it (its own copy, typed loosely)."""
    return {"a": 1, "b": 2.5, "c": True, "d": i, "e": 0.25}


# --- what a child reports ----------------------------------------------------------


class TickerReport(msgspec.Struct):
    """Lateness of a 1 ms sleep loop, in seconds."""

    samples: int
    max: float
    p99: float
    max_at: float = 0.0
    """When the latest wake-up's sleep began, in seconds after recording began."""
    over_slack: int = 0
    """Wake-ups later than ``TICK_MAX_SLACK``."""


class Stages(msgspec.Struct):
    """Wall (and CPU) seconds per event of each stage, or why they are missing."""

    transform: float | None = None
    join: float | None = None
    sdk_post: float | None = None
    sdk_post_cpu: float | None = None
    floor_encode: float | None = None
    floor_post: float | None = None
    floor_post_cpu: float | None = None
    sdk_body_bytes: int = 0
    floor_body_bytes: int = 0
    error: str | None = None


class Result(msgspec.Struct, kw_only=True):
    """What one scenario's process measured, printed as JSON on its last line."""

    kind: str
    events: int = 0
    """Events the scenario emitted."""
    at_exit: int = 0
    """Distinct events at the sink when the block exited (the floor: its last POST)."""
    delivered: int = 0
    """Distinct events at the sink once it stopped receiving."""
    requests: int = 0
    started_at: float = 0.0
    """``time.monotonic()`` of the first emitted event."""
    deliver_seconds: float | None = None
    """From the first emitted event to the sink receiving its last new event."""
    emit_seconds: float = 0.0
    exit_seconds: float = 0.0
    """Leaving the logger's block (the floor: sending what was queued at the end)."""
    cpu_seconds: float = 0.0
    """CPU of the process from the first event to the exit."""
    cpu_after_emit: float = 0.0
    """CPU of the process from the end of the burst loop to the exit."""
    peak_rss: int = 0
    rss_before: int = 0
    stats: dict[str, int] = msgspec.field(default_factory=dict)
    ticker: TickerReport | None = None
    stages: Stages | None = None
    earlier: int = 0
    """Earlier runs' events in the storage directory when the logger opened."""
    open_seconds: float | None = None
    """From entering ``open_event_logger`` to the block's body."""
    takeover_seconds: float | None = None
    """From entering ``open_event_logger`` to the last change of ``stats.taken_over``."""
    replay_seconds: float | None = None
    """From entering ``open_event_logger`` until ``stats.replayed`` reached ``earlier``."""
    spool_bytes_max: int = 0
    """The largest ``stats.spool_bytes`` seen while the block ran."""
    spool_problem: str | None = None
    """``stats.spool_disabled`` at the end."""
    refused: int = 0
    """POSTs the sink refused (it answers 503 in an outage)."""
    file_ops: dict[str, int] = msgspec.field(default_factory=dict)
    """The spool's file operations, counted: segment and journal writes, failed ones, fsyncs."""
    error: str | None = None


# --- the child side ------------------------------------------------------------------


def _rss_now() -> int:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss() -> int:
    """Peak RSS of this process, in bytes.

    VmHWM, not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the
    peak of the address space it was forked or spawned from (the parent here
    reaches hundreds of MiB in the in-process benchmarks), while VmHWM
    belongs to the program's own address space.
    """
    try:
        with open("/proc/self/status", "rb") as file:
            for line in file:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


@final
class Ticker:
    """A task sleeping ``TICK`` in a loop, recording how late each wake-up is."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.since = math.inf
        """Sleeps started before this trio time are not recorded."""
        self._worst = -math.inf
        self._worst_at = 0.0

    async def run(self) -> None:
        lateness = self.lateness
        while True:
            start = trio.current_time()
            await trio.sleep(TICK)
            if start >= self.since:
                late = trio.current_time() - start - TICK
                lateness.append(late)
                if late > self._worst:
                    self._worst, self._worst_at = late, start - self.since

    def report(self) -> TickerReport:
        ordered = sorted(self.lateness)
        if not ordered:
            return TickerReport(samples=0, max=0.0, p99=0.0)
        p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        return TickerReport(
            samples=len(ordered),
            max=ordered[-1],
            p99=p99,
            max_at=self._worst_at,
            over_slack=sum(1 for late in ordered if late > TICK_MAX_SLACK),
        )


async def _emit_steady(
    emit: Callable[[str, dict[str, int | float | bool | None]], object],
    rate: int,
    seconds: float,
    after_tick: Callable[[], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> int:
    """Emit ``rate`` events per second for ``seconds`` (or until ``until()``), catching up."""
    total = int(rate * seconds)
    start = trio.current_time()
    sent = 0
    while sent < total:
        due = min(total, int((trio.current_time() - start) * rate))
        while sent < due:
            emit(NAME, _metadata(sent))
            sent += 1
        if after_tick is not None:
            after_tick()
        if until is not None and until():
            break
        if sent < total:
            await trio.sleep(TICK)
    return sent


async def _counts(client: httpx.AsyncClient) -> Counts:
    response = await client.get("/count")
    return msgspec.json.decode(response.content, type=Counts)


async def _settled(client: httpx.AsyncClient, expected: int) -> Counts:
    """The sink's counts once they stop changing (or all ``expected`` are there)."""
    counts = await _counts(client)
    quiet_since = trio.current_time()
    with trio.move_on_after(10):
        while counts.distinct < expected and trio.current_time() - quiet_since < 0.3:
            await trio.sleep(0.05)
            latest = await _counts(client)
            if latest.distinct != counts.distinct:
                quiet_since = trio.current_time()
            counts = latest
    return counts


def _sdk_config(
    sink: str, storage_dir: str, *, max_queue_size: int | None = None, write_ahead: bool = False
) -> eventlog.Config:
    """The default configuration but for what the scenario needs."""
    config = eventlog.Config(
        base_url=sink, storage_dir=storage_dir, service_name="bench", write_ahead=write_ahead
    )
    if max_queue_size is not None:
        config = msgspec.structs.replace(config, max_queue_size=max_queue_size)
    return config


def _int_stats(stats: eventlog.Stats) -> dict[str, int]:
    return {
        name: value
        for name, value in msgspec.structs.asdict(stats).items()
        if isinstance(value, int) and not isinstance(value, bool)
    }


def _floor_body(prefix: str, first: int, chunk: list[tuple[str, object, float]]) -> bytes:
    """The floor's POST body: small dict envelopes, encoded by msgspec in one call."""
    return msgspec.json.encode(
        {
            "events": [
                {
                    "event_data": {
                        "event_id": f"{prefix}{first + i:012x}",
                        "event_name": name,
                        "client_timestamp": wall,
                        "metadata": metadata,
                    }
                }
                for i, (name, metadata, wall) in enumerate(chunk)
            ]
        }
    )


@final
class _FloorSender:
    """The hand-written floor's export: 200 at a time, one POST after the other."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.queue: deque[tuple[str, object, float]] = deque()
        self._client = client
        self._prefix = secrets.token_hex(10)
        self._sent = 0
        self.failures = 0

    def append(self, name: str, metadata: dict[str, int | float | bool | None]) -> None:
        self.queue.append((name, metadata, time.time()))

    async def send(self, *, all_of_it: bool) -> None:
        """POST chunks of 200 while 200 are queued (or anything is, ``all_of_it``)."""
        queue = self.queue
        popleft = queue.popleft
        while len(queue) >= FLOOR_BATCH or (all_of_it and queue):
            chunk = [popleft() for _ in range(min(FLOOR_BATCH, len(queue)))]
            body = _floor_body(self._prefix, self._sent, chunk)
            self._sent += len(chunk)
            response = await self._client.post(PATH, content=body, headers=_HEADERS)
            if response.status_code != 200:
                self.failures += 1


async def _with_ticker(
    body: Callable[[Ticker, httpx.AsyncClient], Awaitable[Result]], args: argparse.Namespace
) -> Result:
    """Run ``body`` next to a ticker (unless ``--no-ticker``), then count at the sink.

    The ticker costs CPU of its own (a thousand wake-ups a second), so the
    runs whose CPU is compared go without it.
    """
    ticker = Ticker()
    async with httpx.AsyncClient(base_url=args.sink, timeout=30) as probe:
        await probe.post("/reset")
        async with trio.open_nursery() as nursery:
            if not args.no_ticker:
                nursery.start_soon(ticker.run)
            result = await body(ticker, probe)
            nursery.cancel_scope.cancel()
        if not args.no_ticker:
            result.ticker = ticker.report()
        counts = await _settled(probe, result.events + result.earlier)
    result.delivered = counts.distinct
    result.requests = counts.requests
    result.refused = counts.refused
    if counts.last_new_at is not None and result.events:
        # The sink's clock is the system-wide monotonic clock too (Linux).
        result.deliver_seconds = counts.last_new_at - result.started_at
    result.peak_rss = _peak_rss()
    return result


def _burst_sdk(args: argparse.Namespace, storage_dir: str) -> Result:
    n: int = args.events

    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        config = _sdk_config(args.sink, storage_dir, max_queue_size=BURST_QUEUE_SIZE)
        result = Result(kind="burst-sdk", events=n, rss_before=_rss_now())
        async with eventlog.open_event_logger(config) as log:
            log_event = log.log_event
            cpu0 = time.process_time()
            t0 = time.monotonic()
            for i in range(n):
                log_event(NAME, {"a": 1, "b": 2.5, "c": True, "d": i, "e": 0.25})
            t_loop = time.monotonic()
            cpu_loop = time.process_time()
            ticker.since = trio.current_time()
        t_exit = time.monotonic()
        cpu_exit = time.process_time()
        result.at_exit = (await _counts(probe)).distinct
        result.stats = _int_stats(log.stats)
        result.emit_seconds = t_loop - t0
        result.exit_seconds = t_exit - t_loop
        result.cpu_seconds = cpu_exit - cpu0
        result.cpu_after_emit = cpu_exit - cpu_loop
        result.started_at = t0
        return result

    return trio.run(_with_ticker, body, args)


def _burst_floor(args: argparse.Namespace, kind: str) -> Result:
    n: int = args.events
    idle = kind == "burst-idle"

    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        result = Result(kind=kind, events=0 if idle else n, rss_before=_rss_now())
        async with httpx.AsyncClient(base_url=args.sink, timeout=30) as client:
            floor = _FloorSender(client)
            append = floor.queue.append
            now = time.time
            cpu0 = time.process_time()
            t0 = time.monotonic()
            for i in range(n):
                append((NAME, {"a": 1, "b": 2.5, "c": True, "d": i, "e": 0.25}, now()))
            t_loop = time.monotonic()
            cpu_loop = time.process_time()
            ticker.since = trio.current_time()
            if idle:
                await trio.sleep(args.idle_seconds)
            else:
                await floor.send(all_of_it=True)
            t_exit = time.monotonic()
            cpu_exit = time.process_time()
        result.at_exit = (await _counts(probe)).distinct
        result.emit_seconds = t_loop - t0
        result.exit_seconds = t_exit - t_loop
        result.cpu_seconds = cpu_exit - cpu0
        result.cpu_after_emit = cpu_exit - cpu_loop
        result.started_at = t0
        if floor.failures:
            result.error = f"{floor.failures} POSTs failed"
        return result

    return trio.run(_with_ticker, body, args)


def _steady_sdk(args: argparse.Namespace, storage_dir: str, kind: str) -> Result:
    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        config = _sdk_config(args.sink, storage_dir, write_ahead=kind == "steady-wa")
        result = Result(kind=kind, rss_before=_rss_now())
        async with eventlog.open_event_logger(config) as log:
            cpu0 = time.process_time()
            t0 = time.monotonic()
            ticker.since = trio.current_time()
            result.events = await _emit_steady(log.log_event, args.rate, args.seconds)
            t_loop = time.monotonic()
            cpu_loop = time.process_time()
        t_exit = time.monotonic()
        cpu_exit = time.process_time()
        result.at_exit = (await _counts(probe)).distinct
        result.stats = _int_stats(log.stats)
        result.emit_seconds = t_loop - t0
        result.exit_seconds = t_exit - t_loop
        result.cpu_seconds = cpu_exit - cpu0
        result.cpu_after_emit = cpu_exit - cpu_loop
        result.started_at = t0
        return result

    return trio.run(_with_ticker, body, args)


def _steady_floor(args: argparse.Namespace, kind: str) -> Result:
    idle = kind == "steady-idle"

    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        result = Result(kind=kind, rss_before=_rss_now())
        async with httpx.AsyncClient(base_url=args.sink, timeout=30) as client:
            floor = _FloorSender(client)
            ready = trio.Event()
            done = False

            def after_tick() -> None:
                if len(floor.queue) >= FLOOR_BATCH:
                    ready.set()

            async def sender() -> None:
                nonlocal ready
                while not done:
                    await ready.wait()
                    ready = trio.Event()
                    await floor.send(all_of_it=False)

            cpu0 = time.process_time()
            t0 = time.monotonic()
            ticker.since = trio.current_time()
            async with trio.open_nursery() as nursery:
                if idle:
                    # Bounded, as a logger's queue is while it keeps up: a deque
                    # of every event would make the collector's full passes
                    # ever longer and the baseline's ticker late.
                    floor.queue = deque(maxlen=FLOOR_BATCH)
                    emitted = await _emit_steady(floor.append, args.rate, args.seconds)
                    floor.queue.clear()
                    t_loop = time.monotonic()
                    cpu_loop = time.process_time()
                else:
                    nursery.start_soon(sender)
                    emitted = await _emit_steady(floor.append, args.rate, args.seconds, after_tick)
                    t_loop = time.monotonic()
                    cpu_loop = time.process_time()
                    done = True
                    ready.set()
                # The sender finishes the chunk in flight; the rest is sent here.
            await floor.send(all_of_it=True)
            t_exit = time.monotonic()
            cpu_exit = time.process_time()
        result.events = 0 if idle else emitted
        result.at_exit = (await _counts(probe)).distinct
        result.emit_seconds = t_loop - t0
        result.exit_seconds = t_exit - t_loop
        result.cpu_seconds = cpu_exit - cpu0
        result.cpu_after_emit = cpu_exit - cpu_loop
        result.started_at = t0
        if floor.failures:
            result.error = f"{floor.failures} POSTs failed"
        return result

    return trio.run(_with_ticker, body, args)


@final
class _CountingOps(FileOps):
    """The real file operations, counted: how often the spool writes, and fails to."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._paths: dict[int, str] = {}

    def _bump(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        fd = super().open(path, flags, mode)
        self._paths[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> int:
        kind = "journal" if self._paths.get(fd, "").endswith(".jnl") else "segment"
        self._bump(f"{kind}_writes")
        try:
            return super().write(fd, data)
        except OSError:
            self._bump(f"{kind}_failed")
            raise

    def fsync(self, fd: int) -> None:
        self._bump("fsyncs")
        super().fsync(fd)

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)


@final
class _Watch:
    """Reads ``log.stats`` every ``WATCH_INTERVAL`` while a spool scenario runs."""

    def __init__(self, log: eventlog.EventLogger, opened_at: float, earlier: int) -> None:
        self._log = log
        self._opened_at = opened_at
        self._earlier = earlier
        self.spool_bytes_max = 0
        self.taken_over = 0
        self.takeover_seconds: float | None = None
        self.replay_seconds: float | None = None

    def replayed(self) -> bool:
        """True once every earlier event was acknowledged (never, with none)."""
        return self.replay_seconds is not None

    def look(self) -> None:
        stats = self._log.stats
        now = time.monotonic()
        self.spool_bytes_max = max(self.spool_bytes_max, stats.spool_bytes)
        if stats.taken_over != self.taken_over:
            self.taken_over = stats.taken_over
            self.takeover_seconds = now - self._opened_at
        if self.replay_seconds is None and self._earlier and stats.replayed >= self._earlier:
            self.replay_seconds = now - self._opened_at

    async def run(self) -> None:
        while True:
            self.look()
            await trio.sleep(WATCH_INTERVAL)


def _spool_config(args: argparse.Namespace, storage_dir: str, kind: str) -> eventlog.Config:
    config = _sdk_config(args.sink, storage_dir)
    if args.max_spool_bytes:
        config = msgspec.structs.replace(config, max_spool_bytes=args.max_spool_bytes)
    if kind == "spool-replay":
        # The default batch_delay paces a drain at 2,000 events/s by design.
        config = msgspec.structs.replace(config, batch_delay=0.0)
    return config


def _spool_sdk(args: argparse.Namespace, storage_dir: str, kind: str) -> Result:
    """A logger emitting ``args.rate`` events/s: the spool scenarios.

    ``spool-replay`` stops emitting once every earlier event was acknowledged
    (``args.seconds`` is then only a limit); the others emit for ``args.seconds``.
    """
    ops = _CountingOps()

    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        config = _spool_config(args, storage_dir, kind)
        result = Result(kind=kind, earlier=args.earlier, rss_before=_rss_now())
        ticker.since = trio.current_time()
        cpu0 = time.process_time()
        opened_at = time.monotonic()
        with _seams.use(file_ops=ops):
            async with eventlog.open_event_logger(config) as log:
                t0 = time.monotonic()
                result.open_seconds = t0 - opened_at
                watch = _Watch(log, opened_at, args.earlier)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch.run)
                    until = watch.replayed if kind == "spool-replay" and args.earlier else None
                    result.events = await _emit_steady(
                        log.log_event, args.rate, args.seconds, until=until
                    )
                    nursery.cancel_scope.cancel()
                t_loop = time.monotonic()
                cpu_loop = time.process_time()
        t_exit = time.monotonic()
        cpu_exit = time.process_time()
        watch.look()
        stats = log.stats
        result.at_exit = (await _counts(probe)).distinct
        result.stats = _int_stats(stats)
        result.spool_problem = stats.spool_disabled
        result.spool_bytes_max = watch.spool_bytes_max
        result.takeover_seconds = watch.takeover_seconds
        result.replay_seconds = watch.replay_seconds
        result.file_ops = dict(ops.counts)
        result.emit_seconds = t_loop - t0
        result.exit_seconds = t_exit - t_loop
        result.cpu_seconds = cpu_exit - cpu0
        result.cpu_after_emit = cpu_exit - cpu_loop
        result.started_at = t0
        return result

    return trio.run(_with_ticker, body, args)


def _cheap_start(args: argparse.Namespace, storage_dir: str, kind: str) -> Result:
    """The time to open a logger in a fresh process, and the ticker meanwhile."""

    async def body(ticker: Ticker, probe: httpx.AsyncClient) -> Result:
        result = Result(kind=kind, rss_before=_rss_now())
        await trio.sleep(0.05)  # the ticker runs, and the probe's connection is settled
        ticker.since = trio.current_time()
        opened_at = time.monotonic()
        if kind == "start-idle":
            result.open_seconds = time.monotonic() - opened_at
            await trio.sleep(START_SECONDS)
            return result
        async with eventlog.open_event_logger(_sdk_config(args.sink, storage_dir)) as log:
            result.open_seconds = time.monotonic() - opened_at
            result.started_at = time.monotonic()
            log.log_event(NAME, _metadata(0))
            result.events = 1
            await trio.sleep(START_SECONDS)
        result.stats = _int_stats(log.stats)
        return result

    return trio.run(_with_ticker, body, args)


def _stages(args: argparse.Namespace) -> Result:
    """Per-event cost of each export stage, in this one process."""
    n: int = args.events
    result = Result(kind="stages", events=n)
    stages = Stages()
    result.stages = stages
    wall = time.time()
    # What log_event queues: the name, a copy of the metadata, the wall time, no extra.
    raws: list[tuple[str, dict[object, object], float, None]] = [
        (NAME, _raw_metadata(i), wall + i * 1e-5, None) for i in range(n)
    ]
    chunks = [raws[i : i + FLOOR_BATCH] for i in range(0, n, FLOOR_BATCH)]
    sdk_bodies: list[bytes] = []
    try:
        # Private API on purpose: the stage the logger runs in its background.
        from eventlog._environment import ProcessFacts, detect_environment
        from eventlog._transform import RawEvent, Transformer

        transformer = Transformer(
            _sdk_config(args.sink, tempfile.gettempdir()),
            id_prefix=secrets.token_hex(10),
            context=None,
            env=detect_environment(),
            process=ProcessFacts(opened_at=wall),
        )
        invalid: list[str] = []

        def count_invalid(raw: object, exc: Exception) -> None:
            invalid.append(f"{type(exc).__name__}: {exc}")

        sdk_chunks: list[list[RawEvent]] = [list(chunk) for chunk in chunks]
        encoded: list[list[bytes]] = []
        start = time.perf_counter()
        sequence = 0
        # As the logger's background does it: one batch context, one call per chunk.
        for chunk in sdk_chunks:
            transformer.begin_batch()
            encoded.append(transformer.encode_chunk(chunk, sequence, count_invalid))
            sequence += len(chunk)
        stages.transform = (time.perf_counter() - start) / n
        if invalid:
            raise ValueError(f"{len(invalid)} events could not be encoded ({invalid[0]})")
        start = time.perf_counter()
        sdk_bodies = [b"".join((b'{"events":[', b",".join(p), b"]}")) for p in encoded]
        stages.join = (time.perf_counter() - start) / n
        stages.sdk_body_bytes = sum(map(len, sdk_bodies)) // len(sdk_bodies)
    except Exception as exc:  # noqa: BLE001 -- a changed private API must not stop the report
        stages.error = f"transform stage unavailable: {type(exc).__name__}: {exc}"
    prefix = secrets.token_hex(10)
    start = time.perf_counter()
    floor_bodies = [
        _floor_body(prefix, i * FLOOR_BATCH, [(name, md, w) for name, md, w, _ in chunk])
        for i, chunk in enumerate(chunks)
    ]
    stages.floor_encode = (time.perf_counter() - start) / n
    stages.floor_body_bytes = sum(map(len, floor_bodies)) // len(floor_bodies)

    async def post_all(bodies: list[bytes], headers: dict[str, str]) -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=args.sink, timeout=30) as client:
            await client.post("/reset")
            cpu0 = time.process_time()
            start = time.perf_counter()
            for body in bodies:
                await client.post(PATH, content=body, headers=headers)
            return (time.perf_counter() - start) / n, (time.process_time() - cpu0) / n

    if sdk_bodies:
        sdk_headers = {
            "Content-Type": "application/json",
            "User-Agent": f"eventlog-python/{eventlog.__version__} bench/0",
            "x-service-name": "bench",
        }
        stages.sdk_post, stages.sdk_post_cpu = trio.run(post_all, sdk_bodies, sdk_headers)
    stages.floor_post, stages.floor_post_cpu = trio.run(post_all, floor_bodies, _HEADERS)
    result.peak_rss = _peak_rss()
    return result


def child(args: argparse.Namespace) -> None:
    """Run one scenario and print its :class:`Result` as the last line of stdout."""
    kind: str = args.child
    try:
        with tempfile.TemporaryDirectory(prefix="eventlog-e2e-") as temporary:
            storage_dir = args.storage_dir or temporary
            if kind == "burst-sdk":
                result = _burst_sdk(args, storage_dir)
            elif kind in ("burst-floor", "burst-idle"):
                result = _burst_floor(args, kind)
            elif kind in ("steady-sdk", "steady-wa"):
                result = _steady_sdk(args, storage_dir, kind)
            elif kind in ("steady-floor", "steady-idle"):
                result = _steady_floor(args, kind)
            elif kind == "stages":
                result = _stages(args)
            elif kind in ("spool-outage", "spool-full-disk", "spool-replay", "spool-startup"):
                result = _spool_sdk(args, storage_dir, kind)
            elif kind in ("cheap-start", "start-idle"):
                result = _cheap_start(args, storage_dir, kind)
            else:
                raise ValueError(f"unknown scenario {kind!r}")
    except Exception:  # noqa: BLE001 -- reported in the table, the benchmark goes on
        result = Result(kind=kind, error=traceback.format_exc(limit=8))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


# --- the parent side -----------------------------------------------------------------


@final
class Sink:
    """A ``benchmarks.sink`` process; it exits when its standard input closes."""

    def __init__(self, latency: float, status: int = 200) -> None:
        self.latency = latency
        self.status = status
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.sink",
                "--port",
                "0",
                "--latency",
                str(latency),
                "--status",
                str(status),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_ROOT,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the sink has used so far (Linux; 0 elsewhere)."""
        try:
            with open(f"/proc/{self._process.pid}/stat", "rb") as file:
                fields = file.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        """Close its standard input, so it exits; kill it if it does not."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()


_ROOT: Final = str(Path(__file__).resolve().parent.parent)


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV)}


def _run_child(
    kind: str,
    sink: Sink,
    params: Params,
    *,
    ticker: bool = True,
    rate: int | None = None,
    seconds: float | None = None,
    extra: tuple[str, ...] = (),
) -> Result:
    """Run one scenario in a fresh process; ``rate``, ``seconds``: other than ``params``'."""
    seconds = params.seconds if seconds is None else seconds
    command = [
        sys.executable,
        "-m",
        "benchmarks.e2e",
        "--child",
        kind,
        "--sink",
        sink.url,
        "--events",
        str(params.burst_events),
        "--rate",
        str(params.rate if rate is None else rate),
        "--seconds",
        str(seconds),
        "--idle-seconds",
        str(params.idle_seconds),
        *extra,
    ]
    if not ticker:
        command.append("--no-ticker")
    label = (
        f"{kind}{' (50 ms)' if sink.latency else ''}"
        f"{f' ({sink.status})' if sink.status != 200 else ''}"
        f"{f' at {rate}/s' if rate is not None else ''}{'' if ticker else ' (no ticker)'}"
    )
    print(f"  running {label} ...", file=sys.stderr, flush=True)
    timeout = seconds + 180
    try:
        completed = subprocess.run(
            command, capture_output=True, cwd=_ROOT, env=_child_env(), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Result(kind=kind, error=f"no answer within {timeout:g}s")
    lines = completed.stdout.decode(errors="replace").strip().splitlines()
    try:
        return msgspec.json.decode(lines[-1], type=Result)
    except (IndexError, msgspec.DecodeError):
        stderr = completed.stderr.decode(errors="replace").strip().splitlines()
        return Result(
            kind=kind,
            error=f"exit status {completed.returncode}: " + " / ".join(stderr[-5:]),
        )


def _sdk_envelope(event_id: str, i: int) -> bytes:
    """An envelope about the size of the logger's own (~560 bytes)."""
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%s","event_name":"bench",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z","session_id":"bench-session",'
        b'"env":{"platform":"linux","arch":"x86_64","python_version":"3.11.7",'
        b'"os_version":"6.1.0-13-amd64","is_ci":false,"package_managers":"pip",'
        b'"runtimes":"python","deployment_environment":"unknown-linux"},'
        b'"process":{"pid":12345,"uptime_s":%d.125,"rss_bytes":52428800},'
        b'"service":{"name":"bench","version":"0"},'
        b'"additional_metadata":"eyJhIjoxLCJiIjoyLjUsImMiOnRydWUsImQiOjcsImUiOjAuMjV9"}}'
        % (event_id.encode(), i)
    )


def _earlier_payloads(prefix: str, n: int) -> list[bytes]:
    return [_sdk_envelope(f"{prefix}{i:012x}", i) for i in range(n)]


def _events_for(size: int) -> int:
    """How many SDK-sized events make record lines of about ``size`` bytes."""
    line = len(b'{"v":2,"n":99999,"attempts":1,"t":1767225600,"crc32":"00000000","event":}\n')
    return max(1, size // (len(_sdk_envelope("x" * 32, 0)) + line))


class SpoolSetup(msgspec.Struct, kw_only=True):
    """What the parent prepared for the spool scenarios."""

    replay_bytes: int = 0
    leftover_events: int = 0
    leftover_bytes: int = 0
    full_disk: str | None = None
    """Why the full-disk scenario could not run here, or None."""


def _mount_tmpfs(path: str) -> str | None:
    """Mount a tmpfs of ``FULL_DISK_SIZE`` on ``path`` (0700); why not, or None."""
    if not sys.platform.startswith("linux"):
        return f"tmpfs mounts need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (no loop device or tmpfs without it)"
    command = ["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK_SIZE},mode=0700", "tmpfs", path]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"mount failed: {exc}"
    if completed.returncode:
        return f"mount failed: {completed.stderr.decode(errors='replace').strip()}"
    return None


def _unmount(path: str) -> None:
    """Unmount ``path``; lazily if something still holds it (a child that hung, say)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if subprocess.run(["umount", path], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", path], capture_output=True, check=False)


def _spool_runs(
    params: Params, fast: Sink, down: Sink, results: dict[str, list[Result]], setup: SpoolSetup
) -> None:
    """The spool scenarios, each next to the 5k/s baseline, which runs before, between, after.

    ``setup`` learns what was prepared for them, as it goes.
    """
    rate, seconds = SPOOL_RATE, params.spool_seconds

    def go(
        key: str, kind: str, sink: Sink, *, seconds: float, extra: tuple[str, ...] = ()
    ) -> Result:
        result = _run_child(kind, sink, params, rate=rate, seconds=seconds, extra=extra)
        results.setdefault(key, []).append(result)
        return result

    def baseline() -> None:
        go("spool-idle", "steady-idle", fast, seconds=seconds)

    baseline()
    go(
        "spool-outage",
        "spool-outage",
        down,
        seconds=seconds,
        extra=("--max-spool-bytes", str(params.outage_cap)),
    )
    # A write-ahead run of its own at this rate (the steady one above runs at 10k/s).
    go("spool-wa", "steady-wa", fast, seconds=seconds)
    with tempfile.TemporaryDirectory(
        prefix="eventlog-e2e-full-", ignore_cleanup_errors=True
    ) as mountpoint:
        setup.full_disk = _mount_tmpfs(mountpoint)
        if setup.full_disk is None:
            try:
                go(
                    "spool-full-disk",
                    "spool-full-disk",
                    down,
                    seconds=seconds,
                    extra=("--storage-dir", mountpoint),
                )
            finally:
                _unmount(mountpoint)
    if params.repeats > 1:
        baseline()
    with tempfile.TemporaryDirectory(prefix="eventlog-e2e-replay-") as storage_dir:
        print("  writing the earlier log to replay ...", file=sys.stderr, flush=True)
        setup.replay_bytes = write_earlier_log(
            storage_dir, _earlier_payloads("earlier-", params.replay_events)
        )
        replay = go(
            "spool-replay",
            "spool-replay",
            fast,
            seconds=params.replay_limit,
            extra=(
                "--storage-dir",
                storage_dir,
                "--earlier",
                str(params.replay_events),
                "--max-spool-bytes",
                str(REPLAY_SPOOL_BYTES),
            ),
        )
    # The RSS baseline: the same logger and emitter, as long, with nothing to replay.
    go(
        "spool-replay-base",
        "spool-replay",
        fast,
        seconds=max(2.0, replay.emit_seconds),
        extra=("--max-spool-bytes", str(REPLAY_SPOOL_BYTES)),
    )
    with tempfile.TemporaryDirectory(prefix="eventlog-e2e-leftovers-") as storage_dir:
        print("  writing the leftover logs ...", file=sys.stderr, flush=True)
        per_log = _events_for(params.leftover_bytes)
        for i in range(LEFTOVER_LOGS):
            setup.leftover_bytes += write_earlier_log(
                storage_dir,
                _earlier_payloads(f"left{i:02d}-", per_log),
                session_id=f"leftover{i:02d}",
            )
            setup.leftover_events += per_log
        go(
            "spool-startup",
            "spool-startup",
            fast,
            seconds=params.startup_seconds,
            extra=("--storage-dir", storage_dir, "--earlier", str(setup.leftover_events)),
        )
    if params.repeats > 2:
        baseline()
    for _ in range(params.repeats):
        go("start-idle", "start-idle", fast, seconds=START_SECONDS)
        go("cheap-start", "cheap-start", fast, seconds=START_SECONDS)


class SinkCapacity(msgspec.Struct):
    """Events per second the sink ingested from a raw-socket client."""

    events: int
    rate: float
    cpu_per_event: float
    distinct: int


def _sink_capacity(sink: Sink, events: int) -> SinkCapacity:
    """POST SDK-shaped batches over one keep-alive socket, as fast as the sink answers."""
    prefix = secrets.token_hex(10)
    requests: list[bytes] = []
    for first in range(0, events, FLOOR_BATCH):
        body = b'{"events":[%b]}' % b",".join(
            _sdk_envelope(f"{prefix}{i:012x}", i)
            for i in range(first, min(events, first + FLOOR_BATCH))
        )
        requests.append(
            b"POST %b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (BATCH_PATH, len(body), body)
        )
    httpx.post(f"{sink.url}/reset")
    cpu0 = sink.cpu_seconds()
    with socket.create_connection(("127.0.0.1", sink.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        for request in requests:
            conn.sendall(request)
            answer = b""
            while not answer.endswith(b"\r\n\r\n{}"):
                data = conn.recv(65536)
                if not data:
                    raise ConnectionError("the sink closed the connection")
                answer += data
        elapsed = time.perf_counter() - start
    cpu = sink.cpu_seconds() - cpu0
    counts = msgspec.json.decode(httpx.get(f"{sink.url}/count").content, type=Counts)
    httpx.post(f"{sink.url}/reset")
    return SinkCapacity(
        events=events, rate=events / elapsed, cpu_per_event=cpu / events, distinct=counts.distinct
    )


class Params(msgspec.Struct, frozen=True):
    """The sizes of one run (``--quick`` shrinks them)."""

    burst_events: int
    rate: int
    seconds: float
    idle_seconds: float
    repeats: int
    spool_seconds: float
    outage_cap: int
    replay_events: int
    replay_limit: float
    leftover_bytes: int
    startup_seconds: float

    @classmethod
    def of(cls, *, quick: bool) -> Params:
        if quick:
            return cls(
                QUICK_BURST_EVENTS,
                STEADY_RATE,
                QUICK_STEADY_SECONDS,
                QUICK_IDLE_SECONDS,
                QUICK_REPEATS,
                QUICK_SPOOL_SECONDS,
                QUICK_OUTAGE_CAP,
                QUICK_REPLAY_EVENTS,
                QUICK_REPLAY_LIMIT,
                QUICK_LEFTOVER_BYTES,
                QUICK_STARTUP_SECONDS,
            )
        return cls(
            BURST_EVENTS,
            STEADY_RATE,
            STEADY_SECONDS,
            IDLE_SECONDS,
            REPEATS,
            SPOOL_SECONDS,
            OUTAGE_CAP,
            REPLAY_EVENTS,
            REPLAY_LIMIT,
            LEFTOVER_BYTES,
            STARTUP_SECONDS,
        )


# --- the report ----------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(value: float | None, floor: float | None) -> str:
    if value is None or not floor:
        return "-"
    return f"{value / floor:.2f}x"


def _rate(result: Result) -> float | None:
    if result.error or not result.deliver_seconds or not result.delivered:
        return None
    return result.delivered / result.deliver_seconds


def _dropped(result: Result) -> int:
    return sum(v for k, v in result.stats.items() if k.startswith("dropped_"))


def _mib(value: float | None) -> float | None:
    return None if value is None else value / (1 << 20)


@final
class Report:
    """Collects the verdicts while printing the tables."""

    def __init__(self) -> None:
        self.targets: list[tuple[str, bool, str]] = []

    def target(self, what: str, ok: bool, detail: str) -> str:
        self.targets.append((what, ok, detail))
        return _verdict(ok)

    @staticmethod
    def row(label: str, *cells: str) -> None:
        print(f"{label:<40}" + "".join(f"{cell:>14}" for cell in cells))


def _median(runs: list[Result], figure: Callable[[Result], float | None]) -> float | None:
    """The median of ``figure`` over the runs that succeeded (and have it)."""
    values = [value for r in runs if not r.error and (value := figure(r)) is not None]
    return statistics.median(values) if values else None


def _median_count(runs: list[Result], figure: Callable[[Result], int]) -> int | None:
    """The median of a count, one of the runs' own (the lower middle one if even)."""
    values = [figure(r) for r in runs if not r.error]
    return statistics.median_low(values) if values else None


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _cpu_per_event(result: Result) -> float | None:
    """CPU µs per event after the emit loop."""
    return result.cpu_after_emit / result.events * 1e6 if result.events else None


def _tick_max(result: Result) -> float | None:
    return result.ticker.max if result.ticker else None


def _tick_p99(result: Result) -> float | None:
    return result.ticker.p99 if result.ticker else None


def _runs_note(runs: int) -> str:
    return f"figures are medians of {runs} runs, interleaved" if runs > 1 else "one run each"


def _errors(results: dict[str, list[Result]]) -> None:
    for key, runs in results.items():
        for i, result in enumerate(runs, 1):
            if result.error:
                which = f" (run {i} of {len(runs)})" if len(runs) > 1 else ""
                print(f"!! {key}{which}: {result.error.strip()}")


def _burst_table(
    report: Report,
    title: str,
    floor: list[Result],
    sdk: list[Result],
    impact: tuple[list[Result], list[Result], list[Result]] | None,
    *,
    latency: bool,
) -> None:
    """The burst figures, medians over the runs of each; no targets for ``latency``.

    ``impact``: the floor and SDK runs with the ticker, and its baseline's.
    The verdicts on what was delivered hold only if they hold in every run.
    """
    print(f"\n{title}")
    report.row("", "floor", "SDK", "SDK/floor", "" if latency else "target")
    floor_rate, sdk_rate = _median(floor, _rate), _median(sdk, _rate)
    rate_ok = bool(floor_rate and sdk_rate and sdk_rate >= BURST_RATE_TARGET * floor_rate)
    events = _median_count(sdk, lambda r: r.events) or 0

    def all_of(ok: Callable[[Result], bool]) -> int:
        return sum(1 for r in sdk if not r.error and r.events > 0 and ok(r))

    everything = all_of(lambda r: r.delivered == r.events) == len(sdk)
    at_exit_runs = all_of(lambda r: r.at_exit == r.events)
    report.row(
        "events/s to the server",
        _num(floor_rate),
        _num(sdk_rate),
        _ratio(sdk_rate, floor_rate),
        ""
        if latency
        else report.target(
            f"burst rate >= {BURST_RATE_TARGET:g}x floor",
            rate_ok,
            _ratio(sdk_rate, floor_rate),
        ),
    )
    report.row(
        "at the server when the block exited",
        _count(_median_count(floor, lambda r: r.at_exit)),
        _count(_median_count(sdk, lambda r: r.at_exit)),
        "",
        ""
        if latency
        else report.target(
            f"burst: all {events} at the server at block exit",
            at_exit_runs == len(sdk),
            f"in {at_exit_runs} of {len(sdk)} runs",
        ),
    )
    report.row(
        "at the server in the end",
        _count(_median_count(floor, lambda r: r.delivered)),
        _count(_median_count(sdk, lambda r: r.delivered)),
        "",
    )
    floor_deliver = _median(floor, lambda r: r.deliver_seconds)
    sdk_deliver = _median(sdk, lambda r: r.deliver_seconds)
    report.row(
        "seconds to the last event at the server",
        _num(floor_deliver, ".2f"),
        _num(sdk_deliver, ".2f"),
        _ratio(sdk_deliver, floor_deliver),
    )
    floor_emit = _median(floor, lambda r: r.emit_seconds)
    sdk_emit = _median(sdk, lambda r: r.emit_seconds)
    report.row(
        "emit loop seconds",
        _num(floor_emit, ".3f"),
        _num(sdk_emit, ".3f"),
        _ratio(sdk_emit, floor_emit),
    )
    report.row(
        "block exit / final sends, seconds",
        _num(_median(floor, lambda r: r.exit_seconds), ".2f"),
        _num(_median(sdk, lambda r: r.exit_seconds), ".2f"),
        "",
    )
    floor_cpu = _median(floor, lambda r: r.cpu_seconds)
    sdk_cpu = _median(sdk, lambda r: r.cpu_seconds)
    report.row(
        "CPU seconds (first event to exit)",
        _num(floor_cpu, ".2f"),
        _num(sdk_cpu, ".2f"),
        _ratio(sdk_cpu, floor_cpu),
    )
    floor_bg, sdk_bg = _median(floor, _cpu_per_event), _median(sdk, _cpu_per_event)
    cpu_ok = bool(floor_bg and sdk_bg is not None and everything)
    cpu_ok = cpu_ok and (sdk_bg or 0.0) <= CPU_TARGET_RATIO * (floor_bg or 0.0)
    report.row(
        "background CPU µs/event (after loop)",
        _num(floor_bg, ".2f"),
        _num(sdk_bg, ".2f"),
        _ratio(sdk_bg, floor_bg),
        ""
        if latency
        else report.target(
            f"burst background CPU/event <= {CPU_TARGET_RATIO:g}x floor, all delivered",
            cpu_ok,
            f"{_num(sdk_bg, '.1f')} vs {_num(floor_bg, '.1f')} µs/event, "
            f"{_ratio(sdk_bg, floor_bg)}",
        ),
    )
    floor_rss = _median(floor, lambda r: r.peak_rss)
    sdk_rss = _median(sdk, lambda r: r.peak_rss)
    rss_ok = bool(floor_rss and sdk_rss and sdk_rss <= RSS_TARGET * floor_rss)
    report.row(
        "peak RSS MiB",
        _num(_mib(floor_rss), ".1f"),
        _num(_mib(sdk_rss), ".1f"),
        _ratio(sdk_rss, floor_rss),
        ""
        if latency
        else report.target(
            f"burst peak RSS <= {RSS_TARGET:g}x floor", rss_ok, _ratio(sdk_rss, floor_rss)
        ),
    )
    floor_growth = _median(floor, lambda r: r.peak_rss - r.rss_before)
    sdk_growth = _median(sdk, lambda r: r.peak_rss - r.rss_before)
    report.row(
        "  growth over RSS before the burst",
        _num(_mib(floor_growth), ".1f"),
        _num(_mib(sdk_growth), ".1f"),
        _ratio(sdk_growth, floor_growth),
    )
    report.row(
        "POSTs received by the server",
        _count(_median_count(floor, lambda r: r.requests)),
        _count(_median_count(sdk, lambda r: r.requests)),
        "",
    )
    if impact is not None:
        print("host impact, separate runs with the ticker (lateness after the loop):")
        _ticker_rows(report, "burst" + (" (50 ms)" if latency else ""), *impact)
    _stats_lines("SDK", sdk)


def _stats_line(stats: dict[str, int]) -> str:
    keep = ("emitted", "exported", "export_failures", "spooled", "spool_events", "queue_depth")
    parts = [f"{k}={stats[k]}" for k in keep if k in stats]
    parts += [f"{k}={v}" for k, v in stats.items() if k.startswith("dropped_") and v]
    return ", ".join(parts)


def _stats_lines(label: str, runs: list[Result]) -> None:
    """The stats of each run, once if they are all the same."""
    lines = [_stats_line(r.stats) for r in runs if r.stats]
    if len(set(lines)) == 1:
        print(f"{label} stats: {lines[0]}")
        return
    for i, r in enumerate(runs, 1):
        if r.stats:
            print(f"{label} stats, run {i}: {_stats_line(r.stats)}")


def _ticker_rows(
    report: Report,
    what: str,
    floor: list[Result] | None,
    sdk: list[Result],
    idle: list[Result],
) -> None:
    """Lateness rows: medians of the runs' max and of their p99."""
    run_max, run_p99 = _median(sdk, _tick_max), _median(sdk, _tick_p99)
    base_max, base_p99 = _median(idle, _tick_max), _median(idle, _tick_p99)
    if run_max is None or run_p99 is None or base_max is None or base_p99 is None:
        return
    floor_max = _median(floor, _tick_max) if floor is not None else None
    floor_p99 = _median(floor, _tick_p99) if floor is not None else None
    report.row(
        "ticker max lateness ms (baseline)",
        _num(_ms(floor_max), ".2f"),
        _num(run_max * 1e3, ".2f"),
        f"({base_max * 1e3:.2f})",
        report.target(
            f"{what}: ticker max <= baseline + {TICK_MAX_SLACK * 1e3:g} ms",
            run_max <= base_max + TICK_MAX_SLACK,
            f"{run_max * 1e3:.2f} vs {base_max * 1e3:.2f} ms",
        ),
    )
    report.row(
        "ticker p99 lateness ms (baseline)",
        _num(_ms(floor_p99), ".2f"),
        _num(run_p99 * 1e3, ".2f"),
        f"({base_p99 * 1e3:.2f})",
        report.target(
            f"{what}: ticker p99 <= baseline + {TICK_P99_SLACK * 1e3:g} ms",
            run_p99 <= base_p99 + TICK_P99_SLACK,
            f"{run_p99 * 1e3:.2f} vs {base_p99 * 1e3:.2f} ms",
        ),
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _steady_table(
    report: Report,
    params: Params,
    floor: Result,
    runs: list[tuple[str, Result]],
    idle: list[Result],
) -> None:
    print(
        f"\nsteady: {params.rate:,} events/s spread evenly for {params.seconds:g} s "
        f"({int(params.rate * params.seconds):,} events), then the block exits; default Config; "
        f"one run each"
        + (
            f", the baseline's figures medians of {len(idle)} runs among them"
            if len(idle) > 1
            else ""
        )
    )
    report.row("", "floor", *(label for label, _ in runs))
    cells: dict[str, list[str]] = {}

    def add(label: str, value: Callable[[Result], str]) -> None:
        cells[label] = [value(floor), *(value(r) for _, r in runs)]

    add("emitted", lambda r: str(r.events))
    add("delivered (distinct at the server)", lambda r: str(r.delivered))
    add("dropped (all dropped_* counters)", lambda r: str(_dropped(r)) if r.stats else "-")
    add("spooled", lambda r: str(r.stats.get("spooled", "-")) if r.stats else "-")
    add("spool_events at exit", lambda r: str(r.stats.get("spool_events", "-")) if r.stats else "-")
    add("shutdown seconds", lambda r: _num(r.exit_seconds, ".3f"))
    add("POSTs received by the server", lambda r: str(r.requests))
    add("CPU seconds while emitting", lambda r: _num(r.cpu_seconds - r.cpu_after_emit, ".2f"))
    add("CPU seconds of the shutdown", lambda r: _num(r.cpu_after_emit, ".2f"))
    idle_emit_cpu = _median(idle, lambda r: r.cpu_seconds - r.cpu_after_emit)

    def cpu_per_event(r: Result) -> str:
        if not r.events or idle_emit_cpu is None:
            return "-"
        return _num((r.cpu_seconds - idle_emit_cpu) / r.events * 1e6, ".2f")

    # The baseline has no shutdown: the SDK's includes the work it left for then.
    add("CPU µs/event (both) above the baseline", cpu_per_event)
    add("ticker max lateness ms", lambda r: _num(_ms(_tick_max(r)), ".2f"))
    add("ticker p99 lateness ms", lambda r: _num(_ms(_tick_p99(r)), ".2f"))
    for label, row in cells.items():
        report.row(label, *row)
    base_max, base_p99 = _median(idle, _tick_max), _median(idle, _tick_p99)
    print(
        f"baseline (same ticker and emitter, a deque instead of a logger): "
        f"CPU {_num(idle_emit_cpu, '.2f')} s, ticker max {_num(_ms(base_max), '.2f')} ms, "
        f"p99 {_num(_ms(base_p99), '.2f')} ms"
    )
    for label, result in runs:
        if result.error:
            continue
        # Both: in write-ahead mode, events never tried stay in the spool
        # without counting in ``spooled``.
        spooled = result.stats.get("spooled", 0)
        left = result.stats.get("spool_events", 0)
        lossless = result.delivered == result.events and _dropped(result) == 0
        report.target(
            f"steady {label}: 0 dropped, 0 spooled, all delivered",
            lossless and spooled == 0 and left == 0,
            f"{result.delivered}/{result.events} delivered, {_dropped(result)} dropped, "
            f"{spooled} spooled, {left} in the spool at exit",
        )
        if "50 ms" not in label:
            report.target(
                f"steady {label}: shutdown < {SHUTDOWN_TARGET:g} s",
                result.exit_seconds < SHUTDOWN_TARGET,
                f"{result.exit_seconds:.3f} s",
            )
        run_max, run_p99 = _tick_max(result), _tick_p99(result)
        if base_max is not None and run_max is not None:
            report.target(
                f"steady {label}: ticker max <= baseline + {TICK_MAX_SLACK * 1e3:g} ms",
                run_max <= base_max + TICK_MAX_SLACK,
                f"{run_max * 1e3:.2f} vs {base_max * 1e3:.2f} ms",
            )
        if base_p99 is not None and run_p99 is not None:
            report.target(
                f"steady {label}: ticker p99 <= baseline + {TICK_P99_SLACK * 1e3:g} ms",
                run_p99 <= base_p99 + TICK_P99_SLACK,
                f"{run_p99 * 1e3:.2f} vs {base_p99 * 1e3:.2f} ms",
            )
        if result.stats:
            print(f"{label} stats: " + _stats_line(result.stats))


def _stages_table(stages: Result) -> None:
    s = stages.stages
    print(
        f"\nstages, in one process: µs per event over {stages.events:,} events in "
        f"chunks of {FLOOR_BATCH} (POST: sequential, to the sink answering at once)"
    )
    if s is None:
        return
    print(f"{'':<40}{'SDK':>14}{'floor':>14}{'SDK/floor':>14}")

    def us(value: float | None) -> str:
        return _num(None if value is None else value * 1e6, ".2f")

    print(f"{'transform (Transformer.encode_chunk)':<40}{us(s.transform):>14}")
    print(f"{'body join':<40}{us(s.join):>14}")
    encode = None if s.transform is None or s.join is None else s.transform + s.join
    print(
        f"{'  encode total (floor: msgspec.encode)':<40}{us(encode):>14}{us(s.floor_encode):>14}"
        f"{_ratio(encode, s.floor_encode):>14}"
    )
    print(
        f"{'POST through httpx, wall':<40}{us(s.sdk_post):>14}{us(s.floor_post):>14}"
        f"{_ratio(s.sdk_post, s.floor_post):>14}"
    )
    print(
        f"{'POST through httpx, CPU':<40}{us(s.sdk_post_cpu):>14}{us(s.floor_post_cpu):>14}"
        f"{_ratio(s.sdk_post_cpu, s.floor_post_cpu):>14}"
    )
    print(
        f"{'body bytes per POST':<40}{s.sdk_body_bytes:>14,}{s.floor_body_bytes:>14,}"
        f"{_ratio(s.sdk_body_bytes, s.floor_body_bytes):>14}"
    )
    if s.error:
        print(f"!! {s.error}")


def _first(results: dict[str, list[Result]], key: str) -> Result | None:
    """The scenario's (only) run, unless it is missing or failed."""
    runs = results.get(key)
    return runs[0] if runs and not runs[0].error else None


_SETTLED: Final = (
    "exported",
    "replayed",
    "dropped_invalid",
    "dropped_max_attempts",
    "dropped_permanent",
    "dropped_spool_limit",
    "dropped_disk_error",
    "spool_events",
)


def _accounted(stats: dict[str, int]) -> str:
    """Whether every event is accounted for once the logger closed (see ``eventlog.Stats``)."""
    had = stats.get("emitted", 0) + stats.get("taken_over", 0)
    settled = sum(stats.get(name, 0) for name in _SETTLED)
    return "yes" if had == settled else f"NO: {had} emitted or taken over, {settled} settled"


def _per_second(count: int, seconds: float) -> str:
    return f"{count} ({count / seconds:.1f}/s)" if seconds > 0 else str(count)


def _line(label: str, value: str) -> None:
    print(f"  {label:<58}{value}")


def _file_ops_line(result: Result, seconds: float) -> None:
    ops = result.file_ops
    _line(
        "spool segment writes (failed) / journal writes (failed)",
        f"{_per_second(ops.get('segment_writes', 0), seconds)} ({ops.get('segment_failed', 0)})"
        f" / {_per_second(ops.get('journal_writes', 0), seconds)} "
        f"({ops.get('journal_failed', 0)})",
    )
    _line("fsyncs", _per_second(ops.get("fsyncs", 0), seconds))


def _spool_impact(
    report: Report, params: Params, setup: SpoolSetup, results: dict[str, list[Result]]
) -> None:
    idle = results.get("spool-idle", [])
    base_max, base_p99 = _median(idle, _tick_max), _median(idle, _tick_p99)
    print(
        f"\nspool (issue 11): {SPOOL_RATE:,} events/s spread evenly, real threads and a real "
        "disk, each scenario in a fresh process; host impact: ticker lateness (ms) next to the "
        "baseline's (the same ticker and emitter with a deque, no logger"
        + (f"; medians of {len(idle)} runs among the scenarios)" if len(idle) > 1 else ")")
    )
    report.row("", "max", "p99", "max at, s", "over 10 ms", "max target", "p99 target")
    report.row(
        "baseline (deque, no logger)",
        _num(_ms(base_max), ".2f"),
        _num(_ms(base_p99), ".2f"),
        "",
        _count(_median_count(idle, lambda r: r.ticker.over_slack if r.ticker else 0)),
    )
    scenarios = [
        ("outage past the size cap", "spool-outage"),
        ("write-ahead, healthy", "spool-wa"),
        (f"replay of {params.replay_events:,} earlier events", "spool-replay"),
        (f"full disk ({FULL_DISK_SIZE} tmpfs)", "spool-full-disk"),
        (f"startup, {LEFTOVER_LOGS} leftover logs", "spool-startup"),
    ]
    for label, key in scenarios:
        result = _first(results, key)
        if result is None or result.ticker is None:
            missing = "not measurable here" if key == "spool-full-disk" and setup.full_disk else ""
            report.row(label, "-", "-", missing)
            continue
        run_max, run_p99 = result.ticker.max, result.ticker.p99
        cells = ["", ""]
        if base_max is not None and base_p99 is not None:
            cells = [
                report.target(
                    f"spool, {label}: ticker max <= baseline + {TICK_MAX_SLACK * 1e3:g} ms",
                    run_max <= base_max + TICK_MAX_SLACK,
                    f"{run_max * 1e3:.2f} vs {base_max * 1e3:.2f} ms",
                ),
                report.target(
                    f"spool, {label}: ticker p99 <= baseline + {TICK_P99_SLACK * 1e3:g} ms",
                    run_p99 <= base_p99 + TICK_P99_SLACK,
                    f"{run_p99 * 1e3:.2f} vs {base_p99 * 1e3:.2f} ms",
                ),
            ]
        report.row(
            label,
            f"{run_max * 1e3:.2f}",
            f"{run_p99 * 1e3:.2f}",
            f"{result.ticker.max_at:.2f}",
            str(result.ticker.over_slack),
            *cells,
        )


def _outage_table(report: Report, params: Params, results: dict[str, list[Result]]) -> None:
    cap = params.outage_cap
    print(
        f"\noutage: the server answers 503 throughout; max_spool_bytes={cap >> 20} MiB (about "
        f"{_events_for(cap):,} events), {params.spool_seconds:g} s, then the block exits "
        "(default shutdown_timeout)"
    )
    result = _first(results, "spool-outage")
    if result is None:
        return
    stats = result.stats
    seconds = result.emit_seconds + result.exit_seconds
    _line(
        "emitted / spooled / spool_events at exit",
        f"{stats.get('emitted')} / {stats.get('spooled')} / {stats.get('spool_events')}",
    )
    dropped = stats.get("dropped_spool_limit", 0)
    _line("dropped_spool_limit", str(dropped))
    others = {
        k: v
        for k, v in stats.items()
        if k.startswith("dropped_") and v and k != "dropped_spool_limit"
    }
    _line("other drops", ", ".join(f"{k}={v}" for k, v in others.items()) or "none")
    _line(
        "spool_bytes MiB: largest seen (every 10 ms) / at exit",
        f"{result.spool_bytes_max / (1 << 20):.2f} / {stats.get('spool_bytes', 0) / (1 << 20):.2f}"
        f" (cap {cap / (1 << 20):g})",
    )
    _line("POSTs refused by the server", _per_second(result.refused, seconds))
    _file_ops_line(result, seconds)
    _line("shutdown seconds", f"{result.exit_seconds:.3f}")
    _line("every event accounted for", _accounted(stats))
    largest = max(result.spool_bytes_max, stats.get("spool_bytes", 0))
    report.target(
        "spool, outage: spool_bytes <= max_spool_bytes once past the cap",
        dropped > 0 and largest <= cap,
        f"largest {largest / (1 << 20):.2f} MiB vs {cap / (1 << 20):g} MiB; {dropped} events "
        "dropped past the cap" + ("" if dropped else " (the cap was not reached)"),
    )


def _write_ahead_table(report: Report, params: Params, results: dict[str, list[Result]]) -> None:
    print(
        f"\nwrite-ahead, healthy: {SPOOL_RATE:,} events/s for {params.spool_seconds:g} s, "
        "write_ahead=True, the server answering at once"
    )
    result = _first(results, "spool-wa")
    if result is None:
        return
    stats = result.stats
    _line(
        "emitted / delivered / dropped / spool_events at exit",
        f"{result.events} / {result.delivered} / {_dropped(result)} / "
        f"{stats.get('spool_events', '-')}",
    )
    _line("shutdown seconds", f"{result.exit_seconds:.3f}")
    lossless = result.delivered == result.events and not _dropped(result)
    report.target(
        "spool, write-ahead 5k/s: 0 dropped, all delivered, nothing left in the spool",
        lossless and not stats.get("spool_events"),
        f"{result.delivered}/{result.events} delivered, {_dropped(result)} dropped, "
        f"{stats.get('spool_events')} in the spool at exit",
    )


def _replay_table(
    report: Report, params: Params, setup: SpoolSetup, results: dict[str, list[Result]]
) -> None:
    print(
        f"\nreplay: an earlier run's log of {params.replay_events:,} events "
        f"({setup.replay_bytes / (1 << 20):.0f} MiB, segments of 4 MiB) taken over by a logger "
        f"emitting {SPOOL_RATE:,} events/s until the last of them is acknowledged (at most "
        f"{params.replay_limit:g} s); baseline: the same logger and emitter, as long, with "
        "nothing to replay.\n"
        "batch_delay=0: the default (0.1 s after each drain chunk of 200) paces a drain at "
        "2,000 events/s by design, which would cap the replay there; "
        f"max_spool_bytes={REPLAY_SPOOL_BYTES >> 20} MiB: the default 64 MiB would trim the "
        "earlier log at takeover"
    )
    replay, base = _first(results, "spool-replay"), _first(results, "spool-replay-base")
    report.row("", "replay", "baseline", "target")
    if replay is None:
        return
    stats = replay.stats

    def both(value: Callable[[Result], str]) -> tuple[str, str]:
        return value(replay), value(base) if base is not None else "-"

    report.row(
        "taken over / replayed (acknowledged)",
        f"{stats.get('taken_over')}/{stats.get('replayed')}",
        "",
    )
    report.row("takeover done, s after open", _num(replay.takeover_seconds, ".2f"), "")
    rate = params.replay_events / replay.replay_seconds if replay.replay_seconds else None
    report.row(
        "all replayed, s after open",
        _num(replay.replay_seconds, ".2f"),
        "",
    )
    report.row(
        "replay events/s",
        _num(rate),
        "",
        report.target(
            f"spool, replay: >= {REPLAY_RATE_TARGET:,} events/s of replay",
            rate is not None and rate >= REPLAY_RATE_TARGET,
            f"{_num(rate)} events/s"
            if rate is not None
            else f"not all replayed in {params.replay_limit:g} s ({stats.get('replayed')})",
        ),
    )
    report.row("live events emitted", *both(lambda r: str(r.events)))
    report.row("live events exported", *both(lambda r: str(r.stats.get("exported"))))
    everything = replay.delivered == replay.earlier + replay.events
    report.row(
        "distinct at the server (earlier + live)",
        *both(lambda r: str(r.delivered)),
        report.target(
            "spool, replay: all earlier and live events delivered",
            everything,
            f"{replay.delivered} of {replay.earlier} + {replay.events}",
        ),
    )
    report.row(
        "dropped (all dropped_* counters)",
        *both(lambda r: str(_dropped(r))),
        report.target(
            "spool, replay: none dropped while live events flow",
            _dropped(replay) == 0,
            ", ".join(f"{k}={v}" for k, v in stats.items() if k.startswith("dropped_") and v)
            or "none",
        ),
    )
    rss_ok = base is not None and replay.peak_rss <= base.peak_rss + REPLAY_RSS_SLACK
    report.row(
        "peak RSS MiB",
        *both(lambda r: f"{r.peak_rss / (1 << 20):.1f}"),
        report.target(
            f"spool, replay: peak RSS <= baseline + {REPLAY_RSS_SLACK >> 20} MiB",
            rss_ok,
            f"{replay.peak_rss / (1 << 20):.1f} vs "
            f"{(base.peak_rss if base else 0) / (1 << 20):.1f} MiB",
        ),
    )
    report.row("emit seconds", *both(lambda r: f"{r.emit_seconds:.2f}"))
    report.row("CPU seconds", *both(lambda r: f"{r.cpu_seconds:.2f}"))
    report.row("shutdown seconds", *both(lambda r: f"{r.exit_seconds:.3f}"))
    report.row("every event accounted for", *both(lambda r: _accounted(r.stats)))


def _full_disk_table(
    report: Report, params: Params, setup: SpoolSetup, results: dict[str, list[Result]]
) -> None:
    print(
        f"\nfull disk: storage_dir on a tmpfs of {FULL_DISK_SIZE} (mounted for the run), the "
        f"server answering 503 so that every event goes to the spool; {SPOOL_RATE:,} events/s "
        f"for {params.spool_seconds:g} s"
    )
    if setup.full_disk is not None:
        print(f"  not measurable here: {setup.full_disk}")
        return
    runs = results.get("spool-full-disk", [])
    raised = runs[0].error if runs else "no run"
    report.target(
        "spool, full disk: the logger never raises into the application",
        raised is None,
        "no exception" if raised is None else raised.strip().splitlines()[-1],
    )
    result = _first(results, "spool-full-disk")
    if result is None:
        return
    stats = result.stats
    seconds = result.emit_seconds + result.exit_seconds
    _line(
        "emitted / spooled / spool_events at exit",
        f"{stats.get('emitted')} / {stats.get('spooled')} / {stats.get('spool_events')}",
    )
    _line("dropped_disk_error", str(stats.get("dropped_disk_error", 0)))
    others = {
        k: v
        for k, v in stats.items()
        if k.startswith("dropped_") and v and k != "dropped_disk_error"
    }
    _line("other drops", ", ".join(f"{k}={v}" for k, v in others.items()) or "none")
    _line("stats.spool_disabled at the end", str(result.spool_problem))
    _line("POSTs refused by the server", _per_second(result.refused, seconds))
    _file_ops_line(result, seconds)
    _line("shutdown seconds", f"{result.exit_seconds:.3f}")
    _line("every event accounted for", _accounted(stats))
    failed = result.file_ops.get("segment_failed", 0) + result.file_ops.get("journal_failed", 0)
    chunks = math.ceil(stats.get("spooled", 0) / FLOOR_BATCH)
    report.target(
        f"spool, full disk: failed writes <= {FAILED_WRITES_TARGET:g} per {FAILED_WRITES_PER:g} "
        "chunks spooled (a backoff; one per export would be 1 per chunk)",
        chunks > 0 and failed * FAILED_WRITES_PER <= chunks * FAILED_WRITES_TARGET,
        f"{failed} failed writes (segment and journal) for {chunks} chunks spooled, "
        f"in {seconds:.1f} s",
    )


def _startup_table(
    report: Report, params: Params, setup: SpoolSetup, results: dict[str, list[Result]]
) -> None:
    print(
        f"\nstartup: {LEFTOVER_LOGS} earlier logs of {params.leftover_bytes >> 20} MiB each "
        f"({setup.leftover_bytes / (1 << 20):.0f} MiB, {setup.leftover_events:,} events, "
        "segments of 4 MiB) in storage_dir; default Config (the 64 MiB max_spool_bytes trims "
        f"them at takeover; the drain paced by batch_delay); the server healthy; "
        f"{SPOOL_RATE:,} events/s for {params.startup_seconds:g} s from the block's body, the "
        "ticker from entering open_event_logger"
    )
    result = _first(results, "spool-startup")
    if result is None:
        return
    stats = result.stats
    seconds = result.emit_seconds + result.exit_seconds
    _line("open_event_logger to the block's body, ms", _num(_ms(result.open_seconds), ".2f"))
    _line(
        "taken over, of the leftovers / last, s after open",
        f"{stats.get('taken_over')} of {setup.leftover_events} / "
        f"{_num(result.takeover_seconds, '.2f')}",
    )
    _line("dropped_spool_limit (trimmed at takeover)", str(stats.get("dropped_spool_limit", 0)))
    _line("replayed by the exit", str(stats.get("replayed", 0)))
    _line(
        "live emitted / exported / other drops",
        f"{result.events} / {stats.get('exported')} / "
        + str(
            sum(
                v
                for k, v in stats.items()
                if k.startswith("dropped_") and k != "dropped_spool_limit"
            )
        ),
    )
    _file_ops_line(result, seconds)
    _line("shutdown seconds", f"{result.exit_seconds:.3f}")
    _line("every event accounted for", _accounted(stats))


def _cheap_start_table(report: Report, results: dict[str, list[Result]]) -> None:
    idle = [r for r in results.get("start-idle", []) if not r.error]
    runs = [r for r in results.get("cheap-start", []) if not r.error]
    print(
        "\ncheap start (issue 10): a fresh process (the benchmark's child: trio, eventlog, "
        "httpx, msgspec imported), open_event_logger on an empty storage_dir, one event, "
        f"{START_SECONDS:g} s in the block; the ticker from entering open_event_logger; "
        + _runs_note(len(runs))
    )
    if not runs:
        return
    report.row("", "no logger", "logger", "target")
    opened = _median(runs, lambda r: r.open_seconds)
    report.row(
        "open_event_logger to the body, ms",
        "",
        _num(_ms(opened), ".2f"),
        report.target(
            f"cheap start: open_event_logger to the body <= {OPEN_TARGET * 1e3:g} ms",
            opened is not None and opened <= OPEN_TARGET,
            f"{_num(_ms(opened), '.2f')} ms",
        ),
    )
    base_max, run_max = _median(idle, _tick_max), _median(runs, _tick_max)
    report.row(
        "ticker max lateness ms",
        _num(_ms(base_max), ".2f"),
        _num(_ms(run_max), ".2f"),
        report.target(
            f"cheap start: ticker max <= baseline + {TICK_MAX_SLACK * 1e3:g} ms",
            base_max is not None and run_max is not None and run_max <= base_max + TICK_MAX_SLACK,
            f"{_num(_ms(run_max), '.2f')} vs {_num(_ms(base_max), '.2f')} ms",
        ),
    )
    report.row(
        "ticker p99 lateness ms",
        _num(_ms(_median(idle, _tick_p99)), ".2f"),
        _num(_ms(_median(runs, _tick_p99)), ".2f"),
    )
    report.row("delivered", "", _count(_median_count(runs, lambda r: r.delivered)))


def _spool_tables(
    report: Report, params: Params, setup: SpoolSetup, results: dict[str, list[Result]]
) -> None:
    _spool_impact(report, params, setup, results)
    _outage_table(report, params, results)
    _write_ahead_table(report, params, results)
    _replay_table(report, params, setup, results)
    _full_disk_table(report, params, setup, results)
    _startup_table(report, params, setup, results)
    _cheap_start_table(report, results)


def _plan(params: Params, fast: Sink, slow: Sink) -> list[tuple[str, str, Sink, bool]]:
    """The runs in order: (key, scenario, sink, with the ticker).

    The bursts and their baseline are repeated in rounds, so that a spell of
    load on the machine falls on floor and SDK alike; the steady baseline
    runs before, between and after the steady runs.
    """
    bursts: list[tuple[str, str, Sink, bool]] = [
        ("burst-floor", "burst-floor", fast, False),
        ("burst-sdk", "burst-sdk", fast, False),
        ("burst-idle", "burst-idle", fast, True),
        ("burst-floor-ticker", "burst-floor", fast, True),
        ("burst-sdk-ticker", "burst-sdk", fast, True),
    ]
    steady: list[tuple[str, str, Sink, bool]] = [
        ("steady-floor", "steady-floor", fast, True),
        ("steady-sdk", "steady-sdk", fast, True),
        ("steady-wa", "steady-wa", fast, True),
        ("steady-sdk-50ms", "steady-sdk", slow, True),
    ]
    plan = bursts * params.repeats
    per_idle = math.ceil(len(steady) / params.repeats)
    for i in range(params.repeats):
        plan.append(("steady-idle", "steady-idle", fast, True))
        plan += steady[i * per_idle : (i + 1) * per_idle]
    plan += [
        ("burst-floor-50ms", "burst-floor", slow, False),
        ("burst-sdk-50ms", "burst-sdk", slow, False),
        ("stages", "stages", fast, False),
    ]
    return plan


def run(*, quick: bool = False) -> None:
    """Run every scenario, each in a fresh process, and print the tables."""
    params = Params.of(quick=quick)
    started = time.perf_counter()
    fast, slow, down = Sink(0.0), Sink(LATENCY), Sink(0.0, 503)
    results: dict[str, list[Result]] = {}
    setup = SpoolSetup()
    try:
        print(
            f"\nend-to-end: eventlog {eventlog.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs; each scenario in a fresh process"
            + (" (--quick: smaller runs)" if quick else "")
        )
        print(
            "server: benchmarks/sink.py on 127.0.0.1 in another process "
            f"(one answering at once, one {LATENCY * 1e3:g} ms late, one answering 503)"
        )
        try:
            capacity: SinkCapacity | None = _sink_capacity(fast, params.burst_events)
        except (OSError, httpx.HTTPError) as exc:
            print(f"!! sink capacity check failed: {exc}")
            capacity = None
        for key, kind, sink, ticker in _plan(params, fast, slow):
            results.setdefault(key, []).append(_run_child(kind, sink, params, ticker=ticker))
        try:
            _spool_runs(params, fast, down, results, setup)
        except Exception:  # noqa: BLE001 -- the tables show what ran; the benchmark goes on
            print(f"!! spool scenarios stopped: {traceback.format_exc(limit=8)}")
    finally:
        fast.close()
        slow.close()
        down.close()
    elapsed = time.perf_counter() - started
    report = Report()
    _errors(results)
    floor = results["burst-floor"]
    if capacity is not None:
        floor_rate = _median(floor, _rate) or 0.0
        ok = capacity.rate >= SINK_MARGIN * floor_rate and capacity.distinct == capacity.events
        print(
            f"sink capacity: {capacity.rate:,.0f} events/s of ~560-byte envelopes in POSTs of "
            f"{FLOOR_BATCH} over one keep-alive connection ({capacity.cpu_per_event * 1e6:.2f} "
            f"µs of sink CPU per event); "
            + report.target(
                f"sink ingests >= {SINK_MARGIN:g}x the floor's burst rate",
                ok,
                f"{capacity.rate:,.0f} vs {floor_rate:,.0f} events/s",
            )
        )
    _burst_table(
        report,
        f"burst: {params.burst_events:,} events with 5 numeric fields logged in a loop, then the "
        f"block exits (max_queue_size={BURST_QUEUE_SIZE}, default shutdown_timeout); "
        + _runs_note(params.repeats),
        floor,
        results["burst-sdk"],
        (results["burst-floor-ticker"], results["burst-sdk-ticker"], results["burst-idle"]),
        latency=False,
    )
    _steady_table(
        report,
        params,
        results["steady-floor"][0],
        [
            ("SDK", results["steady-sdk"][0]),
            ("write-ahead", results["steady-wa"][0]),
            ("SDK, 50 ms", results["steady-sdk-50ms"][0]),
        ],
        results["steady-idle"],
    )
    _burst_table(
        report,
        f"latency: the burst against a server answering {LATENCY * 1e3:g} ms late "
        "(the floor still sends one POST at a time); one run each, no targets",
        results["burst-floor-50ms"],
        results["burst-sdk-50ms"],
        None,
        latency=True,
    )
    _stages_table(results["stages"][0])
    _spool_tables(report, params, setup, results)
    passed = sum(ok for _, ok, _ in report.targets)
    print(f"\ntargets: {passed} of {len(report.targets)} met")
    for what, ok, detail in report.targets:
        print(f"  {_verdict(ok)}  {what}: {detail}")
    print(f"(end-to-end part took {elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.e2e [--quick]``, or one scenario with ``--child``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for development")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--no-ticker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=BURST_EVENTS, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=STEADY_RATE, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=STEADY_SECONDS, help=argparse.SUPPRESS)
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS, help=argparse.SUPPRESS)
    parser.add_argument("--storage-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--earlier", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-spool-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
    else:
        run(quick=args.quick)


if __name__ == "__main__":
    main()
