"""Write-ahead mode's background work: spool append and replay throughput.

1. **append**: ``Spool.append`` of ``APPEND_EVENTS`` records in batches of
   ``APPEND_BATCH``, each append one write and one fsync (a write-ahead group
   commit), in events per second. The baseline, measured in the same run, is
   a raw ``os.write`` + ``os.fsync`` of the same bytes in the same batches to
   a file opened ``O_APPEND``: the ratio is what encoding the lines and the
   spool's bookkeeping leave of the disk's own speed. Target: at least
   ``APPEND_TARGET_RATIO`` of the raw rate.
2. **replay**: a logger opened on a storage directory holding one spool file
   of ``REPLAY_EVENTS`` events left by an earlier run takes it over (read,
   parse, append to its own spool with one fsync, delete the old file) and
   delivers every event to a ``CapturingTransport`` (chunks of 200 through
   httpx, ``batch_delay=0``), in events per second from opening the logger
   to the last acknowledgement. The baseline is ``parse_lines`` of the same
   file. Target: at least ``REPLAY_TARGET_RATIO`` of the parse rate (taking
   over, appending, encoding bodies, POSTing and acknowledging cost at most
   ten times the parsing).

Each measurement is repeated, interleaved with its baseline, and the best
run is reported (as ``timeit`` does); the garbage collector is off while
timing. Benchmarks are not tests: whatever they measure, they exit 0.
"""

from __future__ import annotations

import base64
import gc
import os
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Final, final

import httpx
import trio

import eventlog
from eventlog._spool import Record, RecordState, Spool, encode_line, parse_lines, spool_file_name
from eventlog._stats import Counters
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["run"]

APPEND_EVENTS: Final = 50_000
APPEND_BATCH: Final = 200
APPEND_REPEATS: Final = 3
APPEND_TARGET_RATIO: Final = 0.25
REPLAY_EVENTS: Final = 100_000
REPLAY_REPEATS: Final = 3
REPLAY_TARGET_RATIO: Final = 0.1


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


def spool_append(directory: str, data: list[bytes]) -> tuple[float, list[float]]:
    """Seconds for ``Spool.append`` of ``data`` in batches of ``APPEND_BATCH``, and per append."""
    spool = Spool(
        directory, "bench", uuid.uuid4().hex, Counters(), max_bytes=1 << 40, wall_time=time.time
    )
    batches = [
        [Record(p) for p in data[i : i + APPEND_BATCH]] for i in range(0, len(data), APPEND_BATCH)
    ]
    each: list[float] = []

    def work() -> None:
        clock = time.perf_counter
        append = spool.append
        for batch in batches:
            start = clock()
            append(batch)
            each.append(clock() - start)

    try:
        elapsed = _timed(work)
        assert len(spool) == len(data)
        assert all(r.persisted for r in spool.records), "the disk refused an append"
        with open(spool.path, "rb") as file:
            assert len(parse_lines(file.read(), Counters())) == len(data)
        return elapsed, each
    finally:
        for record in spool.records:
            record.state = RecordState.ACKED
        spool.settle()  # empty: removes the file
        spool.close()


def measure_append(directory: str) -> tuple[list[float], list[float], list[float]]:
    """``(Spool.append events/s, raw write + fsync events/s, seconds per append of the best)``."""
    data = payloads(APPEND_EVENTS)
    chunks = [
        b"".join(encode_line(Record(p)) for p in data[i : i + APPEND_BATCH])
        for i in range(0, len(data), APPEND_BATCH)
    ]
    spool_rates: list[float] = []
    raw_rates: list[float] = []
    best_each: list[float] = []
    for _ in range(APPEND_REPEATS):
        raw_rates.append(APPEND_EVENTS / raw_append(directory, chunks))
        elapsed, each = spool_append(directory, data)
        if not spool_rates or APPEND_EVENTS / elapsed > max(spool_rates):
            best_each = each
        spool_rates.append(APPEND_EVENTS / elapsed)
    return spool_rates, raw_rates, best_each


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


def spool_file(data: list[bytes]) -> bytes:
    """The bytes of a spool file holding ``data``, each tried once already."""
    now = time.time()
    return b"".join(encode_line(Record(p, attempts=1, spooled_at=now)) for p in data)


def prepare_storage_dir(directory: str, content: bytes) -> str:
    """A fresh storage directory holding ``content`` as an earlier run's spool file."""
    storage_dir = os.path.join(directory, f"replay-{uuid.uuid4().hex}")
    os.mkdir(storage_dir, 0o700)
    with open(os.path.join(storage_dir, spool_file_name("earlier", uuid.uuid4().hex)), "wb") as f:
        f.write(content)
        os.fsync(f.fileno())
    return storage_dir


