"""The backoff policy: quadratic, capped, jittered within bounds, Retry-After as a floor."""

from __future__ import annotations

import random

import pytest

from eventlog._backoff import backoff_delay


def test_quadratic_schedule_is_capped() -> None:
    """delay = min(base * n**2, max)."""
    delays = [backoff_delay(n, base=0.5, maximum=30.0) for n in range(1, 11)]
    assert delays == [0.5, 2.0, 4.5, 8.0, 12.5, 18.0, 24.5, 30.0, 30.0, 30.0]


def test_jitter_stays_within_bounds_and_varies() -> None:
    """Jittered delays lie in [d(1-j), d(1+j)] and are not all equal."""
    rng = random.Random(7)
    for n in range(1, 12):
        exact = min(0.5 * n * n, 30.0)
        draws = [backoff_delay(n, base=0.5, maximum=30.0, jitter=0.2, rng=rng) for _ in range(50)]
        assert all(exact * 0.8 <= d <= exact * 1.2 for d in draws)
        assert len(set(draws)) > 1


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    """The same seed gives the same schedule."""
    a = [backoff_delay(n, base=1, maximum=9, jitter=0.5, rng=random.Random(3)) for n in (1, 2, 3)]
    b = [backoff_delay(n, base=1, maximum=9, jitter=0.5, rng=random.Random(3)) for n in (1, 2, 3)]
    assert a == b


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(12.0, 12.0), (0.1, 2.0), (100.0, 100.0), (None, 2.0)]
)
def test_retry_after_is_a_floor_above_max_backoff(
    retry_after: float | None, expected: float
) -> None:
    """Retry-After raises the delay, even above max_backoff."""
    assert backoff_delay(2, base=0.5, maximum=30.0, retry_after=retry_after) == expected


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(86400.0, 300.0), (300.0, 300.0), (299.5, 299.5), (1.0, 2.0)]
)
def test_retry_after_is_capped_by_max_retry_after(retry_after: float, expected: float) -> None:
    """A Retry-After beyond max_retry_after waits max_retry_after, whatever max_backoff is."""
    delay = backoff_delay(2, base=0.5, maximum=30.0, retry_after=retry_after, max_retry_after=300.0)
    assert delay == expected


def test_max_retry_after_below_the_backoff_does_not_shorten_it() -> None:
    """The cap bounds only the server's floor, never the backoff schedule itself."""
    assert backoff_delay(4, base=0.5, maximum=30.0, retry_after=60.0, max_retry_after=1.0) == 8.0
