"""Retention: which runs a prune deletes, deleting them, and the result files they leave.

A prune chooses per flow: with ``keep=N`` the runs beyond the newest N go, with
a cutoff (``older_than`` / ``before``) the runs created before it; given both,
a run goes only when both say so (``policy.py``).  Nothing is pruned automatically.

Never deleted, whatever was chosen:

* a live run: ``running`` with a live lease (``leases.lease_status``), or
  running in this Store with a fresh heartbeat (a run being started here is
  not held yet);
* the runs of a kept run's resume chain (``runs.resumed_from``): a resumed run
  restores results its ancestors saved, and may itself be resumed later.

Each run is deleted in a transaction of its own, so a prune holds SQLite's
write lock for one run's rows at a time and a kernel writing meanwhile waits at
most that long.  The transaction first bumps the run's ``version``
compare-and-set (a run that changed since it was chosen is kept, and on SQLite
the write lock is taken before anything is read), refuses a run another run
resumed meanwhile, queues the keys of the result files it saved in
``prune_queue``, then deletes its rows from every table explicitly (``ON
DELETE CASCADE`` needs ``PRAGMA foreign_keys`` on every SQLite connection,
which another tool's need not have).

Result files go after the rows, from the queue: a file is deleted when no
remaining run's events, ``results`` rows or dead letters name its key, it was
not modified since the oldest live run started (nor in the last ``GRACE``
seconds: a success may not be committed yet), and it is a result
file (``resultdir.py``).  A prune killed half-way leaves the queue, which the
next prune finishes; so does a prune that cannot see the results folder (a
PostgreSQL store pruned from another folder than its kernels ran in).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update

from ..results import results_folder
from . import resultdir
from . import vacuum as vacuuming
from .leases import lease_status
from .policy import Retention
from .schema import dead_letters, events, logs, prune_queue, results, runs, tasks

GRACE = 60.0
CHUNK = 500   # ids per IN (...): well under every backend's limit on bound parameters
CHILD_TABLES = (events, tasks, logs, dead_letters, results)
_KEY_IN_DETAIL = re.compile(r'"key":\s*"([0-9a-f]{64})"')
_KEY_IN_INPUTS = re.compile(r'"([0-9a-f]{64})"')
_FILE_RESULT = re.compile(r'"result":\s*"file"')


# -- choosing -------------------------------------------------------------------------
@dataclass
class Plan:
    """The runs a prune deletes (newest first) and those it keeps although chosen."""

    doomed: list[Any]
    kept: dict[str, str]          # run id -> why it stays


def choose(rows: Iterable[Any], policy: Retention, is_live) -> Plan:
    """Which of ``rows`` (run rows, any flows) go under ``policy``; ``is_live(row)``."""
    by_flow: dict[str, list[Any]] = {}
    for row in rows:
        by_flow.setdefault(row.flow, []).append(row)
    chosen: dict[str, Any] = {}
    parent: dict[str, str | None] = {}
    for flow_rows in by_flow.values():
        flow_rows.sort(key=lambda r: (r.created, r.id), reverse=True)
        for i, row in enumerate(flow_rows):
            parent[row.id] = row.resumed_from
            beyond = policy.keep is None or i >= policy.keep
            old = policy.cutoff is None or row.created < policy.cutoff
            if beyond and old:
                chosen[row.id] = row
    kept = {rid: "live: running, its lease held" for rid, row in chosen.items() if is_live(row)}
    for rid in kept:
        del chosen[rid]
    for rid in parent:
        if rid in chosen:
            continue
        seen, up = {rid}, parent[rid]
        while up is not None and up in parent and up not in seen:
            seen.add(up)
            if chosen.pop(up, None) is not None:
                kept[up] = f"in the resume chain of the kept run {rid}"
            up = parent[up]
    doomed = sorted(chosen.values(), key=lambda r: (r.created, r.id), reverse=True)
    return Plan(doomed, kept)


# -- the report -----------------------------------------------------------------------
@dataclass
class PruneReport:
    """What a prune deleted, or with ``dry_run`` would delete."""

    dry_run: bool
    runs: list[dict[str, Any]] = field(default_factory=list)   # id, flow, state, created
    kept: dict[str, str] = field(default_factory=dict)        # run id -> why it stayed
    rows: dict[str, int] = field(default_factory=dict)        # table -> rows
    log_bytes: int = 0
    files: int = 0
    file_bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # file -> why it stayed
    recent: int = 0          # files too recent to delete yet (a later prune deletes them)
    folder: str = ""
    vacuum: Any = None                                        # a vacuum.Vacuum, or None

    def by_flow(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self.runs:
            out[run["flow"]] = out.get(run["flow"], 0) + 1
        return out


# -- pruning --------------------------------------------------------------------------
def prune(store, policy: Retention, flow: str | None = None, dry_run: bool = False,
          vacuum: bool | None = None) -> PruneReport:
    """Delete (or with ``dry_run`` count) what ``policy`` lets go; see the module docstring.

    Then ``vacuum=True`` vacuums the database, None only if the prune freed a lot
    (``vacuum.py``), False never.
    """
    now = time.time()
    folder = results_folder(store.path)
    q = select(runs.c.id, runs.c.flow, runs.c.state, runs.c.created, runs.c.owner,
               runs.c.host, runs.c.pid, runs.c.heartbeat, runs.c.version,
               runs.c.resumed_from)
    if flow is not None:
        q = q.where(runs.c.flow == flow)
    with store._reading() as conn:
        rows = list(conn.execute(q))
    plan = choose(rows, policy, lambda row: _live(row, store, now))
    report = PruneReport(dry_run, kept=dict(plan.kept), folder=folder,
                         rows={t.name: 0 for t in (runs, *CHILD_TABLES)})
    if dry_run:
        _count(store, plan, report)
    else:
        for row in plan.doomed:
            why = _delete_run(store, row, report)
            if why is not None:
                report.kept[row.id] = why
        _collect(store, folder, report, now)
        if vacuum or (vacuum is None and report.runs):
            live = live_runs(store, time.time())
            report.vacuum = vacuuming.vacuum(store, bool(vacuum), live[0] if live else None)
    return report


def live_runs(store, now: float) -> list[Any]:
    """The rows of the store's live runs, newest first."""
    with store._reading() as conn:
        running = list(conn.execute(select(runs).where(runs.c.state == "running")
                                    .order_by(runs.c.created.desc())))
    return [row for row in running if _live(row, store, now)]


