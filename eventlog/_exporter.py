"""Sending records over HTTP: chunking, one POST, response classification (docs/delivery.md).

The exporter knows nothing of queues, spools or backoff: it sends the records
it is given and marks each one ``ACKED``, ``DROPPED`` or ``FAILED`` (or leaves
it ``PENDING`` when it was never sent), and reports what the server said. The
pipeline decides what that means for the spool and the backoff timer.

The HTTP boundary is an ``httpx.AsyncBaseTransport``. httpx leaves timeouts to
the transport and ``MockTransport`` ignores them, so every
POST runs under our own deadline on the injected clock.

Auth header values are secrets: what the auth callable returns is checked in
one place (:func:`_check_auth`, through :class:`AuthProbe`), and every text
from outside that may reach a log (an exception message, a field of an error
body) goes through one scrubber (:func:`_scrub`) that redacts them.
"""

from __future__ import annotations

import email.utils
import enum
import gzip
import inspect
import logging
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, final

import httpx
import msgspec

from eventlog._clock import Clock, deadline_scope
from eventlog._otlp import RETRYABLE as RETRYABLE_OTLP
from eventlog._otlp import encode_request, parse_partial_success
from eventlog._records import RecordState
from eventlog._version import __version__

if TYPE_CHECKING:
    from eventlog._config import Config
    from eventlog._http import HttpClients
    from eventlog._stats import Counters

__all__ = [
    "AuthProbe",
    "AuthProvider",
    "Exporter",
    "Killswitch",
    "KillswitchProbe",
    "Outcome",
    "classify",
    "parse_retry_after",
]

logger = logging.getLogger("eventlog")

AuthProvider = Callable[[], Mapping[str, str] | None]
"""Returns the auth headers to send, or None when no credentials are available.

Anything but a mapping of header names to single-line ASCII strings counts as
None (see :func:`_check_auth`).
"""
Killswitch = Callable[[], bool]
"""Returns True while no byte may go on the network."""

_BODY_HEAD: Final = b'{"events":['
_BODY_TAIL: Final = b"]}"
_MESSAGE_LIMIT: Final = 300
_REDACTED: Final = "[redacted]"
# What h11 (httpx's HTTP/1.1 stack) accepts on the wire, narrowed to ASCII,
# which is all httpx encodes a str header into.
_HEADER_NAME: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_HEADER_VALUE: Final = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_RUN: Final = re.compile(r"[\x00-\x1f\x7f]+")


class Outcome(enum.Enum):
    """What one response (or the lack of one) means for the events it carried."""

    SUCCESS = enum.auto()
    """2xx: acknowledged."""
    UNAUTHORIZED = enum.auto()
    """401: resend once without auth, if auth was sent."""
    TOO_LARGE = enum.auto()
    """413: split the chunk and resend the halves."""
    PERMANENT = enum.auto()
    """400, 422: the server will never take these events; drop and count them."""
    RETRYABLE = enum.auto()
    """Everything else: keep the events and retry after a backoff."""
    KILLED = enum.auto()
    """The killswitch was on; nothing was sent."""


def classify(status: int) -> Outcome:
    """The :class:`Outcome` of an HTTP status code.

    >>> [classify(s).name for s in (204, 401, 413, 422, 503)]
    ['SUCCESS', 'UNAUTHORIZED', 'TOO_LARGE', 'PERMANENT', 'RETRYABLE']
    """
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 401:
        return Outcome.UNAUTHORIZED
    if status == 413:
        return Outcome.TOO_LARGE
    if status in (400, 422):
        return Outcome.PERMANENT
    return Outcome.RETRYABLE


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None.

    Accepts delta-seconds and HTTP dates (relative to the wall time ``now``);
    anything else is ignored.

    >>> parse_retry_after("12", now=0.0)
    12.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
    30.0
    >>> parse_retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail | str | None = None
    message: str | None = None
    detail: str | None = None
    code: str | None = None


class _ErrorDetail(msgspec.Struct):
    type: str | None = None
    code: str | None = None
    message: str | None = None


