"""Cancelling a run, mixed into the engine.

A cancel (the user's, ``fail_fast``'s) moves every task not yet running to
``cancelled``, flags every running and queued attempt (a cooperative task sees
it in ``check_cancelled()``), asks the executor to stop them, and starts the
grace period.  Attempts still running when it ends are abandoned: recorded as
cancelled at once, their late outcomes discarded, their workers counted busy
until those outcomes arrive.  These methods run on the engine thread and use
its transitions and timers (``engine.py``).
"""

from __future__ import annotations

import collections
from typing import Protocol

from .events import Detail
from .executor import Executor
from .saga import COMPENSATION
from .scheduler import Scheduler
from .states import State, Trigger
from .worker import TaskContext

S, T = State, Trigger


class _Engine(Protocol):
    """What of the engine cancelling uses."""

    cancelled: str | None
    cancel_grace: float
    state: list[State]
    running: dict[tuple[int, int], TaskContext]
    abandoned: set[tuple[int, int]]
    _ahead: collections.deque[tuple[tuple[int, int], TaskContext]]
    executor: Executor
    ready: Scheduler

    def _move(self, i: int, trigger: Trigger, detail: Detail | None = None,
              retries_left: bool | None = None) -> State: ...
    def _add_timer(self, when: float, kind: str, i: int, a: int) -> None: ...
    def _now(self) -> float: ...
    def _abandon(self, token: tuple[int, int]) -> None: ...


class Cancelling:
    """``Engine``'s cancel: it needs the engine's run state, ``_move`` and its timers."""

    cancelled: str | None   # the reason, once cancelled (RunState's)

    def _cancel(self: _Engine, reason: str) -> None:
        if self.cancelled is not None:
            return
        self.cancelled = reason
        for i, st in enumerate(self.state):
            if st is S.PENDING or st is S.READY or st is S.RETRYING:
                self._move(i, T.CANCEL, Detail(reason=reason))
        inflight = (*self.running.items(), *self._ahead)
        for _token, ctx in inflight:   # every flag first: a cancel may start a worker
            ctx.cancelled = True       # (threads.py), which must find its job cancelled
        for token, _ctx in inflight:
            self.executor.cancel(token)
        self._add_timer(self._now() + self.cancel_grace, "grace", -1, 0)

    def _finish_cancel(self: _Engine) -> None:
        # Attempts still running past the grace period are abandoned: recorded
        # as cancelled now, their late outcomes discarded.
        for (i, a), ctx in list(self.running.items()):
            ctx.cancelled = True
            self._abandon((i, a))
            self.ready.release(i)
            if a == COMPENSATION:
                self._move(i, T.FAIL, Detail(error=f"compensation interrupted: {self.cancelled}"))
            else:
                self._move(i, T.CANCEL, Detail(reason=self.cancelled, abandoned=True))
        self.running.clear()
        for i, st in enumerate(self.state):
            if st is S.PENDING or st is S.READY or st is S.RETRYING:
                self._move(i, T.CANCEL, Detail(reason=self.cancelled))

    def _abandon(self: _Engine, token: tuple[int, int]) -> None:
        """Give up on an attempt: the executor is asked to stop it, and its worker
        counts as busy until its outcome arrives (``executors`` report one for
        every attempt, a cancelled one included)."""
        self.abandoned.add(token)
        self.executor.cancel(token)
