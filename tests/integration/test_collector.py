"""The SDK against the real reference collector on loopback, in real time (docs/collector.md).

The routes, errors and faults of the collector's application are tested in
process, without a server, in ``tests/test_collector_app.py``; here are the
SDK's exchanges with it over real sockets, and its command line.

Every test here uses real sockets on 127.0.0.1 and the real clock (hypercorn
and SQLite's worker threads do not run under trio's autojump clock). Waits are
short polls bounded by ``trio.fail_after``, never fixed sleeps, and the SDK
runs with millisecond backoffs so that a whole outage fits in a fraction of a
second.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import h11
import httpx
import pytest
import trio

import eventlog
from eventlog._cli._demo import run_demo as run_demo_in_process
from eventlog._config import DEFAULT_MAX_CONCURRENT_EXPORTS
from eventlog.collector import Collector, Faults, open_collector
from tests.collector_support import (
    BATCH,
    batch,
    experiment,
    internal,
    metadata_of,
    stored_events,
)
from tests.helpers import spool_logs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from tests.conftest import MakeConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0


# -- helpers ---------------------------------------------------------------------


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], within: float = TIMEOUT
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``within`` seconds."""
    with trio.fail_after(within):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await trio.sleep(0.02)


def fast_config(make_config: MakeConfig, url: str, **overrides: Any) -> eventlog.Config:
    """A config for real time: the collector's URL and millisecond backoffs."""
    values: dict[str, Any] = {
        "base_url": url,
        "scheduled_delay": 0.1,
        "base_backoff": 0.05,
        "max_backoff": 0.2,
        # Outage answers carry the outage time left as Retry-After, honoured above
        # max_backoff: capped here so that tests need not wait for it.
        "max_retry_after": 0.2,
        "backoff_jitter": 0.0,
        "batch_delay": 0.01,
        "shutdown_timeout": 1.0,
        "max_attempts": None,
        # The real thing: POSTs in flight at once, as by default.
        "max_concurrent_exports": DEFAULT_MAX_CONCURRENT_EXPORTS,
    }
    values.update(overrides)
    return make_config(**values)


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, noting each request's Authorization header and status.

    ``on_response`` runs before the SDK sees the response: a test can change
    the collector's faults between a request and the next one.
    """

    def __init__(
        self, on_response: Callable[[httpx.Request, httpx.Response], None] | None = None
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.on_response = on_response
        self.seen: list[tuple[str | None, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward to the real transport and record the exchange."""
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.headers.get("authorization"), response.status_code))
        if self.on_response is not None:
            self.on_response(request, response)
        return response

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


def spool_files(directory: Path) -> list[Path]:
    return spool_logs(directory)


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    """A collector on a free loopback port, its database in memory."""
    async with open_collector() as running:
        yield running


