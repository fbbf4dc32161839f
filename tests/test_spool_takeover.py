"""Taking over earlier runs' logs: claimed in place by one successor, drained, trimmed, removed."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import trio

from eventlog._spool._format import run_name
from tests.spool_support import (
    CountingOps,
    make_spool,
    records_named,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from pathlib import Path

    import trio.testing


# -- regressions -----------------------------------------------------------------------------


async def test_an_earlier_log_evicted_whole_is_removed_and_unlocked(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Every segment of an earlier log evicted at once: the log goes and its lock is released."""
    first, _ = make_spool(tmp_path, run="run1", segment_bytes=400)
    async with running(first):
        for name in ("a", "b", "c", "d"):
            first.add(records_named(name))
            await first.written()
    assert len(list((tmp_path / run_name("sess", "run1")).glob("*.seg"))) == 2
    ops = CountingOps()
    spool, counters = make_spool(tmp_path, ops, run="run2", max_bytes=300)
    async with running(spool):
        await take_over_into(spool, counters, ops)
        await spool.written()
        assert (counters.taken_over, counters.dropped_spool_limit) == (4, 4)
        assert spool.logs == []
        assert not (tmp_path / run_name("sess", "run1")).exists()
        assert ops.paths == {}
    assert ops.release_leaks() == 0


class FailingRmdir(CountingOps):
    """Real file operations, except that removing a directory fails."""

    def rmdir(self, path: str) -> None:
        self._tick("rmdir")
        raise OSError(errno.EIO, "injected EIO in rmdir")


async def test_a_failed_removal_of_an_earlier_log_still_releases_its_lock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The drained log's directory cannot be removed: its lock is released all the same."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a"))
    ops = FailingRmdir()
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        taken = await spool.take_retries(10)
        spool.settle(done=taken)
        await spool.written()
        assert "rmdir" in ops.log
        assert spool.logs == []
        assert ops.paths == {}
    assert ops.release_leaks() == 0
    # Left behind: an empty directory, nothing a later run could send.
    assert list((tmp_path / run_name("sess", "run1")).iterdir()) == []
