"""Where the spool's file I/O runs: a worker thread, or inline in tests.

The spool never touches a file on the event loop's thread (docs/delivery.md):
every read, write, fsync and delete is a plain function handed to a
:class:`Runner`. The default, :class:`ThreadRunner`, runs it in a worker
thread, one at a time per runner. Tests inject :class:`InlineRunner`, which
calls it on the spot: under trio's autojump clock a thread would let virtual
time jump while the disk works, and virtual-time assertions stay exact only
when nothing happens off the loop.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, final

import anyio
import anyio.lowlevel
import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InlineRunner", "Runner", "ThreadRunner", "let_go"]

# Lines a worker thread handles between two looks at the time (a look is cheap).
LET_GO_EVERY: Final = 32
LET_GO_AFTER: Final = 0.0002
"""Seconds of a worker thread's CPU work between two pauses."""
LET_GO_PAUSE: Final = 0.00005
"""How long a pause leaves the interpreter's lock free."""

_last_pause = threading.local()


def let_go() -> None:
    """Leave the interpreter's lock free for a moment, from a worker thread's CPU loop.

    A thread doing CPU work (parsing, checksums) holds the lock. The event
    loop, waiting for it, asks for it only after ``sys.getswitchinterval()``
    (5 ms) without a switch, and any release and retake by the worker counts as
    a switch: a worker that lets go for an instant (``os.sched_yield``) retakes
    the lock before the loop's thread has woken up, again and again, and the
    loop waits, in bursts, for up to hundreds of milliseconds (measured: 573 and
    760 ms). A real pause, long enough for a waiting thread to wake up and
    take the lock, after each 0.2 ms of work bounds the loop's wait at about
    that, for up to a third of the worker's time (the sleep's timer slack
    included). Measured in the startup benchmark (20 leftover logs): the
    ticker's p99 lateness 2-8 ms, against 9-12 ms with a pause every 0.5 ms
    (docs/delivery.md, "The cost: disk work off the event loop").
    """
    now = time.perf_counter()
    if now - getattr(_last_pause, "at", 0.0) >= LET_GO_AFTER:
        # A worker thread's pause, never the loop's: the sleep is the point.
        time.sleep(LET_GO_PAUSE)  # noqa: TID251
        _last_pause.at = time.perf_counter()


T = TypeVar("T")


class Runner(Protocol):
    """Runs a blocking function somewhere that is not the event loop's thread."""

    async def __call__(self, function: Callable[[], T], /) -> T:
        """Run ``function()`` and return its result (or raise its exception)."""
        ...


@final
class ThreadRunner:
    """Runs each function in a worker thread, one at a time.

    Not abandoned on cancellation: a write or a delete always completes, so
    the spool always knows what reached the disk.
    """

    __slots__ = ("_limiter",)

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None

    async def __call__(self, function: Callable[[], T], /) -> T:
        """Run ``function()`` in a worker thread."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(function, limiter=self._limiter)


@final
class InlineRunner:
    """Runs each function at once, on the calling thread: for virtual-time tests."""

    __slots__ = ()

    async def __call__(self, function: Callable[[], T], /) -> T:
        """Run ``function()`` here, after a checkpoint (as a thread hand-off would)."""
        await anyio.lowlevel.checkpoint()
        return function()
