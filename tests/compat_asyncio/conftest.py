"""Fixtures of the asyncio leg: every test runs on anyio's asyncio backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import eventlog

if TYPE_CHECKING:
    from pathlib import Path

MakeConfig = Callable[..., eventlog.Config]


@pytest.fixture
def anyio_backend() -> str:
    """Run every test of this directory on asyncio."""
    return "asyncio"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """The storage directory of the test's loggers."""
    return tmp_path / "telemetry"


@pytest.fixture
def make_config(spool_dir: Path) -> MakeConfig:
    """A Config with short real-time delays: asyncio has no autojump clock."""

    def make(**overrides: Any) -> eventlog.Config:
        values: dict[str, Any] = {
            "base_url": "http://127.0.0.1:8787",
            "storage_dir": str(spool_dir),
            "backoff_jitter": 0.0,
            "base_backoff": 0.02,
            "max_backoff": 0.05,
            "scheduled_delay": 0.05,
            "batch_delay": 0.0,
            "service_name": "asyncio-test",
        }
        values.update(overrides)
        return eventlog.Config(**values)

    return make