@pytest.fixture
async def http(collector: Collector) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the collector (closed before the collector stops)."""
    async with httpx.AsyncClient(base_url=collector.url, timeout=TIMEOUT) as client:
        yield client


# -- outages and restarts (docs/delivery.md) -------------------------------------------


async def test_outage_through_control_loses_nothing_and_stores_no_duplicate(
    make_config: MakeConfig, collector: Collector, http: httpx.AsyncClient
) -> None:
    """503s from /api/control while 500 events flow; once it ends all 500 are stored once."""
    response = await http.post("/api/control", json={"outage": 60})
    assert response.status_code == 200
    assert response.json()["outage_left"] > 59
    config = fast_config(make_config, collector.url, session_id="outage-session")
    async with eventlog.open_event_logger(config) as log:
        for i in range(500):
            log.log_event("outage_event", {"i": i})
        await wait_for(lambda: log.stats.export_failures >= 2)
        assert await collector.count() == 0
        assert collector.stats.faulted >= 2

        response = await http.post("/api/control", json={"outage": 0})
        assert response.json()["outage_left"] == 0
        await wait_for(lambda: log.stats.exported == 500)
        await wait_for(lambda: log.stats.spool_bytes == 0 and log.stats.queue_depth == 0)
    stats = log.stats

    assert await collector.count() == 500
    assert collector.stats.duplicates == 0
    assert collector.stats.stored == collector.stats.received == 500
    events = await stored_events(http, limit="10000")
    ids = {e["event_data"]["event_id"] for e in events}
    assert len(events) == len(ids) == 500
    assert ids == await collector.event_ids()
    assert sorted(metadata_of(e)["i"] for e in events) == list(range(500))
    assert {e["event_data"]["session_id"] for e in events} == {"outage-session"}
    assert (stats.emitted, stats.exported) == (500, 500)
    assert stats.export_failures >= 2
    assert stats.spooled > 0
    assert stats.dropped_max_attempts == stats.dropped_permanent == 0


async def test_a_restarted_sdk_replays_its_spool_into_the_collector(
    make_config: MakeConfig, spool_dir: Path, collector: Collector
) -> None:
    """Logger A exits mid-outage leaving a spool; logger B (another session) delivers it all."""
    collector.faults.outage_until = trio.current_time() + 60
    config_a = fast_config(make_config, collector.url, session_id="session-a", shutdown_timeout=0.2)
    async with eventlog.open_event_logger(config_a) as log_a:
        for i in range(120):
            log_a.log_event("before_restart", {"i": i})
        await wait_for(lambda: log_a.stats.export_failures >= 1)
    stats_a = log_a.stats
    assert stats_a.emitted == 120
    assert stats_a.exported == 0
    (left,) = spool_files(spool_dir)
    assert left.name.startswith("spool-v2.session-a.")

    collector.faults.outage_until = 0.0
    config_b = fast_config(make_config, collector.url, session_id="session-b")
    async with eventlog.open_event_logger(config_b) as log_b:
        await wait_for(lambda: log_b.stats.replayed == 120)
        await wait_for(lambda: log_b.stats.spool_bytes == 0)
    stats_b = log_b.stats

    assert await collector.count() == stats_a.emitted
    assert collector.stats.duplicates == 0
    assert (stats_b.emitted, stats_b.taken_over, stats_b.exported, stats_b.replayed) == (
        0,
        120,
        0,
        120,
    )
    assert spool_files(spool_dir) == []


# -- gzip -------------------------------------------------------------------------


async def test_an_sdk_with_gzip_delivers(
    make_config: MakeConfig, collector: Collector, http: httpx.AsyncClient
) -> None:
    """An SDK with gzip=True: every event is stored, nothing rejected."""
    config = fast_config(make_config, collector.url, gzip=True)
    async with eventlog.open_event_logger(config) as log:
        for i in range(30):
            log.log_event("zipped", {"i": i})
        log.log_experiment("exp", 2)
        await log.flush()
    assert (log.stats.exported, log.stats.dropped_permanent) == (31, 0)
    assert await collector.count() == 31
    assert collector.stats.rejected == 0
    zipped = await stored_events(http, name="zipped")
    assert sorted(metadata_of(e)["i"] for e in zipped) == list(range(30))
    (exp,) = await stored_events(http, name="exp")
    assert exp["event_data"]["variation_id"] == 2


# -- too large: 413 ----------------------------------------------------------------


async def h11_response(
    stream: trio.SocketStream, conn: h11.Connection
) -> tuple[h11.Response, bytes] | None:
    """The next response on a raw connection, or None if the server closed without one."""
    response: h11.Response | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data and response is None:
                return None
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, body
        else:
            assert response is None, event
            return None


def h11_post(host: str, body: bytes | None = None) -> h11.Request:
    """A raw POST of the batch path: chunked when ``body`` is None."""
    headers = [("host", host), ("content-type", "application/json")]
    if body is None:
        headers.append(("transfer-encoding", "chunked"))
    else:
        headers.append(("content-length", str(len(body))))
    return h11.Request(method="POST", target=BATCH, headers=headers)


@contextlib.asynccontextmanager
async def raw_connection(url: str) -> AsyncIterator[tuple[trio.SocketStream, h11.Connection]]:
    """A plain TCP connection to the collector with an h11 client state machine."""
    parts = httpx.URL(url)
    assert parts.port is not None
    stream = await trio.open_tcp_stream(parts.host, parts.port)
    async with stream:
        yield stream, h11.Connection(h11.CLIENT)


async def test_early_413_announces_that_the_connection_closes() -> None:
    """A 413 sent while the body still arrives says ``Connection: close`` if it then closes."""
    async with open_collector(max_body=2000) as collector:
        host = collector.url.removeprefix("http://")
        with trio.fail_after(TIMEOUT):
            async with raw_connection(collector.url) as (stream, conn):
                # Past the limit, and not finished when the 413 comes.
                await stream.send_all(
                    conn.send(h11_post(host)) + conn.send(h11.Data(data=b" " * 3000))
                )
                answer = await h11_response(stream, conn)
                assert answer is not None
                response, _ = answer
                assert response.status_code == 413
                announced = (b"connection", b"close") in list(response.headers)
                closed = False
                with trio.move_on_after(0.5):  # bounds the wait only if it stays open
                    try:
                        closed = await stream.receive_some(65536) == b""
                    except trio.BrokenResourceError:
                        closed = True
        assert announced or not closed, (
            "the collector closed the connection without announcing it: a client that "
            "finished the request meanwhile would reuse it and get no response"
        )


async def test_sdk_splits_on_413_and_drops_only_the_event_too_large_alone(
    make_config: MakeConfig,
) -> None:
    """Halves are resent until they fit; the one event over the limit alone is dropped."""
    async with (
        open_collector(max_body=2000) as collector,
        httpx.AsyncClient(base_url=collector.url, timeout=TIMEOUT) as http,
    ):
        config = fast_config(make_config, collector.url)
        async with eventlog.open_event_logger(config) as log:
            for i in range(12):
                log.log_event("fits", {"i": i})
            log.log_event("too_big", {"_PROTO_skill_name": "x" * 3000})
            for i in range(12, 24):
                log.log_event("fits", {"i": i})
            await log.flush()
            stats = log.stats
        fits = await stored_events(http, name="fits")
        assert sorted(metadata_of(e)["i"] for e in fits) == list(range(24))
        assert await stored_events(http, name="too_big") == []
        assert await collector.count() == 24
        assert collector.stats.rejected >= 4  # 25 -> 12 + 13 -> ... -> the big one alone
        assert collector.stats.faulted == 0
    assert stats.emitted == 25
    assert stats.exported == 24
    assert stats.dropped_permanent == 1
    assert stats.export_failures == 0
    assert stats.spool_bytes == 0


# -- auth: 401, then once without auth ---------------------------------------------


async def test_wrong_token_gets_401_twice_per_attempt_and_keeps_the_events(
    make_config: MakeConfig,
) -> None:
    """Each attempt is a 401 with the token, then a 401 without: a retryable failure."""
    transport = RecordingTransport()
    async with open_collector(faults=Faults(require_token="sekret")) as collector:
        config = fast_config(make_config, collector.url)
        async with eventlog.open_event_logger(
            config, transport=transport, auth=lambda: {"Authorization": "Bearer wrong"}
        ) as log:
            for i in range(10):
                log.log_event("refused", {"i": i})
            await log.flush()
            await wait_for(lambda: log.stats.export_failures >= 3)
        stats = log.stats
        assert await collector.count() == 0
        assert collector.stats.faulted == 2 * stats.export_failures
        assert collector.stats.rejected == 0
    assert transport.seen == [("Bearer wrong", 401), (None, 401)] * stats.export_failures
    assert stats.exported == stats.dropped_permanent == 0
    assert stats.spooled >= 10
    assert stats.spool_bytes > 0


async def test_no_credentials_gets_one_401_per_attempt(make_config: MakeConfig) -> None:
    """An auth callable returning None: one request per attempt, no resend."""
    transport = RecordingTransport()
    async with open_collector(faults=Faults(require_token="sekret")) as collector:
        config = fast_config(make_config, collector.url)
        async with eventlog.open_event_logger(
            config, transport=transport, auth=lambda: None
        ) as log:
            log.log_event("anonymous")
            await wait_for(lambda: log.stats.export_failures >= 2)
        stats = log.stats
        assert collector.stats.faulted == stats.export_failures
    assert transport.seen == [(None, 401)] * stats.export_failures


async def test_right_token_delivers(make_config: MakeConfig) -> None:
    """With the bearer token the collector requires, every event is stored; no 401."""
    transport = RecordingTransport()
    async with open_collector(faults=Faults(require_token="sekret")) as collector:
        config = fast_config(make_config, collector.url)
        async with eventlog.open_event_logger(
            config, transport=transport, auth=lambda: {"Authorization": "Bearer sekret"}
        ) as log:
            for i in range(10):
                log.log_event("welcome", {"i": i})
            await log.flush()
        assert await collector.count() == 10
        assert collector.stats.faulted == 0
    assert log.stats.exported == 10
    assert log.stats.export_failures == 0
    assert transport.seen == [("Bearer sekret", 200)]


async def test_401_falls_back_to_an_unauthenticated_resend_at_once(
    make_config: MakeConfig,
) -> None:
    """A server refusing the bad token but taking anonymous requests gets the events at once.

    The collector cannot refuse a wrong token while accepting no token, so the
    test emulates that policy: the moment the collector answers 401 to the
    authenticated request, the transport lifts ``require_token``.
    """
    transport: RecordingTransport

    async with open_collector(faults=Faults(require_token="sekret")) as collector:

        def lift_after_401(request: httpx.Request, response: httpx.Response) -> None:
            if response.status_code == 401 and "authorization" in request.headers:
                collector.faults.require_token = None

        transport = RecordingTransport(lift_after_401)
        config = fast_config(make_config, collector.url)
        async with eventlog.open_event_logger(
            config, transport=transport, auth=lambda: {"Authorization": "Bearer wrong"}
        ) as log:
            for i in range(10):
                log.log_event("fallback", {"i": i})
            await log.flush()
        assert await collector.count() == 10
        assert collector.stats.faulted == 1
    assert transport.seen == [("Bearer wrong", 401), (None, 200)]
    assert log.stats.exported == 10
    assert log.stats.export_failures == 0  # resent at once: no failure, so no backoff


async def test_a_new_users_mistakes_cost_nothing_against_the_real_collector(
    make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Real sockets, real time: a bad auth, an unencodable context and a reused dict.

    Each event reaches the collector exactly once with the values of its call,
    partial (transform_error) rather than dropped, sent without auth; nothing
    raises and the token never reaches a log line.
    """

    async def async_auth() -> dict[str, str]:  # a common mistake: auth must be sync
        return {"Authorization": "Bearer SECRET-TOKEN"}

    bad_context = eventlog.EventContext(device_id=os.fsdecode(b"host-\xff"))
    async with open_collector() as collector:
        config = fast_config(make_config, collector.url)
        with caplog.at_level(logging.DEBUG, logger="eventlog"):
            async with eventlog.open_event_logger(
                config,
                auth=async_auth,  # type: ignore[arg-type]  # the mistake under test
            ) as log:
                d = {"i": 0}
                for i in range(200):
                    d["i"] = i
                    log.log_event("loop", d)
                await log.flush()
            async with eventlog.open_event_logger(config, context=bad_context) as partial:
                for i in range(10):
                    partial.log_event("partial", {"i": i})
        async with httpx.AsyncClient(base_url=collector.url, timeout=TIMEOUT) as http:
            loops = await stored_events(http, name="loop", limit="1000")
            partials = await stored_events(http, name="partial", limit="1000")
    assert (log.stats.exported, partial.stats.exported) == (200, 10)
    assert log.stats.dropped_invalid == partial.stats.dropped_invalid == 0
    assert collector.stats.duplicates == 0
    assert [metadata_of(e) for e in loops] == [{"i": i} for i in range(200)]
    assert [metadata_of(e) for e in partials] == [
        {"transform_error": "context not encodable: device_id: UnicodeEncodeError"}
    ] * 10
    assert not any("SECRET" in r.getMessage() for r in caplog.records)
    assert any("coroutine" in r.getMessage() for r in caplog.records)