def _check_auth(result: object) -> tuple[dict[str, str] | None, str | None]:
    """``(headers, problem)`` for what the auth callable returned.

    The one place that decides whether a result can go on the wire: a mapping
    of header names (HTTP tokens) to single-line printable ASCII strings, or
    None. Anything else gives ``(None, problem)``, where ``problem`` names
    what is wrong in words that never quote the value, since it may be a
    token. An empty mapping is no auth, without a problem.

    >>> _check_auth({"Authorization": "Bearer t"})
    ({'Authorization': 'Bearer t'}, None)
    >>> _check_auth({"Authorization": "Bearer t\\n"})
    (None, 'returned a header value with a line break or another control character')
    >>> _check_auth("Bearer t")
    (None, 'returned str instead of a mapping of header names to strings')
    """
    if result is None:
        return None, None
    if inspect.iscoroutine(result):
        # Closed, or Python warns at garbage collection that it was never awaited.
        result.close()
        return None, "returned a coroutine: it must be a plain function, not async def"
    if not isinstance(result, Mapping):
        return (
            None,
            f"returned {type(result).__name__} instead of a mapping of header names to strings",
        )
    headers: dict[str, str] = {}
    try:
        items = list(result.items())
    except Exception as exc:  # noqa: BLE001 -- a user's Mapping may fail in any way
        return None, f"returned a mapping that could not be read ({type(exc).__name__})"
    for name, value in items:
        if not isinstance(name, str):
            return None, "returned a header name that is not a string"
        if not _HEADER_NAME.fullmatch(name):
            return None, "returned a header name that is not a valid HTTP token"
        if not isinstance(value, str):
            return None, "returned a header value that is not a string"
        if _CONTROL.search(value):
            return None, "returned a header value with a line break or another control character"
        if not value.isascii():
            return None, "returned a header value that is not ASCII"
        if not _HEADER_VALUE.fullmatch(value):
            return None, "returned a header value with leading or trailing whitespace"
        headers[str(name)] = str(value)
    return headers or None, None


def _secret_forms(values: Iterable[str]) -> tuple[str, ...]:
    """Every spelling under which an auth header value may show up in a message.

    The value, and each word after its first (the credentials after an auth
    scheme such as ``Bearer``, which a server may echo alone), each as text,
    as the inside of its ``repr`` as str and as bytes (``b'Bearer …'`` in
    h11's errors), JSON-escaped and percent-encoded. Longest first, so that
    a value is replaced whole before any of its parts.
    """
    forms: set[str] = set()
    for value in values:
        words = value.split()
        for secret in (value, *words[1:]):
            if not secret:
                continue
            forms.add(secret)
            forms.add(repr(secret)[1:-1])
            forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
            forms.add(msgspec.json.encode(secret).decode()[1:-1])
            forms.add(urllib.parse.quote(secret, safe=""))
    return tuple(sorted(forms, key=len, reverse=True))


def _scrub(message: str, secrets: Sequence[str]) -> str:
    """``message`` made fit for a log line: secrets redacted, one line, bounded.

    Every text that reaches a log from outside (an exception message of the
    HTTP stack, a field of the server's error body, a response header) goes
    through here. ``secrets`` comes from :func:`_secret_forms`.

    >>> _scrub("Illegal header value b'Bearer t0k'\\n", _secret_forms(["Bearer t0k"]))
    "Illegal header value b'[redacted]'"
    """
    for secret in secrets:
        message = message.replace(secret, _REDACTED)
    # Redacted before the cut, so that no partial secret survives at the edge.
    message = _CONTROL_RUN.sub(" ", message).strip()
    return message[:_MESSAGE_LIMIT]


