"""What a store takes on disk (``nbflow du``), and the warning of a store grown large."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..results import results_folder
from . import resultdir
from .policy import DEFAULT_DAYS, DEFAULT_KEEP, retention
from .retention import PruneReport, prune, text_bytes
from .schema import events, logs, metadata, runs
from .vacuum import database_sizes, file_size

#: ``NBFLOW_SIZE_WARNING`` (bytes, 0 = never): warn on open above this size.
DEFAULT_WARNING = 2**30
_warned: set[str] = set()


@dataclass
class Usage:
    """What the store and its results folder take; ``reclaimable`` is a dry run of the
    default retention."""

    store: str
    backend: str
    database: dict[str, int]          # SQLite: file, wal; PostgreSQL: bytes per table
    free_bytes: int | None            # SQLite: free pages inside the file (VACUUM frees them)
    rows: dict[str, int]
    flows: list[dict[str, Any]]       # flow, runs, events, log_bytes, first, last
    results: resultdir.FolderUsage
    reclaimable: PruneReport

    @property
    def database_bytes(self) -> int:
        return sum(self.database.values())


def usage(store) -> Usage:
    """Sizes, rows per table and per flow, result files, and what the default retention frees."""
    dialect = store.engine.dialect.name
    size = text_bytes(dialect)
    with store._reading() as conn:
        rows = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() or 0
                for t in metadata.sorted_tables}
        per_flow = {r.flow: {"flow": r.flow, "runs": r.n, "first": r.first, "last": r.last,
                             "events": 0, "log_bytes": 0}
                    for r in conn.execute(select(runs.c.flow, func.count().label("n"),
                                                 func.min(runs.c.created).label("first"),
                                                 func.max(runs.c.created).label("last"))
                                          .group_by(runs.c.flow))}
        for name, n in conn.execute(select(runs.c.flow, func.count())
                                    .join(events, events.c.run_id == runs.c.id)
                                    .group_by(runs.c.flow)):
            per_flow[name]["events"] = n
        for name, n in conn.execute(select(runs.c.flow,
                                           func.sum(size(logs.c.stdout) + size(logs.c.stderr)))
                                    .join(logs, logs.c.run_id == runs.c.id)
                                    .group_by(runs.c.flow)):
            per_flow[name]["log_bytes"] = int(n or 0)
        database, free = database_sizes(conn, store.path)
    return Usage(store.label, dialect, database, free, rows,
                 sorted(per_flow.values(), key=lambda f: f["flow"]),
                 resultdir.usage(results_folder(store.path)),
                 prune(store, retention(), dry_run=True))


def warn_if_large(path: str | None) -> None:
    """Warn once per process when the SQLite file at ``path`` (with its -wal) passes
    ``NBFLOW_SIZE_WARNING`` bytes (default 1 GiB).  Two ``stat`` calls: run at open."""
    if path is None or path in _warned:
        return
    raw = os.environ.get("NBFLOW_SIZE_WARNING", "").strip()
    valid = raw.isascii() and raw.isdigit()
    limit = int(raw) if valid else DEFAULT_WARNING
    if raw and not valid:
        _warned.add(path)
        warnings.warn(f"NBFLOW_SIZE_WARNING must be a whole number of bytes (0 = never warn), "
                      f"got {raw!r}; warning at 1 GiB instead. Fix or unset the variable.",
                      UserWarning, stacklevel=3)
    total = file_size(path) + file_size(path + "-wal")
    if limit <= 0 or total < limit:
        return
    _warned.add(path)
    warnings.warn(
        f"the nbflow store {path!r} takes {human(total)}; nothing is pruned automatically. "
        f"`nbflow du` shows what it holds, and `nbflow prune` (flow.prune() in Python) "
        f"deletes the runs of each flow beyond its last {DEFAULT_KEEP} that are older "
        f"than {DEFAULT_DAYS} days, with the result files no kept run needs. Set "
        "NBFLOW_SIZE_WARNING (bytes, 0 = never) to change this warning.", UserWarning, stacklevel=3)


def human(n: float) -> str:
    """``512 B``, ``3.2 KB``, ``41.0 MB``: bytes in powers of 1024."""
    units, i = ("B", "KB", "MB", "GB", "TB"), 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"
