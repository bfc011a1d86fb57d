"""The store's writer thread: group commit of events, task rows and logs.

The engine hands batches over with a non-blocking ``put``; this thread drains
everything queued, folds the events into the task rows (``core.replay.apply``)
and writes it all in one transaction.  A task's final failure (a ``failed``
event after a running attempt) also becomes a row of ``dead_letters`` in that
transaction; rows of the ``results`` index of cached tasks
(``nbflow/results.py``) arrive ready-made.  Persistence therefore costs the
engine a queue put per loop turn, whatever the number of transitions.

The thread owns its connection and its mirror of the task rows it updates.
Task rows are written by the run's owner only (the engine holding its lease,
``leases.py``), so their updates need no compare-and-set; their ``version``
still counts the changes for readers.
A write error is kept and re-raised by :meth:`Writer.flush` (the run learns of
it when it ends), never inside the engine.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import Engine

from ..core.events import Detail
from ..core.replay import fold, new_row
from ..errors import StoreError
from .sql import translate_error


# Seconds a commit waits to gather more batches. Longer means fewer, larger
# transactions (cheaper per event, and less time holding the GIL in small
# slices that the engine waits for) but a longer window of successes to redo
# after a crash (at-least-once), and a store that lags the live view by that
# much.  flush() never waits for it.
COMMIT_WINDOW = 0.25


class Writer:
    """One background thread writing batches for any number of runs of one store."""

    def __init__(self, engine: Engine, label: str):
        self._engine = engine
        self._label = label
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._rows: dict[str, dict[str, list]] = {}   # run -> task -> row
        self._unwritten: dict[str, dict[str, list]] = {}  # run -> task -> static columns
        self.error: BaseException | None = None
        self._retry: list[tuple] = []   # items of a failed transaction, to write again
        self._conn = None
        self._urgent = threading.Event()   # set by flush/close: commit without waiting
        p = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql_event = ("INSERT INTO events (run_id, seq, task, attempt, from_state, to_state,"
                           f" at, detail) VALUES ({', '.join([p] * 8)})")
        self._sql_task = (f"UPDATE tasks SET state={p}, attempt={p}, started={p}, finished={p},"
                          f" error={p}, version=version+1 WHERE run_id={p} AND name={p}")
        self._sql_log = (f"INSERT INTO logs (run_id, task, attempt, stdout, stderr) "
                         f"VALUES ({p}, {p}, {p}, {p}, {p})")
        self._sql_dead = ("INSERT INTO dead_letters (run_id, task, attempt, error, traceback,"
                          f" inputs, key, created) VALUES ({', '.join([p] * 8)})")
        self._sql_result = ("INSERT INTO results (run_id, task, key, kind, created) VALUES "
                            f"({', '.join([p] * 5)})")
        self._sql_task_insert = ("INSERT INTO tasks (run_id, name, idx, level, deps, kind, state,"
                                 " attempt, started, finished, error, version) VALUES "
                                 f"({', '.join([p] * 11)}, 1)")
        # sqlite3 turns Detail into JSON itself (adapter below): the engine's
        # event tuples go to executemany untouched.
        self._native_detail = engine.dialect.name == "sqlite"
        self._thread = threading.Thread(target=self._loop, name="nbflow-store-writer",
                                         daemon=True)
        self._thread.start()

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
        while True:
            items = [q.get()]
            # Group commit: sleep through the window, then take everything that
            # arrived, in one transaction.  Sleeping (rather than waking for each
            # batch) matters: the engine puts a batch per loop turn, and each
            # wake-up of this thread would take the GIL from it.  A flush or a
            # close cuts the window short.
            if items[0][0] not in ("flush", "stop"):
                self._urgent.wait(COMMIT_WINDOW)
            self._urgent.clear()
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            waiters = [p for k, _r, p in items if k == "flush"]
            stop = any(k == "stop" for k, _r, _p in items)
            batch = self._retry + [it for it in items if it[0] not in ("flush", "stop")]
            try:
                self._write(batch)
                # A failure that a later try wrote through is no longer news.
                self._retry, self.error = [], None
            except Exception as exc:  # kept for flush(); the engine must go on
                self.error = translate_error(exc, self._label)
                # Written again with the next batch: a lock released or space freed
                # later loses nothing (the fold below is idempotent per event).
                self._retry = batch
            for w in waiters:
                w.set()
            if stop:
                if self._conn is not None:
                    self._conn.close()
                return

    def _connect(self):
        """The writer's own connection, kept for its lifetime (writer thread only)."""
        conn = self._engine.connect()
        if self._native_detail:
            # The writer only adds rows under runs that exist (create_run wrote
            # them first): checking each event's foreign key against runs cost
            # about a quarter of the insert time, for nothing.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        return conn

    def _write(self, items: list) -> None:
        event_rows: list[tuple] = []
        task_rows, log_rows, dead_rows, result_rows, forget = [], [], [], [], []
        for kind, run_id, payload in items:
            if kind == "events":
                changed = fold(self._rows.setdefault(run_id, {}), payload)
                unwritten = self._unwritten.get(run_id, ())
                task_rows.extend((*row, run_id, name) for name, row in changed.items()
                                 if name not in unwritten)
                event_rows.extend(payload)
                dead_rows.extend(_dead_letter(ev) for ev in payload
                                 if ev[5] == "failed" and ev[4] == "running")
            elif kind == "tasks":
                rows = self._rows.setdefault(run_id, {})
                unwritten = self._unwritten.setdefault(run_id, {})
                for name, *static in payload:
                    unwritten[name] = static
                    rows[name] = new_row()
            elif kind == "logs":
                log_rows.extend((run_id, *rec) for rec in payload)
            elif kind == "results":
                result_rows.extend(payload)
            elif kind == "forget":
                forget.append(run_id)
        # Task rows not yet in the database go in once, already in their current
        # state, rather than as an insert followed by an update.
        task_inserts = [(run_id, name, *static, *self._rows[run_id][name])
                        for run_id, unwritten in self._unwritten.items()
                        for name, static in unwritten.items()]
        if event_rows or task_inserts or log_rows or result_rows:
            self._commit(event_rows, task_inserts, task_rows, log_rows, dead_rows, result_rows)
        # Only once committed: a failed batch is folded again from its items.
        self._unwritten.clear()
        for run_id in forget:
            self._rows.pop(run_id, None)

    def _commit(self, event_rows, task_inserts, task_rows, log_rows, dead_rows, result_rows
                ) -> None:
        if not self._native_detail:
            event_rows = [(*ev[:7], None if ev[7] is None else _encode(ev[7]))
                          for ev in event_rows]
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            self._execute(conn, event_rows, task_inserts, task_rows, log_rows, dead_rows,
                          result_rows)
        except Exception:
            # The retry starts from a fresh connection (a server may have restarted).
            self._conn = None
            conn.close()
            raise

    def _execute(self, conn, event_rows, task_inserts, task_rows, log_rows, dead_rows,
                 result_rows) -> None:
        with conn.begin():
            if task_inserts:
                conn.exec_driver_sql(self._sql_task_insert, task_inserts)
            if event_rows:
                conn.exec_driver_sql(self._sql_event, event_rows)
            if task_rows:
                conn.exec_driver_sql(self._sql_task, task_rows)
            if log_rows:
                conn.exec_driver_sql(self._sql_log, log_rows)
            if dead_rows:
                conn.exec_driver_sql(self._sql_dead, dead_rows)
            if result_rows:
                conn.exec_driver_sql(self._sql_result, result_rows)


def _dead_letter(ev: tuple) -> tuple:
    """The dead-letter row of a final-failure event (its detail is the engine's record).

    A failed compensation (``compensating -> failed``) is not one: the task's
    own work succeeded, and running it again would not undo anything.
    """
    run_id, _seq, task, attempt, _frm, _to, at, detail = ev
    detail = detail or {}
    inputs = detail.get("inputs")
    return (run_id, task, attempt, detail.get("error"), detail.get("traceback"),
            None if inputs is None else json.dumps(inputs), detail.get("key"), at)


def _json_encoder():
    # json.dumps builds a new C encoder on every call, which is most of its cost
    # for a small dict; details are flat, engine-made dicts (no cycles), so one
    # encoder built once serves them all at a third of the cost.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the _json accelerator
        return json.JSONEncoder(default=str).encode
    encoder = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                   False, False, True)
    return lambda detail: "".join(encoder(detail, 0))


_encode = _json_encoder()
sqlite3.register_adapter(Detail, _encode)
