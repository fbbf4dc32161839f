"""The synchronous facade: start_event_logger and SyncEventLogger (docs/apps.md).

The facade runs a real thread with its own event loop, so these tests are
plain functions in real time. They wait on what the facade offers
(``flush``, ``close``) or on a ``threading.Event``, never a fixed sleep,
and each takes well under a second.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.from_thread
import httpx
import pytest
import trio

import eventlog
from eventlog.testing import CapturingTransport
from tests.fork_support import fork_in_place

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future
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


# -- after os.fork() (simulated in this process: tests/fork_support.py) ------------------


def logger_threads() -> set[threading.Thread]:
    """The logger threads running in this process."""
    return {thread for thread in threading.enumerate() if thread.name == "eventlog"}


FIRST_USES: dict[str, Callable[[eventlog.SyncEventLogger], object]] = {
    "log_event": lambda log: log.log_event("child", {"n": 1}),
    "log_experiment": lambda log: log.log_experiment("child-experiment", 1),
    "flush": lambda log: log.flush(timeout=5.0),
    "stats": lambda log: log.stats,
    "apply_remote_config": lambda log: log.apply_remote_config(
        eventlog.RemoteConfig(max_export_batch_size=7), timeout=5.0
    ),
}


@pytest.mark.parametrize("first_use", sorted(FIRST_USES))
def test_in_a_forked_child_the_first_use_starts_the_childs_own_logger(
    make_config: MakeConfig, first_use: str
) -> None:
    """After a fork no logger thread runs until the first use, which starts a new run."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(scheduled_delay=3600.0), transport=transport)
    log.log_event("before_fork")  # queued in the parent: the parent's to deliver
    fork_in_place()  # ends the parent's logger thread
    before = logger_threads()
    FIRST_USES[first_use](log)
    assert len(logger_threads() - before) == 1
    log.log_event("after_start")
    assert log.flush(timeout=5.0) is True
    stats = log.stats
    log.close()
    assert "before_fork" not in transport.event_names()
    assert transport.event_names()[-1] == "after_start"
    # The child's run counts only the child's events.
    assert stats.emitted == len(transport.events())


def test_in_a_forked_child_module_level_log_event_starts_the_first_logger(
    make_config: MakeConfig,
) -> None:
    """eventlog.log_event in a child starts the first facade's logger, which stays the fallback."""
    first, second = CapturingTransport(), CapturingTransport()
    one = eventlog.start_event_logger(make_config(), transport=first)
    two = eventlog.start_event_logger(make_config(), transport=second)
    fork_in_place()
    # The second starts first: its new logger takes its own place, after the first.
    two.log_event("to_second")
    current = eventlog.current_logger()  # starts the first one: the fallback
    assert current is not None
    current.log_event("to_first")
    eventlog.log_event("to_first_too")
    one.close()
    eventlog.log_event("to_second_too")
    two.close()
    assert first.event_names() == ["to_first", "to_first_too"]
    assert second.event_names() == ["to_second", "to_second_too"]


def waiting_in(thread: threading.Thread, function: str) -> bool:
    """Whether ``thread`` is inside ``function`` right now (blocked on a lock, say)."""
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def test_in_a_forked_child_threads_that_use_it_at_once_start_one_logger(
    make_config: MakeConfig,
) -> None:
    """Two threads waiting to start the child's logger: one starts it, both events go to it."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)
    fork_in_place()
    before = logger_threads()
    users = [
        threading.Thread(target=log.log_event, args=("child_thread", {"n": n})) for n in range(2)
    ]
    with log._lock:  # both reach the start and wait there for the lock
        for user in users:
            user.start()
        deadline = time.monotonic() + 5.0
        while not all(waiting_in(user, "_restart") for user in users):
            assert time.monotonic() < deadline
            time.sleep(0.001)
    for user in users:
        user.join(5.0)
    assert len(logger_threads() - before) == 1
    log.close()
    assert transport.event_names() == ["child_thread", "child_thread"]
    assert log.stats.emitted == 2


def test_in_a_forked_child_a_logger_that_cannot_start_counts_and_never_raises(
    make_config: MakeConfig, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A child's logger that fails to start: a WARNING, its events counted, flush refused."""
    spool_dir.mkdir(mode=0o700)
    log = eventlog.start_event_logger(make_config(strict=True), transport=CapturingTransport())
    fork_in_place()
    spool_dir.chmod(0o777)  # unsafe now: strict mode refuses to open a logger
    log.log_event("lost")
    log.log_experiment("lost-experiment", 1)
    with pytest.raises(eventlog.ExporterShutdownError):
        log.flush()
    assert log.apply_remote_config(eventlog.RemoteConfig(max_export_batch_size=2)) is False
    assert log.stats.dropped_after_shutdown == 2
    assert eventlog.current_logger() is None
    log.close()
    [record] = [r for r in caplog.records if "could not start" in r.getMessage()]
    assert record.levelno == logging.WARNING


