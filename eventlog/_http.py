"""The HTTP clients of a logger, built off the event loop (docs/configuration.md).

Building httpx's default transport costs tens of milliseconds of CPU: the
first one imports httpcore and its HTTP/1.1 and HTTP/2 stacks, and every one
loads the CA bundle into a fresh SSL context. Done in ``open_event_logger``
itself, that would stall the application's event loop before its block even
starts. So a client is built in a worker thread, the first time a POST needs
it (``open_event_logger`` asks for the first one in the background at once),
and every POST awaits it.

One client per scheme. An ``http://`` URL is only ever loopback (``Config``
refuses the rest), so its client gets a bare SSL context that loads no CA
bundle: it never speaks TLS, and if it ever had to, an empty trust store
refuses every certificate, never accepts one unverified. ``https://`` gets
httpx's default context, with verification on. A transport passed to
``open_event_logger`` is used as is, for every URL.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.to_thread
import httpx

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HttpClients"]

_CLOSE_TIMEOUT: Final = 5.0


def _build(https: bool, timeout: float) -> httpx.AsyncClient:
    """A client with httpx's own transport; run in a worker thread."""
    # Verification stays on either way; an http client's context trusts nothing.
    verify: ssl.SSLContext | bool = True if https else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return httpx.AsyncClient(verify=verify, timeout=timeout)


@final
class HttpClients:
    """Hands out the client for a URL, building it once, off the loop."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        *,
        build: Callable[[bool, float], httpx.AsyncClient] = _build,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._build = build
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._building: dict[str, anyio.Event] = {}
        self._closed = False

    async def get(self, url: str) -> httpx.AsyncClient:
        """The client for ``url``; the first call for its scheme builds it.

        Raises:
            RuntimeError: after :meth:`aclose` (the logger has shut down).
        """
        key = "given" if self._transport is not None else url.partition(":")[0]
        while True:
            self._check_open()
            client = self._clients.get(key)
            if client is not None:
                return client
            building = self._building.get(key)
            if building is None:
                break
            await building.wait()
        done = self._building[key] = anyio.Event()
        try:
            if self._transport is not None:
                client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
            else:
                client = await anyio.to_thread.run_sync(self._build, key == "https", self._timeout)
            if self.closed:  # while the thread worked
                with anyio.CancelScope(shield=True):
                    await client.aclose()
                self._check_open()
            self._clients[key] = client
            return client
        finally:
            del self._building[key]
            done.set()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the logger's HTTP clients are closed")

    async def warm(self, url: str) -> None:
        """Build the client for ``url`` now, in the background; never raises."""
        # The first POST that needs it tries again, and says why if it fails.
        with contextlib.suppress(Exception):
            await self.get(url)

    async def aclose(self) -> None:
        """Close every client built; later :meth:`get` calls raise."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
            for client in clients:
                await client.aclose()
