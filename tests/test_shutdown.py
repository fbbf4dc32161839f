"""Leaving the block (docs/delivery.md): a shielded, bounded drain; exceptions unwrapped."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport
from tests import helpers

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


def spooled_events(directory: Path) -> list[bytes]:
    """Payloads of every event waiting in every spool of ``directory``."""
    return [event.payload for event in helpers.spooled_events(directory)]


async def test_leaving_the_block_exports_the_queue(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Events queued when the block ends are delivered at once, not after scheduled_delay."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        log.log_event("b")
    assert transport.event_names() == ["a", "b"]
    assert transport.attempt_times == [0.0]
    assert log.stats.exported == 2


async def test_nothing_on_disk_after_a_clean_run(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A run that delivered everything creates no directory and leaves no file."""
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()) as log:
        log.log_event("a")
    assert not spool_dir.exists()


async def test_spool_file_removed_once_drained(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """After an outage is over and the spool drained, no spool file remains."""
    transport = CapturingTransport()
    transport.fail_next(1)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await log.flush()
        assert len(list(spool_dir.iterdir())) == 1
        await trio.sleep(1)
    assert list(spool_dir.iterdir()) == []
    assert transport.event_names() == ["a"]


async def test_exception_in_block_propagates_unwrapped(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A ValueError raised in the block reaches the caller as itself, after the drain."""
    transport = CapturingTransport()
    with pytest.raises(ValueError, match="boom") as info:
        async with eventlog.open_event_logger(make_config(), transport=transport) as log:
            log.log_event("a")
            raise ValueError("boom")
    assert not isinstance(info.value, BaseExceptionGroup)
    assert transport.event_names() == ["a"]


async def test_exception_propagates_when_the_server_is_down(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, spool_dir: Path
) -> None:
    """Even when the drain fails, the block's exception comes out as itself."""
    transport = CapturingTransport(status_code=503)
    with pytest.raises(KeyError):
        async with eventlog.open_event_logger(make_config(), transport=transport) as log:
            log.log_event("a")
            raise KeyError("k")
    assert len(spooled_events(spool_dir)) == 1


async def test_cancellation_from_outside_still_drains(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A cancelled block still delivers its queue under the shield, then stays cancelled."""
    transport = CapturingTransport(latency=1.0)
    with trio.move_on_after(3) as scope:
        async with eventlog.open_event_logger(make_config(), transport=transport) as log:
            log.log_event("a")
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert transport.event_names() == ["a"]
    assert trio.current_time() == 4.0  # the shielded drain took the 1 s the server needed
    assert log.stats.exported == 1


async def test_shutdown_timeout_bounds_the_drain_and_spools_the_rest(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A server slower than shutdown_timeout: the exit takes the budget, the events go to disk."""
    transport = CapturingTransport(latency=100.0)
    config = make_config(shutdown_timeout=2.0, export_timeout=50.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(3):
            log.log_event(f"e{i}")
    assert trio.current_time() == 2.0
    assert len(transport.requests) == 1
    assert len(spooled_events(spool_dir)) == 3
    assert log.stats.spooled == 3
    assert log.stats.exported == 0


@trio.lowlevel.enable_ki_protection
def _press_ctrl_c() -> None:
    # Inside KI-protected code trio's SIGINT handler does not raise on the
    # spot: it hands the KeyboardInterrupt to the main task at its current
    # wait, as for a Ctrl-C that arrives while the program is idle.
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler, "trio's handler"
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_the_drain_leaves_at_once(make_config: MakeConfig, spool_dir: Path) -> None:
    """A KeyboardInterrupt in the drain ends it at once (not after export_timeout), unwrapped."""
    config = make_config(shutdown_timeout=1.0, export_timeout=20.0)
    seen: list[tuple[BaseException | None, float]] = []
    stats: list[eventlog.Stats] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def ctrl_c_at(when: float) -> None:
        await trio.sleep_until(when)
        _press_ctrl_c()

    async def main() -> None:
        # The block runs in trio's main task, where a real Ctrl-C is delivered.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ctrl_c_at, 0.5)
            try:
                async with eventlog.open_event_logger(
                    config, transport=httpx.MockTransport(hang)
                ) as log:
                    log.log_event("a")
                    log.log_event("b")
            except BaseException as exc:  # noqa: BLE001 -- recorded for the assertions
                seen.append((exc, trio.current_time()))
            else:
                seen.append((None, trio.current_time()))
            stats.append(log.stats)

    # trio installs its handler only over Python's default one; a process
    # started in the background by a shell inherits SIGINT ignored instead.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except KeyboardInterrupt:  # pragma: no cover -- must not end the pytest session
        pytest.fail("the KeyboardInterrupt escaped past the logger's caller")
    finally:
        signal.signal(signal.SIGINT, previous)
    ((exc, when),) = seen
    assert type(exc) is KeyboardInterrupt
    assert when == 0.5  # not 20 (export_timeout), not even 1 (shutdown_timeout)
    assert (stats[0].spooled, stats[0].exported) == (2, 0)
    assert len(spooled_events(spool_dir)) == 2


async def test_queue_left_by_a_stuck_drain_is_spooled(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Events still queued behind a hanging drain are written to the spool at the deadline."""
    transport = CapturingTransport(latency=100.0)
    config = make_config(shutdown_timeout=1.0, export_timeout=50.0, max_export_batch_size=2)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("a")
        log.log_event("b")  # fills a batch: its POST starts and hangs
        await trio.sleep(0.5)
        log.log_event("c")
    assert len(spooled_events(spool_dir)) == 3
    stats = log.stats
    assert (stats.emitted, stats.spooled, stats.queue_depth) == (3, 3, 0)


async def test_no_post_at_exit_while_backing_off(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """With a backoff timer pending, shutdown spools instead of probing, and stops the timer."""
    transport = CapturingTransport()
    transport.fail_next(1)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await log.flush()
        log.log_event("b")
    assert len(transport.requests) == 1
    await trio.sleep(3600)
    assert len(transport.requests) == 1
    assert len(spooled_events(spool_dir)) == 2


async def test_after_shutdown_log_event_counts_and_flush_raises(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After the block: log_event is a counted no-op; flush raises 'exporter has been shutdown'."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        pass
    log.log_event("late")
    log.log_event("later")
    assert log.stats.dropped_after_shutdown == 2
    assert log.stats.emitted == 0
    with pytest.raises(eventlog.ExporterShutdownError, match="exporter has been shutdown"):
        await log.flush()
    assert transport.requests == []


class _ClosingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    async def aclose(self) -> None:
        self.closed = True


async def test_http_client_and_transport_closed(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The HTTP client (and with it the transport) is closed on exit, even on cancellation."""
    transport = _ClosingTransport()
    with trio.CancelScope() as scope:
        async with eventlog.open_event_logger(make_config(), transport=transport):
            scope.cancel()
            await trio.sleep_forever()
    assert transport.closed


async def test_shutdown_timeout_zero_spools_without_waiting(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """shutdown_timeout=0 leaves at once; the queue is kept on disk for the next run."""
    transport = CapturingTransport(latency=10.0)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=transport
    ) as log:
        log.log_event("a")
    assert trio.current_time() == 0.0
    assert len(spooled_events(spool_dir)) == 1


async def test_spool_files_are_private(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The directories are created 0700 and every spool file 0600."""
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=CapturingTransport(status_code=500)
    ) as log:
        log.log_event("a")
    (log_dir,) = spool_dir.iterdir()
    assert os.stat(spool_dir).st_mode & 0o777 == 0o700
    assert os.stat(log_dir).st_mode & 0o777 == 0o700
    files = sorted(p.name for p in log_dir.iterdir())
    assert files == ["00000001.seg", "lock"]
    for path in log_dir.iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o600


async def test_errors_during_shutdown_are_swallowed(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A transport that raises during the final export does not escape the block."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("transport exploded")

    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(handler)
    ) as log:
        log.log_event("a")
        assert log.config.service_name == "testapp"
    assert log.stats.export_failures == 1
    assert len(spooled_events(spool_dir)) == 1
