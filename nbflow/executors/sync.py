"""Runs each attempt at once in the engine's own thread: deterministic, for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.executor import Report, Token
from ..core.options import check
from ..core.worker import TaskContext, execute


class SyncExecutor:
    """Synchronous twin of the thread pool: ``submit`` runs the call before returning.

    A ``KeyboardInterrupt`` in a task interrupts the whole run here (the
    engine cancels it), since it is how Ctrl-C reaches the engine's thread.
    """

    def __init__(self, workers: int | None = None):
        self.workers = check("workers", workers, "SyncExecutor()") or 1
        self._report: Report | None = None

    def start(self, report: Report) -> None:
        self._report = report

    def submit(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
               ctx: TaskContext | None = None) -> None:
        out = execute(fn, kwargs, ctx)
        if isinstance(out.error, KeyboardInterrupt):
            # The task ran on the engine's thread, where Ctrl-C lands: it
            # interrupts the run (the engine cancels it), as it would between tasks.
            raise out.error
        assert self._report is not None, "submit() before start()"
        self._report((token, out))

    def cancel(self, token: Token) -> None:
        pass  # nothing is ever in flight

    def shutdown(self) -> None:
        self._report = None
