"""Caller-side cost of ``EventLogger.log_event`` and background cost of a batch.

Run from the repository root: ``python -m benchmarks``.

1. **log_event** (the target): microseconds per call for ``N_EVENTS`` calls with
   the same 5-field metadata dict, inside an open logger whose background task
   cannot run during the timed loop (the loop never awaits; the batch size and
   the queue are larger than ``N_EVENTS`` and ``scheduled_delay`` is an hour).
   The floor is a bare ``collections.deque.append`` of the same
   ``(name, metadata, 0.0)`` tuple in an equivalent loop. Target: at most
   ``TARGET_RATIO`` times the floor, judged on the best run. A second,
   informational row appends the tuple with a ``time.time()`` read, the one
   piece of work every event needs at emit (its timestamp).
2. **flush** (informational): the wall time of ``await log.flush()`` on those
   ``N_EVENTS`` queued events, per event: validating, stamping and encoding
   every envelope, joining the body, the POST through httpx, and the
   ``CapturingTransport`` decoding the batch on the other side. Its baseline
   is ``msgspec.json.encode`` of a dict equal to one envelope, per event.

Each measurement is repeated ``REPEATS`` times, interleaved, with the garbage
collector disabled while timing (as ``timeit`` does); the best and the median
are reported. A fresh logger is opened for every repeat, so its queue never
overflows (checked).
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import tempfile
import time
from collections import deque
from typing import TYPE_CHECKING, Final

import msgspec
import trio

import eventlog
from benchmarks import collector
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

N_EVENTS: Final = 100_000
REPEATS: Final = 7
TARGET_RATIO: Final = 3.0
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


def encode_floor(n: int, envelope: object) -> float:
    """Seconds for ``n`` ``msgspec.json.encode(envelope)`` calls."""
    encode = msgspec.json.encode

    def loop() -> None:
        for _ in range(n):
            encode(envelope)

    return _timed(loop)


def bench_config(storage_dir: str) -> eventlog.Config:
    """A logger that never exports on its own while the loop runs."""
    return eventlog.Config(
        base_url="http://127.0.0.1:9",
        storage_dir=storage_dir,
        max_queue_size=200_000,
        max_export_batch_size=200_000,
        scheduled_delay=3600,
    )


async def logger_run(storage_dir: str, n: int) -> tuple[float, float, object]:
    """One repeat: ``(log_event seconds, flush seconds, one captured envelope as builtins)``."""
    transport = CapturingTransport()
    # Enrichment on: a context with every field, so the batch builds complete events.
    context = eventlog.EventContext(
        device_id="device-1",
        account_uuid="account-1",
        organization_uuid="org-1",
        email="user@example.com",
        app={"channel": "beta"},
    )
    async with eventlog.open_event_logger(
        bench_config(storage_dir), transport=transport, context=context
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
    assert len(transport.requests) == 1, "expected the whole queue in one POST"
    envelope = msgspec.to_builtins(transport.requests[0].events[0])
    return emit, flush, envelope


async def measure(n: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per event of every measurement, ``repeats`` samples each."""
    samples: dict[str, list[float]] = {
        "deque": [],
        "deque_clock": [],
        "log_event": [],
        "encode": [],
        "flush": [],
    }
    with tempfile.TemporaryDirectory() as storage_dir:
        for _ in range(repeats):
            samples["deque"].append(deque_floor(n) / n)
            samples["deque_clock"].append(deque_clock_floor(n) / n)
            emit, flush, envelope = await logger_run(storage_dir, n)
            samples["log_event"].append(emit / n)
            samples["flush"].append(flush / n)
            samples["encode"].append(encode_floor(n, envelope) / n)
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
    print(_row("EventLogger.log_event", samples["log_event"], samples["deque"]))
    ratio = min(samples["log_event"]) / min(samples["deque"])
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    clock_ratio = min(samples["log_event"]) / min(samples["deque_clock"])
    print(
        f"target: log_event <= {TARGET_RATIO:g}x the deque floor (best run): "
        f"{verdict} ({ratio:.2f}x); against the floor with its timestamp read: "
        f"{clock_ratio:.2f}x\n"
    )
    print("background, informational: one batch of all the events, per event")
    print(header)
    print(units)
    print(_row("msgspec.json.encode(dict) (floor)", samples["encode"], samples["encode"]))
    print(_row("flush: encode + POST + fake decode", samples["flush"], samples["encode"]))
    print("(the flush figure includes CapturingTransport decoding the batch on the server side)")


def main() -> None:
    """Measure and print; always exits 0 (benchmarks are not tests)."""
    samples = trio.run(measure, N_EVENTS, REPEATS)
    report(samples, N_EVENTS, REPEATS)
    collector.run()


if __name__ == "__main__":
    main()
