"""eventlog: reliable first-party product-analytics events for trio and asyncio programs.

Open one logger for the lifetime of your program, emit events from anywhere
without blocking, and let the logger deliver them in batches, keep what could
not be delivered on disk, retry with backoff and drain before exit::

    async with eventlog.open_event_logger(config) as log:
        log.log_event("app_started", {"cold_start_ms": 41.5})

Synchronous programs run the same logger on a thread of its own::

    with eventlog.start_event_logger(config) as log:
        log.log_event("app_started", {"cold_start_ms": 41.5})
"""

# Layout (docs/contributing.md). This module is the public API; everything
# else is private.
#
# The SDK (needs anyio, httpx and msgspec only; ruff keeps trio and rich out):
#   _config, _context, _remote_config   what the application configures
#   _logger, _registry, _sync           the logger, its process-wide fallback,
#                                       the synchronous facade
#   _transform, _events, _otlp          events to wire bytes (docs/events.md)
#   _pipeline, _exporter, _http,        delivery: the batch processor, one POST,
#     _backoff, _records                the HTTP clients, the backoff, record states
#   _spool/                             the on-disk segmented log (docs/delivery.md)
#   _stats, _sampling, _environment,    counters, sampling, detected facts,
#     _clock, _threads, _exceptions     time, thread wake-ups, errors
#   _seams                              what the SDK's own tests replace
# Around it:
#   _cli/                               the command line, presentation only
#   collector/                          the reference collector (hypercorn on trio)
#   testing/                            fakes and a pytest plugin for users' tests

from __future__ import annotations

from eventlog._clock import Clock as Clock
from eventlog._clock import SystemClock as SystemClock
from eventlog._config import Config as Config
from eventlog._context import EventContext as EventContext
from eventlog._exceptions import ConfigError as ConfigError
from eventlog._exceptions import EventlogError as EventlogError
from eventlog._exceptions import ExporterShutdownError as ExporterShutdownError
from eventlog._exceptions import InvalidEventError as InvalidEventError
from eventlog._logger import EventLogger as EventLogger
from eventlog._logger import current_logger as current_logger
from eventlog._logger import log_event as log_event
from eventlog._logger import open_event_logger as open_event_logger
from eventlog._remote_config import RemoteConfig as RemoteConfig
from eventlog._stats import Stats as Stats
from eventlog._sync import SyncEventLogger as SyncEventLogger
from eventlog._sync import start_event_logger as start_event_logger
from eventlog._version import __version__ as __version__

__all__ = [
    "Clock",
    "Config",
    "ConfigError",
    "EventContext",
    "EventLogger",
    "EventlogError",
    "ExporterShutdownError",
    "InvalidEventError",
    "RemoteConfig",
    "Stats",
    "SyncEventLogger",
    "SystemClock",
    "__version__",
    "current_logger",
    "log_event",
    "open_event_logger",
    "start_event_logger",
]


def _fixup_module_metadata() -> None:
    # trio's trick: show eventlog.EventLogger, not eventlog._logger.EventLogger, in
    # reprs and docs. Not for msgspec Structs: msgspec resolves their annotations
    # in the namespace of __module__, which must stay the defining module.
    import msgspec

    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            continue
        if getattr(obj, "__module__", "").startswith("eventlog._"):
            obj.__module__ = __name__


_fixup_module_metadata()
del _fixup_module_metadata


def _import_anyio_backends() -> None:
    # anyio imports the backend of the running event loop on its first use,
    # about 25 ms of CPU: in open_event_logger, that would stall the
    # application's loop before its block starts. Pay it here, at import time,
    # for the event loops the program has already imported (never importing
    # one it does not use: an asyncio program must not load trio).
    import contextlib
    import importlib
    import sys

    for library in ("trio", "asyncio"):
        # If anyio ever moves it, it is simply loaded on first use, as before.
        with contextlib.suppress(ImportError):
            if library in sys.modules:
                importlib.import_module(f"anyio._backends._{library}")


_import_anyio_backends()
del _import_anyio_backends