def _exception_message(exc: BaseException, secrets: Sequence[str]) -> str:
    """``ErrorClass: scrubbed message`` of a transport exception."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 -- a broken __str__ must not break delivery
        text = ""
    text = _scrub(text, secrets)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe(response: httpx.Response, secrets: Sequence[str] = ()) -> str:
    """``request-id=…, status=…, code=…, message`` from an error response.

    Built from the response only, never from the request. Of the body only
    the fields of a JSON error object are used, each passed through
    :func:`_scrub`: a body that is not one (an HTML error page, a proxy's
    text echoing the request) is described by its length alone.
    """
    parts: list[str] = []
    request_id = response.headers.get("request-id") or response.headers.get("x-request-id")
    if request_id:
        parts.append(f"request-id={_scrub(request_id, secrets)}")
    parts.append(f"status={response.status_code}")
    code: str | None = None
    message: str | None = None
    content = response.content
    try:
        body = msgspec.json.decode(content, type=_ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        if content.strip():
            parts.append(f"{len(content)}-byte body without a JSON error message")
        return ", ".join(parts)
    if isinstance(body.error, _ErrorDetail):
        code = body.error.code or body.error.type
        message = body.error.message
    elif isinstance(body.error, str):
        message = body.error
    code = code or body.code
    message = message or body.message or body.detail
    if code:
        parts.append(f"code={_scrub(code, secrets)}")
    if message:
        parts.append(_scrub(message, secrets))
    return ", ".join(parts)


def classify_otlp(status: int) -> Outcome:
    """The :class:`Outcome` of a status under the OTLP/HTTP rules.

    Only 429, 502, 503 and 504 are retryable; every other 4xx and 5xx is
    final (the 401 fallback and the 413 split still apply).

    >>> [classify_otlp(s).name for s in (200, 401, 413, 429, 500, 503, 404)]
    ['SUCCESS', 'UNAUTHORIZED', 'TOO_LARGE', 'RETRYABLE', 'PERMANENT', 'RETRYABLE', 'PERMANENT']
    """
    outcome = classify(status)
    if outcome is Outcome.RETRYABLE and status not in RETRYABLE_OTLP:
        return Outcome.PERMANENT
    return outcome


@final
class _Reply:
    """What one POST (with its 401 fallback) came to."""

    __slots__ = ("context", "outcome", "rejected", "retry_after")

    def __init__(
        self,
        outcome: Outcome,
        context: str = "",
        retry_after: float | None = None,
        rejected: int = 0,
    ):
        self.outcome = outcome
        self.context = context
        self.retry_after = retry_after
        self.rejected = rejected


@final
class KillswitchProbe:
    """Calls the user's killswitch; an exception counts as killed (logged once)."""

    __slots__ = ("_killswitch", "_logged")

    def __init__(self, killswitch: Killswitch | None) -> None:
        self._killswitch = killswitch
        self._logged = False

    @property
    def configured(self) -> bool:
        """True if a killswitch was given."""
        return self._killswitch is not None

    def __call__(self) -> bool:
        """True while nothing may be sent."""
        if self._killswitch is None:
            return False
        try:
            return bool(self._killswitch())
        except Exception as exc:  # noqa: BLE001 -- a user callback must not break delivery
            if not self._logged:
                self._logged = True
                # Only the type: the message might carry a secret.
                logger.warning("eventlog: the killswitch callback raised %s", type(exc).__name__)
            return True


@final
class AuthProbe:
    """Calls the user's auth callable; what cannot be sent counts as no auth.

    Shared by the exporters of one logger (a rebuild keeps it), so each kind
    of problem is logged once per logger, not on every POST.
    """

    __slots__ = ("_auth", "_logged")

    def __init__(self, auth: AuthProvider | None) -> None:
        self._auth = auth
        self._logged: set[str] = set()

    @property
    def configured(self) -> bool:
        """True if an auth callable was given."""
        return self._auth is not None

    def __call__(self) -> dict[str, str] | None:
        """The headers to send, checked by :func:`_check_auth`, or None."""
        if self._auth is None:
            return None
        try:
            result: object = self._auth()
        except Exception as exc:  # noqa: BLE001 -- no auth is the conservative answer
            # Only the exception type: its message might carry a token.
            self._problem(f"raised {type(exc).__name__}")
            return None
        headers, problem = _check_auth(result)
        if problem is not None:
            self._problem(problem)
        return headers

    def _problem(self, problem: str) -> None:
        if problem not in self._logged:
            self._logged.add(problem)
            logger.warning("eventlog: the auth callback %s; sending without auth", problem)


@final
class ExportReport:
    """What one export learnt about the server, beyond each record's state."""

    __slots__ = ("context", "failed_posts", "killed", "rejected", "retry_after", "server_answered")

    def __init__(self) -> None:
        self.failed_posts = 0
        self.rejected = 0
        """Acknowledged events the server said it rejected (OTLP partial success)."""
        self.killed = False
        self.server_answered = False
        self.retry_after: float | None = None
        self.context = ""


