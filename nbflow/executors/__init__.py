"""Executors run attempts and report outcomes; they hold no scheduling state.

An executor has ``workers`` (how many attempts it runs at once), ``start(report)``
(``report((token, outcome))`` posts to the engine's inbox), ``submit(token, fn,
kwargs)``, ``cancel(token)`` and ``shutdown()``.  Optional: ``lookahead`` (see
``threads.py``), ``shares_memory`` (False: a ``%%task`` cell cannot run there),
``replaces_abandoned`` (True: an abandoned attempt's worker no longer counts
against ``workers``, because the executor gives the run another one).
"""

from __future__ import annotations

from ..core.options import EXECUTOR_NAMES, check
from .processes import ProcessExecutor
from .sync import SyncExecutor
from .threads import ThreadExecutor

EXECUTORS = dict(zip(EXECUTOR_NAMES, (ThreadExecutor, ProcessExecutor, SyncExecutor), strict=True))


def make_executor(kind, workers: int | None = None, *, tasks: int | None = None, **options):
    """An executor from its name (``"threads"``, ``"processes"``, ``"sync"``) or an
    instance given as is.

    ``tasks``: how many tasks the run has; an executor that starts all its
    workers up front (processes) starts no more than that.
    """
    kind = check("executor", kind, "make_executor()")
    if not isinstance(kind, str):
        return kind
    cls = EXECUTORS[kind]
    executor = cls(workers, **options)
    if tasks is not None and getattr(cls, "starts_all", False):
        executor.workers = max(1, min(executor.workers, tasks))
    return executor
