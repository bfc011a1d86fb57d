"""Opening a store URL: path resolution, pre-flight checks, SQLite pragmas.

Everything that can be checked before the database is touched is checked here,
so a bad location or a newer schema fails with a clear message and leaves the
file exactly as it was (in particular WAL mode is only switched on afterwards).
"""

from __future__ import annotations

import os
import sqlite3

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

from ..errors import StoreError, StoreVersionError
from .schema import SCHEMA_VERSION

DEFAULT_PATH = os.path.join(".nbflow", "nbflow.db")
FIX = "Choose another store with Flow(store=...) or the NBFLOW_STORE environment variable."


def resolve_url(store: str | os.PathLike | None) -> str:
    """A SQLAlchemy URL from ``store``, ``NBFLOW_STORE`` or the default path."""
    store = os.fspath(store) if store is not None else os.environ.get("NBFLOW_STORE")
    if not store:
        store = DEFAULT_PATH
    if "://" in store:
        return store
    return "sqlite:///" + os.path.abspath(store)


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL, None for memory databases and other backends."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return u.database


def open_engine(url: str, busy_timeout: float) -> Engine:
    """A SQLAlchemy engine for ``url`` after the pre-flight checks.

    Raises
    ------
    StoreError
        the location cannot be created or written, or the file is not a database.
    StoreVersionError
        the file was written by a newer nbflow.
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is None:
        engine = create_engine(url, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        _check_location(path)
        engine = create_engine(url, connect_args={"timeout": busy_timeout,
                                                  "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        if path is not None:
            # WAL lets readers (CLI, dashboard) run while a kernel writes;
            # synchronous=NORMAL is safe against corruption in WAL mode and only
            # risks the last commits on power loss (at-least-once covers that).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def _check_location(path: str) -> None:
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the folder {folder!r} for the nbflow store: "
                         f"{e.strerror}. {FIX}") from None
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise StoreError(f"the nbflow store {path!r} is read-only: nothing can be recorded "
                             f"there. Make it writable (chmod u+w) or {FIX[0].lower()}{FIX[1:]}")
        check_schema_version(path)
    elif not os.access(folder, os.W_OK):
        raise StoreError(f"cannot create the nbflow store in {folder!r}: the folder is not "
                         f"writable. {FIX}")


def check_schema_version(path: str) -> None:
    """Read the schema version of an existing file without changing a byte of it."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the nbflow store {path!r}: {e}. {FIX}") from None
    try:
        has_meta = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
            if has_meta else None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path!r} is not an nbflow store, or it is corrupt ({e}). "
                         f"Move it aside, or {FIX[0].lower()}{FIX[1:]}") from None
    finally:
        con.close()
    if row is not None:
        raise_if_newer(int(row[0]), path)


def raise_if_newer(found: int, where: str) -> None:
    if found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the nbflow store {where!r} has schema version {found}, written by a newer "
            f"nbflow; this nbflow understands up to version {SCHEMA_VERSION}. Upgrade "
            f"nbflow (pip install -U nbflow); the file was left untouched.")
