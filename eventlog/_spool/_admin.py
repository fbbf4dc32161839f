"""Reading and operating a storage directory from outside a logger (``eventlog spool``).

The command line is presentation over these functions; they read the files
with the same format and locks as the SDK (:mod:`._format`, :mod:`._files`),
so there is one implementation of both. They follow the loggers' locking
rule: a log held by a live logger is read at most, never changed.
Everything here is blocking: call it from a thread, or from a program that
has no event loop to stall.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Literal

from eventlog._spool._files import FileOps, held_lock, probe_lock
from eventlog._spool._format import (
    LOCK_NAME,
    Line,
    parse_journal,
    parse_run_name,
    parse_segment_name,
    parse_v1_name,
    read_lines,
)
from eventlog._spool._takeover import find_candidates

__all__ = [
    "DeleteOutcome",
    "LogInfo",
    "SpooledEvent",
    "delete_log",
    "log_info",
    "read_events",
    "scan",
]


@dataclasses.dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event waiting in a spool: its envelope and its delivery bookkeeping."""

    payload: bytes
    """The envelope, exactly as it will be posted."""
    attempts: int
    """Failed POSTs so far (its line's count plus its journal's)."""
    spooled_at: float
    """When it first reached a spool (wall seconds; 0 when unknown)."""
    segment: int
    """Its segment's number (0 for a version 1 file)."""
    number: int
    """Its number within the segment."""


@dataclasses.dataclass(frozen=True, slots=True)
class LogInfo:
    """One run's spool as found on disk."""

    path: str
    """The log's directory (version 2), or file (version 1)."""
    name: str
    version: int
    """2: a log directory; 1: a version 1 file; 0: a version 1 rewrite's leftover temp file."""
    session: str
    run: str
    segments: int
    events: int
    """Events waiting for delivery (valid lines not settled in the journal)."""
    corrupt: int
    """Torn, undecodable or checksum-failing lines."""
    size: int
    """Bytes of its files."""
    mtime: float
    """When it was last written to."""
    locked: bool
    """Held by a live logger at the time of the probe."""

    def as_json(self, now: float) -> dict[str, object]:
        """The entry as JSON-ready values, its age taken at ``now``."""
        return {
            "name": self.name,
            "path": self.path,
            "version": self.version,
            "kind": "temp" if self.version == 0 else "spool",
            "session": self.session,
            "run": self.run,
            "segments": self.segments,
            "events": self.events,
            "corrupt": self.corrupt,
            "bytes": self.size,
            "mtime": self.mtime,
            "age_seconds": round(max(now - self.mtime, 0.0), 3),
            "locked": self.locked,
        }


def _segment_files(directory: str, ops: FileOps) -> list[tuple[int, str, str]]:
    """``(number, segment path, journal path)`` of a log directory, by number."""
    numbers = sorted(
        parsed[0]
        for name in ops.listdir(directory)
        if (parsed := parse_segment_name(name)) is not None and not parsed[1]
    )
    return [
        (
            number,
            os.path.join(directory, f"{number:08d}.seg"),
            os.path.join(directory, f"{number:08d}.jnl"),
        )
        for number in numbers
    ]


def _read_or_empty(path: str, ops: FileOps) -> bytes:
    try:
        return ops.read(path)
    except FileNotFoundError:
        return b""


def _events_of(
    data: bytes, journal: bytes, segment: int, *, payloads: bool
) -> tuple[list[SpooledEvent], int]:
    done, failed = parse_journal(journal)
    lines, skipped = read_lines(data, payloads=payloads)
    events = [
        _event(line, failed.get(line.number, 0), segment)
        for line in lines
        if line.number not in done
    ]
    return events, skipped


def _event(line: Line, failures: int, segment: int) -> SpooledEvent:
    return SpooledEvent(
        payload=line.payload,
        attempts=line.attempts + failures,
        spooled_at=line.spooled_at,
        segment=segment,
        number=line.number,
    )


