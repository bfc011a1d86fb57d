"""The state store: one object that opens the database and reaches everything in it.

``Store(url)`` opens (or creates) the database; ``store.runs()`` lists runs,
``store.tasks(run_id)``, ``store.events(run_id)`` and ``store.logs(run_id)``
read one.  Writing a run goes through :meth:`Store.sink`, whose batches the
writer commits in groups (``writer.py``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core.events import Detail
from ..core.graph import Graph
from ..errors import StoreVersionConflict
from .migrate import upgrade
from .leases import LeaseKeeper, Owner, claim, resolve_ttl
from .open import open_engine, raise_if_newer, resolve_url, sqlite_path
from .schema import (SCHEMA_VERSION, dead_letters, events, logs, meta, metadata, results, runs,
                     tasks)
from .sql import translate_error
from .writer import Writer

SCHEMA_ATTEMPTS = 5   # tries to create a new store's tables (see _ensure_schema)


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
    lease_ttl
        seconds without a heartbeat after which another engine may take over a
        run this store left running (default ``NBFLOW_LEASE_TTL``, else 30);
        see ``leases.py``.

    Raises
    ------
    StoreError, StoreVersionError, StoreLockedError
    ValueError
        ``lease_ttl`` (or ``NBFLOW_LEASE_TTL``) is not a number of seconds > 0.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = 5.0,
                 lease_ttl: float | None = None):
        self.url = resolve_url(url)
        self.path = sqlite_path(self.url)
        self.label = repr(self.path) if self.path else _redact(self.url)
        ttl = resolve_ttl(lease_ttl)
        self.engine = open_engine(self.url, busy_timeout)
        self._busy_timeout = busy_timeout
        self.owner = Owner.here()
        self._leases = LeaseKeeper(self.engine, self.owner, ttl)
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        try:
            self._ensure_schema()
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc

    def _ensure_schema(self) -> None:
        # Processes opening a new store at the same moment race to create it:
        # the loser's CREATE TABLE or version row fails on what the winner made,
        # and its next attempt finds it there.  A real error fails every time.
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return self._create_or_upgrade()
            except DBAPIError:
                if attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * 2 ** attempt)

    def _create_or_upgrade(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            else:
                raise_if_newer(int(found), self.label)
                if int(found) < SCHEMA_VERSION:
                    upgrade(conn, int(found))

    def __repr__(self) -> str:
        return f"Store({self.label})"

    # -- writing ---------------------------------------------------------------
    def create_run(self, run_id: str, flow: str, graph: Graph, kinds: Sequence[str],
                   params: dict[str, Any], created: float, owner: dict[str, Any] | None = None,
                   resumed_from: str | None = None) -> None:
        """Record a new run and its task definitions (synchronously, one transaction).

        The run is owned by this store (``owner`` overrides who is recorded).
        With ``resumed_from``, the same transaction claims that run of ``flow``
        (``leases.claim``) and marks its dead letters requeued by this run.

        Raises
        ------
        NoSuchRun, LeaseHeldError, StoreVersionConflict
            ``resumed_from`` cannot be resumed (see ``leases.claim``).
        """
        # The run row is written now, so a locked or read-only store fails
        # before anything runs; the task rows follow through the writer, ahead
        # of the run's first events in the same queue.
        try:
            with self.engine.begin() as conn:
                if resumed_from is not None:
                    claim(conn, resumed_from, flow, self._leases, created)
                conn.execute(insert(runs).values(
                    id=run_id, flow=flow, state="running", created=created,
                    params=json.dumps(params, default=str), version=1, heartbeat=created,
                    resumed_from=resumed_from, **(owner or self.owner.columns())))
                if resumed_from is not None:
                    conn.execute(update(dead_letters).where(
                        dead_letters.c.run_id == resumed_from,
                        dead_letters.c.requeued_by.is_(None)).values(requeued_by=run_id))
        except IntegrityError as exc:
            if resumed_from is None:
                raise
            raise StoreVersionConflict(
                f"run {resumed_from} was resumed by another kernel at the same moment; "
                "resume the latest run of the flow instead (flow.run(resume=True)).") from exc
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc
        names, preds, level = graph.names, graph.preds, graph.level
        # Each name encoded once, not once per dependent: the deps column is a
        # JSON list, and a list per task made json.dumps a tenth of create_run.
        # The C quoting function is what json.dumps(name) ends in, without its
        # Python layers (half the time of this loop).
        quoted = list(map(encode_basestring_ascii, names))
        rows = [(name, i, level[i], "[" + ", ".join([quoted[j] for j in preds[i]]) + "]",
                 kinds[i])
                for i, name in enumerate(names)]
        if rows:
            self._get_writer().put("tasks", run_id, rows)

    def sink(self, run_id: str) -> RunSink:
        """An engine sink that records ``run_id``'s events and logs."""
        return RunSink(self._get_writer(), run_id)

    def keep_lease(self, run_id: str, on_lost: Callable[[str], None]) -> None:
        """Heartbeat ``run_id`` until :meth:`finish_run`; ``on_lost(message)`` if it is
        taken over meanwhile (see ``leases.py``)."""
        self._leases.hold(run_id, on_lost)

    def record_results(self, run_id: str, rows: list[tuple]) -> None:
        """Queue rows of the ``results`` index of cached tasks:
        ``(run_id, task, key, kind, created)``."""
        self._get_writer().put("results", run_id, rows)

    def finish_run(self, run_id: str, state: str, finished: float) -> None:
        """Record the run's final state after its events are committed.

        Raises
        ------
        StoreVersionConflict
            another engine took the run over meanwhile; its state is left as
            that engine set it.
        """
        lost = self._leases.release(run_id)
        w = self._get_writer()
        w.put("forget", run_id, None)
        w.flush()
        # Only the owner may end its run: a run taken over stays "crashed".
        with self.engine.begin() as conn:
            done = conn.execute(update(runs).where(runs.c.id == run_id,
                                                   runs.c.owner == self.owner.id)
                                .values(state=state, finished=finished,
                                        version=runs.c.version + 1)).rowcount
        if not done:
            raise StoreVersionConflict(lost or f"run {run_id} was taken over by another engine "
                                       "while this one ran it; its final state was not recorded")

    @property
    def writer_pid(self) -> int | None:
        """The pid of the process that writes a SQLite file's runs (``writerproc.py``),
        None before the first run and for database servers."""
        writer = self._writer
        return writer.pid if writer is not None else None

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Commit what is queued, stop the writer and release connections."""
        with self._lock:
            writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            self._leases.close()
            self.engine.dispose()

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A connection for a read; a damaged or unreachable store is a StoreError."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc

    def _get_writer(self) -> Writer:
        with self._lock:
            if self._writer is None:
                self._writer = Writer(self.engine, self.label, self.path, self._busy_timeout)
            return self._writer

    # -- reading ---------------------------------------------------------------
    def runs(self, flow: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, with a count of tasks per state."""
        q = select(runs).order_by(runs.c.created.desc())
        if flow is not None:
            q = q.where(runs.c.flow == flow)
        if limit is not None:
            q = q.limit(limit)
        with self._reading() as conn:
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
        with self._reading() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return dict(row._mapping) if row is not None else None

    def latest_run_id(self, flow: str | None = None) -> str | None:
        found = self.runs(flow=flow, limit=1)
        return found[0]["id"] if found else None

    def tasks(self, run_id: str) -> list[dict[str, Any]]:
        """Task rows of a run in declaration order."""
        q = select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.idx)
        with self._reading() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def events(self, run_id: str) -> list[tuple]:
        """The run's event log in order, as the engine made it (``core/events.py``)."""
        q = (select(events.c.run_id, events.c.seq, events.c.task, events.c.attempt,
                    events.c.from_state, events.c.to_state, events.c.at, events.c.detail)
             .where(events.c.run_id == run_id).order_by(events.c.seq))
        with self._reading() as conn:
            return [(*r[:7], Detail(json.loads(r[7])) if r[7] is not None else None)
                    for r in conn.execute(q)]

    def logs(self, run_id: str, task: str | None = None) -> list[dict[str, Any]]:
        q = select(logs).where(logs.c.run_id == run_id).order_by(logs.c.task, logs.c.attempt)
        if task is not None:
            q = q.where(logs.c.task == task)
        with self._reading() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def restored_tasks(self, run_id: str) -> set[str]:
        """Tasks of the run that succeeded without running (restored results)."""
        q = select(events.c.task).where(events.c.run_id == run_id,
                                        events.c.to_state == "succeeded",
                                        events.c.from_state.in_(("pending", "ready")))
        with self._reading() as conn:
            return set(conn.execute(q).scalars())

    def dead_letters(self, flow: str, run_id: str | None = None, requeued: bool = False
                     ) -> list[dict[str, Any]]:
        """Dead letters of ``flow`` (or of one of its runs), newest first; with
        ``requeued`` also those already requeued."""
        q = (select(dead_letters).join(runs, runs.c.id == dead_letters.c.run_id)
             .where(runs.c.flow == flow)
             .order_by(dead_letters.c.created.desc(), dead_letters.c.task))
        if run_id is not None:
            q = q.where(dead_letters.c.run_id == run_id)
        if not requeued:
            q = q.where(dead_letters.c.requeued_by.is_(None))
        with self._reading() as conn:
            out = [dict(r._mapping) for r in conn.execute(q)]
        for row in out:
            row["inputs"] = json.loads(row["inputs"]) if row["inputs"] else {}
        return out

    def resume_chain(self, run_id: str) -> list[str]:
        """``run_id``, the run it resumed, the run that one resumed, and so on."""
        chain: list[str] = []
        with self._reading() as conn:
            while run_id is not None and run_id not in chain:
                chain.append(run_id)
                run_id = conn.execute(select(runs.c.resumed_from)
                                      .where(runs.c.id == run_id)).scalar()
        return chain

    def saved_results(self, run_ids: Iterable[str]) -> dict[str, tuple[str, bytes | None]]:
        """``{key: (kind, inline pickle or None)}`` of the results these runs'
        attempts saved, from their committed ``succeeded`` events
        (``nbflow/results.py`` notes the kind there and stores small ones inline)."""
        q = select(events.c.detail, events.c.value).where(
            events.c.run_id.in_(list(run_ids)), events.c.to_state == "succeeded",
            events.c.from_state == "running")
        out = {}
        with self._reading() as conn:
            for text, value in conn.execute(q):
                detail = json.loads(text) if text else {}
                if "result" in detail:
                    out[detail["key"]] = (detail["result"], value)
        return out

    def saved_result(self, key: str) -> tuple[str, bytes | None] | None:
        """``(kind, inline pickle or None)`` of a cached task's result saved under
        ``key`` by any run, or None."""
        q = (select(results.c.kind, events.c.value)
             .join_from(results, events, (events.c.run_id == results.c.run_id)
                        & (events.c.task == results.c.task)
                        & (events.c.to_state == "succeeded")
                        & (events.c.from_state == "running"), isouter=True)
             .where(results.c.key == key).order_by(results.c.created.desc()).limit(1))
        with self._reading() as conn:
            row = conn.execute(q).first()
        return None if row is None else (row[0], row[1])


class RunSink:
    """Hands one run's engine batches to the writer thread (never blocks).

    Results pickled inline (the engine's ``values`` hook, called just before
    the events they belong to) travel in the same item as their events, so
    the writer puts each into its event's row, in one transaction.
    """

    __slots__ = ("_put", "run_id", "_values")

    def __init__(self, writer: Writer, run_id: str):
        self._put = writer.put
        self.run_id = run_id
        self._values: dict[int, bytes] | None = None

    def values(self, values: dict[int, bytes]) -> None:
        self._values = values

    def events(self, batch: list[tuple]) -> None:
        values, self._values = self._values, None
        if values is None:
            self._put("events", self.run_id, batch)
        else:
            self._put("valued_events", self.run_id, (batch, values))

    def logs(self, batch: list[tuple]) -> None:
        self._put("logs", self.run_id, batch)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    return repr(make_url(url).render_as_string(hide_password=True))
