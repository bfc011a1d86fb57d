"""Back-off between attempts: base delay, multiplier, cap and jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, factor: float = 1.0, cap: float | None = None,
                  jitter: float = 0.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``base * factor ** (attempt - 1)``, capped at ``cap``, then spread by up to
    ``jitter`` times itself either way (so retries of many tasks that failed
    together do not all come back at once).  Never negative.
    """
    delay = base * factor ** (attempt - 1)
    if cap is not None:
        delay = min(delay, cap)
    if jitter:
        delay *= 1.0 + (rng or random).uniform(-jitter, jitter)
    return max(delay, 0.0)
