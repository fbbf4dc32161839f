"""Caller-side cost of ``EventLogger.log_event`` and background cost of a batch.

Run from the repository root: ``python -m benchmarks [--quick]`` runs everything
below and then the end-to-end benchmark (``benchmarks/e2e.py``);
``python -m benchmarks e2e [--quick]`` runs only the end-to-end part.
``--quick`` shrinks the end-to-end runs (one run of each burst instead of the
median of three, a 3 s steady run, a 20k burst, 4 s spool scenarios, a
40k-event replay, leftover logs of 2 MiB) and
repeats the log_event and flush measurements twice instead of seven times,
for development.

1. **log_event** (the target): microseconds per call for ``N_EVENTS`` calls with
   the same 5-field metadata dict, inside an open logger whose background task
   cannot run during the timed loop (the loop never awaits; the batch size and
   the queue are larger than ``N_EVENTS`` and ``scheduled_delay`` is an hour).
   The floor is a bare ``collections.deque.append`` of the same
   ``(name, metadata, 0.0)`` tuple in an equivalent loop. Target: at most
   ``TARGET_RATIO`` times the floor, judged on the best run. A second,
   informational row appends the tuple with a ``time.time()`` read, the one
   piece of work every event needs at emit (its timestamp).
   **SyncEventLogger.log_event** (informational): the same loop, run in a
   plain ``threading.Thread``, on the logger of
   :func:`eventlog.start_event_logger` (its event loop idles on a thread of
   its own meanwhile), against the same floor.
   **log_event, write-ahead** (second target): the same loop in a logger with
   ``write_ahead=True``, against the same floor. Target: at most
   ``WRITE_AHEAD_TARGET_RATIO`` times the floor. The caller side only appends
   in this mode too: the group commit (one write and one fsync per
   ``write_ahead_interval``) runs in a background task, which cannot run during
   the timed loop; its cost is in the flush row and in the spool figures.
2. **flush** (informational): the wall time of ``await log.flush()`` on those
   ``N_EVENTS`` queued events, per event: validating, stamping and encoding
   every envelope, joining the body, the POST through httpx, and the
   ``CapturingTransport`` decoding the batch on the other side. Its baseline
   is ``msgspec.json.encode`` of a dict equal to one envelope, per event. The
   write-ahead row adds committing the batch to the spool (one write and one
   fsync of every line) before the POST and the checkpoint after it.
3. **spool** (``benchmarks/spool.py``): the spool's group appends
   (``Spool.commit``, ``Spool.add``, through its worker thread) and the
   replay of an earlier run's log by a new logger, in events per second,
   next to a raw write + fsync of the same bytes and ``read_lines``. The
   spool's end-to-end scenarios (outage, full disk, replay next to live
   traffic, startup with leftovers) are in the end-to-end part.

Each measurement is repeated ``REPEATS`` times, interleaved, with the garbage
collector disabled while timing (as ``timeit`` does); the best and the median
are reported. A fresh logger is opened for every repeat, so its queue never
overflows (checked).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Final

import msgspec
import trio
import trio.to_thread

import eventlog
from benchmarks import collector, e2e, spool
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

N_EVENTS: Final = 100_000
REPEATS: Final = 7
QUICK_REPEATS: Final = 2
TARGET_RATIO: Final = 3.0
WRITE_AHEAD_TARGET_RATIO: Final = 5.0
NAME: Final = "benchmark_event"
METADATA: Final[dict[str, int | float | bool | None]] = {
    "a": 1,
    "b": 2.5,
    "c": True,
    "d": 7,
    "e": 0.25,
}


def _timed(loop: Callable[[], None]) -> float:
    """Seconds ``loop()`` takes, with the garbage collector off."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        loop()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def deque_floor(n: int) -> float:
    """Seconds for ``n`` ``deque.append((name, metadata, 0.0))`` calls."""
    queue: deque[tuple[str, Mapping[str, int | float | bool | None] | None, float]] = deque()
    append = queue.append
    name: str = NAME
    metadata: Mapping[str, int | float | bool | None] | None = METADATA

    def loop() -> None:
        for _ in range(n):
            append((name, metadata, 0.0))

    elapsed = _timed(loop)
    assert len(queue) == n
    return elapsed


def deque_clock_floor(n: int) -> float:
    """Seconds for ``n`` ``deque.append((name, metadata, time.time()))`` calls.

    Informational: the same append with the timestamp read that every event
    needs, to show how much of log_event's cost is the clock itself.
    """
    queue: deque[tuple[str, Mapping[str, int | float | bool | None] | None, float]] = deque()
    append = queue.append
    now = time.time
    name: str = NAME
    metadata: Mapping[str, int | float | bool | None] | None = METADATA

    def loop() -> None:
        for _ in range(n):
            append((name, metadata, now()))

    elapsed = _timed(loop)
    assert len(queue) == n
    return elapsed


