"""The store's writer thread: group commit of events, task rows and logs.

The engine hands batches over with a non-blocking ``put``; this thread drains
everything queued, folds the events into the task rows (``core.replay.apply``)
and writes it all in one transaction.  Persistence therefore costs the engine a
queue put per loop turn, whatever the number of transitions.

The thread owns its connection and its mirror of the task rows it updates.
A write error is kept and re-raised by :meth:`Writer.flush` (the run learns of
it when it ends), never inside the engine.
"""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

from sqlalchemy.engine import Engine

from ..core.replay import fold
from ..errors import StoreError
from .sql import translate_error


class Writer:
    """One background thread writing batches for any number of runs of one store."""

    def __init__(self, engine: Engine, label: str):
        self._engine = engine
        self._label = label
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._rows: dict[str, dict[str, list]] = {}   # run -> task -> row
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="nbflow-store-writer",
                                         daemon=True)
        self._thread.start()
        p = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql_event = ("INSERT INTO events (run_id, seq, task, attempt, from_state, to_state,"
                           f" at, detail) VALUES ({', '.join([p] * 8)})")
        self._sql_task = (f"UPDATE tasks SET state={p}, attempt={p}, started={p}, finished={p},"
                          f" error={p}, version=version+1 WHERE run_id={p} AND name={p}")
        self._sql_log = (f"INSERT INTO logs (run_id, task, attempt, stdout, stderr) "
                         f"VALUES ({p}, {p}, {p}, {p}, {p})")
        self._sql_run = (f"UPDATE runs SET state={p}, finished={p}, version=version+1 "
                         f"WHERE id={p}")

    # -- called from other threads ---------------------------------------------
    def put(self, kind: str, run_id: str, payload: Any) -> None:
        self._q.put((kind, run_id, payload))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything put so far is committed; raise a write error."""
        done = threading.Event()
        self._q.put(("flush", None, done))
        if not done.wait(timeout):
            raise StoreError(f"the nbflow store {self._label} did not commit within {timeout}s")
        if self.error is not None:
            raise StoreError(f"writing to the nbflow store {self._label} failed: {self.error}. "
                             "The run's record there is incomplete.") from self.error

    def close(self) -> None:
        self._q.put(("stop", None, None))
        self._thread.join()

    # -- the thread -----------------------------------------------------------------
    def _loop(self) -> None:
        q = self._q
        while True:
            items = [q.get()]
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            waiters = [p for k, _r, p in items if k == "flush"]
            stop = any(k == "stop" for k, _r, _p in items)
            if self.error is None:
                try:
                    self._write(items)
                except Exception as exc:  # kept for flush(); the engine must go on
                    self.error = translate_error(exc, self._label)
            for w in waiters:
                w.set()
            if stop:
                return

    def _write(self, items: list) -> None:
        event_rows, log_rows, run_rows, task_rows = [], [], [], []
        encode = _encode
        for kind, run_id, payload in items:
            if kind == "events":
                changed = fold(self._rows.setdefault(run_id, {}), payload)
                task_rows.extend((*row, run_id, name) for name, row in changed.items())
                event_rows.extend(
                    (run_id, *ev[:6], None if ev[6] is None else encode(ev[6])) for ev in payload)
            elif kind == "logs":
                log_rows.extend((run_id, *rec) for rec in payload)
            elif kind == "run":
                run_rows.append((payload[0], payload[1], run_id))
            elif kind == "forget":
                self._rows.pop(run_id, None)
        if not (event_rows or log_rows or run_rows):
            return
        with self._engine.begin() as conn:
            if event_rows:
                conn.exec_driver_sql(self._sql_event, event_rows)
            if task_rows:
                conn.exec_driver_sql(self._sql_task, task_rows)
            if log_rows:
                conn.exec_driver_sql(self._sql_log, log_rows)
            if run_rows:
                conn.exec_driver_sql(self._sql_run, run_rows)


# One encoder for every detail: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(default=str).encode
