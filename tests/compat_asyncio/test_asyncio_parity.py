"""The public API on asyncio (through anyio): the same behaviour as on trio.

Real time, short delays: asyncio has no autojump clock, so each test waits for
a condition (bounded by ``fail_after``) instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest

import eventlog
from eventlog.testing import CapturingTransport, FrozenWallClock

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.compat_asyncio.conftest import MakeConfig

pytestmark = pytest.mark.anyio


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` is true (polling), failing after 5 s."""
    with anyio.fail_after(5.0):
        # Polling: the SDK signals no event for these conditions (stats change).
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)


async def test_runs_on_asyncio(make_config: MakeConfig) -> None:
    """The backend really is asyncio, and events are delivered on leaving the block."""
    asyncio.get_running_loop()
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a", {"n": 1})
        eventlog.log_event("b")
        assert eventlog.current_logger() is log
    assert transport.event_names() == ["a", "b"]
    assert log.stats.exported == 2


async def test_outage_and_recovery(make_config: MakeConfig) -> None:
    """Failures back off, spool, and the spool drains once the server is back."""
    transport = CapturingTransport()
    transport.fail_next(3, status=503)
    async with eventlog.open_event_logger(
        make_config(max_attempts=None), transport=transport
    ) as log:
        for i in range(20):
            log.log_event(f"e{i}")
        await log.flush()
        assert log.stats.spooled == 20
        await until(lambda: log.stats.exported == 20)
        stats = log.stats
    assert sorted(transport.event_names()) == sorted(f"e{i}" for i in range(20))
    assert stats.export_failures == 3
    assert stats.spool_bytes == 0


async def test_shutdown_drains_and_exceptions_come_out_unwrapped(make_config: MakeConfig) -> None:
    """The block's exception is itself, after the queue was delivered."""
    transport = CapturingTransport()
    with pytest.raises(ValueError, match="boom"):
        async with eventlog.open_event_logger(make_config(), transport=transport) as log:
            log.log_event("a")
            raise ValueError("boom")
    assert transport.event_names() == ["a"]


async def test_cancellation_still_drains(make_config: MakeConfig) -> None:
    """A cancelled block still delivers its queue under the shield."""
    transport = CapturingTransport(latency=0.05)
    with anyio.move_on_after(0.1) as scope:
        async with eventlog.open_event_logger(
            make_config(scheduled_delay=60.0), transport=transport
        ) as log:
            log.log_event("a")
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert transport.event_names() == ["a"]


async def test_shutdown_budget_spools_the_rest(make_config: MakeConfig, spool_dir: Path) -> None:
    """A hung server: the exit takes shutdown_timeout and the events go to disk."""
    transport = CapturingTransport(latency=30.0)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.1, export_timeout=10.0), transport=transport
    ) as log:
        log.log_event("a")
    assert log.stats.spooled == 1
    assert len(list(spool_dir.glob("spool-v2.*/*.seg"))) == 1


async def test_spool_replay_by_the_next_run(make_config: MakeConfig, spool_dir: Path) -> None:
    """What one run could not deliver, the next one delivers."""
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=CapturingTransport(status_code=503)
    ) as first:
        for i in range(5):
            first.log_event(f"e{i}")
        await first.flush()
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as second:
        await until(lambda: second.stats.replayed == 5)
    assert sorted(transport.event_names()) == [f"e{i}" for i in range(5)]
    assert list(spool_dir.glob("spool-v2.*")) == []


async def test_write_ahead_mode(make_config: MakeConfig, spool_dir: Path) -> None:
    """Write-ahead commits reach the disk before the export, on asyncio too."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(write_ahead=True, scheduled_delay=60.0), transport=transport
    ) as log:
        log.log_event("a")
        await until(lambda: log.stats.spool_bytes > 0)
        assert transport.requests == []
        await log.flush()
        assert transport.event_names() == ["a"]
        # Acknowledged: settled in the journal (the active segment file stays
        # until it is full, in write-ahead mode).
        assert log.stats.spool_events == 0


async def test_threads_and_remote_config(make_config: MakeConfig) -> None:
    """log_event from worker threads wakes the loop; a live reconfiguration applies."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=50, scheduled_delay=60.0), transport=transport
    ) as log:

        def work() -> None:
            for i in range(500):
                log.log_event("threaded", {"i": i})

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
        await until(lambda: len(transport.events()) >= 950)
        assert await log.apply_remote_config(eventlog.RemoteConfig(sampling={"noisy": 0.0}))
        log.log_event("noisy")
        assert log.stats.sampled_out == 1
    assert len(set(transport.event_ids())) == 1000


async def test_frozen_wall_clock_follows_the_asyncio_loop(make_config: MakeConfig) -> None:
    """FrozenWallClock reads asyncio's loop time, also from a worker thread."""
    clock = FrozenWallClock(epoch=0.0)
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport, clock=clock) as log:
        await anyio.to_thread.run_sync(log.log_event, "from_thread")
    [event] = transport.events()
    loop_time = asyncio.get_running_loop().time()
    stamp = event.event_data.client_timestamp  # type: ignore[union-attr]
    assert stamp.startswith("1970-01-")
    assert abs(clock.wall_time() - loop_time) < 0.5


async def test_pytest_plugin_fixtures_work_on_asyncio(
    event_logger: eventlog.EventLogger, event_transport: CapturingTransport
) -> None:
    """The plugin's event_logger fixture runs under anyio's pytest plugin as well."""
    event_logger.log_event("checkout", {"cart_size": 2})
    await event_logger.flush()
    event_transport.assert_delivered("checkout", cart_size=2)


async def test_outside_the_block_the_open_logger_is_reached(make_config: MakeConfig) -> None:
    """A task started before the block and a plain thread reach the open logger."""
    transport = CapturingTransport()
    opened, done = anyio.Event(), anyio.Event()
    seen: list[eventlog.EventLogger | None] = []

    async def outside() -> None:
        await opened.wait()
        seen.append(eventlog.current_logger())
        eventlog.log_event("from_task")
        thread = threading.Thread(target=eventlog.log_event, args=("from_thread",))
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(outside)  # its context is copied now: no logger in it
        async with eventlog.open_event_logger(make_config(), transport=transport) as log:
            opened.set()
            await done.wait()
    assert seen == [log]
    assert transport.event_names() == ["from_task", "from_thread"]
    assert eventlog.current_logger() is None
