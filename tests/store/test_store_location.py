"""Where a store lives: a path is a path whatever it holds, and what nbflow creates
there is readable by its owner only (what the user made keeps its permissions)."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from nbflow import Flow, StoreError
from nbflow.store import Store

# Characters that mean something in a URL, or in a sqlite "file:" URI.
NAMES = ["q?mode=ro.db", "pct%20x.db", "hash#1.db", "with space.db", "ünïcødé €.db",
         "a?b=c&d#e%41 f.db", "file:x.db"]


def run_once(store) -> Flow:
    flow = Flow("where", store=store, executor="sync")
    flow.task(lambda: 1, name="one")
    flow.task(lambda one: one + 1, name="two")
    assert flow.run().state == "succeeded"
    return flow


def recorded(path) -> list[str]:
    """Task names in the file at ``path``, read without nbflow (and without URL parsing)."""
    con = sqlite3.connect(os.fsencode(path))
    try:
        return [name for (name,) in con.execute("SELECT name FROM tasks ORDER BY idx")]
    finally:
        con.close()


def test_the_store_file_is_created_under_the_exact_name(tmp_path):
    # The writer process and the engine, each opening the file its own way, all
    # write to the one file of that name, and nothing else is created beside it.
    for i, name in enumerate(NAMES):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        flow = run_once(str(folder / name))
        assert flow.store.path == str(folder / name)
        flow.store.close()
        assert set(os.listdir(folder)) <= {name, name + "-wal", name + "-shm", "results"}
        assert recorded(folder / name) == ["one", "two"]


def test_a_relative_path_with_uri_characters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_once("q?mode=ro.db").store.close()
    assert recorded(tmp_path / "q?mode=ro.db") == ["one", "two"]
    assert not (tmp_path / "q").exists()


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"caf\xe9.db")   # a latin-1 name: a lone surrogate in Python
    run_once(str(tmp_path / name)).store.close()
    assert b"caf\xe9.db" in os.listdir(os.fsencode(tmp_path))
    assert recorded(os.fsencode(tmp_path) + b"/caf\xe9.db") == ["one", "two"]


def test_a_leading_tilde_is_the_home_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert run_once("~/runs.db").store.path == str(home / "runs.db")
    monkeypatch.setenv("NBFLOW_STORE", "~/env.db")
    assert Store().path == str(home / "env.db")
    assert not (tmp_path / "~").exists()
    # A file whose name starts with ~ is reached through a folder: ./~name
    assert Store("./~mine.db").path == str(tmp_path / "~mine.db")


def test_store_url_opens_the_same_store_again(tmp_path, monkeypatch):
    path = str(tmp_path / "q?x=1#2 %41.db")
    first = run_once(path).store
    assert first.url == path      # what NBFLOW_STORE is set to for a notebook's kernel
    monkeypatch.setenv("NBFLOW_STORE", first.url)
    assert [r["flow"] for r in Store().runs()] == ["where"]


def test_a_url_is_a_url_only_with_a_scheme(tmp_path):
    path = tmp_path / "by url.db"
    run_once(f"sqlite:///{path}").store.close()
    assert recorded(path) == ["one", "two"]


@pytest.mark.parametrize("store, error, message", [
    ("bad\0name.db", StoreError, r"^the store path 'bad\\x00name\.db' contains a NUL byte, "
                                 r"which no file name can hold\. Choose another store with "
                                 r"Flow\(store=\.\.\.\) or the NBFLOW_STORE environment "
                                 r"variable\.$"),
    (42, TypeError, r"^store must be a file path, a URL or a Store, got int 42$"),
])
def test_stores_that_cannot_be_a_location(store, error, message):
    with pytest.raises(error, match=message):
        Flow("x", store=store).store


# -- owner-only files ----------------------------------------------------------------

def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_what_nbflow_creates_is_owner_only_whatever_the_umask(tmp_path, umask, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flow = run_once(None)     # the default .nbflow/nbflow.db
    nested = run_once(str(tmp_path / "new" / "sub" / "runs.db"))
    for folder in (".nbflow", "new", "new/sub"):
        assert mode(tmp_path / folder) == 0o700, folder
    for store in (flow.store, nested.store):
        for suffix in ("", "-wal", "-shm"):
            assert mode(store.path + suffix) == 0o600, store.path + suffix


def test_what_the_user_made_keeps_its_permissions(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    path = folder / "team.db"
    sqlite3.connect(path).close()     # an empty database the user created
    os.chmod(path, 0o640)
    run_once(str(path)).store.close()
    assert mode(folder) == 0o755 and mode(path) == 0o640
    assert recorded(path) == ["one", "two"]
