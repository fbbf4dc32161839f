"""This run's own log: created and locked once, whatever fails on the way (docs/delivery.md)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import trio
import trio.testing

from eventlog._spool import FileOps
from eventlog.testing import CapturingTransport
from tests.helpers import open_logger_with, spooled_events

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


class FailFirstDirSync(FileOps):
    """Real file operations, except that the first ``fsync`` of ``directory`` fails."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.failed = False

    def fsync_dir(self, path: str) -> None:
        """Fail once for the storage directory, then sync for real."""
        if path == self.directory and not self.failed:
            self.failed = True
            raise OSError(errno.EIO, "injected EIO")
        super().fsync_dir(path)


async def test_a_failure_after_the_lock_is_taken_does_not_lock_the_run_out_of_its_log(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The storage directory's fsync fails once after the lock: the retry writes the log."""
    ops = FailFirstDirSync(spool_dir)
    down = CapturingTransport(status_code=503)
    async with open_logger_with(ops, make_config(max_attempts=None), transport=down) as log:
        log.log_event("e0")
        await log.flush()
        await trio.sleep(60)
        assert ops.failed
        assert log.stats.spool_disabled is None
        assert log.stats.spool_bytes > 0
    assert log.stats.dropped_disk_error == 0
    assert len(spooled_events(spool_dir)) == 1
