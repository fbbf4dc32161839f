"""Integration tests run in real time: the spool's disk work goes to real worker threads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from eventlog import _seams

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def disk_io_inline() -> Iterator[None]:
    """Overrides the suite's inline runner: the real one, a worker thread."""
    with _seams.use(runner=None, reader=None):
        yield