async def replay_once(storage_dir: str, n: int) -> float:
    """Seconds for a fresh logger to take over ``storage_dir`` and deliver its ``n`` events."""
    transport = _CountingTransport(n)
    config = eventlog.Config(
        base_url="http://127.0.0.1:9",
        storage_dir=storage_dir,
        write_ahead=True,
        scheduled_delay=3600,
        batch_delay=0.0,
        max_attempts=None,
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


def parse_once(content: bytes, n: int) -> float:
    """Seconds for ``parse_lines`` of ``content``."""
    found: list[Record] = []

    def work() -> None:
        found.extend(parse_lines(content, Counters()))

    elapsed = _timed(work)
    assert len(found) == n
    return elapsed


def measure_replay(directory: str) -> tuple[list[float], list[float]]:
    """Events/s samples: ``(logger takeover and delivery, parse_lines)``."""
    content = spool_file(payloads(REPLAY_EVENTS))
    replay_rates: list[float] = []
    parse_rates: list[float] = []
    for _ in range(REPLAY_REPEATS):
        parse_rates.append(REPLAY_EVENTS / parse_once(content, REPLAY_EVENTS))
        storage_dir = prepare_storage_dir(directory, content)
        seconds = trio.run(replay_once, storage_dir, REPLAY_EVENTS)
        assert os.listdir(storage_dir) == [], "the spool was not drained"
        os.rmdir(storage_dir)
        replay_rates.append(REPLAY_EVENTS / seconds)
    return replay_rates, parse_rates


# -- report ------------------------------------------------------------------------


def _row(label: str, rates: list[float], floor: list[float]) -> str:
    best, worst = max(rates), min(rates)
    return f"{label:<48}{best:>12,.0f}{worst:>12,.0f}{best / max(floor):>9.2f}x"


def run() -> None:
    """Measure and print the spool figures (write-ahead mode's background work)."""
    with tempfile.TemporaryDirectory() as directory:
        append, raw, each = measure_append(directory)
        replay, parse = measure_replay(directory)
    header = f"{'':<48}{'best':>12}{'worst':>12}{'ratio':>10}"
    units = f"{'':<48}{'events/s':>12}{'events/s':>12}{'(best)':>10}"
    print(
        f"\nspool, write-ahead mode's background work: best and worst of "
        f"{APPEND_REPEATS} and {REPLAY_REPEATS} runs, garbage collector off while timing"
    )
    print(
        f"append: {APPEND_EVENTS} events (~{len(payloads(1)[0])} bytes each) in batches of "
        f"{APPEND_BATCH}, one write + one fsync per batch"
    )
    print(header)
    print(units)
    print(_row("raw os.write + os.fsync, same bytes (floor)", raw, raw))
    print(_row("Spool.append (encode lines, write, fsync)", append, raw))
    ratio = max(append) / max(raw)
    verdict = "PASS" if ratio >= APPEND_TARGET_RATIO else "FAIL"
    print(
        f"target: Spool.append >= {APPEND_TARGET_RATIO:g}x the raw write + fsync rate "
        f"(best run): {verdict} ({ratio:.2f}x, {max(append):,.0f} events/s)"
    )
    tenth = max(1, len(each) // 10)
    first, last = sum(each[:tenth]) / tenth, sum(each[-tenth:]) / tenth
    print(
        f"informational: one append of {APPEND_BATCH} takes {first * 1e3:.2f} ms on average "
        f"over the first {tenth} appends and {last * 1e3:.2f} ms over the last {tenth} "
        f"({last / first:.1f}x as the spool grows to {APPEND_EVENTS} records)\n"
    )
    print(
        f"replay: a new logger takes over a spool file of {REPLAY_EVENTS} events and "
        "delivers them to a CapturingTransport (chunks of 200, batch_delay 0)"
    )
    print(header)
    print(units)
    print(_row("parse_lines of the file (floor)", parse, parse))
    print(_row("takeover + delivery, open to last ack", replay, parse))
    best = max(replay)
    ratio = best / max(parse)
    verdict = "PASS" if ratio >= REPLAY_TARGET_RATIO else "FAIL"
    print(
        f"target: replay >= {REPLAY_TARGET_RATIO:g}x the parse_lines rate (best run): "
        f"{verdict} ({ratio:.2f}x, {best:,.0f} events/s, {REPLAY_EVENTS / best:.2f}s for "
        f"{REPLAY_EVENTS} events)"
    )


if __name__ == "__main__":
    run()
