"""What the engine's mixins (``cancelling.py``, ``saga.py``) may use of it.

Each mixin's methods run on the engine thread with ``self`` the engine; they
type ``self`` with a Protocol that extends :class:`EngineCore` by what else
that mixin touches, so the seam between ``engine.py`` and each mixin is
written down once and checked by mypy.
"""

from __future__ import annotations

from typing import Protocol

from .events import Detail
from .executor import Executor
from .states import State, Trigger
from .worker import TaskContext


class EngineCore(Protocol):
    """The run state and the transition every mixin uses."""

    cancelled: str | None
    state: list[State]
    running: dict[tuple[int, int], TaskContext]
    executor: Executor

    def _move(self, i: int, trigger: Trigger, detail: Detail | None = None,
              retries_left: bool | None = None) -> State: ...
