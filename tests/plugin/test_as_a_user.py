"""A test suite written as a user of eventlog would, with only the plugin's fixtures.

Copy this file's pattern into your own trio suite: request ``event_logger``
(and ``event_transport`` to look at or script the fake collector).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import eventlog

if TYPE_CHECKING:
    from eventlog.testing import CapturingTransport


def checkout(log: eventlog.EventLogger, cart_size: int) -> None:
    """The application code under test: logs one event per checkout."""
    log.log_event("checkout", {"cart_size": cart_size, "express": cart_size < 3})


async def test_checkout_is_logged(
    event_logger: eventlog.EventLogger, event_transport: CapturingTransport
) -> None:
    """The event reaches the collector with its metadata."""
    checkout(event_logger, 2)
    await event_logger.flush()
    [event] = event_transport.assert_delivered("checkout", cart_size=2, express=True)
    assert event.service is not None
    assert event.service.name == "pytest"


async def test_checkout_survives_an_outage(
    event_logger: eventlog.EventLogger,
    event_transport: CapturingTransport,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A one-minute outage in virtual time: the event arrives once the server is back."""
    event_transport.outage(0.0, 60.0, status=503)
    checkout(event_logger, 5)
    await event_logger.flush()
    assert event_transport.delivered("checkout") == []
    await trio.sleep(100)
    event_transport.assert_delivered("checkout", count=1, cart_size=5)
    assert event_logger.stats.export_failures > 0


async def test_invalid_metadata_fails_loudly_in_tests(
    event_logger: eventlog.EventLogger,
) -> None:
    """The plugin's logger is strict: a string value is a bug, reported at the call."""
    with pytest.raises(eventlog.InvalidEventError) as info:
        event_logger.log_event("checkout", {"user_email": "someone@example.com"})
    assert info.value.key == "user_email"


async def browse() -> None:
    """Application code under test that logs through the module-level function."""
    eventlog.log_event("search", {"results": 12})


async def test_module_level_calls_reach_the_fixtures_logger(
    event_logger: eventlog.EventLogger, event_transport: CapturingTransport
) -> None:
    """The test runs in its fixtures' context: the module-level log_event reaches event_logger."""
    assert eventlog.current_logger() is event_logger
    await browse()
    await event_logger.flush()
    event_transport.assert_delivered("search", results=12)
