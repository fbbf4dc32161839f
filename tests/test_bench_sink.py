"""The end-to-end benchmark's HTTP sink (benchmarks/sink.py) and its scenario processes.

The unit tests feed the sink's protocol bytes through a fake transport; the
integration tests run the sink and one scenario each as real processes, so a
change in the SDK that breaks the benchmark shows here rather than in a
silent row of ``nox -s bench``.
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import tempfile

import msgspec
import pytest

from benchmarks.e2e import Result, Sink, _earlier_payloads
from benchmarks.sink import Counts, _Connection, _State
from benchmarks.spool import write_earlier_log


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _connect(status: int = 200) -> tuple[_State, _Connection, _FakeTransport]:
    state = _State()
    connection = _Connection(state, 0.0, status)
    transport = _FakeTransport()
    connection.connection_made(transport)
    return state, connection, transport


def _request(method: str, target: str, body: bytes = b"", headers: str = "") -> bytes:
    return (
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def _batch(*ids: str) -> bytes:
    return msgspec.json.encode(
        {
            "events": [
                {"event_type": "InternalEvent", "event_data": {"event_id": i, "n": 1}} for i in ids
            ]
        }
    )


def test_sink_counts_distinct_ids_and_received_events() -> None:
    """Two batches sharing an id: distinct ids, events received and requests are counted apart."""
    state, connection, transport = _connect()
    post = "/api/event_logging/batch"
    connection.data_received(_request("POST", post, _batch("a", "b")))
    connection.data_received(_request("POST", post, _batch("b", "c")))
    assert (len(state.ids), state.received, state.requests) == (3, 4, 2)
    assert bytes(transport.written).count(b"HTTP/1.1 200 OK") == 2
    assert state.last_new_at is not None


def test_sink_reads_a_request_split_across_reads() -> None:
    """A request arriving a byte at a time, then two in one read, are each answered once."""
    state, connection, transport = _connect()
    post = "/api/event_logging/batch"
    data = _request("POST", post, _batch("a"))
    for i in range(len(data)):
        connection.data_received(data[i : i + 1])
    connection.data_received(_request("POST", post, _batch("b")) + _request("GET", "/count"))
    assert len(state.ids) == 2
    assert bytes(transport.written).count(b"HTTP/1.1 200 OK") == 3


def test_sink_decompresses_gzip_bodies() -> None:
    """A body sent with Content-Encoding: gzip is counted like a plain one."""
    state, connection, _ = _connect()
    body = gzip.compress(_batch("a", "b"))
    connection.data_received(
        _request("POST", "/api/event_logging/batch", body, "Content-Encoding: gzip\r\n")
    )
    assert len(state.ids) == 2


def test_sink_count_and_reset_endpoints() -> None:
    """GET /count answers the counts as JSON; POST /reset forgets them."""
    state, connection, transport = _connect()
    connection.data_received(_request("POST", "/api/event_logging/batch", _batch("a")))
    transport.written.clear()
    connection.data_received(_request("GET", "/count"))
    counts = msgspec.json.decode(bytes(transport.written).split(b"\r\n\r\n", 1)[1], type=Counts)
    assert (counts.distinct, counts.received, counts.requests, counts.bad) == (1, 1, 1, 0)
    connection.data_received(_request("POST", "/reset"))
    assert (len(state.ids), state.received, state.requests, state.last_new_at) == (0, 0, 0, None)


def test_sink_refuses_undecodable_bodies_and_unknown_paths() -> None:
    """An undecodable batch is a 400 counted in ``bad``; an unknown path a 404."""
    state, connection, transport = _connect()
    connection.data_received(_request("POST", "/api/event_logging/batch", b"not json"))
    connection.data_received(_request("GET", "/nowhere"))
    written = bytes(transport.written)
    assert b"HTTP/1.1 400 Bad Request" in written
    assert b"HTTP/1.1 404 Not Found" in written
    assert (state.bad, len(state.ids)) == (1, 0)


def test_sink_in_an_outage_refuses_batches_without_counting_their_events() -> None:
    """With a status other than 200, every batch gets it, counted in ``refused``, ids unread."""
    _, connection, transport = _connect(503)
    connection.data_received(_request("POST", "/api/event_logging/batch", _batch("a", "b")))
    connection.data_received(_request("GET", "/count"))
    written = bytes(transport.written)
    assert written.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    counts = msgspec.json.decode(written.rsplit(b"\r\n\r\n", 1)[1], type=Counts)
    assert (counts.distinct, counts.received, counts.requests, counts.refused) == (0, 0, 0, 1)


def test_sink_closes_the_connection_when_asked() -> None:
    """``Connection: close`` closes the connection after the answer."""
    _, connection, transport = _connect()
    connection.data_received(_request("GET", "/count", headers="Connection: close\r\n"))
    assert transport.closed
    assert b"Connection: close" in bytes(transport.written)


def _scenario(sink: Sink, kind: str, *extra: str) -> Result:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e", "--child", kind, "--sink", sink.url, *extra],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return msgspec.json.decode(completed.stdout.splitlines()[-1], type=Result)


@pytest.mark.integration
def test_bench_scenarios_deliver_through_the_real_sink() -> None:
    """A small SDK burst and floor burst reach the sink process, and the stage breakdown runs."""
    sink = Sink(0.0)
    try:
        sdk = _scenario(sink, "burst-sdk", "--events", "600", "--no-ticker")
        assert sdk.error is None, sdk.error
        assert (sdk.delivered, sdk.stats["exported"]) == (600, 600)
        assert sdk.deliver_seconds is not None
        assert sdk.peak_rss > 0
        floor = _scenario(sink, "burst-floor", "--events", "600")
        assert (floor.error, floor.delivered, floor.at_exit) == (None, 600, 600)
        assert floor.ticker is not None
        stages = _scenario(sink, "stages", "--events", "400")
        assert stages.stages is not None
        assert stages.stages.error is None, stages.stages.error
        assert stages.stages.transform is not None
    finally:
        sink.close()


@pytest.mark.integration
def test_bench_spool_scenarios_run_through_the_real_sink() -> None:
    """An outage, a replay of an earlier log and a cheap start run as the benchmark runs them."""
    sink, down = Sink(0.0), Sink(0.0, 503)
    try:
        outage = _scenario(down, "spool-outage", "--rate", "2000", "--seconds", "1", "--no-ticker")
        assert outage.error is None, outage.error
        assert outage.stats["spooled"] > 0
        assert outage.refused >= 1
        assert outage.file_ops["segment_writes"] > 0
        with tempfile.TemporaryDirectory() as storage_dir:
            write_earlier_log(storage_dir, _earlier_payloads("earlier-", 600))
            replay = _scenario(
                sink,
                "spool-replay",
                *("--storage-dir", storage_dir, "--earlier", "600"),
                *("--rate", "1000", "--seconds", "20", "--no-ticker"),
            )
        assert replay.error is None, replay.error
        assert (replay.stats["taken_over"], replay.stats["replayed"]) == (600, 600)
        assert replay.replay_seconds is not None
        assert replay.delivered == 600 + replay.events
        start = _scenario(sink, "cheap-start", "--seconds", "0.2")
        assert start.error is None, start.error
        assert start.open_seconds is not None
        assert start.ticker is not None
        assert start.delivered == 1
    finally:
        sink.close()
        down.close()
