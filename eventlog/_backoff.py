"""The backoff policy (docs/delivery.md): pure functions, no state, no clock.

After ``n`` consecutive failed POSTs the next retry waits
``min(base * n**2, max)`` seconds (the original's quadratic schedule), scaled
by a jitter factor drawn from ``[1 - jitter, 1 + jitter]`` so that many
processes recovering from one outage do not retry in lockstep. A server's
``Retry-After`` is a floor for that delay, honoured in full even above
``max``, up to its own cap (a server asking for a day does not silence the
client for a day).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

__all__ = ["backoff_delay"]


def backoff_delay(
    failures: int,
    *,
    base: float,
    maximum: float,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    retry_after: float | None = None,
    max_retry_after: float = math.inf,
) -> float:
    """Seconds to wait before the next retry after ``failures`` consecutive failures.

    >>> [backoff_delay(n, base=0.5, maximum=30.0) for n in (1, 2, 3, 4, 8, 9)]
    [0.5, 2.0, 4.5, 8.0, 30.0, 30.0]
    >>> backoff_delay(1, base=0.5, maximum=30.0, retry_after=12.0)
    12.0
    >>> backoff_delay(1, base=0.5, maximum=30.0, retry_after=86400.0, max_retry_after=300.0)
    300.0
    """
    delay = min(base * failures * failures, maximum)
    if jitter and rng is not None:
        delay *= rng.uniform(1.0 - jitter, 1.0 + jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after))
    return delay
