"""``run.on_event(callback)``: a run's events for your own widgets, plots or alerts.

A :class:`Listener` is an engine sink (``core/engine.py``) that only puts each batch on
a queue; its own thread (``nbflow-listener``) calls ``callback(events)`` with everything
that happened since the last call, at most once per ``interval`` (0.1 s), and once more
when the run ends, so a callback never slows the run and a burst of a thousand events is
one call.  An exception in the callback is reported once as a warning and the listener
goes on; it never fails the run.  The thread runs with the parent of the cell that
subscribed, so what the callback displays or prints lands in that cell.

Each event is a dict (``core/events.py`` has the tuple it comes from)::

    {"run": "20261203-...", "seq": 12, "task": "train", "attempt": 1,
     "from": "ready", "to": "running", "at": 1764780000.25,
     "detail": {...} or None}

``seq`` numbers the run's events from 0; ``at`` is a Unix time; ``detail`` holds what
the engine knows of a move, for example the ``worker`` of an attempt that ended, its
``started`` and ``finished`` times when they differ from ``at``, ``error`` (one line) and
``traceback`` for a failure, ``cached`` for a task restored from an earlier run.  The events arrive in ``seq`` order, each once, from the moment of subscription on
(the run's earlier events are in ``run.events()``).  The last call is made once the run is
over, with ``listener.done`` already true.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from .core.events import AT, ATTEMPT, DETAIL, FROM, RUN, SEQ, TASK, TO

INTERVAL = 0.1
_END = object()


def as_dict(event: tuple) -> dict:
    """One engine event tuple as the documented dict."""
    return {"run": event[RUN], "seq": event[SEQ], "task": event[TASK],
            "attempt": event[ATTEMPT], "from": event[FROM], "to": event[TO],
            "at": event[AT], "detail": event[DETAIL]}


class Listener:
    """Calls ``callback(events)`` on its own thread, throttled (see the module docstring).

    Parameters
    ----------
    callback
        Called with a non-empty list of event dicts.
    interval
        Seconds between two calls, at least.
    initializer
        Called first in the listener's thread (gives it the cell's kernel parent).

    Raises
    ------
    TypeError
        ``callback`` is not callable.
    ValueError
        ``interval`` is negative.
    """

    def __init__(self, callback: Callable[[list[dict]], Any], *, interval: float = INTERVAL,
                 initializer: Callable[[], None] | None = None):
        if not callable(callback):
            raise TypeError(f"on_event needs a function that takes a list of events, got "
                            f"{type(callback).__name__} {callback!r}")
        if interval < 0:
            raise ValueError(f"interval must be 0 or more seconds, got {interval!r}")
        self.callback, self.interval = callback, interval
        self.done = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._warned = False
        self._thread = threading.Thread(target=self._work, args=(initializer,), daemon=True,
                                        name="nbflow-listener")
        self._thread.start()

    # -- the sink hooks (engine thread): enqueue and return ---------------------------
    def events(self, batch: list[tuple]) -> None:
        if not self._closed:
            self._queue.put(batch)

    def logs(self, batch: list[tuple]) -> None:
        pass  # output is in run.logs(name); events say when a task moved

    def finish(self, cancel_reason: str | None) -> None:
        self._queue.put(_END)

    # -- any thread --------------------------------------------------------------------
    def close(self) -> None:
        """Stop calling the callback (the engine keeps the sink, which then does nothing)."""
        self._closed = True
        self._queue.put(_END)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the last call is made; True if it was."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the listener's thread -----------------------------------------------------------
    def _work(self, initializer: Callable[[], None] | None) -> None:
        if initializer is not None:
            initializer()
        ended = False
        while not ended:
            item = self._queue.get()  # wait for the first batch...
            pending: list[tuple] = []
            while True:               # ...and take all that is queued behind it
                if item is _END:
                    ended = True
                    break
                pending.extend(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self.done = ended
            if pending and not self._closed:
                self._call([as_dict(e) for e in pending])
            if not ended:
                time.sleep(self.interval)  # the throttle: what comes meanwhile is one call

    def _call(self, events: list[dict]) -> None:
        try:
            self.callback(events)
        except Exception as exc:  # noqa: BLE001 - a listener must never fail the run
            if not self._warned:
                self._warned = True
                warnings.warn(f"nbflow: the on_event callback {self.callback!r} raised "
                              f"{exc!r}; it keeps being called (fix it, or listener.close())",
                              RuntimeWarning, stacklevel=1)
