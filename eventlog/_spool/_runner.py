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

import os
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, final

import anyio
import anyio.lowlevel
import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InlineRunner", "Runner", "ThreadRunner", "let_go"]

# Lines a worker thread handles between two hand-overs of the interpreter's lock.
LET_GO_EVERY: Final = 32


def let_go() -> None:
    """Hand the interpreter's lock over, for a moment, from a worker thread's loop.

    A thread doing CPU work (parsing, checksums) keeps the lock until the
    interpreter takes it away, after ``sys.getswitchinterval()`` (5 ms): the
    event loop would wait that long, again and again. ``os.sched_yield``
    releases it, so the loop, if it waits, runs at once.
    """
    os.sched_yield()


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
