"""Waking the event loop from another thread, without blocking the caller.

``log_event`` may be called from worker threads (``trio.to_thread``,
``anyio.to_thread``, plain threads). Appending to the queue is a single
``deque.append``, atomic under the GIL; only waking the batch processor must
happen on the loop's thread, so it is handed over with the loop's own
non-blocking, thread-safe scheduler (``TrioToken.run_sync_soon`` or
``loop.call_soon_threadsafe``), never with a lock.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, final

import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LoopWaker"]

logger = logging.getLogger("eventlog")


@final
class LoopWaker:
    """Runs a callback on the event loop that created it, from any thread."""

    __slots__ = ("_soon", "thread")

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        native = anyio.lowlevel.current_token().native_token
        # trio hands out a TrioToken, asyncio its loop: both schedule without blocking.
        soon: Callable[[Callable[[], object]], object] | None = getattr(
            native, "run_sync_soon", None
        ) or getattr(native, "call_soon_threadsafe", None)
        if soon is None:  # pragma: no cover -- anyio supports trio and asyncio only
            raise RuntimeError(f"cannot schedule callbacks on {native!r}")
        self._soon = soon

    def call(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` now if on the loop's thread, else soon on the loop."""
        if threading.get_ident() == self.thread:
            callback()
            return
        try:
            self._soon(callback)
        except Exception as exc:  # noqa: BLE001 -- the loop is closing: its final export runs anyway
            logger.debug("wake-up from a thread not delivered: %s", exc)
