"""Running the collector: :func:`open_collector` (hypercorn on trio)."""

from __future__ import annotations

import logging
import socket
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


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` as hypercorn binds one, closed if that fails.

    Bound here rather than by hypercorn, which leaves its socket unclosed when
    ``bind`` fails, and raises the error wrapped in two exception groups.
    """
    if not host.isascii():
        # ``bind`` would raise a TypeError for a name IDNA cannot encode (a label
        # over 63 characters): a name that cannot resolve, an OSError like the others.
        try:
            host.encode("idna")
        except UnicodeError as exc:
            raise OSError(f"not a valid host name: {exc}") from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


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

    Raises:
        sqlite3.Error: ``db`` cannot be opened as an SQLite database.
        OSError: ``host`` and ``port`` cannot be bound (in use, not an
            address of this machine, a name that does not resolve).

    Examples:
        >>> import trio
        >>> from eventlog.collector import open_collector
        >>> async def main():
        ...     async with open_collector() as collector:
        ...         return collector.url.startswith("http://127.0.0.1:")
        >>> trio.run(main)
        True
    """
    store = Store(db)
    try:
        sock = _bind(host, port)
    except BaseException:
        store.close()
        raise
    app = CollectorApp(store, faults=faults, max_body=max_body)
    config = hypercorn.config.Config()
    # hypercorn takes the descriptor over, and closes it when it stops.
    config.bind = [f"fd://{sock.detach()}"]
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
