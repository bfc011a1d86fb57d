"""Tables of the state store (SQLAlchemy Core).

``events`` is the append-only log and the source of truth; ``tasks`` holds the
current row per run and task, kept by folding events (``core/replay.py``).
Rows that several processes may change (``runs``, ``tasks``) carry a ``version``
that every update increments.
"""

from __future__ import annotations

from sqlalchemy import (
                        Column,
                        Float,
                        ForeignKeyConstraint,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        String,
                        Table,
                        Text,
)

#: Version 2 added ``events.value``; version 3 ``tasks.cell_id`` and ``runs.notebook``;
#: version 4 ``logs.displays`` (``migrate.py`` upgrades an older store).
SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("flow", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("owner", String(64)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("heartbeat", Float),
    Column("params", Text),
    Column("version", Integer, nullable=False, default=1),
    # The run this one resumes.  Unique: a run is resumed at most once, so two
    # kernels resuming it at the same moment cannot both win (leases.py).
    Column("resumed_from", String(64), unique=True),
    # The notebook whose kernel made the run (its absolute path, from the
    # JPY_SESSION_NAME jupyter_server gives a kernel), for the lab extension.
    Column("notebook", Text),
)

tasks = Table(
    "tasks", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("idx", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("deps", Text, nullable=False),      # JSON list of names
    Column("kind", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("error", Text),
    Column("version", Integer, nullable=False),
    # The notebook cell that declared the task (its nbformat id), when known.
    Column("cell_id", String(64)),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
    sqlite_with_rowid=False,
)

events = Table(
    "events", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("task", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("detail", Text),                    # JSON or NULL
    # The pickled result of a succeeded attempt, when it is small enough to travel
    # with its event (``nbflow/results.py``): saved exactly when its success is.
    Column("value", LargeBinary),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
    # Clustered on (run_id, seq): appends go to the end of one B-tree, and a
    # run's log is read in order without a second index.
    sqlite_with_rowid=False,
)

logs = Table(
    "logs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task", String(255), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("stdout", Text, nullable=False),
    Column("stderr", Text, nullable=False),
    # The rich outputs the attempt displayed, as JSON: [{"data": {mime: text}}, ...]
    # (NULL: none, or written before version 4).
    Column("displays", Text),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
)

# Tasks that failed after their last attempt, written by the writer in the
# same transaction as their final ``failed`` event.  ``requeued_by`` goes from
# NULL to the id of the run that runs them again, compare-and-set on NULL.
dead_letters = Table(
    "dead_letters", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task", String(255), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("error", Text),
    Column("traceback", Text),
    Column("inputs", Text),                    # JSON {parameter: upstream result key}
    Column("key", String(64)),
    Column("created", Float, nullable=False),
    Column("requeued_by", String(64)),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
)

# Saved results of ``cache=True`` tasks by key, for reuse by any run
# (``nbflow/results.py``; a resumed run finds its results in the events):
# kind "none" for a task that returned None, "inline" for one whose pickle is in
# the ``value`` of its run's ``succeeded`` event, "file" for one whose pickle is
# in the results folder under ``key``.
results = Table(
    "results", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task", String(255), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("created", Float, nullable=False),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
    Index("results_by_key", "key"),
    sqlite_with_rowid=False,
)

# Keys whose result files a prune may delete, written in the transaction that
# deletes the runs naming them and emptied once the files are handled, so a
# prune killed between the two finishes its file deletions on the next prune
# (``retention.py``).  A key named again by a run meanwhile is kept.
prune_queue = Table(
    "prune_queue", metadata,
    Column("key", String(64), primary_key=True),
    Column("queued", Float, nullable=False),
)

# The last transaction each store writer (``writer.py``) committed, written in
# that same transaction: when a commit's answer is lost (the writer process
# died after COMMIT, a server connection dropped), the writer reads here
# whether it happened, rather than write it twice.
commits = Table(
    "commits", metadata,
    Column("writer", String(32), primary_key=True),
    Column("txn", Integer, nullable=False),
    Column("at", Float, nullable=False),
)

# How long tasks took, for the scheduling policies that rank by expected
# duration (``history.py``): one row per run, in three columns made once per
# run: the task names (a JSON list), their code hashes (16 hex digits each,
# concatenated) and the seconds each succeeded attempt ran (float64s, NaN for a
# task that did not run), all in the same order.  Only a flow's latest runs are kept.
durations = Table(
    "durations", metadata,
    Column("flow", String(255), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("names", Text, nullable=False),
    Column("codes", Text, nullable=False),
    Column("seconds", LargeBinary, nullable=False),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
)
