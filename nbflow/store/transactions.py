"""Running a transaction's statements through a DB-API connection, row by row when
the database refuses some.

:class:`Transactions` runs what ``batches.Statements`` builds, in the writer
process for a SQLite file (``writerproc.py``) and in the writer thread for a
database server (``writer.py``).  This module imports nothing but the
standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

#: One transaction: ``(sql, rows)`` pairs, each run with ``executemany``.
Transaction = list[tuple[str, list[tuple]]]


#: Rows a transaction committed without: ``(statement index, row index, why)``.
Refused = list[tuple[int, int, str]]


class Transactions:
    """Runs transactions through the DB-API connection ``connect()`` returns
    (kept between them, replaced after a failure).

    A row the database refuses (:func:`refused`) costs only itself: the
    transaction is run again with each statement's rows in savepoints, halved
    around the refused ones, and commits the rest.  ``begin`` is the statement
    that opens a transaction when the driver does not (sqlite3 would let the
    first savepoint open it, and releasing that one would commit).
    """

    def __init__(self, connect: Callable[[], Any], begin: str | None = None):
        self._connect = connect
        self._begin = begin
        self._conn = None

    def execute(self, statements: Transaction) -> Refused:
        """Run ``statements`` in one transaction and commit; returns the rows left out.

        Raises the driver's error when nothing could be committed (the database
        is unavailable: locked, full, read-only, gone).
        """
        try:
            try:
                self._run(statements, None)
                return []
            except Exception as exc:
                if not refused(exc):
                    raise
                with suppress(Exception):
                    self._conn.rollback()
            out: Refused = []
            self._run(statements, out)
            return out
        except BaseException:
            self._drop()
            raise

    def query(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of one read."""
        try:
            cur = self._connection().cursor()
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()]
            self._conn.rollback()   # a server's driver opened a transaction for it
            return rows
        except BaseException:
            self._drop()
            raise

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _run(self, statements: Transaction, isolate: Refused | None) -> None:
        conn = self._connection()
        cur = conn.cursor()
        if isolate is None:
            for sql, rows in statements:
                cur.executemany(sql, rows)
        else:
            if self._begin:
                cur.execute(self._begin)
            for i, (sql, rows) in enumerate(statements):
                _isolate(cur, sql, rows, i, 0, isolate)
        conn.commit()

    def _drop(self) -> None:
        # The retry starts from a fresh connection (a server may have restarted).
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with suppress(Exception):  # the connection may be gone with the server
            conn.rollback()
        with suppress(Exception):
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _isolate(cur: Any, sql: str, rows: list[tuple], statement: int, first: int,
             out: Refused) -> None:
    """Run ``rows`` in a savepoint; when one is refused, each half in its own, down to
    the refused rows themselves, which go to ``out``."""
    cur.execute("SAVEPOINT nbflow_rows")
    try:
        cur.executemany(sql, rows)
    except Exception as exc:
        if not refused(exc):
            raise
        cur.execute("ROLLBACK TO SAVEPOINT nbflow_rows")
        cur.execute("RELEASE SAVEPOINT nbflow_rows")
        if len(rows) == 1:
            out.append((statement, first, f"{type(exc).__name__}: {exc}".strip()))
            return
        half = len(rows) // 2
        _isolate(cur, sql, rows[:half], statement, first, out)
        _isolate(cur, sql, rows[half:], statement, first + half, out)
    else:
        cur.execute("RELEASE SAVEPOINT nbflow_rows")


def refused(exc: BaseException) -> bool:
    """True when ``exc`` is the database (or its driver) refusing a row's values, which
    no retry changes; False when the database is unavailable (locked, full, gone),
    which a retry may overcome.

    Judged by the DB-API class names (every driver has them) and the drivers'
    words for a value or a row they cannot bind.
    """
    if isinstance(exc, (ValueError, TypeError, OverflowError)):   # surrogates, huge ints
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"IntegrityError", "DataError"}:
        return True
    # A row of the wrong type or length (sqlite3, psycopg), not an SQL or schema error.
    return "ProgrammingError" in names and any(
        sign in str(exc) for sign in ("binding parameter", "bindings", "placeholders"))
