"""The auth callable's contract, and secrets kept out of logs, the spool and exceptions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import h11
import httpx
import pytest
import trio

import eventlog
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    import trio.testing

    from tests.conftest import MakeConfig


async def _async_auth() -> dict[str, str]:
    return {"Authorization": "Bearer SECRET"}


def _raises() -> dict[str, str]:
    raise RuntimeError("token=SECRET")


BAD_AUTH: dict[str, Callable[[], object]] = {
    "async def": _async_auth,
    "a string": lambda: "Bearer SECRET",
    "True": lambda: True,
    "a value with LF": lambda: {"Authorization": "Bearer SECRET\n"},
    "a value with CRLF": lambda: {"Authorization": "Bearer SECRET\r\nX-Evil: 1"},
    "a non-string value": lambda: {"Authorization": 12345},
    "a non-string name": lambda: {("Authorization",): "Bearer SECRET"},
    "an exception": _raises,
}


def _secret_free(caplog: pytest.LogCaptureFixture, spool_dir: Path | None = None) -> None:
    """Assert that "SECRET" is in no log record (message or traceback) and no spool file."""
    formatter = logging.Formatter()
    for record in caplog.records:
        assert "SECRET" not in record.getMessage()
        assert "SECRET" not in (record.exc_text or "")
        if record.exc_info:
            assert "SECRET" not in formatter.formatException(record.exc_info)
    assert "SECRET" not in caplog.text
    if spool_dir is not None and spool_dir.exists():
        for path in spool_dir.rglob("*"):
            if path.is_file():
                assert b"SECRET" not in path.read_bytes()


# -- item 1: an auth result that cannot be sent counts as no auth -----------------


@pytest.mark.parametrize("auth", BAD_AUTH.values(), ids=BAD_AUTH.keys())
async def test_bad_auth_result_sends_without_auth_and_warns_once(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    auth: Callable[[], Mapping[str, str] | None],
) -> None:
    """Every POST goes out without auth; one WARNING names the problem, never the value."""
    caplog.set_level(logging.DEBUG)
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=1, batch_delay=0), transport=transport, auth=auth
    ) as log:
        for name in ("a", "b", "c"):
            log.log_event(name)
        await log.flush()
        assert log.stats.exported == 3
    assert transport.event_names() == ["a", "b", "c"]
    assert all("authorization" not in r.headers for r in transport.requests)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "the auth callback" in warnings[0].getMessage()
    assert "sending without auth" in warnings[0].getMessage()
    _secret_free(caplog)


@pytest.mark.parametrize("auth", BAD_AUTH.values(), ids=BAD_AUTH.keys())
async def test_bad_auth_never_wraps_the_blocks_exception(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    auth: Callable[[], Mapping[str, str] | None],
) -> None:
    """With a bad auth result at the final export, the block's ValueError comes out as itself."""
    transport = CapturingTransport()
    with pytest.raises(ValueError, match="the block's own") as info:
        async with eventlog.open_event_logger(make_config(), transport=transport, auth=auth) as log:
            log.log_event("a")
            raise ValueError("the block's own")
    assert not isinstance(info.value, BaseExceptionGroup)
    assert transport.event_names() == ["a"]


