"""Per-event-name sampling (docs/events.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from eventlog._config import valid_rate

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

__all__ = ["KEEP", "Sampler"]

KEEP = -1.0
"""``Sampler.decide``: keep the event without a ``sample_rate``."""


@final
class Sampler:
    """Decides, per event name, whether an event is kept.

    * no rate for the name, or an invalid one: keep (no ``sample_rate``);
    * rate >= 1: keep (no ``sample_rate``);
    * rate <= 0: drop;
    * otherwise keep with probability ``rate``, and the kept event carries it.
    """

    __slots__ = ("_random", "rates")

    def __init__(self, rates: Mapping[str, float], rng: random.Random) -> None:
        self.rates = dict(rates)
        self._random = rng.random

    def decide(self, name: str) -> float:
        """:data:`KEEP`, 0.0 (drop), or the rate the kept event carries."""
        rate = self.rates.get(name)
        if rate is None or not valid_rate(rate) or rate >= 1.0:
            return KEEP
        if rate <= 0.0:
            return 0.0
        return rate if self._random() < rate else 0.0
