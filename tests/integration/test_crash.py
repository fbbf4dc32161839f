"""SIGKILL in write-ahead mode (docs/delivery.md): a crash loses at most the last commit window.

A child process runs a logger with ``write_ahead=True`` against a server that
never delivers anything, logging one event per millisecond and printing
``<n> <time.monotonic()>`` right after each ``log_event``. The parent kills it
with SIGKILL at a random moment, then a fresh logger in this process takes
over the child's storage directory and replays it into a real collector.
Every event the child logged more than ``write_ahead_interval`` (50 ms) plus
the time a commit takes (``COMMIT_ALLOWANCE``) before the kill must be
stored, once. Both processes read CLOCK_MONOTONIC, so the child's times and
the parent's kill time are comparable; the kill time is read just before the
signal is sent, which only makes the check stricter. A child that had printed
nothing for ``STALL`` before the kill was not running (descheduled by a busy
machine, or held in a synchronous fsync), so no commit could happen either:
then the loss is measured from its last line instead (see
:func:`reference_time`; such children are listed in the output).

The kill moments come from ``random.Random(seed)``; the seed is printed (and
named in every failure), and ``EVENTLOG_CRASH_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx
import msgspec
import pytest
import trio

import eventlog
from eventlog.collector import Collector, Store, open_collector
from eventlog.testing import Envelope, InternalEvent, metadata_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.conftest import MakeConfig

pytestmark = pytest.mark.integration

ROOT: Final = Path(__file__).resolve().parents[2]
KILLS: Final = 20
"""Kill points per server mode."""
PARALLEL: Final = 4
"""Children alive at once."""
KILL_AFTER: Final = (0.3, 1.5)
"""Seconds between the child's first logged event and its SIGKILL."""
LOOP_KILL_AFTER: Final = (1.0, 4.0)
"""The same, in the crash loop against a healthy server.

A kill while a POST is in flight sends its chunk again: the server stored
it, the child never saw the answer. A chunk holds what was logged since the
one before, so a kill costs on average (POST latency) x (event rate) events,
and the duplicate rate is about the POST latency over the run's length:
whatever the chunk size, no client can do better without the server's help
(the collector keeps one copy by ``event_id``). Measured here, with the
server in a process of its own: 0.4-0.7 % with a kill every 1.75 s on
average, up to 1.2 % on a slower machine; a kill every 2.5 s keeps that
under 1 % with room for a few unlucky kills.
"""
WINDOW: Final = 0.05
"""The child's write_ahead_interval (the default): what a kill may lose."""
COMMIT_ALLOWANCE: Final = 0.05
"""Time a commit itself takes on top of the window.

The window opens when the committer sees the first event, and the events are
safe once its timer has fired and the write (in the spool's worker thread)
has returned, with four children busy on two CPUs. Measured on a 2-CPU VM:
lost events up to 52.4 ms old (2.4 ms past the window) in several hundred
kills on an otherwise idle machine, and up to 75.7 ms old with other test
suites running on it (a commit waiting for a CPU). docs/delivery.md states
the bound the same way: the window, plus the commit being written.
"""
STALL: Final = 0.01
"""No line for this long before the kill: the child had stalled (see :func:`reference_time`)."""
MAX_DUPLICATE_RATE: Final = 0.01
_DECODER: Final = msgspec.json.Decoder(Envelope)

# The child: a logger whose server never answers (connection refused, or a
# listener that never responds), logging an event every millisecond.
CHILD: Final = r"""
import sys, time, trio, eventlog

storage_dir, base_url, session_id = sys.argv[1:4]

async def main():
    config = eventlog.Config(
        base_url=base_url,
        storage_dir=storage_dir,
        session_id=session_id,
        service_name="crashtest",
        write_ahead=True,
        scheduled_delay=0.1,
        base_backoff=0.05,
        max_backoff=0.2,
        max_attempts=None,
    )
    out = sys.stdout
    async with eventlog.open_event_logger(config) as log:
        n = 0
        while True:
            log.log_event("tick", {"n": n})
            out.write(f"{n} {time.monotonic()!r}\n")
            out.flush()
            n += 1
            await trio.sleep(0.001)

trio.run(main)
"""