async def test_one_warning_per_kind_of_auth_problem(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two kinds of problem, each met on several POSTs: two WARNINGs, good results still sent."""
    results: list[object] = [
        "SECRET",
        {"Authorization": "SECRET\n"},
        "SECRET",
        {"Authorization": "Bearer ok"},
        {"Authorization": "SECRET\n"},
    ]
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=1, batch_delay=0),
        transport=transport,
        auth=lambda: results.pop(0),  # type: ignore[arg-type,return-value]
    ) as log:
        for i in range(5):
            log.log_event(f"e{i}")
    assert [r.headers.get("authorization") for r in transport.requests] == [
        None,
        None,
        None,
        "Bearer ok",
        None,
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "instead of a mapping" in warnings[0]
    assert "line break" in warnings[1]
    _secret_free(caplog)


# -- item 11: secrets never reach a log, an exception or the spool ----------------


def _h11_checked(
    handler: Callable[[httpx.Request], Awaitable[httpx.Response]],
) -> httpx.MockTransport:
    """A transport that refuses what h11 (httpx's HTTP/1.1 stack) refuses, as httpcore does."""

    async def checked(request: httpx.Request) -> httpx.Response:
        try:
            h11.Request(method="POST", target="/", headers=request.headers.raw)
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        return await handler(request)

    return httpx.MockTransport(checked)


async def _accept(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


async def test_a_token_with_a_newline_never_reaches_the_http_stack_or_the_logs(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """auth giving "Bearer SECRET\\n": no 'Illegal header value' error, events sent without auth."""
    caplog.set_level(logging.DEBUG)
    async with eventlog.open_event_logger(
        make_config(),
        transport=_h11_checked(_accept),
        auth=lambda: {"Authorization": "Bearer SECRET\n"},
    ) as log:
        log.log_event("a")
        await log.flush()
        assert (log.stats.exported, log.stats.export_failures) == (1, 0)
    assert "Illegal header value" not in caplog.text
    _secret_free(caplog, spool_dir)


@pytest.mark.parametrize(
    "error",
    [
        httpx.LocalProtocolError("Illegal header value b'Bearer SECRET-b'"),
        httpx.ConnectError("refused for Bearer SECRET-b"),
        httpx.ReadError("peer said: token SECRET-b\nand more"),
        RuntimeError("transport broke on 'Bearer SECRET-b'"),
    ],
    ids=["h11 repr", "connect", "credentials alone", "not httpx"],
)
async def test_transport_error_messages_are_scrubbed(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    """A transport exception quoting the auth value is logged by class, the value redacted."""
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with eventlog.open_event_logger(
        make_config(),
        transport=httpx.MockTransport(handler),
        auth=lambda: {"Authorization": "Bearer SECRET-b"},
    ) as log:
        log.log_event("a")
        await log.flush()
        assert log.stats.export_failures == 1
    assert log.stats.spooled == 1
    assert any(spool_dir.iterdir())
    assert f"{type(error).__name__}: " in caplog.text
    assert "[redacted]" in caplog.text
    _secret_free(caplog, spool_dir)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"error": {"message": "bad token Bearer SECRET-c"}}),
        httpx.Response(401, json={"detail": "bad token SECRET-c", "code": "SECRET-c"}),
        httpx.Response(401, text="bad token: Bearer SECRET-c"),
        httpx.Response(401, text="<html>SECRET-c</html>", headers={"request-id": "SECRET-c"}),
    ],
    ids=["json message", "json detail and code", "plain text", "html and request-id"],
)
async def test_response_echoing_the_token_is_not_logged(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    response: httpx.Response,
) -> None:
    """A 401 whose body or request-id echoes the token: status logged, token never."""
    caplog.set_level(logging.DEBUG)
    transport = httpx.MockTransport(lambda request: response)
    async with eventlog.open_event_logger(
        make_config(), transport=transport, auth=lambda: {"Authorization": "Bearer SECRET-c"}
    ) as log:
        log.log_event("a")
        await log.flush()
        assert log.stats.export_failures == 1
    assert log.stats.spooled == 1
    assert any(spool_dir.iterdir())
    assert "status=401" in caplog.text
    _secret_free(caplog, spool_dir)


async def test_otlp_partial_success_message_is_scrubbed(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An OTLP partial-success errorMessage echoing the token is redacted in the logs."""
    caplog.set_level(logging.DEBUG)
    body = {"partialSuccess": {"rejectedLogRecords": 1, "errorMessage": "token SECRET-d"}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"),
        transport=transport,
        auth=lambda: {"Authorization": "Bearer SECRET-d"},
    ) as log:
        log.log_event("a")
        await log.flush()
        assert log.stats.dropped_permanent == 1
    assert "token [redacted]" in caplog.text
    _secret_free(caplog)


async def test_auth_warning_survives_a_pipeline_rebuild(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A remote config change rebuilds the exporter; the same auth problem is not logged again."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport, auth=_raises) as log:
        log.log_event("a")
        await log.flush()
        assert await log.apply_remote_config(eventlog.RemoteConfig(max_attempts=5))
        log.log_event("b")
        await log.flush()
    assert transport.event_names() == ["a", "b"]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
