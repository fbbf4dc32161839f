"""Taking over earlier runs' logs: claimed in place by one successor, drained, trimmed, removed."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from eventlog._spool._format import encode_journal_line, run_name
from tests.spool_support import (
    CountingOps,
    disk_names,
    make_spool,
    names_of,
    records_named,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from pathlib import Path


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


@pytest.mark.parametrize("tail", ["torn", "no-newline"])
async def test_an_ack_written_after_a_torn_journal_line_is_kept(
    tmp_path: Path, tail: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A journal ending in a torn line (a death mid-write): the next run's acks still read back."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
        await first.written()
        spool_a = await first.take_retries(1)
        first.settle(done=spool_a)
    journal = tmp_path / run_name("sess", "run1") / "00000001.jnl"
    line = encode_journal_line("failed", [2])
    with journal.open("ab") as f:
        f.write(line[:12] if tail == "torn" else line[:-1])

    second, counters = make_spool(tmp_path, run="run2")
    async with running(second):
        await take_over_into(second, counters)
        assert counters.taken_over == 2
        taken = await second.take_retries(1)
        assert names_of(taken) == ["b"]
        second.settle(done=taken)
    assert disk_names(tmp_path) == ["c"]


class TornJournalWrite(CountingOps):
    """Real file operations, except that the first journal write stops halfway and fails."""

    def __init__(self) -> None:
        super().__init__()
        self.torn = False

    def write(self, fd: int, data: bytes) -> int:
        if not self.torn and self._fd_kind(fd) == "jnl":
            self.torn = True
            os.write(fd, data[: len(data) // 2])
            exc = OSError(errno.ENOSPC, "injected ENOSPC in write:jnl")
            exc.written = len(data) // 2  # type: ignore[attr-defined]  # as FileOps.write does
            raise exc
        return super().write(fd, data)


async def test_an_ack_written_after_a_torn_journal_write_is_kept(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A journal write fails halfway (disk full): the next line of that journal still reads back."""
    ops = TornJournalWrite()
    first, _ = make_spool(tmp_path, ops, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
        await first.written()
        for _ in range(2):
            taken = await first.take_retries(1)
            first.settle(done=taken)
            await first.written()
        assert ops.torn
    successor, counters = make_spool(tmp_path, run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        # a's line was torn: a may be sent again (a duplicate); b's was whole.
        assert names_of(await successor.take_retries(10)) == ["a", "c"]


class FailingReads(CountingOps):
    """Real file operations, except that the first ``failures`` reads of a segment fail."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        if self.failures:
            self.failures -= 1
            self._tick("read_range:seg")
            raise OSError(errno.EIO, "injected EIO in read_range")
        return super().read_range(path, offset, length)


async def test_a_segment_that_cannot_be_read_keeps_its_records_for_a_later_drain(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A read for a retry fails: the records stay, none counted corrupt, read again later."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
    ops = FailingReads(2)
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        assert await spool.take_retries(10) == []
        assert (spool.events, counters.spool_corrupt_lines) == (3, 0)
        # Not read again in a tight loop: the drain waits for the disk a while.
        assert not spool.has_retries()
        await trio.sleep(1)
        assert spool.has_retries()
        assert await spool.take_retries(10) == []
        await trio.sleep(1.5)
        assert not spool.has_retries()
        await trio.sleep(0.5)
        taken = await spool.take_retries(10)
        assert names_of(taken) == ["a", "b", "c"]
        spool.settle(done=taken)
    assert list(tmp_path.iterdir()) == []


class FailingJournalUnlinks(CountingOps):
    """Real file operations, except that journals cannot be deleted."""

    def unlink(self, path: str) -> None:
        if path.endswith(".jnl"):
            self._tick("unlink:jnl")
            raise OSError(errno.EACCES, "injected EACCES in unlink")
        super().unlink(path)


@pytest.mark.parametrize("whose", ["own", "earlier"])
async def test_a_file_a_failed_delete_left_never_strands_its_log(
    tmp_path: Path, whose: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A settled segment's journal cannot be deleted: its log stays claimable for a later run."""
    failing = FailingJournalUnlinks()
    first, _ = make_spool(tmp_path, failing if whose == "own" else None, run="run1")
    async with running(first):
        first.add(records_named("a"))
        await first.written()
        if whose == "own":
            first.settle(done=await first.take_retries(1))
    if whose == "earlier":
        second, counters = make_spool(tmp_path, failing, run="run2")
        async with running(second):
            await take_over_into(second, counters, failing)
            second.settle(done=await second.take_retries(1))
    assert "unlink:jnl" in failing.log
    left = sorted(p.name for p in (tmp_path / run_name("sess", "run1")).iterdir())
    assert left == ["00000001.jnl", "lock"]
    successor, counters = make_spool(tmp_path, run="run3")
    async with running(successor):
        await take_over_into(successor, counters)
        assert counters.taken_over == 0
    assert list(tmp_path.iterdir()) == []
