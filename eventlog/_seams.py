"""Test seams: what the SDK's own tests replace, without touching the public API.

``open_event_logger`` reads :func:`current` when it opens: the spool's file
operations (fault injection), the runners of its disk work (inline, so that
virtual time stays exact), and its segment size (small, to cross segment
boundaries in a few events). Outside tests everything is ``None``: the real
thing. Set with :func:`use`, a context manager over a context variable, so
concurrent tests never see each other's seams.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

    from eventlog._spool import FileOps, Runner

__all__ = ["Seams", "current", "install", "use"]


@dataclasses.dataclass(frozen=True, slots=True)
class Seams:
    """What a logger opened now uses instead of the real thing (None: the real thing)."""

    file_ops: FileOps | None = None
    runner: Runner | None = None
    reader: Runner | None = None
    segment_bytes: int | None = None


_REAL: Final = Seams()
_SEAMS: Final[ContextVar[Seams | None]] = ContextVar("eventlog._seams", default=None)


def current() -> Seams:
    """The seams in force in this context."""
    return _SEAMS.get() or _REAL


@contextmanager
def use(**changes: object) -> Iterator[Seams]:
    """Replace some seams for the loggers opened inside the block."""
    seams = dataclasses.replace(current(), **changes)  # type: ignore[arg-type]
    token = _SEAMS.set(seams)
    try:
        yield seams
    finally:
        _SEAMS.reset(token)


def install(seams: Seams) -> None:
    """Put ``seams`` in force in this context (a new thread's, which starts empty)."""
    _SEAMS.set(seams)
