"""Upgrading a store that an older nbflow wrote to this schema version.

Each version's step adds what that version added: new tables come from
``metadata.create_all`` (which :class:`~nbflow.store.store.Store` runs on every
open), new columns of existing tables are listed here.  A step is idempotent,
because SQLite runs DDL outside the transaction that updates the version: a
column already there (a crash between the two, or another kernel upgrading the
same file at the same moment) is skipped, so a store is never left unopenable.
Old rows keep NULL in new columns, which every reader takes as "not recorded".
"""

from __future__ import annotations

from contextlib import nullcontext

from sqlalchemy import inspect, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .schema import SCHEMA_VERSION, meta, metadata

#: version -> the (table, column) pairs it added to tables that already existed.
ADDED_COLUMNS: dict[int, list[tuple[str, str]]] = {
    2: [("events", "value")],   # small results stored with their success event
    3: [("tasks", "cell_id"), ("runs", "notebook")],   # where tasks and runs come from
    4: [("logs", "displays")],   # what each attempt displayed (display(df), figures)
}


def upgrade(conn: Connection, found: int) -> None:
    """Bring the store on ``conn`` from version ``found`` to :data:`SCHEMA_VERSION`."""
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for table, column in ADDED_COLUMNS.get(version, ()):
            _add_column(conn, table, column)
    conn.execute(update(meta).where(meta.c.key == "schema_version")
                 .values(value=str(SCHEMA_VERSION)))


def _add_column(conn: Connection, table: str, name: str) -> None:
    if _has_column(conn, table, name):
        return
    column = metadata.tables[table].c[name]
    ddl = (f"ALTER TABLE {table} ADD COLUMN {name} "
           f"{column.type.compile(dialect=conn.dialect)}")
    # On a server a failed statement aborts the transaction: a savepoint keeps it.
    # pysqlite runs DDL outside any transaction, where there is nothing to keep.
    guard = nullcontext() if conn.dialect.name == "sqlite" else conn.begin_nested()
    try:
        with guard:
            conn.exec_driver_sql(ddl)
    except DBAPIError:
        if not _has_column(conn, table, name):   # not a concurrent upgrade: a real error
            raise


def _has_column(conn: Connection, table: str, name: str) -> bool:
    return any(c["name"] == name for c in inspect(conn).get_columns(table))
