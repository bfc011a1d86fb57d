"""The state store: one object that opens the database and reaches everything in it.

``Store(url)`` opens (or creates) the database; ``store.runs()`` lists runs,
``store.tasks(run_id)``, ``store.events(run_id)`` and ``store.logs(run_id)``
read one.  Writing a run goes through :meth:`Store.sink`, whose batches the
writer commits in groups (``writer.py``).

What a Store holds open (its writer thread and process, its lease thread, its
connections) is released by :meth:`Store.close`, or when nobody refers to the
Store any more: a notebook that re-runs ``flow = Flow(...)`` a thousand times
keeps no thousand writers.  A live run refers to its store, so it is never
released under a run.  ``shared.py`` gives every Flow on one store the same
Store, hence one writer.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core.events import Detail
from ..core.graph import Graph
from ..errors import StoreError, StoreVersionConflict
from .leases import LeaseKeeper, Owner, claim, resolve_ttl
from .migrate import upgrade
from .open import check_location, locate, open_engine, raise_if_newer
from .schema import SCHEMA_VERSION, dead_letters, events, logs, meta, metadata, results, runs, tasks
from .sql import translate_error
from .usage import warn_if_large
from .writer import Writer, resolve_timeout

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
    write_timeout
        seconds a flush (``run.wait()``, ``run.status()``...) waits for a
        writer that writes nothing before it raises (default
        ``NBFLOW_STORE_TIMEOUT``, else 60); see ``writer.py``.

    Raises
    ------
    StoreError, StoreVersionError, StoreLockedError
    ValueError
        ``lease_ttl`` (or ``NBFLOW_LEASE_TTL``) is not a number of seconds from
        1 to 86400 (a day), or ``write_timeout`` (or ``NBFLOW_STORE_TIMEOUT``) not a
        number of seconds > 0.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = 5.0,
                 lease_ttl: float | None = None, write_timeout: float | None = None):
        where = locate(url)
        # ``url`` opens this store again (Store(url), NBFLOW_STORE): for a SQLite
        # file it is the file's path, which no URL parsing can misread.
        self.url = where.text
        self.path = where.path
        self.label = repr(self.path) if self.path else _redact(where.url)
        ttl = resolve_ttl(lease_ttl)
        write_timeout = resolve_timeout(write_timeout)
        self.engine = open_engine(where, busy_timeout)
        self.owner = Owner.here()
        self._leases = LeaseKeeper(self.engine, self.owner, ttl)
        self._held = _Held(self.engine, self._leases, self.label, self.path, busy_timeout,
                           write_timeout)
        weakref.finalize(self, _release, self._held)
        try:
            self._ensure_schema()
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc
        self._file_id = _file_id(self.path) if self.path is not None else None
        warn_if_large(self.path)

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

    def check_again(self) -> bool:
        """Check again what opening checked (``shared.py`` asks before it hands out
        a Store already open): False if the SQLite file was deleted or replaced
        since, so that this Store would write where nobody reads.

        Raises
        ------
        StoreError, StoreVersionError
            as opening would now: the file became read-only, a newer nbflow
            upgraded its schema...
        """
        if self.path is not None:
            if _file_id(self.path) != self._file_id:
                return False
            check_location(self.path)
            return True
        with self._reading() as conn:
            found = conn.execute(select(meta.c.value)
                                 .where(meta.c.key == "schema_version")).scalar()
        if found is not None:
            raise_if_newer(int(found), self.label)
        return True

    def __repr__(self) -> str:
        return f"Store({self.label})"

    # -- writing ---------------------------------------------------------------
    def create_run(self, run_id: str, flow: str, graph: Graph, kinds: Sequence[str],
                   params: dict[str, Any], created: float, owner: dict[str, Any] | None = None,
                   resumed_from: str | None = None, cells: Sequence[str | None] | None = None,
                   notebook: str | None = None) -> None:
        """Record a new run and its task definitions (synchronously, one transaction).

        The run is owned by this store (``owner`` overrides who is recorded).
        ``cells`` holds the id of the notebook cell that declared each task (or
        None), in declaration order; ``notebook`` the path of the run's notebook.
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
                    resumed_from=resumed_from, notebook=notebook,
                    **(owner or self.owner.columns())))
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
        cells = cells or [None] * len(names)
        rows = [(name, i, level[i], "[" + ", ".join([quoted[j] for j in preds[i]]) + "]",
                 kinds[i], cells[i])
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

    def record_durations(self, run_id: str, row: tuple) -> None:
        """Queue ``run_id``'s task durations, ``(flow, names, codes, seconds, keep)``
        (``history.py``): the flow keeps its latest ``keep`` rows."""
        self._get_writer().put("durations", run_id, row)

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
        # When the events or this write fail, the end is left to the writer: it
        # writes it after the events, retrying both until they go through, so a
        # run whose store was locked at its end does not stay "running".
        try:
            w.flush()
        except StoreError:
            w.put("finish", run_id, (state, finished, self.owner.id))
            raise
        # Only the owner may end its run: a run taken over stays "crashed".
        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(runs).where(runs.c.id == run_id,
                                                       runs.c.owner == self.owner.id)
                                    .values(state=state, finished=finished,
                                            version=runs.c.version + 1)).rowcount
        except DBAPIError as exc:
            w.put("finish", run_id, (state, finished, self.owner.id))
            raise translate_error(exc, self.label) from exc
        if not done:
            raise StoreVersionConflict(lost or f"run {run_id} was taken over by another engine "
                                       "while this one ran it; its final state was not recorded")

    # -- retention (retention.py, usage.py) ----------------------------------------------
    def prune(self, keep: int | None = None, *, older_than: Any = None, before: Any = None,
              flow: str | None = None, dry_run: bool = False, vacuum: bool | None = None):
        """Delete old runs of every flow (or of ``flow``) and the result files no kept run
        names; returns a :class:`~nbflow.store.retention.PruneReport`.

        ``keep``: the newest runs per flow to keep; ``older_than`` (``"30d"``,
        seconds, a timedelta) or ``before`` (a date): runs created before it go;
        with both a count and a date, a run goes when both let it.  With none,
        the default: the last 50 runs of each flow and the runs of the last 30
        days stay.  Live runs and the resume chains of kept runs always stay.
        ``dry_run`` only counts; ``vacuum``: see ``retention.prune``.

        Raises
        ------
        ValueError, TypeError
            a count, age or date that means nothing (the message says what is expected).
        StoreError
        """
        from .policy import retention
        from .retention import prune
        policy = retention(keep, older_than, before)
        self.flush()
        return prune(self, policy, flow, dry_run, vacuum)

    def usage(self):
        """What the store and its results folder take (``nbflow du``): a
        :class:`~nbflow.store.usage.Usage`."""
        from .usage import usage
        self.flush()
        return usage(self)

    @property
    def writer_pid(self) -> int | None:
        """The pid of the process that writes a SQLite file's runs (``writerproc.py``),
        None before the first run and for database servers."""
        writer = self._held.writer
        return writer.pid if writer is not None else None

    def flush(self) -> None:
        writer = self._held.writer
        if writer is not None:
            writer.flush()

    def close(self) -> None:
        """Commit what is queued, stop the writer and release connections.

        The store can still be used afterwards: it opens what it needs again.
        """
        self._held.close()

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A connection for a read; a damaged or unreachable store is a StoreError."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise translate_error(exc, self.label) from exc

    def _get_writer(self) -> Writer:
        return self._held.writer_started()

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
        with self._reading() as conn:
            return _task_rows(conn, run_id)

    def events(self, run_id: str) -> list[tuple]:
        """The run's event log in order, as the engine made it (``core/events.py``)."""
        with self._reading() as conn:
            return _event_rows(conn, run_id)

    def logs(self, run_id: str, task: str | None = None) -> list[dict[str, Any]]:
        with self._reading() as conn:
            return _log_rows(conn, run_id, task)

    def record(self, run_id: str) -> RunRecord:
        """The run's task rows, events and logs as of one moment.

        Three separate reads can straddle a commit of the writer (this kernel's
        or another's): the events would then name tasks whose rows were read
        before they were committed.  Whoever rebuilds a run from its rows and
        its events (a stored dashboard, a replay) reads them here.
        """
        with self._reading() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite starts no transaction for a SELECT: one read
                # transaction (one WAL snapshot) only by asking for it.  The
                # connection's rollback on return ends it.
                conn.exec_driver_sql("BEGIN")
            else:
                conn.execution_options(isolation_level="REPEATABLE READ")
            return RunRecord(_task_rows(conn, run_id), _event_rows(conn, run_id),
                             _log_rows(conn, run_id, None))

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

    __slots__ = ("_put", "_values", "run_id")

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


