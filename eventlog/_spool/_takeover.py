"""Taking over earlier runs' spools, in place (docs/delivery.md, "Replay of earlier runs").

At start a background task lists the storage directory (off the loop) and,
oldest first, claims every log no live run holds: a version 2 directory by
taking the ``flock`` of its ``lock`` file, a version 1 file by taking its own.
``flock`` is exclusive, so exactly one successor gets each one; nothing is
copied or renamed, so a nearly full disk is no obstacle. The claimed log is
indexed a segment at a time (its records' numbers, times and settled state,
without their payloads) and handed to the :class:`~eventlog._spool._log.Spool`,
which drains it like its own and deletes each segment once settled. A log
the run does not finish stays where it is, unlocked, for the next run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from functools import partial
from typing import TYPE_CHECKING, Final, NamedTuple

import anyio.lowlevel

from eventlog._spool._files import held_lock
from eventlog._spool._format import (
    LOCK_NAME,
    iter_lines,
    parse_journal,
    parse_line,
    parse_run_name,
    parse_segment_name,
    parse_v1_name,
)
from eventlog._spool._runner import LET_GO_EVERY, let_go
from eventlog._spool._segment import V1_SEGMENT_BYTES, RunLog, Segment

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from eventlog._spool._files import FileOps
    from eventlog._spool._log import Spool
    from eventlog._spool._runner import Runner
    from eventlog._stats import Counters

__all__ = ["Candidate", "find_candidates", "take_over"]

logger = logging.getLogger("eventlog")

_TEMP_SUFFIX: Final = ".tmp"


class Candidate(NamedTuple):
    """An earlier run's spool found in the storage directory."""

    path: str
    version: int
    """2: a log directory; 1: a version 1 file; 0: a version 1 rewrite's leftover temp file."""
    mtime: float


def find_candidates(directory: str, ops: FileOps, *, exclude: str = "") -> list[Candidate]:
    """Every earlier run's spool in ``directory``, oldest first (blocking: in a runner)."""
    found: list[Candidate] = []
    for name in ops.listdir(directory):
        path = os.path.join(directory, name)
        if path == exclude:
            continue
        if parse_run_name(name) is not None:
            version = 2
        elif parse_v1_name(name) is not None:
            version = 1
        elif name.endswith(_TEMP_SUFFIX) and parse_v1_name(name[: -len(_TEMP_SUFFIX)]):
            version = 0
        else:
            continue
        try:
            info = ops.stat(path)
        except FileNotFoundError:
            continue  # its owner removed it since the listing: nothing to take over
        found.append(Candidate(path, version, _newest_mtime(path, info.st_mtime, version, ops)))
    found.sort(key=lambda c: (c.mtime, c.path))
    return found


def _newest_mtime(path: str, mtime: float, version: int, ops: FileOps) -> float:
    if version != 2:
        return mtime
    newest = mtime
    with contextlib.suppress(OSError):
        for name in ops.listdir(path):
            with contextlib.suppress(OSError):
                newest = max(newest, ops.stat(os.path.join(path, name)).st_mtime)
    return newest


def _claim(candidate: Candidate, ops: FileOps) -> int | None:
    """The locked fd of the candidate's lock, or None if a live run holds it."""
    lock_path = (
        os.path.join(candidate.path, LOCK_NAME) if candidate.version == 2 else candidate.path
    )
    # A log directory without its lock file is a run's that died creating it:
    # created here, so that the empty directory is claimed and removed. (Its
    # owner, were it alive in that instant, would fail to lock and retry.)
    flags = os.O_RDWR | (os.O_CREAT if candidate.version == 2 else 0)
    try:
        fd = ops.open(lock_path, flags)
    except OSError as exc:
        logger.debug("spool %s not opened: %s", lock_path, exc)
        return None
    try:
        if ops.lock(fd) and held_lock(fd, lock_path):
            return fd
    except OSError as exc:
        logger.debug("spool %s not locked: %s", lock_path, exc)
    ops.close_quietly(fd)
    return None


def _read_journal(ops: FileOps, path: str) -> tuple[bytes, set[int], dict[int, int]]:
    """A journal's bytes (empty if there is none yet) and what it says (:func:`parse_journal`)."""
    journal = b""
    with contextlib.suppress(FileNotFoundError):
        journal = ops.read(path)
    done, failed = parse_journal(journal)
    return journal, done, failed


def _file_line(
    segment: Segment,
    number: int,
    offset: int,
    length: int,
    spooled_at: float,
    done: set[int],
    failed: dict[int, int],
) -> None:
    """Index record ``number``'s line; unless its journal settled it, it waits for a retry."""
    segment.add_line(number, offset, length)
    if number in done:
        return
    segment.live.add(number)
    segment.stamp(spooled_at)
    if number in failed:
        segment.failed[number] = failed[number]


