"""The writer process killed at the worst moments, 100 times: nothing lost, nothing twice.

Two kinds of death, both real: the child exits right after a COMMIT, before
its answer reaches the kernel (``NBFLOW_WRITER_EXIT_AFTER_COMMIT``), which
before this made the retry insert committed rows again and poisoned the
store; and SIGKILL from outside at random moments (mid-transaction, between
transactions, while it starts, while it answers).  After every run its
record must be whole: every event once, in order, the task table equal to
their replay, every log and dead letter once, the run's end written, and no
row refused.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
import warnings

import pytest
from processes import alive

from nbflow import Flow, StoreError
from nbflow.core.replay import COLUMNS, replay

pytestmark = pytest.mark.slow

# Each kind of death is tried TARGET times (100 in all, as issue 9 asks) within BUDGET
# seconds if it can (a slow CI machine once needed over 300 s), and at least FLOOR
# times, or the test fails.
TARGET, FLOOR, BUDGET = 50, 25, 90.0


class EventLog(list):
    """A sink that keeps the events exactly as the engine made them."""

    def events(self, batch):
        self.extend(batch)

    def logs(self, batch):
        pass


def busy_flow(path) -> Flow:
    """Tasks that print, a chain and a fan-in, one failing after a retry: every
    kind of row (task rows, events, logs, dead letters)."""
    flow = Flow("kills", store=path, workers=4)
    for k in range(24):
        def work(k=k):
            time.sleep(0.002 * (k % 3))
            print(f"task {k}")
            return k
        flow.task(work, name=f"t{k}", after=[f"t{k - 4}"] if k >= 4 else [])

    @flow.task(retries=1, retry_delay=0.01)
    def flaky():
        print("about to fail")
        raise RuntimeError("always")

    flow.task(lambda: "end", name="last", after=[f"t{k}" for k in range(20, 24)])
    return flow


def check_whole(flow: Flow, run, sink: EventLog) -> None:
    store = flow.store
    events = store.events(run.id)
    assert [e[1] for e in events] == list(range(len(events)))   # none lost, none twice
    assert events == list(sink)                                  # exactly what the engine made
    rows = {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run.id)}
    assert rows == replay(run.names, events)
    assert rows["flaky"][0] == "failed" and rows["last"][0] == "succeeded"
    logs = [(r["task"], r["attempt"], r["stdout"]) for r in store.logs(run.id)]
    assert sorted(logs) == sorted([(f"t{k}", 1, f"task {k}\n") for k in range(24)]
                                  + [("flaky", 1, "about to fail\n"),
                                     ("flaky", 2, "about to fail\n")])
    assert [d["task"] for d in store.dead_letters("kills", run.id)] == ["flaky"]
    assert store.run(run.id)["state"] == run.state == "failed"


def committed_transactions(path: str) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT coalesce(sum(txn), 0) FROM commits").fetchone()[0]
    finally:
        con.close()


def test_a_writer_that_dies_after_commit_or_at_random_loses_and_doubles_nothing(
        store_path, monkeypatch):
    random.seed(9)
    deaths = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Every writer process exits right after its first commit, unanswered.
        monkeypatch.setenv("NBFLOW_WRITER_EXIT_AFTER_COMMIT", "1")
        flow = busy_flow(store_path)
        until = time.monotonic() + BUDGET
        while deaths < TARGET and (deaths < FLOOR or time.monotonic() < until):
            sink = EventLog()
            run = flow.run(sinks=[sink])
            check_whole(flow, run, sink)
            deaths = committed_transactions(store_path)
        flow.store.close()
        monkeypatch.delenv("NBFLOW_WRITER_EXIT_AFTER_COMMIT")

        # SIGKILL at random moments, from another thread, while runs go on.
        flow = busy_flow(store_path)
        kills = 0
        killing, stop, quiet = threading.Event(), threading.Event(), threading.Lock()

        def killer():
            nonlocal kills
            while killing.wait() and not stop.is_set():
                time.sleep(random.uniform(0, 0.03))
                with quiet:
                    pid = flow.store.writer_pid
                    if killing.is_set() and pid is not None and alive(pid):
                        os.kill(pid, signal.SIGKILL)
                        kills += 1

        thread = threading.Thread(target=killer)
        thread.start()
        until = time.monotonic() + BUDGET
        try:
            while kills < TARGET and (kills < FLOOR or time.monotonic() < until):
                sink = EventLog()
                run = flow.run(sinks=[sink], background=True)
                killing.set()
                try:
                    run.wait(60)
                except StoreError as exc:   # two deaths in a row: reported, and retried
                    assert "the store's writer process ended" in str(exc)
                with quiet:
                    killing.clear()
                flow.store.flush()
                check_whole(flow, run, sink)
        finally:
            stop.set()
            killing.set()
            thread.join()
    assert [str(w.message) for w in caught if "nbflow" in str(w.message)] == []
    print(f"{deaths} writer deaths after a commit, {kills} kills at random")
    assert deaths >= FLOOR and kills >= FLOOR
