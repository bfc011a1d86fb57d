"""Reading a store file without ever writing to it, for the server extension.

The server is not the store's owner: it opens a SQLite file read-only
(``mode=ro``, so it can neither create nor change one), reads what a kernel
committed, and closes it.  A store written by an older nbflow lacks the newest
columns: they read as NULL ("not recorded"), the same as ``migrate.py`` leaves
old rows.  A store written by a newer nbflow is refused, as ``Store`` does.

Every failure is a :class:`ReadError` with a reason, a message that ends with
the fix, and the HTTP status the handlers answer with.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from typing import Any

from ..store.leases import DEFAULT_TTL, host_identity, owner_gone
from ..store.schema import SCHEMA_VERSION

LOG_LIMIT = 200_000      # bytes of one attempt's stream a response carries (its end)
EVENTS_LIMIT = 2_000     # events per response; the next request goes on from there
OWNER_TTL = DEFAULT_TTL  # a kernel that missed its heartbeats this long is gone (leases.py)
_HERE = host_identity()  # a kernel's process on this host is known gone at once


class ReadError(Exception):
    """What went wrong reading a store: ``reason`` (a word), ``status`` (HTTP), message."""

    def __init__(self, reason: str, status: int, message: str):
        super().__init__(message)
        self.reason, self.status = reason, status


class StoreReader:
    """One store file, opened read-only for one request (``with StoreReader(path) as r``).

    ``shown`` is how the file is named in messages (its path under the server root).
    """

    def __init__(self, path: str, shown: str):
        self.shown = shown
        if not os.path.isfile(path):
            raise ReadError("missing", 404, (
                f"there is no nbflow store at {shown!r}: run a flow from this notebook "
                "first, or pass ?store=PATH (a path under the server's root)"))
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=2.0, check_same_thread=False)
            # Text a kernel stored is user data: bytes that are not UTF-8 must not
            # make a whole answer fail.
            self.conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
            self._columns = self._read_columns()
            self._check_version()
        except sqlite3.Error as exc:
            self.close()
            raise _translate(exc, shown) from None
        except BaseException:
            self.close()   # a refused store is not left open (and locked for a writer)
            raise

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()

    def _read_columns(self) -> dict[str, set[str]]:
        tables = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "meta" not in tables or "runs" not in tables:
            raise ReadError("corrupt", 422, (
                f"{self.shown!r} is an SQLite file but not an nbflow store (it has no "
                "runs table); pass ?store= the store's path instead"))
        return {t: {r[1] for r in self.conn.execute(f"PRAGMA table_info({t})")}
                for t in ("runs", "tasks", "events", "logs") if t in tables}

    def _check_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = int(row[0]) if row and str(row[0]).isdigit() else None
        if found is None:
            raise ReadError("corrupt", 422, (
                f"the store {self.shown!r} records no schema version: it is damaged. "
                "Open it once with nbflow in a kernel, or restore it from a backup"))
        if found > SCHEMA_VERSION:
            raise ReadError("newer", 409, (
                f"the store {self.shown!r} has schema version {found}, newer than this "
                f"server's nbflow understands ({SCHEMA_VERSION}): upgrade nbflow in the "
                "environment that runs JupyterLab"))

    def _select(self, table: str, wanted: tuple[str, ...]) -> str:
        """``a, b, NULL AS c`` for the columns of ``table`` this store has."""
        have = self._columns.get(table, set())
        return ", ".join(c if c in have else f"NULL AS {c}" for c in wanted)

    def _rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        try:
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur]
        except sqlite3.Error as exc:
            raise _translate(exc, self.shown) from None

    # -- what the handlers ask ----------------------------------------------------------
    def runs(self, notebook: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Runs newest first (of ``notebook``, an absolute path, if given), with counts."""
        cols = self._select("runs", RUN_COLUMNS)
        where, params = ("WHERE notebook = ?", (notebook,)) if notebook else ("", ())
        if notebook and "notebook" not in self._columns["runs"]:
            return []
        out = self._rows(f"SELECT {cols} FROM runs {where} ORDER BY created DESC LIMIT ?",
                         (*params, limit))
        counts: dict[str, dict[str, int]] = {}
        if out and "tasks" in self._columns:
            marks = ", ".join("?" * len(out))
            for row in self._rows(f"SELECT run_id, state, COUNT(*) AS n FROM tasks WHERE "
                                  f"run_id IN ({marks}) GROUP BY run_id, state",
                                  tuple(r["id"] for r in out)):
                counts.setdefault(row["run_id"], {})[row["state"]] = row["n"]
        now = time.time()
        for r in out:
            r["counts"] = counts.get(r["id"], {})
            r["owner_alive"] = owner_alive(r, now)
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with its tasks in declaration order."""
        found = self._rows(f"SELECT {self._select('runs', RUN_COLUMNS)} FROM runs WHERE id = ?",
                           (run_id,))
        if not found:
            raise ReadError("no-run", 404, (
                f"the store {self.shown!r} has no run {run_id!r}: it may have been pruned; "
                "list the runs with GET .../nbflow/api/runs"))
        run = found[0]
        run["owner_alive"] = owner_alive(run, time.time())
        run["tasks"] = self._rows(
            f"SELECT {self._select('tasks', TASK_COLUMNS)} FROM tasks WHERE run_id = ? "
            "ORDER BY idx", (run_id,))
        for t in run["tasks"]:
            t["deps"] = json.loads(t["deps"]) if t["deps"] else []
        return run

    def events(self, run_id: str, since: int, limit: int = EVENTS_LIMIT) -> list[dict[str, Any]]:
        """The run's events with ``seq > since``, in order, at most ``limit``."""
        rows = self._rows("SELECT seq, task, attempt, from_state, to_state, at, detail "
                          "FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                          (run_id, since, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else None
        return rows

    def logs(self, run_id: str, task: str | None) -> list[dict[str, Any]]:
        """What each attempt printed: the last LOG_LIMIT bytes of each stream, and
        ``stdout_bytes``/``stderr_bytes``, the whole streams' sizes."""
        # As bytes: SQLite's text functions stop at a NUL, and output may hold one.
        sql = ("SELECT task, attempt, substr(CAST(stdout AS BLOB), -?) AS stdout,"
               " substr(CAST(stderr AS BLOB), -?) AS stderr,"
               " length(CAST(stdout AS BLOB)) AS stdout_bytes,"
               " length(CAST(stderr AS BLOB)) AS stderr_bytes FROM logs WHERE run_id = ?")
        params: tuple = (LOG_LIMIT, LOG_LIMIT, run_id)
        if task is not None:
            sql, params = sql + " AND task = ?", (*params, task)
        rows = self._rows(sql + " ORDER BY task, attempt", params)
        for r in rows:
            r["stdout"] = (r["stdout"] or b"").decode("utf-8", "replace")
            r["stderr"] = (r["stderr"] or b"").decode("utf-8", "replace")
        return rows

    def cells(self, notebook: str) -> dict[str, Any]:
        """The latest state of each cell of ``notebook``: for each flow its latest run
        from that notebook, a later run's tasks over an earlier one's."""
        if "notebook" not in self._columns["runs"] or "cell_id" not in self._columns["tasks"]:
            return {"runs": [], "cells": {}}
        latest = self._rows(
            f"SELECT {self._select('runs', RUN_COLUMNS)} FROM runs r WHERE notebook = ? AND "
            "created = (SELECT MAX(created) FROM runs WHERE notebook = r.notebook AND "
            "flow = r.flow) ORDER BY created", (notebook,))
        cells: dict[str, list[dict[str, Any]]] = {}
        now = time.time()
        for run in latest:
            run["owner_alive"] = owner_alive(run, now)
            taken: dict[str, list] = {}
            for t in self._rows("SELECT name, cell_id, state, attempt, started, finished, error "
                                "FROM tasks WHERE run_id = ? AND cell_id IS NOT NULL "
                                "ORDER BY idx", (run["id"],)):
                taken.setdefault(t.pop("cell_id"), []).append({**t, "run": run["id"]})
            cells.update(taken)
        return {"runs": latest, "cells": cells}


RUN_COLUMNS = ("id", "flow", "state", "created", "finished", "owner", "host", "pid",
               "heartbeat", "resumed_from", "notebook")
TASK_COLUMNS = ("name", "idx", "level", "deps", "kind", "state", "attempt", "started",
                "finished", "error", "cell_id")


def owner_alive(run: dict[str, Any], now: float) -> bool | None:
    """For a run still ``running``: whether its kernel is there (its process runs, when it
    is on the server's host; its heartbeat is recent); else None."""
    if run["state"] != "running":
        return None
    return not owner_gone(run.get("host"), run.get("pid"), run["heartbeat"], now, OWNER_TTL,
                          _HERE)


def _translate(exc: sqlite3.Error, shown: str) -> ReadError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ReadError("locked", 503, (
            f"the store {shown!r} is locked by another process; try again in a moment "
            "(a long-running write or an open transaction in a kernel holds it)"))
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return ReadError("corrupt", 422, (
            f"the store {shown!r} is damaged ({text}); restore it from a backup, or move it "
            "away and let the next run create a new one"))
    return ReadError("unreadable", 500, (
        f"the store {shown!r} could not be read ({text}); check that the server may read "
        "the file and its folder"))