@dataclass
class Crash:
    """One child run: what it printed and when it was killed."""

    index: int
    kill_after: float
    killed_at: float = 0.0
    logged: dict[int, float] | None = None
    """``n -> time.monotonic()`` of every complete line the child printed."""
    stderr: bytes = b""
    returncode: int | None = None
    delivered: list[int] | None = None


def child_env() -> dict[str, str]:
    """The child's environment: no eventlog settings from the outside, no coverage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTLOG_", "OTEL_"))}
    env.pop("DO_NOT_TRACK", None)
    # Coverage measures a child given these (nox -s integration): tracing
    # would slow the commits whose timing the test checks.
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    env.pop("COVERAGE_PROCESS_START", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def crash_seed() -> int:
    raw = os.environ.get("EVENTLOG_CRASH_SEED", "").strip()
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


def parse_output(data: bytes) -> dict[int, float]:
    """``n -> time`` of every newline-terminated line; a torn last line is ignored."""
    logged: dict[int, float] = {}
    for line in data.split(b"\n")[:-1]:
        n, at = line.split()
        logged[int(n)] = float(at)
    return logged


@asynccontextmanager
async def unanswering_server(mode: str) -> AsyncIterator[str]:
    """A loopback base URL where no POST is ever answered.

    ``refused``: a socket bound but not listening holds the port, so every
    connection is refused. ``silent``: a trio listener accepts, reads and
    never responds.
    """
    if mode == "refused":
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{holder.getsockname()[1]}"
        return

    async def swallow(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some():
                pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, swallow, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def run_and_kill(crash: Crash, storage_dir: Path, base_url: str) -> None:
    """Start the child, SIGKILL it ``kill_after`` seconds after its first event."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, str(storage_dir), base_url, f"crash-{crash.index}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stdout, stderr = process.stdout, process.stderr
    output = bytearray()
    errors = bytearray()
    first_line = trio.Event()

    async def read_stdout() -> None:
        while chunk := await stdout.receive_some():
            output.extend(chunk)
            if b"\n" in chunk:
                first_line.set()
        first_line.set()  # EOF: the child died on its own

    async def read_stderr() -> None:
        while chunk := await stderr.receive_some():
            errors.extend(chunk)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_stdout)
            nursery.start_soon(read_stderr)
            with trio.fail_after(30):
                await first_line.wait()
            await trio.sleep(crash.kill_after)
            crash.killed_at = time.monotonic()
            process.send_signal(signal.SIGKILL)
            with trio.fail_after(30):
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(5):
                await process.wait()
        for stream in (process.stdin, stdout, stderr):
            if stream is not None:
                await stream.aclose()
    crash.logged = parse_output(bytes(output))
    crash.stderr = bytes(errors)
    crash.returncode = process.returncode


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``within`` seconds."""
    with trio.fail_after(within):
        while True:
            if condition():
                return
            await trio.sleep(0.02)


def drained(storage_dir: Path) -> bool:
    """No spool is left in ``storage_dir``: every log was drained and deleted."""
    return not any(storage_dir.glob("failed_events.*")) and not any(storage_dir.glob("spool-v2.*"))


async def recover(
    crash: Crash, storage_dir: Path, collector: Collector, make_config: MakeConfig
) -> None:
    """A fresh logger takes over the dead child's spool and delivers it to ``collector``."""
    config = make_config(
        base_url=collector.url,
        storage_dir=str(storage_dir),
        session_id=f"recovery-{crash.index}",
        write_ahead=True,
        scheduled_delay=0.1,
        batch_delay=0.0,
        base_backoff=0.05,
        max_backoff=0.2,
        max_attempts=None,
        shutdown_timeout=2.0,
    )
    async with eventlog.open_event_logger(config) as log:
        await wait_until(lambda: drained(storage_dir), within=30)
    assert log.stats.emitted == 0
    assert log.stats.exported == 0  # every event delivered here is an earlier run's
    bodies = await collector.app.run_store(
        lambda: collector.app.store.events(session_id=f"crash-{crash.index}", limit=1_000_000)
    )
    crash.delivered = numbers_of(bodies)


