"""open_collector and the Collector it yields (docs/collector.md).

The fast tests open no server: a Collector over an application, and the
errors open_collector raises before it serves. Serving on a loopback port
opens a real socket: that test is marked integration (docs/contributing.md).
"""

from __future__ import annotations

import gc
import socket
from typing import TYPE_CHECKING

import httpx
import pytest

from eventlog.collector import Collector, CollectorApp, Faults, Store, open_collector
from tests.collector_support import BATCH, batch, internal

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_collector_describes_its_application() -> None:
    """faults and stats are the application's; count and event_ids read its store."""
    faults = Faults(latency=0.5)
    store = Store(":memory:")
    app = CollectorApp(store, faults=faults)
    collector = Collector("http://127.0.0.1:8787", app)
    store.insert([("a", "InternalEvent", "clicked", None, None, 1.0, b"{}")])
    app.stats.stored = 1
    assert collector.faults is faults
    assert collector.stats is app.stats
    assert await collector.count() == 1
    assert await collector.event_ids() == {"a"}
    store.close()


@pytest.mark.integration
async def test_a_collector_serves_on_a_free_loopback_port(tmp_path: Path) -> None:
    """It stores a POSTed batch; url, faults, stats, count and event_ids describe it."""
    faults = Faults(require_token="sekret")
    async with open_collector(db=str(tmp_path / "c.sqlite"), faults=faults) as collector:
        assert collector.url.startswith("http://127.0.0.1:")
        assert collector.faults is faults
        headers = {"authorization": "Bearer sekret"}
        async with httpx.AsyncClient(base_url=collector.url, headers=headers) as http:
            response = await http.post(BATCH, content=batch(internal("a"), internal("b")))
            assert response.json() == {"accepted": 2, "stored": 2, "duplicates": 0}
        assert (collector.stats.received, collector.stats.stored) == (2, 2)
        assert await collector.count() == 2
        assert await collector.event_ids() == {"a", "b"}
    assert (tmp_path / "c.sqlite").exists()


async def test_a_port_in_use_raises_oserror_and_leaves_no_socket_open(tmp_path: Path) -> None:
    """open_collector raises the bind's OSError itself (no group), its socket closed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="Address already in use"):
            async with open_collector(port=port, db=str(tmp_path / "c.sqlite")):
                pytest.fail("the collector started on a port in use")
    # An unclosed socket would warn when collected, and warnings are errors here.
    gc.collect()


async def test_a_host_name_idna_cannot_encode_raises_oserror() -> None:
    """A label over 63 characters is a name that does not resolve: OSError, as documented."""
    with pytest.raises(OSError, match="host name"):
        async with open_collector(host="\N{SNOWMAN}" * 64):
            pytest.fail("the collector started on a host name that cannot resolve")
    gc.collect()
