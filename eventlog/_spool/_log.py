"""The spool: a segmented log on disk, written off the event loop (docs/delivery.md).

:class:`Spool` is what the pipeline sees: it keeps records (:meth:`Spool.add`,
:meth:`Spool.commit`), hands them back for a retry (:meth:`Spool.take_retries`)
and learns their fate (:meth:`Spool.settle`). Every method the pipeline calls
returns at once and never touches a file: the work is queued as operations
that one writer task carries out, in order, through the :class:`Runner`
(a worker thread). Reads for a retry go through a runner of their own, so a
long read never holds up a commit.

Rules kept here:

* A record is written to this run's active segment, appended with an
  ``fsync``, and nothing removes it before the server acknowledged it (or it
  was dropped for good, counted): then a ``done`` line goes to the segment's
  journal, and a segment whose records are all settled is deleted whole.
* A failed POST adds a ``failed`` line to the journal, so ``max_attempts``
  holds across restarts without rewriting anything.
* The limits evict whole segments, oldest first, never one with a record
  being posted; each evicted event is counted once in ``dropped_spool_limit``.
* A write that fails seals its segment (its tail may be torn); the records
  whose lines did not reach the file stay in memory, within a bound, and are
  written to a new segment when a retry on the spool's own backoff succeeds.
  What is on no disk when the logger closes is counted in
  ``dropped_disk_error``, exactly.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import itertools
import logging
import os
import weakref
from collections import deque
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.lowlevel

from eventlog._clock import Clock, wait_event_until
from eventlog._records import Record, RecordState
from eventlog._spool._format import (
    LOCK_NAME,
    encode_journal_line,
    encode_record_lines,
    iter_lines,
    parse_line,
    run_name,
)
from eventlog._spool._runner import LET_GO_EVERY, let_go
from eventlog._spool._segment import Page, RunLog, Segment

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from anyio.abc import TaskStatus

    from eventlog._spool._files import FileOps
    from eventlog._spool._runner import Runner
    from eventlog._stats import Counters

__all__ = ["DEFAULT_SEGMENT_BYTES", "Spool"]

logger = logging.getLogger("eventlog")

DEFAULT_SEGMENT_BYTES: Final = 4 * 1024 * 1024
"""A segment is sealed, and the next one started, once it holds this much."""
# A failing disk is retried after 1, 2, 4, ... seconds, at most this long apart.
_MAX_WRITE_BACKOFF: Final = 30.0
_APPEND_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT
# Events handed to the writer per step when memory is written out at last.
_RETRY_SLICE: Final = 500


@final
class _Append:
    """Write these records' lines to their segment (with an fsync)."""

    __slots__ = ("done", "records", "segment")

    def __init__(self, segment: Segment, records: list[Record]) -> None:
        self.segment = segment
        self.records = records
        self.done = anyio.Event()


@final
class _Journal:
    """Append a journal line (no fsync: a lost line costs a duplicate, never an event)."""

    __slots__ = ("kind", "numbers", "segment")

    def __init__(self, segment: Segment, kind: str, numbers: list[int]) -> None:
        self.segment = segment
        self.kind = kind
        self.numbers = numbers


@final
class _Delete:
    """Delete a settled or evicted segment, and its log once an earlier run's is empty."""

    __slots__ = ("last", "log", "segment")

    def __init__(self, log: RunLog, segment: Segment | None) -> None:
        self.log = log
        self.segment = segment
        # Decided now: when several segments of a log are evicted at once,
        # each delete must not find the log empty and remove it (and its lock).
        self.last = log.inherited and not log.segments


_Op = _Append | _Journal | _Delete

# Spools not released yet, for the fork handler below.
_LIVE: Final[weakref.WeakSet[Spool]] = weakref.WeakSet()


