"""Back-off between attempts: base delay, multiplier, jitter and ceiling."""

from __future__ import annotations

import math
import random

from .options import MAX_SECONDS


def backoff_delay(attempt: int, base: float, factor: float = 1.0, cap: float | None = None,
                  jitter: float = 0.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``base * factor ** (attempt - 1)``, spread by up to ``jitter`` times itself
    either way (so retries of many tasks that failed together do not all come
    back at once), then capped at ``cap``: the cap is a hard ceiling, jitter
    included, as Airflow's ``max_retry_delay``.  Without ``cap`` the ceiling is
    ``MAX_SECONDS`` (a year).  Never negative, never an overflow: attempt
    1,100 with ``factor=2`` waits the ceiling.
    """
    if base <= 0:
        return 0.0
    try:
        delay = base * factor ** (attempt - 1)
    except OverflowError:   # float ** raises where float * gives inf
        delay = math.inf
    if jitter:
        delay *= 1.0 + (rng or random).uniform(-jitter, jitter)
    ceiling = MAX_SECONDS if cap is None else min(cap, MAX_SECONDS)
    if not delay <= ceiling:   # above it, inf, or NaN (inf times a jitter of exactly -1)
        return ceiling
    return max(delay, 0.0)