def reference_time(crash: Crash) -> float:
    """The moment the loss is measured from: the kill, unless the child had stalled.

    A child that printed nothing in the last ``STALL`` seconds before the kill
    was not running (the OS did not schedule it, or a synchronous fsync held
    its event loop): no commit could happen then, so its last line is the
    reference instead.
    """
    assert crash.logged is not None
    last_seen = max(crash.logged.values())
    # Both clocks are CLOCK_MONOTONIC. The kill time is read just before the
    # signal goes out, so the child may print a line or two after it, no more.
    assert last_seen < crash.killed_at + STALL, (last_seen, crash.killed_at)
    return crash.killed_at if crash.killed_at - last_seen < STALL else last_seen


def check(crash: Crash, seed: int, mode: str) -> None:
    """Everything older than the window at the kill is stored, once; nothing unknown is."""
    where = (
        f"seed {seed}, mode {mode}, child {crash.index}, killed {crash.kill_after:.3f}s "
        f"after its first event"
    )
    assert crash.returncode == -signal.SIGKILL, f"{where}: child exited on its own:\n" + (
        crash.stderr.decode(errors="replace")
    )
    assert crash.logged, f"{where}: child printed nothing"
    assert crash.delivered is not None
    reference = reference_time(crash)
    deadline = reference - WINDOW - COMMIT_ALLOWANCE
    required = {n for n, at in crash.logged.items() if at < deadline}
    assert required, f"{where}: no event older than the window at the kill"
    delivered = set(crash.delivered)
    missing = sorted(required - delivered)
    assert not missing, (
        f"{where}: {len(missing)} of {len(required)} events logged more than "
        f"{(WINDOW + COMMIT_ALLOWANCE) * 1000:.0f} ms before the kill were lost; oldest lost "
        f"{(crash.killed_at - crash.logged[missing[0]]) * 1000:.1f} ms before the kill "
        f"(n={missing[0]}); newest lost n={missing[-1]}; the child's last line came "
        f"{(crash.killed_at - max(crash.logged.values())) * 1000:.1f} ms before the kill"
    )
    # The child may have logged one event whose line the kill cut off.
    unknown = sorted(delivered - set(range(max(crash.logged) + 2)))
    assert not unknown, f"{where}: delivered events never logged: {unknown[:10]}"
    assert len(crash.delivered) == len(delivered), f"{where}: stored twice"


@asynccontextmanager
async def collector_process(db: Path) -> AsyncIterator[str]:
    """``eventlog collector`` in a process of its own, storing in ``db``: its base URL.

    The crash loop counts duplicates, and a duplicate is a POST in flight at
    the kill: how long a POST stays in flight is the server's latency. In this
    process the server would share a CPU and an event loop with the test (and,
    in ``nox -s integration``, run under the coverage tracer), which triples
    its latency and so the duplicates; a server of its own is what the
    children would meet in production.
    """
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "eventlog", "collector", "--port", "0", "--db", str(db)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=child_env(),
    )
    assert process.stdout is not None
    try:
        first = b""
        with trio.fail_after(30):
            while b"\n" not in first:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the collector exited: {first!r}"
                first += chunk
        url = first.split(b" ")[3].decode()
        assert url.startswith("http://127.0.0.1:"), first
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()


async def recover_all(storage_dir: Path, url: str, make_config: MakeConfig) -> None:
    """A last logger takes over whatever the dead children left and delivers it."""
    config = make_config(
        base_url=url,
        storage_dir=str(storage_dir),
        session_id="recovery",
        batch_delay=0.0,
        base_backoff=0.05,
        max_backoff=0.2,
        max_attempts=None,
        shutdown_timeout=2.0,
    )
    async with eventlog.open_event_logger(config) as log:
        await wait_until(lambda: drained(storage_dir), within=30)
    assert log.stats.emitted == 0