def _live(row: Any, store, now: float) -> bool:
    if row.state != "running":
        return False
    if lease_status(row, store._leases, now) == "live":
        return True
    ours = row.owner == store.owner.id
    return ours and row.heartbeat is not None and now - row.heartbeat <= store._leases.ttl


def _count(store, plan: Plan, report: PruneReport) -> None:
    ids = [row.id for row in plan.doomed]
    report.runs = [_run_dict(row) for row in plan.doomed]
    report.rows["runs"] = len(ids)
    doomed_keys: set[str] = set()
    with store._reading() as conn:
        for chunk in _chunks(ids):
            for table in CHILD_TABLES:
                report.rows[table.name] += conn.execute(
                    select(func.count()).select_from(table)
                    .where(table.c.run_id.in_(chunk))).scalar() or 0
            report.log_bytes += _log_bytes(conn, logs.c.run_id.in_(chunk))
        for run_id in ids:
            doomed_keys |= _saved_keys(conn, run_id)
        doomed_set = set(ids)
        rest = {key for run_id, key in _named_keys(conn) if run_id not in doomed_set}
        queued = set(conn.execute(select(prune_queue.c.key)).scalars())
    report.files, report.file_bytes = resultdir.sizes(report.folder,
                                                      (doomed_keys | queued) - rest)


