"""Store faults a run meets on a real file system: each a clear error, nothing committed lost.

The faults are real: a tmpfs mounted read-only, a small tmpfs filled to the
last byte (before a run, and while one runs), a file truncated or with pages
overwritten.  ``tests/store/`` covers opening errors (read-only files and
folders via ``chattr``, a newer schema, a file that is not a database) and
another process's lock, at open and during a run; they are not repeated here.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess

import pytest

from nbflow import Flow, StoreError
from nbflow.core.replay import COLUMNS, replay
from nbflow.store import Store

DISK_FULL = (r"could not be written: the disk is full or failing\. What was committed before "
             r"is intact; free space and resume the run\.")


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size)`` -> a folder on a new tmpfs of that size (unmounted after the test)."""
    mounted = []

    def mount(size: str):
        folder = tmp_path / f"mnt{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                        f"{done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        # Lazy: a store the test left open is closed after this teardown.
        subprocess.run(["umount", "-l", str(folder)], check=True)


def remount(folder, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def fill(folder) -> None:
    """Write to ``folder`` until its file system is full."""
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def seeded_store(path: str) -> dict:
    """A store at ``path`` with one succeeded run, closed; returns what it recorded."""
    flow = Flow("seed", store=path, executor="sync")
    flow.task(lambda: 1, name="one")
    flow.task(lambda one: one + 1, name="two")
    flow.run()
    flow.store.close()
    return record(path)


def record(path: str) -> dict:
    """Every run's row, task rows and events (the committed state to compare)."""
    store = Store(path)
    try:
        return {r["id"]: (r["state"], *store.record(r["id"])[:2]) for r in store.runs()}
    finally:
        store.close()


def integrity(path: str) -> list:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


# fault -> (cause it, undo it, what the error says)
FAULTS = {
    "read-only mount": (lambda folder: remount(folder, "ro"),
                        lambda folder: remount(folder, "rw"),
                        r"is read-only: nothing can be recorded there\. Make it writable"),
    "full disk": (fill, lambda folder: os.unlink(folder / "filler"), DISK_FULL),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_store_fault_fails_the_run_before_any_task_runs(tmpfs, fault):
    cause, undo, message = FAULTS[fault]
    folder = tmpfs("1m")
    path = str(folder / "nbflow.db")
    before = seeded_store(path)
    ran = []
    flow = Flow("blocked", store=path, executor="sync")
    flow.task(lambda: ran.append(1), name="work")
    cause(folder)
    try:
        with pytest.raises(StoreError, match=rf"^the nbflow store '{path}' {message}"):
            flow.run()
    finally:
        undo(folder)
    assert ran == []
    assert record(path) == before and integrity(path) == [("ok",)]


def test_a_disk_that_fills_during_a_run_then_space_freed_and_resumed(tmpfs, tmp_path):
    folder = tmpfs("1m")
    path = str(folder / "nbflow.db")
    before = seeded_store(path)
    once = tmp_path / "filled"
    flow = Flow("filling", store=path, executor="threads", workers=1)

    @flow.task
    def noisy():
        if not once.exists():   # the first run fills the disk, the resumed one does not
            once.touch()
            fill(folder)
        print("x" * 200_000)   # a log bigger than any free page left
        return 1

    @flow.task
    def after(noisy):
        return noisy + 1

    with pytest.raises(StoreError, match=rf"^writing to the nbflow store '{path}' failed: the "
                                         rf"nbflow store '{path}' {DISK_FULL} The run's record "
                                         r"there is incomplete"):
        flow.run()
    failed_run = flow.store.latest_run_id("filling")
    os.unlink(folder / "filler")

    # What was committed is intact and consistent, the failed run's part included.
    now = record(path)
    assert {k: now[k] for k in before} == before and integrity(path) == [("ok",)]
    state, rows, events = now[failed_run]
    by_name = {r["name"]: [r[c] for c in COLUMNS] for r in rows}
    assert replay(list(by_name), events) == by_name

    # With space again, the same flow resumes the run to the end.
    run = flow.run(resume=True)
    assert run.counts() == {"succeeded": 2} and run.result("after") == 2


def damaged_store(path: str) -> bytes:
    """A store of two runs with six pages past its schema overwritten (from the runs
    table's indexes to the events table); its bytes."""
    seeded_store(path)
    flow = Flow("more", store=path, executor="sync")
    for k in range(60):   # enough pages that the damage misses the schema
        flow.task(lambda: "x" * 400, name=f"t{k}")
    flow.run()
    flow.store.close()
    # The root pages of the runs' indexes, the task rows and the events, wherever
    # the schema put them (a new table moves them).
    con = sqlite3.connect(path)
    try:
        pages = [p for (p,) in con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name IN ('sqlite_autoindex_runs_1', "
            "'sqlite_autoindex_runs_2', 'tasks', 'events')")]
    finally:
        con.close()
    with open(path, "r+b") as f:
        for page in pages:
            f.seek(4096 * (page - 1))
            f.write(b"\xff" * 4096)
    with open(path, "rb") as f:
        return f.read()


CORRUPT = r"is not an nbflow store, or it is corrupt \(database disk image is malformed\)"


def test_a_run_on_a_store_with_overwritten_pages_is_an_error_and_changes_nothing(store_path):
    damaged = damaged_store(store_path)
    with pytest.raises(StoreError, match=rf"^'{store_path}' {CORRUPT}\. Move it aside"):
        Flow("more", store=store_path, executor="sync").run()
    with open(store_path, "rb") as f:
        assert f.read() == damaged


def test_reading_a_store_with_overwritten_pages_is_a_clear_error(store_path):
    damaged_store(store_path)
    store = Store(store_path)
    with pytest.raises(StoreError, match=CORRUPT):
        for run in store.runs():
            store.events(run["id"])


def test_a_truncated_store_is_an_error_and_is_left_as_it_was(store_path):
    seeded_store(store_path)
    size = os.path.getsize(store_path)
    with open(store_path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(StoreError, match=rf"^'{store_path}' {CORRUPT}\. Move it aside"):
        Store(store_path)
    assert os.path.getsize(store_path) == size // 2
