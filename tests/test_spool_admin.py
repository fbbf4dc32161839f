"""The spool's admin library (``eventlog._spool._admin``) called directly, below the CLI.

``tests/test_cli_spool.py`` drives these functions through ``eventlog spool``;
here are the outcomes the command line never asks for: a purge racing
another process, a replay with nothing to do, an event no one can decode.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING

import pytest

from eventlog import _seams
from eventlog._spool import FileOps, InlineRunner
from eventlog._spool._admin import (
    EventSummary,
    _events_left,
    delete_log,
    describe_event,
    log_info,
    replay_spool,
)
from eventlog._spool._format import LOCK_NAME, encode_record_line, run_name, segment_name, v1_name
from eventlog.testing import CapturingTransport
from tests.spool_support import payload

if TYPE_CHECKING:
    from pathlib import Path

    import trio.testing


def plant_v2(directory: Path, run: str = "r1") -> Path:
    """A version 2 log holding one event ``a``, its lock file free."""
    log = directory / run_name("sess", run)
    log.mkdir(mode=0o700, parents=True)
    (log / LOCK_NAME).touch()
    (log / segment_name(1)).write_bytes(encode_record_line(0, 0, 0, payload("a")))
    return log


def plant_v1(directory: Path) -> Path:
    """A version 1 file holding one event ``a``."""
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / v1_name("sess", "r1")
    path.write_bytes(payload("a") + b"\n")
    return path


class Hold:
    """A lock held through another open file description, as a live logger holds it."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self.fd)


class SwappingOps(FileOps):
    """Between the purge's open and its lock, a live logger replaces the lock file."""

    def lock(self, fd: int) -> bool:
        taken = super().lock(fd)
        path = os.readlink(f"/proc/self/fd/{fd}")
        os.unlink(path)
        with open(path, "wb"):
            pass
        return taken


class FailingUnlinkOps(FileOps):
    """Every unlink fails with ``err``."""

    def __init__(self, err: int) -> None:
        self.err = err

    def unlink(self, path: str) -> None:
        raise OSError(self.err, os.strerror(self.err), path)


def test_delete_log_of_a_missing_or_unopenable_log_says_why(tmp_path: Path) -> None:
    """A log gone already reads missing; one that cannot be opened reads error, with the reason."""
    assert delete_log(str(tmp_path / v1_name("sess", "gone"))) == ("missing", "no such file")
    below_a_file = plant_v1(tmp_path / "spool") / v1_name("sess", "r2")
    assert delete_log(str(below_a_file)) == ("error", "Not a directory")


def test_delete_log_never_deletes_what_a_live_logger_holds(tmp_path: Path) -> None:
    """A held lock is refused and the log left whole; once let go, the same call deletes it."""
    log = plant_v2(tmp_path)
    hold = Hold(log / LOCK_NAME)
    try:
        assert delete_log(str(log)) == ("locked", "locked by a live logger")
        assert sorted(p.name for p in log.iterdir()) == sorted([LOCK_NAME, segment_name(1)])
    finally:
        hold.release()
    assert delete_log(str(log)) == ("deleted", "")
    assert not log.exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_delete_log_refuses_a_lock_file_replaced_meanwhile(tmp_path: Path) -> None:
    """A lock file replaced between open and lock belongs to a live logger: nothing is deleted."""
    log = plant_v2(tmp_path)
    outcome = delete_log(str(log), ops=SwappingOps())
    assert outcome == ("locked", "replaced by a live logger meanwhile")
    assert (log / segment_name(1)).exists()


def test_delete_log_reports_a_failed_delete_and_lets_go_of_the_lock(tmp_path: Path) -> None:
    """A delete the disk refuses is an error with its reason; the log stays claimable."""
    log = plant_v2(tmp_path)
    assert delete_log(str(log), ops=FailingUnlinkOps(errno.EACCES)) == (
        "error",
        "Permission denied",
    )
    assert (log / segment_name(1)).exists()
    assert delete_log(str(log)) == ("deleted", "")


def test_delete_log_of_a_file_another_purge_removed_meanwhile_reads_missing(
    tmp_path: Path,
) -> None:
    """A version 1 file whose delete finds it gone (a concurrent purge) reads missing."""
    path = plant_v1(tmp_path)
    assert delete_log(str(path), ops=FailingUnlinkOps(errno.ENOENT)) == ("missing", "no such file")


def test_describe_event_of_undecodable_bytes_reads_question_marks() -> None:
    """A payload that is no JSON object is summarised, not raised: every field reads ``?``."""
    assert describe_event(b"\xff not json") == EventSummary("(undecodable)", "?", "?", "?")


def test_log_info_of_a_file_without_a_logs_name_reads_as_version_1(tmp_path: Path) -> None:
    """A copy of spool records under another name is read; its session and run are unknown."""
    path = tmp_path / "copy.jsonl"
    path.write_bytes(encode_record_line(0, 0, 0, payload("a")) + b"torn")
    info = log_info(str(path))
    assert info is not None
    assert (info.version, info.session, info.run, info.events) == (1, "?", "?", 1)
    assert info.corrupt == 1


def test_events_left_in_a_directory_removed_meanwhile_is_zero(tmp_path: Path) -> None:
    """A storage directory deleted during a replay holds nothing any more."""
    assert _events_left(str(tmp_path / "gone"), "sess", [], FileOps()) == 0


async def test_replay_of_a_missing_directory_sends_nothing_and_creates_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing to replay: an empty result at once, no logger opened, no directory made."""
    transport = CapturingTransport()
    with _seams.use(reader=InlineRunner()):
        result = await replay_spool(
            str(tmp_path / "spool"), "http://127.0.0.1:8787", transport=transport
        )
    assert (result.total, result.logs, result.skipped, result.timed_out) == (0, (), (), False)
    assert result.ok
    assert transport.requests == []
    assert not (tmp_path / "spool").exists()


async def test_replay_with_every_log_locked_lists_them_skipped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Logs held by live loggers are listed skipped and left alone; nothing is sent."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    log = plant_v2(directory)
    transport = CapturingTransport()
    hold = Hold(log / LOCK_NAME)
    try:
        with _seams.use(reader=InlineRunner()):
            result = await replay_spool(
                str(directory), "http://127.0.0.1:8787", transport=transport
            )
    finally:
        hold.release()
    assert (result.total, result.logs, result.skipped) == (0, (), (str(log),))
    assert transport.requests == []
    assert (log / segment_name(1)).exists()
