"""Clocks for tests."""

from __future__ import annotations

from typing import final

import anyio

__all__ = ["FrozenWallClock"]


@final
class FrozenWallClock:
    """A clock whose wall time is ``epoch`` plus the event loop's time.

    Under trio's ``MockClock`` the loop time starts at 0 and only moves when
    the test's tasks sleep, so event timestamps become reproducible:

    >>> import trio, trio.testing
    >>> from eventlog.testing import FrozenWallClock
    >>> async def stamp():
    ...     clock = FrozenWallClock(epoch=1_767_225_600.0)  # 2026-01-01T00:00:00Z
    ...     await trio.sleep(1.5)
    ...     return clock.wall_time()
    >>> trio.run(stamp, clock=trio.testing.MockClock(autojump_threshold=0))
    1767225601.5
    """

    def __init__(self, epoch: float = 1_767_225_600.0) -> None:
        self.epoch = epoch
        """Wall time at loop time 0."""

    def wall_time(self) -> float:
        """``epoch + anyio.current_time()``."""
        return self.epoch + anyio.current_time()

    def monotonic(self) -> float:
        """``anyio.current_time()``."""
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """``anyio.sleep_until(deadline)``."""
        await anyio.sleep_until(deadline)
