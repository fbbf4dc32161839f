"""The synchronous facade: start_event_logger and SyncEventLogger (docs/apps.md).

The facade runs a real thread with its own event loop, so these tests are
plain functions in real time. They wait on what the facade offers
(``flush``, ``close``) or on a ``threading.Event``, never a fixed sleep,
and each takes well under a second.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
import trio

import eventlog
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


def test_the_context_manager_delivers_on_exit(make_config: MakeConfig) -> None:
    """Events logged in the with block are delivered by the time it is left."""
    transport = CapturingTransport()
    with eventlog.start_event_logger(make_config(), transport=transport) as log:
        log.log_event("job_started", {"items": 3})
        log.log_experiment("new-onboarding", 1)
        assert isinstance(log, eventlog.SyncEventLogger)
    assert transport.event_names() == ["job_started"]
    assert len(transport.events()) == 2
    assert log.stats.exported == 2


def test_close_is_idempotent(make_config: MakeConfig) -> None:
    """close() twice, then leaving the with block, drains once and raises nothing."""
    transport = CapturingTransport()
    with eventlog.start_event_logger(make_config(), transport=transport) as log:
        log.log_event("once")
        log.close()
        log.close(timeout=0.0)
    assert transport.event_names() == ["once"]


def test_log_event_after_close_is_counted(make_config: MakeConfig) -> None:
    """After close(), log_event and log_experiment are no-ops counted in dropped_after_shutdown."""
    log = eventlog.start_event_logger(make_config(), transport=CapturingTransport())
    log.close()
    log.log_event("late")
    log.log_experiment("late-experiment", 2)
    assert log.stats.dropped_after_shutdown == 2
    assert log.stats.emitted == 0


def test_close_with_a_zero_timeout_stops_accepting_at_once(make_config: MakeConfig) -> None:
    """close(timeout=0) returns at once; events logged after it are refused and counted."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)
    log.log_event("before")
    log.close(timeout=0.0)
    log.log_event("after")
    assert log.stats.dropped_after_shutdown == 1
    log.close()  # already closed: returns at once, even though the drain may still run


def test_flush_returns_true_once_delivered(make_config: MakeConfig) -> None:
    """flush() blocks until what was queued is acknowledged, then returns True."""
    transport = CapturingTransport()
    # Nothing would be sent for an hour without the flush.
    with eventlog.start_event_logger(
        make_config(scheduled_delay=3600.0), transport=transport
    ) as log:
        log.log_event("a")
        log.log_event("b")
        assert log.flush(timeout=5.0) is True
        assert transport.event_names() == ["a", "b"]


def test_flush_times_out_with_a_hanging_server(make_config: MakeConfig) -> None:
    """With a POST that hangs, flush(timeout) returns False after timeout, raising nothing."""
    transport = CapturingTransport(latency=3600.0)
    config = make_config(export_timeout=3600.0, shutdown_timeout=0.05)
    with eventlog.start_event_logger(config, transport=transport) as log:
        log.log_event("stuck")
        assert log.flush(timeout=0.05) is False
    # The drain's budget ran out mid-POST: the event went to the spool.
    assert len(transport.requests) == 1
    assert (log.stats.exported, log.stats.spooled) == (0, 1)


def test_a_flush_waiting_when_close_is_called_returns_false(make_config: MakeConfig) -> None:
    """A flush still waiting when another thread closes the logger returns False."""
    arrived = threading.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await anyio_sleep_forever()
        raise AssertionError("unreachable")

    results: list[bool] = []
    config = make_config(export_timeout=3600.0, shutdown_timeout=0.05)
    log = eventlog.start_event_logger(config, transport=httpx.MockTransport(hang))
    log.log_event("stuck")
    flusher = threading.Thread(target=lambda: results.append(log.flush()))
    flusher.start()
    assert arrived.wait(5.0)
    log.close()
    flusher.join(5.0)
    assert results == [False]
    with pytest.raises(eventlog.ExporterShutdownError):
        log.flush()


