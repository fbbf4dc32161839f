"""Shared fixtures, the integration mark of ``tests/integration/``, the hypothesis profiles.

The fixtures give a config factory pointed at a per-test spool directory.
Two sessions split the suite (docs/contributing.md): ``nox -s tests`` runs
``-m "not integration"`` in virtual time, ``nox -s integration`` runs the
integration tests (real time, real sockets, processes) and the property tests
under the ``thorough`` hypothesis profile.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis
import pytest

import eventlog
from eventlog.testing import inline_disk_io

if TYPE_CHECKING:
    from collections.abc import Sequence

MakeConfig = Callable[..., eventlog.Config]

INTEGRATION_DIR = Path(__file__).parent / "integration"

# The same examples on every run (deterministic tests), no deadline (a busy
# 2-core machine is not a slow test), no example database to write.
# `fast` is the default, for the edit-test loop; `thorough`
# (HYPOTHESIS_PROFILE=thorough, set by the integration session) tries many
# more. A test that names its own max_examples ignores both.
hypothesis.settings.register_profile(
    "fast", max_examples=25, deadline=None, derandomize=True, database=None
)
hypothesis.settings.register_profile(
    "thorough", max_examples=500, deadline=None, derandomize=True, database=None
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


def mark_integration(items: Sequence[pytest.Item]) -> None:
    """Every test collected from ``tests/integration/`` gets the integration mark."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


# tryfirst: before pytest's own hook deselects by mark (-m "not integration").
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A new file in tests/integration/ is integration without a pytestmark of its own."""
    mark_integration(items)


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
