"""The synchronous facade across a fork and at interpreter exit, in real processes.

Each test runs a short Python script in a subprocess (the test process itself
is never forked): a ``SyncEventLogger`` against the real collector on
loopback, or against a port that refuses connections so that the events end
in the spool. The script reports what it saw as one JSON line.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

from eventlog.collector import Collector, open_collector
from tests.helpers import spool_logs, spooled_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
EVENTS = 50

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available")


def refused_url() -> str:
    """A loopback URL nothing listens on: every POST fails to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def script_env() -> dict[str, str]:
    """The environment of a script: this checkout's eventlog, no EVENTLOG_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    env.pop("DO_NOT_TRACK", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


async def run_script(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` with ``args``; its last stdout line, decoded from JSON."""
    report, _ = await run_script_with_stderr(script, *args)
    return report


async def run_script_with_stderr(script: str, *args: str) -> tuple[dict[str, Any], str]:
    """Run ``script`` with ``args``; its last stdout line, decoded from JSON, and its stderr."""
    with trio.fail_after(TIMEOUT):
        result = await trio.run_process(
            [sys.executable, "-c", script, *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=script_env(),
            cwd=ROOT,
        )
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, Any] = json.loads(result.stdout.decode().splitlines()[-1])
    return report, result.stderr.decode()


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    """A collector on a free loopback port, its database in memory."""
    async with open_collector() as running:
        yield running


async def stored_names(collector: Collector) -> Counter[str]:
    """How many times each event name is in the collector's store."""
    async with httpx.AsyncClient(base_url=collector.url, timeout=TIMEOUT) as http:
        response = await http.get("/api/events", params={"limit": "10000"})
    assert response.status_code == 200, response.text
    return Counter(e["event_data"]["event_name"] for e in response.json()["events"])


FORK = """
import json, os, sys, traceback

import eventlog

base_url, storage_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = eventlog.Config(
    base_url=base_url,
    storage_dir=storage_dir,
    service_name="fork",
    scheduled_delay=3600.0,  # nothing is sent before the fork: the queue holds it all
)
log = eventlog.start_event_logger(config)
for i in range(count):
    log.log_event("before_fork", {"i": i})
report_r, report_w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        import threading, time

        # Four threads use the logger first, at once: one of them starts it.
        barrier = threading.Barrier(4)
        waits = []

        def first_use(n):
            barrier.wait()
            start = time.perf_counter()
            log.log_event("child_thread", {"n": n})
            waits.append(time.perf_counter() - start)

        threads = [threading.Thread(target=first_use, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        loggers = [t for t in threading.enumerate() if t.name == "eventlog"]
        for i in range(count):
            eventlog.log_event("child", {"i": i})  # module level: reaches the new logger
        flushed = log.flush(timeout=10.0)
        stats = log.stats
        log.close()
        report = {"flushed": flushed, "emitted": stats.emitted, "exported": stats.exported,
                  "taken_over": stats.taken_over, "logger_threads": len(loggers),
                  "first_use_ms": max(waits) * 1000}
        os.write(report_w, json.dumps(report).encode())
    except BaseException:
        traceback.print_exc()
        os._exit(1)  # never into the parent's code
    sys.exit(0)  # a normal exit: the atexit handlers run (coverage's data is saved)
os.close(report_w)
for i in range(count):
    log.log_event("parent", {"i": i})
with os.fdopen(report_r) as pipe:
    child = json.loads(pipe.read())
_, status = os.waitpid(pid, 0)
log.close()
stats = log.stats
print(json.dumps({"child": child, "child_status": status, "emitted": stats.emitted,
                  "exported": stats.exported}))
"""


@needs_fork
async def test_parent_and_child_each_deliver_their_own_events_once(
    collector: Collector, tmp_path: Path
) -> None:
    """After a fork both processes deliver what they logged, once; the child starts its own run."""
    report = await run_script(FORK, collector.url, str(tmp_path / "telemetry"), str(EVENTS))
    child = report["child"]
    # The first use started the child's logger: it blocked once, briefly.
    assert child["first_use_ms"] < 5000
    assert report["child_status"] == 0
    assert child["flushed"] is True
    # One logger thread started, for the four threads that used it at once.
    assert child["logger_threads"] == 1
    # The child's logger is new: the parent's queued events are not in it.
    assert child["emitted"] == child["exported"] == EVENTS + 4
    assert child["taken_over"] == 0
    assert report["emitted"] == report["exported"] == 2 * EVENTS
    assert await stored_names(collector) == {
        "before_fork": EVENTS,
        "parent": EVENTS,
        "child": EVENTS,
        "child_thread": 4,
    }
    assert collector.stats.duplicates == 0
    assert collector.stats.received == 3 * EVENTS + 4


