"""Executors run attempts and report outcomes; they hold no scheduling state.

The contract they meet is written down once, in :mod:`nbflow.core.executor`.
"""

from __future__ import annotations

from ..core.executor import Executor
from .dask import DaskExecutor
from .processes import ProcessExecutor
from .sync import SyncExecutor
from .threads import ThreadExecutor

__all__ = ["EXECUTORS", "DaskExecutor", "Executor", "ProcessExecutor", "SyncExecutor", "ThreadExecutor",
           "make_executor"]

EXECUTORS = {"threads": ThreadExecutor, "processes": ProcessExecutor, "sync": SyncExecutor,
             "dask": DaskExecutor}


def make_executor(kind, workers: int | None = None, **options):
    """An executor from its name (``"threads"``, ``"processes"``, ``"sync"``, ``"dask"``)
    or an instance given as is."""
    if not isinstance(kind, str):
        return kind
    try:
        cls = EXECUTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown executor {kind!r}; choose one of: {', '.join(sorted(EXECUTORS))}") from None
    return cls(workers=workers, **options)
