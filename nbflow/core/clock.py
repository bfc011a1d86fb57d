"""Clocks the engine reads time from and waits on.

The engine never calls ``time`` or blocks on its inbox itself: it asks its clock.
A :class:`RealClock` waits on the queue with a timeout; a :class:`VirtualClock`
never sleeps and instead jumps to the next deadline when nothing is waiting, so
tests and simulations run retry back-offs and timeouts instantly and exactly.
"""

from __future__ import annotations

import heapq
import queue
import time
from heapq import heappop
from typing import Any, Protocol

#: What the engine's inbox carries: ``(token, outcome)`` from an executor, or
#: ``(None, (verb, argument))`` for a control message (cancel, add_sink).
Message = tuple[tuple[int, int] | None, Any]
Inbox = queue.SimpleQueue[Message]

LONGEST_WAIT = 3600.0   # seconds one wait on the inbox may last


class Clock(Protocol):
    """What the engine asks of a clock: the time, and the next inbox message."""

    def now(self) -> float: ...

    def wait(self, inbox: Inbox, deadline: float | None) -> Message | None:
        """The next message, or None once ``deadline`` (in ``now()`` time) passed."""


class RealClock:
    """Wall-clock time; waits block on the inbox."""

    now = staticmethod(time.time)  # the engine calls it per event: no wrapper frame

    def wait(self, inbox: Inbox, deadline: float | None) -> Message | None:
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
    """Time that moves only when the engine has nothing to do but wait.

    A simulated executor schedules its outcomes on it with :meth:`at`.  When
    the inbox is empty, :meth:`wait` jumps to the earliest of the next
    scheduled message and the engine's deadline; every message due at that
    instant goes into the inbox together, so the engine applies all the
    endings of one instant before it starts anything (list scheduling as the
    textbooks define it).  Ties keep the order they were scheduled in.
    """

    def __init__(self, start: float = 0.0):
        self.t = start
        self._due: list[tuple[float, int, Any]] = []
        self._seq = 0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def at(self, when: float, message: Any) -> None:
        """Put ``message`` into the inbox once the time reaches ``when``."""
        heapq.heappush(self._due, (when, self._seq, message))
        self._seq += 1

    def wait(self, inbox: Inbox, deadline: float | None) -> Message | None:
        # Checked, not tried: a simulation finds the inbox empty on every turn, and
        # raising Empty each time cost more than the check.
        if not inbox.empty():
            return inbox.get_nowait()
        due = self._due
        if due and (deadline is None or due[0][0] <= deadline):
            self.t = t = max(self.t, due[0][0])
            # The first message is the answer; the others of the instant wait in the inbox.
            first: Message = heappop(due)[2]
            while due and due[0][0] <= t:
                inbox.put(heappop(due)[2])
            return first
        if deadline is None:
            raise RuntimeError(
                "VirtualClock: the engine is waiting for a message that nothing will send "
                "(use a synchronous or simulated executor with a virtual clock)")
        self.t = max(self.t, deadline)
        return None
