"""The collector's ASGI application: ingest, query, stats, fault control.

Routes::

    POST /api/event_logging/batch   the SDK's wire format (docs/events.md), JSON, gzip allowed
    GET  /healthz                   {"ok": true}
    GET  /api/events?name=&session_id=&limit=
    GET  /api/stats                 received, stored, duplicates, rejected, faulted, total
    GET  /api/control               the fault-injection settings in force
    POST /api/control               change them (see :class:`ControlChange`)

A malformed batch gets a 400 whose JSON names the event and the field, and
nothing of that batch is stored; a body the collector cannot parse at all
(not JSON, nested too deeply, broken gzip) is a 400 too, never a 500, and a
declared Content-Type other than JSON a 415. Fault injection applies to the
batch route only, in this order: latency, token check (401), outage (503
with ``Retry-After``), random failures.
"""

from __future__ import annotations

import math
import random
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Final, TypeVar, final

import msgspec
import trio

from eventlog._cli._types import MAX_FAULT_SECONDS
from eventlog._events import Envelope, InternalEvent

if TYPE_CHECKING:
    from eventlog.collector._store import Row, Store

__all__ = ["DEFAULT_MAX_BODY", "CollectorApp", "ControlChange", "Faults", "IngestStats"]

DEFAULT_MAX_BODY: Final = 10 * 1024 * 1024
BATCH_PATH: Final = "/api/event_logging/batch"
MAX_QUERY_LIMIT: Final = 10_000
_UTF8: Final = frozenset({"utf-8", "utf8"})
_GZIP_MAGIC: Final = b"\x1f\x8b"
# zlib copies the input left after a gzip member into ``unused_data``; fed the
# whole body at once, a body of many tiny members would cost quadratic time.
_GUNZIP_STEP: Final = 1024

T = TypeVar("T")
Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _RawBatch(msgspec.Struct):
    events: list[msgspec.Raw]


