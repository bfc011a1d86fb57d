"""A process-wide change that holds while at least one run needs it.

Output capture swaps ``sys.stdout``; GC freezing changes the collector. Both
are global, runs may overlap (a background run and a blocking one), and the
change must be undone only when the last of them ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class WhileAny:
    """``with scope():`` applies ``enter()`` for the first holder, ``leave()`` after the last.

    Re-entrant and safe from any thread.
    """

    def __init__(self, enter: Callable[[], None], leave: Callable[[], None]):
        self._enter, self._leave = enter, leave
        self._lock = threading.Lock()
        self._holders = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._enter()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._leave()
