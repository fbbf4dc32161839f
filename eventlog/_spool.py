"""The spool: events that could not be delivered yet, on disk (design §5).

One append-only JSON-lines file per logger run,
``<storage_dir>/failed_events.<session_id>.<run_id>.jsonl``. Each line is one
record::

    {"v":1,"attempts":2,"t":1767225600,"crc32":"9a0b1c2d","event":{"event_type":...}}

``event`` is the envelope exactly as it was posted; ``crc32`` is the CRC-32 of
those bytes, so a torn or bit-flipped line is detected and skipped rather than
replayed as garbage; ``attempts`` counts the event's failed POSTs so that
``max_attempts`` holds across restarts; ``t`` is when the event first reached
the spool (wall seconds, for ``max_spool_age``; optional, 0 when unknown);
``v`` leaves room to grow (readers ignore fields they do not know).

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
import stat
import zlib
from typing import TYPE_CHECKING, Final, final

import msgspec

from eventlog._exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from eventlog._stats import Counters

__all__ = [
    "FILE_PREFIX",
    "FILE_SUFFIX",
    "FileOps",
    "Record",
    "RecordState",
    "Spool",
    "SpoolFile",
    "check_storage_dir",
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


def check_storage_dir(path: str) -> None:
    """Refuse a storage directory that others could tamper with.

    A missing directory is fine (it is created 0700 on first use). An
    existing one must be a real directory (not a symlink), owned by this user
    and not writable by group or others: the spool is replayed to the
    server, so whoever can write there can inject events.

    Raises:
        ConfigError: naming ``storage_dir`` and the problem.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        # ENOTDIR (a path below a regular file), EACCES, ... and ValueError for a NUL byte.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError("storage_dir", f"{path!r} cannot be examined: {reason}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError("storage_dir", f"{path!r} is a symlink; give the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError("storage_dir", f"{path!r} exists and is not a directory")
    if info.st_uid != os.geteuid():
        raise ConfigError("storage_dir", f"{path!r} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o022:
        raise ConfigError(
            "storage_dir",
            f"{path!r} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            "chmod 700 it",
        )


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
    SENDING = enum.auto()
    """Handed to the exporter; the spool limits must not evict it meanwhile."""


@final
class Record:
    """One event on its way: the envelope bytes and the failed POSTs so far."""

    __slots__ = (
        "attempts",
        "fresh",
        "inherited",
        "payload",
        "persisted",
        "sequence",
        "spooled_at",
        "state",
    )

    def __init__(
        self, payload: bytes, attempts: int = 0, spooled_at: float = 0.0, *, sequence: int = -1
    ) -> None:
        self.payload = payload
        self.attempts = attempts
        self.state = RecordState.PENDING
        self.persisted = False
        self.sequence = sequence
        """This run's events: the position in the queue (-1 for others)."""
        self.inherited = False
        """An earlier run's event, taken over from its spool (``stats.replayed``
        once acknowledged, not ``stats.exported``)."""
        self.spooled_at = spooled_at
        """Wall time it first reached the spool; a line without one (written
        before ``t`` existed) is stamped when this run takes it over."""
        self.fresh = False
        """Write-ahead mode: on disk but not tried yet; waits for the next export."""

    @property
    def line_size(self) -> int:
        """Bytes of its spool line (the payload plus a fixed-width header)."""
        return len(self.payload) + _LINE_OVERHEAD


class _Line(msgspec.Struct):
    v: int
    attempts: int
    crc32: str
    event: msgspec.Raw
    t: int = 0  # added after v1 shipped: optional, so older lines still parse


_LINE_DECODER: Final = msgspec.json.Decoder(_Line)


def encode_line(record: Record) -> bytes:
    """The spool line of ``record``, newline included."""
    return b'{"v":%d,"attempts":%d,"t":%d,"crc32":"%08x","event":%b}\n' % (
        LINE_VERSION,
        record.attempts,
        int(record.spooled_at),
        zlib.crc32(record.payload),
        record.payload,
    )


# Everything of a line but the payload, at its widest; used for the size limit.
_LINE_OVERHEAD: Final = len(b'{"v":1,"attempts":,"t":,"crc32":"00000000","event":}\n') + 10 + 10


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
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
            # A flipped bit can make any field undecodable (even invalid UTF-8).
            counters.spool_corrupt_lines += 1
            continue
        payload = bytes(parsed.event)
        if f"{zlib.crc32(payload):08x}" != parsed.crc32 or parsed.attempts < 0:
            counters.spool_corrupt_lines += 1
            continue
        record = Record(payload, parsed.attempts, float(parsed.t))
        record.persisted = True
        records.append(record)
    return records


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
            ops = FileOps()
            ops.unlink(self.path)
            ops.fsync_dir(os.path.dirname(self.path))
        finally:
            self.release()

    def release(self) -> None:
        """Unlock and close without deleting."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FileOps:
    """The file operations of a :class:`Spool`, one method per system call.

    A seam for fault-injection tests (a subclass fails the N-th call); the
    default is the real thing.
    """

    def makedirs(self, path: str) -> None:
        """Create ``path`` (0700) and its parents, then check it is still safe.

        The check at open time cannot see a directory someone else creates
        (or a symlink they plant) before the first write; this one can.
        """
        os.makedirs(path, mode=0o700, exist_ok=True)
        try:
            check_storage_dir(path)
        except ConfigError as exc:
            raise OSError(errno.EPERM, str(exc)) from None

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open`` without following symlinks."""
        return os.open(path, flags | _OPEN_FLAGS, mode)

    def lock(self, fd: int) -> bool:
        """A non-blocking exclusive ``flock``; False if another holds it."""
        return _lock(fd)

    def write(self, fd: int, data: bytes) -> None:
        """Write all of ``data``."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fsync(self, fd: int) -> None:
        """``os.fsync``."""
        os.fsync(fd)

    def fsync_dir(self, path: str) -> None:
        """Make a rename or unlink in ``path`` durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, source: str, target: str) -> None:
        """``os.rename`` (atomic on POSIX)."""
        os.rename(source, target)

    def unlink(self, path: str) -> None:
        """``os.unlink``."""
        os.unlink(path)

    def close(self, fd: int) -> None:
        """``os.close``."""
        os.close(fd)


