"""eventlog.log_event and current_logger outside any block: the process's open logger."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport
from tests.fork_support import fork_in_place

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


class Holder:
    """Opens a logger in a task of a nursery opened before it, and closes it on demand."""

    def __init__(self, make_config: MakeConfig, **overrides: object) -> None:
        self.config = make_config(**overrides)
        self.transport = CapturingTransport()
        self.logger: eventlog.EventLogger | None = None
        self.seen_inside: eventlog.EventLogger | None = None
        self.opened = trio.Event()
        self.close = trio.Event()
        self.closed = trio.Event()

    async def run(self) -> None:
        async with eventlog.open_event_logger(self.config, transport=self.transport) as log:
            self.logger = log
            self.seen_inside = eventlog.current_logger()
            eventlog.log_event("inside")
            self.opened.set()
            await self.close.wait()
        self.closed.set()

    async def start(self, nursery: trio.Nursery) -> eventlog.EventLogger:
        nursery.start_soon(self.run)
        await self.opened.wait()
        assert self.logger is not None
        return self.logger

    async def stop(self) -> None:
        self.close.set()
        await self.closed.wait()


async def test_with_two_loggers_open_the_context_variable_wins_inside_each_block(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Inside each block, current_logger() and log_event are that block's logger."""
    first, second = Holder(make_config), Holder(make_config)
    async with trio.open_nursery() as nursery:
        one = await first.start(nursery)
        two = await second.start(nursery)
        assert (first.seen_inside, second.seen_inside) == (one, two)
        await first.stop()
        await second.stop()
    assert first.transport.event_names() == ["inside"]
    assert second.transport.event_names() == ["inside"]


async def test_outside_any_block_the_first_opened_logger_is_used(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A task whose context has no logger reaches the first one opened, not a later one."""
    first, second = Holder(make_config), Holder(make_config)
    async with trio.open_nursery() as nursery:
        one = await first.start(nursery)
        await second.start(nursery)
        assert eventlog.current_logger() is one
        eventlog.log_event("outside")
        await first.stop()
        await second.stop()
    assert first.transport.event_names() == ["inside", "outside"]
    assert second.transport.event_names() == ["inside"]


async def test_when_the_first_closes_the_fallback_is_the_next_then_none(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The fallback moves to the next open logger in opening order, then is cleared."""
    first, second, third = Holder(make_config), Holder(make_config), Holder(make_config)
    async with trio.open_nursery() as nursery:
        await first.start(nursery)
        two = await second.start(nursery)
        three = await third.start(nursery)
        await first.stop()
        assert eventlog.current_logger() is two
        eventlog.log_event("to_second")
        await second.stop()
        assert eventlog.current_logger() is three
        await third.stop()
        assert eventlog.current_logger() is None
        eventlog.log_event("to_nobody")
    assert first.transport.event_names() == ["inside"]
    assert second.transport.event_names() == ["inside", "to_second"]
    assert third.transport.event_names() == ["inside"]


async def test_a_plain_thread_reaches_the_open_logger(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """current_logger() in a threading.Thread is the open logger; its events are delivered."""
    holder = Holder(make_config)
    seen: list[eventlog.EventLogger | None] = []

    def work() -> None:
        seen.append(eventlog.current_logger())
        eventlog.log_event("from_thread", {"n": 1})
        logger = eventlog.current_logger()
        assert logger is not None
        logger.log_event("through_current_logger")

    async with trio.open_nursery() as nursery:
        log = await holder.start(nursery)
        thread = threading.Thread(target=work)
        thread.start()
        await trio.to_thread.run_sync(thread.join)
        await holder.stop()
    assert seen == [log]
    assert holder.transport.event_names() == ["inside", "from_thread", "through_current_logger"]


async def test_a_disabled_logger_opened_first_keeps_the_fallback_a_no_op(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A disabled logger is registered like any other: outside the blocks, nothing is sent."""
    disabled, enabled = Holder(make_config, enabled=False), Holder(make_config)
    async with trio.open_nursery() as nursery:
        off = await disabled.start(nursery)
        await enabled.start(nursery)
        assert eventlog.current_logger() is off
        eventlog.log_event("outside")
        await disabled.stop()
        assert eventlog.current_logger() is enabled.logger
        await enabled.stop()
    assert disabled.transport.requests == []
    assert enabled.transport.event_names() == ["inside"]


def test_log_event_with_no_logger_open_is_a_no_op() -> None:
    """eventlog.log_event outside any block, with no logger open, does nothing and returns."""
    assert eventlog.current_logger() is None
    eventlog.log_event("nobody", {"n": 1})
    assert eventlog.current_logger() is None


async def test_a_logger_stops_being_the_fallback_when_it_stops_accepting(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Once its block is left the logger is no longer reached, even while it drains."""
    transport = CapturingTransport(latency=10.0)
    seen: list[eventlog.EventLogger | None] = []
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            # Started before the block, so its context has no logger; it looks
            # while the block drains (the POST takes 10 s of virtual time).
            await trio.sleep(5.0)
            seen.append(eventlog.current_logger())

        nursery.start_soon(watch)
        async with eventlog.open_event_logger(
            make_config(shutdown_timeout=30.0), transport=transport
        ) as log:
            log.log_event("queued")
    assert seen == [None]
    assert transport.event_names() == ["queued"]


async def test_the_module_level_function_in_a_test_reaches_the_fixtures_logger(
    event_logger: eventlog.EventLogger, event_transport: CapturingTransport
) -> None:
    """The plugin's logger is opened in a fixture's task: the test reaches it as the open one."""
    eventlog.log_event("search", {"results": 12})
    assert eventlog.current_logger() is event_logger
    await event_logger.flush()
    event_transport.assert_delivered("search", results=12)


async def test_in_a_forked_child_a_logger_no_facade_runs_is_not_the_fallback(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After a fork, an open_event_logger logger (its loop is the parent's) is dropped."""
    holder = Holder(make_config)
    async with trio.open_nursery() as nursery:
        await holder.start(nursery)
        fork_in_place()
        assert eventlog.current_logger() is None
        eventlog.log_event("outside")
        await holder.stop()
    assert holder.transport.event_names() == ["inside"]
