"""A fake collector as an ``httpx`` transport: captures, decodes and scripts answers."""

from __future__ import annotations

import base64
import gzip
from collections import deque
from typing import TYPE_CHECKING, final

import httpx
import msgspec

from eventlog._clock import Clock, SystemClock, sleep
from eventlog._events import Batch, Envelope, InternalEvent, InternalEventData

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CapturedRequest", "CapturingTransport", "metadata_of"]

_BATCH_DECODER = msgspec.json.Decoder(Batch)


class CapturedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request the fake server received, and what it answered."""

    time: float
    """When it arrived, on the transport's clock (virtual under trio's MockClock)."""
    url: str
    """The full URL posted to."""
    headers: dict[str, str]
    """Request headers, lower-cased names."""
    events: list[Envelope]
    """The decoded batch; empty if the body was not a valid batch."""
    status: int
    """The status code the fake answered with."""

    @property
    def delivered(self) -> bool:
        """True if the server acknowledged this request (2xx)."""
        return 200 <= self.status < 300


class _Failure(msgspec.Struct, frozen=True):
    status: int
    retry_after: str | None


class _Outage(msgspec.Struct, frozen=True):
    start: float
    end: float
    status: int
    retry_after: str | None


@final
class CapturingTransport(httpx.AsyncBaseTransport):
    """A fake collector: accepts batches, decodes them, and fails as scripted.

    Pass it as ``open_event_logger(transport=...)``. Every request is kept in
    :attr:`requests` (time, headers, decoded events, status answered);
    :meth:`events` and :meth:`event_names` list what was acknowledged.

    Scripting, all in the transport's clock time (virtual under trio's
    autojump clock):

    * :meth:`fail_next`: the next ``count`` requests get ``status``;
    * :meth:`outage`: every request in ``[start, end)`` gets ``status``;
    * ``reject_auth=True``: 401 whenever an ``Authorization`` header is sent;
    * ``latency``: seconds each answer takes (longer than ``export_timeout``
      makes every POST time out);
    * ``max_events``: 413 for a batch with more events than that.

    :attr:`max_in_flight` tells how many requests it ever answered at once.

    Examples:
        >>> from eventlog.testing import CapturingTransport
        >>> transport = CapturingTransport()
        >>> transport.outage(0.0, 600.0, status=503)  # a ten-minute outage from the start
        >>> transport.fail_next(2, status=500)        # then two more failures
    """

    def __init__(
        self,
        *,
        status_code: int = 200,
        latency: float = 0.0,
        reject_auth: bool = False,
        max_events: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.requests: list[CapturedRequest] = []
        """Every request received, in order."""
        self.status_code = status_code
        """The answer when nothing scripted applies."""
        self.latency = latency
        """Seconds before each answer."""
        self.reject_auth = reject_auth
        """Answer 401 to requests that carry an ``Authorization`` header."""
        self.max_events = max_events
        """Answer 413 to batches with more events than this."""
        self.in_flight = 0
        """Requests being answered right now (their latency not over yet)."""
        self.max_in_flight = 0
        """The most requests ever answered at once: how concurrent the logger was."""
        self._clock: Clock = SystemClock() if clock is None else clock
        self._failures: deque[_Failure] = deque()
        self._outages: list[_Outage] = []

    def fail_next(self, count: int, *, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``)."""
        self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    def outage(
        self, start: float, end: float, *, status: int = 503, retry_after: str | None = None
    ) -> None:
        """Answer ``status`` to every request arriving in ``[start, end)`` of clock time."""
        self._outages.append(_Outage(start, end, status, retry_after))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request and answer it as scripted."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        now = self._clock.monotonic()
        body = await request.aread()
        if request.headers.get("content-encoding") == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                body = b""
        try:
            events = _BATCH_DECODER.decode(body).events
        except (msgspec.DecodeError, msgspec.ValidationError):
            events = []
        status, headers = self._answer(now, request.headers, len(events))
        self.requests.append(
            CapturedRequest(
                time=now,
                url=str(request.url),
                headers={k.lower(): v for k, v in request.headers.items()},
                events=events,
                status=status,
            )
        )
        if self.latency:
            await sleep(self._clock, self.latency)
        body_out = b"{}" if 200 <= status < 300 else b'{"error":{"message":"scripted failure"}}'
        return httpx.Response(status, headers=headers, content=body_out)

    def _answer(
        self, now: float, headers: Mapping[str, str], n_events: int
    ) -> tuple[int, dict[str, str]]:
        out: dict[str, str] = {
            "content-type": "application/json",
            "request-id": f"req-{len(self.requests) + 1}",
        }
        for outage in self._outages:
            if outage.start <= now < outage.end:
                if outage.retry_after is not None:
                    out["retry-after"] = outage.retry_after
                return outage.status, out
        if self._failures:
            failure = self._failures.popleft()
            if failure.retry_after is not None:
                out["retry-after"] = failure.retry_after
            return failure.status, out
        if self.reject_auth and "authorization" in headers:
            return 401, out
        if self.max_events is not None and n_events > self.max_events:
            return 413, out
        return self.status_code, out

    @property
    def attempt_times(self) -> list[float]:
        """Arrival time of every request, delivered or not."""
        return [r.time for r in self.requests]

    def events(self) -> list[Envelope]:
        """Every acknowledged event, in arrival order (duplicates included)."""
        return [e for r in self.requests if r.delivered for e in r.events]

    def event_names(self) -> list[str]:
        """``event_name`` of every acknowledged ``InternalEvent``, in arrival order."""
        return [e.event_data.event_name for e in self.events() if isinstance(e, InternalEvent)]

    def event_ids(self) -> list[str]:
        """``event_id`` of every acknowledged event, in arrival order."""
        return [e.event_data.event_id for e in self.events()]

    def delivered(self, name: str | None = None, **metadata: object) -> list[InternalEventData]:
        """Acknowledged ``InternalEvent`` data, filtered by name and metadata.

        ``metadata`` matches the decoded ``additional_metadata`` of an event
        (every given key with an equal value); duplicates are kept, in
        arrival order.

        Examples:
            >>> transport = CapturingTransport()
            >>> transport.delivered("app_started", first_run=True)
            []
        """
        found: list[InternalEventData] = []
        for envelope in self.events():
            if not isinstance(envelope, InternalEvent):
                continue
            data = envelope.event_data
            if name is not None and data.event_name != name:
                continue
            if metadata:
                decoded = metadata_of(data)
                if any(decoded.get(k, _MISSING) != v for k, v in metadata.items()):
                    continue
            found.append(data)
        return found

    def assert_delivered(
        self, name: str, *, count: int | None = None, **metadata: object
    ) -> list[InternalEventData]:
        """Assert that events named ``name`` (with ``metadata``) were acknowledged.

        ``count`` asks for exactly that many; otherwise at least one. Returns
        them. The failure message lists what was delivered instead.
        """
        found = self.delivered(name, **metadata)
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "at least one" if count is None else f"exactly {count}"
            seen = [(d.event_name, metadata_of(d)) for d in self.delivered()]
            raise AssertionError(
                f"expected {wanted} delivered {name!r} event(s) with {metadata!r}, "
                f"found {len(found)}; delivered: {seen!r}"
            )
        return found


_MISSING = object()


def metadata_of(data: InternalEventData) -> dict[str, object]:
    """The decoded ``additional_metadata`` of an event (``{}`` when absent)."""
    if data.additional_metadata is None:
        return {}
    decoded: dict[str, object] = msgspec.json.decode(base64.b64decode(data.additional_metadata))
    return decoded