@final
class Exporter:
    """Posts records for one logger."""

    def __init__(
        self,
        config: Config,
        clients: HttpClients,
        *,
        clock: Clock,
        counters: Counters,
        auth: AuthProbe,
        killswitch: KillswitchProbe,
    ) -> None:
        self._config = config
        self._clients = clients
        self._clock = clock
        self._counters = counters
        self._auth = None if config.skip_auth or not auth.configured else auth
        self.is_killed = killswitch
        self._url = config.endpoint
        self._otlp = config.protocol == "otlp"
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": (
                f"eventlog-python/{__version__} {config.service_name}/{config.service_version}"
            ),
            "x-service-name": config.service_name,
        }
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"

    async def send_chunk(
        self,
        payloads: Sequence[bytes],
        states: list[RecordState],
        report: ExportReport,
        start: int = 0,
        end: int = -1,
    ) -> bool:
        """Post ``payloads[start:end]`` (one POST, plus a 401's resend and a 413's halves).

        Sets ``states[i]`` of each event to ``ACKED``, ``DROPPED`` or
        ``FAILED`` (or leaves it ``PENDING`` when it was never sent) and
        returns False if the chunk failed: the caller then sends nothing more
        until its backoff.
        """
        if end < 0:
            end = len(payloads)
        count = end - start
        reply = await self._post(payloads[start:end])
        outcome = reply.outcome
        if outcome is Outcome.SUCCESS:
            report.server_answered = True
            states[start:end] = [RecordState.ACKED] * count
            if reply.rejected:
                rejected = min(reply.rejected, count)
                report.rejected += rejected
                self._counters.dropped_permanent += rejected
                logger.debug("server rejected %d of %d events: %s", rejected, count, reply.context)
            logger.debug("exported %d events", count)
            return True
        if outcome is Outcome.KILLED:
            report.killed = True
            report.context = "killswitch active"
            return False
        if outcome is Outcome.TOO_LARGE:
            report.server_answered = True
            if count == 1:
                states[start] = RecordState.DROPPED
                self._counters.dropped_permanent += 1
                logger.debug("event dropped: too large to send alone (%s)", reply.context)
                return True
            half = start + count // 2
            logger.debug("413 for %d events; sending two halves", count)
            return await self.send_chunk(
                payloads, states, report, start, half
            ) and await self.send_chunk(payloads, states, report, half, end)
        if outcome is Outcome.UNAUTHORIZED and self._otlp:
            # OTLP: a 401 that persisted without auth is final, like other 4xx.
            outcome = Outcome.PERMANENT
        if outcome is Outcome.PERMANENT:
            report.server_answered = True
            states[start:end] = [RecordState.DROPPED] * count
            self._counters.dropped_permanent += count
            logger.debug("server refused %d events for good: %s", count, reply.context)
            return True
        # RETRYABLE, and a 401 that persisted without auth.
        states[start:end] = [RecordState.FAILED] * count
        report.failed_posts += 1
        report.context = reply.context
        if reply.retry_after is not None:
            report.retry_after = reply.retry_after
        self._counters.export_failures += 1
        logger.debug("POST of %d events failed: %s", count, reply.context)
        return False

    async def _post(self, payloads: Sequence[bytes]) -> _Reply:
        """One POST of ``payloads``, resent once without auth after a 401."""
        if self.is_killed():
            return _Reply(Outcome.KILLED)
        if self._otlp:
            body = encode_request(
                payloads,
                service_name=self._config.service_name,
                service_version=self._config.service_version,
                now=self._clock.wall_time(),
            )
        else:
            body = b"".join((_BODY_HEAD, b",".join(payloads), _BODY_TAIL))
        if self._config.gzip:
            body = gzip.compress(body, compresslevel=6)
        auth = None if self._auth is None else self._auth()
        # The resend without auth is scrubbed too: its answer may still echo them.
        secrets = _secret_forms(auth.values()) if auth else ()
        reply = await self._post_once(body, auth, secrets)
        if reply.outcome is Outcome.UNAUTHORIZED and auth:
            logger.debug("401 with auth (%s); resending once without auth", reply.context)
            if self.is_killed():
                return _Reply(Outcome.KILLED)
            reply = await self._post_once(body, None, secrets)
        return reply

    async def _post_once(
        self, body: bytes, auth: Mapping[str, str] | None, secrets: Sequence[str]
    ) -> _Reply:
        headers = self._headers if not auth else {**self._headers, **auth}
        timeout = self._config.export_timeout
        response: httpx.Response | None = None
        async with deadline_scope(self._clock, timeout) as scope:
            try:
                client = await self._clients.get(self._url)
                response = await client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                # h11 quotes a header it refuses, value included: scrubbed.
                return _Reply(Outcome.RETRYABLE, _exception_message(exc, secrets))
            except Exception as exc:  # noqa: BLE001 -- a faulty transport is an outage, not a crash
                message = _exception_message(exc, secrets)
                return _Reply(Outcome.RETRYABLE, f"transport error {message}")
        if response is None or scope.cancelled_caught:
            return _Reply(Outcome.RETRYABLE, f"timeout after {timeout:g}s")
        outcome = (classify_otlp if self._otlp else classify)(response.status_code)
        if outcome is Outcome.SUCCESS:
            if self._otlp:
                rejected, message = parse_partial_success(response.content)
                return _Reply(outcome, _scrub(message, secrets), rejected=rejected)
            return _Reply(outcome)
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), now=self._clock.wall_time()
            )
        return _Reply(outcome, _describe(response, secrets), retry_after)
