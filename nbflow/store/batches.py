"""Turning queued batches into the SQL of bounded transactions.

The engine's batches (events, task definitions, logs, result rows, a run's task
durations) arrive as
``(kind, run_id, payload)`` items; ``valued_events`` are events with the
pickles of some successes' results (``{seq: bytes}``), each stored in its
event's row.  :class:`Statements` folds the events into
the task rows (``core.replay.fold``), turns final failures into dead letters
and returns the statements of one transaction, which ``transactions.py`` runs
through a plain DB-API connection; :func:`group_end` says how many items one
transaction takes.  The store's writer thread always builds the statements
(it keeps the mirror of the task rows); the transaction runs in the writer
process for a SQLite file (``writerproc.py``, which needs only ``encode``
from here) and in the thread for a database server (``writer.py``).
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
from itertools import compress
from operator import itemgetter

from ..core.replay import fold, new_row
from ..core.text import TEXT_LIMIT, storable
from .transactions import Transaction


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
        self._sql_log = (f"INSERT INTO logs (run_id, task, attempt, stdout, stderr, displays) "
                         f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})")
        self._sql_dead = ("INSERT INTO dead_letters (run_id, task, attempt, error, traceback,"
                          f" inputs, key, created) VALUES ({', '.join([p] * 8)})")
        self._sql_result = ("INSERT INTO results (run_id, task, key, kind, created) VALUES "
                            f"({', '.join([p] * 5)})")
        # A run's task durations (``history.py``), then the flow's rows past the
        # latest ``keep`` dropped: in the run's last transaction, not one of their own.
        self._sql_durations = ("INSERT INTO durations (flow, run_id, names, codes, seconds) "
                               f"VALUES ({', '.join([p] * 5)})")
        # Latest by the runs' creation time: run ids sort by it only to the second.
        self._sql_durations_trim = (
            f"DELETE FROM durations WHERE flow = {p} AND run_id NOT IN (SELECT d.run_id FROM "
            f"durations d JOIN runs r ON r.id = d.run_id WHERE d.flow = {p} "
            f"ORDER BY r.created DESC, d.run_id DESC LIMIT {p})")
        self._sql_task_insert = ("INSERT INTO tasks (run_id, name, idx, level, deps, kind,"
                                 " cell_id, state, attempt, started, finished, error, version)"
                                 f" VALUES ({', '.join([p] * 12)}, 1)")
        # A run's end, when its synchronous write failed (Store.finish_run): after
        # its events, by its owner only (a run taken over stays as its new owner set it).
        self._sql_finish = (f"UPDATE runs SET state={p}, finished={p}, version=version+1 "
                            f"WHERE id={p} AND owner={p}")
        # The writer's record of its transactions (schema.commits), one row per writer.
        self.sql_commit = (f"INSERT INTO commits (writer, txn, at) VALUES ({p}, {p}, {p}) "
                           "ON CONFLICT (writer) DO UPDATE SET txn = excluded.txn, "
                           "at = excluded.at")
        self.sql_committed = f"SELECT txn FROM commits WHERE writer = {p}"
        self.sql_uncommit = f"DELETE FROM commits WHERE writer = {p}"
        # Which run and task a row is about, by the positions of their columns.
        self._about = {self._sql_event: ("event", 0, 2), self._sql_task: ("task row", -2, -1),
                       self._sql_valued_event: ("event with its result", 0, 2),
                       self._sql_log: ("log", 0, 1), self._sql_dead: ("dead letter", 0, 1),
                       self._sql_result: ("result index row", 0, 1),
                       self._sql_task_insert: ("task row", 0, 1),
                       self._sql_durations: ("task durations", 1, None),
                       self._sql_durations_trim: ("trim of the task durations", None, None),
                       self._sql_finish: ("final state", 2, None)}

    def build(self, items: list[tuple]) -> Transaction:
        """The statements that write ``items`` (empty when there is nothing to write)."""
        # Only the runs forgotten in these items: a group that fails is built again.
        self._forget = []
        event_rows: list[tuple] = []
        log_rows, dead_rows, result_rows, finish_rows = [], [], [], []
        duration_rows, trim_rows = [], []
        changed: dict[str, dict[str, list]] = {}  # run -> task -> row, once per group
        valued_rows: list[tuple] = []   # events that carry a result's pickle
        for kind, run_id, payload in items:
            if kind == "events" or kind == "valued_events":
                values = None
                if kind == "valued_events":
                    payload, values = payload
                # Only the events of ends other than success carry the user's text
                # (errors, tracebacks, reasons), and they are rare.
                if not _WORDY.isdisjoint(map(_TO, payload)):
                    payload = [_storable_event(ev) for ev in payload]
                    dead_rows.extend(_dead_letter(ev) for ev in payload
                                     if ev[5] == "failed" and ev[4] == "running")
                changed.setdefault(run_id, {}).update(
                    fold(self._rows.setdefault(run_id, {}), payload))
                if values is None:
                    event_rows.extend(payload)
                else:
                    _split_valued(payload, values, event_rows, valued_rows)
            elif kind == "tasks":
                # A run's tasks come in one item, 10,000 of them for a big run:
                # no per-row unpacking here, the row is kept as it came.
                rows = self._rows.setdefault(run_id, {})
                unwritten = self._unwritten.setdefault(run_id, {})
                for row in payload:
                    unwritten[row[0]] = row
                    rows[row[0]] = new_row()
            elif kind == "logs":
                # Process executors bring their own text: capped and escaped here too.
                log_rows.extend((run_id, rec[0], rec[1], storable(rec[2]), storable(rec[3]),
                                 _displays_json(rec)) for rec in payload)
            elif kind == "results":
                result_rows.extend(payload)
            elif kind == "finish":
                state, finished, owner = payload
                finish_rows.append((state, finished, run_id, owner))
            elif kind == "forget":
                self._forget.append(run_id)
            elif kind == "durations":
                flow, names, codes, seconds, keep = payload
                duration_rows.append((flow, run_id, names, codes, seconds))
                trim_rows.append((flow, flow, keep))
        # Task rows not yet in the database go in once, already in their current
        # state, rather than as an insert followed by an update.
        task_inserts: list[tuple] = []
        for run_id, unwritten in self._unwritten.items():
            rows = self._rows[run_id]
            task_inserts += [(run_id, *static, *rows[name]) for name, static in unwritten.items()]
        task_rows = []
        for run_id, rows in changed.items():
            unwritten = self._unwritten.get(run_id)
            task_rows += [(*row, run_id, name) for name, row in rows.items()
                          if not unwritten or name not in unwritten]
        if self._encode_detail:
            event_rows = [(*ev[:7], None if ev[7] is None else encode(ev[7]))
                          for ev in event_rows]
            valued_rows = [(*ev[:7], None if ev[7] is None else encode(ev[7]), ev[8])
                           for ev in valued_rows]
        return [(sql, rows) for sql, rows in (
            (self._sql_task_insert, task_inserts), (self._sql_event, event_rows),
            (self._sql_valued_event, valued_rows),
            (self._sql_task, task_rows), (self._sql_log, log_rows),
            (self._sql_dead, dead_rows), (self._sql_result, result_rows),
            (self._sql_finish, finish_rows), (self._sql_durations, duration_rows),
            (self._sql_durations_trim, trim_rows)) if rows]

    def describe(self, sql: str, row: tuple) -> str:
        """What ``row`` of the statement ``sql`` records, for a warning that it was refused."""
        what, run_at, task_at = self._about.get(sql, ("row", None, None))
        run = f" of run {row[run_at]}" if run_at is not None else ""
        task = f" of task {row[task_at]!r}" if task_at is not None else ""
        return f"the {what}{task}{run}"

    def committed(self) -> None:
        """The last built transaction was committed (until then it is built again)."""
        self._unwritten.clear()
        for run_id in self._forget:
            self._rows.pop(run_id, None)
        self._forget.clear()


#: Bounds of one transaction: rows, and characters of logs (and saved values).
#: A SQLite file is locked for writing while a transaction runs, and another
#: kernel waits for it only its busy timeout (5 s): these keep one to a
#: fraction of a second.  A 10,000-task run's own groups stay within them.
TXN_ROWS = 20_000
TXN_CHARS = 8 << 20


def group_end(items: list[tuple], start: int, max_rows: int = TXN_ROWS,
              max_chars: int = TXN_CHARS) -> int:
    """Where the transaction that writes ``items[start:]`` in order ends: at least one
    item, more while within the bounds.  (Results saved with their success events
    travel in the events' own item, ``valued_events``, so no split parts them.)"""
    rows = chars = 0
    end = start
    while end < len(items):
        kind, _run, payload = items[end]
        if kind == "valued_events":
            batch, values = payload
            n, c = len(batch), sum(map(len, values.values()))
        else:
            n = len(payload) if isinstance(payload, (list, dict)) else 1
            c = sum([_log_chars(r) for r in payload]) if kind == "logs" else 0
        if end > start and (rows + n > max_rows or chars + c > max_chars):
            break
        rows, chars, end = rows + n, chars + c, end + 1
    return end


def split_logs(items: list[tuple], max_chars: int = TXN_CHARS) -> list[tuple]:
    """``items`` with each ``logs`` item of more than ``max_chars`` characters cut into
    several (one engine turn may bring the logs of many big attempts)."""
    out = []
    for item in items:
        kind, run_id, payload = item
        if kind != "logs" or sum([_log_chars(r) for r in payload]) <= max_chars:
            out.append(item)
            continue
        part: list[tuple] = []
        size = 0
        for rec in payload:
            if part and size + _log_chars(rec) > max_chars:
                out.append((kind, run_id, part))
                part, size = [], 0
            part.append(rec)
            size += _log_chars(rec)
        out.append((kind, run_id, part))
    return out


def _displays_json(rec: tuple) -> str | None:
    """A log record's rich outputs as the ``displays`` column holds them (None: none).

    ASCII JSON, so that ``storable`` never has to cut it (which would break it): what
    does not fit in a column is replaced by a note that says so.
    """
    shown = rec[4] if len(rec) > 4 else ()
    if not shown:
        return None
    text = json.dumps(list(shown))
    if len(text) > TEXT_LIMIT:
        text = json.dumps([{"data": {"text/plain": f"[{len(shown)} outputs, {len(text):,} "
                                                   "characters: too big to keep]"}}])
    return text


def _log_chars(rec: tuple) -> int:
    """About how many characters a log record adds to a transaction."""
    shown = rec[4] if len(rec) > 4 else ()
    return len(rec[2]) + len(rec[3]) + sum([len(v) for b in shown for v in b["data"].values()])


# Ends whose events carry the user's text in their detail.
_WORDY = frozenset({"failed", "retrying", "skipped", "cancelled", "upstream_failed"})
_TO = itemgetter(5)   # an event's to_state


def _split_valued(events: list[tuple], values: dict[int, bytes], plain: list[tuple],
                  valued: list[tuple]) -> None:
    """Append to ``valued`` each event of ``events`` whose seq has a pickle in
    ``values``, with it as a ninth column, and the others to ``plain``, in order.

    The engine numbers a batch's events one after the other, so an event is found
    by its seq and only the valued ones (a third of a run's events) cost a Python
    step; a batch numbered otherwise is matched event by event.
    """
    first = events[0][1] if events else 0
    at = [seq - first for seq in values]
    if all(0 <= k < len(events) and events[k][1] == seq for k, seq in zip(at, values)):
        keep = [True] * len(events)
        for k, blob in zip(at, values.values()):
            keep[k] = False
            valued.append((*events[k], blob))
        plain.extend(compress(events, keep))
        return
    for ev in events:
        blob = values.get(ev[1])
        if blob is None:
            plain.append(ev)
        else:
            valued.append((*ev, blob))


def _storable_event(ev: tuple) -> tuple:
    """``ev`` with the text of its detail made storable (a new event: the engine's
    is shared with other sinks)."""
    detail = ev[7]
    if not detail:
        return ev
    return (*ev[:7], {k: storable(v) if type(v) is str else v for k, v in detail.items()})


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
