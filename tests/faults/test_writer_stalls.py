"""A writer that stops writing (SIGSTOP, as a hung disk would) and a store locked at a
run's end: bounded waits that say what is wrong, and nothing lost afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import suppress

import pytest
from processes import alive, wait_until

from nbflow import Flow, StoreError, StoreLockedError
from nbflow.store import Store


def test_a_stopped_writer_process_makes_wait_and_status_raise_within_the_bound(
        store_path, monkeypatch):
    monkeypatch.setenv("NBFLOW_STORE_TIMEOUT", "1")
    flow = Flow("stalled", store=store_path)
    flow.task(lambda: 1, name="one")
    flow.task(lambda one: one + 1, name="two")
    flow.run()   # the writer process is started
    pid = flow.store.writer_pid
    stalled = (rf"^the nbflow store '{store_path}' has written nothing for 1 s: its writer "
               rf"process \(pid {pid}\) is stopped, or its disk hangs\. Nothing is lost yet: "
               r"what is queued is written once it moves again\. Check the disk, and that the "
               rf"process is not stopped \(kill -CONT {pid} resumes it\); or set "
               r"NBFLOW_STORE_TIMEOUT to wait longer\.$")
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        run = flow.run(background=True)
        with pytest.raises(StoreError, match=stalled):
            run.wait()   # before, for ever
        assert time.monotonic() - start < 10   # a loaded machine: bounded, not instant
        start = time.monotonic()
        with pytest.raises(StoreError, match=stalled):
            run.status()
        assert time.monotonic() - start < 10   # a loaded machine: bounded, not instant
        assert run.state == "succeeded"   # the run itself went on in memory
    finally:
        os.kill(pid, signal.SIGCONT)
    # Everything queued meanwhile is written, the run's end included.
    assert [r["state"] for r in run.status().to_dict("records")] == ["succeeded", "succeeded"]
    wait_until(lambda: flow.store.run(run.id)["state"] == "succeeded")
    assert flow.store.writer_pid == pid
    assert flow.run().state == "succeeded"


@pytest.mark.parametrize("given", ["0", "-1", "soon", "nan"])
def test_a_bad_store_timeout_is_refused_when_the_store_opens(store_path, monkeypatch, given):
    monkeypatch.setenv("NBFLOW_STORE_TIMEOUT", given)
    with pytest.raises(ValueError, match=r"^NBFLOW_STORE_TIMEOUT must be a number of seconds "
                                         rf"> 0 \(inf waits for ever\), not '{given}'$"):
        Store(store_path)


class LockAtTheEnd:
    """A sink that, when the engine ends the run, takes the store's write lock from
    another connection (another kernel writing), ``when``: before the run's last
    events are committed, or after them (before its end is written)."""

    def __init__(self, store: Store, when: str):
        self.store, self.when = store, when
        self.conn = sqlite3.connect(store.path, isolation_level=None)

    def events(self, batch):
        pass

    def logs(self, batch):
        pass

    def finish(self, cancelled):
        if self.when == "end":
            self.store.flush()
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.mark.parametrize("when", ["events", "end"])
def test_a_run_whose_end_could_not_be_written_gets_it_written_when_the_store_frees(
        store_path, when):
    store = Store(store_path, busy_timeout=0.2)
    flow = Flow("ending", store=store, executor="sync")
    flow.task(lambda: 1, name="one")
    lock = LockAtTheEnd(store, when)
    with pytest.raises(StoreLockedError, match="is locked by another process"):
        flow.run(sinks=[lock])
    run = flow._last_run
    assert store.run(run.id)["state"] == "running"
    lock.release()
    # Nobody writes anything more: the writer tries again by itself. Before,
    # the run stayed "running" for ever.
    wait_until(lambda: store.run(run.id)["state"] == "succeeded")
    assert store.run(run.id)["finished"] is not None
    assert [r["state"] for r in store.tasks(run.id)] == ["succeeded"]


def test_closing_a_store_whose_writer_process_is_stopped_ends_it_within_the_bound(
        store_path, monkeypatch):
    monkeypatch.setenv("NBFLOW_STORE_TIMEOUT", "1")
    flow = Flow("closing", store=store_path, executor="sync")
    flow.task(lambda: 1, name="one")
    first = flow.run()
    store = flow.store
    pid = store.writer_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        store.sink(first.id).logs([("one", 2, "queued while stopped\n", "")])
        start = time.monotonic()
        with pytest.raises(StoreError, match="has written nothing for 1 s"):
            store.close()   # before, for ever
        assert time.monotonic() - start < 10   # a loaded machine: bounded, not instant
        assert not alive(pid)
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    # A new writer process wrote what was queued; no writer's row is left behind.
    again = Store(store_path)
    assert [r["attempt"] for r in again.logs(first.id)] == [2]
    assert sqlite3.connect(store_path).execute("SELECT count(*) FROM commits").fetchone() == (0,)