def read_events(path: str, *, ops: FileOps | None = None) -> tuple[list[SpooledEvent], int]:
    """The events waiting in one log (a directory or a version 1 file), and its corrupt lines.

    Read without a lock: a live logger may be appending meanwhile.

    Raises:
        OSError: the log cannot be read (``FileNotFoundError`` if it vanished).
    """
    ops = ops if ops is not None else FileOps()
    if parse_run_name(os.path.basename(path)) is None:
        return _events_of(ops.read(path), _read_or_empty(path + ".jnl", ops), 0, payloads=True)
    events: list[SpooledEvent] = []
    corrupt = 0
    for number, segment, journal in _segment_files(path, ops):
        found, skipped = _events_of(
            _read_or_empty(segment, ops), _read_or_empty(journal, ops), number, payloads=True
        )
        events += found
        corrupt += skipped
    return events, corrupt


def log_info(path: str, *, probe_locks: bool = True, ops: FileOps | None = None) -> LogInfo | None:
    """What one log holds, without keeping any lock; None if it vanished."""
    ops = ops if ops is not None else FileOps()
    name = os.path.basename(path)
    run = parse_run_name(name)
    v1 = parse_v1_name(name.removesuffix(".tmp"))
    if run is not None:
        version, (session, run_id) = 2, run
    elif v1 is not None:
        version, (session, run_id) = (0 if name.endswith(".tmp") else 1), v1
    else:
        version, session, run_id = 1, "?", "?"
    try:
        info = ops.stat(path)
        if version == 2:
            files = _segment_files(path, ops)
            events = corrupt = size = 0
            mtime = info.st_mtime
            for number, segment, journal in files:
                data = _read_or_empty(segment, ops)
                found, skipped = _events_of(
                    data, _read_or_empty(journal, ops), number, payloads=False
                )
                events += len(found)
                corrupt += skipped
                size += len(data)
                with contextlib.suppress(OSError):
                    mtime = max(mtime, ops.stat(segment).st_mtime)
            segments = len(files)
        else:
            data = ops.read(path)
            found, corrupt = _events_of(data, _read_or_empty(path + ".jnl", ops), 0, payloads=False)
            events, size, segments, mtime = len(found), len(data), 1, info.st_mtime
        lock = os.path.join(path, LOCK_NAME) if version == 2 else path
        locked = probe_lock(lock) if probe_locks else False
    except FileNotFoundError:
        return None
    return LogInfo(
        path=path,
        name=name,
        version=version,
        session=session,
        run=run_id,
        segments=segments,
        events=events,
        corrupt=corrupt,
        size=size,
        mtime=mtime,
        locked=locked,
    )


def scan(directory: str, *, probe_locks: bool = True, ops: FileOps | None = None) -> list[LogInfo]:
    """Every log in ``directory``, oldest first (leftover temp files among them).

    Raises:
        FileNotFoundError: the directory does not exist.
        OSError: it cannot be listed.
    """
    ops = ops if ops is not None else FileOps()
    entries = (
        log_info(c.path, probe_locks=probe_locks, ops=ops) for c in find_candidates(directory, ops)
    )
    return [entry for entry in entries if entry is not None]


DeleteOutcome = Literal["deleted", "locked", "missing", "error"]


def delete_log(path: str, *, ops: FileOps | None = None) -> tuple[DeleteOutcome, str]:
    """Delete a log while holding its lock; never one a live logger holds.

    Returns the outcome and, for anything but ``deleted``, why.
    """
    ops = ops if ops is not None else FileOps()
    version2 = parse_run_name(os.path.basename(path)) is not None
    lock = os.path.join(path, LOCK_NAME) if version2 else path
    try:
        fd = ops.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    try:
        if not ops.lock(fd):
            return "locked", "locked by a live logger"
        if not held_lock(fd, lock):
            return "locked", "replaced by a live logger meanwhile"
        if version2:
            for name in ops.listdir(path):
                if name != LOCK_NAME:
                    ops.unlink(os.path.join(path, name))
            ops.unlink(lock)
            ops.rmdir(path)
        else:
            ops.unlink(path)
            with contextlib.suppress(FileNotFoundError):
                ops.unlink(path + ".jnl")
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    finally:
        ops.close_quietly(fd)
    with contextlib.suppress(OSError):
        ops.fsync_dir(os.path.dirname(path) or ".")
    return "deleted", ""
