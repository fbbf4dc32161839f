"""Fakes for testing code that uses eventlog, the way ``trio.testing`` gives ``MockClock``.

Not imported by ``import eventlog``: production code never pulls this in.

* :class:`CapturingTransport`: a fake collector to pass as
  ``open_event_logger(transport=...)``; decodes every batch and scripts
  failures, outages, 401s, 413s and latency in virtual time.
* :class:`FrozenWallClock`: reproducible event timestamps under trio's
  autojump clock.
* The wire types (:class:`Batch`, :class:`InternalEvent`, ...) that captured
  events decode into, and :func:`metadata_of` to read an event's metadata.
* :func:`inline_disk_io`: a logger's spool does its file I/O on the event
  loop instead of worker threads, so virtual time stays exact.
* A pytest plugin (registered automatically): the ``event_transport``,
  ``event_config`` and ``event_logger`` fixtures.
"""

from __future__ import annotations

from eventlog._events import Auth as Auth
from eventlog._events import Batch as Batch
from eventlog._events import Envelope as Envelope
from eventlog._events import ExperimentEvent as ExperimentEvent
from eventlog._events import ExperimentEventData as ExperimentEventData
from eventlog._events import InternalEvent as InternalEvent
from eventlog._events import InternalEventData as InternalEventData
from eventlog._events import ProcessInfo as ProcessInfo
from eventlog._events import ServiceInfo as ServiceInfo
from eventlog.testing._clock import FrozenWallClock as FrozenWallClock
from eventlog.testing._disk import inline_disk_io as inline_disk_io
from eventlog.testing._transport import CapturedRequest as CapturedRequest
from eventlog.testing._transport import CapturingTransport as CapturingTransport
from eventlog.testing._transport import metadata_of as metadata_of

__all__ = [
    "Auth",
    "Batch",
    "CapturedRequest",
    "CapturingTransport",
    "Envelope",
    "ExperimentEvent",
    "ExperimentEventData",
    "FrozenWallClock",
    "InternalEvent",
    "InternalEventData",
    "ProcessInfo",
    "ServiceInfo",
    "inline_disk_io",
    "metadata_of",
]
