"""Clocks the engine reads time from and waits on.

The engine never calls ``time`` or blocks on its inbox itself: it asks its clock.
A :class:`RealClock` waits on the queue with a timeout; a :class:`VirtualClock`
never sleeps and instead jumps to the next deadline when nothing is waiting, so
tests and simulations run retry back-offs and timeouts instantly and exactly.
"""

from __future__ import annotations

import queue
import time
from typing import Any

LONGEST_WAIT = 3600.0   # seconds one wait on the inbox may last


class RealClock:
    """Wall-clock time; waits block on the inbox."""

    now = staticmethod(time.time)  # the engine calls it per event: no wrapper frame

    def wait(self, inbox: queue.SimpleQueue, deadline: float | None) -> Any:
        """Next inbox message, or None once ``deadline`` (in ``now()`` time) passes."""
        if deadline is None:
            # A bounded wait keeps KeyboardInterrupt deliverable in the cell thread.
            while True:
                try:
                    return inbox.get(timeout=0.25)
                except queue.Empty:
                    continue
        # Bounded, so a far deadline (an Engine given timeout=inf directly) is
        # another turn of the loop, not an OverflowError from the queue.
        timeout = min(deadline - time.time(), LONGEST_WAIT)
        try:
            return inbox.get(timeout=max(timeout, 0.0)) if timeout > 0 else inbox.get_nowait()
        except queue.Empty:
            return None


class VirtualClock:
    """Time that moves only when the engine has nothing to do but wait."""

    def __init__(self, start: float = 0.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wait(self, inbox: queue.SimpleQueue, deadline: float | None) -> Any:
        try:
            return inbox.get_nowait()
        except queue.Empty:
            pass
        if deadline is None:
            raise RuntimeError(
                "VirtualClock: the engine is waiting for a message that nothing will send "
                "(use a synchronous executor with a virtual clock)")
        self.t = max(self.t, deadline)
        return None
