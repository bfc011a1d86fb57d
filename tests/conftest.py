"""Fixtures every test folder may use.

* ``store_path``: a SQLite file path in the test's tmp folder (not created yet).
* ``pg_url``: a throwaway PostgreSQL server started once per session, as
  TOOLCHAIN.md describes, and the URL of a database on it; ``new_pg_url``: a
  fresh, empty database on that server for tests that need one of their own.
* an autouse fixture that stops the background runs and closes the stores a
  test opened, so no writer thread or connection leaks into the next test
  (it refers to them weakly: a test may check that a dropped store is released).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import weakref

import pytest

PG_BIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture
def store_path(tmp_path):
    """Where a test's SQLite store lives; the file does not exist yet."""
    return str(tmp_path / "nbflow.db")


@pytest.fixture(autouse=True)
def _close_what_the_test_opened(monkeypatch):
    from nbflow import api
    from nbflow.store import store

    stores, runs = [], []
    for cls, opened in ((store.Store, stores), (api.Run, runs)):
        monkeypatch.setattr(cls, "__init__", _recording(cls.__init__, opened))
    yield
    for run in filter(None, (ref() for ref in runs)):
        if not run.done and run._thread is not None:
            run.cancel("test teardown")
            run._thread.join(30)
    for s in filter(None, (ref() for ref in stores)):
        s.close()


def _recording(init, opened: list):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        opened.append(weakref.ref(self))
    return __init__


class _Postgres:
    """One PostgreSQL cluster in a temporary folder, run as the ``postgres`` user."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nbflow-pg-", dir="/tmp")
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self._names = itertools.count()
        try:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")
            self._run("pg_ctl", "-w", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                      "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                      "-c fsync=off", "start")
        except subprocess.CalledProcessError as e:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"could not start PostgreSQL: {e.stderr.decode()}") from e

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, tool), *args],
                       check=True, capture_output=True, cwd=self.dir)

    def new_database(self) -> str:
        import psycopg
        name = f"nbflow_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-w", "-D", self.data, "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _postgres():
    if os.geteuid() != 0 or not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip(f"needs root and PostgreSQL under {PG_BIN} to start a throwaway server")
    server = _Postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(_postgres):
    """URL of a database on the session's PostgreSQL server (shared by the session)."""
    return _postgres.new_database()


@pytest.fixture
def new_pg_url(_postgres):
    """URL of a new, empty database on the session's PostgreSQL server."""
    return _postgres.new_database()