GRANDCHILD = """
import json, os, sys, traceback

import eventlog

base_url, storage_dir = sys.argv[1], sys.argv[2]
log = eventlog.start_event_logger(eventlog.Config(base_url=base_url, storage_dir=storage_dir))
report_r, report_w = os.pipe()
if os.fork() == 0:
    try:
        # The child forks again before it ever used the logger.
        pid = os.fork()
        if pid == 0:
            eventlog.log_event("grandchild")  # module level: starts the grandchild's logger
            report = {"reached": eventlog.current_logger() is not None,
                      "flushed": log.flush(timeout=10.0)}
            log.close()
            os.write(report_w, json.dumps(report).encode())
        else:
            os.close(report_w)
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
            log.close()
    except BaseException:
        traceback.print_exc()
        os._exit(1)  # never into the parent's code
    sys.exit(0)  # a normal exit: the atexit handlers run (coverage's data is saved)
os.close(report_w)
with os.fdopen(report_r) as pipe:
    grandchild = json.loads(pipe.read())
os.wait()
log.close()
print(json.dumps(grandchild))
"""


@needs_fork
async def test_a_grandchild_starts_its_own_logger_too(collector: Collector, tmp_path: Path) -> None:
    """A child that forks before it used the logger passes the lazy start on."""
    report = await run_script(GRANDCHILD, collector.url, str(tmp_path / "telemetry"))
    assert report == {"reached": True, "flushed": True}
    assert await stored_names(collector) == {"grandchild": 1}


FORK_SPOOL = """
import json, os, sys, time, traceback

import eventlog

refused, collector, storage_dir, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def config(base_url):
    return eventlog.Config(
        base_url=base_url, storage_dir=storage_dir, service_name="fork-spool",
        max_attempts=None, shutdown_timeout=0.5,
    )


def files(directory):
    found = []
    for d, _, names in os.walk(directory):
        for name in names:
            info = os.stat(os.path.join(d, name))
            found.append((os.path.join(d, name), info.st_size, info.st_mtime_ns))
    return sorted(found)


log = eventlog.start_event_logger(config(refused))
for i in range(count):
    log.log_event("spooled", {"i": i})
log.flush(timeout=10.0)
assert log.stats.spooled == count, log.stats
before = files(storage_dir)
report_r, report_w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.close(go_w)
        log.log_event("child")  # starts the child's own logger (a new run)
        log.flush(timeout=10.0)
        stats = log.stats
        os.write(report_w, json.dumps({"taken_over": stats.taken_over, "replayed": stats.replayed,
                                       "spooled": stats.spooled}).encode() + b"\\n")
        os.read(go_r, 1)  # alive, its logger open, until the parent is done
        log.close()
    except BaseException:
        traceback.print_exc()
        os._exit(1)  # never into the parent's code
    sys.exit(0)  # a normal exit: the atexit handlers run (coverage's data is saved)
os.close(report_w)
os.close(go_r)
with os.fdopen(report_r) as pipe:
    child = json.loads(pipe.readline())
parent_files = [f for f in before if f in files(storage_dir)]
# The parent lets go of its log (undelivered: it stays on disk, for a later run)...
log.close()
# ... and a later run takes it over while the child still lives.
later = eventlog.start_event_logger(config(collector))
deadline = time.monotonic() + 10.0
while later.stats.replayed < count and time.monotonic() < deadline:
    time.sleep(0.02)
replayed = later.stats.replayed
later.close()
os.write(go_w, b"x")
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": child, "child_status": status, "unchanged": parent_files == before,
                  "replayed_while_child_lives": replayed}))
"""


@needs_fork
async def test_the_child_never_touches_the_parents_live_spool(
    collector: Collector, tmp_path: Path
) -> None:
    """A child takes over nothing the live parent holds, and keeps none of its locks.

    The parent's spooled backlog stays as it was while the child runs its own
    logger; once the parent closes its logger, a later run takes that backlog
    over although the child is still alive (the descriptor of the parent's
    lock the child inherited was closed, never unlocked).
    """
    storage_dir = tmp_path / "telemetry"
    report = await run_script(
        FORK_SPOOL, refused_url(), collector.url, str(storage_dir), str(EVENTS)
    )
    assert report["child_status"] == 0
    assert report["child"] == {"taken_over": 0, "replayed": 0, "spooled": 1}
    assert report["unchanged"] is True
    assert report["replayed_while_child_lives"] == EVENTS
    assert (await stored_names(collector))["spooled"] == EVENTS


