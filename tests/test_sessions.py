"""How the suite splits into the fast session and the integration session (docs/contributing.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import hypothesis
import pytest

from tests.conftest import INTEGRATION_DIR, mark_integration

if TYPE_CHECKING:
    from collections.abc import Sequence


class FakeItem:
    """The two attributes of a collected test that the marking reads and writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: list[pytest.MarkDecorator] = []

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.marks.append(marker)


def test_the_integration_directory_is_the_one_beside_this_file() -> None:
    """The hook looks at tests/integration/, which holds integration test modules."""
    assert Path(__file__).parent / "integration" == INTEGRATION_DIR
    assert sorted(INTEGRATION_DIR.glob("test_*.py"))


def test_every_test_under_tests_integration_is_marked_integration() -> None:
    """Items collected from tests/integration/ (nested too) get the mark; no other item does."""
    tests = Path(__file__).parent
    inside = [
        FakeItem(INTEGRATION_DIR / "test_collector.py"),
        FakeItem(INTEGRATION_DIR / "deeper" / "test_new.py"),
    ]
    outside = [
        FakeItem(tests / "test_delivery.py"),
        FakeItem(tests / "integration_helpers.py"),
        FakeItem(tests.parent / "eventlog" / "_config.py"),
    ]
    mark_integration(cast("Sequence[pytest.Item]", inside + outside))
    assert [[mark.name for mark in item.marks] for item in inside] == [["integration"]] * 2
    assert [item.marks for item in outside] == [[], [], []]


def test_integration_tests_are_not_collected_by_the_fast_session(
    request: pytest.FixtureRequest,
) -> None:
    """Under -m "not integration" no test of tests/integration/ is left in the session."""
    if "not integration" not in request.config.option.markexpr:
        pytest.skip('run with -m "not integration", as nox -s tests does')
    session_items = request.session.items
    assert session_items
    assert not [item for item in session_items if item.path.is_relative_to(INTEGRATION_DIR)]


def test_the_hypothesis_profile_comes_from_the_environment() -> None:
    """fast unless HYPOTHESIS_PROFILE says otherwise; thorough tries many more examples."""
    expected = os.environ.get("HYPOTHESIS_PROFILE", "fast")
    assert hypothesis.settings.get_current_profile_name() == expected
    fast = hypothesis.settings.get_profile("fast")
    thorough = hypothesis.settings.get_profile("thorough")
    assert fast.max_examples < thorough.max_examples
    for profile in (fast, thorough):
        assert profile.derandomize is True
        assert profile.deadline is None
        assert profile.database is None
