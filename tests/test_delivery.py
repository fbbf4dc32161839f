"""Delivery end to end under trio's autojump clock: batching, export, backoff, spool, killswitch."""

from __future__ import annotations

import itertools
import logging
import random
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport, FrozenWallClock, InternalEvent

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 9) for a, b in itertools.pairwise(times)]


def internal(event: object) -> InternalEvent:
    assert isinstance(event, InternalEvent)
    return event


# -- batch processor (section 9, items 1, 2) ------------------------------------


async def test_scheduled_export_after_the_delay(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Queued events go out once scheduled_delay has passed, not before."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(9.9)
        assert transport.requests == []
        await trio.sleep(0.2)
        assert transport.event_names() == ["a"]
        assert transport.attempt_times == [10.0]
        assert log.stats.exported == 1


async def test_scheduled_delay_default_comes_from_otel_env(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_LOGS_EXPORT_INTERVAL (ms) sets the batch interval."""
    monkeypatch.setenv("OTEL_LOGS_EXPORT_INTERVAL", "3000")
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(5)
    assert transport.attempt_times == [3.0]


async def test_full_batch_exports_at_once(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """max_export_batch_size queued events trigger an export without waiting."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=3), transport=transport
    ) as log:
        await trio.sleep(1)
        for i in range(3):
            log.log_event(f"e{i}")
        await trio.sleep(0.01)
        assert transport.attempt_times == [1.0]
        assert transport.event_names() == ["e0", "e1", "e2"]


async def test_only_the_loggers_own_events_reach_its_exporter(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Two loggers side by side: each transport sees only its own logger's events."""
    t1, t2 = CapturingTransport(), CapturingTransport()
    async with (
        eventlog.open_event_logger(make_config(), transport=t1) as log1,
        eventlog.open_event_logger(make_config(), transport=t2) as log2,
    ):
        log1.log_event("one")
        log2.log_event("two")
    assert t1.event_names() == ["one"]
    assert t2.event_names() == ["two"]


async def test_queue_full_drops_and_counts(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Past max_queue_size, log_event drops the event and counts it."""
    transport = CapturingTransport()
    config = make_config(max_queue_size=5, max_export_batch_size=5)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(8):
            log.log_event(f"e{i}")
        assert log.stats.dropped_queue_full == 3
        assert log.stats.queue_depth == 5
        assert log.stats.emitted == 5
    assert transport.event_names() == [f"e{i}" for i in range(5)]


# -- chunking and short-circuit (item 4) ------------------------------------------


async def test_export_is_chunked_and_live_chunks_are_never_paced(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """5 events with batch size 2 are three POSTs, all at once: batch_delay paces drains only."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=2, batch_delay=0.25)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(5):
            log.log_event(f"e{i}")
        await log.flush()
    assert [len(r.events) for r in transport.requests] == [2, 2, 1]
    assert gaps(transport.attempt_times) == [0.0, 0.0]
    assert transport.event_names() == [f"e{i}" for i in range(5)]


async def test_first_failed_chunk_short_circuits_the_rest(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After a failed chunk no later chunk is posted; all of them go to the spool."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=2, batch_delay=0.0, shutdown_timeout=0.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        transport.fail_next(1, status=500)
        for i in range(6):
            log.log_event(f"e{i}")
        await log.flush()
        assert [r.status for r in transport.requests] == [500]
        stats = log.stats
        assert stats.spooled == 6
        assert stats.export_failures == 1
        assert stats.exported == 0
        assert stats.spool_bytes > 0


# -- responses (section 4, item 11) -----------------------------------------------


async def test_401_with_auth_is_resent_once_without_auth(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 401 to an authenticated POST is retried at once without the auth headers."""
    transport = CapturingTransport(reject_auth=True)
    calls: list[int] = []

    def auth() -> dict[str, str]:
        calls.append(1)
        return {"Authorization": "Bearer s3cret"}

    async with eventlog.open_event_logger(make_config(), transport=transport, auth=auth) as log:
        log.log_event("a")
        await log.flush()
        assert log.stats.export_failures == 0
    assert [r.status for r in transport.requests] == [401, 200]
    assert transport.requests[0].time == transport.requests[1].time
    assert "authorization" in transport.requests[0].headers
    assert "authorization" not in transport.requests[1].headers
    assert transport.event_names() == ["a"]


async def test_auth_headers_sent_when_available(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """auth() headers ride on the POST; None means no auth."""
    transport = CapturingTransport()
    tokens: list[dict[str, str] | None] = [{"Authorization": "Bearer t"}, None]
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=1, batch_delay=0),
        transport=transport,
        auth=lambda: tokens.pop(0),
    ) as log:
        log.log_event("a")
        log.log_event("b")
        await log.flush()
    assert [r.headers.get("authorization") for r in transport.requests] == ["Bearer t", None]


async def test_skip_auth_never_calls_auth(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """skip_auth=True sends without credentials and never asks for them."""
    transport = CapturingTransport()

    def auth() -> dict[str, str]:
        raise AssertionError("auth must not be called")

    async with eventlog.open_event_logger(
        make_config(skip_auth=True), transport=transport, auth=auth
    ) as log:
        log.log_event("a")
    assert "authorization" not in transport.requests[0].headers


async def test_auth_callback_error_means_no_auth(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception from auth() sends without auth and is logged once, without its message."""
    transport = CapturingTransport()

    def auth() -> dict[str, str]:
        raise RuntimeError("token=abc123")

    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=1, batch_delay=0), transport=transport, auth=auth
    ) as log:
        log.log_event("a")
        log.log_event("b")
    assert transport.event_names() == ["a", "b"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "abc123" not in caplog.text


async def test_401_without_auth_is_retryable(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 401 that persists after dropping auth is a retryable failure."""
    transport = CapturingTransport()
    transport.fail_next(1, status=401)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(11)
    assert [r.status for r in transport.requests] == [401, 200]
    assert gaps(transport.attempt_times) == [0.5]


async def test_413_splits_the_chunk_and_sends_the_halves(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 413 is answered by posting each half; halves that still fit are delivered."""
    transport = CapturingTransport(max_events=2)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for i in range(5):
            log.log_event(f"e{i}")
        await log.flush()
        assert log.stats.exported == 5
        assert log.stats.export_failures == 0
    assert [(len(r.events), r.status) for r in transport.requests] == [
        (5, 413),
        (2, 200),
        (3, 413),
        (1, 200),
        (2, 200),
    ]
    assert sorted(transport.event_names()) == [f"e{i}" for i in range(5)]


async def test_413_for_a_single_event_drops_it(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """An event too large to send alone is dropped and counted as permanent."""
    transport = CapturingTransport(max_events=0)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("huge")
        await log.flush()
        assert log.stats.dropped_permanent == 1
        assert log.stats.spooled == 0
    assert len(transport.requests) == 1


@pytest.mark.parametrize("status", [400, 422])
async def test_permanent_rejections_are_dropped_not_retried(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    """400 and 422 drop the chunk, count it, log the server's message, and do not back off."""
    caplog.set_level(logging.DEBUG, logger="eventlog")
    transport = CapturingTransport()
    transport.fail_next(1, status=status)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("bad")
        log.log_event("bad2")
        await log.flush()
        log.log_event("good")
        await log.flush()
        stats = log.stats
    assert stats.dropped_permanent == 2
    assert stats.export_failures == 0
    assert stats.spooled == 0
    assert transport.event_names() == ["good"]
    assert gaps(transport.attempt_times) == [0.0]
    assert f"status={status}" in caplog.text
    assert "scripted failure" in caplog.text


@pytest.mark.parametrize("status", [403, 404, 408, 429, 500, 502, 503, 504])
async def test_other_statuses_are_retried(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, status: int
) -> None:
    """Everything else is retryable: the event is spooled and delivered by the retry."""
    transport = CapturingTransport()
    transport.fail_next(1, status=status)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(11)
        assert log.stats.exported == 1
        assert log.stats.spooled == 1
        assert log.stats.spool_events == 0
    assert [r.status for r in transport.requests] == [status, 200]


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_a_floor(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, status: int
) -> None:
    """Retry-After on 429/503 pushes the next attempt back, capped by max_retry_after only."""
    transport = CapturingTransport()
    transport.fail_next(1, status=status, retry_after="7")
    transport.fail_next(1, status=status, retry_after="3600")
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(400)
    assert gaps(transport.attempt_times) == [7.0, 300.0]
    assert transport.event_names() == ["a"]


async def test_retry_after_is_honoured_above_max_backoff(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With max_backoff=0.05, a 503 with Retry-After: 2 is followed by a POST 2 s later."""
    transport = CapturingTransport()
    transport.fail_next(1, status=503, retry_after="2")
    config = make_config(base_backoff=0.05, max_backoff=0.05)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("a")
        await trio.sleep(15)
    assert transport.attempt_times == [10.0, 12.0]
    assert [r.status for r in transport.requests] == [503, 200]


async def test_a_day_of_retry_after_waits_max_retry_after(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Retry-After: 86400 with max_retry_after=300 retries 300 s later, not a day later."""
    transport = CapturingTransport()
    transport.fail_next(1, status=429, retry_after="86400")
    async with eventlog.open_event_logger(
        make_config(max_retry_after=300.0), transport=transport
    ) as log:
        log.log_event("a")
        await trio.sleep(400)
    assert transport.attempt_times == [10.0, 310.0]
    assert transport.event_names() == ["a"]


async def test_retry_after_http_date_uses_the_wall_clock(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """An HTTP-date Retry-After is measured against the injected wall clock."""
    clock = FrozenWallClock(epoch=0.0)
    transport = CapturingTransport()
    # At loop time 10 the wall clock reads 10; the date is 22: wait 12.
    transport.fail_next(1, status=503, retry_after="Thu, 01 Jan 1970 00:00:22 GMT")
    async with eventlog.open_event_logger(make_config(), transport=transport, clock=clock) as log:
        log.log_event("a")
        await trio.sleep(30)
    assert gaps(transport.attempt_times) == [12.0]


async def test_retry_after_ignored_on_other_statuses(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Retry-After on a 500 does not change the schedule."""
    transport = CapturingTransport()
    transport.fail_next(1, status=500, retry_after="20")
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await trio.sleep(15)
    assert gaps(transport.attempt_times) == [0.5]


async def test_export_timeout_is_enforced_on_the_clock(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A server slower than export_timeout fails the POST at the deadline."""
    transport = CapturingTransport(latency=30.0)
    config = make_config(export_timeout=2.0, shutdown_timeout=0.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("a")
        await trio.sleep(12.5)
        assert transport.attempt_times == [10.0]
        stats = log.stats
        assert stats.export_failures == 1
        assert stats.spooled == 1


async def test_connection_errors_are_retryable(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A transport error (connection refused) is a failure that backs off and retries."""
    import httpx

    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            raise RuntimeError("a buggy transport")
        return httpx.Response(200)

    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(handler)
    ) as log:
        log.log_event("a")
        await trio.sleep(20)
        assert log.stats.export_failures == 2
        assert log.stats.exported == 1
    assert gaps(calls) == [0.5, 2.0]


async def test_error_context_is_logged_without_auth(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failures log request-id, status, code and message; never an auth header."""
    import httpx

    caplog.set_level(logging.DEBUG, logger="eventlog")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            529,
            headers={"request-id": "req_42"},
            json={"error": {"type": "overloaded_error", "message": "try later"}},
        )

    async with eventlog.open_event_logger(
        make_config(max_attempts=1),
        transport=httpx.MockTransport(handler),
        auth=lambda: {"Authorization": "Bearer s3cret-token"},
    ) as log:
        log.log_event("a")
        await log.flush()
    assert "request-id=req_42, status=529, code=overloaded_error, try later" in caplog.text
    assert "s3cret" not in caplog.text
    assert "Bearer" not in caplog.text


# -- backoff (items 6, 7, 8) --------------------------------------------------------


async def test_ten_minute_outage_loses_nothing_with_few_posts(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 10-minute 503 outage, max_attempts=None: every event once, <= 30 POSTs, exact delays."""
    transport = CapturingTransport()
    transport.outage(0.0, 600.0, status=503)
    config = make_config(max_attempts=None)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for _ in range(120):  # one event every 5 s through the outage
            log.log_event("tick")
            await trio.sleep(5)
        await trio.sleep(60)
        stats = log.stats
    failed = [r.time for r in transport.requests if not r.delivered]
    assert len(transport.requests) <= 30
    expected = [min(0.5 * n * n, 30.0) for n in range(1, len(failed))]
    assert gaps(failed) == expected
    ids = transport.event_ids()
    assert len(ids) == len(set(ids)) == 120
    assert stats.exported == 120
    assert stats.dropped_max_attempts == 0
    assert stats.spool_bytes == 0


async def test_jittered_delays_stay_within_bounds(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With backoff_jitter=0.2 each delay lies within 20% of the exact schedule."""
    transport = CapturingTransport()
    transport.outage(0.0, 300.0)
    config = make_config(max_attempts=None, backoff_jitter=0.2)
    async with eventlog.open_event_logger(
        config, transport=transport, random=random.Random(1)
    ) as log:
        log.log_event("a")
        await trio.sleep(400)
    failed = [r.time for r in transport.requests if not r.delivered]
    deltas = gaps(failed)
    assert len(deltas) >= 8
    exact = [min(0.5 * n * n, 30.0) for n in range(1, len(deltas) + 1)]
    assert all(e * 0.8 <= d <= e * 1.2 for d, e in zip(deltas, exact, strict=True))
    assert deltas != exact
    assert transport.event_names() == ["a"]


async def test_no_post_while_the_backoff_timer_is_pending(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Exports during a pending backoff go to the spool; the timer's retry is the only probe."""
    transport = CapturingTransport()
    transport.fail_next(1)
    config = make_config(base_backoff=20.0, max_backoff=30.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("first")
        await log.flush()  # t=0: fails, retry at t=20
        for i in range(3):
            await trio.sleep(1)
            log.log_event(f"later{i}")
            await log.flush()
        assert len(transport.requests) == 1
        assert log.stats.spooled == 4
        await trio.sleep(20)
        assert transport.attempt_times == [0.0, 20.0]
        assert transport.event_names() == ["first", "later0", "later1", "later2"]
        assert (log.stats.exported, log.stats.spool_events) == (4, 0)


async def test_success_resets_backoff_and_drains_the_spool(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After a success the failure count restarts at 1 and the spool drains at once."""
    transport = CapturingTransport()
    transport.fail_next(3)
    config = make_config(max_export_batch_size=2, batch_delay=0.1)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(4):
            log.log_event(f"e{i}")
        await log.flush()  # t=0 fails; retries at 0.5 (fails), 2.5 (fails), 7.0 succeeds
        await trio.sleep(10)
        assert transport.event_names() == ["e0", "e1", "e2", "e3"]
        transport.fail_next(1)
        log.log_event("x")
        await log.flush()
        await trio.sleep(5)
    times = transport.attempt_times
    assert gaps(times[:5]) == [0.5, 2.0, 4.5, 0.1]
    # the next failure starts the schedule over at base_backoff
    assert round(times[-1] - times[-2], 9) == 0.5


async def test_events_dropped_after_max_attempts(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With max_attempts=8 an event whose 8th POST fails is dropped and counted."""
    transport = CapturingTransport()
    transport.outage(0.0, 10_000.0)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("doomed")
        await log.flush()
        await trio.sleep(200)
        stats = log.stats
    assert len(transport.requests) == 8
    assert stats.dropped_max_attempts == 1
    assert stats.export_failures == 8
    assert stats.spool_bytes == 0


async def test_attempts_are_counted_per_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """An event that joined the spool later is not dropped with the older ones."""
    transport = CapturingTransport()
    transport.outage(0.0, 10_000.0)
    config = make_config(max_attempts=3)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("old")
        await log.flush()  # attempt 1 at t=0
        await trio.sleep(1)  # attempt 2 at 0.5
        log.log_event("new")  # spooled unsent at the next export: 0 attempts
        await log.flush()
        await trio.sleep(2)  # attempt 3 at 2.5: "old" dropped, "new" has 1
        assert log.stats.dropped_max_attempts == 1
        await trio.sleep(20)  # attempts at 7.0 and 15.0: "new" dropped
        assert log.stats.dropped_max_attempts == 2
    assert len(transport.requests) == 5


# -- killswitch (item 10) ----------------------------------------------------------


async def test_killswitch_means_zero_traffic_and_no_attempts(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """While killed: no request at all, log_event drops, spooled events keep their attempts."""
    transport = CapturingTransport()
    killed = False
    config = make_config(max_attempts=1, max_export_batch_size=2, batch_delay=0)
    async with eventlog.open_event_logger(
        config, transport=transport, killswitch=lambda: killed
    ) as log:
        log.log_event("before")
        killed = True
        await log.flush()
        log.log_event("during")
        await trio.sleep(600)
        assert transport.requests == []
        stats = log.stats
        assert stats.dropped_killed == 1
        assert stats.spooled == 1
        assert stats.dropped_max_attempts == 0
        killed = False
        await trio.sleep(31)
    assert transport.event_names() == ["before"]


async def test_killswitch_error_counts_as_killed(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A killswitch that raises is treated as active."""
    transport = CapturingTransport()

    def killswitch() -> bool:
        raise RuntimeError("flag store down")

    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0), transport=transport, killswitch=killswitch
    ) as log:
        log.log_event("a")
        assert log.stats.dropped_killed == 1
    assert transport.requests == []


async def test_killswitch_probed_before_the_auth_fallback(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """If the killswitch turns on after a 401, the unauthenticated resend is not made."""
    transport = CapturingTransport(reject_auth=True)
    probes = iter([False, False, True])

    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0),
        transport=transport,
        killswitch=lambda: next(probes, True),
        auth=lambda: {"Authorization": "x"},
    ) as log:
        log.log_event("a")
        await log.flush()
        assert log.stats.spooled == 1
    assert [r.status for r in transport.requests] == [401]


# -- flush -------------------------------------------------------------------------


async def test_flush_returns_after_export_and_never_raises_on_failure(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """flush() waits for the export; a failing server just means spooled events."""
    transport = CapturingTransport(status_code=500)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await log.flush()
        assert trio.current_time() == 0.0
        assert log.stats.spooled == 1
        await log.flush()  # nothing queued: returns at once
        assert trio.current_time() == 0.0


@pytest.mark.parametrize("write_ahead", [False, True], ids=["live", "write-ahead"])
@pytest.mark.parametrize("count", [180, 300])
async def test_flush_waits_for_a_chunk_still_being_encoded(
    count: int, write_ahead: bool, make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Chunks are encoded a slice at a time: flush returns only once every event is exported."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=100, write_ahead=write_ahead)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(count):
            log.log_event(f"e{i}")
        await log.flush()
        assert log.stats.exported == count
        assert len(transport.events()) == count


# -- drain interplay ---------------------------------------------------------------


async def test_new_events_go_out_during_a_long_drain(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A full batch logged while the spool drains is exported between drain chunks."""
    transport = CapturingTransport()
    transport.fail_next(1)
    config = make_config(max_export_batch_size=2, batch_delay=1.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(10):
            log.log_event(f"old{i}")
        await log.flush()  # t=0: first chunk fails; all 10 spooled; retry at 0.5
        await trio.sleep(1.0)  # the drain sent its first chunk at 0.5; the next is due at 1.5
        log.log_event("new0")
        log.log_event("new1")  # a full batch, exported before the next drain chunk
        await trio.sleep(10)
    names = transport.event_names()
    assert names == ["old0", "old1", "new0", "new1", *[f"old{i}" for i in range(2, 10)]]
    assert (log.stats.exported, log.stats.spooled, log.stats.spool_events) == (12, 10, 0)


async def test_a_failure_during_a_drain_keeps_the_backoff(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A live chunk failing between drain chunks stops the drain; the backoff stays scheduled."""
    transport = CapturingTransport()
    transport.fail_next(1)
    config = make_config(
        max_export_batch_size=2, batch_delay=1.0, base_backoff=4.0, max_backoff=30.0
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(6):
            log.log_event(f"old{i}")
        await log.flush()  # t=0 fails: retry at 4
        await trio.sleep(4.5)  # the probe, the first drain chunk, succeeds at 4.0
        transport.fail_next(1)
        log.log_event("new0")
        log.log_event("new1")  # a full batch, posted at once at 4.5 (never paced): fails
        await trio.sleep(2)
        # The next drain chunk was due at 5.0: the failure at 4.5 holds it back.
        assert [r.status for r in transport.requests] == [503, 200, 503]
        assert transport.attempt_times == [0.0, 4.0, 4.5]
        await trio.sleep(20)
    # The probe's success reset the count: one failure since, so base_backoff.
    assert transport.attempt_times[3] == 8.5
    assert sorted(transport.event_names()) == sorted(
        [f"old{i}" for i in range(6)] + ["new0", "new1"]
    )


async def test_ten_minute_outage_with_default_max_attempts_drops_exactly_the_exhausted(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With max_attempts=8, the dropped events are exactly those with 8 failed POSTs."""
    transport = CapturingTransport()
    transport.outage(0.0, 600.0, status=503)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for i in range(120):  # one event every 5 s through the outage
            log.log_event("tick", {"i": i})
            await trio.sleep(5)
        await trio.sleep(60)
        stats = log.stats
    failed_posts: dict[str, int] = {}
    for request in transport.requests:
        if not request.delivered:
            for envelope in request.events:
                event_id = envelope.event_data.event_id
                failed_posts[event_id] = failed_posts.get(event_id, 0) + 1
    exhausted = {event_id for event_id, n in failed_posts.items() if n >= 8}
    delivered = set(transport.event_ids())
    assert exhausted
    assert max(failed_posts.values()) == 8
    assert exhausted.isdisjoint(delivered)
    assert stats.dropped_max_attempts == len(exhausted)
    assert len(delivered) == len(transport.event_ids()) == 120 - len(exhausted)
    assert stats.exported + stats.dropped_max_attempts == stats.emitted == 120


# -- chunks with nothing valid in them ---------------------------------------------


async def test_a_chunk_of_only_invalid_events_is_counted_and_never_posted(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Every event invalid: flush returns at once, each counted in dropped_invalid, no POST."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for _ in range(3):
            log.log_event("")
        await log.flush()
        assert trio.current_time() == 0.0
        stats = log.stats
    assert (stats.emitted, stats.dropped_invalid, stats.exported) == (3, 3, 0)
    assert transport.requests == []


async def test_invalid_events_logged_during_a_backoff_are_counted_not_spooled(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """During a backoff the live lane spools its chunks; one with nothing valid spools nothing."""
    transport = CapturingTransport()
    transport.fail_next(1)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await log.flush()  # fails: a backoff is pending
        log.log_event("")
        await log.flush()
        stats = log.stats
        assert (stats.spooled, stats.dropped_invalid) == (1, 1)
        assert len(transport.requests) == 1
        await trio.sleep(10)
    assert transport.event_names() == ["a"]
    assert log.stats.exported == 1
