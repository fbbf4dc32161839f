"""A minimal, fast HTTP/1.1 sink for the end-to-end benchmark (``benchmarks/e2e.py``).

Run as its own process: ``python -m benchmarks.sink --port 0 --latency 0.05``
prints the port it listens on (127.0.0.1) once it is ready, then serves until
its standard input closes (so it never outlives the benchmark that started it)
or it is terminated.

- ``POST /api/event_logging/batch``: the body (gunzipped when
  ``Content-Encoding: gzip``) is decoded with msgspec, reading only each
  envelope's ``event_data.event_id``; the events are counted at once (the
  server holds them from then on), and the answer, 200 ``{}``, goes out
  ``--latency`` seconds later without holding up other connections. With
  ``--status 503`` (any status but 200) the sink plays a server in an
  outage: every batch is answered with that status, its events are not
  read, and the request is counted in ``refused``.
- ``GET /count``: JSON ``{"distinct", "received", "requests", "bad",
  "refused", "first_at", "last_new_at"}``: distinct event ids, events
  received (with duplicates), batch requests, undecodable bodies, batches
  refused with ``--status``, and the ``time.monotonic()`` of the first batch
  and of the last one that brought a new id (the system-wide monotonic
  clock on Linux, so a client process can compare it with its own).
- ``POST /reset``: forgets everything.

asyncio's raw protocol keeps the server's own cost per request small: the
benchmark checks it ingests far more than the logger under test sends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http
import os
import sys
import time
from typing import Final, final

import msgspec

__all__ = ["Counts", "main"]

BATCH_PATH: Final = b"/api/event_logging/batch"
_MAX_HEAD: Final = 64 * 1024


class _EventData(msgspec.Struct):
    event_id: str


class _Envelope(msgspec.Struct):
    event_data: _EventData


class _Batch(msgspec.Struct):
    events: list[_Envelope]


class Counts(msgspec.Struct):
    """What ``GET /count`` answers."""

    distinct: int
    received: int
    requests: int
    bad: int
    first_at: float | None
    last_new_at: float | None
    refused: int = 0


@final
class _State:
    """Everything the sink has received since the last reset."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.received = 0
        self.requests = 0
        self.bad = 0
        self.refused = 0
        self.first_at: float | None = None
        self.last_new_at: float | None = None

    def reset(self) -> None:
        """Forget everything received so far."""
        self.ids = set()
        self.received = 0
        self.requests = 0
        self.bad = 0
        self.refused = 0
        self.first_at = None
        self.last_new_at = None

    def ingest(self, body: bytes) -> bool:
        """Count the events of one batch body; False if it cannot be decoded."""
        now = time.monotonic()
        try:
            batch = _DECODER.decode(body)
        except msgspec.DecodeError:
            self.bad += 1
            return False
        ids = self.ids
        before = len(ids)
        ids.update([envelope.event_data.event_id for envelope in batch.events])
        self.received += len(batch.events)
        self.requests += 1
        if self.first_at is None:
            self.first_at = now
        if len(ids) > before:
            self.last_new_at = now
        return True

    def counts(self) -> Counts:
        return Counts(
            distinct=len(self.ids),
            received=self.received,
            requests=self.requests,
            bad=self.bad,
            refused=self.refused,
            first_at=self.first_at,
            last_new_at=self.last_new_at,
        )


_DECODER: Final = msgspec.json.Decoder(_Batch)
_ENCODER: Final = msgspec.json.Encoder()


def _response(status: bytes, body: bytes, *, close: bool) -> bytes:
    return b"HTTP/1.1 %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n%b" % (
        status,
        len(body),
        b"Connection: close\r\n" if close else b"",
        body,
    )


@final
class _Connection(asyncio.Protocol):
    """One keep-alive connection: Content-Length bodies, answers in request order."""

    def __init__(self, state: _State, latency: float, status: int = 200) -> None:
        self._state = state
        self._latency = latency
        self._refusal: bytes | None = None
        if status != 200:
            self._refusal = b"%d %b" % (status, http.HTTPStatus(status).phrase.encode())
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        # The request whose body is awaited: (method, target, gzipped, close, length).
        self._pending: tuple[bytes, bytes, bool, bool, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._pending is None:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        self._write(_response(b"431 Too Large", b"{}", close=True), close=True)
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                request = self._parse_head(head)
                if request is None:
                    return
                self._pending = request
            method, target, gzipped, close, length = self._pending
            if len(buffer) < length:
                return
            body = bytes(buffer[:length])
            del buffer[:length]
            self._pending = None
            self._handle(method, target, body, gzipped=gzipped, close=close)

    def _parse_head(self, head: bytes) -> tuple[bytes, bytes, bool, bool, int] | None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self._write(_response(b"400 Bad Request", b"{}", close=True), close=True)
            return None
        method, target, version = parts
        length = 0
        gzipped = False
        close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-encoding":
                gzipped = value.strip().lower() == b"gzip"
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                self._write(_response(b"411 Length Required", b"{}", close=True), close=True)
                return None
        return method, target, gzipped, close, length

    def _handle(
        self, method: bytes, target: bytes, body: bytes, *, gzipped: bool, close: bool
    ) -> None:
        state = self._state
        if method == b"POST" and target == BATCH_PATH and self._refusal is not None:
            state.refused += 1
            self._write(_response(self._refusal, b"{}", close=close), close)
        elif method == b"POST" and target == BATCH_PATH:
            if gzipped:
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError):
                    body = b""
            ok = state.ingest(body)
            status = b"200 OK" if ok else b"400 Bad Request"
            response = _response(status, b"{}", close=close)
            if self._latency > 0:
                # Answered later, the event loop free meanwhile: the other
                # connections' requests are read and counted in the meantime.
                asyncio.get_running_loop().call_later(self._latency, self._write, response, close)
            else:
                self._write(response, close)
        elif method == b"GET" and target == b"/count":
            self._write(_response(b"200 OK", _ENCODER.encode(state.counts()), close=close), close)
        elif method == b"POST" and target == b"/reset":
            state.reset()
            self._write(_response(b"200 OK", b"{}", close=close), close)
        else:
            self._write(_response(b"404 Not Found", b"{}", close=close), close)

    def _write(self, response: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()


async def serve(port: int, latency: float, status: int = 200) -> None:
    """Listen on 127.0.0.1:``port``, print the port, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    state = _State()
    server = await loop.create_server(
        lambda: _Connection(state, latency, status), "127.0.0.1", port, backlog=1024
    )
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)
    stop = loop.create_future()

    def stdin_readable() -> None:
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data and not stop.done():
            stop.set_result(None)

    watching = False
    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(sys.stdin.fileno(), stdin_readable)
        watching = True
    async with server:
        if watching:
            await stop
        else:
            await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """The command line: ``--port`` (0: any free port), ``--latency`` seconds, ``--status``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--status", type=int, default=200, help="the answer to every batch (503: an outage)"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.latency, args.status))


if __name__ == "__main__":
    main()