def _redact(url: Any) -> str:
    from sqlalchemy.engine import make_url
    return repr(make_url(url).render_as_string(hide_password=True))


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# Seconds a store nobody refers to waits for its queued writes to commit before
# it gives up on them (a stopped writer process, a hung disk): the release must
# not hang the kernel, or the interpreter's exit.
RELEASE_WAIT = 30.0


class _Held:
    """What one Store holds open.  The Store's finalizer releases it, so nothing
    here refers back to the Store (a reference would keep it alive for ever)."""

    def __init__(self, engine: Any, leases: LeaseKeeper, label: str, path: str | None,
                 busy_timeout: float, write_timeout: float):
        self.engine, self.leases, self.label = engine, leases, label
        self._writer_args = (engine, label, path, busy_timeout, write_timeout)
        self.writer: Writer | None = None
        self._lock = threading.Lock()

    def writer_started(self) -> Writer:
        with self._lock:
            if self.writer is None:
                self.writer = Writer(*self._writer_args)
            return self.writer

    def threads(self) -> set[threading.Thread | None]:
        return {getattr(self.writer, "_thread", None), self.leases.thread}

    def close(self, wait: float | None = None) -> None:
        """Commit what is queued (waiting at most ``wait`` seconds), stop the
        writer and the lease thread, close the connections."""
        with self._lock:
            writer, self.writer = self.writer, None
        try:
            if writer is not None:
                if wait is None:
                    writer.close()
                else:
                    _close_within(writer, wait, self.label)
        finally:
            self.leases.close()
            self.engine.dispose()