def numbers_of(bodies: list[tuple[bytes, float]]) -> list[int]:
    """The ``n`` of every stored event body."""
    delivered: list[int] = []
    for body, _ in bodies:
        event = _DECODER.decode(body)
        assert isinstance(event, InternalEvent)
        n = metadata_of(event.event_data)["n"]
        assert isinstance(n, int)
        delivered.append(n)
    return delivered


async def test_sigkill_crash_loop_against_a_healthy_server(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """20 children in a row on one spool, each killed: no loss past the window, <= 1 % sent twice.

    Each child delivers to a healthy collector (a process of its own),
    acknowledgements journalled per chunk as they come, and takes over what
    the one before it left. After the last kill a recovery logger delivers the
    rest; no spool file remains.
    """
    seed = crash_seed()
    print(f"crash loop seed: {seed} (rerun with EVENTLOG_CRASH_SEED={seed})")  # noqa: T201
    rng = random.Random(seed)
    crashes = [Crash(index=i, kill_after=rng.uniform(*LOOP_KILL_AFTER)) for i in range(KILLS)]
    storage_dir = tmp_path / "loop"
    db = tmp_path / "collector.sqlite"
    async with collector_process(db) as url:
        for crash in crashes:
            await run_and_kill(crash, storage_dir, url)
        await recover_all(storage_dir, url, make_config)
        async with httpx.AsyncClient(base_url=url) as http:
            stats = (await http.get("/api/stats")).json()
    store = Store(str(db))
    try:
        for crash in crashes:
            crash.delivered = numbers_of(
                store.events(session_id=f"crash-{crash.index}", limit=1_000_000)
            )
    finally:
        store.close()
    received, stored = stats["received"], stats["stored"]
    print(f"{KILLS} kills: {stored} events stored, {received - stored} sent twice")  # noqa: T201
    for crash in crashes:
        check(crash, seed, "healthy")
    assert drained(storage_dir)
    assert stored == sum(len(c.delivered or ()) for c in crashes)
    assert received - stored <= MAX_DUPLICATE_RATE * stored, (
        f"seed {seed}: {received - stored} duplicates for {stored} events"
    )


@pytest.mark.parametrize("mode", ["refused", "silent"])
async def test_sigkill_loses_at_most_the_last_commit_window(
    make_config: MakeConfig, tmp_path: Path, mode: str
) -> None:
    """20 SIGKILLs at random moments; each dead run's older events all reach the collector."""
    seed = crash_seed()
    print(f"crash test seed: {seed} (rerun with EVENTLOG_CRASH_SEED={seed})")  # noqa: T201
    rng = random.Random(seed)
    crashes = [Crash(index=i, kill_after=rng.uniform(*KILL_AFTER)) for i in range(KILLS)]
    limiter = trio.CapacityLimiter(PARALLEL)

    async with open_collector() as collector, unanswering_server(mode) as dead_url:

        async def one(crash: Crash) -> None:
            storage_dir = tmp_path / f"run-{crash.index}"
            async with limiter:
                await run_and_kill(crash, storage_dir, dead_url)
            await recover(crash, storage_dir, collector, make_config)

        async with trio.open_nursery() as nursery:
            for crash in crashes:
                nursery.start_soon(one, crash)

        stats = collector.stats

    stalled = {
        c.index: f"{(c.killed_at - max(c.logged.values())) * 1000:.0f} ms"
        for c in crashes
        if c.logged and reference_time(c) != c.killed_at
    }
    print(f"{len(crashes)} kills; children silent before the kill: {stalled}")  # noqa: T201
    for crash in crashes:
        check(crash, seed, mode)
    received, stored = stats.received, stats.stored
    assert stored == sum(len(c.delivered or ()) for c in crashes)
    assert received - stored <= MAX_DUPLICATE_RATE * stored, (
        f"seed {seed}: {received - stored} duplicates for {stored} events"
    )
