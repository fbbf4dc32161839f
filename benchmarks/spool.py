"""The spool's background work: append and replay throughput, in one process.

1. **append**: ``APPEND_EVENTS`` records kept by a :class:`~eventlog._spool.Spool`
   in groups of ``APPEND_BATCH``, one group at a time, through the real
   :class:`~eventlog._spool.ThreadRunner` (the spool's writer task, a worker
   thread, one write and one ``fsync`` per group), in events per second.
   ``Spool.commit`` is write-ahead mode's group commit (the target);
   ``Spool.add``, awaited until written, is what an outage spools. The
   baseline, measured in the same run, is a raw ``os.write`` + ``os.fsync``
   of the same record lines in the same groups to a file opened
   ``O_APPEND``, on the calling thread: the ratio is what encoding the
   lines, the hand-off to the worker thread, the segment files (a new one
   every 4 MiB) and the spool's bookkeeping leave of the disk's own speed.
   Target (issue 11): at least ``APPEND_TARGET_RATIO`` of the raw rate. A
   second row encodes the lines (checksum and framing, in Python) before
   each write, without a spool: the ceiling of any such append, which a
   fast ``fsync`` puts well below the raw rate.
2. **replay**: a logger opened on a storage directory holding an earlier
   run's log of ``REPLAY_EVENTS`` events (version 2 segments of 4 MiB)
   takes it over (claims it, indexes it segment by segment, reads each
   segment's payloads when it drains it) and delivers every event to a
   ``CapturingTransport`` (chunks of 200 through httpx, ``batch_delay=0``),
   in events per second from opening the logger to the last
   acknowledgement. No live traffic, no real server: the end-to-end
   benchmark (``benchmarks/e2e.py``) replays 200,000 events next to live
   events against a real HTTP server. The baseline is reading the
   segments' record lines (``read_lines`` of every file). Target (kept
   from the previous spool): at least ``REPLAY_TARGET_RATIO`` of that rate.

Each measurement is repeated (``REPEATS`` times, once with ``--quick``),
interleaved with its baseline, and the best run is reported (as ``timeit``
does); the garbage collector is off while timing. Benchmarks are not tests:
whatever they measure, they exit 0.
"""

from __future__ import annotations

import base64
import gc
import glob
import os
import tempfile
import time
import traceback
import uuid
from functools import partial
from typing import TYPE_CHECKING, Final, final

import httpx
import trio

import eventlog
from eventlog._clock import SystemClock
from eventlog._records import Record
from eventlog._spool import DEFAULT_SEGMENT_BYTES, FileOps, Spool, ThreadRunner
from eventlog._spool._format import (
    LOCK_NAME,
    encode_record_line,
    encode_record_lines,
    read_lines,
    run_name,
    segment_name,
)
from eventlog._stats import Counters
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["run", "write_earlier_log"]

APPEND_EVENTS: Final = 50_000
APPEND_BATCH: Final = 200
APPEND_TARGET_RATIO: Final = 0.5
REPLAY_EVENTS: Final = 100_000
REPLAY_TARGET_RATIO: Final = 0.1
REPEATS: Final = 3
QUICK_REPEATS: Final = 1


def _timed(work: Callable[[], None]) -> float:
    """Seconds ``work()`` takes, with the garbage collector off."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        work()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def payloads(n: int) -> list[bytes]:
    """``n`` envelopes shaped like the logger's own (about 360 bytes each)."""
    out: list[bytes] = []
    for i in range(n):
        metadata = base64.b64encode(b'{"n":%d,"cold_start_ms":41.5,"first_run":true}' % i)
        out.append(
            b'{"event_type":"InternalEvent","event_data":{"event_id":"%s",'
            b'"event_name":"benchmark_event","client_timestamp":"2026-01-01T00:00:00.000Z",'
            b'"session_id":"bench-session","device_id":"device-1",'
            b'"env":{"platform":"linux","arch":"x86_64","python":"3.11.7"},'
            b'"process":{"pid":4242,"uptime_s":%d.5},'
            b'"service":{"name":"bench","version":"1.0.0"},"additional_metadata":"%s"}}'
            % (uuid.uuid4().hex.encode(), i, metadata)
        )
    return out


