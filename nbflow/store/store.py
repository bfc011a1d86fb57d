"""The state store: one object that opens the database and reaches everything in it.

``Store(url)`` opens (or creates) the database; ``store.runs()`` lists runs,
``store.tasks(run_id)``, ``store.events(run_id)`` and ``store.logs(run_id)``
read one.  Writing a run goes through :meth:`Store.sink`, whose batches the
writer thread commits in groups (``writer.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from ..core.events import Detail
from ..core.graph import Graph
from .open import open_engine, raise_if_newer, resolve_url, sqlite_path
from .schema import SCHEMA_VERSION, events, logs, meta, metadata, runs, tasks
from .sql import translate_error
from .writer import Writer


class Store:
    """The nbflow database at ``url`` (a SQLAlchemy URL or a file path).

    Parameters
    ----------
    url
        ``None`` uses ``NBFLOW_STORE`` or ``.nbflow/nbflow.db`` in the working
        directory; a plain path means a SQLite file; ``postgresql+psycopg://...``
        and other SQLAlchemy URLs are used as they are.
    busy_timeout
        seconds to wait for another process's lock before failing.

    Raises
    ------
    StoreError, StoreVersionError, StoreLockedError
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = 5.0):
        self.url = resolve_url(url)
        self.path = sqlite_path(self.url)
        self.label = repr(self.path) if self.path else _redact(self.url)
        self.engine = open_engine(self.url, busy_timeout)
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        try:
            self._ensure_schema()
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc

    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            else:
                raise_if_newer(int(found), self.label)

    def __repr__(self) -> str:
        return f"Store({self.label})"

    # -- writing ---------------------------------------------------------------
    def create_run(self, run_id: str, flow: str, graph: Graph, kinds: Sequence[str],
                   params: dict[str, Any], created: float, owner: dict[str, Any]) -> None:
        """Record a new run and its task definitions (synchronously, one transaction)."""
        # The run row is written now, so a locked or read-only store fails
        # before anything runs; the task rows follow on the writer thread, ahead
        # of the run's first events in the same queue.
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(runs).values(
                    id=run_id, flow=flow, state="running", created=created,
                    params=json.dumps(params, default=str), version=1, heartbeat=created, **owner))
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc
        names, preds, level = graph.names, graph.preds, graph.level
        rows = [(name, i, level[i],
                 json.dumps([names[j] for j in preds[i]]) if preds[i] else "[]", kinds[i])
                for i, name in enumerate(names)]
        if rows:
            self._get_writer().put("tasks", run_id, rows)

    def sink(self, run_id: str) -> RunSink:
        """An engine sink that records ``run_id``'s events and logs."""
        return RunSink(self._get_writer(), run_id)

    def finish_run(self, run_id: str, state: str, finished: float) -> None:
        """Record the run's final state after its events and wait for the commit."""
        w = self._get_writer()
        w.put("run", run_id, (state, finished))
        w.put("forget", run_id, None)
        w.flush()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Commit what is queued, stop the writer and release connections."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.engine.dispose()

    def _get_writer(self) -> Writer:
        with self._lock:
            if self._writer is None:
                self._writer = Writer(self.engine, self.label)
            return self._writer

    # -- reading ---------------------------------------------------------------
    def runs(self, flow: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, with a count of tasks per state."""
        q = select(runs).order_by(runs.c.created.desc())
        if flow is not None:
            q = q.where(runs.c.flow == flow)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            out = [dict(r._mapping) for r in conn.execute(q)]
            if out:
                counts = conn.execute(
                    select(tasks.c.run_id, tasks.c.state, func.count())
                    .where(tasks.c.run_id.in_([r["id"] for r in out]))
                    .group_by(tasks.c.run_id, tasks.c.state))
                by_run: dict[str, dict[str, int]] = {}
                for run_id, state, n in counts:
                    by_run.setdefault(run_id, {})[state] = n
                for r in out:
                    r["counts"] = by_run.get(r["id"], {})
        return out

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return dict(row._mapping) if row is not None else None

    def latest_run_id(self, flow: str | None = None) -> str | None:
        found = self.runs(flow=flow, limit=1)
        return found[0]["id"] if found else None

    def tasks(self, run_id: str) -> list[dict[str, Any]]:
        """Task rows of a run in declaration order."""
        q = select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.idx)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def events(self, run_id: str) -> list[tuple]:
        """The run's event log in order, as the engine made it (``core/events.py``)."""
        q = (select(events.c.run_id, events.c.seq, events.c.task, events.c.attempt,
                    events.c.from_state, events.c.to_state, events.c.at, events.c.detail)
             .where(events.c.run_id == run_id).order_by(events.c.seq))
        with self.engine.connect() as conn:
            return [(*r[:7], Detail(json.loads(r[7])) if r[7] is not None else None)
                    for r in conn.execute(q)]

    def logs(self, run_id: str, task: str | None = None) -> list[dict[str, Any]]:
        q = select(logs).where(logs.c.run_id == run_id).order_by(logs.c.task, logs.c.attempt)
        if task is not None:
            q = q.where(logs.c.task == task)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


class RunSink:
    """Hands one run's engine batches to the writer thread (never blocks)."""

    __slots__ = ("_put", "run_id")

    def __init__(self, writer: Writer, run_id: str):
        self._put = writer.put
        self.run_id = run_id

    def events(self, batch: list[tuple]) -> None:
        self._put("events", self.run_id, batch)

    def logs(self, batch: list[tuple]) -> None:
        self._put("logs", self.run_id, batch)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    return repr(make_url(url).render_as_string(hide_password=True))
