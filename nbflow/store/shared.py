"""One Store per store location in a process, so every Flow on it shares one writer.

``Flow.store`` takes its Store from here.  The registry refers to Stores weakly:
a Store that no Flow or run refers to any more is released (``store.py``), and
the next Flow on that location opens a new one.  A Store made explicitly,
``Flow(store=Store(...))``, is used as it is and never registered, which is
how a test or a program gets an engine of its own (its own lease owner) on a
store another Flow of the process already uses.
"""

from __future__ import annotations

import os
import threading
import weakref

from .open import locate
from .store import Store

_stores: weakref.WeakValueDictionary[str, Store] = weakref.WeakValueDictionary()
_lock = threading.Lock()


def shared_store(store: str | os.PathLike | None = None) -> Store:
    """The process's Store for ``store`` (a path, a URL, or None for the default).

    Paths are compared once resolved (``~``, relative paths and symbolic links),
    so ``"runs.db"`` and ``"./runs.db"`` from the same folder are one store.  The
    Store keeps the lease TTL and busy timeout it was opened with.

    Raises
    ------
    StoreError, StoreVersionError, StoreLockedError
        as ``Store(store)``.
    """
    where = locate(store)
    key = os.path.realpath(where.path) if where.path is not None else where.text
    with _lock:  # two threads opening one location get one Store
        found = _stores.get(key)
        # A Store already open checks again what opening checks (a file made
        # read-only, a newer nbflow's upgrade...), else those would go unnoticed
        # for as long as the kernel lives; a file deleted or replaced meanwhile
        # gets a new Store.
        if found is None or not found.check_again():
            found = _stores[key] = Store(where.text)
        return found
