"""Clock-driven deadlines: one mechanism for every wait, on any clock."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio
import pytest
import trio
import trio.lowlevel
import trio.testing

from eventlog._clock import SystemClock, deadline_scope, sleep, wait_event_until, wall_time_function
from eventlog.testing import FrozenWallClock

if TYPE_CHECKING:
    from eventlog._clock import Clock


async def test_deadline_cancels_the_body(autojump_clock: trio.testing.MockClock) -> None:
    """The scope is cancelled when the clock reaches the deadline."""
    clock = SystemClock()
    async with deadline_scope(clock, 5.0) as scope:
        await trio.sleep(100)
    assert scope.cancelled_caught
    assert trio.current_time() == 5.0


async def test_body_that_finishes_in_time_is_not_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A body done before the deadline leaves at once, no watcher left behind."""
    async with deadline_scope(SystemClock(), 5.0) as scope:
        await trio.sleep(1)
    assert not scope.cancelled_caught
    assert trio.current_time() == 1.0


@pytest.mark.parametrize("clock", [SystemClock(), FrozenWallClock()], ids=["native", "watched"])
async def test_body_exception_comes_out_unwrapped(
    autojump_clock: trio.testing.MockClock, clock: Clock
) -> None:
    """An exception raised in the body is not wrapped in an ExceptionGroup, on any clock."""
    with pytest.raises(ValueError, match="inner"):
        async with deadline_scope(clock, 5.0):
            raise ValueError("inner")


async def test_shield_keeps_outer_cancellation_out_but_stays_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A shielded deadline scope ignores an outer cancel and still ends at its deadline."""
    with trio.CancelScope() as outer:
        outer.cancel()
        async with deadline_scope(SystemClock(), 3.0, shield=True) as scope:
            await trio.sleep(100)
        assert scope.cancelled_caught
        assert trio.current_time() == 3.0
        await trio.lowlevel.checkpoint()  # the outer cancellation applies again here
    assert outer.cancelled_caught


async def test_wait_event_until(autojump_clock: trio.testing.MockClock) -> None:
    """True when the event is set before the deadline, False at the deadline."""
    clock = SystemClock()
    event = trio.Event()
    assert not await wait_event_until(clock, event, 2.0)  # type: ignore[arg-type]
    assert trio.current_time() == 2.0
    event.set()
    assert await wait_event_until(clock, event, 100.0)  # type: ignore[arg-type]
    assert trio.current_time() == 2.0


async def test_sleep_and_frozen_wall_clock(autojump_clock: trio.testing.MockClock) -> None:
    """sleep() goes through the clock; FrozenWallClock's wall time follows loop time."""
    clock = FrozenWallClock(epoch=1000.0)
    await sleep(clock, 2.5)
    assert clock.monotonic() == 2.5
    assert clock.wall_time() == 1002.5
    assert wall_time_function(clock)() == 1002.5


def test_system_clock_wall_time_is_the_builtin() -> None:
    """For the default clock, log_event calls time.time itself (no Python-level hop)."""
    import time

    assert wall_time_function(SystemClock()) is time.time
    assert abs(SystemClock().wall_time() - time.time()) < 5


def test_frozen_wall_clock_on_asyncio_follows_the_loops_time() -> None:
    """On asyncio, FrozenWallClock's wall time is its epoch plus the loop's own time."""

    async def main() -> tuple[float, float, float]:
        clock = FrozenWallClock(epoch=1000.0)
        loop = asyncio.get_running_loop()
        before = loop.time()
        wall = clock.wall_time()
        return before, wall, loop.time()

    before, wall, after = anyio.run(main, backend="asyncio")
    assert before <= wall - 1000.0 + 1e-6
    assert wall - 1000.0 <= after + 1e-6
