"""The compensation phase (saga) of a run, mixed into the engine.

After the last task of a failed or cancelled run with ``on_failure="compensate"``,
each succeeded task that declared a ``compensate`` has it called with its
result, one at a time, last finished first.  These methods run on the engine
thread and use its transitions and loop (``engine.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from .clock import Clock, Inbox, Message
from .events import Detail
from .executor import Executor
from .graph import Graph
from .spec import TaskSpec
from .states import State, Trigger
from .worker import TaskContext

S, T = State, Trigger
COMPENSATION = -1  # the attempt number in the token of a compensation call


class _Engine(Protocol):
    """What of the engine the compensation uses."""

    cancelled: str | None
    state: list[State]
    results: list[Any]
    running: dict[tuple[int, int], TaskContext]
    timers: list[tuple[float, int, str, int, int]]
    specs: Sequence[TaskSpec]
    graph: Graph
    executor: Executor
    clock: Clock
    inbox: Inbox
    run_id: str
    _names: list[str]

    def _move(self, i: int, trigger: Trigger, detail: Detail | None = None,
              retries_left: bool | None = None) -> State: ...
    def _flush(self) -> None: ...
    def _drain(self, msg: Message | None) -> None: ...
    def _fire_timers(self) -> None: ...


class Saga:
    """``Engine``'s compensation: it needs the engine's run state, ``_move``,
    ``_flush``, ``_drain`` and ``_fire_timers``."""

    def _needs_compensation(self: _Engine) -> bool:
        return self.cancelled is not None or any(
            s is S.FAILED or s is S.UPSTREAM_FAILED for s in self.state)

    def _compensate(self: _Engine) -> None:
        # One at a time, reverse topological order (deepest level first, later
        # declarations first within a level): each undo sees the world as its
        # dependents' undos left it.
        undos = {i: undo for i, s in enumerate(self.state)
                 if s is S.SUCCEEDED and (undo := self.specs[i].compensate) is not None}
        for i in sorted(undos, key=lambda i: (self.graph.level[i], i), reverse=True):
            self._move(i, T.COMPENSATE)
            token = (i, COMPENSATION)
            ctx = TaskContext(self._names[i], COMPENSATION, self.run_id)
            self.running[token] = ctx
            self.executor.submit(token, functools.partial(undos[i], self.results[i]), {}, ctx)
            self._flush()
            while token in self.running:
                self._drain(self.clock.wait(self.inbox, self.timers[0][0] if self.timers else None))
                self._fire_timers()
            self._flush()