def _index_segment(segment: Segment, ops: FileOps, counters: Counters, mtime: float) -> None:
    """Read a version 2 segment and its journal into ``segment`` (no payloads kept).

    Streamed a chunk at a time (in a runner's thread): memory holds a chunk,
    and the interpreter's lock is let go between lines.
    """
    journal, done, failed = _read_journal(ops, segment.journal_path)
    size = 0
    highest = -1

    def chunks() -> Iterator[bytes]:
        nonlocal size
        for chunk in ops.read_chunks(segment.path):
            size += len(chunk)  # the file's size, a torn last line included
            yield chunk

    try:
        for index, (offset, raw) in enumerate(iter_lines(chunks())):
            if not index % LET_GO_EVERY:
                let_go()
            if not raw.strip():
                continue
            line = parse_line(raw, -1, payload=False)
            if line is None:
                counters.spool_corrupt_lines += 1
                continue
            highest = max(highest, line.number)
            _file_line(
                segment, line.number, offset, len(raw) + 1, line.spooled_at or mtime, done, failed
            )
    except FileNotFoundError:
        pass
    segment.next_number = highest + 1
    segment.bytes = size
    segment.sealed = True
    segment.journal_torn = bool(journal) and not journal.endswith(b"\n")


def _index_v1(log: RunLog, path: str, ops: FileOps, counters: Counters, mtime: float) -> None:
    """Read a version 1 file into segments of about ``V1_SEGMENT_BYTES`` (no payloads kept).

    Its lines have no number: a line's position in the file is its number,
    the key of the journal this run keeps beside the file.
    """
    journal, done, failed = _read_journal(ops, path + ".jnl")
    segment: Segment | None = None
    size = 0

    def chunks() -> Iterator[bytes]:
        nonlocal size
        for chunk in ops.read_chunks(path):
            size += len(chunk)
            yield chunk

    for position, (offset, raw) in enumerate(iter_lines(chunks())):
        if not position % LET_GO_EVERY:
            let_go()
        if segment is None or segment.bytes >= V1_SEGMENT_BYTES:
            segment = Segment(log, len(log.segments), path, path + ".jnl")
            segment.sealed = True
            log.segments.append(segment)
        segment.bytes += len(raw) + 1
        segment.next_number = position + 1
        if not raw.strip():
            continue
        line = parse_line(raw, position, payload=False)
        if line is None:
            counters.spool_corrupt_lines += 1
            continue
        _file_line(segment, position, offset, len(raw) + 1, line.spooled_at or mtime, done, failed)
    if segment is not None:
        # Lines were counted with their newline: a torn last line has none.
        segment.bytes -= sum(each.bytes for each in log.segments) - size
    torn = bool(journal) and not journal.endswith(b"\n")
    for each in log.segments:
        each.cursor = each.pages[0].first if each.pages else each.next_number
        each.journal_torn = torn


async def take_over(
    spool: Spool,
    counters: Counters,
    wake: Callable[[], None],
    *,
    ops: FileOps,
    runner: Runner,
) -> None:
    """Claim, index and hand over every unlocked earlier spool in the storage directory."""
    directory = spool.directory
    exclude = spool.own.directory or ""
    try:
        candidates = await runner(partial(find_candidates, directory, ops, exclude=exclude))
    except FileNotFoundError:
        return
    except OSError as exc:
        logger.debug("spool directory %s not listed: %s", directory, exc)
        return
    taken = 0
    for candidate in candidates:
        await anyio.lowlevel.checkpoint()
        fd = await runner(partial(_claim, candidate, ops))
        if fd is None:
            logger.debug("spool %s is held by a live logger; left alone", candidate.path)
            continue
        if candidate.version == 0:
            # A version 1 rewrite's leftover: the file it was to replace is the real one.
            await runner(partial(_remove_temp, candidate.path, fd, ops))
            continue
        log = RunLog(
            directory=candidate.path if candidate.version == 2 else None,
            file=candidate.path if candidate.version == 1 else None,
            inherited=True,
            sort_key=candidate.mtime,
        )
        log.lock_fd = fd
        try:
            if candidate.version == 2:
                names = await runner(partial(ops.listdir, candidate.path))
                numbers = sorted(
                    parsed[0]
                    for name in names
                    if (parsed := parse_segment_name(name)) is not None and not parsed[1]
                )
                for number in numbers:
                    segment = log.new_segment(number)
                    # One segment per call: memory holds one segment's bytes at a time.
                    await runner(partial(_index_segment, segment, ops, counters, candidate.mtime))
            else:
                await runner(
                    partial(_index_v1, log, candidate.path, ops, counters, candidate.mtime)
                )
        except OSError as exc:
            logger.debug("spool %s not read: %s; left for a later run", candidate.path, exc)
            await runner(partial(ops.close_quietly, fd))
            continue
        events = sum(len(s.live) for s in log.segments)
        counters.taken_over += events
        spool.adopt(log)
        taken += events
        logger.debug("took over %d events from %s", events, candidate.path)
        wake()
    if taken:
        logger.debug("replaying %d events of earlier runs", taken)


def _remove_temp(path: str, fd: int, ops: FileOps) -> None:
    try:
        ops.unlink(path)
        ops.fsync_dir(os.path.dirname(path))
    except OSError as exc:
        logger.debug("spool temp file %s not removed: %s", path, exc)
    finally:
        ops.close_quietly(fd)
