"""The spool: events that could not be delivered yet, on disk (design §5).

One append-only JSON-lines file per logger run,
``<storage_dir>/failed_events.<session_id>.<run_id>.jsonl``. Each line is one
record::

    {"v":1,"attempts":2,"crc32":"9a0b1c2d","event":{"event_type":...}}

``event`` is the envelope exactly as it was posted; ``crc32`` is the CRC-32 of
those bytes, so a torn or bit-flipped line is detected and skipped rather than
replayed as garbage; ``attempts`` counts the event's failed POSTs so that
``max_attempts`` holds across restarts; ``v`` leaves room to grow (readers
ignore fields they do not know).

Rules this module keeps:

* Nothing leaves the disk before the server acknowledged it. A change other
  than an append is a rewrite: temp file, fsync, atomic rename, directory
  fsync. A crash at any point leaves either the old or the new file.
* A run holds an exclusive ``flock`` on its file for as long as it lives.
  ``flock`` locks belong to the open file description, so they exclude other
  loggers of the same process as well as other processes. The temp file of a
  rewrite is locked before it is renamed into place, so the path is never
  unlocked while the run lives.
* The file is created lazily: a run that never fails to deliver leaves no
  file behind.
* I/O runs on the event-loop thread. Writes are small and rare (only events
  that failed to go out), and keeping them synchronous keeps ordering trivial
  and virtual-time tests exact (a thread would let trio's autojump clock jump
  while the write is in flight).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import logging
import os
import re
import zlib
from typing import TYPE_CHECKING, Final, final

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from eventlog._stats import Counters

__all__ = [
    "FILE_PREFIX",
    "FILE_SUFFIX",
    "Record",
    "RecordState",
    "Spool",
    "SpoolFile",
    "encode_line",
    "parse_lines",
    "spool_file_name",
]

logger = logging.getLogger("eventlog")

FILE_PREFIX: Final = "failed_events."
FILE_SUFFIX: Final = ".jsonl"
TEMP_SUFFIX: Final = ".tmp"
LINE_VERSION: Final = 1
_FILE_RE: Final = re.compile(
    r"failed_events\.(?P<session>[A-Za-z0-9_-]{1,128})\.(?P<run>[A-Za-z0-9_-]{1,64})\.jsonl"
)
_OPEN_FLAGS: Final = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def spool_file_name(session_id: str, run_id: str) -> str:
    """``failed_events.<session_id>.<run_id>.jsonl``."""
    return f"{FILE_PREFIX}{session_id}.{run_id}{FILE_SUFFIX}"


def parse_file_name(name: str) -> tuple[str, str] | None:
    """``(session_id, run_id)`` of a spool file name, or None for any other name."""
    match = _FILE_RE.fullmatch(name)
    return (match["session"], match["run"]) if match else None


class RecordState(enum.Enum):
    """Where one record stands within one delivery attempt."""

    PENDING = enum.auto()
    """Not resolved yet: if nothing else happens, it stays in (or goes to) the spool."""
    ACKED = enum.auto()
    """Acknowledged by the server."""
    DROPPED = enum.auto()
    """Dropped for good (permanent rejection); already counted."""
    FAILED = enum.auto()
    """Part of a POST that failed; its attempt count goes up."""


@final
class Record:
    """One event on its way: the envelope bytes and the failed POSTs so far."""

    __slots__ = ("attempts", "payload", "persisted", "state")

    def __init__(self, payload: bytes, attempts: int = 0) -> None:
        self.payload = payload
        self.attempts = attempts
        self.state = RecordState.PENDING
        self.persisted = False


class _Line(msgspec.Struct):
    v: int
    attempts: int
    crc32: str
    event: msgspec.Raw


_LINE_DECODER: Final = msgspec.json.Decoder(_Line)


def encode_line(record: Record) -> bytes:
    """The spool line of ``record``, newline included."""
    return b'{"v":%d,"attempts":%d,"crc32":"%08x","event":%b}\n' % (
        LINE_VERSION,
        record.attempts,
        zlib.crc32(record.payload),
        record.payload,
    )


def parse_lines(data: bytes, counters: Counters) -> list[Record]:
    """Every valid record in ``data``; torn, corrupt and mismatching lines are counted.

    Lines are decoded one by one (not with ``decode_lines``) so one bad line
    costs only itself.
    """
    records: list[Record] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            parsed = _LINE_DECODER.decode(line)
        except msgspec.DecodeError:
            counters.spool_corrupt_lines += 1
            continue
        payload = bytes(parsed.event)
        if f"{zlib.crc32(payload):08x}" != parsed.crc32 or parsed.attempts < 0:
            counters.spool_corrupt_lines += 1
            continue
        record = Record(payload, parsed.attempts)
        record.persisted = True
        records.append(record)
    return records


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@final
class SpoolFile:
    """Another run's spool file, locked and read so it can be taken over.

    Use :meth:`claim`; then :meth:`remove` once its records are safe elsewhere,
    or :meth:`release` to leave it for later.
    """

    def __init__(self, path: str, fd: int, records: list[Record], size: int) -> None:
        self.path = path
        self.records = records
        self.size = size
        self._fd: int | None = fd

    @classmethod
    def claim(cls, path: str, counters: Counters) -> SpoolFile | None:
        """Lock and read ``path``; None if a live run holds it or it vanished."""
        try:
            fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
        except OSError as exc:
            logger.debug("spool file %s not opened: %s", path, exc)
            return None
        try:
            if not _lock(fd):
                os.close(fd)
                return None
            # The owner may have renamed a new file into place between our
            # open and our lock; then we hold a stale inode and must let go.
            held, current = os.fstat(fd), os.stat(path, follow_symlinks=False)
            if held.st_nlink == 0 or (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
                os.close(fd)
                return None
            data = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
        except OSError as exc:
            os.close(fd)
            logger.debug("spool file %s not read: %s", path, exc)
            return None
        return cls(path, fd, parse_lines(data, counters), len(data))

    def remove(self) -> None:
        """Delete the file (its records are safe elsewhere), then unlock it."""
        try:
            os.unlink(self.path)
            _fsync_dir(os.path.dirname(self.path))
        finally:
            self.release()

    def release(self) -> None:
        """Unlock and close without deleting."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@final
