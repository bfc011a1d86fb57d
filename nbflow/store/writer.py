"""The store's writer thread: group commit of events, task rows and logs.

The engine hands batches over with a non-blocking ``put``; this thread sleeps
through a commit window, drains everything queued and turns it into the
statements of one transaction (``batches.py``), which it runs in a child
process for a SQLite file (``writerproc.py``) and itself for a database
server.  Persistence therefore costs the engine a queue put per loop
turn, whatever the number of transitions.

A write error is kept and re-raised by :meth:`Writer.flush` (the run learns of
it when it ends), never inside the engine.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..errors import StoreError
from .batches import Statements, Transactions
from .sql import translate_error
from .writerproc import WriterProcess


# Seconds a commit waits to gather more batches.  Longer means fewer, larger
# transactions, and fewer wake-ups of this thread, each of which takes the GIL
# from the engine, but a longer window of successes to redo after a crash
# (at-least-once) and a store that lags the live view by that much.  flush()
# never waits for it.  Writing in this thread (a database server) holds the
# GIL for the whole write: a quarter of a second keeps that to a few slices a
# second.  For the writer process (a SQLite file) this thread only builds the
# statements and marshals them, so it can commit more often: while the child
# writes one group the next gathers.  Not 0: waking for every batch of a
# 1,000-task chain slowed its engine by a quarter (benchmarks/README.md).
COMMIT_WINDOW = 0.25
PROCESS_WINDOW = 0.02


class Writer:
    """One background thread writing batches for any number of runs of one store."""

    def __init__(self, engine: Engine, label: str, path: str | None = None,
                 busy_timeout: float = 5.0):
        """``path``: the SQLite file behind ``engine``, written from a child process;
        None writes through ``engine`` in this thread."""
        self._label = label
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._retry: list[tuple] = []   # items of a failed transaction, to write again
        self._urgent = threading.Event()   # set by flush/close: commit without waiting
        self._dbapi_error = engine.dialect.dbapi.Error
        self._transactions: Transactions | WriterProcess
        if path is not None:
            self._statements = Statements("qmark", encode_detail=False)
            self._transactions = WriterProcess(path, busy_timeout)
            self._window = PROCESS_WINDOW
        else:
            self._statements = Statements(engine.dialect.paramstyle, encode_detail=True)
            self._transactions = Transactions(engine.raw_connection)
            self._window = COMMIT_WINDOW
        self._thread = threading.Thread(target=self._loop, name="nbflow-store-writer",
                                         daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        """The writer process's pid; None when this thread writes itself."""
        return getattr(self._transactions, "pid", None)

    # -- called from other threads ---------------------------------------------
    def put(self, kind: str, run_id: str, payload: Any) -> None:
        self._q.put((kind, run_id, payload))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything put so far is committed; raise a write error."""
        done = threading.Event()
        self._q.put(("flush", None, done))
        self._urgent.set()
        if not done.wait(timeout):
            raise StoreError(f"the nbflow store {self._label} did not commit within {timeout}s")
        err, self.error = self.error, None
        if err is not None:
            # Keep the kind (locked, read-only...) so callers can tell them apart.
            cls = type(err) if isinstance(err, StoreError) else StoreError
            raise cls(f"writing to the nbflow store {self._label} failed: "
                      f"{str(err).rstrip('.')}. The run's record there is incomplete until a "
                      "later write succeeds (it is retried with the next one).") from err

    def close(self) -> None:
        """Commit what is queued and stop; a write that failed for good is raised."""
        try:
            self.flush()
        finally:
            self._q.put(("stop", None, None))
            self._urgent.set()
            self._thread.join()

    # -- the thread -----------------------------------------------------------------
    def _loop(self) -> None:
        q = self._q
        busy = 0.0   # seconds the last transaction took to build and write
        while True:
            items = [q.get()]
            # Group commit: sleep through the window, then take everything that
            # arrived, in one transaction.  Sleeping (rather than waking for each
            # batch) matters: the engine puts a batch per loop turn, and each
            # wake-up of this thread would take the GIL from it.  Batches have
            # been gathering while the last transaction was written, so only
            # the rest of the window is slept: when writing is the bottleneck
            # (a big run), the next transaction starts at once.  A flush or a
            # close cuts the window short.
            if self._window > busy and items[0][0] not in ("flush", "stop"):
                self._urgent.wait(self._window - busy)
            self._urgent.clear()
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            waiters = [p for k, _r, p in items if k == "flush"]
            stop = any(k == "stop" for k, _r, _p in items)
            batch = self._retry + [it for it in items if it[0] not in ("flush", "stop")]
            start = time.monotonic()
            try:
                statements = self._statements.build(batch)
                if statements:   # not for a flush alone, or a run forgotten
                    self._transactions.execute(statements)
                self._statements.committed()
                # A failure that a later try wrote through is no longer news.
                self._retry, self.error = [], None
            except Exception as exc:  # kept for flush(); the engine must go on
                if isinstance(exc, self._dbapi_error):  # raw, from the driver
                    exc = DBAPIError.instance(None, None, exc, self._dbapi_error)
                self.error = translate_error(exc, self._label)
                # Written again with the next batch: a lock released or space freed
                # later loses nothing (batches.py).
                self._retry = batch
            busy = time.monotonic() - start
            for w in waiters:
                w.set()
            if stop:
                self._transactions.close()
                return