def _close_within(writer: Writer, wait: float, label: str) -> None:
    """``writer.close()``, given up on (left to its daemon thread) after ``wait`` seconds."""
    failed: list[BaseException] = []

    def close() -> None:
        try:
            writer.close()
        except BaseException as exc:  # noqa: BLE001 - raised below, in the caller
            failed.append(exc)

    closer = threading.Thread(target=close, daemon=True, name="nbflow-store-release")
    try:
        closer.start()
    except RuntimeError:  # no new threads at the interpreter's shutdown: close here
        close()
    else:
        closer.join(wait)
    if closer.is_alive():
        raise StoreError(f"the writer of the nbflow store {label} did not commit what was "
                         f"queued within {wait:g}s (a stopped writer process or a hung disk?); "
                         "what it had not committed is lost, and runs it recorded may need "
                         "a resume")
    if failed:
        raise failed[0]


def _release(held: _Held) -> None:
    """Release a Store nobody refers to (its finalizer)."""
    # The last reference can go on any thread, the store's own writer or lease
    # thread included, and neither can wait for itself to stop.
    if threading.current_thread() in held.threads():
        threading.Thread(target=_release_now, args=(held,), daemon=True,
                         name="nbflow-store-release").start()
    else:
        _release_now(held)


def _release_now(held: _Held) -> None:
    try:
        held.close(RELEASE_WAIT)
    except Exception as exc:  # noqa: BLE001 - a finalizer has nobody to raise to
        warnings.warn(f"nbflow: the store {held.label} was released, unreferenced, with "
                      f"writes it could not commit: {exc}", RuntimeWarning, stacklevel=1)


class RunRecord(NamedTuple):
    """What :meth:`Store.record` read."""
    tasks: list[dict[str, Any]]
    events: list[tuple]
    logs: list[dict[str, Any]]


def _task_rows(conn: Any, run_id: str) -> list[dict[str, Any]]:
    q = select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.idx)
    return [dict(r._mapping) for r in conn.execute(q)]


def _event_rows(conn: Any, run_id: str) -> list[tuple]:
    q = (select(events.c.run_id, events.c.seq, events.c.task, events.c.attempt,
                events.c.from_state, events.c.to_state, events.c.at, events.c.detail)
         .where(events.c.run_id == run_id).order_by(events.c.seq))
    return [(*r[:7], Detail(json.loads(r[7])) if r[7] is not None else None)
            for r in conn.execute(q)]


def _log_rows(conn: Any, run_id: str, task: str | None) -> list[dict[str, Any]]:
    q = select(logs).where(logs.c.run_id == run_id).order_by(logs.c.task, logs.c.attempt)
    if task is not None:
        q = q.where(logs.c.task == task)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    for r in rows:   # rich outputs: JSON in the column, a list here
        r["displays"] = json.loads(r["displays"]) if r["displays"] else []
    return rows
