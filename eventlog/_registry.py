"""The process's open loggers: the fallback of ``eventlog.log_event`` (docs/apps.md).

``eventlog.log_event`` and ``eventlog.current_logger`` use the context
variable an ``open_event_logger`` block sets; where it is not set (an ASGI
request handler whose task the server started, a plain thread, an executor)
they fall back to :data:`fallback`: the first logger opened that is still
open. This module is the package's one piece of process-wide state, the same
trade as the root logger of the standard library's ``logging``.

Cases handled here, each with a test:

* loggers are kept in opening order; the fallback is the first one, and
  when it closes, the next one still open (or None);
* every change happens under a lock; the read path (:data:`fallback`) takes
  none: it reads one module global, replaced whole;
* a disabled logger is registered like any other: it is a no-op logger, so
  it keeps the fallback a no-op while it is open;
* after ``os.fork()``, in the child, no logger's event loop exists any more:
  a logger run by a :class:`~eventlog.SyncEventLogger` is replaced by that
  facade (whose first use starts a new logger in the child), every other
  one is dropped, and the lock is a new one (another thread of the parent
  may have held it at the fork).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from eventlog._logger import EventLogger
    from eventlog._transform import Metadata

__all__ = ["StandIn", "adopt", "current", "fallback", "register", "unregister"]


class StandIn(Protocol):
    """What stands for a logger that must be started again (in a forked child)."""

    def log_event(self, name: str, metadata: Metadata | None = None) -> None:
        """Log the event on the logger, starting it first if needed."""
        ...

    def _event_logger(self) -> EventLogger | None:
        """The logger, started first if needed; None once closed."""
        ...


fallback: EventLogger | StandIn | None = None
"""The first registered logger still open (read without a lock), or None."""

_lock = threading.Lock()
_open: list[EventLogger | StandIn] = []
# The facade running a logger, for the fork: weak, so that an unclosed facade
# can still be collected (its logger stays registered until its thread ends).
_owners: dict[object, weakref.ref[StandIn]] = {}


def _refresh() -> None:
    global fallback  # the one process-wide value, replaced whole
    fallback = _open[0] if _open else None


def register(logger: EventLogger) -> None:
    """Add a logger that is ready (last in opening order)."""
    with _lock:
        _open.append(logger)
        _refresh()


def unregister(entry: EventLogger | StandIn) -> None:
    """Remove a logger (it stops accepting events) or a stand-in (it closed)."""
    with _lock:
        # Identity, not equality: a logger is only ever itself.
        for i, item in enumerate(_open):
            if item is entry:
                del _open[i]
                break
        _owners.pop(entry, None)
        _refresh()


def adopt(logger: EventLogger, owner: StandIn) -> None:
    """Record that ``owner`` runs ``logger``; a stand-in for ``owner`` yields its place.

    In a forked child, the logger ``owner`` starts again takes the place its
    stand-in held in the opening order (it registered itself last).
    """
    with _lock:
        _owners[logger] = weakref.ref(owner)
        slot = next((i for i, item in enumerate(_open) if item is owner), None)
        if slot is not None:
            # Always found: the logger registered itself before its start
            # returned, and its block cannot end while the facade holds its lock.
            for i, item in enumerate(_open):  # pragma: no branch
                if item is logger:
                    del _open[i]
                    break
            _open[slot] = logger
        _refresh()


def current() -> EventLogger | None:
    """The logger :data:`fallback` stands for, started if it is a stand-in."""
    entry = fallback
    if entry is None:
        return None
    # A stand-in only exists in a forked child: the common case is a logger.
    starter: Callable[[], EventLogger | None] | None = getattr(entry, "_event_logger", None)
    if starter is None:
        return cast("EventLogger", entry)
    return starter()


def _after_fork_in_child() -> None:
    global _lock  # another thread of the parent may have held it
    _lock = threading.Lock()
    kept: list[EventLogger | StandIn] = []
    for entry in _open:
        ref = _owners.get(entry)
        if ref is not None:
            owner = ref()
        else:
            # A stand-in already (a child that never started its logger forked
            # again) stays; a logger no facade runs is dropped.
            owner = cast("StandIn", entry) if hasattr(entry, "_event_logger") else None
        if owner is not None:
            kept.append(owner)
    _open[:] = kept
    _owners.clear()
    _refresh()


os.register_at_fork(after_in_child=_after_fork_in_child)