async def anyio_sleep_forever() -> None:
    """Sleep until cancelled, on whichever backend runs the logger."""
    await anyio.sleep_forever()


def test_flush_from_a_thread_running_trio_raises_runtime_error(make_config: MakeConfig) -> None:
    """A blocking flush on a trio loop's thread is refused loudly, not reported as False."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)

    async def main() -> None:
        log.log_event("from_trio_code")
        with pytest.raises(RuntimeError):
            log.flush(timeout=1.0)
        with pytest.raises(RuntimeError):
            log.apply_remote_config(eventlog.RemoteConfig(max_export_batch_size=2))

    try:
        trio.run(main)
    finally:
        log.close()
    assert transport.event_names() == ["from_trio_code"]


def test_log_event_from_four_threads(make_config: MakeConfig) -> None:
    """4 plain threads x 2500 events: each delivered exactly once, none refused."""
    transport = CapturingTransport()
    config = make_config(max_queue_size=10_000)
    with eventlog.start_event_logger(config, transport=transport) as log:

        def work(thread: int) -> None:
            for i in range(2500):
                log.log_event("threaded", {"thread": thread, "i": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = transport.event_ids()
    assert len(ids) == len(set(ids)) == 10_000
    assert log.stats.emitted == log.stats.exported == 10_000


def test_strict_mode_raises_invalid_event_error_in_the_caller(make_config: MakeConfig) -> None:
    """With strict=True, an invalid event raises InvalidEventError in the calling thread."""
    with eventlog.start_event_logger(
        make_config(strict=True), transport=CapturingTransport()
    ) as log:
        with pytest.raises(eventlog.InvalidEventError):
            log.log_event("bad", {"path": "/home/user"})
        with pytest.raises(eventlog.InvalidEventError):
            log.log_experiment("", 1)
        log.log_event("good")


def test_config_error_from_the_environment_raises_in_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """config=None reads the environment in the caller: a bad variable raises ConfigError."""
    monkeypatch.setenv("EVENTLOG_STRICT", "maybe")
    with pytest.raises(eventlog.ConfigError) as caught:
        eventlog.start_event_logger()
    assert caught.value.field == "strict"
    assert eventlog.current_logger() is None


def test_config_error_from_opening_the_logger_raises_in_the_caller(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """A ConfigError raised as the logger opens (strict, bad storage_dir) reaches the caller."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = make_config(strict=True, storage_dir=str(blocker / "telemetry"))
    threads = set(threading.enumerate())
    with pytest.raises(eventlog.ConfigError) as caught:
        eventlog.start_event_logger(config, transport=CapturingTransport())
    assert caught.value.field == "storage_dir"
    assert eventlog.current_logger() is None
    # The logger's thread has ended (joined) before the error reached the caller.
    assert [t.name for t in set(threading.enumerate()) - threads] == []


def test_an_unknown_backend_raises_config_error(make_config: MakeConfig) -> None:
    """backend must be "trio" or "asyncio"."""
    with pytest.raises(eventlog.ConfigError) as caught:
        eventlog.start_event_logger(make_config(), backend="curio")
    assert caught.value.field == "backend"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_each_backend_runs_the_logger(make_config: MakeConfig, backend: str) -> None:
    """backend selects the logger thread's event loop; both deliver."""
    loops: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loops.append("trio")
        else:
            loops.append("asyncio")
        return httpx.Response(200, json={})

    with eventlog.start_event_logger(
        make_config(), transport=httpx.MockTransport(answer), backend=backend
    ) as log:
        log.log_event("hello")
        assert log.flush(timeout=5.0) is True
    assert loops == [backend]
    assert log.stats.exported == 1


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_it_starts_from_a_thread_that_runs_an_event_loop(
    make_config: MakeConfig, backend: str
) -> None:
    """Started from code that anyio.run runs, the logger thread still gets a loop of its own."""
    transport = CapturingTransport()

    async def main() -> None:
        # Blocking calls on the loop, on purpose: a synchronous framework's code.
        with eventlog.start_event_logger(make_config(), transport=transport, backend=backend):
            eventlog.log_event("from_async_code")

    anyio.run(main, backend="asyncio")
    assert transport.event_names() == ["from_async_code"]


