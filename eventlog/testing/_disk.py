"""Disk work in virtual time: :func:`inline_disk_io`."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from eventlog import _seams
from eventlog._spool import InlineRunner

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["inline_disk_io"]


@contextmanager
def inline_disk_io() -> Iterator[None]:
    """Loggers opened inside the block do their spool's file I/O on the event loop.

    A logger normally reads and writes its spool in worker threads, so that
    the application's event loop never waits for the disk. Under trio's
    autojump clock that has a price: while a thread works, every task looks
    blocked, so the clock jumps to the next deadline, and a test's virtual
    times come out late. Inside this block the file operations run inline
    instead, and virtual time stays exact. For tests only: the spool's files
    are small there, and nothing else needs the loop.

    The ``event_logger`` fixture of the pytest plugin uses it.

    Examples:
        >>> import eventlog
        >>> from eventlog.testing import inline_disk_io
        >>> with inline_disk_io():
        ...     pass  # async with eventlog.open_event_logger(...) as log: ...
    """
    with _seams.use(runner=InlineRunner(), reader=InlineRunner()):
        yield
