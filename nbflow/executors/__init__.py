"""Executors run attempts and report outcomes; they hold no scheduling state.

The contract they meet is written down once, in :mod:`nbflow.core.executor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.executor import Executor
from ..core.options import EXECUTOR_NAMES, check
from .dask import DaskExecutor
from .processes import ProcessExecutor
from .sync import SyncExecutor
from .threads import ThreadExecutor

__all__ = ["EXECUTORS", "DaskExecutor", "Executor", "ProcessExecutor", "SyncExecutor",
           "ThreadExecutor", "make_executor"]

EXECUTORS: dict[str, Callable[..., Executor]] = dict(zip(EXECUTOR_NAMES, (ThreadExecutor, ProcessExecutor, SyncExecutor,
                                      DaskExecutor), strict=True))


def make_executor(kind: str | Executor, workers: int | None = None, *, tasks: int | None = None,
                  **options: Any) -> Executor:
    """An executor from its name (``"threads"``, ``"processes"``, ``"sync"``, ``"dask"``)
    or an instance given as is.

    ``tasks``: how many tasks the run has; an executor that starts all its
    workers up front (processes) starts no more than that.
    """
    kind = check("executor", kind, "make_executor()")
    if not isinstance(kind, str):
        return kind
    cls = EXECUTORS[kind]
    executor = cls(workers=workers, **options)
    if tasks is not None and getattr(cls, "starts_all", False):
        executor.workers = max(1, min(executor.workers, tasks))
    return executor