# -- the command line: eventlog demo, eventlog collector ------------------------------


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: a wide terminal, UTF-8, no eventlog settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTLOG_", "OTEL_"))}
    env.update(COLUMNS="120", PYTHONIOENCODING="utf-8")
    env.pop("DO_NOT_TRACK", None)
    return env


def table_value(output: str, label: str) -> int:
    """The number in the final table's ``label`` row (the last one printed)."""
    values = re.findall(rf"^\W*{label}\s*[│|]\s*(\d+)\s*[│|]", output, re.MULTILINE)
    assert values, f"no {label!r} row in:\n{output}"
    return int(values[-1])


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventlog", "demo", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=cli_env(),
        cwd=ROOT,
        check=False,
    )


def test_demo_through_an_outage_delivers_every_event() -> None:
    """``eventlog demo --events 2000 --outage 3`` exits 0 and its table shows nothing lost."""
    done = run_demo("--events", "2000", "--outage", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert table_value(out, "emitted") == 2000
    assert table_value(out, "delivered") == 2000
    assert table_value(out, "duplicates") == 0
    assert table_value(out, "lost") == 0
    assert "OK: every event was delivered" in out
    assert "FAILED" not in out
    assert "session-1-restart" in out


def test_demo_without_outage_single_session() -> None:
    """``eventlog demo --events 300 --outage 0 --sessions 1`` exits 0 quickly."""
    started = time.monotonic()
    done = run_demo("--events", "300", "--outage", "0", "--sessions", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 15
    assert (table_value(done.stdout, "emitted"), table_value(done.stdout, "lost")) == (300, 0)
    assert "OK: every event was delivered" in done.stdout


def test_demo_on_an_80_column_terminal_fits_it_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In process, on a terminal: a live table within 80 columns, nothing lost, no files left."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich takes the output for a terminal
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_demo_in_process(events=60, outage=0.5, sessions=2, keep=False) == 0
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", capsys.readouterr().out)
    lines = re.split(r"[\r\n]", out)
    assert all(len(line) <= 80 for line in lines), out
    assert any(line.split()[:2] == ["session-1-restart", "done"] for line in lines), out
    assert (table_value(out, "emitted"), table_value(out, "lost")) == (60, 0)
    assert lines[-2] == "OK: every event was delivered"
    assert list(tmp_path.iterdir()) == []


def read_line(stream: IO[bytes], timeout: float) -> str:
    """The first line of a subprocess pipe, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no line within {timeout}s; got {data!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the stream closed; got {data!r}"
            data += chunk
    return data.decode().splitlines()[0]


@contextlib.contextmanager
def collector_process(db: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``eventlog collector --port 0``, its URL read from its first line; killed if still alive."""
    process = subprocess.Popen(
        [sys.executable, "-m", "eventlog", "collector", "--port", "0", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, 15)
        match = re.fullmatch(
            rf"eventlog collector on (http://127\.0\.0\.1:\d+) \(database {re.escape(str(db))}\)"
            r"; Ctrl-C stops it",
            line,
        )
        assert match, line
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)


def test_collector_command_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    """It prints its URL, stores a batch, reports it in /api/stats, and stops on SIGINT."""
    db = tmp_path / "c.sqlite"
    with collector_process(db) as (process, url):
        with httpx.Client(base_url=url, timeout=5) as http:
            response = http.post(BATCH, content=batch(internal("cli-1"), experiment("cli-2")))
            assert response.status_code == 200
            assert response.json() == {"accepted": 2, "stored": 2, "duplicates": 0}
            stats = http.get("/api/stats").json()
            assert (stats["stored"], stats["total"]) == (2, 2)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=5)  # raises TimeoutExpired if it does not stop
        assert process.returncode is not None
    assert db.exists()


def test_collector_command_exits_0_on_sigint(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) is a clean stop: exit status 0, a one-line goodbye, no traceback."""
    with collector_process(tmp_path / "c.sqlite") as (process, _):
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=5)
        assert b"Traceback" not in err, err.decode()
        assert b"eventlog collector stopped" in err
        assert process.returncode == 0


def test_collector_command_outage_answers_503_with_retry_after(tmp_path: Path) -> None:
    """``--outage 30``: the first batch gets 503 with a Retry-After of the time left."""
    with (
        collector_process(tmp_path / "c.sqlite", "--outage", "30") as (_, url),
        httpx.Client(base_url=url, timeout=5) as http,
    ):
        response = http.post(BATCH, content=batch(internal("early")))
        assert response.status_code == 503
        assert 1 <= float(response.headers["retry-after"]) <= 30
        stats = http.get("/api/stats").json()
        assert (stats["faulted"], stats["total"]) == (1, 0)