def deque_copy_floor(n: int) -> float:
    """Seconds for ``n`` ``deque.append((name, metadata.copy(), time.time()))`` calls.

    Informational: the floor with the timestamp read and the shallow copy of
    the metadata that log_event takes at the call, so the copy's own cost shows.
    """
    queue: deque[tuple[str, Mapping[str, int | float | bool | None] | None, float]] = deque()
    append = queue.append
    now = time.time
    name: str = NAME
    metadata: dict[str, int | float | bool | None] = METADATA

    def loop() -> None:
        for _ in range(n):
            append((name, metadata.copy(), now()))

    elapsed = _timed(loop)
    assert len(queue) == n
    return elapsed


def encode_floor(n: int, envelope: object) -> float:
    """Seconds for ``n`` ``msgspec.json.encode(envelope)`` calls."""
    encode = msgspec.json.encode

    def loop() -> None:
        for _ in range(n):
            encode(envelope)

    return _timed(loop)


def bench_config(storage_dir: str, *, write_ahead: bool = False) -> eventlog.Config:
    """A logger that never exports on its own while the loop runs."""
    return eventlog.Config(
        base_url="http://127.0.0.1:9",
        storage_dir=storage_dir,
        max_queue_size=200_000,
        max_export_batch_size=200_000,
        scheduled_delay=3600,
        write_ahead=write_ahead,
        # Write-ahead commits every queued event to the spool: 100k enriched
        # events are ~80 MB, past the 64 MB default, which would drop the oldest.
        max_spool_bytes=1 << 30,
    )


def bench_context() -> eventlog.EventContext:
    """Enrichment on: a context with every field, so the batch builds complete events."""
    return eventlog.EventContext(
        device_id="device-1",
        account_uuid="account-1",
        organization_uuid="org-1",
        email="user@example.com",
        app={"channel": "beta"},
    )


async def logger_run(
    storage_dir: str, n: int, *, write_ahead: bool = False
) -> tuple[float, float, object]:
    """One repeat: ``(log_event seconds, flush seconds, one captured envelope as builtins)``."""
    transport = CapturingTransport()
    context = bench_context()
    async with eventlog.open_event_logger(
        bench_config(storage_dir, write_ahead=write_ahead), transport=transport, context=context
    ) as log:
        log_event = log.log_event
        name: str = NAME
        metadata: Mapping[str, int | float | bool | None] | None = METADATA

        def loop() -> None:
            for _ in range(n):
                log_event(name, metadata)

        emit = _timed(loop)
        stats = log.stats
        assert stats.dropped_queue_full == 0, stats
        assert stats.emitted == n, stats
        assert stats.queue_depth == n, stats

        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            await log.flush()
            flush = time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()
        stats = log.stats
        assert stats.exported == n, stats
        assert stats.queue_depth == 0, stats
        assert stats.spool_bytes == 0, stats  # write-ahead: checkpointed after the ack
    assert len(transport.requests) == 1, "expected the whole queue in one POST"
    envelope = msgspec.to_builtins(transport.requests[0].events[0])
    return emit, flush, envelope


def sync_logger_run(storage_dir: str, n: int) -> float:
    """One repeat: seconds for ``n`` ``SyncEventLogger.log_event`` calls in a plain thread."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(
        bench_config(storage_dir), transport=transport, context=bench_context()
    )
    try:
        log_event = log.log_event
        name: str = NAME
        metadata: Mapping[str, int | float | bool | None] | None = METADATA
        elapsed: list[float] = []

        def loop() -> None:
            for _ in range(n):
                log_event(name, metadata)

        thread = threading.Thread(target=lambda: elapsed.append(_timed(loop)))
        thread.start()
        thread.join()
        stats = log.stats
        assert stats.dropped_queue_full == 0, stats
        assert stats.emitted == stats.queue_depth == n, stats
        assert log.flush(timeout=60.0), "the flush did not return"
    finally:
        log.close()
    assert log.stats.exported == n, log.stats
    return elapsed[0]


async def measure(n: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per event of every measurement, ``repeats`` samples each."""
    samples: dict[str, list[float]] = {
        "deque": [],
        "deque_clock": [],
        "deque_copy": [],
        "log_event": [],
        "log_event_wa": [],
        "log_event_sync": [],
        "encode": [],
        "flush": [],
        "flush_wa": [],
    }
    with tempfile.TemporaryDirectory() as storage_dir:
        for _ in range(repeats):
            samples["deque"].append(deque_floor(n) / n)
            samples["deque_clock"].append(deque_clock_floor(n) / n)
            samples["deque_copy"].append(deque_copy_floor(n) / n)
            emit, flush, envelope = await logger_run(storage_dir, n)
            samples["log_event"].append(emit / n)
            samples["flush"].append(flush / n)
            samples["encode"].append(encode_floor(n, envelope) / n)
            emit, flush, _ = await logger_run(storage_dir, n, write_ahead=True)
            samples["log_event_wa"].append(emit / n)
            samples["flush_wa"].append(flush / n)
            # Its blocking calls (flush, close) are not for a thread that runs trio.
            sync_emit = await trio.to_thread.run_sync(sync_logger_run, storage_dir, n)
            samples["log_event_sync"].append(sync_emit / n)
    return samples


