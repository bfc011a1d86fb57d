"""Opening a store URL: path resolution, pre-flight checks, SQLite pragmas.

Everything that can be checked before the database is touched is checked here,
so a bad location or a newer schema fails with a clear message and leaves the
file exactly as it was (in particular WAL mode is only switched on afterwards).
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
from dataclasses import dataclass

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ..errors import StoreError, StoreVersionError
from .schema import SCHEMA_VERSION

DEFAULT_PATH = os.path.join(".nbflow", "nbflow.db")
FIX = "Choose another store with Flow(store=...) or the NBFLOW_STORE environment variable."
URL_FORMS = ("Give a file path, sqlite:///PATH, or a SQLAlchemy URL such as "
             "postgresql+psycopg://USER@HOST:PORT/DATABASE.")


# Only text that starts with a scheme is a URL; anything else is a file path,
# whatever characters it holds ("runs?v=2.db", "50%.db", "#1.db").
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Location:
    """Where a store is: the URL SQLAlchemy opens and, for a SQLite file, its path.

    The URL is built from the path (``URL.create``), never by pasting the path
    into URL text, so nothing in a file name is read as URL syntax.
    """

    url: URL
    path: str | None   # the SQLite file; None for memory databases and servers
    text: str          # what opens the same store again (Store(), NBFLOW_STORE)


def locate(store: str | os.PathLike | None) -> Location:
    """Where ``store``, ``NBFLOW_STORE`` or the default path puts the store.

    A leading ``~`` is the home folder, as in a shell.

    Raises
    ------
    StoreError
        ``store`` starts like a URL (``scheme://``) but is not a valid one, or
        is a path with a NUL byte in it.
    TypeError
        ``store`` is neither text nor a path.
    """
    if store is None:
        store = os.environ.get("NBFLOW_STORE")
    else:
        try:
            store = os.fsdecode(store)
        except TypeError:
            raise TypeError(f"store must be a file path, a URL or a Store, got "
                            f"{type(store).__name__} {store!r}") from None
    if not store:
        store = DEFAULT_PATH
    if _SCHEME.match(store):
        try:
            url = make_url(store)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", store)  # never show a password
            raise StoreError(f"{shown!r} is neither a file path nor a valid store URL. "
                             f"{URL_FORMS}") from None
        path = url.database if url.get_backend_name() == "sqlite" else None
        if path in ("", ":memory:"):
            path = None
        return Location(url, path, path or store)
    if "\0" in store:
        raise StoreError(f"the store path {store!r} contains a NUL byte, which no file name "
                         f"can hold. {FIX}")
    path = os.path.abspath(os.path.expanduser(store))
    return Location(URL.create("sqlite", database=path), path, path)


def open_engine(where: Location, busy_timeout: float) -> Engine:
    """A SQLAlchemy engine for ``where`` after the pre-flight checks.

    Raises
    ------
    StoreError
        the URL names an unknown database kind or a driver that is not
        installed; the location cannot be created or written; the file is not
        a database.
    StoreVersionError
        the file was written by a newer nbflow.
    """
    url, path = where.url, where.path
    if url.get_backend_name() != "sqlite":
        return _server_engine(url)
    if path is None:
        engine = create_engine(url, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        check_location(path)
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


def _server_engine(u: URL) -> Engine:
    label = repr(u.render_as_string(hide_password=True))
    try:
        return create_engine(u, pool_pre_ping=True)
    except NoSuchModuleError:
        raise StoreError(f"the store URL {label} names a database kind ({u.drivername!r}) "
                         f"that SQLAlchemy does not know. {URL_FORMS}") from None
    except ImportError as e:
        raise StoreError(f"the store URL {label} needs the Python package {e.name!r}, which "
                         "is not installed. Install it, or for PostgreSQL use a "
                         "postgresql+psycopg:// URL after pip install 'nbflow[postgres]'."
                         ) from None


def check_location(path: str) -> None:
    """The pre-flight checks of a SQLite store at ``path``, creating its folder and
    file (owner-only) if they are missing.

    Raises
    ------
    StoreError, StoreVersionError
        what cannot work there, and how to fix it.
    """
    folder = os.path.dirname(path) or "."
    try:
        make_private_folders(folder)
    except OSError as e:
        raise StoreError(f"cannot create the folder {folder!r} for the nbflow store: "
                         f"{e.strerror}. {FIX}") from None
    if os.path.isdir(path):
        raise StoreError(f"the nbflow store {path!r} is a folder; give the path of a database "
                         f"file, such as {os.path.join(path, 'nbflow.db')!r}.")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise StoreError(f"the nbflow store {path!r} is read-only: nothing can be recorded "
                             f"there. Make it writable (chmod u+w) or {FIX[0].lower()}{FIX[1:]}")
        # In WAL mode SQLite keeps two files beside the database, which even a
        # reader must be able to create.
        if not os.access(folder, os.W_OK):
            raise StoreError(f"the nbflow store {path!r} is in a folder that is not writable, "
                             "and SQLite needs to create its -wal and -shm files beside it. "
                             f"Make {folder!r} writable or {FIX[0].lower()}{FIX[1:]}")
        check_schema_version(path)
    elif not os.access(folder, os.W_OK):
        raise StoreError(f"cannot create the nbflow store in {folder!r}: the folder is not "
                         f"writable. {FIX}")
    else:
        _create_private_file(path)


def make_private_folders(folder: str) -> None:
    """Create ``folder`` and its missing parents, readable by their owner only.

    Only folders created here get mode 0700 (whatever the umask); one that
    exists, the user's or another process's that won a race, is left as it is.
    """
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for f in reversed(missing):
        try:
            os.mkdir(f, 0o700)
        except FileExistsError:
            continue
        os.chmod(f, 0o700)   # mkdir's mode passes through the umask


def _create_private_file(path: str) -> None:
    # SQLite would create the file 0644 minus the umask, and gives its -wal and
    # -shm files the mode of the database: an empty file made 0600 first, which
    # SQLite takes as a new database, keeps all three private.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:   # another process created it meanwhile: theirs
        return
    except OSError as e:
        raise StoreError(f"cannot create the nbflow store {path!r}: {e.strerror}. {FIX}"
                         ) from None
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def check_schema_version(path: str) -> None:
    """Read the schema version of an existing file without changing a byte of it."""
    # Even a mode=ro connection creates the -wal and -shm files of a WAL database.
    # immutable=1 reads the main file alone, which holds everything committed
    # unless a -wal file exists (another connection is open): then read through it.
    live = os.path.exists(path + "-wal")
    uri = f"file:{urllib.parse.quote(os.fsencode(path))}?{'mode=ro' if live else 'immutable=1'}"
    try:
        con = sqlite3.connect(uri, uri=True)
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
