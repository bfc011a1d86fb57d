"""SQLite-only behaviour: where the file goes, WAL, and every way a file can be unusable.

Tests run as root, for whom file permissions do not stop a write, so the
read-only cases use ``chattr +i`` (the immutable flag, which binds root too;
ext4 here).  Each check leaves the file as it found it: same bytes, same
modification time, no new files beside it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from nbflow import Flow, StoreError, StoreLockedError, StoreVersionError
from nbflow.core.graph import Graph
from nbflow.store import Store
from nbflow.store.schema import SCHEMA_VERSION

FIX = r"Choose another store with Flow\(store=\.\.\.\) or the NBFLOW_STORE environment variable\."


def snapshot(folder) -> dict[str, tuple[bytes, int]]:
    """Every file in ``folder`` with its bytes and modification time."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = (f.read(), os.stat(path).st_mtime_ns)
    return out


def make_store(path: str) -> None:
    """A store with one recorded run, closed (so no -wal/-shm files remain)."""
    flow = Flow("seed", store=path, executor="sync")
    flow.task(lambda: 1, name="one")
    flow.run()
    flow.store.close()


@contextmanager
def immutable(*paths):
    """Make ``paths`` immutable (``chattr +i``) for the block, even for root."""
    try:
        subprocess.run(["chattr", "+i", *paths], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"chattr +i is not available here: {e}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *paths], check=True)


@contextmanager
def locked(path: str):
    """Another process holding ``BEGIN EXCLUSIVE`` on ``path`` for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "con.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "con.rollback()\n", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.communicate("\n", timeout=30)


# -- where the store lives ----------------------------------------------------------

def test_default_location_and_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBFLOW_STORE", raising=False)
    assert Store().path == str(tmp_path / ".nbflow" / "nbflow.db")
    assert (tmp_path / ".nbflow" / "nbflow.db").is_file()
    monkeypatch.setenv("NBFLOW_STORE", "elsewhere/runs.db")
    assert Flow("f").store.path == str(tmp_path / "elsewhere" / "runs.db")
    # an explicit store wins over the variable
    assert Flow("f", store=tmp_path / "mine.db").store.path == str(tmp_path / "mine.db")


def test_wal_mode_foreign_keys_and_busy_timeout(store_path):
    store = Store(store_path, busy_timeout=1.5)
    with store.engine.connect() as conn:
        pragma = conn.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 1500
    con = sqlite3.connect(store_path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == \
        (str(SCHEMA_VERSION),)
    con.close()


def test_a_run_survives_reopening_the_file(store_path):
    make_store(store_path)
    [run] = Store(store_path).runs()
    assert (run["flow"], run["state"], run["counts"]) == ("seed", "succeeded", {"succeeded": 1})


# -- files that cannot be used --------------------------------------------------------

def test_a_newer_schema_leaves_the_file_untouched(store_path, tmp_path):
    make_store(store_path)
    con = sqlite3.connect(store_path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    before = snapshot(tmp_path)
    assert list(before) == ["nbflow.db"]
    with pytest.raises(StoreVersionError,
                       match=rf"^the nbflow store '{store_path}' has schema version 99, written "
                             rf"by a newer nbflow; this nbflow understands up to version "
                             rf"{SCHEMA_VERSION}\. Upgrade nbflow"):
        Store(store_path)
    assert snapshot(tmp_path) == before


def test_a_newer_schema_in_a_store_another_connection_has_open(store_path):
    make_store(store_path)
    other = sqlite3.connect(store_path)   # keeps the -wal file, where the update lands
    other.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    other.commit()
    try:
        assert os.path.exists(store_path + "-wal")
        with pytest.raises(StoreVersionError, match="has schema version 99"):
            Store(store_path)
    finally:
        other.close()


def test_paths_with_uri_characters(tmp_path):
    path = str(tmp_path / "runs #1 ?50%" / "nbflow.db")
    make_store(path)
    assert [r["flow"] for r in Store(path).runs()] == ["seed"]


def test_a_file_that_is_not_a_database(store_path, tmp_path):
    with open(store_path, "w") as f:
        f.write("name,value\nload,1\n" * 50)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match=rf"^'{store_path}' is not an nbflow store, or it is "
                                         rf"corrupt \(file is not a database\)\. Move it aside"):
        Store(store_path)
    assert snapshot(tmp_path) == before


def test_a_folder_given_as_the_store(tmp_path):
    with pytest.raises(StoreError, match=rf"^the nbflow store '{tmp_path}' is a folder; give "
                                         rf"the path of a database file, such as "
                                         rf"'{tmp_path}/nbflow\.db'\.$"):
        Store(str(tmp_path))


def test_a_read_only_file(store_path, tmp_path):
    make_store(store_path)
    before = snapshot(tmp_path)
    with immutable(store_path):
        with pytest.raises(StoreError, match=rf"^the nbflow store '{store_path}' is read-only: "
                                             r"nothing can be recorded there\. Make it writable"):
            Store(store_path)
    assert snapshot(tmp_path) == before


@pytest.fixture
def folder(tmp_path):
    """An empty folder that a test may make read-only."""
    path = tmp_path / "shared"
    path.mkdir()
    return path


def test_a_new_store_in_a_read_only_folder(folder):
    with immutable(folder):
        with pytest.raises(StoreError, match=rf"^cannot create the nbflow store in '{folder}': "
                                             rf"the folder is not writable\. {FIX}$"):
            Store(str(folder / "nbflow.db"))
        with pytest.raises(StoreError, match=rf"^cannot create the folder '{folder}/sub' for "
                                             rf"the nbflow store: Operation not permitted\."):
            Flow("f", store=folder / "sub" / "nbflow.db").store
    assert os.listdir(folder) == []


def test_an_existing_store_in_a_read_only_folder(folder):
    path = str(folder / "nbflow.db")
    make_store(path)
    before = snapshot(folder)
    with immutable(folder):
        with pytest.raises(StoreError, match=rf"^the nbflow store '{path}' is in a folder that "
                                             r"is not writable, and SQLite needs to create its "
                                             r"-wal and -shm files beside it\. Make "):
            Store(path)
    assert snapshot(folder) == before


def test_nothing_runs_when_the_store_cannot_be_opened(folder):
    flow = Flow("f", store=folder / "nbflow.db", executor="sync")
    ran = []
    flow.task(lambda: ran.append(1), name="work")
    with immutable(folder):
        with pytest.raises(StoreError, match="the folder is not writable"):
            flow.run()
    assert ran == []


# -- another process holds the lock ---------------------------------------------------------

def test_a_locked_store_waits_the_busy_timeout_then_says_so(store_path):
    make_store(store_path)
    store = Store(store_path, busy_timeout=0.3)
    graph = Graph(["a"], [[]])
    with locked(store_path):
        # reading still works while another process writes (WAL)
        assert [r["flow"] for r in store.runs()] == ["seed"]
        started = time.monotonic()
        with pytest.raises(StoreLockedError,
                           match=rf"^the nbflow store '{store_path}' is locked by another "
                                 r"process and stayed locked past the busy timeout\. Finish or "
                                 r"close the other kernel or command that is writing to it, "
                                 r"then try again"):
            store.create_run("r2", "f", graph, ["function"], {}, 1.0, {})
        assert time.monotonic() - started >= 0.3
    # nothing half-written, and the store works again once the lock is gone
    assert [r["flow"] for r in store.runs()] == ["seed"]
    store.create_run("r2", "f", graph, ["function"], {}, 1.0, {})
    assert {r["id"] for r in store.runs()} >= {"r2"}


@contextmanager
def lock_taken_by_a_task(store_path: str, busy_timeout: float = 0.3):
    """A flow whose only task makes another process lock the store (released
    after the block), so the writer thread meets the lock mid-run."""
    flow = Flow("f", store=Store(store_path, busy_timeout=busy_timeout), executor="sync")
    held = []

    def grab():
        lock = locked(store_path)
        lock.__enter__()
        held.append(lock)

    flow.task(grab, name="grab")
    try:
        yield flow
    finally:
        for lock in held:
            lock.__exit__(None, None, None)


def test_a_lock_taken_during_a_run_fails_the_run_and_loses_nothing_committed(store_path):
    make_store(store_path)
    reader = Store(store_path)
    [seed] = reader.runs()
    seed_events = reader.events(seed["id"])
    with lock_taken_by_a_task(store_path) as flow:
        with pytest.raises(StoreError, match="is locked by another process and stayed locked "
                                             "past the busy timeout"):
            flow.run()
    assert reader.runs()[-1] == seed and reader.events(seed["id"]) == seed_events


def test_a_lock_taken_during_a_run_raises_store_locked_error(store_path):
    make_store(store_path)
    with lock_taken_by_a_task(store_path) as flow:
        with pytest.raises(StoreLockedError):
            flow.run()


def test_the_store_records_again_once_the_lock_is_gone(store_path):
    make_store(store_path)
    with lock_taken_by_a_task(store_path) as flow:
        with pytest.raises(StoreError):
            flow.run()
    flow.clear()
    flow.task(lambda: 2, name="after")
    run = flow.run()
    assert [t["state"] for t in flow.store.tasks(run.id)] == ["succeeded"]
