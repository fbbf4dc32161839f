"""Running the collector: :func:`open_collector` (hypercorn on trio)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, cast, final

import hypercorn.config
import hypercorn.trio
import trio

from eventlog.collector._app import DEFAULT_MAX_BODY, CollectorApp, Faults, IngestStats
from eventlog.collector._store import Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hypercorn.typing import ASGIFramework

__all__ = ["Collector", "open_collector"]

logger = logging.getLogger("eventlog.collector")


@final
class Collector:
    """A running collector, yielded by :func:`open_collector`."""

    def __init__(self, url: str, app: CollectorApp) -> None:
        self.url = url
        """Base URL to give ``eventlog.Config(base_url=...)``, e.g. ``http://127.0.0.1:8787``."""
        self.app = app
        """The ASGI application (its ``store``, ``faults`` and ``stats``)."""

    @property
    def faults(self) -> Faults:
        """Fault injection in force; change its attributes at any time."""
        return self.app.faults

    @property
    def stats(self) -> IngestStats:
        """Counts since start (``total`` is filled in by the ``/api/stats`` route)."""
        return self.app.stats

    async def event_ids(self) -> set[str]:
        """Every ``event_id`` in the store, read off the event loop."""
        return await self.app.run_store(self.app.store.event_ids)

    async def count(self) -> int:
        """Events in the store."""
        return await self.app.run_store(self.app.store.count)


@asynccontextmanager
async def open_collector(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db: str = ":memory:",
    faults: Faults | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> AsyncIterator[Collector]:
    """Serve a collector for the duration of the block (trio only).

    ``port=0`` picks a free port; read it from ``collector.url``. ``db`` is
    an SQLite path (WAL mode) or ``":memory:"``.

    Example:
        >>> import trio
        >>> from eventlog.collector import open_collector
        >>> async def main():
        ...     async with open_collector() as collector:
        ...         return collector.url.startswith("http://127.0.0.1:")
        >>> trio.run(main)
        True
    """
    store = Store(db)
    app = CollectorApp(store, faults=faults, max_body=max_body)
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logger
    config.graceful_timeout = 1.0
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                partial(
                    hypercorn.trio.serve,
                    cast("ASGIFramework", app),
                    config,
                    shutdown_trigger=stop.wait,
                )
            )
            try:
                yield Collector(binds[0], app)
            finally:
                stop.set()
    finally:
        store.close()
