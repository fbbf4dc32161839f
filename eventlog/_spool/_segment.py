"""What the spool knows of each log and segment, in memory (docs/delivery.md).

A :class:`RunLog` is one run's log on disk: this run's own, or one taken
over from an earlier run (a version 2 directory, or a version 1 file). It
holds :class:`Segment`\\ s, oldest first. A segment knows which of its
records are still unsettled (``live``), which of those the pipeline holds in
memory right now (``held``: being posted, or committed and not tried yet), the
extra failed attempts its journal recorded, and the payloads it has in memory
(records not written yet, or loaded from disk for a drain). Its file holds the
payloads otherwise: memory holds about one segment's worth at a time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, final

from eventlog._spool._format import LOCK_NAME, journal_name, segment_name

if TYPE_CHECKING:
    from eventlog._records import Record

__all__ = ["Page", "RunLog", "Segment"]

# The payloads of a segment are loaded a page at a time: a version 1 file of
# any size is read in pieces of about this many bytes.
PAGE_BYTES: Final = 4 * 1024 * 1024


@final
class Page:
    """A byte range of a segment file and the record numbers it holds."""

    __slots__ = ("first", "last", "length", "offset")

    def __init__(self, offset: int, length: int, first: int, last: int) -> None:
        self.offset = offset
        self.length = length
        self.first = first
        self.last = last


@final
class Segment:
    """One segment file: its records' state, and the payloads memory holds."""

    __slots__ = (
        "bytes",
        "corrupt",
        "failed",
        "held",
        "journal_path",
        "journal_torn",
        "live",
        "log",
        "memory",
        "newest",
        "next_number",
        "number",
        "oldest",
        "pages",
        "path",
        "sealed",
        "torn",
        "unwritten",
        "writing",
    )

    def __init__(self, log: RunLog, number: int, path: str, journal_path: str) -> None:
        self.log = log
        self.number = number
        self.path = path
        self.journal_path = journal_path
        self.live: set[int] = set()
        """Record numbers not settled yet (on disk, being written, or held)."""
        self.held: set[int] = set()
        """Of ``live``, those the pipeline holds: being posted, or fresh."""
        self.failed: dict[int, int] = {}
        """Failed POSTs the journal recorded since each record was written."""
        self.memory: dict[int, Record] = {}
        """Records whose payload memory holds (unwritten, loaded, or held)."""
        self.pages: list[Page] = []
        self.bytes = 0
        """Bytes of the file (whole lines written, or indexed)."""
        self.next_number = 0
        self.oldest = 0.0
        self.newest = 0.0
        self.corrupt = 0
        self.sealed = False
        """No more appends: full, or a write failed (its tail may be torn)."""
        self.torn = False
        """A write to it failed: appends already queued for it are not written either."""
        self.writing = 0
        """Appends scheduled and not done yet."""
        self.unwritten = 0
        """Bytes of the lines of records scheduled and not written yet."""
        self.journal_torn = False
        """The journal may end in a torn line (a crash, a failed write): the
        next line is written on a line of its own."""

    @property
    def available(self) -> int:
        """Records waiting for a retry: unsettled and not held."""
        return len(self.live) - len(self.held)

    @property
    def settled(self) -> bool:
        """True once every record is settled and nothing is being written."""
        return not self.live and not self.writing

    def stamp(self, spooled_at: float) -> None:
        """Widen the segment's time span to include ``spooled_at``."""
        if spooled_at <= 0:
            return
        if not self.oldest or spooled_at < self.oldest:
            self.oldest = spooled_at
        self.newest = max(self.newest, spooled_at)


@final
class RunLog:
    """One run's log: its directory (or version 1 file), its lock, its segments."""

    __slots__ = ("directory", "file", "inherited", "lock_fd", "lock_path", "segments", "sort_key")

    def __init__(
        self,
        *,
        directory: str | None,
        file: str | None = None,
        inherited: bool,
        sort_key: float = 0.0,
    ) -> None:
        self.directory = directory
        """The version 2 directory, or None for a version 1 file."""
        self.file = file
        """The version 1 file, or None."""
        self.inherited = inherited
        """An earlier run's, taken over by this one."""
        self.lock_path = os.path.join(directory, LOCK_NAME) if directory else (file or "")
        self.lock_fd: int | None = None
        self.segments: list[Segment] = []
        self.sort_key = sort_key
        """When it was last written to (earlier runs are drained oldest first)."""

    def new_segment(self, number: int) -> Segment:
        """A segment of this (version 2) log, appended to its list."""
        assert self.directory is not None
        segment = Segment(
            self,
            number,
            os.path.join(self.directory, segment_name(number)),
            os.path.join(self.directory, journal_name(number)),
        )
        self.segments.append(segment)
        return segment
