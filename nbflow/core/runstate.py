"""The mutable state of one run, as one record: every field the engine changes.

Owned by the engine thread (``engine.py``): it is the only code that changes
these fields, so no lock guards them.  Per task ``i`` (plain lists indexed by
declaration order, the cheapest thing to index on the hot path):

state      the task's :class:`State`; changed only via ``states.transition``
remaining  dependencies (and phase join points) not yet ended: Kahn's in-degree.
           Set below zero once the trigger rule decided early, so a later
           ending never decides it again
nfailed    dependencies that ended failed, upstream_failed or cancelled
nskipped   dependencies that ended skipped
attempt    the current attempt number (0 before the first start)
results    the return value of the succeeded attempt
keys       the result key (code + inputs), when the run keys results
took       seconds the succeeded attempt ran (the worker's clock), None if none did

Per run:

errors     ``{task: exception}`` of the failed attempts
running    the :class:`TaskContext` of each attempt in flight, by ``(task, attempt)``
abandoned  attempts given up (timed out, cancelled) whose worker is still busy
ahead      attempts queued in the executor behind busy workers (at most its
           ``lookahead``), oldest first: still ready until a worker takes one
timers     a heap of ``(when, seq, kind, task, attempt)``: retry back-offs,
           timeouts, deadlines, the cancel grace period
unfinished tasks not yet in a terminal state; the run ends at 0
cancelled  the cancel reason, or None

The ready queue, pools and phases are the scheduler's (``scheduler.py``).
"""

from __future__ import annotations

import collections
from typing import Any

from .states import State
from .worker import TaskContext


class RunState:
    """The fields above, initialised for ``n`` tasks with ``npreds[i]`` dependencies."""

    def __init__(self, npreds: list[int]):
        n = len(npreds)
        self.state: list[State] = [State.PENDING] * n
        self.remaining = npreds
        self.nfailed = [0] * n
        self.nskipped = [0] * n
        self.attempt = [0] * n
        self.results: list[Any] = [None] * n
        self.keys: list[str | None] = [None] * n
        self.took: list[float | None] = [None] * n
        self.errors: dict[int, BaseException] = {}
        self.running: dict[tuple[int, int], TaskContext] = {}
        self.abandoned: set[tuple[int, int]] = set()
        self._ahead: collections.deque[tuple[tuple[int, int], TaskContext]] = collections.deque()
        self.timers: list[tuple[float, int, str, int, int]] = []
        self.unfinished = n
        self.cancelled: str | None = None

    FIELDS = ("state", "remaining", "nfailed", "nskipped", "attempt", "results", "keys",
              "took", "errors", "running", "abandoned", "_ahead", "timers", "unfinished",
              "cancelled")

    def record(self) -> dict[str, Any]:
        """The whole run state as a dict of copies (for tests that compare it whole)."""
        return {f: _copy(getattr(self, f)) for f in self.FIELDS}


def _copy(value: Any) -> Any:
    return type(value)(value) if isinstance(value, (list, dict, set)) else (
        list(value) if isinstance(value, collections.deque) else value)