class Spool:
    """This run's spool: an in-memory list of records mirrored to a locked file.

    The list is authoritative while the run lives; the file is what the next
    run replays if this one dies. When the disk refuses a write, records stay
    in memory (``persisted`` False) and the next successful rewrite catches up.
    """

    def __init__(self, directory: str, session_id: str, run_id: str, counters: Counters) -> None:
        self.directory = directory
        self.path = os.path.join(directory, spool_file_name(session_id, run_id))
        self.records: list[Record] = []
        self.size = 0
        self._counters = counters
        self._fd: int | None = None
        self._warned = False

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def append(self, records: Iterable[Record]) -> None:
        """Add ``records`` at the end, on disk (fsync'd) and in memory."""
        batch = list(records)
        if not batch:
            return
        self.records.extend(batch)
        data = b"".join(encode_line(r) for r in batch)
        try:
            fd = self._open()
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            self._disk_error("append", exc)
            return
        self.size += len(data)
        for record in batch:
            record.persisted = True

    def forget(self, records: list[Record]) -> None:
        """Take ``records`` out of memory (they stay safe in the file they came from)."""
        gone = {id(r) for r in records}
        self.records = [r for r in self.records if id(r) not in gone]

    def settle(self) -> None:
        """Forget acknowledged and dropped records and rewrite the file to match."""
        kept = [r for r in self.records if r.state is RecordState.PENDING]
        self.records = kept
        self.rewrite()

    def rewrite(self) -> None:
        """Replace the file with the in-memory records, atomically."""
        if not self.records:
            self._remove_file()
            return
        data = b"".join(encode_line(r) for r in self.records)
        temp = self.path + TEMP_SUFFIX
        try:
            self._ensure_dir()
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, 0o600)
        except OSError as exc:
            self._disk_error("rewrite", exc)
            return
        try:
            if not _lock(fd):  # pragma: no cover -- only a foreign process could hold our temp name
                raise OSError(errno.EAGAIN, "temp file locked by another process")
            _write_all(fd, data)
            os.fsync(fd)
            os.rename(temp, self.path)
            _fsync_dir(self.directory)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            self._disk_error("rewrite", exc)
            return
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self.size = len(data)
        for record in self.records:
            record.persisted = True

    def close(self) -> None:
        """Persist what only memory holds, then unlock; remove the file if empty.

        Records that still cannot be written are lost and counted in
        ``dropped_disk_error``.
        """
        if any(not r.persisted for r in self.records):
            self.rewrite()
            lost = sum(not r.persisted for r in self.records)
            self._counters.dropped_disk_error += lost
            if lost:
                logger.warning("eventlog: %d events lost: the spool could not be written", lost)
        if not self.records:
            self._remove_file()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _ensure_dir(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def _open(self) -> int:
        if self._fd is None:
            self._ensure_dir()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS, 0o600)
            if not _lock(fd):  # pragma: no cover -- run ids are random; a clash is a bug
                os.close(fd)
                raise OSError(errno.EAGAIN, "spool file locked by another run")
            self._fd = fd
        return self._fd

    def _remove_file(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError as exc:
            # An empty file left behind is harmless: the next run replays nothing from it.
            logger.debug("empty spool file %s not removed: %s", self.path, exc)
        os.close(self._fd)
        self._fd = None
        self.size = 0

    def _disk_error(self, operation: str, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "eventlog: spool %s failed in %s (%s); keeping events in memory",
                operation,
                self.directory,
                exc,
            )
        else:
            logger.debug("spool %s failed: %s", operation, exc)
