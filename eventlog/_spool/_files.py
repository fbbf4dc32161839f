"""File operations, locks and the storage directory's safety (docs/delivery.md).

Every system call the spool makes goes through :class:`FileOps`, one method
per call: the seam of the fault-injection tests (a subclass fails the N-th
call). Everything here is synchronous and runs in the spool's worker thread
(or inline, in tests), never on the event loop's thread.

Locks are ``flock``: they belong to the open file description, so they
exclude other loggers of the same process as well as other processes, and
they vanish with the process that held them (a crash leaves no stale lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from typing import TYPE_CHECKING, Final

from eventlog._exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FileOps", "check_storage_dir", "held_lock", "probe_lock", "try_lock"]

_NOFOLLOW: Final = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_READ_CHUNK: Final = 1 << 20


def check_storage_dir(path: str) -> None:
    """Refuse a storage directory that others could tamper with, or that cannot be used.

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


def try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking ``flock`` on ``fd``; False if another holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def probe_lock(path: str) -> bool:
    """True if a live logger holds ``path``'s lock (taken and released at once).

    A probe that cannot tell (the file cannot be opened, the filesystem has
    no ``flock``) says held, so that nothing acts on what may be live.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        if not try_lock(fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def held_lock(fd: int, path: str) -> bool:
    """True if ``fd`` (locked) is still the file at ``path``.

    Its owner may have replaced or removed the file between our open and our
    lock: then we hold a stale inode, and the path is not ours.
    """
    try:
        held, current = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return held.st_nlink > 0 and (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


class FileOps:
    """The spool's file operations, one method per system call.

    A seam for fault-injection tests (a subclass fails the N-th call); the
    default is the real thing. Paths are never followed through a symlink.
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

    def mkdir(self, path: str) -> None:
        """Create the directory ``path``, 0700."""
        os.mkdir(path, 0o700)

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open`` without following symlinks."""
        return os.open(path, flags | _NOFOLLOW, mode)

    def lock(self, fd: int) -> bool:
        """A non-blocking exclusive ``flock``; False if another holds it."""
        return try_lock(fd)

    def write(self, fd: int, data: bytes) -> int:
        """Write all of ``data``; returns its length.

        Raises:
            OSError: with ``written`` set to the bytes that did reach the file
                before the failure (so a caller knows which lines are whole).
        """
        view = memoryview(data)
        written = 0
        while written < len(data):
            try:
                written += os.write(fd, view[written:])
            except OSError as exc:
                exc.written = written  # type: ignore[attr-defined]  # read by the log
                raise
        return written

    def fsync(self, fd: int) -> None:
        """``os.fsync``."""
        os.fsync(fd)

    def fsync_dir(self, path: str) -> None:
        """Make a create, rename or unlink in ``path`` durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, path: str) -> bytes:
        """The whole content of ``path``."""
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        try:
            return b"".join(iter(lambda: os.read(fd, _READ_CHUNK), b""))
        finally:
            os.close(fd)

    def read_chunks(self, path: str, size: int = _READ_CHUNK) -> Iterator[bytes]:
        """The content of ``path``, ``size`` bytes at a time (the lock let go in between)."""
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        try:
            while chunk := os.read(fd, size):
                yield chunk
        finally:
            os.close(fd)

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``path`` from ``offset`` (fewer at its end)."""
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        try:
            parts: list[bytes] = []
            while length > 0:
                part = os.pread(fd, min(length, _READ_CHUNK), offset)
                if not part:
                    break
                parts.append(part)
                offset += len(part)
                length -= len(part)
            return b"".join(parts)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str]:
        """The names in directory ``path``."""
        return os.listdir(path)

    def stat(self, path: str) -> os.stat_result:
        """``os.stat`` without following a symlink."""
        return os.stat(path, follow_symlinks=False)

    def unlink(self, path: str) -> None:
        """``os.unlink``."""
        os.unlink(path)

    def rmdir(self, path: str) -> None:
        """``os.rmdir``."""
        os.rmdir(path)

    def close(self, fd: int) -> None:
        """``os.close``."""
        os.close(fd)

    def close_quietly(self, fd: int) -> None:
        """Close ``fd``, ignoring errors (on a path that has failed already)."""
        with contextlib.suppress(OSError):
            self.close(fd)
