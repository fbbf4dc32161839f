"""log_event from worker threads, and the ambient logger across tasks (docs/delivery.md)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest
import trio
import trio.lowlevel
import trio.testing

import eventlog
from eventlog._threads import LoopWaker
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


async def test_ten_thousand_events_from_four_threads(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """4 threads x 2500 events: every event delivered exactly once, none refused."""
    transport = CapturingTransport()
    # The threads log faster than any export goes: the queue holds them all, so
    # that only the thread safety of the emit path is under test.
    config = make_config(max_queue_size=10_000)
    async with eventlog.open_event_logger(config, transport=transport) as log:

        def work(thread: int) -> None:
            for i in range(2500):
                log.log_event("threaded", {"thread": thread, "i": i})

        async with trio.open_nursery() as nursery:
            for thread in range(4):
                nursery.start_soon(trio.to_thread.run_sync, work, thread)
    ids = transport.event_ids()
    assert len(ids) == len(set(ids)) == 10_000
    stats = log.stats
    assert stats.emitted == stats.exported == 10_000
    assert stats.dropped_queue_full == 0


async def test_a_full_batch_logged_from_a_thread_wakes_the_processor(
    make_config: MakeConfig, mock_clock: trio.testing.MockClock
) -> None:
    """With time frozen, only the thread's wake-up can trigger the export of a full batch."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=5, scheduled_delay=3600.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:

        def work() -> None:
            for i in range(5):
                log.log_event("t", {"i": i})

        thread = threading.Thread(target=work)
        thread.start()
        await trio.to_thread.run_sync(thread.join)
        for _ in range(1000):
            if transport.requests:
                break
            await trio.lowlevel.checkpoint()
        assert trio.current_time() == 0.0
        assert len(transport.events()) == 5


async def test_ambient_log_event_from_anyio_and_trio_threads(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """to_thread workers copy the context, so eventlog.log_event reaches the block's logger."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport):
        await anyio.to_thread.run_sync(eventlog.log_event, "from_anyio")
        await trio.to_thread.run_sync(eventlog.log_event, "from_trio")
    assert transport.event_names() == ["from_anyio", "from_trio"]


async def test_two_loggers_in_two_tasks_do_not_see_each_other(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Each task's ambient logger is its own block's."""
    transports = {"one": CapturingTransport(), "two": CapturingTransport()}
    seen: dict[str, eventlog.EventLogger | None] = {}

    async def task(name: str) -> None:
        async with eventlog.open_event_logger(make_config(), transport=transports[name]) as log:
            await trio.sleep(1)
            seen[name] = eventlog.current_logger()
            assert seen[name] is log
            eventlog.log_event(f"event-{name}")
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(task, "one")
        nursery.start_soon(task, "two")
    assert seen["one"] is not seen["two"]
    assert transports["one"].event_names() == ["event-one"]
    assert transports["two"].event_names() == ["event-two"]
    assert eventlog.current_logger() is None


async def test_frozen_wall_clock_stamps_events_from_threads(
    make_config: MakeConfig, mock_clock: trio.testing.MockClock
) -> None:
    """A test clock reads the loop's time from a worker thread too: no error, exact stamps.

    Without autojump: virtual time must not jump while the thread runs (pitfall 2).
    """
    from eventlog.testing import FrozenWallClock

    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=0.0)
    ) as log:
        mock_clock.jump(2.5)
        await trio.to_thread.run_sync(log.log_event, "from_thread")
        await log.flush()
    [event] = transport.events()
    assert event.event_data.event_name == "from_thread"  # type: ignore[union-attr]
    assert event.event_data.client_timestamp == "1970-01-01T00:00:02.500Z"  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_wake_up_from_a_thread_after_the_loop_ended_is_dropped_not_raised(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """LoopWaker.call from another thread once its loop has ended: a DEBUG line, no error."""

    async def make() -> LoopWaker:
        return LoopWaker()

    waker = anyio.run(make, backend=backend)
    called: list[str] = []
    caplog.set_level(logging.DEBUG, logger="eventlog")
    thread = threading.Thread(target=waker.call, args=(lambda: called.append("late"),))
    thread.start()
    thread.join(5.0)
    assert called == []
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("wake-up from a thread not delivered")


def test_on_the_loops_own_thread_the_callback_runs_at_once() -> None:
    """LoopWaker.call on the thread that made it runs the callback before returning."""
    called: list[str] = []

    async def main() -> None:
        LoopWaker().call(lambda: called.append("now"))
        assert called == ["now"]

    trio.run(main)
