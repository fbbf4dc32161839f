"""Collector ingest throughput: events per second stored through HTTP.

The collector runs in this process (hypercorn on trio, SQLite in its worker
thread); the load comes from a separate process posting pre-encoded batches
over loopback from two threads with keep-alive connections, so client and
server do not share an interpreter. The baseline, measured in the same run,
is the same rows inserted straight into a fresh store (no HTTP, no parsing):
the ratio says how much of SQLite's own speed the collector keeps.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Final

import trio

from eventlog.collector import Store, open_collector

if TYPE_CHECKING:
    from eventlog.collector._store import Row

__all__ = ["run"]

BATCHES: Final = 200
EVENTS_PER_BATCH: Final = 500
TARGET: Final = 50_000.0

_LOADER: Final = r"""
import json, sys, threading, time, httpx
url, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    bodies = [line.rstrip(b"\n") for line in f]
errors = []
def post(part):
    with httpx.Client(base_url=url, timeout=60) as client:
        for body in part:
            r = client.post("/api/event_logging/batch", content=body,
                            headers={"content-type": "application/json"})
            if r.status_code != 200:
                errors.append(r.status_code)
threads = [threading.Thread(target=post, args=(bodies[i::2],)) for i in range(2)]
start = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"elapsed": time.perf_counter() - start, "errors": len(errors)}))
"""


def _envelope(event_id: str, i: int) -> bytes:
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%s","event_name":"bench",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z","session_id":"bench-session",'
        b'"service":{"name":"bench","version":"1"},"additional_metadata":"eyJpIjoxfQ==",'
        b'"process":{"pid":1,"uptime_s":%d.5}}}' % (event_id.encode(), i)
    )


def _bodies() -> list[bytes]:
    bodies = []
    for b in range(BATCHES):
        events = [
            _envelope(uuid.uuid4().hex, b * EVENTS_PER_BATCH + i) for i in range(EVENTS_PER_BATCH)
        ]
        bodies.append(b'{"events":[' + b",".join(events) + b"]}")
    return bodies


def _baseline(bodies: list[bytes], directory: str) -> float:
    """Events/s of Store.insert on the same rows, one transaction per batch."""
    store = Store(os.path.join(directory, "baseline.sqlite"))
    rows_per_batch: list[list[Row]] = []
    for body in bodies:
        events = json.loads(body)["events"]
        rows_per_batch.append(
            [
                (
                    str(e["event_data"]["event_id"]),
                    "InternalEvent",
                    "bench",
                    "bench-session",
                    "2026-01-01T00:00:00.000Z",
                    0.0,
                    json.dumps(e).encode(),
                )
                for e in events
            ]
        )
    start = time.perf_counter()
    for rows in rows_per_batch:
        store.insert(rows)
    elapsed = time.perf_counter() - start
    store.close()
    return BATCHES * EVENTS_PER_BATCH / elapsed


async def _through_http(bodies_path: str, directory: str) -> tuple[float, int, int]:
    """(events/s, events stored, failed requests) through the real collector."""
    async with open_collector(db=os.path.join(directory, "collector.sqlite")) as collector:
        result = await trio.run_process(
            [sys.executable, "-c", _LOADER, collector.url, bodies_path], capture_stdout=True
        )
        report = json.loads(result.stdout)
        stored = await collector.count()
    return BATCHES * EVENTS_PER_BATCH / report["elapsed"], stored, int(report["errors"])


def run() -> None:
    """Measure and print the collector's ingest figures."""
    bodies = _bodies()
    with tempfile.TemporaryDirectory() as directory:
        bodies_path = os.path.join(directory, "bodies.jsonl")
        with open(bodies_path, "wb") as file:
            file.write(b"\n".join(bodies) + b"\n")
        baseline = _baseline(bodies, directory)
        rate, stored, errors = trio.run(_through_http, bodies_path, directory)
    total = BATCHES * EVENTS_PER_BATCH
    print(
        f"\ncollector ingest: {total} events in {BATCHES} batches of {EVENTS_PER_BATCH}, "
        "posted over loopback from another process (2 threads, keep-alive)"
    )
    print(f"{'':<44}{'events/s':>12}{'ratio':>10}")
    print(f"{'Store.insert straight into SQLite (floor)':<44}{baseline:>12,.0f}{1.0:>9.2f}x")
    print(f"{'through HTTP: parse, validate, store':<44}{rate:>12,.0f}{rate / baseline:>9.2f}x")
    verdict = "PASS" if rate >= TARGET and stored == total and not errors else "FAIL"
    print(
        f"target: >= {TARGET:,.0f} events/s with every event stored: {verdict} "
        f"({rate:,.0f} events/s, {stored}/{total} stored, {errors} failed requests)"
    )
