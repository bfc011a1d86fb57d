"""A Flow or Store nobody refers to releases its writer thread and process, its lease
thread and its connections; Flows on one store share one Store, hence one writer."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import threading
import time
import weakref

import pytest

from nbflow import Flow
from nbflow.store import Store

BOUND = 30  # seconds any wait here may take before it is a failure


def children() -> set[int]:
    """Pids of this process's live children (the store's writer processes)."""
    me, found = str(os.getpid()), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(pid))
    return found


def usage() -> tuple[int, int, int]:
    """(child processes, threads, open file descriptors) of this process."""
    return len(children()), threading.active_count(), len(os.listdir("/proc/self/fd"))


def assert_bounded(before: tuple[int, int, int], after: tuple[int, int, int]) -> None:
    kids, threads, fds = after
    assert kids <= before[0] and threads <= before[1], (before, after)
    assert fds <= before[2] + 2, (before, after)   # slack for what the test itself opened


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {BOUND}s for {what}"
        time.sleep(0.02)


def one_run(flow: Flow, i: int) -> None:
    flow.task(lambda: i, name="extract")
    flow.task(lambda extract: extract + 1, name="load")
    assert flow.run().state == "succeeded"


def test_rebinding_a_flow_like_a_rerun_cell_keeps_one_writer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(300):
        flow = Flow("etl")   # the cell `flow = nbflow.Flow("etl")`, run again and again
        one_run(flow, i)
        if i == 0:
            first = usage()
    assert_bounded(first, usage())
    assert len(Store().runs(flow="etl")) == 300


@pytest.mark.slow
def test_300_flows_on_their_own_stores_release_everything_when_dropped(tmp_path):
    before = usage()
    for i in range(300):
        one_run(Flow("etl", store=str(tmp_path / f"s{i}.db")), i)
        assert_bounded((before[0] + 1, before[1] + 1, before[2] + 8), usage())
    assert_bounded(before, usage())
    # Every run was committed before its store went.
    con = sqlite3.connect(tmp_path / "s299.db")
    assert con.execute("SELECT state FROM runs").fetchall() == [("succeeded",)]
    con.close()


def test_flows_on_one_store_share_one_store_and_an_explicit_store_is_used_as_is(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = Flow("a", store="runs.db"), Flow("b", store=str(tmp_path / "x" / ".." / "runs.db"))
    assert a.store is b.store
    os.symlink(tmp_path / "runs.db", tmp_path / "link.db")
    assert Flow("c", store="link.db").store is a.store
    assert Flow("d", store="other.db").store is not a.store
    mine = Store("runs.db")
    assert Flow("e", store=mine).store is mine and mine is not a.store


def test_a_dropped_store_commits_what_was_queued_then_ends_its_writer(store_path):
    store = Store(store_path)
    flow = Flow("queued", store=store, executor="sync")
    flow.task(lambda: 1, name="a")
    flow.task(lambda a: a, name="b")
    graph, specs = flow.build()
    # Task rows go through the writer: queued, not yet committed, when the Store goes.
    store.create_run("r1", "queued", graph, [s.kind for s in specs], {}, time.time())
    pid = store.writer_pid
    ref = weakref.ref(store)
    del store, flow
    gc.collect()
    assert ref() is None
    assert pid not in children()
    con = sqlite3.connect(store_path)
    assert con.execute("SELECT name FROM tasks ORDER BY idx").fetchall() == [("a",), ("b",)]
    con.close()


def test_a_live_run_keeps_its_store_alive_until_it_ends(store_path):
    release = threading.Event()
    flow = Flow("live", store=store_path)

    @flow.task
    def hold():
        release.wait(BOUND)
        return 1

    run = flow.run(background=True)
    store, pid = weakref.ref(flow.store), None
    wait_for(lambda: store().writer_pid is not None, "the writer process")
    pid = store().writer_pid
    run_ref = weakref.ref(run)
    del flow, run
    gc.collect()
    assert store() is not None and pid in children()
    release.set()
    wait_for(lambda: run_ref() is None, "the run to end and be dropped")
    # The last reference may drop on the store's own writer thread, which then
    # releases it from a thread of its own: wait for that, do not race it.
    wait_for(lambda: gc.collect() is not None and store() is None and pid not in children(),
             "the store to be released and its writer process to end")
    con = sqlite3.connect(store_path)
    assert con.execute("SELECT state FROM runs").fetchall() == [("succeeded",)]
    con.close()


QUEUED_THEN_EXIT = """
import sys, time
import nbflow
from nbflow.store import Store
store = Store(sys.argv[1])
flow = nbflow.Flow("exit", store=store, executor="sync")
flow.task(lambda: 1, name="a")
flow.task(lambda a: a, name="b")
graph, specs = flow.build()
store.create_run("r1", "exit", graph, [s.kind for s in specs], {}, time.time())
# The interpreter exits now, the task rows still queued for the writer.
"""


def test_what_is_queued_at_the_interpreters_exit_is_committed(store_path):
    done = subprocess.run([sys.executable, "-c", QUEUED_THEN_EXIT, store_path],
                          capture_output=True, text=True, timeout=BOUND,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(store_path)
    assert con.execute("SELECT name FROM tasks ORDER BY idx").fetchall() == [("a",), ("b",)]
    con.close()


def test_a_store_released_on_its_own_writer_thread_is_released_by_another(store_path):
    from nbflow.store import store as store_module
    store = Store(store_path)
    store._get_writer()
    held, pid = store._held, store.writer_pid
    ran_on = []
    close = held.close

    def recording_close(wait=None):
        ran_on.append(threading.current_thread().name)
        close(wait)

    held.close = recording_close
    # The last reference going on one of the store's own threads, which cannot wait
    # for themselves to stop: the release must go to a thread of its own.
    held.threads = lambda: {threading.current_thread()}
    store_module._release(held)
    wait_for(lambda: pid not in children(), "the writer process to end")
    assert ran_on == ["nbflow-store-release"]


def test_a_dropped_store_whose_writer_is_stalled_gives_up_without_hanging(store_path,
                                                                          monkeypatch):
    import signal

    from nbflow.store import store as store_module
    monkeypatch.setattr(store_module, "RELEASE_WAIT", 0.5)
    store = Store(store_path)
    flow = Flow("stalled", store=store, executor="sync")
    flow.task(lambda: 1, name="a")
    graph, specs = flow.build()
    store.create_run("r1", "stalled", graph, [s.kind for s in specs], {}, time.time())
    store.flush()
    pid = store.writer_pid
    os.kill(pid, signal.SIGSTOP)   # as a hung disk would
    try:
        store.create_run("r2", "stalled", graph, [s.kind for s in specs], {}, time.time())
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match=(
                rf"^nbflow: the store '{store_path}' was released, unreferenced, with writes "
                r"it could not commit: the writer of the nbflow store .* did not commit what "
                r"was queued within 0\.5s \(a stopped writer process or a hung disk\?\)")):
            del store, flow
            gc.collect()
        assert time.monotonic() - started < BOUND / 3
    finally:
        os.kill(pid, signal.SIGKILL)