def write_earlier_log(
    storage_dir: str,
    data: list[bytes],
    *,
    session_id: str = "earlier",
    attempts: int = 1,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> int:
    """Write ``data`` as an earlier run's version 2 log in ``storage_dir``; its bytes.

    What a run that could not deliver them leaves behind: a log directory
    with its ``lock`` file (unlocked: the run is gone) and segments of about
    ``segment_bytes``, each record tried ``attempts`` times. No journal: none
    of them was settled.
    """
    now = time.time()
    directory = os.path.join(storage_dir, run_name(session_id, uuid.uuid4().hex))
    os.makedirs(directory, mode=0o700)
    with open(os.path.join(directory, LOCK_NAME), "wb"):
        pass
    total = 0
    number = 1
    lines: list[bytes] = []
    size = 0

    def seal() -> None:
        nonlocal number, size, total
        with open(os.path.join(directory, segment_name(number)), "wb") as file:
            file.write(b"".join(lines))
        number += 1
        total += size
        lines.clear()
        size = 0

    for payload in data:
        line = encode_record_line(len(lines), attempts, now, payload)
        lines.append(line)
        size += len(line)
        if size >= segment_bytes:
            seal()
    if lines:
        seal()
    return total


# -- append ----------------------------------------------------------------------


def raw_append(directory: str, chunks: list[bytes]) -> float:
    """Seconds to write and fsync each of ``chunks`` in turn to a fresh file."""
    path = os.path.join(directory, f"raw-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:

        def work() -> None:
            for chunk in chunks:
                os.write(fd, chunk)
                os.fsync(fd)

        return _timed(work)
    finally:
        os.close(fd)
        os.unlink(path)


def encoded_append(directory: str, data: list[bytes]) -> float:
    """Seconds to encode each group's record lines, write and fsync them: no spool around it.

    The ceiling of any append that checksums and frames its records in
    Python: the spool adds its bookkeeping and a thread hand-off to this.
    """
    path = os.path.join(directory, f"encoded-{uuid.uuid4().hex}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    now = time.time()
    try:

        def work() -> None:
            for i in range(0, len(data), APPEND_BATCH):
                group = data[i : i + APPEND_BATCH]
                lines = encode_record_lines((n, 0, now, p) for n, p in enumerate(group, start=i))
                os.write(fd, b"".join(lines))
                os.fsync(fd)

        return _timed(work)
    finally:
        os.close(fd)
        os.unlink(path)


def _new_spool(directory: str) -> Spool:
    return Spool(
        directory,
        "bench",
        uuid.uuid4().hex,
        Counters(),
        clock=SystemClock(),
        ops=FileOps(),
        runner=ThreadRunner(),
        reader=ThreadRunner(),
        max_bytes=1 << 40,
    )


async def spool_append(directory: str, data: list[bytes], *, commit: bool) -> float:
    """Seconds for a spool to keep ``data``, ``APPEND_BATCH`` at a time, each group on disk."""
    spool = _new_spool(directory)
    batches = [
        [Record(p) for p in data[i : i + APPEND_BATCH]] for i in range(0, len(data), APPEND_BATCH)
    ]
    enabled = gc.isenabled()
    async with trio.open_nursery() as nursery:
        await nursery.start(spool.run)
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for batch in batches:
                if commit:
                    ok = await spool.commit(batch)
                else:
                    append = spool.add(batch)
                    ok = append is not None
                    if append is not None:
                        await append.done.wait()
                if not ok:
                    raise OSError(f"the disk refused an append: {spool.problem}")
            elapsed = time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()
        found = records_on_disk(spool.own.directory or "")
        assert found == len(data), f"{found} of {len(data)} records on disk"
        # Settled: the spool deletes its segments (and its log at close).
        spool.settle(done=[r for batch in batches for r in batch])
        await spool.written()
        nursery.cancel_scope.cancel()
    await spool.close()
    return elapsed


def records_on_disk(directory: str) -> int:
    """Valid record lines in the segments of the log ``directory``."""
    found = 0
    for path in glob.glob(os.path.join(directory, "*.seg")):
        with open(path, "rb") as file:
            found += len(read_lines(file.read())[0])
    return found


def measure_append(directory: str, repeats: int) -> dict[str, list[float]]:
    """Events/s samples: raw write + fsync, with encoding, ``Spool.commit``, ``Spool.add``."""
    data = payloads(APPEND_EVENTS)
    now = time.time()
    chunks = [
        b"".join(
            encode_record_line(n, 0, now, p)
            for n, p in enumerate(data[i : i + APPEND_BATCH], start=i)
        )
        for i in range(0, len(data), APPEND_BATCH)
    ]
    rates: dict[str, list[float]] = {"raw": [], "encoded": [], "commit": [], "add": []}
    for _ in range(repeats):
        rates["raw"].append(APPEND_EVENTS / raw_append(directory, chunks))
        rates["encoded"].append(APPEND_EVENTS / encoded_append(directory, data))
        seconds = trio.run(partial(spool_append, directory, data, commit=True))
        rates["commit"].append(APPEND_EVENTS / seconds)
        seconds = trio.run(partial(spool_append, directory, data, commit=False))
        rates["add"].append(APPEND_EVENTS / seconds)
    return rates


# -- replay ------------------------------------------------------------------------


@final
class _CountingTransport(httpx.AsyncBaseTransport):
    """A ``CapturingTransport`` that notes when ``target`` events have been acknowledged."""

    def __init__(self, target: int) -> None:
        self.inner = CapturingTransport()
        self.target = target
        self.acked = 0
        self.done = trio.Event()
        self.finished_at = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        last = self.inner.requests[-1]
        if last.delivered:
            self.acked += len(last.events)
        if self.acked >= self.target and not self.done.is_set():
            self.finished_at = time.perf_counter()
            self.done.set()
        return response


async def replay_once(storage_dir: str, n: int) -> float:
    """Seconds for a fresh logger to take over ``storage_dir`` and deliver its ``n`` events."""
    transport = _CountingTransport(n)
    config = eventlog.Config(
        base_url="http://127.0.0.1:9",
        storage_dir=storage_dir,
        scheduled_delay=3600,
        batch_delay=0.0,
        max_attempts=None,
        max_spool_bytes=1 << 30,
    )
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        async with eventlog.open_event_logger(config, transport=transport) as log:
            with trio.fail_after(120):
                await transport.done.wait()
        elapsed = transport.finished_at - start
    finally:
        if enabled:
            gc.enable()
    stats = log.stats
    assert (stats.taken_over, stats.replayed, stats.exported) == (n, n, 0), stats
    assert len(set(transport.inner.event_ids())) == n
    return elapsed


def parse_once(storage_dir: str, n: int) -> float:
    """Seconds to read every segment of ``storage_dir`` and decode its record lines."""
    paths = sorted(glob.glob(os.path.join(storage_dir, "*", "*.seg")))
    found = 0

    def work() -> None:
        nonlocal found
        for path in paths:
            with open(path, "rb") as file:
                found += len(read_lines(file.read())[0])

    elapsed = _timed(work)
    assert found == n
    return elapsed


def measure_replay(directory: str, repeats: int) -> tuple[list[float], list[float], int]:
    """Events/s samples ``(logger takeover and delivery, read_lines)``, and the log's bytes."""
    data = payloads(REPLAY_EVENTS)
    replay_rates: list[float] = []
    parse_rates: list[float] = []
    size = 0
    for _ in range(repeats):
        storage_dir = os.path.join(directory, f"replay-{uuid.uuid4().hex}")
        os.mkdir(storage_dir, 0o700)
        size = write_earlier_log(storage_dir, data)
        parse_rates.append(REPLAY_EVENTS / parse_once(storage_dir, REPLAY_EVENTS))
        seconds = trio.run(replay_once, storage_dir, REPLAY_EVENTS)
        assert os.listdir(storage_dir) == [], "the log was not drained"
        os.rmdir(storage_dir)
        replay_rates.append(REPLAY_EVENTS / seconds)
    return replay_rates, parse_rates, size


# -- report ------------------------------------------------------------------------


def _row(label: str, rates: list[float], floor: list[float]) -> str:
    best, worst = max(rates), min(rates)
    return f"{label:<48}{best:>12,.0f}{worst:>12,.0f}{best / max(floor):>9.2f}x"


def run(*, quick: bool = False) -> None:
    """Measure and print the spool figures; a failure is printed, never raised."""
    repeats = QUICK_REPEATS if quick else REPEATS
    try:
        with tempfile.TemporaryDirectory(prefix="eventlog-spool-") as directory:
            append = measure_append(directory, repeats)
            replay, parse, size = measure_replay(directory, repeats)
    except Exception:  # noqa: BLE001 -- a benchmark reports, it does not fail
        print(f"\nspool benchmark failed:\n{traceback.format_exc(limit=8)}")
        return
    header = f"{'':<48}{'best':>12}{'worst':>12}{'ratio':>10}"
    units = f"{'':<48}{'events/s':>12}{'events/s':>12}{'(best)':>10}"
    print(
        f"\nspool, in one process: best and worst of {repeats} runs, garbage collector off "
        "while timing"
    )
    line = len(encode_record_line(0, 0, time.time(), payloads(1)[0]))
    print(
        f"append: {APPEND_EVENTS} events (~{line}-byte record lines) in groups of "
        f"{APPEND_BATCH}, one group at a time, each one write + one fsync; the spool's "
        "writes in its worker thread (ThreadRunner), segments of 4 MiB"
    )
    print(header)
    print(units)
    raw = append["raw"]
    print(_row("raw os.write + os.fsync, same bytes (floor)", raw, raw))
    print(_row("encode lines + write + fsync (no spool)", append["encoded"], raw))
    print(_row("Spool.commit (write-ahead group commit)", append["commit"], raw))
    print(_row("Spool.add, awaited (an outage's spooling)", append["add"], raw))
    ratio = max(append["commit"]) / max(raw)
    verdict = "PASS" if ratio >= APPEND_TARGET_RATIO else "FAIL"
    print(
        f"target: spool append >= {APPEND_TARGET_RATIO:g}x a raw write + fsync of the same "
        f"bytes (Spool.commit, best run): {verdict} ({ratio:.2f}x, "
        f"{max(append['commit']):,.0f} events/s)\n"
    )
    print(
        f"replay: a new logger takes over an earlier run's log of {REPLAY_EVENTS} events "
        f"({size / (1 << 20):.0f} MiB of segments) and delivers them to a CapturingTransport "
        "(chunks of 200, batch_delay 0, no live events)"
    )
    print(header)
    print(units)
    print(_row("read_lines of every segment (floor)", parse, parse))
    print(_row("takeover + delivery, open to last ack", replay, parse))
    best = max(replay)
    ratio = best / max(parse)
    verdict = "PASS" if ratio >= REPLAY_TARGET_RATIO else "FAIL"
    print(
        f"target: replay >= {REPLAY_TARGET_RATIO:g}x the read_lines rate (best run): "
        f"{verdict} ({ratio:.2f}x, {best:,.0f} events/s, {REPLAY_EVENTS / best:.2f}s for "
        f"{REPLAY_EVENTS} events)"
    )


if __name__ == "__main__":
    run()
