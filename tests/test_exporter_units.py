"""Pure parts of the exporter: classification, Retry-After, auth checks, scrubbing."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping

import httpx
import pytest

from eventlog._exporter import (
    _MESSAGE_LIMIT,
    Outcome,
    _check_auth,
    _describe,
    _scrub,
    _secret_forms,
    classify,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (299, Outcome.SUCCESS),
        (401, Outcome.UNAUTHORIZED),
        (413, Outcome.TOO_LARGE),
        (400, Outcome.PERMANENT),
        (422, Outcome.PERMANENT),
        (403, Outcome.RETRYABLE),
        (404, Outcome.RETRYABLE),
        (408, Outcome.RETRYABLE),
        (429, Outcome.RETRYABLE),
        (500, Outcome.RETRYABLE),
        (502, Outcome.RETRYABLE),
        (503, Outcome.RETRYABLE),
        (504, Outcome.RETRYABLE),
        (301, Outcome.RETRYABLE),
    ],
)
def test_classify(status: int, outcome: Outcome) -> None:
    """Each status maps to the outcome docs/delivery.md gives it."""
    assert classify(status) is outcome


@pytest.mark.parametrize(
    ("header", "now", "expected"),
    [
        ("7", 0.0, 7.0),
        (" 2.5 ", 0.0, 2.5),
        ("-3", 0.0, 0.0),
        ("Thu, 01 Jan 1970 00:01:00 GMT", 30.0, 30.0),
        ("Thu, 01 Jan 1970 00:01:00 GMT", 90.0, 0.0),
        ("later", 0.0, None),
        ("inf", 0.0, None),
        ("", 0.0, None),
        (None, 0.0, None),
    ],
)
def test_parse_retry_after(header: str | None, now: float, expected: float | None) -> None:
    """Delta-seconds and HTTP dates are understood; anything else is ignored."""
    assert parse_retry_after(header, now=now) == expected


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {"request-id": "r1"},
            b'{"error":{"code":"bad_thing","message":"no"}}',
            "request-id=r1, status=418, code=bad_thing, no",
        ),
        (
            {"x-request-id": "r2"},
            b'{"error":"plain words"}',
            "request-id=r2, status=418, plain words",
        ),
        ({}, b'{"message":"m","code":"c"}', "status=418, code=c, m"),
        ({}, b'{"detail":"d"}', "status=418, d"),
        ({}, b"<html>gateway</html>", "status=418, 20-byte body without a JSON error message"),
        ({}, b'{"error": 5}', "status=418, 12-byte body without a JSON error message"),
        ({}, b"", "status=418"),
        ({}, b"{}", "status=418"),
        ({}, b'{"message":"' + b"x" * 1000 + b'"}', "status=418, " + "x" * 300),
        ({}, b'{"message":"line one\\nline two\\u0000"}', "status=418, line one line two"),
    ],
)
def test_error_context_from_the_response(
    headers: dict[str, str], body: bytes, expected: str
) -> None:
    """The error context names request-id, status, code and message, from the response alone."""
    response = httpx.Response(418, headers=headers, content=body)
    assert _describe(response) == expected


def test_error_context_never_quotes_a_body_that_is_not_a_json_error() -> None:
    """A plain-text body is described by its length: its text never reaches a log."""
    response = httpx.Response(401, content=b"invalid token Bearer SECRET-1")
    assert "SECRET" not in _describe(response)


def test_error_context_scrubs_echoed_credentials() -> None:
    """JSON fields and the request-id that echo an auth value are redacted."""
    secrets = _secret_forms(["Bearer SECRET-1"])
    response = httpx.Response(
        401,
        headers={"request-id": "r-SECRET-1"},
        json={"error": {"code": "SECRET-1", "message": "bad token: Bearer SECRET-1"}},
    )
    assert _describe(response, secrets) == (
        "request-id=r-[redacted], status=401, code=[redacted], bad token: [redacted]"
    )


@pytest.mark.parametrize(
    "message",
    [
        "Illegal header value b'Bearer SECRET-1'",
        "Illegal header value 'Bearer SECRET-1'",
        "token SECRET-1 expired",
        '{"authorization": "Bearer SECRET-1"}',
        "url ?auth=Bearer%20SECRET-1",
    ],
)
def test_scrub_redacts_every_spelling_of_an_auth_value(message: str) -> None:
    """The value, its credentials alone, and its repr/JSON/percent forms are all redacted."""
    scrubbed = _scrub(message, _secret_forms(["Bearer SECRET-1"]))
    assert "SECRET" not in scrubbed
    assert "[redacted]" in scrubbed


def test_scrub_handles_escapes_in_a_value() -> None:
    """A value with a quote and a backslash is redacted in its escaped spellings too."""
    value = 'Token a"b\\c'
    secrets = _secret_forms([value])
    spellings = [value, repr(value)[1:-1], repr(value.encode())[2:-1], json.dumps(value)[1:-1]]
    assert len(set(spellings)) == 3  # the repr of str and of bytes agree here
    for spelling in spellings:
        assert _scrub(f"x {spelling} y", secrets) == "x [redacted] y"


def test_scrub_bounds_and_flattens_the_message() -> None:
    """The result is one line of at most the message limit, redacted before the cut."""
    secret = "S" * 20
    message = "x" * (_MESSAGE_LIMIT - 5) + secret + "\r\nmore"
    scrubbed = _scrub(message, _secret_forms([secret]))
    assert len(scrubbed) == _MESSAGE_LIMIT
    assert "S" not in scrubbed
    assert _scrub("a\r\n\tb\x00c", ()) == "a b c"


class _Unreadable(Mapping[str, str]):
    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("SECRET")

    def __len__(self) -> int:
        return 1


async def _async_auth() -> dict[str, str]:
    return {"Authorization": "Bearer SECRET"}


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ("Bearer SECRET", "returned str instead of a mapping"),
        (True, "returned bool instead of a mapping"),
        ([("Authorization", "Bearer SECRET")], "returned list instead of a mapping"),
        ({b"Authorization": "Bearer SECRET"}, "header name that is not a string"),
        ({"Author ization": "Bearer SECRET"}, "header name that is not a valid HTTP token"),
        ({"Authorization:": "Bearer SECRET"}, "header name that is not a valid HTTP token"),
        ({"": "Bearer SECRET"}, "header name that is not a valid HTTP token"),
        ({"Authorization": 12345}, "header value that is not a string"),
        ({"Authorization": b"Bearer SECRET"}, "header value that is not a string"),
        ({"Authorization": "Bearer SECRET\n"}, "line break or another control character"),
        ({"Authorization": "Bearer SECRET\r\nX-Injected: 1"}, "line break"),
        ({"Authorization": "Bearer SECRET\x00"}, "control character"),
        ({"Authorization": "Bearer SECRET\x7f"}, "control character"),
        ({"Authorization": "Bearer SECRÉT"}, "header value that is not ASCII"),
        ({"Authorization": "Bearer SECRET "}, "leading or trailing whitespace"),
        ({"Authorization": "\tBearer SECRET"}, "leading or trailing whitespace"),
        (_Unreadable(), "could not be read (RuntimeError)"),
    ],
)
def test_check_auth_refuses_what_cannot_go_on_the_wire(result: object, problem: str) -> None:
    """Anything but str header names to single-line ASCII strings is no auth, with a reason."""
    headers, found = _check_auth(result)
    assert headers is None
    assert found is not None
    assert problem in found
    assert "SECRET" not in found


def test_check_auth_closes_a_coroutine() -> None:
    """An async auth callable's coroutine is refused and closed (no 'never awaited' warning)."""
    coroutine = _async_auth()
    headers, problem = _check_auth(coroutine)
    assert headers is None
    assert problem is not None
    assert "async def" in problem
    assert inspect.getcoroutinestate(coroutine) == "CORO_CLOSED"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, None),
        ({}, None),
        ({"Authorization": "Bearer t"}, {"Authorization": "Bearer t"}),
        ({"X-Api-Key": "k", "X-Org": "a\tb"}, {"X-Api-Key": "k", "X-Org": "a\tb"}),
        ({"Authorization": ""}, {"Authorization": ""}),
    ],
)
def test_check_auth_accepts_valid_headers(
    result: Mapping[str, str] | None, expected: dict[str, str] | None
) -> None:
    """None, an empty mapping (both: no auth) and valid headers pass without a problem."""
    assert _check_auth(result) == (expected, None)