@final
class Spool:
    """This run's spool: its own log, the earlier runs' it took over, and memory."""

    def __init__(
        self,
        directory: str,
        session_id: str,
        run_id: str,
        counters: Counters,
        *,
        clock: Clock,
        ops: FileOps,
        runner: Runner,
        reader: Runner,
        journal: Runner | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        max_age: float = 7 * 24 * 3600.0,
        memory_limit: int = 8192,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keep_active: bool = False,
        disabled: str | None = None,
    ) -> None:
        self.directory = directory
        self.disabled = disabled
        """Why this spool never touches the disk (an unusable or unsafe storage
        directory), or None. Disabled, it keeps records in memory only."""
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.memory_limit = memory_limit
        self.segment_bytes = segment_bytes
        self.keep_active = keep_active
        """Write-ahead mode: keep the segment being appended to until it is full,
        even when all its records are settled (every commit would otherwise
        create a segment and delete it)."""
        self.own = RunLog(
            directory=os.path.join(directory, run_name(session_id, run_id)), inherited=False
        )
        self.logs: list[RunLog] = []
        """Earlier runs' logs taken over, oldest first; this run's own is not here."""
        self.unwritten: deque[Record] = deque()
        """Records only memory holds (the disk refused them, or the spool is disabled)."""
        self._counters = counters
        self._clock = clock
        self._ops = ops
        self._runner = runner
        self._reader = reader
        self._journal_runner = journal if journal is not None else reader
        self._queue: deque[_Op] = deque()
        self._work = anyio.Event()
        self._journal_queue: deque[_Journal] = deque()
        self._journal_work = anyio.Event()
        self._journalled = anyio.Event()
        self._active: Segment | None = None
        self._next_number = 1
        self._own_ready = False
        self._fds: dict[str, int] = {}
        self._write_failures = 0
        self._write_retry_at: float | None = None
        self._read_failures = 0
        self._read_retry_at: float | None = None
        self._disk_problem: str | None = None
        self._warned_disk = False
        self._warned_limit = False
        self._warned_memory = False
        self._closed = False
        self._outstanding = 0
        self._caught_up = anyio.Event()
        _LIVE.add(self)

    # -- gauges ------------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why records are kept in memory instead of on disk now, or None."""
        return self.disabled or self._disk_problem

    @property
    def size(self) -> int:
        """Bytes of segment files (this run's and those taken over)."""
        return sum(s.bytes for s in self._segments())

    @property
    def events(self) -> int:
        """Records not settled yet: on disk, being written, or only in memory."""
        return sum(len(s.live) for s in self._segments()) + len(self.unwritten)

    def _segments(self) -> Iterable[Segment]:
        for log in self.logs:
            yield from log.segments
        yield from self.own.segments

    # -- keeping records -----------------------------------------------------------

    def add(self, records: list[Record]) -> _Append | None:
        """Keep ``records`` (events not delivered yet): written off the loop, with an fsync.

        Returns the scheduled write, or None when they stay in memory (the
        spool is disabled, or the disk refused the last write and its retry
        is not due yet).
        """
        if not records:
            return None
        now = self._clock.wall_time()
        for record in records:
            if not record.spooled_at:
                record.spooled_at = now
        if self.disabled or self._write_retry_at is not None:
            self._keep_in_memory(records)
            return None
        append = self._append(records)
        self.enforce_limits()
        return append

    async def commit(self, records: list[Record]) -> bool:
        """Write-ahead: write ``records`` and return once they are on disk (fsync'd).

        Returns False if the disk refused them: they stay in memory, and the
        logger goes on (the problem shows in ``stats.spool_disabled``).
        """
        for record in records:
            record.fresh = True
        append = self.add(records)
        # The pipeline holds them until their first export settles.
        for record in records:
            if record.segment is not None:
                record.segment.held.add(record.ordinal)
        if append is None:
            return False
        await append.done.wait()
        return all(r.segment is not None for r in records)

    def _append(self, records: list[Record]) -> _Append:
        segment = self._active
        if segment is None or segment.sealed:
            segment = self._active = self.own.new_segment(self._next_number)
            self._next_number += 1
        # Once per record, on the loop: kept to plain assignments.
        number = segment.next_number
        live, memory, held = segment.live, segment.memory, segment.held
        sending = RecordState.SENDING
        size = 0
        for record in records:
            record.segment = segment
            record.ordinal = number
            live.add(number)
            memory[number] = record
            if record.fresh or record.state is sending:
                held.add(number)  # the pipeline still holds it
            size += len(record.payload)
            number += 1
        segment.next_number = number
        stamps = [r.spooled_at for r in records if r.spooled_at > 0]
        if stamps:
            segment.stamp(min(stamps))
            segment.stamp(max(stamps))
        segment.unwritten += size + _LINE_OVERHEAD * len(records)
        if segment.unwritten + segment.bytes >= self.segment_bytes:
            segment.sealed = True  # the next records start the next segment
        segment.writing += 1
        append = _Append(segment, records)
        self._schedule(append)
        return append

    async def written(self) -> None:
        """Return once every operation asked for so far is carried out.

        Records kept are then on disk (or, refused, in memory), and settled
        ones journalled.
        """
        while self._outstanding:
            await self._caught_up.wait()

    def _keep_in_memory(self, records: Iterable[Record]) -> None:
        for record in records:
            record.segment = None
            record.ordinal = -1
            self.unwritten.append(record)
        over = len(self.unwritten) - self.memory_limit
        if over <= 0:
            return
        # Oldest first, never one being posted: they are on no disk, so lost.
        kept: deque[Record] = deque()
        lost = 0
        for record in self.unwritten:
            if lost < over and record.state is not RecordState.SENDING:
                record.state = RecordState.DROPPED
                lost += 1
            else:
                kept.append(record)
        self.unwritten = kept
        self._counters.dropped_disk_error += lost
        if lost and not self._warned_memory:
            self._warned_memory = True
            logger.warning(
                "eventlog: %d events lost: the spool keeps at most %d events in memory "
                "while it cannot write to disk (%s)",
                lost,
                self.memory_limit,
                self.problem,
            )

    # -- retries ---------------------------------------------------------------------

    def has_retries(self) -> bool:
        """True if some record waits for a retry (not settled, not held)."""
        reading = self._read_retry_at is None or self._clock.monotonic() >= self._read_retry_at
        if reading and any(s.available for s in self._segments()):
            return True
        return any(r.state is RecordState.PENDING and not r.fresh for r in self.unwritten)

    async def take_retries(self, limit: int) -> list[Record]:
        """The oldest ``limit`` records waiting for a retry, marked ``SENDING``.

        Their payloads come from memory, or from the segment's file, a page
        at a time, read off the loop. Earlier runs' records come first.
        """
        for segment in list(self._segments()):
            if segment.available <= 0:
                continue
            records = await self._take_from(segment, limit)
            if records:
                return records
        taken: list[Record] = []
        for record in self.unwritten:
            if len(taken) >= limit:
                break
            if record.state is RecordState.PENDING and not record.fresh:
                record.state = RecordState.SENDING
                taken.append(record)
        return taken

    async def _take_from(self, segment: Segment, limit: int) -> list[Record]:
        wanted = segment.next_available(limit)
        missing = [n for n in wanted if n not in segment.memory]
        if missing:
            await self._load(segment, missing)
        taken: list[Record] = []
        for number in wanted:
            record = segment.memory.get(number)
            if record is None or number not in segment.live or number in segment.held:
                # Not loaded (a failed read), or settled meanwhile: not taken now.
                if number in segment.live:
                    segment.release(number)
                continue
            segment.held.add(number)
            record.state = RecordState.SENDING
            taken.append(record)
        return taken

    async def _load(self, segment: Segment, numbers: list[int]) -> None:
        """Read the pages of ``segment`` holding ``numbers`` (off the loop) into memory.

        The records are built in the reader's thread; the loop only files
        them. A number its page does not hold (a torn or corrupt line, or
        lost with a failed disk) can never be sent: it is settled and
        counted, so that the segment can go.
        """
        pages: list[Page] = []
        for number in numbers:
            page = segment.page_of(number)
            if page is not None and page not in pages:
                pages.append(page)
        wanted = set(numbers)
        # The rest of each page read comes along: the next drain chunk wants
        # it, and a page read once instead of twice (a chunk rarely ends where
        # a page does) halves the reader thread's work on a backlog. Memory
        # holds at most a page more.
        live, memory, held = segment.live, segment.memory, segment.held
        for page in pages:
            wanted.update(
                n
                for n in range(page.first, page.last + 1)
                if n in live and n not in memory and n not in held
            )
        path, ops = segment.path, self._ops
        failed = dict(segment.failed)
        inherited = segment.log.inherited
        # Version 1 lines are numbered by their position in the file.
        positional = segment.log.file is not None

        def read() -> dict[int, Record]:
            found: dict[int, Record] = {}
            for page in pages:
                data = ops.read_range(path, page.offset, page.length)
                for position, (_, raw) in enumerate(iter_lines((data,)), start=page.first):
                    if not position % LET_GO_EVERY:
                        let_go()
                    line = parse_line(raw, position)
                    if line is None:
                        continue
                    number = position if positional else line.number
                    if number in wanted:
                        record = Record(
                            line.payload,
                            line.attempts + failed.get(number, 0),
                            line.spooled_at,
                            inherited=inherited,
                        )
                        record.ordinal = number
                        found[number] = record
            return found

        try:
            found = await self._reader(read)
        except OSError as exc:
            # The records stay on disk: a later drain reads them again, once
            # the disk had a moment (has_retries says no until then, so that
            # a drain does not retry the read in a tight loop).
            self._read_failures += 1
            delay = min(2.0 ** (self._read_failures - 1), _MAX_WRITE_BACKOFF)
            self._read_retry_at = self._clock.monotonic() + delay
            logger.debug("spool segment %s not read: %s; retrying in %gs", path, exc, delay)
            return
        self._read_failures = 0
        self._read_retry_at = None
        for number, record in found.items():
            if number in segment.live and number not in segment.memory:
                record.segment = segment
                segment.memory[number] = record
        # Numbers of this page that are not in the file (torn, corrupt, lost
        # with a failed disk) can never be sent: settle them so the segment
        # can go.
        lost = [
            n
            for n in numbers
            if n in segment.live and n not in segment.memory and n not in segment.held
        ]
        if lost:
            for number in lost:
                segment.live.discard(number)
            self._counters.spool_corrupt_lines += len(lost)
            self._maybe_delete(segment)

    # -- settling ---------------------------------------------------------------------

    def settle(
        self,
        *,
        done: Iterable[Record] = (),
        failed: Iterable[Record] = (),
        released: Iterable[Record] = (),
    ) -> None:
        """What became of records the pipeline held: journalled, memory freed.

        ``done``: acknowledged or dropped for good; ``failed``: one more failed
        POST each (their ``attempts`` already raised), back to waiting;
        ``released``: not posted after all (killswitch, shutdown), back to
        waiting.
        """
        journal: dict[Segment, tuple[list[int], list[int]]] = {}
        for record in done:
            segment = record.segment
            if segment is None:
                self._forget_unwritten(record)
                continue
            number = record.ordinal
            segment.live.discard(number)
            segment.held.discard(number)
            segment.memory.pop(number, None)
            journal.setdefault(segment, ([], []))[0].append(number)
        for record in failed:
            segment = record.segment
            record.state = RecordState.PENDING
            record.fresh = False
            if segment is None:
                continue
            segment.release(record.ordinal)
            segment.failed[record.ordinal] = segment.failed.get(record.ordinal, 0) + 1
            journal.setdefault(segment, ([], []))[1].append(record.ordinal)
        for record in released:
            record.state = RecordState.PENDING
            record.fresh = False
            if record.segment is not None:
                record.segment.release(record.ordinal)
        for segment, (settled, failures) in journal.items():
            if settled:
                self._schedule(_Journal(segment, "done", settled))
            if failures:
                self._schedule(_Journal(segment, "failed", failures))
            self._maybe_delete(segment)

    def _forget_unwritten(self, record: Record) -> None:
        with contextlib.suppress(ValueError):
            self.unwritten.remove(record)

    def _maybe_delete(self, segment: Segment) -> None:
        if (
            segment is self._active
            and not self.keep_active
            and segment.settled
            and segment.next_number
        ):
            # Every record of the segment being appended to is settled: it goes
            # now, and the next record starts a new one (write-ahead mode keeps
            # it until it is full, to spare a create and a delete per commit).
            segment.sealed = True
        if segment.settled and segment.sealed and segment in segment.log.segments:
            segment.log.segments.remove(segment)
            if segment is self._active:
                self._active = None
            self._schedule(_Delete(segment.log, segment))

    # -- limits ---------------------------------------------------------------------

    def enforce_limits(self) -> None:
        """Evict whole oldest segments past ``max_bytes`` or ``max_age``; count their events.

        Never a segment with a record being posted or written. Past the byte
        limit it evicts down to 90% of it, so that the next appends do not
        each evict again.
        """
        horizon = self._clock.wall_time() - self.max_age
        total = self.size + sum(s.unwritten for s in self.own.segments)
        over = total - self.max_bytes
        if over > 0:
            over += self.max_bytes // 10
        evicted = 0
        for segment in list(self._segments()):
            too_old = 0 < segment.newest < horizon
            if not (over > 0 or too_old):
                continue
            if segment.held or segment.writing:
                continue
            over -= segment.bytes + segment.unwritten
            evicted += self._evict(segment)
        if evicted:
            self._counters.dropped_spool_limit += evicted
            if not self._warned_limit:
                self._warned_limit = True
                logger.warning(
                    "eventlog: spool limits reached (%d bytes, %gs); oldest events dropped",
                    self.max_bytes,
                    self.max_age,
                )
            else:
                logger.debug("spool limits: %d events dropped", evicted)

    def _evict(self, segment: Segment) -> int:
        count = len(segment.live)
        for record in segment.memory.values():
            record.state = RecordState.DROPPED
        if segment.live:
            # Journalled first: should the delete fail (or the file be shared
            # with other pages, a version 1 file), they stay dropped.
            self._schedule(_Journal(segment, "done", list(segment.live)))
        segment.live.clear()
        segment.memory.clear()
        segment.sealed = True
        self._maybe_delete(segment)
        return count

    # -- taking over earlier runs ---------------------------------------------------

    def adopt(self, log: RunLog) -> None:
        """Add an earlier run's log (claimed and indexed) to the ones to drain."""
        self.logs.append(log)
        self.logs.sort(key=lambda entry: entry.sort_key)
        for segment in list(log.segments):
            if segment.settled:
                self._maybe_delete(segment)
        if not log.segments:
            self._schedule(_Delete(log, None))
        self.enforce_limits()

    # -- the writer ------------------------------------------------------------------

    def _schedule(self, op: _Op) -> None:
        self._outstanding += 1
        if isinstance(op, _Journal):
            op.segment.journaling += 1
            if op.segment.log is self.own and not self._own_ready:
                # This run's log directory is not there yet: the writer's lane
                # creates it with the first append, queued before this line.
                self._queue.append(op)
                self._work.set()
                return
            # A lane of its own: an acknowledgement must not wait behind a
            # commit's fsync (a kill meanwhile would send its chunk twice).
            self._journal_queue.append(op)
            self._journal_work.set()
        else:
            self._queue.append(op)
            self._work.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The writer tasks: the operations, in order, off the loop; journal lines apart."""
        async with anyio.create_task_group() as lanes:
            lanes.start_soon(self._run_journal)
            task_status.started()
            await self._run_writer()

    async def _run_journal(self) -> None:
        while True:
            await self._flush_journal()
            self._journal_work = anyio.Event()
            # Always true: _flush_journal returns with the queue empty, and no
            # checkpoint lies between; kept should it ever yield before returning.
            if not self._journal_queue:  # pragma: no branch
                await self._journal_work.wait()

    async def _flush_journal(self) -> None:
        """Append every queued journal line, in order (through the reader's thread)."""
        while self._journal_queue:
            op = self._journal_queue.popleft()
            with anyio.CancelScope(shield=True):
                await self._journal_op(op)

    async def _journal_op(self, op: _Journal) -> None:
        try:
            await self._write_journal(op)
        finally:
            op.segment.journaling -= 1
            self._journalled.set()
            self._journalled = anyio.Event()
            self._done_one()

    def _done_one(self) -> None:
        self._outstanding -= 1
        if not self._outstanding:
            self._caught_up.set()
            self._caught_up = anyio.Event()

    async def _run_writer(self) -> None:
        while True:
            await self._flush()
            self._work = anyio.Event()
            # Never true: _flush returns with the queue empty, and no checkpoint
            # lies between; kept should it ever yield before returning.
            if self._queue:  # pragma: no cover
                continue  # queued while the last operation ran
            retry_at = self._write_retry_at
            if retry_at is None:
                await self._work.wait()
            elif self._clock.monotonic() >= retry_at:
                await self._retry_unwritten()
            else:
                await wait_event_until(self._clock, self._work, retry_at)

    async def _retry_unwritten(self) -> None:
        """The disk's backoff is over: write what only memory holds, to a new segment.

        A slice at a time, with a checkpoint between: memory may hold
        thousands of events, and their bookkeeping is the event loop's.
        """
        self._write_retry_at = None
        waiting = [r for r in self.unwritten if r.state is not RecordState.DROPPED]
        self.unwritten.clear()
        for start in range(0, len(waiting), _RETRY_SLICE):
            if start:
                await anyio.lowlevel.checkpoint()
            self._append(waiting[start : start + _RETRY_SLICE])

    async def _flush(self) -> None:
        """Carry out every queued operation (the writer's loop, and close())."""
        while self._queue:
            op = self._queue.popleft()
            # Shielded: an operation started always completes and is accounted.
            with anyio.CancelScope(shield=True):
                if isinstance(op, _Journal):
                    await self._journal_op(op)
                    continue
                try:
                    if isinstance(op, _Append):
                        await self._write(op)
                    else:
                        await self._delete(op)
                finally:
                    self._done_one()

    async def _write(self, op: _Append) -> None:
        segment = op.segment
        records = op.records
        # Evicted or settled meanwhile: write only what is still unsettled.
        keep = [r for r in records if r.ordinal in segment.live]
        # The attempts a record had when it was kept: failures since are
        # journalled already (it may have been retried from memory meanwhile).
        failures = segment.failed
        items = [
            (r.ordinal, r.attempts - failures.get(r.ordinal, 0), r.spooled_at, r.payload)
            for r in keep
        ]
        ends: list[int]
        written: int
        error: OSError | None
        if items and segment.torn:
            # Queued behind a write to this segment that failed: its tail may
            # be a torn line, and a line appended to it would be unreadable.
            # These wait in memory with the others, for the retry.
            ends, written, error = [], 0, _TORN
        elif items:
            ends, written, error = await self._runner(self._writer_function(segment, items))
        else:
            ends, written, error = [], 0, None
        segment.writing -= 1
        segment.unwritten -= sum(len(r.payload) for r in records) + _LINE_OVERHEAD * len(records)
        # The lines that reached the file: all of them, or those before a
        # failed write's end. A line that lacks only its newline reads back
        # whole: it is written (rewritten elsewhere, it would be on disk twice).
        whole = len(ends) if error is None else bisect.bisect_right(ends, written + 1)
        stored = keep[:whole]
        # Not on disk: memory keeps them, unless they were settled meanwhile.
        failed = [r for r in keep[whole:] if r.ordinal in segment.live]
        segment.add_lines([r.ordinal for r in stored], segment.bytes, ends[:whole])
        live, held, memory = segment.live, segment.held, segment.memory
        for record in stored:
            number = record.ordinal
            if number in live and number not in held:
                memory.pop(number, None)  # on disk: memory may let go
        segment.bytes += written
        if error is None:
            if self._disk_problem is not None:
                logger.warning("eventlog: the spool writes to disk again")
            self._disk_problem = None
            self._write_failures = 0
        else:
            if error is not _TORN:
                self._disk_error(error)
            segment.sealed = True
            segment.torn = True
            if segment is self._active:
                self._active = None
            for record in failed:
                segment.live.discard(record.ordinal)
                segment.held.discard(record.ordinal)
                segment.memory.pop(record.ordinal, None)
            self._keep_in_memory(failed)
        op.done.set()
        self._maybe_delete(segment)

    def _writer_function(
        self, segment: Segment, items: list[tuple[int, int, float, bytes]]
    ) -> Callable[[], tuple[list[int], int, OSError | None]]:
        """The write of one append, for the writer thread.

        It encodes the lines there too (checksums are CPU work), and returns
        where each line ends, how many bytes reached the file, and the error.
        """
        ops = self._ops
        fds = self._fds
        own = self.own

        def write() -> tuple[list[int], int, OSError | None]:
            lines: list[bytes] = []
            for start in range(0, len(items), LET_GO_EVERY):
                if start:
                    let_go()
                lines += encode_record_lines(items[start : start + LET_GO_EVERY])
            ends = list(itertools.accumulate(len(line) for line in lines))
            data = b"".join(lines)
            written = 0
            try:
                if not self._own_ready:
                    self._open_own_log()
                fd = fds.get(segment.path)
                if fd is None:
                    fd = ops.open(segment.path, _APPEND_FLAGS)
                    fds[segment.path] = fd
                    assert own.directory is not None
                    ops.fsync_dir(own.directory)  # the new name survives a power loss
                try:
                    written = ops.write(fd, data)
                except OSError as exc:
                    written = getattr(exc, "written", 0)
                    raise
                ops.fsync(fd)
            except OSError as exc:
                return ends, written, exc
            return ends, written, None

        return write

    def _open_own_log(self) -> None:
        """Create this run's log directory and take its lock (in the writer thread)."""
        ops = self._ops
        directory = self.own.directory
        assert directory is not None
        ops.makedirs(self.directory)
        with contextlib.suppress(FileExistsError):
            ops.mkdir(directory)
        if self.own.lock_fd is None:
            # Not again when an earlier try took the lock and failed after it:
            # a second open file description could not lock what the first holds.
            fd = ops.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT)
            try:
                # Run ids are random: a clash would be a bug.
                if not ops.lock(fd):  # pragma: no cover
                    raise OSError(errno.EAGAIN, "spool log locked by another run")
            except OSError:
                ops.close_quietly(fd)
                raise
            self.own.lock_fd = fd
        ops.fsync_dir(self.directory)
        self._own_ready = True

    async def _write_journal(self, op: _Journal) -> None:
        segment = op.segment
        if segment not in segment.log.segments and op.kind == "failed":
            return  # deleted since: its records are settled
        kind, numbers = op.kind, op.numbers
        # Glued to a torn line, this one would be unreadable too.
        torn = segment.journal_torn
        ops = self._ops
        path = segment.journal_path

        def append() -> None:
            line = encode_journal_line(kind, numbers)  # sorting ranges is CPU: in the thread
            if torn:
                line = b"\n" + line
            fd = ops.open(path, _APPEND_FLAGS)
            try:
                ops.write(fd, line)
            finally:
                ops.close_quietly(fd)

        try:
            await self._journal_runner(append)
        except OSError as exc:
            # The records are settled in memory; on disk they may be sent again.
            logger.debug("spool journal %s not written: %s", path, exc)
            # Part of the line may have reached the file (the pages of a
            # version 1 file share it).
            for other in (segment, *segment.log.segments):
                if other.journal_path == path:
                    other.journal_torn = True
        else:
            segment.journal_torn = False

    async def _delete(self, op: _Delete) -> None:
        segment, log = op.segment, op.log
        # Its journal lines first, or one written after the delete would
        # recreate the journal file.
        while segment is not None and segment.journaling:
            await self._journalled.wait()
        ops = self._ops
        fd = self._fds.pop(segment.path, None) if segment is not None else None
        # An earlier run's log goes with its last segment; this run's at close.
        remove_log = op.last
        lock_fd = log.lock_fd if remove_log else None
        if remove_log:
            log.lock_fd = None
        paths: list[str] = []
        if log.file is not None:
            # A version 1 file: one file for all its pages, and its own lock.
            if remove_log:
                paths += [log.file, log.file + ".jnl"]
        elif segment is not None:
            paths += [segment.path, segment.journal_path]
        directory = log.directory

        def delete() -> None:
            if fd is not None:
                ops.close_quietly(fd)
            try:
                for path in paths:
                    with contextlib.suppress(FileNotFoundError):
                        ops.unlink(path)
                if remove_log and directory is not None:
                    _remove_log_directory(ops, directory)
            finally:
                # Released even when a delete failed: nothing holds the log any more.
                if lock_fd is not None:
                    ops.close_quietly(lock_fd)
            if paths or remove_log:
                ops.fsync_dir(directory if directory and not remove_log else self.directory)

        try:
            await self._runner(delete)
        except OSError as exc:
            # Settled records still on disk: the next run finds them done in
            # the journal (or, if that was lost too, sends them again).
            logger.debug("spool %s not deleted: %s", paths or log.lock_path, exc)
        if remove_log and log in self.logs:
            self.logs.remove(log)

    def _disk_error(self, exc: OSError) -> None:
        self._write_failures += 1
        delay = min(2.0 ** (self._write_failures - 1), _MAX_WRITE_BACKOFF)
        self._write_retry_at = self._clock.monotonic() + delay
        self._disk_problem = f"spool write failed: {exc.strerror or exc}"
        if not self._warned_disk:
            self._warned_disk = True
            logger.warning(
                "eventlog: spool write failed in %s (%s); keeping events in memory, "
                "retrying in %gs",
                self.directory,
                exc.strerror or exc,
                delay,
            )
        else:
            logger.debug("spool write failed: %s; retrying in %gs", exc, delay)

    # -- closing ----------------------------------------------------------------------

    async def close(self) -> None:
        """Carry out what is queued, write what only memory holds once more, then let go.

        Records still on no disk are lost and counted in ``dropped_disk_error``.
        Earlier runs' logs not drained are unlocked for a later run; this
        run's log is removed if it holds nothing.
        """
        if self._closed:
            return
        self._closed = True
        await self._flush_all()
        if self.unwritten and not self.disabled:
            self._write_retry_at = None
            await self._retry_unwritten()
            await self._flush_all()
        lost = sum(1 for r in self.unwritten if r.state is not RecordState.DROPPED)
        # Gone with this run: counted here, no longer held (stats.spool_events).
        for record in self.unwritten:
            record.state = RecordState.DROPPED
        self.unwritten.clear()
        if lost:
            self._counters.dropped_disk_error += lost
            logger.warning("eventlog: %d events lost: the spool could not be written", lost)
        active = self._active
        if active is not None and active.settled:
            active.sealed = True
            self._maybe_delete(active)
            await self._flush_all()
        await self._release()

    async def _flush_all(self) -> None:
        """Both lanes, journal lines first (a delete waits for its segment's)."""
        await self._flush_journal()
        await self._flush()

    def forget_inherited(self) -> None:
        """In a forked child: close the parent's descriptors of this spool, never unlocking.

        A ``flock`` belongs to the open file description, which the child
        shares: ``LOCK_UN`` here would release the parent's lock, while the
        inherited descriptor, kept open, would hold the lock for as long as
        the child lives, even after the parent let go of its logs (so the
        next run could not take them over). Closing it does neither.
        """
        fds = list(self._fds.values())
        self._fds.clear()
        for log in (*self.logs, self.own):
            if log.lock_fd is not None:
                fds.append(log.lock_fd)
                log.lock_fd = None
        for fd in fds:
            self._ops.close_quietly(fd)

    async def _release(self) -> None:
        _LIVE.discard(self)
        ops = self._ops
        fds = list(self._fds.values())
        self._fds.clear()
        own = self.own
        remove_own = self._own_ready and not own.segments
        locks = [log.lock_fd for log in (*self.logs, own) if log.lock_fd is not None]
        for log in (*self.logs, own):
            log.lock_fd = None

        def release() -> None:
            for fd in fds:
                ops.close_quietly(fd)
            if remove_own and own.directory is not None:
                with contextlib.suppress(OSError):
                    _remove_log_directory(ops, own.directory)
                    ops.fsync_dir(self.directory)
            for fd in locks:
                ops.close_quietly(fd)

        with anyio.CancelScope(shield=True):
            await self._runner(release)


def _remove_log_directory(ops: FileOps, directory: str) -> None:
    """Remove a log whose records are all settled: what is left in it, its lock, itself.

    A settled segment's file whose delete failed may still be there. The lock
    goes last: should anything else fail to go, the log stays claimable, and
    a later run removes it (without its lock no run would ever take it over).
    """
    for name in ops.listdir(directory):
        if name != LOCK_NAME:
            with contextlib.suppress(FileNotFoundError):
                ops.unlink(os.path.join(directory, name))
    with contextlib.suppress(FileNotFoundError):
        ops.unlink(os.path.join(directory, LOCK_NAME))
    with contextlib.suppress(FileNotFoundError):
        ops.rmdir(directory)


# Not a write that failed: one that must not be tried (see _write).
_TORN: Final = OSError(errno.EIO, "queued behind a failed write to the same segment")


def _after_fork_in_child() -> None:
    # No thread of the parent's runs here: these spools are the parent's, live.
    for spool in list(_LIVE):
        spool.forget_inherited()
    _LIVE.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)

# Everything of a record line but the payload, at its widest; for the size limit.
_LINE_OVERHEAD: Final = len(b'{"v":2,"n":,"attempts":,"t":,"crc32":"00000000","event":}\n') + 3 * 20
