"""Shared fixtures: a config factory pointed at a per-test spool directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import eventlog
from eventlog.testing import inline_disk_io

if TYPE_CHECKING:
    from pathlib import Path

MakeConfig = Callable[..., eventlog.Config]


@pytest.fixture(autouse=True)
def disk_io_inline() -> Iterator[None]:
    """The spool's file I/O runs inline, not in a worker thread: virtual time stays exact.

    Under trio's autojump clock a thread would let virtual time jump while
    the disk works. The integration tests, in real time, use real threads.
    """
    with inline_disk_io():
        yield


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """The storage directory of the test's loggers."""
    return tmp_path / "telemetry"


@pytest.fixture
def make_config(spool_dir: Path) -> MakeConfig:
    """Build a Config for tests: loopback URL, the test's spool dir, no jitter, one POST at once."""

    def make(**overrides: Any) -> eventlog.Config:
        values: dict[str, Any] = {
            "base_url": "http://127.0.0.1:8787",
            "storage_dir": str(spool_dir),
            "backoff_jitter": 0.0,
            # One POST at a time: batches arrive in the order they were built,
            # which most tests assert. Concurrency has tests of its own.
            "max_concurrent_exports": 1,
            "service_name": "testapp",
            "service_version": "1.2.3",
        }
        values.update(overrides)
        return eventlog.Config(**values)

    return make