def _delete_run(store, row: Any, report: PruneReport) -> str | None:
    """Delete one run's rows in one transaction; None, or why it was kept."""
    with store._reading() as conn:  # committed or rolled back below, explicitly
        bumped = conn.execute(update(runs).where(runs.c.id == row.id,
                                                 runs.c.version == row.version)
                              .values(version=runs.c.version + 1)).rowcount
        if bumped != 1:
            conn.rollback()
            return "it changed while the prune ran (resumed, taken over or finished)"
        child = conn.execute(select(runs.c.id).where(runs.c.resumed_from == row.id)).scalar()
        if child is not None:
            conn.rollback()
            return f"in the resume chain of the kept run {child}"
        keys = _saved_keys(conn, row.id)
        for chunk in _chunks(sorted(keys)):
            keys.difference_update(conn.execute(select(prune_queue.c.key)
                                                .where(prune_queue.c.key.in_(chunk))).scalars())
        if keys:
            now = time.time()
            conn.execute(prune_queue.insert(), [{"key": k, "queued": now} for k in sorted(keys)])
        log_bytes = _log_bytes(conn, logs.c.run_id == row.id)
        counts = {t.name: conn.execute(delete(t).where(t.c.run_id == row.id)).rowcount
                  for t in CHILD_TABLES}
        conn.execute(delete(runs).where(runs.c.id == row.id))
        conn.commit()
    for name, n in counts.items():
        report.rows[name] += n
    report.rows["runs"] += 1
    report.log_bytes += log_bytes
    report.runs.append(_run_dict(row))
    return None


def _collect(store, folder: str, report: PruneReport, now: float) -> None:
    """Delete the queued result files no remaining run names, then empty the queue."""
    with store._reading() as conn:
        queued = list(conn.execute(select(prune_queue.c.key)).scalars())
        named = {key for _, key in _named_keys(conn)}
    # A live run's files may be saved before its successes are committed.
    protect_after = min([now - GRACE, *(row.created for row in live_runs(store, now))])
    gone = resultdir.delete(folder, [k for k in queued if k not in named], protect_after, now)
    report.files, report.file_bytes = gone.files, gone.bytes
    report.skipped, report.recent = gone.skipped, len(gone.recent)
    if gone.unusable:
        return   # everything stays queued until the prune can see the folder
    # A file too recent to delete stays queued for the next prune.
    done = [key for key in queued if key not in gone.recent]
    if not done:
        return
    with store._reading() as conn:  # committed or rolled back below, explicitly
        for chunk in _chunks(done):
            conn.execute(delete(prune_queue).where(prune_queue.c.key.in_(chunk)))
        conn.commit()


def _saved_keys(conn, run_id: str) -> set[str]:
    """The keys whose result file the run saved: its succeeded attempts that say
    ``"result": "file"``, and its ``results`` index rows of kind ``file``."""
    q = select(events.c.detail).where(events.c.run_id == run_id,
                                      events.c.to_state == "succeeded")
    keys = {m.group(1) for (detail,) in conn.execute(q)
            if detail and _FILE_RESULT.search(detail) and (m := _KEY_IN_DETAIL.search(detail))}
    keys.update(conn.execute(select(results.c.key).where(results.c.run_id == run_id,
                                                         results.c.kind == "file")).scalars())
    return keys


def _named_keys(conn) -> Iterator[tuple[str, str]]:
    """``(run_id, key)`` for each result key any run's rows name: succeeded events
    (run or restored), the ``results`` index, dead letters' inputs."""
    q = select(events.c.run_id, events.c.detail).where(events.c.to_state == "succeeded")
    for rid, detail in conn.execute(q):
        if detail:
            for key in _KEY_IN_DETAIL.findall(detail):
                yield rid, key
    yield from conn.execute(select(results.c.run_id, results.c.key))
    q = select(dead_letters.c.run_id, dead_letters.c.inputs).where(
        dead_letters.c.inputs.is_not(None))
    for rid, inputs in conn.execute(q):
        for key in _KEY_IN_INPUTS.findall(inputs):
            yield rid, key


def _log_bytes(conn, condition) -> int:
    """Bytes of stdout and stderr (UTF-8) in the log rows matching ``condition``."""
    size = text_bytes(conn.dialect.name)
    return int(conn.execute(select(func.coalesce(func.sum(size(logs.c.stdout)
                                                          + size(logs.c.stderr)), 0))
                            .where(condition)).scalar() or 0)


def text_bytes(dialect: str):
    """A SQL function: the length in bytes of a text column (SQLite's length() counts
    characters, and its octet_length is newer than many Pythons' SQLite)."""
    if dialect == "sqlite":
        from sqlalchemy import LargeBinary, cast
        return lambda col: func.length(cast(col, LargeBinary))
    return func.octet_length


def _run_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "flow": row.flow, "state": row.state, "created": row.created}


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]

