"""Sinks: what receives a run's events and logs, and how the engine delivers them.

A sink observes; it never blocks the engine and never fails a run.  A sink
that raises is dropped with a warning, and an optional hook that raises is
reported and ignored.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

from .events import Detail

#: (run_id, seq, task, attempt, from_state, to_state, at, detail): see events.py
Event = tuple[str, int, str, int, str, str, float, Detail | None]
#: (task, attempt, stdout, stderr, displays): displays as worker.record_display keeps them
LogRecord = tuple[str, int, str, str, tuple[Any, ...]]


class Sink(Protocol):
    """Receives a run's batches on the engine thread: return fast, never block.

    Optional hooks: ``snapshot(rows)`` when added to a running engine,
    ``values({seq: pickle})`` just before the ``events`` batch holding those
    success events (the results the run's wrappers pickled, to be stored with
    their events), and ``finish(cancel_reason_or_None)`` once when the run ends.
    """

    def events(self, batch: list[Event]) -> None: ...
    def logs(self, batch: list[LogRecord]) -> None: ...


def publish(sinks: list[Sink], method: str, batch: Any, optional: bool = False) -> None:
    """Hand ``batch`` to ``method`` of every sink in ``sinks``; drop a sink that raises."""
    for sink in list(sinks):
        try:
            hook = getattr(sink, method, None) if optional else getattr(sink, method)
            if hook is not None:
                hook(batch)
        except Exception as exc:  # noqa: BLE001 - a broken dashboard must never fail a run
            sinks.remove(sink)
            warnings.warn(f"nbflow: dropped sink {sink!r} after it raised {exc!r}",
                          RuntimeWarning, stacklevel=1)


def call_hook(sink: Any, method: str, arg: Any) -> None:
    """Call an optional sink hook; a failing hook is reported, never raised."""
    fn = getattr(sink, method, None)
    if fn is None:
        return
    try:
        fn(arg)
    except Exception as exc:  # noqa: BLE001 - an optional hook must never fail the run
        warnings.warn(f"nbflow: sink {sink!r} raised {exc!r} in {method}()", RuntimeWarning,
                      stacklevel=1)
