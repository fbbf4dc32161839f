"""Pure parts of the exporter: response classification and Retry-After parsing."""

from __future__ import annotations

import httpx
import pytest

from eventlog._exporter import Outcome, _describe, classify, parse_retry_after


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
    """Each status maps to the outcome of design section 4."""
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
        ({}, b"<html>gateway</html>", "status=418, <html>gateway</html>"),
        ({}, b"", "status=418"),
        ({}, b"x" * 1000, "status=418, " + "x" * 300),
    ],
)
def test_error_context_from_the_response(
    headers: dict[str, str], body: bytes, expected: str
) -> None:
    """The error context names request-id, status, code and message, from the response alone."""
    response = httpx.Response(418, headers=headers, content=body)
    assert _describe(response) == expected
