"""Runs each attempt at once in the engine's own thread: deterministic, for tests."""

from __future__ import annotations

from ..core.worker import execute


class SyncExecutor:
    """Synchronous twin of the thread pool: ``submit`` runs the call before returning."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or 1
        self._report = None

    def start(self, report) -> None:
        self._report = report

    def submit(self, token, fn, kwargs, ctx=None) -> None:
        self._report((token, execute(fn, kwargs, ctx)))

    def cancel(self, token) -> None:
        pass  # nothing is ever in flight

    def shutdown(self) -> None:
        self._report = None
