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

import bisect
import os
from typing import TYPE_CHECKING, Final, final

from eventlog._spool._format import LOCK_NAME, journal_name, segment_name

if TYPE_CHECKING:
    from eventlog._records import Record

__all__ = ["Page", "RunLog", "Segment"]

# A segment's payloads are loaded a page of this many records at a time, so
# that a retry reads (and the loop settles) a few hundred records, not a file.
PAGE_RECORDS: Final = 256
# A version 1 file, one per run and of any size, is taken over as segments of
# about this size, so that the limits can evict it a piece at a time.
V1_SEGMENT_BYTES: Final = 4 * 1024 * 1024


@final
class Page:
    """A byte range of a segment file and the record numbers it holds."""

    __slots__ = ("count", "first", "last", "length", "offset")

    def __init__(self, offset: int, length: int, first: int, last: int) -> None:
        self.offset = offset
        self.length = length
        self.first = first
        self.last = last
        self.count = 0


@final
class Segment:
    """One segment file: its records' state, and the payloads memory holds."""

    __slots__ = (
        "_page_firsts",
        "bytes",
        "corrupt",
        "cursor",
        "failed",
        "held",
        "journal_path",
        "journal_torn",
        "journaling",
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
        self._page_firsts: list[int] = []
        self.cursor = 0
        """Every record numbered below it is settled or held: a retry looks from here."""
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
        self.journaling = 0
        """Journal lines scheduled and not written yet."""
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

    def add_line(self, number: int, offset: int, length: int) -> None:
        """Note that record ``number``'s line is at ``offset`` (``length`` bytes, newline included).

        Lines come in file order, their numbers rising: they fill the last
        page, or start a new one.
        """
        page = self.pages[-1] if self.pages else None
        if page is None or page.count >= PAGE_RECORDS or offset != page.offset + page.length:
            page = Page(offset, 0, number, number)
            self.pages.append(page)
            self._page_firsts.append(number)
        page.length = offset + length - page.offset
        page.last = number
        page.count += 1

    def add_lines(self, numbers: list[int], offset: int, ends: list[int]) -> None:
        """:meth:`add_line` for lines written one after another from ``offset``.

        ``ends[i]`` is where line ``numbers[i]`` ends, relative to ``offset``.
        """
        pages, firsts = self.pages, self._page_firsts
        page = pages[-1] if pages else None
        start = offset
        for number, end in zip(numbers, ends, strict=True):
            if page is None or page.count >= PAGE_RECORDS or start != page.offset + page.length:
                page = Page(start, 0, number, number)
                pages.append(page)
                firsts.append(number)
            start = offset + end
            page.length = start - page.offset
            page.last = number
            page.count += 1

    def page_of(self, number: int) -> Page | None:
        """The page holding record ``number``'s line, if any."""
        index = bisect.bisect_right(self._page_firsts, number) - 1
        if index < 0:
            return None
        page = self.pages[index]
        return page if number <= page.last else None

    def release(self, number: int) -> None:
        """Record ``number`` waits for a retry again."""
        self.held.discard(number)
        self.cursor = min(self.cursor, number)

    def next_available(self, limit: int) -> list[int]:
        """The lowest ``limit`` numbers of records waiting for a retry (unsettled, not held)."""
        found: list[int] = []
        live, held = self.live, self.held
        number = self.cursor
        end = self.next_number
        while number < end and len(found) < limit:
            if number in live and number not in held:
                found.append(number)
            number += 1
        # Below `number`: settled, held, or about to be held by the caller.
        self.cursor = number if len(found) < limit else found[-1] + 1
        return found

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