@final
class Spool:
    """This run's spool: an in-memory list of records mirrored to a locked file.

    The list is authoritative while the run lives; the file is what the next
    run replays if this one dies. When the disk refuses a write, records stay
    in memory (``persisted`` False), the first failure is logged at WARNING,
    and the next write is a full atomic rewrite (an append after a failed
    one could follow a torn line), which also brings the file up to date once
    the disk is back.

    Limits: past ``max_bytes`` of lines, or for records first spooled more
    than ``max_age`` seconds ago, the oldest records are dropped and counted
    in ``dropped_spool_limit`` (logged once at WARNING). Records being sent
    (``SENDING``) are never evicted.
    """

    def __init__(
        self,
        directory: str,
        session_id: str,
        run_id: str,
        counters: Counters,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_age: float = 7 * 24 * 3600.0,
        wall_time: Callable[[], float] | None = None,
        ops: FileOps | None = None,
        disabled: str | None = None,
    ) -> None:
        self.directory = directory
        self.disabled = disabled
        """Why this spool never touches the disk (an unusable or unsafe storage
        directory), or None. Disabled, it keeps its records in memory only,
        within the same limits, and what it holds at close is lost, counted."""
        self.path = os.path.join(directory, spool_file_name(session_id, run_id))
        self.records: list[Record] = []
        self.size = 0
        """Bytes of the file on disk."""
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._bytes = 0  # bytes of the lines of self.records, on disk or not
        self._oldest = 0.0  # the smallest spooled_at among self.records (0: none)
        self._counters = counters
        self._wall_time = wall_time if wall_time is not None else _no_time
        self._ops = ops if ops is not None else FileOps()
        self._fd: int | None = None
        self._needs_rewrite = False
        self._warned_disk = False
        self._warned_limit = False
        self._disk_problem: str | None = None
        # Where has_retries()/take_retries() resume their scan of self.records.
        self._retry_scan = 0

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def problem(self) -> str | None:
        """Why records are kept in memory instead of on disk now, or None."""
        return self.disabled or self._disk_problem

    def has_retries(self) -> bool:
        """True if some record waits for a retry (not fresh, not being sent)."""
        if self._retry_scan >= len(self.records):
            return False
        return self._next_retry() is not None

    def take_retries(self, limit: int) -> list[Record]:
        """The oldest ``limit`` records waiting for a retry, marked ``SENDING``.

        Sending records are never evicted; :meth:`settle` removes them once
        acknowledged or dropped, or returns them to ``PENDING``.
        """
        taken: list[Record] = []
        records = self.records
        index = self._retry_scan
        while index < len(records) and len(taken) < limit:
            record = records[index]
            index += 1
            if record.state is RecordState.PENDING and not record.fresh:
                record.state = RecordState.SENDING
                taken.append(record)
        self._retry_scan = index
        return taken

    def _next_retry(self) -> Record | None:
        # Records before _retry_scan were taken or skipped; settle() and
        # append() rewind it when records become retries again.
        records = self.records
        index = self._retry_scan
        while index < len(records):
            record = records[index]
            if record.state is RecordState.PENDING and not record.fresh:
                self._retry_scan = index
                return record
            index += 1
        self._retry_scan = index
        return None

    def append(self, records: Iterable[Record]) -> None:
        """Add ``records`` at the end, on disk (fsync'd) and in memory."""
        batch = list(records)
        if not batch:
            return
        now = self._wall_time()
        for record in batch:
            if not record.spooled_at:
                record.spooled_at = now
        self.records.extend(batch)
        self._bytes += sum(r.line_size for r in batch)
        stamps = [r.spooled_at for r in batch if r.spooled_at]
        if stamps:
            self._oldest = min(stamps) if not self._oldest else min(self._oldest, *stamps)
        if self._enforce_limits(now) or self._needs_rewrite:
            self.rewrite()
            return
        if self.disabled:
            return
        data = b"".join(encode_line(r) for r in batch)
        try:
            fd = self._open()
            self._ops.write(fd, data)
            self._ops.fsync(fd)
        except OSError as exc:
            # Part of the data may be on disk: only a rewrite is safe from now on.
            self._needs_rewrite = True
            self._disk_error("append", exc)
            return
        self.size += len(data)
        self._disk_problem = None
        for record in batch:
            record.persisted = True

    def forget(self, records: list[Record]) -> None:
        """Take ``records`` out of memory (they stay safe in the file they came from)."""
        gone = {id(r) for r in records}
        self.records = [r for r in self.records if id(r) not in gone]
        self._recount()

    def settle(self) -> None:
        """Forget acknowledged and dropped records and rewrite the file to match."""
        # SENDING records belong to a drain still in progress: keep them.
        gone = (RecordState.ACKED, RecordState.DROPPED)
        self.records = [r for r in self.records if r.state not in gone]
        self._recount()
        self._enforce_limits(self._wall_time())
        self.rewrite()

    def rewrite(self) -> None:
        """Replace the file with the in-memory records, atomically."""
        if self.disabled:
            return
        if not self.records:
            self._remove_file()
            return
        ops = self._ops
        data = b"".join(encode_line(r) for r in self.records)
        temp = self.path + TEMP_SUFFIX
        try:
            ops.makedirs(self.directory)
            fd = ops.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        except OSError as exc:
            self._needs_rewrite = True
            self._disk_error("rewrite", exc)
            return
        try:
            # A foreign process could only hold our temp name by a bug.
            if not ops.lock(fd):  # pragma: no cover
                raise OSError(errno.EAGAIN, "temp file locked by another process")
            ops.write(fd, data)
            ops.fsync(fd)
            ops.rename(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                ops.close(fd)
            with contextlib.suppress(OSError):
                ops.unlink(temp)
            self._needs_rewrite = True
            self._disk_error("rewrite", exc)
            return
        # Renamed: the file at our path is this one now, and its lock must stay
        # held even if making the rename durable fails (else another run could
        # take over a live file).
        try:
            ops.fsync_dir(self.directory)
            durable = True
        except OSError as exc:
            durable = False
            self._disk_error("rewrite", exc)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                ops.close(self._fd)
        self._fd = fd
        self.size = len(data)
        self._needs_rewrite = not durable
        if not durable:
            return
        self._disk_problem = None
        for record in self.records:
            record.persisted = True

    def close(self) -> None:
        """Persist what only memory holds, then unlock; remove the file if empty.

        Records that still cannot be written are lost and counted in
        ``dropped_disk_error``.
        """
        if self._needs_rewrite or any(not r.persisted for r in self.records):
            self.rewrite()
            lost = sum(not r.persisted for r in self.records)
            self._counters.dropped_disk_error += lost
            if lost:
                logger.warning("eventlog: %d events lost: the spool could not be written", lost)
        if not self.records:
            self._remove_file()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._ops.close(self._fd)
            self._fd = None

    def _enforce_limits(self, now: float) -> bool:
        """Evict the oldest records over the limits; True if any was evicted."""
        horizon = now - self.max_age
        if self._bytes <= self.max_bytes and not 0 < self._oldest < horizon:
            return False  # the common case, in O(1): every append calls this
        evicted = 0
        kept: list[Record] = []
        # Evict down to 90% of the limit, so that the next appends do not each
        # trigger another eviction (and a full rewrite).
        over = self._bytes - self.max_bytes
        if over > 0:
            over += self.max_bytes // 10
        for record in self.records:
            evictable = record.state is not RecordState.SENDING
            too_old = 0 < record.spooled_at < horizon
            if evictable and (over > 0 or too_old):
                over -= record.line_size
                self._bytes -= record.line_size
                record.state = RecordState.DROPPED
                evicted += 1
                continue
            kept.append(record)
        if not evicted:
            return False
        self.records = kept
        self._recount()
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
        return True

    def rewind(self) -> None:
        """Records went back to ``PENDING``: let the next retry scan start over."""
        self._retry_scan = 0

    def _recount(self) -> None:
        self._retry_scan = 0
        self._bytes = sum(r.line_size for r in self.records)
        self._oldest = min((r.spooled_at for r in self.records if r.spooled_at), default=0.0)

    def _open(self) -> int:
        if self._fd is None:
            ops = self._ops
            ops.makedirs(self.directory)
            fd = ops.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                # Run ids are random: a clash would be a bug.
                if not ops.lock(fd):  # pragma: no cover
                    raise OSError(errno.EAGAIN, "spool file locked by another run")
            except OSError:
                with contextlib.suppress(OSError):
                    ops.close(fd)
                raise
            self._fd = fd
            # The new name must survive a power loss as well as its content.
            ops.fsync_dir(self.directory)
        return self._fd

    def _remove_file(self) -> None:
        if self._fd is None:
            return
        try:
            self._ops.unlink(self.path)
        except OSError as exc:
            # The file still holds acknowledged events: keep it (and its lock)
            # and replace it by the next write, a full rewrite. If the run ends
            # first, the next run resends them and the server's dedupe absorbs them.
            self._needs_rewrite = True
            logger.debug("spool file %s not removed: %s", self.path, exc)
            return
        with contextlib.suppress(OSError):
            self._ops.fsync_dir(self.directory)
        with contextlib.suppress(OSError):
            self._ops.close(self._fd)
        self._fd = None
        self.size = 0
        self._needs_rewrite = False

    def _disk_error(self, operation: str, exc: OSError) -> None:
        self._disk_problem = f"spool {operation} failed: {exc.strerror or exc}"
        if not self._warned_disk:
            self._warned_disk = True
            logger.warning(
                "eventlog: spool %s failed in %s (%s); keeping events in memory",
                operation,
                self.directory,
                exc,
            )
        else:
            logger.debug("spool %s failed: %s", operation, exc)


def _no_time() -> float:
    return 0.0
