"""Turning queued batches into SQL, and running that SQL in one transaction.

The engine's batches (events, task definitions, logs, result rows) arrive as
``(kind, run_id, payload)`` items; ``valued_events`` are events with the
pickles of some successes' results (``{seq: bytes}``), each stored in its
event's row.  :class:`Statements` folds the events into
the task rows (``core.replay.fold``), turns final failures into dead letters
and returns the statements of one transaction; :class:`Transactions` runs
them through a plain DB-API connection.  The store's writer thread always
builds the statements (it keeps the mirror of the task rows); the transaction
runs in the writer process for a SQLite file (``writerproc.py``, which needs
nothing else from here) and in the thread for a database server (``writer.py``).
This module imports nothing but the standard library and ``nbflow.core``.

Task rows are written by the run's owner only (the engine holding its lease,
``leases.py``), so their updates need no compare-and-set; their ``version``
still counts the changes for readers.  After a failed transaction the same
items (and more) are built again: folding an event twice gives the same row,
and task rows not yet inserted stay pending until :meth:`Statements.committed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ..core.replay import fold, new_row

#: One transaction: ``(sql, rows)`` pairs, each run with ``executemany``.
Transaction = list[tuple[str, list[tuple]]]


class Statements:
    """Builds the transaction of a group of items, keeping the task rows' mirror.

    ``paramstyle`` is the driver's (``qmark`` or ``format``/``pyformat``).
    With ``encode_detail`` the event details are turned into JSON text here;
    without it the driver must adapt a detail (a dict) itself.
    """

    def __init__(self, paramstyle: str, encode_detail: bool):
        self._encode_detail = encode_detail
        self._rows: dict[str, dict[str, list]] = {}   # run -> task -> row
        self._unwritten: dict[str, dict[str, tuple]] = {}  # run -> task -> its static row
        self._forget: list[str] = []
        p = "?" if paramstyle == "qmark" else "%s"
        self._sql_event = ("INSERT INTO events (run_id, seq, task, attempt, from_state, to_state,"
                           f" at, detail) VALUES ({', '.join([p] * 8)})")
        self._sql_valued_event = ("INSERT INTO events (run_id, seq, task, attempt, from_state,"
                                  f" to_state, at, detail, value) VALUES ({', '.join([p] * 9)})")
        self._sql_task = (f"UPDATE tasks SET state={p}, attempt={p}, started={p}, finished={p},"
                          f" error={p}, version=version+1 WHERE run_id={p} AND name={p}")
        self._sql_log = (f"INSERT INTO logs (run_id, task, attempt, stdout, stderr) "
                         f"VALUES ({p}, {p}, {p}, {p}, {p})")
        self._sql_dead = ("INSERT INTO dead_letters (run_id, task, attempt, error, traceback,"
                          f" inputs, key, created) VALUES ({', '.join([p] * 8)})")
        self._sql_result = ("INSERT INTO results (run_id, task, key, kind, created) VALUES "
                            f"({', '.join([p] * 5)})")
        self._sql_task_insert = ("INSERT INTO tasks (run_id, name, idx, level, deps, kind,"
                                 " cell_id, state, attempt, started, finished, error, version)"
                                 f" VALUES ({', '.join([p] * 12)}, 1)")

    def build(self, items: list[tuple]) -> Transaction:
        """The statements that write ``items`` (empty when there is nothing to write)."""
        event_rows: list[tuple] = []
        log_rows, dead_rows, result_rows = [], [], []
        changed: dict[str, dict[str, list]] = {}  # run -> task -> row, once per group
        valued_rows: list[tuple] = []   # events that carry a result's pickle
        for kind, run_id, payload in items:
            if kind == "events" or kind == "valued_events":
                if kind == "valued_events":
                    payload, values = payload
                    for ev in payload:
                        blob = values.get(ev[1])
                        if blob is None:
                            event_rows.append(ev)
                        else:
                            valued_rows.append((*ev, blob))
                else:
                    event_rows.extend(payload)
                changed.setdefault(run_id, {}).update(
                    fold(self._rows.setdefault(run_id, {}), payload))
                dead_rows.extend(_dead_letter(ev) for ev in payload
                                 if ev[5] == "failed" and ev[4] == "running")
            elif kind == "tasks":
                # A run's tasks come in one item, 10,000 of them for a big run:
                # no per-row unpacking here, the row is kept as it came.
                rows = self._rows.setdefault(run_id, {})
                unwritten = self._unwritten.setdefault(run_id, {})
                for row in payload:
                    unwritten[row[0]] = row
                    rows[row[0]] = new_row()
            elif kind == "logs":
                log_rows.extend((run_id, *rec) for rec in payload)
            elif kind == "results":
                result_rows.extend(payload)
            elif kind == "forget":
                self._forget.append(run_id)
        # Task rows not yet in the database go in once, already in their current
        # state, rather than as an insert followed by an update.
        task_inserts: list[tuple] = []
        for run_id, unwritten in self._unwritten.items():
            rows = self._rows[run_id]
            task_inserts += [(run_id, *static, *rows[name]) for name, static in unwritten.items()]
        task_rows = [(*row, run_id, name) for run_id, rows in changed.items()
                     for name, row in rows.items()
                     if name not in self._unwritten.get(run_id, ())]
        if self._encode_detail:
            event_rows = [(*ev[:7], None if ev[7] is None else encode(ev[7]))
                          for ev in event_rows]
            valued_rows = [(*ev[:7], None if ev[7] is None else encode(ev[7]), ev[8])
                           for ev in valued_rows]
        return [(sql, rows) for sql, rows in (
            (self._sql_task_insert, task_inserts), (self._sql_event, event_rows),
            (self._sql_valued_event, valued_rows),
            (self._sql_task, task_rows), (self._sql_log, log_rows),
            (self._sql_dead, dead_rows), (self._sql_result, result_rows)) if rows]

    def committed(self) -> None:
        """The last built transaction was committed (until then it is built again)."""
        self._unwritten.clear()
        for run_id in self._forget:
            self._rows.pop(run_id, None)
        self._forget.clear()


class Transactions:
    """Runs transactions through the DB-API connection ``connect()`` returns
    (kept between them, replaced after a failure)."""

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._conn = None

    def execute(self, statements: Transaction) -> None:
        """Run ``statements`` in one transaction; raises the driver's error on failure."""
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            cur = conn.cursor()
            for sql, rows in statements:
                cur.executemany(sql, rows)
            conn.commit()
        except BaseException:
            # The retry starts from a fresh connection (a server may have restarted).
            self._conn = None
            with suppress(Exception):  # the connection may be gone with the server
                conn.rollback()
            with suppress(Exception):
                conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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


def _json_encoder() -> Callable[[dict], str]:
    # json.dumps builds a new C encoder on every call, which is most of its cost
    # for a small dict; details are flat, engine-made dicts (no cycles), so one
    # encoder built once serves them all at a third of the cost.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the _json accelerator
        return json.JSONEncoder(default=str).encode
    encoder = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                   False, False, True)
    return lambda detail: "".join(encoder(detail, 0))


#: An event detail as the JSON text stored in ``events.detail``.
encode = _json_encoder()