def test_module_level_log_event_from_a_plain_thread_reaches_it(make_config: MakeConfig) -> None:
    """eventlog.log_event in a threading.Thread reaches the facade's logger."""
    transport = CapturingTransport()
    seen: list[eventlog.EventLogger | None] = []

    def work() -> None:
        seen.append(eventlog.current_logger())
        eventlog.log_event("from_thread")

    with eventlog.start_event_logger(make_config(), transport=transport):
        eventlog.log_event("from_main")
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert transport.event_names() == ["from_main", "from_thread"]
    [logger] = seen
    assert isinstance(logger, eventlog.EventLogger)
    assert eventlog.current_logger() is None


def test_the_first_started_logger_is_the_fallback_until_it_closes(
    make_config: MakeConfig,
) -> None:
    """With two facades open, eventlog.log_event reaches the first, then the second."""
    first, second = CapturingTransport(), CapturingTransport()
    one = eventlog.start_event_logger(make_config(), transport=first)
    two = eventlog.start_event_logger(make_config(), transport=second)
    eventlog.log_event("to_first")
    one.close()
    eventlog.log_event("to_second")
    two.close()
    eventlog.log_event("to_nobody")
    assert first.event_names() == ["to_first"]
    assert second.event_names() == ["to_second"]


def test_apply_remote_config_goes_through_the_portal(make_config: MakeConfig) -> None:
    """apply_remote_config returns True once a change is in force, False for an equal one."""
    transport = CapturingTransport()
    with eventlog.start_event_logger(
        make_config(max_export_batch_size=100), transport=transport
    ) as log:
        change = eventlog.RemoteConfig(max_export_batch_size=2)
        assert log.apply_remote_config(change, timeout=5.0) is True
        assert log.apply_remote_config(change, timeout=5.0) is False
        for i in range(4):
            log.log_event(f"e{i}")
        assert log.flush(timeout=5.0) is True
    assert [len(r.events) for r in transport.requests] == [2, 2]
    assert log.apply_remote_config(eventlog.RemoteConfig(max_export_batch_size=3)) is False


def test_apply_remote_config_times_out_behind_a_hanging_export(make_config: MakeConfig) -> None:
    """A batch change waits for the queue to go out first: past timeout it returns False."""
    arrived = threading.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await anyio_sleep_forever()
        raise AssertionError("unreachable")

    config = make_config(export_timeout=3600.0, shutdown_timeout=0.05)
    with eventlog.start_event_logger(config, transport=httpx.MockTransport(hang)) as log:
        log.log_event("stuck")
        assert log.flush(timeout=0.0) is False  # starts the export
        assert arrived.wait(5.0)
        # Queued events go out under the old configuration first, and the one
        # POST slot is taken by the hanging export.
        log.log_event("queued")
        change = eventlog.RemoteConfig(max_export_batch_size=2)
        assert log.apply_remote_config(change, timeout=0.05) is False


def test_a_disabled_logger_is_a_no_op(make_config: MakeConfig) -> None:
    """Config(enabled=False): nothing is sent; flush returns True; the fallback is a no-op."""
    transport = CapturingTransport()
    with eventlog.start_event_logger(make_config(enabled=False), transport=transport) as log:
        log.log_event("ignored")
        eventlog.log_event("ignored_too")
        assert log.flush() is True
        current = eventlog.current_logger()
        assert current is not None
        assert not current.enabled
    assert transport.requests == []
    assert log.stats == eventlog.Stats()