def _row(label: str, values: list[float], floor: list[float]) -> str:
    best, median = min(values) * 1e6, statistics.median(values) * 1e6
    ratio_best = min(values) / min(floor)
    ratio_median = statistics.median(values) / statistics.median(floor)
    return f"{label:<34}{best:>10.3f}{median:>12.3f}{ratio_best:>11.2f}x{ratio_median:>12.2f}x"


def report(samples: dict[str, list[float]], n: int, repeats: int) -> None:
    """Print the two tables and the verdict on the target."""
    header = f"{'':<34}{'best':>10}{'median':>12}{'ratio':>12}{'ratio':>13}"
    units = f"{'':<34}{'µs/event':>10}{'µs/event':>12}{'(best)':>12}{'(median)':>13}"
    print(
        f"eventlog {eventlog.__version__} benchmarks: Python {platform.python_version()} "
        f"({sys.implementation.name}), {platform.machine()}"
    )
    print(
        f"{n} events with {len(METADATA)} numeric metadata fields; best and median of "
        f"{repeats} runs, garbage collector off while timing\n"
    )
    print("caller side: the cost of one log_event call")
    print(header)
    print(units)
    print(_row("deque.append (floor)", samples["deque"], samples["deque"]))
    print(_row("deque.append + time.time()", samples["deque_clock"], samples["deque"]))
    print(_row("  + metadata.copy()", samples["deque_copy"], samples["deque"]))
    print(_row("EventLogger.log_event", samples["log_event"], samples["deque"]))
    print(_row("log_event, write_ahead=True", samples["log_event_wa"], samples["deque"]))
    print(_row("SyncEventLogger.log_event (thread)", samples["log_event_sync"], samples["deque"]))
    ratio = min(samples["log_event"]) / min(samples["deque"])
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    clock_ratio = min(samples["log_event"]) / min(samples["deque_clock"])
    copy_ratio = min(samples["log_event"]) / min(samples["deque_copy"])
    copy_cost = (min(samples["deque_copy"]) - min(samples["deque_clock"])) / min(samples["deque"])
    print(
        f"target: log_event <= {TARGET_RATIO:g}x the deque floor (best run): "
        f"{verdict} ({ratio:.2f}x); against the floor with its timestamp read: "
        f"{clock_ratio:.2f}x; with its timestamp and the metadata copy: {copy_ratio:.2f}x"
    )
    print(f"the copy of the 5-field metadata dict alone costs {copy_cost:.2f}x the deque floor")
    sync_ratio = min(samples["log_event_sync"]) / min(samples["log_event"])
    print(
        "SyncEventLogger.log_event, called from a plain thread, costs "
        f"{sync_ratio:.2f}x EventLogger.log_event on the loop (best runs)"
    )
    wa_ratio = min(samples["log_event_wa"]) / min(samples["deque"])
    wa_verdict = "PASS" if wa_ratio <= WRITE_AHEAD_TARGET_RATIO else "FAIL"
    print(
        f"target: write-ahead log_event <= {WRITE_AHEAD_TARGET_RATIO:g}x the deque floor "
        f"(best run): {wa_verdict} ({wa_ratio:.2f}x)"
    )
    print(
        "(write-ahead: the caller only appends; the group commit runs in a background task, "
        "not during the timed loop: its cost is in the flush row and the spool figures)\n"
    )
    print("background, informational: one batch of all the events, per event")
    print(header)
    print(units)
    print(_row("msgspec.json.encode(dict) (floor)", samples["encode"], samples["encode"]))
    print(_row("flush: encode + POST + fake decode", samples["flush"], samples["encode"]))
    print(_row("flush, write_ahead=True (+ commit)", samples["flush_wa"], samples["encode"]))
    print("(the flush figures include CapturingTransport decoding the batch on the server side)")


def main(argv: list[str] | None = None) -> None:
    """Measure and print; always exits 0 (benchmarks are not tests)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "part", nargs="?", choices=["all", "e2e"], default="all", help="what to run"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for development")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.part == "all":
        repeats = QUICK_REPEATS if args.quick else REPEATS
        samples = trio.run(measure, N_EVENTS, repeats)
        report(samples, N_EVENTS, repeats)
        spool.run(quick=args.quick)
        collector.run()
    e2e.run(quick=args.quick)
    print(f"(benchmarks took {time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
