"""Executors run attempts and report outcomes; they hold no scheduling state.

An executor has ``workers`` (how many attempts it runs at once), ``start(report)``
(``report((token, outcome))`` posts to the engine's inbox), ``submit(token, fn,
kwargs)``, ``cancel(token)`` and ``shutdown()``.
"""

from __future__ import annotations

from .processes import ProcessExecutor
from .sync import SyncExecutor
from .threads import ThreadExecutor

EXECUTORS = {"threads": ThreadExecutor, "processes": ProcessExecutor, "sync": SyncExecutor}


def make_executor(kind, workers: int | None = None, **options):
    """An executor from its name (``"threads"``, ``"processes"``, ``"sync"``) or an instance
    given as is."""
    if not isinstance(kind, str):
        return kind
    try:
        cls = EXECUTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown executor {kind!r}; choose one of: {', '.join(sorted(EXECUTORS))}") from None
    return cls(workers, **options)
