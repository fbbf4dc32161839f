"""Time: the :class:`Clock` protocol, the default clock, and clock-driven deadlines.

Every wait in eventlog (scheduled export, backoff, batch delay, POST timeout,
shutdown budget) goes through a :class:`Clock`, so under trio's autojump clock
a ten-minute outage takes milliseconds and gives the same result every run.
Deadlines are built here, once, on the clock's own ``sleep_until``: a watcher
task cancels a scope when the clock says time is up. That works for any clock
and on both trio and asyncio.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol, final

import anyio

from eventlog._exceptions import unwrap_group

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = [
    "Clock",
    "SystemClock",
    "deadline_scope",
    "sleep",
    "wait_event_until",
    "wall_time_function",
]


class Clock(Protocol):
    """Time source for eventlog.

    ``wall_time`` stamps events; ``monotonic`` and ``sleep_until`` drive every
    wait. Implement it to run a logger on a time of your own; the default,
    :class:`SystemClock`, follows the running event loop, which is what makes
    trio's ``MockClock`` drive it.
    """

    def wall_time(self) -> float:
        """Seconds since the Unix epoch, for event timestamps."""
        ...

    def monotonic(self) -> float:
        """A monotonic time in seconds, the reference of ``sleep_until``."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``monotonic()`` reaches ``deadline``."""
        ...


@final
class SystemClock:
    """The default clock: ``time.time`` for timestamps, the event loop for waits.

    Under trio's ``MockClock`` (pytest-trio's ``autojump_clock`` fixture) the
    waits run in virtual time while timestamps stay real.
    """

    def wall_time(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """The running event loop's clock (``anyio.current_time()``)."""
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """``anyio.sleep_until(deadline)``."""
        await anyio.sleep_until(deadline)


def wall_time_function(clock: Clock) -> Callable[[], float]:
    """The cheapest callable giving ``clock``'s wall time.

    ``log_event`` stamps every event; for the default clock that is the
    builtin ``time.time`` itself, without a Python-level method call.
    """
    return time.time if isinstance(clock, SystemClock) else clock.wall_time


async def sleep(clock: Clock, seconds: float) -> None:
    """Sleep ``seconds`` on ``clock``."""
    await clock.sleep_until(clock.monotonic() + seconds)


@asynccontextmanager
async def deadline_scope(
    clock: Clock, seconds: float, *, shield: bool = False
) -> AsyncIterator[anyio.CancelScope]:
    """A cancel scope cancelled once ``seconds`` have passed on ``clock``.

    With ``shield=True`` the scope also keeps out cancellation from outside,
    which is what an ``await`` in a ``finally`` needs to stay both safe and
    bounded (flake8-async ASYNC102). Check ``scope.cancelled_caught`` after the
    block to learn whether the deadline struck.
    """
    deadline = clock.monotonic() + seconds
    if clock.__class__ is SystemClock:
        # Its monotonic time is the event loop's own: a native deadline does
        # the same, without a watcher task per scope (one per POST).
        with anyio.CancelScope(deadline=deadline, shield=shield) as native:
            yield native
        return

    async def watch(scope: anyio.CancelScope) -> None:
        await clock.sleep_until(deadline)
        scope.cancel()

    with anyio.CancelScope(shield=shield) as scope:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, scope)
                try:
                    yield scope
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None


async def wait_event_until(clock: Clock, event: anyio.Event, deadline: float) -> bool:
    """Wait for ``event`` until ``deadline`` on ``clock``; True if it was set."""
    if event.is_set():
        return True
    async with deadline_scope(clock, deadline - clock.monotonic()):
        await event.wait()
    return event.is_set()
