"""The logger's HTTP clients: one per scheme, built once, in a worker thread (eventlog/_http.py)."""

from __future__ import annotations

import ssl
import threading

import httpx
import pytest
import trio

from eventlog._http import HttpClients

URL = "http://127.0.0.1:8787/v1/events"


def ssl_context(client: httpx.AsyncClient) -> ssl.SSLContext:
    """The SSL context of a client built on httpx's own transport."""
    context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    return context


async def test_each_scheme_gets_one_client_built_off_the_loop() -> None:
    """http and https get a client each, built once; http's trusts no CA, both verify."""
    clients = HttpClients(None, 2.5)
    try:
        http = await clients.get(URL)
        assert await clients.get("http://localhost:8787/other") is http
        https = await clients.get("https://events.example.com/v1/events")
        assert https is not http
    finally:
        await clients.aclose()
    assert http.is_closed
    assert https.is_closed
    assert http.timeout == https.timeout == httpx.Timeout(2.5)
    for client in (http, https):
        assert ssl_context(client).verify_mode == ssl.CERT_REQUIRED
        assert ssl_context(client).check_hostname
    assert ssl_context(http).cert_store_stats()["x509_ca"] == 0
    assert ssl_context(https).cert_store_stats()["x509_ca"] > 0


class SlowBuild:
    """A ``build`` for HttpClients that blocks its worker thread until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.built: list[httpx.AsyncClient] = []

    def __call__(self, https: bool, timeout: float) -> httpx.AsyncClient:
        """Build a client once released (the test's server answers 200)."""
        self.started.set()
        assert self.release.wait(5.0)
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
        self.built.append(client)
        return client


async def test_concurrent_first_posts_wait_for_the_one_build() -> None:
    """Two tasks asking for the same client at once: one build, both get its client."""
    build = SlowBuild()
    clients = HttpClients(None, 5.0, build=build)
    got: list[httpx.AsyncClient] = []

    async def get() -> None:
        got.append(await clients.get(URL))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get)
        nursery.start_soon(get)
        await trio.to_thread.run_sync(build.started.wait)
        build.release.set()
    await clients.aclose()
    assert len(build.built) == 1
    assert got == build.built * 2


async def test_a_client_built_after_close_is_closed_and_refused() -> None:
    """aclose while the worker thread builds: the new client is closed, get raises."""
    build = SlowBuild()
    clients = HttpClients(None, 5.0, build=build)
    failures: list[BaseException] = []

    async def get() -> None:
        try:
            await clients.get(URL)
        except RuntimeError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get)
        await trio.to_thread.run_sync(build.started.wait)
        await clients.aclose()
        build.release.set()
    assert [str(exc) for exc in failures] == ["the logger's HTTP clients are closed"]
    [client] = build.built
    assert client.is_closed


async def test_after_close_get_raises_and_warm_does_not() -> None:
    """Once closed, get raises RuntimeError; warm (the background build) swallows it."""
    transport = httpx.MockTransport(lambda _: httpx.Response(200))
    clients = HttpClients(transport, 5.0)
    given = await clients.get(URL)
    assert await clients.get("https://events.example.com/v1/events") is given
    await clients.aclose()
    assert clients.closed
    with pytest.raises(RuntimeError, match="closed"):
        await clients.get(URL)
    await clients.warm(URL)
