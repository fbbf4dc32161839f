"""The spool's file operations and lock helpers, on real files (no logger, no event loop)."""

from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING

import pytest

from eventlog._spool import _files
from eventlog._spool._files import FileOps, held_lock, probe_lock

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def lock_path(tmp_path: Path) -> str:
    path = tmp_path / "lock"
    path.write_bytes(b"")
    return str(path)


def test_probe_lock_says_free_for_a_missing_or_unlocked_file(lock_path: str) -> None:
    """No file, or a file nobody locks: no live logger holds it, and the probe lets go."""
    assert not probe_lock(lock_path + ".missing")
    assert not probe_lock(lock_path)
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        # The probe's own lock is gone again: another description can take it.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_probe_lock_says_held_while_another_description_holds_it(lock_path: str) -> None:
    """A lock held through another open file description (another logger) reads held."""
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert probe_lock(lock_path)
    finally:
        os.close(fd)
    assert not probe_lock(lock_path)


def test_probe_lock_says_held_when_the_file_cannot_be_opened(lock_path: str) -> None:
    """A path that exists but cannot be opened (here: below a regular file) reads held."""
    assert probe_lock(os.path.join(lock_path, "below"))


def test_probe_lock_says_held_on_a_filesystem_without_flock(
    lock_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flock failing (ENOLCK, as on some network filesystems) reads held: nothing acts on it."""

    def no_flock(fd: int) -> bool:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(_files, "try_lock", no_flock)
    assert probe_lock(lock_path)


def test_held_lock_is_false_once_the_path_is_replaced_or_removed(lock_path: str) -> None:
    """A locked descriptor is the path's only while the path still names the same file."""
    fd = os.open(lock_path, os.O_RDWR)
    try:
        assert held_lock(fd, lock_path)
        os.unlink(lock_path)
        assert not held_lock(fd, lock_path)
        with open(lock_path, "wb"):
            pass
        assert not held_lock(fd, lock_path)
    finally:
        os.close(fd)


def test_makedirs_refuses_a_directory_others_can_write(tmp_path: Path) -> None:
    """A directory found group-writable after creation fails the write with EPERM, naming it."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o770)
    with pytest.raises(OSError, match="writable by group or others") as caught:
        FileOps().makedirs(str(directory))
    assert caught.value.errno == errno.EPERM


def test_makedirs_creates_a_private_directory(tmp_path: Path) -> None:
    """A missing directory and its parents are created, mode 0700."""
    directory = tmp_path / "a" / "b"
    FileOps().makedirs(str(directory))
    assert directory.stat().st_mode & 0o777 == 0o700


def test_a_failed_write_says_how_much_reached_the_file(tmp_path: Path) -> None:
    """A failed write carries ``written`` (none here): the log knows which lines are whole."""
    path = tmp_path / "segment"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="Bad file descriptor") as caught:
            FileOps().write(fd, b"line\n")
    finally:
        os.close(fd)
    assert caught.value.written == 0  # type: ignore[attr-defined]
    assert path.read_bytes() == b""


def test_read_range_stops_at_the_end_of_the_file(tmp_path: Path) -> None:
    """A range running past the end returns what there is; one starting past it, nothing."""
    path = tmp_path / "segment"
    path.write_bytes(b"0123456789")
    ops = FileOps()
    assert ops.read_range(str(path), 6, 100) == b"6789"
    assert ops.read_range(str(path), 20, 5) == b""
