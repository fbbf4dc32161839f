"""Clocks for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FrozenWallClock"]


@final
class FrozenWallClock:
    """A clock whose wall time is ``epoch`` plus the event loop's time.

    Under trio's ``MockClock`` the loop time starts at 0 and only moves when
    the test's tasks sleep, so event timestamps become reproducible.

    Examples:
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
        self._loop_time: Callable[[], float] | None = None

    def wall_time(self) -> float:
        """``epoch`` plus the loop's time; callable from worker threads too.

        The loop's clock is looked up on the first call (on the loop's thread:
        ``open_event_logger`` makes one), then read directly, so a
        ``log_event`` from a worker thread gets a timestamp as well.
        """
        if self._loop_time is None:
            native = anyio.lowlevel.current_token().native_token
            # asyncio hands out its loop (loop.time); trio a token, whose run has a clock.
            loop_time: Callable[[], float] | None = getattr(native, "time", None)
            if loop_time is None:
                # Only reached on trio's event loop: trio is imported already.
                import trio.lowlevel  # noqa: TID251

                loop_time = trio.lowlevel.current_clock().current_time
            self._loop_time = loop_time
        return self.epoch + self._loop_time()

    def monotonic(self) -> float:
        """``anyio.current_time()``."""
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """``anyio.sleep_until(deadline)``."""
        await anyio.sleep_until(deadline)