FORK_EDGES = """
import json, os, sys, threading, traceback

import eventlog

base_url, storage_dir = sys.argv[1], sys.argv[2]
config = eventlog.Config(
    base_url=base_url, storage_dir=storage_dir, service_name="fork-edges",
    strict=True, shutdown_timeout=0.2,
)
closed_before = eventlog.start_event_logger(config)
closed_before.close()
unused = eventlog.start_event_logger(config)
failing = eventlog.start_event_logger(config)
report_r, report_w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        unused.close()  # never used here: nothing to start, nothing to drain
        threads = [t.name for t in threading.enumerate() if t.name == "eventlog"]
        os.chmod(storage_dir, 0o777)  # unsafe now: strict mode refuses to open a logger
        failing.log_event("lost")
        failing.log_experiment("lost-experiment", 1)
        try:
            failing.flush()
            flush = "returned"
        except eventlog.ExporterShutdownError:
            flush = "ExporterShutdownError"
        closed_before.log_event("late")
        report = {"threads_after_close": threads, "flush": flush,
                  "dropped": failing.stats.dropped_after_shutdown,
                  "closed_before_dropped": closed_before.stats.dropped_after_shutdown}
        os.write(report_w, json.dumps(report).encode())
    except BaseException:
        traceback.print_exc()
        os._exit(1)  # never into the parent's code
    sys.exit(0)  # a normal exit: the atexit handlers run (coverage's data is saved)
os.close(report_w)
with os.fdopen(report_r) as pipe:
    child = json.loads(pipe.read())
_, status = os.waitpid(pid, 0)
unused.close()
failing.close()
print(json.dumps({"child": child, "child_status": status}))
"""


@needs_fork
async def test_in_a_child_a_logger_that_cannot_start_counts_and_never_raises(
    tmp_path: Path,
) -> None:
    """A child's logger that fails to start: a WARNING, events counted; close starts nothing.

    Also: closing in the child a logger it never used starts no thread, and a
    logger closed before the fork stays closed in the child.
    """
    storage_dir = tmp_path / "telemetry"
    storage_dir.mkdir(mode=0o700)
    report, stderr = await run_script_with_stderr(FORK_EDGES, refused_url(), str(storage_dir))
    assert report["child_status"] == 0
    assert report["child"] == {
        "threads_after_close": [],
        "flush": "ExporterShutdownError",
        "dropped": 2,
        "closed_before_dropped": 1,
    }
    assert "eventlog: the logger could not start in this process" in stderr


IMPORTS = """
import json, sys

import eventlog

base_url, storage_dir, backend = sys.argv[1:]
lazy = ("httpcore", "encodings.idna")
before = [name for name in lazy if name in sys.modules]
log = eventlog.start_event_logger(
    eventlog.Config(base_url=base_url, storage_dir=storage_dir), backend=backend
)
after = [name for name in lazy if name in sys.modules]
log.close()
print(json.dumps({"before": before, "after": after}))
"""


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
async def test_start_returns_once_the_first_use_imports_are_done(
    tmp_path: Path, backend: str
) -> None:
    """What the logger thread imports on first use is imported before a fork can happen.

    A fork while another thread imports a module leaves the child waiting
    forever for that module's lock.
    """
    report = await run_script(IMPORTS, refused_url(), str(tmp_path / "telemetry"), backend)
    assert report == {"before": [], "after": ["httpcore", "encodings.idna"]}


AT_EXIT = """
import sys

import eventlog

base_url, storage_dir, backend, at_exit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
config = eventlog.Config(
    base_url=base_url,
    storage_dir=storage_dir,
    service_name="at-exit",
    scheduled_delay=3600.0,
    shutdown_timeout=0.5,
)
log = eventlog.start_event_logger(config, backend=backend, close_at_exit=at_exit == "yes")
for i in range(5):
    log.log_event("at_exit", {"i": i})
print('{"started": true}')
# No close(): the interpreter exits with the events queued.
"""


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
async def test_close_at_exit_drains_an_unclosed_logger(tmp_path: Path, backend: str) -> None:
    """close_at_exit=True closes at interpreter exit: the unsendable events reach the spool."""
    storage_dir = tmp_path / "telemetry"
    await run_script(AT_EXIT, refused_url(), str(storage_dir), backend, "yes")
    assert len(spooled_events(storage_dir)) == 5


async def test_without_close_at_exit_an_unclosed_loggers_events_are_lost(tmp_path: Path) -> None:
    """The thread is a daemon: the exit is not held up, and the queued events are lost."""
    storage_dir = tmp_path / "telemetry"
    await run_script(AT_EXIT, refused_url(), str(storage_dir), "trio", "no")
    assert spooled_events(storage_dir) == []
    # Its run's log, created as it opened, is all that is left (empty, unlocked).
    assert len(spool_logs(storage_dir)) <= 1
