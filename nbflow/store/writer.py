"""The store's writer thread: group commit of events, task rows and logs.

The engine hands batches over with a non-blocking ``put``; this thread sleeps
through a commit window, drains everything queued and turns it into the
statements of one transaction (``batches.py``), which it runs in a child
process for a SQLite file (``writerproc.py``) and itself for a database
server.  Persistence therefore costs the engine a queue put per loop
turn, whatever the number of transitions.

A write error is kept and re-raised by :meth:`Writer.flush` (the run learns of
it when it ends), never inside the engine.  What could not be written is
written again with the next group, in order:

* the database unavailable (locked, full, read-only, a server restarted, the
  writer process killed): the whole group again, until it goes through;
* a row the database refuses (``transactions.refused``): only that row is left
  out, with a warning, and the rest of its transaction is committed;
* a transaction whose answer was lost (the writer process died after COMMIT,
  a server's connection dropped during it): the writer first reads in the
  ``commits`` table whether it was committed, so nothing is written twice.

Each transaction is bounded (``batches.TXN_ROWS``, ``TXN_CHARS``): a big group
is written as several, in order.  :meth:`Writer.flush` waits at most
``timeout`` seconds for a writer that makes no progress (``NBFLOW_STORE_TIMEOUT``,
default :data:`DEFAULT_TIMEOUT`), then says what is wrong.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import uuid
import warnings
from collections import deque
from contextlib import suppress
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..errors import StoreError
from .batches import Statements, group_end, split_logs
from .sql import translate_error
from .transactions import Refused, Transaction, Transactions
from .writerproc import WriterProcess, WriterProcessEnded

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
#: Seconds between tries of a write that failed for want of the database.
RETRY_DELAY = 1.0
#: Seconds a flush waits for a writer that commits nothing (a stopped writer
#: process, a hung disk or server) before raising.
DEFAULT_TIMEOUT = 60.0


def resolve_timeout(timeout: float | None) -> float:
    """``timeout``, else ``NBFLOW_STORE_TIMEOUT``, else :data:`DEFAULT_TIMEOUT`.

    Raises
    ------
    ValueError
        it is not a number of seconds > 0 (``inf`` waits for ever).
    """
    given = timeout if timeout is not None else os.environ.get("NBFLOW_STORE_TIMEOUT")
    if given is None or given == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(given)
    except (TypeError, ValueError):
        value = math.nan
    if not value > 0:   # also NaN
        where = "NBFLOW_STORE_TIMEOUT" if timeout is None else "the store's write timeout"
        raise ValueError(f"{where} must be a number of seconds > 0 (inf waits for ever), "
                         f"not {given!r}")
    return value


class WallClock:
    """The writer's time: ``now()`` (monotonic seconds) and ``wait(event, seconds)``,
    a commit window that ``event`` (set by a flush or a close) cuts short.  Tests
    of the window pass a clock of their own, which moves only when they say."""

    now = staticmethod(time.monotonic)

    @staticmethod
    def wait(event: threading.Event, seconds: float) -> None:
        event.wait(seconds)


class Writer:
    """One background thread writing batches for any number of runs of one store."""

    def __init__(self, engine: Engine, label: str, path: str | None = None,
                 busy_timeout: float = 5.0, timeout: float | None = None,
                 clock: WallClock | None = None):
        """``path``: the SQLite file behind ``engine``, written from a child process;
        None writes through ``engine`` in this thread.  ``timeout``: see
        :func:`resolve_timeout`.  ``clock``: see :class:`WallClock` (the default)."""
        self._label = label
        self._clock = clock or WallClock()
        self.timeout = resolve_timeout(timeout)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        #: The warnings of rows left out (refused by the database, or no rows at
        #: all), oldest first; the latest thousand.
        self.refused: deque[str] = deque(maxlen=1000)
        self._retry: list[tuple] = []   # items not yet written, to write first
        self._urgent = threading.Event()   # set by flush/close: commit without waiting
        self._progress = self._clock.now()  # when the last write ended, well or not
        self._stalled_at: float | None = None   # _progress when a flush found it stalled
        self._dbapi_error = engine.dialect.dbapi.Error
        self._id = uuid.uuid4().hex       # this writer's row in the commits table
        self._txn = 0                     # the number of its last transaction
        # Items at the head of _retry that the last transaction held, when its
        # answer was lost: committed or not, the commits table says.
        self._unsure: int | None = None
        self._transactions: Transactions | WriterProcess
        if path is not None:
            self._statements_args = ("qmark", False)
            self._transactions = WriterProcess(path, busy_timeout)
            self._window = PROCESS_WINDOW
        else:
            self._statements_args = (engine.dialect.paramstyle, True)
            self._transactions = Transactions(
                engine.raw_connection, "BEGIN" if engine.dialect.name == "sqlite" else None)
            self._window = COMMIT_WINDOW
        self._statements = Statements(*self._statements_args)
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
        """Block until everything put so far is committed; raise a write error.

        Raises
        ------
        StoreError
            a write failed (it is retried with the next), or the writer made no
            progress for ``timeout`` seconds (default :attr:`timeout`).
        """
        timeout = self.timeout if timeout is None else timeout
        done = threading.Event()
        start = self._clock.now()
        self._q.put(("flush", None, done))
        self._urgent.set()
        # A writer that works through a backlog is not stalled: the bound is on
        # the time without progress, not on the whole flush.
        while not done.wait(min(timeout, 1.0)):
            if self._clock.now() - max(start, self._progress) >= timeout:
                self._stalled_at = self._progress
                raise StoreError(self._stalled(timeout))
        err, self.error = self.error, None
        if err is not None:
            # Keep the kind (locked, read-only...) so callers can tell them apart.
            cls = type(err) if isinstance(err, StoreError) else StoreError
            raise cls(f"writing to the nbflow store {self._label} failed: "
                      f"{str(err).rstrip('.')}. The run's record there is incomplete until a "
                      "later write succeeds (it is retried with the next one).") from err

    def _stalled(self, timeout: float) -> str:
        pid = self.pid
        if pid is None:
            who = "thread waits on the database server"
            check = "Check that the server is up and reachable"
        else:
            who = f"process (pid {pid}) is stopped, or its disk hangs"
            check = (f"Check the disk, and that the process is not stopped "
                     f"(kill -CONT {pid} resumes it)")
        return (f"the nbflow store {self._label} has written nothing for {timeout:g} s: its "
                f"writer {who}. Nothing is lost yet: what is queued is written once it moves "
                f"again. {check}; or set NBFLOW_STORE_TIMEOUT to wait longer.")

    def close(self) -> None:
        """Commit what is queued and stop; a write that failed for good is raised.

        A writer process stalled past :attr:`timeout` is killed and replaced, and
        what is left written if the new one can within a second; else it is lost,
        as in a crash.
        """
        try:
            self.flush()
        finally:
            self._q.put(("stop", None, None))
            self._urgent.set()
            # Found stalled and still so: a second for it to move, not another timeout.
            grace = 1.0 if self._stalled_at == self._progress else self.timeout
            wait = None if math.isinf(grace) else grace
            self._thread.join(wait)
            if self._thread.is_alive() and isinstance(self._transactions, WriterProcess):
                self._transactions.kill()   # its pipe's end unblocks the thread
                self._thread.join(wait)

    # -- the thread -----------------------------------------------------------------
    def _loop(self) -> None:
        q = self._q
        busy = 0.0   # seconds the last transaction took to build and write
        while True:
            try:
                # What failed for want of the database is tried again after a
                # pause even if nothing new comes (a run's end, at the end).
                items = [q.get(timeout=RETRY_DELAY if self._retry else None)]
            except queue.Empty:
                items = []
            # Group commit: sleep through the window, then take everything that
            # arrived, in one transaction.  Sleeping (rather than waking for each
            # batch) matters: the engine puts a batch per loop turn, and each
            # wake-up of this thread would take the GIL from it.  Batches have
            # been gathering while the last transaction was written, so only
            # the rest of the window is slept: when writing is the bottleneck
            # (a big run), the next transaction starts at once.  A flush or a
            # close cuts the window short.
            if self._window > busy and items and items[0][0] not in ("flush", "stop"):
                self._clock.wait(self._urgent, self._window - busy)
            self._urgent.clear()
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            waiters = [p for k, _r, p in items if k == "flush"]
            stop = any(k == "stop" for k, _r, _p in items)
            start = self._clock.now()
            self._write([it for it in items if it[0] not in ("flush", "stop")])
            self._progress = self._clock.now()
            busy = self._progress - start
            for w in waiters:
                w.set()
            if stop:
                if self._txn and not self._retry:   # nothing left to find out about
                    with suppress(Exception):
                        self._transactions.execute([(self._statements.sql_uncommit,
                                                     [(self._id,)])])
                self._transactions.close()
                return

    def _write(self, items: list[tuple]) -> None:
        """Write what is left from before, then ``items``; what is not written stays
        for the next call.  A writer process that died is replaced at once, for as
        long as each new one gets something written."""
        self._retry = self._retry + items
        in_vain = 0   # deaths in a row with nothing written
        while True:
            done = self._write_retry()
            if not isinstance(self.error, WriterProcessEnded):
                return
            in_vain = 0 if done else in_vain + 1
            if in_vain == 2:
                return

    def _write_retry(self) -> int:
        """Write ``_retry`` in bounded transactions, in order, as far as it goes
        (``error`` says why not further); returns how many items went."""
        batch = self._retry
        done = 0   # items of batch written
        try:
            try:
                batch = split_logs(batch)
            except Exception:  # noqa: BLE001 - an item that is no rows at all (see _buildable)
                batch = self._buildable(batch)
            if self._unsure is not None:
                found = self._transactions.query(self._statements.sql_committed, (self._id,))
                if found and found[0][0] == self._txn:   # it was: not again
                    self._statements.committed()
                    done = self._unsure
                self._unsure = None
            cleaned = False
            while done < len(batch):
                try:
                    end = group_end(batch, done)
                    statements = self._statements.build(batch[done:end])
                except Exception:
                    if cleaned:
                        raise
                    batch, cleaned = batch[:done] + self._buildable(batch[done:]), True
                    continue
                if statements:   # not for a flush alone, or a run forgotten
                    self._txn += 1
                    statements.append((self._statements.sql_commit,
                                       [(self._id, self._txn, time.time())]))
                    self._unsure = end - done
                    refused = self._transactions.execute(statements)
                    self._unsure = None
                    if refused:
                        self._report(statements, refused)
                self._statements.committed()
                done = end
                self._progress = self._clock.now()   # a long backlog is not a stall
            # A failure that a later try wrote through is no longer news.
            self.error = None
        except Exception as exc:  # noqa: BLE001 - kept for flush(); the engine must go on
            if isinstance(exc, self._dbapi_error):  # raw, from the driver
                exc = DBAPIError.instance(None, None, exc, self._dbapi_error)
            self.error = translate_error(exc, self._label)
        # Written again first next time: a lock released or space freed later
        # loses nothing (batches.py).
        self._retry = batch[done:]
        return done

    def _report(self, statements: Transaction, refused: Refused) -> None:
        for i, j, why in refused:
            sql, rows = statements[i]
            message = (f"nbflow: the store {self._label} refused "
                       f"{self._statements.describe(sql, rows[j])}: {why}. It was left out "
                       "and everything else was recorded; please report this as an nbflow "
                       "bug, with this message.")
            self._warn(message)

    def _buildable(self, items: list[tuple]) -> list[tuple]:
        """``items`` without those that cannot be turned into rows at all (wrong shapes
        or types handed to a sink), each left out with a warning: no retry would
        ever write them, and they must not stop the rest."""
        probe = Statements(*self._statements_args)   # a mirror of its own, thrown away
        out = []
        for item in items:
            try:
                probe.build(split_logs([item]))
                group_end([item], 0)
            except Exception as exc:  # noqa: BLE001 - left out, reported
                kind, run_id, _payload = item
                self._warn(f"nbflow: the store {self._label} could not record a batch of "
                           f"{kind} of run {run_id}: {type(exc).__name__}: {exc}. It was left "
                           "out and everything else was recorded; please report this as an "
                           "nbflow bug, with this message.")
            else:
                out.append(item)
        return split_logs(out)

    def _warn(self, message: str) -> None:
        self.refused.append(message)
        try:
            warnings.warn(message, RuntimeWarning, stacklevel=1)
        except Warning:   # warnings made errors: this thread must go on
            pass
