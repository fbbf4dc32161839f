"""Two live processes on one spool directory (docs/delivery.md), in real time.

Each child process runs a logger against a server that refuses connections,
so its events go to its own spool file, and stays alive holding the file's
lock. While both live, a logger in this process replays neither file; once
both have exited, another one delivers every event of both, exactly once.
Waits are short polls bounded by ``trio.fail_after``, never fixed sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

import eventlog
from eventlog._spool._admin import read_events
from eventlog.testing import CapturingTransport, Envelope
from tests.helpers import spool_logs, v1_file, v1_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import MakeConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
EVENTS = 25
SESSION = "shared-session"
ENVELOPE = msgspec.json.Decoder(Envelope)

CHILD = """
import sys

import msgspec
import trio

import eventlog
from eventlog._spool._admin import read_events
from eventlog.testing import Envelope

storage_dir, base_url, session_id, prefix, count = sys.argv[1:]
decoder = msgspec.json.Decoder(Envelope)


async def main() -> None:
    config = eventlog.Config(
        base_url=base_url,
        storage_dir=storage_dir,
        session_id=session_id,
        service_name="multiprocess",
        enabled=True,
        max_attempts=None,
        base_backoff=0.02,
        max_backoff=0.1,  # retries, and so spool rewrites, all the time
        export_timeout=1.0,
        shutdown_timeout=0.2,
    )
    async with eventlog.open_event_logger(config) as log:
        for i in range(int(count)):
            log.log_event(f"{prefix}{i:02d}")
        await log.flush()
        events, _ = await trio.to_thread.run_sync(read_events, log._spool.own.directory)
        ids = [decoder.decode(e.payload).event_data.event_id for e in events]
        print(" ".join(ids), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # alive until the test closes stdin


trio.run(main)
"""


def refused_url() -> str:
    """A loopback URL nothing listens on: every POST fails to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def start_child(storage_dir: Path, url: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    env.pop("DO_NOT_TRACK", None)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(storage_dir), url, SESSION, prefix, str(EVENTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )


async def read_ids(child: subprocess.Popen[bytes]) -> list[str]:
    """The event ids the child spooled, as it reports them once its flush returned."""
    assert child.stdout is not None
    stdout = child.stdout
    with trio.fail_after(TIMEOUT):
        line = await trio.to_thread.run_sync(stdout.readline)
    ids = line.decode().split()
    assert len(ids) == EVENTS
    return ids


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after TIMEOUT seconds."""
    with trio.fail_after(TIMEOUT):
        while True:
            if condition():
                return
            await trio.sleep(0.02)


def spooled_ids(directory: Path) -> list[set[str]]:
    """The event ids waiting in each spool of ``directory``."""
    return [
        {ENVELOPE.decode(e.payload).event_data.event_id for e in read_events(str(p))[0]}
        for p in spool_logs(directory)
    ]


async def test_live_processes_keep_their_spools_and_a_later_run_delivers_both_once(
    make_config: MakeConfig, spool_dir: Path
) -> None:
    """Two live children: nothing of theirs replayed; after they exit, all delivered once."""
    url = refused_url()
    children = [start_child(spool_dir, url, prefix) for prefix in ("p", "q")]
    try:
        spooled = [await read_ids(child) for child in children]
        names = spool_logs(spool_dir)
        assert len(names) == 2
        assert sorted(spooled_ids(spool_dir), key=min) == sorted(map(set, spooled), key=min)

        # A dead run's file, newer than theirs: replay reaches it last, so once the
        # canary is delivered both live files have been looked at, and left alone.
        canary = v1_file(spool_dir, "dead", "run")
        canary.write_bytes(v1_line(envelope("canary", "c" * 32)))
        future = time.time() + 3600
        os.utime(canary, (future, future))
        third = CapturingTransport()
        async with eventlog.open_event_logger(make_config(), transport=third) as log:
            await wait_for(lambda: third.event_names() == ["canary"])
            assert log.stats.replayed == 1
        assert third.event_names() == ["canary"]
        assert spool_logs(spool_dir) == names
        assert sorted(spooled_ids(spool_dir), key=min) == sorted(map(set, spooled), key=min)
        for child in children:
            assert child.poll() is None  # still alive
    finally:
        for child in children:
            child.communicate(b"", timeout=TIMEOUT)
    assert [child.returncode for child in children] == [0, 0]

    fourth = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=fourth) as log:
        await wait_for(lambda: len(fourth.event_ids()) >= 2 * EVENTS)
        assert log.stats.replayed == 2 * EVENTS
    delivered = fourth.event_ids()
    assert sorted(delivered) == sorted(spooled[0] + spooled[1])
    assert len(set(delivered)) == 2 * EVENTS
    assert sorted(fourth.event_names()) == sorted(
        [f"p{i:02d}" for i in range(EVENTS)] + [f"q{i:02d}" for i in range(EVENTS)]
    )
    assert spool_logs(spool_dir) == []


def envelope(name: str, event_id: str) -> bytes:
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (event_id.encode(), name.encode())
    )