_RAW_BATCH: Final = msgspec.json.Decoder(_RawBatch)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@final
class Faults:
    """Fault injection for development and tests; change it at any time."""

    def __init__(
        self,
        *,
        outage_until: float = 0.0,
        retry_after: float | None = None,
        fail_rate: float = 0.0,
        fail_status: int = 503,
        latency: float = 0.0,
        require_token: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.outage_until = outage_until
        """Until this ``trio.current_time()``, every batch gets 503."""
        self.retry_after = retry_after
        """``Retry-After`` seconds sent with outage answers; None: the time left."""
        self.fail_rate = fail_rate
        """Probability that a batch gets ``fail_status``."""
        self.fail_status = fail_status
        """Status of the random failures."""
        self.latency = latency
        """Seconds before every batch answer."""
        self.require_token = require_token
        """When set, batches without ``Authorization: Bearer <token>`` get 401."""
        self.random = random.Random(seed)

    def outage_left(self) -> float:
        """Seconds of outage left (0 when none)."""
        return max(self.outage_until - trio.current_time(), 0.0)

    def describe(self) -> dict[str, object]:
        """The settings as JSON-ready values."""
        return {
            "outage_left": round(self.outage_left(), 3),
            "retry_after": self.retry_after,
            "fail_rate": self.fail_rate,
            "fail_status": self.fail_status,
            "latency": self.latency,
            "require_token": self.require_token is not None,
        }


class ControlChange(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/control``; every field optional."""

    outage: float | msgspec.UnsetType = msgspec.UNSET
    """Seconds of outage starting now; 0 ends an outage."""
    retry_after: float | msgspec.UnsetType | None = msgspec.UNSET
    fail_rate: float | msgspec.UnsetType = msgspec.UNSET
    fail_status: int | msgspec.UnsetType = msgspec.UNSET
    latency: float | msgspec.UnsetType = msgspec.UNSET
    require_token: str | msgspec.UnsetType | None = msgspec.UNSET

    def apply(self, faults: Faults) -> None:
        """Check every value, then change ``faults``.

        Raises:
            ValueError: naming the bad field.
        """
        for name in ("outage", "latency", "retry_after"):
            value = getattr(self, name)
            if isinstance(value, float | int) and not 0 <= value <= MAX_FAULT_SECONDS:
                raise ValueError(
                    f"{name} must be a number of seconds from 0 to {MAX_FAULT_SECONDS:g}"
                )
        if isinstance(self.fail_rate, float | int) and not 0 <= self.fail_rate <= 1:
            raise ValueError("fail_rate must be in [0, 1]")
        if isinstance(self.fail_status, int) and not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be a 4xx or 5xx status")
        if not isinstance(self.outage, msgspec.UnsetType):
            faults.outage_until = trio.current_time() + self.outage
        if not isinstance(self.retry_after, msgspec.UnsetType):
            faults.retry_after = self.retry_after
        if not isinstance(self.fail_rate, msgspec.UnsetType):
            faults.fail_rate = self.fail_rate
        if not isinstance(self.fail_status, msgspec.UnsetType):
            faults.fail_status = self.fail_status
        if not isinstance(self.latency, msgspec.UnsetType):
            faults.latency = self.latency
        if not isinstance(self.require_token, msgspec.UnsetType):
            faults.require_token = self.require_token


class IngestStats(msgspec.Struct, kw_only=True):
    """What the collector has seen since it started."""

    received: int = 0
    """Events in accepted batches, duplicates included."""
    stored: int = 0
    """Events new to the store."""
    duplicates: int = 0
    """Events whose ``event_id`` was already stored."""
    rejected: int = 0
    """Requests refused as malformed (400), too large (413) or not JSON (415)."""
    faulted: int = 0
    """Requests failed on purpose by fault injection (401, outage, random)."""
    total: int = 0
    """Events in the store, earlier runs included (filled in by ``/api/stats``)."""


def _is_count(text: str) -> bool:
    # str.isdigit alone accepts digits such as "²" that int() refuses.
    return text.isascii() and text.isdigit()


def _is_json(content_type: str) -> bool:
    """True for ``application/json``, with parameters, but no charset other than UTF-8."""
    media_type, *params = content_type.split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return False
    return True


def _retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds (RFC 9110), rounded up, at most a day."""
    if not math.isfinite(seconds):
        seconds = MAX_FAULT_SECONDS
    return str(math.ceil(min(max(seconds, 0.0), MAX_FAULT_SECONDS)))


def _as_bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray) else b""


def _json_response(status: int, payload: object) -> tuple[int, bytes]:
    return status, msgspec.json.encode(payload)


def _error(status: int, kind: str, message: str) -> tuple[int, bytes]:
    return _json_response(status, {"error": {"type": kind, "message": message}})


@final
class CollectorApp:
    """The ASGI application; one per collector."""

    def __init__(
        self,
        store: Store,
        *,
        faults: Faults | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.store = store
        self.faults = Faults() if faults is None else faults
        self.max_body = max_body
        self.stats = IngestStats()
        # One SQLite call at a time, always in a worker thread.
        self._limiter = trio.CapacityLimiter(1)

    async def run_store(self, fn: Callable[[], T]) -> T:
        """Run a store call in the worker thread, off the event loop."""
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", [])  # type: ignore[attr-defined]
        }
        extra: dict[str, str] = {}
        status, body = await self._route(scope, receive, headers, extra)
        response_headers = [(b"content-type", b"application/json")]
        response_headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(
        self, scope: Scope, receive: Receive, headers: dict[str, str], extra: dict[str, str]
    ) -> tuple[int, bytes]:
        method, path = scope.get("method"), scope.get("path")
        if path == BATCH_PATH:
            if method != "POST":
                return _error(405, "method_not_allowed", "use POST")
            return await self._ingest(receive, headers, extra)
        if path == "/healthz" and method == "GET":
            return _json_response(200, {"ok": True})
        if path == "/api/stats" and method == "GET":
            total = await self.run_store(self.store.count)
            return _json_response(200, msgspec.structs.replace(self.stats, total=total))
        if path == "/api/events" and method == "GET":
            return await self._query(_as_bytes(scope.get("query_string")))
        if path == "/api/control":
            if method == "GET":
                return _json_response(200, self.faults.describe())
            if method == "POST":
                return await self._control(receive)
            return _error(405, "method_not_allowed", "use GET or POST")
        return _error(404, "not_found", f"no route for {method} {path}")

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and _is_count(declared) and int(declared) > self.max_body:
            raise _Rejected(413, f"body of {declared} bytes exceeds {self.max_body}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Rejected(400, "request ended before its body")
            chunk = _as_bytes(message.get("body"))
            size += len(chunk)
            if size > self.max_body:
                raise _Rejected(413, f"body exceeds {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _gunzip(self, body: bytes) -> bytes:
        """Every member of a gzip body (RFC 1952), concatenated; nothing may follow the last."""
        view = memoryview(body)
        parts: list[bytes] = []
        size = position = members = 0
        while True:
            if members and not body.startswith(_GZIP_MAGIC, position):
                raise _Rejected(
                    400,
                    f"body is not valid gzip: {len(body) - position} bytes after "
                    f"member {members} are not a gzip member",
                )
            inflater = zlib.decompressobj(wbits=31)
            while not inflater.eof:
                if position == len(body):
                    raise _Rejected(400, "body is not valid gzip: truncated stream")
                step = view[position : position + _GUNZIP_STEP]
                position += len(step)
                try:
                    data = inflater.decompress(step, self.max_body + 1 - size)
                except zlib.error as exc:
                    raise _Rejected(400, f"body is not valid gzip: {exc}") from None
                size += len(data)
                if size > self.max_body or inflater.unconsumed_tail:
                    raise _Rejected(413, f"decompressed body exceeds {self.max_body} bytes")
                parts.append(data)
            members += 1
            position -= len(inflater.unused_data)
            if position == len(body):
                return b"".join(parts)

    def _parse(self, body: bytes, received_at: float) -> list[Row]:
        try:
            raw = _RAW_BATCH.decode(body)
        except msgspec.ValidationError as exc:
            raise _Rejected(400, f'body is not a batch ({{"events": [...]}}): {exc}') from None
        except msgspec.DecodeError as exc:
            raise _Rejected(400, f"body is not JSON: {exc}") from None
        except RecursionError:
            # msgspec's answer to JSON nested deeper than Python's recursion limit.
            # Each envelope below is shallower than this batch, so it cannot hit it.
            raise _Rejected(400, "body is nested too deeply to decode") from None
        rows: list[Row] = []
        for index, item in enumerate(raw.events):
            try:
                envelope = _ENVELOPE.decode(item)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise _Rejected(400, f"events[{index}]: {exc}") from None
            data = envelope.event_data
            if not data.event_id or len(data.event_id) > 128:
                raise _Rejected(
                    400,
                    f"events[{index}]: `$.event_data.event_id` must be 1 to 128 characters",
                )
            if isinstance(envelope, InternalEvent):
                if not envelope.event_data.event_name:
                    raise _Rejected(400, f"events[{index}]: `$.event_data.event_name` is empty")
                row: Row = (
                    data.event_id,
                    "InternalEvent",
                    envelope.event_data.event_name,
                    envelope.event_data.session_id,
                    envelope.event_data.client_timestamp,
                    received_at,
                    bytes(item),
                )
            else:
                row = (
                    data.event_id,
                    "ExperimentEvent",
                    envelope.event_data.experiment_id,
                    envelope.event_data.session_id,
                    envelope.event_data.timestamp,
                    received_at,
                    bytes(item),
                )
            rows.append(row)
        return rows

    def _fault(self, headers: dict[str, str], extra: dict[str, str]) -> tuple[int, bytes] | None:
        faults = self.faults
        token = faults.require_token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return _error(401, "authentication_error", "missing or wrong bearer token")
        left = faults.outage_left()
        if left > 0:
            retry = faults.retry_after if faults.retry_after is not None else left
            extra["retry-after"] = _retry_after(retry)
            return _error(503, "overloaded_error", f"injected outage: {left:.1f}s left")
        if faults.fail_rate and faults.random.random() < faults.fail_rate:
            return _error(faults.fail_status, "injected_failure", "injected random failure")
        return None

    async def _ingest(
        self, receive: Receive, headers: dict[str, str], extra: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.faults.latency:
            await trio.sleep(self.faults.latency)
        fault = self._fault(headers, extra)
        if fault is not None:
            self.stats.faulted += 1
            return fault
        try:
            body = await self._read_body(receive, headers)
            # No Content-Type at all is taken for JSON: only a declared other type is refused.
            content_type = headers.get("content-type", "application/json")
            if not _is_json(content_type):
                raise _Rejected(
                    415, f"unsupported content-type {content_type!r}: send application/json"
                )
            if headers.get("content-encoding", "identity").lower() == "gzip":
                body = self._gunzip(body)
            elif headers.get("content-encoding", "identity").lower() != "identity":
                raise _Rejected(400, f"unsupported content-encoding {headers['content-encoding']}")
            rows = self._parse(body, time.time())
        except _Rejected as exc:
            self.stats.rejected += 1
            if exc.status == 413:
                # The body may be half read: say the connection ends, or a client
                # reusing it would meet a silent disconnect.
                extra["connection"] = "close"
                return _error(413, "request_too_large", exc.message)
            if exc.status == 415:
                return _error(415, "unsupported_media_type", exc.message)
            return _error(exc.status, "invalid_request_error", exc.message)
        stored = await self.run_store(lambda: self.store.insert(rows))
        self.stats.received += len(rows)
        self.stats.stored += stored
        self.stats.duplicates += len(rows) - stored
        return _json_response(
            200, {"accepted": len(rows), "stored": stored, "duplicates": len(rows) - stored}
        )

    async def _query(self, query_string: bytes) -> tuple[int, bytes]:
        query = urllib.parse.parse_qs(query_string.decode("latin-1"))
        limit_text = query.get("limit", ["100"])[-1]
        if not _is_count(limit_text) or not 1 <= int(limit_text) <= MAX_QUERY_LIMIT:
            return _error(400, "invalid_request_error", f"limit must be 1 to {MAX_QUERY_LIMIT}")
        name = query.get("name", [None])[-1]
        session_id = query.get("session_id", [None])[-1]
        found = await self.run_store(
            lambda: self.store.events(name=name, session_id=session_id, limit=int(limit_text))
        )
        return 200, b'{"events":[' + b",".join(body for body, _ in found) + b"]}"

    async def _control(self, receive: Receive) -> tuple[int, bytes]:
        try:
            body = await self._read_body(receive, {})
            change = msgspec.json.decode(body or b"{}", type=ControlChange)
            change.apply(self.faults)
        except _Rejected as exc:
            return _error(exc.status, "invalid_request_error", exc.message)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, "invalid_request_error", str(exc))
        return _json_response(200, self.faults.describe())