def test_in_a_forked_child_close_before_any_use_starts_nothing(make_config: MakeConfig) -> None:
    """Closing in a child a logger it never used starts no thread; later events are counted."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)
    fork_in_place()
    before = logger_threads()
    log.close()
    assert logger_threads() - before == set()
    log.log_event("late")
    assert log.stats.dropped_after_shutdown == 1
    assert eventlog.current_logger() is None
    assert transport.requests == []


def test_a_child_that_forks_before_any_use_passes_the_lazy_start_on(
    make_config: MakeConfig,
) -> None:
    """A grandchild forked before the child used the logger starts its own at first use."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)
    fork_in_place()
    fork_in_place()  # the child forks again: nothing of its own to abandon
    eventlog.log_event("grandchild")
    log.close()
    assert transport.event_names() == ["grandchild"]


def test_a_logger_closed_before_the_fork_stays_closed_in_the_child(
    make_config: MakeConfig,
) -> None:
    """A facade closed in the parent is no stand-in in the child: its events are counted."""
    log = eventlog.start_event_logger(make_config(), transport=CapturingTransport())
    log.close()
    fork_in_place()
    before = logger_threads()
    log.log_event("late")
    assert logger_threads() - before == set()
    assert log.stats.dropped_after_shutdown == 1
    assert eventlog.current_logger() is None


# -- close() racing the other calls, and at exit -----------------------------------------


class ClosingPortal:
    """The logger's portal, with a ``close()`` from another thread landing just before each call.

    That is the window between a call's "is it closed?" check and its call
    into the portal, which no test could otherwise hit on purpose.
    """

    def __init__(self, log: eventlog.SyncEventLogger) -> None:
        assert log._run is not None
        self._log = log
        self._portal = log._run.portal

    def start_task_soon(self, *args: Any) -> Future[Any]:
        """Close the logger (its portal stops), then call the real portal."""
        closer = threading.Thread(target=self._log.close)
        closer.start()
        closer.join(5.0)
        return self._portal.start_task_soon(*args)


@pytest.mark.parametrize("call", ["flush", "apply_remote_config"])
def test_a_call_that_races_close_returns_false(make_config: MakeConfig, call: str) -> None:
    """flush or apply_remote_config with close() landing first: False, not an error."""
    transport = CapturingTransport()
    log = eventlog.start_event_logger(make_config(), transport=transport)
    log.log_event("queued")
    assert log._run is not None
    log._run.portal = cast("anyio.from_thread.BlockingPortal", ClosingPortal(log))
    if call == "flush":
        assert log.flush(timeout=5.0) is False
    else:
        assert log.apply_remote_config(eventlog.RemoteConfig(max_export_batch_size=2)) is False
    # The close's drain delivered what was queued.
    assert transport.event_names() == ["queued"]


def test_close_removes_the_close_at_exit_hook(make_config: MakeConfig) -> None:
    """close_at_exit=True: the exit hook holds the logger until close() removes the hook."""
    log = eventlog.start_event_logger(
        make_config(), transport=CapturingTransport(), close_at_exit=True
    )
    alive = weakref.ref(log)
    log.close()
    del log
    gc.collect()
    assert alive() is None  # no hook left to close it (again) at exit
