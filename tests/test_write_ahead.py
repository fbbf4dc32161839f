"""Write-ahead mode (docs/delivery.md) under trio's autojump clock.

With ``write_ahead=True`` every accepted event reaches the spool (one write,
one fsync per group-commit window) before it is exported; exports keep their
usual triggers; acknowledged events are checkpointed away; failures leave the
events on disk as retries. Each test reads the spool the way the next run
would, with :func:`eventlog._spool._admin.read_events`, and a transport notes what
was on disk at the moment of every POST.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import httpx
import msgspec
import pytest
import trio
import trio.testing

import eventlog
from eventlog import _seams
from eventlog._spool import FileOps
from eventlog.testing import CapturingTransport, Envelope, InternalEvent
from tests.helpers import open_logger_with, segment_files, spooled_events

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from eventlog._spool._admin import SpooledEvent
    from tests.conftest import MakeConfig

T = TypeVar("T")

_ENVELOPE = msgspec.json.Decoder(Envelope)


# -- helpers ---------------------------------------------------------------------


def on_disk(directory: Path) -> list[SpooledEvent]:
    """Every event waiting in the spool, as the next run would read them."""
    return spooled_events(directory)


def event_of(record: SpooledEvent) -> InternalEvent:
    event = _ENVELOPE.decode(record.payload)
    assert isinstance(event, InternalEvent)
    return event


def names_on_disk(directory: Path) -> list[str]:
    return [event_of(r).event_data.event_name for r in on_disk(directory)]


def attempts_on_disk(directory: Path) -> list[int]:
    return [r.attempts for r in on_disk(directory)]


class DiskCheckingTransport(httpx.AsyncBaseTransport):
    """A :class:`CapturingTransport` that also notes the event ids on disk at each POST.

    ``on_disk_at_post[k]`` is the set of ``event_id``\\ s in the spool when the
    ``k``-th request arrived, so a test can check every posted event was
    committed first.
    """

    def __init__(self, directory: Path, inner: CapturingTransport | None = None) -> None:
        self.directory = directory
        self.inner = CapturingTransport() if inner is None else inner
        self.on_disk_at_post: list[set[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.on_disk_at_post.append(
            {event_of(r).event_data.event_id for r in on_disk(self.directory)}
        )
        return await self.inner.handle_async_request(request)

    def assert_committed_before_post(self) -> None:
        """Every event of every request was on disk when the request arrived."""
        requests = self.inner.requests
        assert len(requests) == len(self.on_disk_at_post)
        for request, disk in zip(requests, self.on_disk_at_post, strict=True):
            posted = {e.event_data.event_id for e in request.events}
            assert posted <= disk, f"posted before commit: {sorted(posted - disk)}"


class HangingAfter(httpx.AsyncBaseTransport):
    """Answers the first ``answered`` requests through ``inner``; every later one hangs."""

    def __init__(self, answered: int) -> None:
        self.inner = CapturingTransport()
        self.answered = answered
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls > self.answered:
            await trio.sleep_forever()
        return await self.inner.handle_async_request(request)


class CountingFileOps(FileOps):
    """Real file operations, counting the writes and fsyncs of the spool file itself."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.writes: list[tuple[str, int]] = []
        self.fsyncs: list[str] = []

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        fd = super().open(path, flags, mode)
        self.paths[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> int:
        self.writes.append((self.paths[fd], len(data)))
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self.fsyncs.append(self.paths[fd])
        super().fsync(fd)


def wa_config(make_config: MakeConfig, **overrides: object) -> eventlog.Config:
    """A write-ahead config: the default 50 ms window, exports every 10 s."""
    values: dict[str, object] = {"write_ahead": True}
    values.update(overrides)
    return make_config(**values)


def left_unaccounted(stats: eventlog.Stats, left_on_disk: int) -> int:
    """Events (this run's and taken over) minus every outcome; 0 when the invariant holds."""
    return (
        stats.emitted
        + stats.taken_over
        - (
            stats.exported
            + stats.replayed
            + stats.dropped_invalid
            + stats.dropped_max_attempts
            + stats.dropped_permanent
            + stats.dropped_spool_limit
            + stats.dropped_disk_error
            + left_on_disk
        )
    )


# -- on disk before the POST -----------------------------------------------------


async def test_events_are_on_disk_within_the_window_before_any_post(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Logged at t=0: on disk (fsync'd, attempts 0) at 50 ms; first POST only at 10 s."""
    transport = DiskCheckingTransport(spool_dir)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        log.log_event("a", {"n": 1})
        log.log_event("b", {"n": 2})
        log.log_event("c", {"n": 3})
        await trio.sleep(0.049)
        assert on_disk(spool_dir) == []
        await trio.sleep(0.002)
        assert names_on_disk(spool_dir) == ["a", "b", "c"]
        assert attempts_on_disk(spool_dir) == [0, 0, 0]
        assert transport.inner.requests == []
        assert log.stats.queue_depth == 0
        assert log.stats.spool_bytes == segment_files(spool_dir)[0].stat().st_size
        await trio.sleep(9.0)
        assert transport.inner.requests == []
        await trio.sleep(1.0)
        assert transport.inner.attempt_times == [10.0]
        assert transport.inner.event_names() == ["a", "b", "c"]
    transport.assert_committed_before_post()
    assert on_disk(spool_dir) == []


async def test_one_commit_groups_every_event_of_the_window(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """40 events spread over 40 ms share one write and one fsync; the next window its own."""
    ops = CountingFileOps()
    transport = CapturingTransport()
    async with open_logger_with(ops, wa_config(make_config), transport=transport) as log:
        for i in range(40):
            log.log_event("first", {"n": i})
            await trio.sleep(0.001)
        await trio.sleep(0.02)
        (path,) = segment_files(spool_dir)
        assert [w[0] for w in ops.writes] == [str(path)]
        assert ops.fsyncs == [str(path)]
        size = path.stat().st_size
        assert ops.writes[0][1] == size
        assert names_on_disk(spool_dir) == ["first"] * 40

        await trio.sleep(1.0)
        for i in range(10):
            log.log_event("second", {"n": i})
        await trio.sleep(0.049)
        assert len(ops.writes) == 1
        assert path.stat().st_size == size
        await trio.sleep(0.002)
        assert [w[0] for w in ops.writes] == [str(path)] * 2
        assert ops.fsyncs == [str(path)] * 2
        assert path.stat().st_size == size + ops.writes[1][1]
        assert names_on_disk(spool_dir) == ["first"] * 40 + ["second"] * 10
        assert transport.requests == []


async def test_the_window_runs_from_the_first_event(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """An event late in a window joins its commit; the next event opens a new window."""
    ops = CountingFileOps()
    async with open_logger_with(ops, wa_config(make_config), transport=CapturingTransport()):
        await trio.sleep(1.0)
        eventlog.log_event("a")
        await trio.sleep(0.045)
        eventlog.log_event("b")
        await trio.sleep(0.006)  # t = 1.051
        assert names_on_disk(spool_dir) == ["a", "b"]
        eventlog.log_event("c")
        await trio.sleep(0.049)
        assert names_on_disk(spool_dir) == ["a", "b"]
        await trio.sleep(0.002)
        assert names_on_disk(spool_dir) == ["a", "b", "c"]
        assert len(ops.writes) == len(ops.fsyncs) == 2


async def test_a_configured_window_is_honoured(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """write_ahead_interval=0.2: nothing on disk at 199 ms, everything at 201 ms, one write."""
    ops = CountingFileOps()
    transport = DiskCheckingTransport(spool_dir)
    config = wa_config(make_config, write_ahead_interval=0.2, scheduled_delay=1.0)
    async with open_logger_with(ops, config, transport=transport):
        for i in range(5):
            eventlog.log_event("e", {"n": i})
            await trio.sleep(0.03)  # the last one at 0.12 s
        await trio.sleep(0.199 - 0.15)
        assert on_disk(spool_dir) == []
        assert ops.writes == []
        await trio.sleep(0.002)
        assert len(on_disk(spool_dir)) == 5
        assert len(ops.writes) == len(ops.fsyncs) == 1
        await trio.sleep(1.0)
    assert transport.inner.attempt_times == [1.0]
    transport.assert_committed_before_post()


async def test_a_zero_window_commits_at_once(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """write_ahead_interval=0: the batch processor commits as soon as it runs."""
    async with eventlog.open_event_logger(
        wa_config(make_config, write_ahead_interval=0.0), transport=CapturingTransport()
    ):
        eventlog.log_event("a")
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 0.0
        assert names_on_disk(spool_dir) == ["a"]


# -- exports keep their triggers --------------------------------------------------


async def test_full_batch_exports_at_once_after_committing(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """max_export_batch_size events: committed and posted at once, not after the window."""
    transport = DiskCheckingTransport(spool_dir)
    config = wa_config(make_config, max_export_batch_size=5)
    async with eventlog.open_event_logger(config, transport=transport):
        await trio.sleep(1.0)
        for i in range(5):
            eventlog.log_event("e", {"n": i})
        await trio.sleep(0.001)
        assert transport.inner.attempt_times == [1.0]
        assert len(transport.inner.events()) == 5
        assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


async def test_batch_filled_across_commits_exports_by_the_next_commit(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Committed events count toward the batch size: 3 committed + 2 queued is a batch."""
    transport = DiskCheckingTransport(spool_dir)
    config = wa_config(make_config, max_export_batch_size=5)
    async with eventlog.open_event_logger(config, transport=transport):
        for i in range(3):
            eventlog.log_event("e", {"n": i})
        await trio.sleep(0.1)
        assert len(on_disk(spool_dir)) == 3
        eventlog.log_event("e", {"n": 3})
        eventlog.log_event("e", {"n": 4})
        await trio.sleep(0.06)
        assert [len(r.events) for r in transport.inner.requests] == [5]
        assert transport.inner.requests[0].time <= 0.1 + 0.05
        assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


async def test_flush_returns_after_the_export(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """flush() commits, posts and checkpoints before it returns, without waiting for timers."""
    transport = DiskCheckingTransport(spool_dir)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        for i in range(3):
            log.log_event("e", {"n": i})
        await log.flush()
        assert trio.current_time() == 0.0
        assert transport.inner.attempt_times == [0.0]
        assert len(transport.inner.events()) == 3
        assert on_disk(spool_dir) == []
        assert log.stats.exported == 3
        # Events committed earlier are part of the next flush too.
        log.log_event("late")
        await trio.sleep(0.1)
        assert names_on_disk(spool_dir) == ["late"]
        await log.flush()
        assert transport.inner.event_names()[-1] == "late"
        assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


async def test_leaving_the_block_exports_what_is_committed_and_queued(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Shutdown exports committed and still-queued events in one POST and leaves no file."""
    transport = DiskCheckingTransport(spool_dir)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport):
        eventlog.log_event("committed")
        await trio.sleep(0.1)
        eventlog.log_event("queued")
    assert transport.inner.event_names() == ["committed", "queued"]
    assert len(transport.inner.requests) == 1
    assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


# -- checkpoints -------------------------------------------------------------------


async def test_acknowledged_events_are_checkpointed_away(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Batch 1 acked, batch 2 committed but not exported yet: only batch 2 is on disk."""
    transport = DiskCheckingTransport(spool_dir)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        for i in range(3):
            log.log_event("one", {"n": i})
        await trio.sleep(10.001)
        assert transport.inner.event_names() == ["one"] * 3
        assert on_disk(spool_dir) == []
        for i in range(2):
            log.log_event("two", {"n": i})
        await trio.sleep(0.1)
        assert names_on_disk(spool_dir) == ["two", "two"]
        await trio.sleep(10)
        assert transport.inner.event_names() == ["one"] * 3 + ["two"] * 2
        assert on_disk(spool_dir) == []
        assert log.stats.exported == 5
        assert log.stats.spooled == 0
    transport.assert_committed_before_post()


async def test_acked_batch_leaves_and_failed_batch_stays(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two batches, the first acked and the second refused: only the second's events remain."""
    inner = CapturingTransport()
    transport = DiskCheckingTransport(spool_dir, inner)
    config = wa_config(make_config, max_export_batch_size=3, base_backoff=100.0, max_backoff=100.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(3):
            log.log_event("one", {"n": i})
        await trio.sleep(0.01)
        inner.fail_next(1, status=503)
        for i in range(3):
            log.log_event("two", {"n": i})
        await trio.sleep(0.01)
        assert [r.status for r in inner.requests] == [200, 503]
        assert names_on_disk(spool_dir) == ["two"] * 3
        assert attempts_on_disk(spool_dir) == [1, 1, 1]
        assert log.stats.spooled == 3
    transport.assert_committed_before_post()


async def test_failed_export_stays_on_disk_and_the_backoff_retry_delivers_it(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A 503: the events stay on disk with attempts=1; the retry base_backoff later delivers."""
    inner = CapturingTransport()
    inner.fail_next(1, status=503)
    transport = DiskCheckingTransport(spool_dir, inner)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        for i in range(3):
            log.log_event("e", {"n": i})
        await trio.sleep(10.001)
        assert [r.status for r in inner.requests] == [503]
        assert attempts_on_disk(spool_dir) == [1, 1, 1]
        assert log.stats.export_failures == 1
        await trio.sleep(0.5)
        assert inner.attempt_times == [10.0, 10.5]
        assert len(inner.events()) == 3
        assert on_disk(spool_dir) == []
        stats = log.stats
        assert (stats.exported, stats.replayed, stats.spooled) == (3, 0, 3)
    transport.assert_committed_before_post()


async def test_events_logged_during_a_backoff_are_committed_and_not_posted(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """While the backoff timer runs, new events reach the disk in their window, no POST."""
    inner = CapturingTransport()
    inner.fail_next(1, status=503)
    transport = DiskCheckingTransport(spool_dir, inner)
    config = wa_config(make_config, base_backoff=30.0, max_backoff=30.0, scheduled_delay=5.0)
    async with eventlog.open_event_logger(config, transport=transport):
        eventlog.log_event("a")
        await trio.sleep(6.0)
        assert inner.attempt_times == [5.0]
        eventlog.log_event("b")
        await trio.sleep(0.051)
        assert names_on_disk(spool_dir) == ["a", "b"]
        await trio.sleep(28)  # a scheduled export at 10 s went to the spool without a POST
        assert inner.attempt_times == [5.0]
        assert attempts_on_disk(spool_dir) == [1, 0]
        await trio.sleep(2)
        assert sorted(inner.event_names()) == ["a", "b"]
        assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


async def test_restart_replays_only_unacknowledged_events(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Run A: batch 1 acked, batch 2 posted to a hung server when A exits (budget 0).

    Run B on the same storage_dir delivers batch 2 and only batch 2.
    """
    hanging = HangingAfter(answered=1)
    config_a = wa_config(make_config, max_export_batch_size=3, shutdown_timeout=0.0)
    async with eventlog.open_event_logger(config_a, transport=hanging) as log_a:
        for i in range(3):
            log_a.log_event("one", {"n": i})
        await trio.sleep(0.01)
        for i in range(3):
            log_a.log_event("two", {"n": i})
        await trio.sleep(1.0)
        assert hanging.calls == 2
    assert hanging.inner.event_names() == ["one"] * 3
    assert names_on_disk(spool_dir) == ["two"] * 3
    assert log_a.stats.exported == 3
    assert left_unaccounted(log_a.stats, left_on_disk=3) == 0

    transport_b = CapturingTransport()
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport_b) as log_b:
        await trio.sleep(1.0)
        assert transport_b.event_names() == ["two"] * 3
        assert log_b.stats.replayed == 3
    assert on_disk(spool_dir) == []
    ids_a = {e.event_data.event_id for r in hanging.inner.requests for e in r.events}
    assert ids_a.isdisjoint(transport_b.event_ids())


async def test_restart_delivers_what_a_failing_run_committed_once(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Run A's server is down: its committed events wait on disk; run B delivers them once."""
    config_a = wa_config(make_config, shutdown_timeout=0.0)
    transport_a = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(config_a, transport=transport_a):
        for i in range(4):
            eventlog.log_event("kept", {"n": i})
        await trio.sleep(0.06)
    assert names_on_disk(spool_dir) == ["kept"] * 4
    assert all(a <= 1 for a in attempts_on_disk(spool_dir))
    assert transport_a.event_names() == []
    transport_b = CapturingTransport()
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport_b):
        await trio.sleep(1.0)
    assert transport_b.event_names() == ["kept"] * 4
    assert on_disk(spool_dir) == []


# -- responses -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    status: int,
) -> None:
    """A Retry-After of 7 s is the floor of the next delay; the events wait on disk."""
    inner = CapturingTransport()
    inner.fail_next(1, status=status, retry_after="7")
    transport = DiskCheckingTransport(spool_dir, inner)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport):
        eventlog.log_event("a")
        eventlog.log_event("b")
        await trio.sleep(16.9)
        assert inner.attempt_times == [10.0]
        assert attempts_on_disk(spool_dir) == [1, 1]
        await trio.sleep(0.2)
        assert inner.attempt_times == [10.0, 17.0]
        assert inner.event_names() == ["a", "b"]
        assert on_disk(spool_dir) == []
    transport.assert_committed_before_post()


async def test_413_splits_and_delivers_everything(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A batch too large is split until the halves fit; all are delivered and checkpointed."""
    inner = CapturingTransport(max_events=2)
    transport = DiskCheckingTransport(spool_dir, inner)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        for i in range(5):
            log.log_event("e", {"n": i})
        await log.flush()
        assert [(len(r.events), r.status) for r in inner.requests] == [
            (5, 413),
            (2, 200),
            (3, 413),
            (1, 200),
            (2, 200),
        ]
        assert len(set(inner.event_ids())) == len(inner.event_ids()) == 5
        assert on_disk(spool_dir) == []
        assert log.stats.dropped_permanent == 0
        assert log.stats.exported == 5
    transport.assert_committed_before_post()


async def test_413_for_a_single_event_drops_it_from_disk(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """An event too large alone is dropped, counted, and removed from the spool."""
    inner = CapturingTransport(max_events=0)
    transport = DiskCheckingTransport(spool_dir, inner)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        log.log_event("big")
        await trio.sleep(0.1)
        assert names_on_disk(spool_dir) == ["big"]
        await log.flush()
        assert [r.status for r in inner.requests] == [413]
        assert on_disk(spool_dir) == []
        assert log.stats.dropped_permanent == 1
    transport.assert_committed_before_post()


@pytest.mark.parametrize("status", [400, 422])
async def test_permanent_rejection_drops_and_removes_from_disk(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    status: int,
) -> None:
    """400/422: dropped, counted, off the disk, never retried."""
    inner = CapturingTransport()
    inner.fail_next(1, status=status)
    transport = DiskCheckingTransport(spool_dir, inner)
    async with eventlog.open_event_logger(wa_config(make_config), transport=transport) as log:
        for i in range(3):
            log.log_event("e", {"n": i})
        await trio.sleep(0.1)
        assert len(on_disk(spool_dir)) == 3
        await trio.sleep(10)
        assert [r.status for r in inner.requests] == [status]
        assert on_disk(spool_dir) == []
        await trio.sleep(100)
        assert len(inner.requests) == 1
        stats = log.stats
        assert stats.dropped_permanent == 3
        assert stats.export_failures == 0
        assert left_unaccounted(stats, left_on_disk=0) == 0
    transport.assert_committed_before_post()


async def test_max_attempts_drops_remove_events_from_disk(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """max_attempts=2 and a server down: two POSTs, then the events leave the disk, counted."""
    inner = CapturingTransport(status_code=503)
    transport = DiskCheckingTransport(spool_dir, inner)
    config = wa_config(make_config, max_attempts=2)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(3):
            log.log_event("e", {"n": i})
        await trio.sleep(10.001)
        assert attempts_on_disk(spool_dir) == [1, 1, 1]
        await trio.sleep(0.5)
        assert inner.attempt_times == [10.0, 10.5]
        assert on_disk(spool_dir) == []
        await trio.sleep(100)
        assert len(inner.requests) == 2
        stats = log.stats
        assert stats.dropped_max_attempts == 3
        assert left_unaccounted(stats, left_on_disk=0) == 0
    transport.assert_committed_before_post()


# -- killswitch ------------------------------------------------------------------------


async def test_killswitch_keeps_committed_events_on_disk_without_traffic(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """While killed: no POST, new events refused, committed ones stay (attempts 0); after: sent."""
    killed = False
    inner = CapturingTransport()
    transport = DiskCheckingTransport(spool_dir, inner)
    config = wa_config(make_config, max_attempts=1)
    async with eventlog.open_event_logger(
        config, transport=transport, killswitch=lambda: killed
    ) as log:
        for i in range(3):
            log.log_event("kept", {"n": i})
        await trio.sleep(0.1)
        assert names_on_disk(spool_dir) == ["kept"] * 3
        killed = True
        log.log_event("refused")
        log.log_event("refused")
        await trio.sleep(60)
        assert inner.requests == []
        assert log.stats.dropped_killed == 2
        # Killed probes are not failed POSTs: max_attempts=1 drops nothing.
        assert attempts_on_disk(spool_dir) == [0, 0, 0]
        assert log.stats.dropped_max_attempts == 0
        killed = False
        await trio.sleep(31)
        assert inner.event_names() == ["kept"] * 3
        assert on_disk(spool_dir) == []
        assert left_unaccounted(log.stats, left_on_disk=0) == 0
    transport.assert_committed_before_post()


# -- the books balance ----------------------------------------------------------------


async def test_stats_invariant_holds_at_the_end(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """emitted == exported + every drop + what is left on disk, after a mixed run."""
    inner = CapturingTransport()
    transport = DiskCheckingTransport(spool_dir, inner)
    config = wa_config(make_config, max_attempts=2, shutdown_timeout=0.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(4):  # delivered
            log.log_event("ok", {"n": i})
        await log.flush()
        inner.fail_next(1, status=400)  # rejected for good, plus one invalid event
        log.log_event("rejected", {"n": 0})
        log.log_event("rejected", {"n": 1})
        log.log_event("invalid", {"text": "strings only under _PROTO_ keys"})
        await log.flush()
        inner.fail_next(2, status=503)  # given up after two failed POSTs
        log.log_event("gave_up", {"n": 0})
        log.log_event("gave_up", {"n": 1})
        await log.flush()
        await trio.sleep(1.0)
        inner.status_code = 503  # left on disk at exit
        for i in range(3):
            log.log_event("left", {"n": i})
        await log.flush()
        log.log_event("queued_at_exit")
    stats = log.stats
    assert stats.emitted == 13
    assert stats.exported == 4
    assert stats.dropped_invalid == 1
    assert stats.dropped_permanent == 2
    assert stats.dropped_max_attempts == 2
    assert sorted(names_on_disk(spool_dir)) == ["left"] * 3 + ["queued_at_exit"]
    assert left_unaccounted(stats, left_on_disk=len(on_disk(spool_dir))) == 0
    transport.assert_committed_before_post()


# -- a commit must not wait for a POST or a drain -------------------------------------


async def test_events_logged_during_a_slow_post_are_still_committed_in_their_window(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A POST that takes 5 s does not hold back the commit of events logged meanwhile."""
    transport = CapturingTransport(latency=5.0)
    async with eventlog.open_event_logger(
        wa_config(make_config, scheduled_delay=1.0, shutdown_timeout=0.0), transport=transport
    ):
        eventlog.log_event("a")
        await trio.sleep(1.01)
        assert len(transport.requests) == 1  # in flight until t = 6
        eventlog.log_event("b")
        await trio.sleep(0.1)
        assert "b" in names_on_disk(spool_dir)


async def test_events_logged_during_a_long_drain_are_still_committed_in_their_window(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A drain of 500 events in chunks of 10, 100 ms apart, takes 5 s; a new event waits 50 ms."""
    config = wa_config(make_config, max_export_batch_size=10, batch_delay=0.1)
    async with eventlog.open_event_logger(
        wa_config(make_config, shutdown_timeout=0.0), transport=CapturingTransport(status_code=503)
    ):
        for i in range(500):
            eventlog.log_event("old", {"n": i})
        await trio.sleep(0.06)
    assert len(on_disk(spool_dir)) == 500
    transport = CapturingTransport()
    async with eventlog.open_event_logger(config, transport=transport):
        await trio.sleep(0.5)
        assert 0 < len(transport.events()) < 500  # the drain is under way
        eventlog.log_event("new")
        await trio.sleep(0.1)
        assert len(transport.events()) < 500
        assert "new" in names_on_disk(spool_dir)


class SlowDisk:
    """Runs the spool's writes inline, each after 0.1 s of virtual time (a slow fsync)."""

    async def __call__(self, function: Callable[[], T], /) -> T:
        await trio.sleep(0.1)
        return function()


async def test_flush_waits_for_events_being_committed_while_a_post_settles(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A POST settling during a slow commit does not end the flush of the events committed."""
    transport = CapturingTransport(latency=0.05)
    with _seams.use(runner=SlowDisk()):
        async with (
            eventlog.open_event_logger(wa_config(make_config), transport=transport) as log,
            trio.open_nursery() as nursery,
        ):
            log.log_event("a")
            nursery.start_soon(log.flush)
            await trio.testing.wait_all_tasks_blocked()
            log.log_event("b")
            await log.flush()
            assert transport.event_names() == ["a", "b"]
            assert log.stats.exported == 2
