"""The pytest plugin of eventlog (registered through the ``pytest11`` entry point).

Fixtures for a user's own test suite, under pytest-trio (``trio_mode``) or the
anyio pytest plugin:

* ``event_transport``: a fresh :class:`~eventlog.testing.CapturingTransport`,
  the fake collector; script outages and failures on it.
* ``event_config``: the :class:`~eventlog.Config` the logger is built with;
  override this fixture to change it.
* ``event_logger``: an open :class:`~eventlog.EventLogger` wired to that
  transport, with its spool in the test's ``tmp_path``, on the event loop's
  clock (so pytest-trio's ``autojump_clock`` drives it) and with a
  :class:`~eventlog.testing.FrozenWallClock` for reproducible timestamps,
  its spool doing its file I/O inline (:func:`~eventlog.testing.inline_disk_io`)
  so that virtual time stays exact.

pytest-trio (0.8 and later) runs a test in the context its fixtures set up:
inside the test, ``eventlog.current_logger()`` is ``event_logger``, and the
module-level ``eventlog.log_event(...)`` reaches it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import eventlog
from eventlog.testing._clock import FrozenWallClock
from eventlog.testing._disk import inline_disk_io
from eventlog.testing._transport import CapturingTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

__all__ = ["event_config", "event_logger", "event_transport"]


@pytest.fixture
def event_transport() -> CapturingTransport:
    """A fake collector that accepts every batch until you script otherwise."""
    return CapturingTransport()


@pytest.fixture
def event_config(tmp_path: Path) -> eventlog.Config:
    """The configuration of ``event_logger``: loopback URL, spool under ``tmp_path``.

    Strict (invalid events raise), no jitter (exact backoff schedule), one
    POST at a time (batches reach the transport in the order they were
    built), and enabled whatever ``DO_NOT_TRACK`` says.
    """
    return eventlog.Config(
        base_url="http://127.0.0.1:8787",
        storage_dir=str(tmp_path / "eventlog-spool"),
        service_name="pytest",
        backoff_jitter=0.0,
        max_concurrent_exports=1,
        strict=True,
        enabled=True,
    )


@pytest.fixture
async def event_logger(
    event_config: eventlog.Config, event_transport: CapturingTransport
) -> AsyncIterator[eventlog.EventLogger]:
    """An open logger delivering to ``event_transport``; closed after the test."""
    with inline_disk_io():
        async with eventlog.open_event_logger(
            event_config, transport=event_transport, clock=FrozenWallClock()
        ) as log:
            yield log
