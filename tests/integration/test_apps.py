"""The web-app recipes of docs/apps.md under real servers, against the real collector.

Each test serves an example application of ``examples/`` on a free loopback
port, in a thread of its own (the server's event loop there, the collector's
trio loop here), sends it requests with a real HTTP client, stops the server
the way its process would be stopped, and then reads the collector's store:
every event the handlers logged is there exactly once (by ``event_id``),
and nothing was logged at WARNING or above. Waits are bounded by
``trio.fail_after``, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import anyio
import httpx
import hypercorn.asyncio
import hypercorn.config
import hypercorn.trio
import msgspec
import pytest
import trio
import uvicorn
import werkzeug.serving

import eventlog
from eventlog._config import DEFAULT_MAX_CONCURRENT_EXPORTS
from eventlog.collector import Collector, open_collector
from eventlog.testing import Envelope, InternalEventData, metadata_of
from examples import flask_app, starlette_app
from tests.test_docs_apps import BLOCKS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hypercorn.typing import ASGIFramework
    from starlette.applications import Starlette

    from tests.conftest import MakeConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
REQUESTS = 40
ENVELOPE = msgspec.json.Decoder(Envelope)


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    """A collector on a free loopback port, its database in memory."""
    async with open_collector() as running:
        yield running


@pytest.fixture
def warnings_logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """What any logger (the servers', eventlog's, any thread's) said at WARNING or above."""
    caplog.set_level(logging.WARNING)

    def logged() -> list[str]:
        return [
            f"{record.name}: {record.getMessage()}"
            for record in caplog.records
            if record.levelno >= logging.WARNING
        ]

    return logged


@pytest.fixture
def threads_left() -> Callable[[], list[str]]:
    """The threads started since the test began and still running (trio's idle workers apart)."""
    before = set(threading.enumerate())

    def left() -> list[str]:
        return [
            thread.name
            for thread in threading.enumerate()
            if thread not in before and not thread.name.startswith("Trio thread")
        ]

    return left


async def delivered(collector: Collector) -> list[InternalEventData]:
    """The data of every event in the collector's store."""
    store = collector.app.store
    rows = await collector.app.run_store(functools.partial(store.events, limit=1_000_000))
    events = [ENVELOPE.decode(body).event_data for body, _ in rows]
    internal = [data for data in events if isinstance(data, InternalEventData)]
    assert len(internal) == len(events)
    return internal


async def assert_each_once(collector: Collector, expected: int) -> list[InternalEventData]:
    """``expected`` events in the store, each received once; returns their data."""
    events = await delivered(collector)
    assert len(events) == len({data.event_id for data in events}) == expected
    assert collector.stats.received == collector.stats.stored == expected
    assert collector.stats.duplicates == 0
    return events


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port: requests queue until the server serves."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


async def serve_uvicorn(app: Starlette, sock: socket.socket, stop: anyio.Event) -> None:
    """uvicorn until ``stop`` is set; its lifespan runs on start and on stop."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        # None: uvicorn leaves the process's logging configuration alone.
        log_config=None,
        timeout_graceful_shutdown=int(TIMEOUT),
    )
    server = uvicorn.Server(config)

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stop_when_asked)
        await server.serve(sockets=[sock])
        # It also ends on its own, when the lifespan's startup fails.
        tasks.cancel_scope.cancel()


async def serve_hypercorn(
    backend: str, app: Starlette, sock: socket.socket, stop: anyio.Event
) -> None:
    """hypercorn on ``backend``, the running event loop, until ``stop`` is set; lifespan too."""
    config = hypercorn.config.Config()
    # hypercorn takes the descriptor over, and closes it when it stops.
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.hypercorn")
    config.graceful_timeout = TIMEOUT
    framework = cast("ASGIFramework", app)
    if backend == "trio":
        await hypercorn.trio.serve(framework, config, shutdown_trigger=stop.wait)
    else:
        await hypercorn.asyncio.serve(framework, config, shutdown_trigger=stop.wait)


Serve = Callable[["Starlette", socket.socket, anyio.Event], Awaitable[None]]
# name: (the event loop of the server's thread, the server)
SERVERS: dict[str, tuple[str, Serve]] = {
    "uvicorn": ("asyncio", serve_uvicorn),
    "hypercorn-asyncio": ("asyncio", functools.partial(serve_hypercorn, "asyncio")),
    "hypercorn-trio": ("trio", functools.partial(serve_hypercorn, "trio")),
}


@contextlib.asynccontextmanager
async def serving(server: str, app: Starlette) -> AsyncIterator[str]:
    """``app`` served by ``server`` on a thread with its own event loop; yields its base URL.

    Leaving the block stops the server as its process would be stopped and
    waits for it to end; an exception raised by the server fails the test.
    """
    backend, serve = SERVERS[server]
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The blocking calls go to worker threads: the collector's trio loop keeps serving.
    portal_cm = anyio.from_thread.start_blocking_portal(backend)
    portal = await trio.to_thread.run_sync(portal_cm.__enter__)
    try:
        stop = await trio.to_thread.run_sync(portal.call, anyio.Event)
        served = await trio.to_thread.run_sync(portal.start_task_soon, serve, app, sock, stop)
        try:
            yield url
        finally:
            await trio.to_thread.run_sync(portal.call, stop.set)
            with trio.fail_after(TIMEOUT):
                await trio.to_thread.run_sync(served.result, abandon_on_cancel=True)
    finally:
        await trio.to_thread.run_sync(portal_cm.__exit__, None, None, None)
        sock.close()


@pytest.mark.parametrize("server", list(SERVERS))
async def test_starlette_lifespan_logger_gets_every_handler_event_once(
    server: str,
    make_config: MakeConfig,
    collector: Collector,
    warnings_logged: Callable[[], list[str]],
    threads_left: Callable[[], list[str]],
) -> None:
    """examples/starlette_app.py: N requests, N events, delivered once by the lifespan's exit."""
    # Nothing is due before shutdown (the batch is not full, the timer far off):
    # what arrives was sent by the drain of the lifespan's exit.
    config = make_config(base_url=collector.url, scheduled_delay=600.0, shutdown_timeout=TIMEOUT)
    app = starlette_app.create_app(config)
    with trio.fail_after(TIMEOUT):
        async with serving(server, app) as url:
            async with httpx.AsyncClient(base_url=url) as client:

                async def request(i: int) -> None:
                    path = f"/checkout?items={i}" if i % 2 else "/export"
                    response = await client.post(path)
                    assert response.json() == {"ok": True}

                async with trio.open_nursery() as nursery:
                    for i in range(REQUESTS):
                        nursery.start_soon(request, i)
            assert await collector.count() == 0

    events = await assert_each_once(collector, REQUESTS)
    names = Counter(data.event_name for data in events)
    assert names == {"checkout_completed": REQUESTS // 2, "report_exported": REQUESTS // 2}
    items = sorted(
        cast("int", metadata_of(data)["items"])
        for data in events
        if data.event_name == "checkout_completed"
    )
    assert items == list(range(1, REQUESTS, 2))
    assert eventlog.current_logger() is None
    assert warnings_logged() == []
    assert threads_left() == []


async def test_flask_app_factory_logger_gets_every_view_event_once(
    make_config: MakeConfig,
    collector: Collector,
    warnings_logged: Callable[[], list[str]],
    threads_left: Callable[[], list[str]],
) -> None:
    """examples/flask_app.py under werkzeug: N requests, N events, delivered once by close()."""
    config = make_config(base_url=collector.url, scheduled_delay=600.0, shutdown_timeout=TIMEOUT)
    app = flask_app.create_app(config)
    log = app.extensions["eventlog"]
    assert isinstance(log, eventlog.SyncEventLogger)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    serve = functools.partial(server.serve_forever, poll_interval=0.01)
    thread = threading.Thread(target=serve, name="test-werkzeug")
    thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:

                async def request(i: int) -> None:
                    response = await client.post(f"/checkout?items={i}")
                    assert response.json() == {"ok": True}

                async with trio.open_nursery() as nursery:
                    for i in range(REQUESTS):
                        nursery.start_soon(request, i)
    finally:
        await trio.to_thread.run_sync(server.shutdown)
        await trio.to_thread.run_sync(thread.join)
        server.server_close()
    # Nothing was due yet (the batch is not full, the timer far off): close() drains.
    assert await collector.count() == 0
    with trio.fail_after(TIMEOUT):
        await trio.to_thread.run_sync(log.close, abandon_on_cancel=True)

    events = await assert_each_once(collector, REQUESTS)
    assert {data.event_name for data in events} == {"checkout_completed"}
    assert sorted(cast("int", metadata_of(data)["items"]) for data in events) == list(
        range(REQUESTS)
    )
    stats = log.stats
    assert (stats.emitted, stats.exported, stats.queue_depth) == (REQUESTS, REQUESTS, 0)
    assert eventlog.current_logger() is None
    assert warnings_logged() == []
    assert threads_left() == []


SCRIPT_THREADS = 4
SCRIPT_EVENTS = 10_000


async def test_sync_facade_delivers_10000_events_from_4_threads_once(
    make_config: MakeConfig,
    collector: Collector,
    warnings_logged: Callable[[], list[str]],
    threads_left: Callable[[], list[str]],
) -> None:
    """A plain script: start_event_logger, 4 threads log 10,000 events, close(): each once."""
    config = make_config(
        base_url=collector.url,
        shutdown_timeout=TIMEOUT,
        max_concurrent_exports=DEFAULT_MAX_CONCURRENT_EXPORTS,
        # The threads log faster than one process can send: the queue holds the
        # whole burst, so the test is about delivery, not about the queue's bound.
        max_queue_size=2 * SCRIPT_EVENTS,
    )
    per_thread = SCRIPT_EVENTS // SCRIPT_THREADS

    def script() -> eventlog.Stats:
        log = eventlog.start_event_logger(config)

        def work(t: int) -> None:
            # Half the threads hold the logger, half find it as eventlog.log_event does.
            emit = log.log_event if t % 2 else eventlog.log_event
            for i in range(per_thread):
                emit("row_processed", {"thread": t, "i": i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(SCRIPT_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.close()
        return log.stats

    with trio.fail_after(TIMEOUT):
        stats = await trio.to_thread.run_sync(script, abandon_on_cancel=True)

    events = await assert_each_once(collector, SCRIPT_EVENTS)
    logged = {(metadata_of(data)["thread"], metadata_of(data)["i"]) for data in events}
    assert logged == {(t, i) for t in range(SCRIPT_THREADS) for i in range(per_thread)}
    assert (stats.emitted, stats.exported) == (SCRIPT_EVENTS, SCRIPT_EVENTS)
    assert stats.dropped_queue_full == stats.dropped_after_shutdown == 0
    assert (stats.queue_depth, stats.spool_bytes) == (0, 0)
    assert eventlog.current_logger() is None
    assert warnings_logged() == []
    assert threads_left() == []


async def test_the_script_recipe_runs_and_delivers_its_events(
    collector: Collector, tmp_path: Path
) -> None:
    """docs/apps.md's script, run as a program on three files: four events, each once."""
    (script,) = [block.code for block in BLOCKS if "def main() -> int:" in block.code]
    files = []
    for size in (3, 5, 8):
        path = tmp_path / f"file-{size}.bin"
        path.write_bytes(b"x" * size)
        files.append(str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    env.pop("DO_NOT_TRACK", None)
    env.update(EVENTLOG_BASE_URL=collector.url, EVENTLOG_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process(
            [sys.executable, "-c", script, *files], env=env, capture_stderr=True, check=False
        )
    assert (done.returncode, done.stderr) == (0, b"")

    events = await assert_each_once(collector, len(files) + 1)
    sizes = sorted(
        cast("int", metadata_of(data)["bytes"])
        for data in events
        if data.event_name == "file_processed"
    )
    assert sizes == [3, 5, 8]
    (finished,) = [data for data in events if data.event_name == "run_finished"]
    assert metadata_of(finished) == {"files": 3}
