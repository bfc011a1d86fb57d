"""VACUUM after a prune, and the database's size before and after.

On SQLite the database is its file plus the ``-wal`` beside it; the pages SQLite
keeps free inside the file after deletions go back to the file system only by
VACUUM.  On PostgreSQL the size of each table is ``pg_total_relation_size``
(indexes and TOAST included); plain VACUUM makes deleted rows' space reusable
without locking the tables, and the files do not shrink (VACUUM FULL would,
under an exclusive lock, so nbflow never runs it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .schema import metadata

#: After a prune, SQLite is vacuumed by itself when this much of its file is free pages.
AUTO_VACUUM_FRACTION = 0.25
AUTO_VACUUM_MIN = 16 * 2**20


@dataclass
class Vacuum:
    """What a VACUUM did: database bytes before and after, or why it was not run."""

    before: int
    after: int
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def database_sizes(conn, path: str | None) -> tuple[dict[str, int], int | None]:
    """``({part: bytes}, free bytes)``: SQLite's file and -wal and the free pages
    inside, or PostgreSQL's tables (free: None)."""
    if conn.dialect.name == "postgresql":
        q = text("SELECT pg_total_relation_size(CAST(:t AS regclass))")
        return {t.name: int(conn.execute(q, {"t": t.name}).scalar() or 0)
                for t in metadata.sorted_tables}, None
    page = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
    free = (conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0) * page
    if path is None:
        return {"memory": (conn.exec_driver_sql("PRAGMA page_count").scalar() or 0) * page}, free
    return {"file": file_size(path), "wal": file_size(path + "-wal")}, free


def vacuum(store, force: bool, live: Any = None) -> Vacuum | None:
    """VACUUM the store: always with ``force``, else (SQLite only) when free pages are
    a large part of the file.  None when it was not worth it.

    SQLite's VACUUM holds the write lock while it rewrites the file, which would
    stall a run writing meanwhile past its busy timeout: it is skipped while a run
    is live (``live``: the row of one).  It cannot run inside a transaction, nor
    can PostgreSQL's.
    """
    with store._reading() as conn:
        before, free = database_sizes(conn, store.path)
    total = sum(before.values())
    postgres = store.engine.dialect.name == "postgresql"
    if not force and (postgres or free is None or free < AUTO_VACUUM_MIN
                      or free < AUTO_VACUUM_FRACTION * total):
        return None
    if live is not None and not postgres:
        return Vacuum(total, total, skipped=(
            f"run {live.id} of flow {live.flow!r} is running, and VACUUM would hold the "
            "store's write lock for as long as it takes; run it again when no run is going "
            "(nbflow prune --vacuum)"))
    names = ", ".join(store.engine.dialect.identifier_preparer.quote(t.name)
                      for t in metadata.sorted_tables)
    started = time.monotonic()
    try:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if postgres:
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {names}")
            else:
                conn.exec_driver_sql("VACUUM")
                # VACUUM in WAL mode writes the new file through the -wal, which
                # would stay as large as the database until the next checkpoint.
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            after, _ = database_sizes(conn, store.path)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return Vacuum(total, total, skipped=f"VACUUM failed ({reason}); nothing was lost, "
                      "try again when no other process writes to the store")
    done = Vacuum(total, sum(after.values()))
    done.notes.append(f"took {time.monotonic() - started:.1f}s")
    if postgres:
        done.notes.append("PostgreSQL keeps the space for new rows; the files do not shrink")
    return done


def file_size(path: str) -> int:
    """Bytes of the file at ``path``, 0 when there is none."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
