"""The reference collector: a development server for eventlog (docs/collector.md).

An ASGI application served by hypercorn on trio, storing events in SQLite
deduplicated by ``event_id``, with fault injection (outages, error rates,
latency, required tokens) for development and integration tests. Needs the
``collector`` extra: ``pip install 'eventlog-sdk[collector]'``.

* :func:`open_collector`: serve one for the duration of an ``async with`` block.
* ``eventlog collector``: serve one from the command line.
"""

from __future__ import annotations

from eventlog.collector._app import CollectorApp as CollectorApp
from eventlog.collector._app import ControlChange as ControlChange
from eventlog.collector._app import Faults as Faults
from eventlog.collector._app import IngestStats as IngestStats
from eventlog.collector._server import Collector as Collector
from eventlog.collector._server import open_collector as open_collector
from eventlog.collector._store import Store as Store

__all__ = [
    "Collector",
    "CollectorApp",
    "ControlChange",
    "Faults",
    "IngestStats",
    "Store",
    "open_collector",
]
