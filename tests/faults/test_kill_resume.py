"""kill -9 at random points, then resume: nothing committed is lost or done twice.

A trial starts the 30-task flow of ``crashable_flow.py`` in a fresh store and
kills the process with SIGKILL after a delay drawn from a seeded generator,
then resumes it in a new process, killed again in turn, until every result is
saved; this process then resumes it to the end.  Trials follow one another
until 20 processes were killed, 5 of them while their tasks were running
(they saved some results and not all).  After every kill:

* ``PRAGMA integrity_check`` says ok;
* replaying each run's event log gives its rows of the ``tasks`` table;
* no task whose result was saved before the process started (by the run that
  ``resume=True`` picks or a run it resumed, as their committed ``succeeded``
  events say, with the file present) ran again: the executions file counts
  real executions.

At the end every task has succeeded, and one more resume runs nothing and
restores every result.  Crash semantics are at-least-once: a success not yet
committed may run again, which this test allows.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter

import crashable_flow
import pytest

from nbflow import Flow
from nbflow.core.events import DETAIL, TASK, TO
from nbflow.core.replay import COLUMNS, replay
from nbflow.results import results_folder
from nbflow.store import Store

SEED = 20261126
KILLS = 20            # kills at least,
MID_RUN_KILLS = 5     # and at least this many of a process that saved some results, not all
MAX_KILLS = 40        # fail rather than go on past this many
LATEST_KILL = 1.4     # seconds after "go": a whole run takes about 1.2 s
SCRIPT = crashable_flow.__file__


def executions(path) -> Counter:
    if not os.path.exists(path):
        return Counter()
    with open(path) as f:
        return Counter(f.read().split())


def restorable(store_path: str) -> set[str]:
    """Tasks a resume would restore: saved by the latest run's resume chain (as its
    committed ``succeeded`` events say), with the result file present."""
    store = Store(store_path)
    try:
        latest = store.latest_run_id("crashable")
        chain = store.resume_chain(latest) if latest is not None else []
        saved = store.saved_results(chain)
        keys = {ev[TASK]: ev[DETAIL]["key"] for run in chain for ev in store.events(run)
                if ev[TO] == "succeeded" and ev[DETAIL] and "key" in ev[DETAIL]}
        folder = results_folder(store.path)
    finally:
        store.close()
    kinds = {key: kind for key, (kind, _blob) in saved.items()}
    return {task for task, key in keys.items() if kinds.get(key) in ("none", "inline") or (
        kinds.get(key) == "file" and os.path.exists(os.path.join(folder, key + ".pkl")))}


def check_store(store_path: str) -> int:
    """Integrity, and replay == tasks for every run; returns how many results a resume
    would restore (to tell a kill mid-run from one before or after the work)."""
    con = sqlite3.connect(store_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    store = Store(store_path)
    try:
        for run in store.runs():
            rows = {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run["id"])}
            assert replay(list(rows), store.events(run["id"])) == rows, run["id"]
    finally:
        store.close()
    return len(restorable(store_path))


def start(store_path: str, executions_path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, SCRIPT, store_path, str(executions_path), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line != "go\n":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the flow process did not start ({line!r}):\n{err}")
    return proc


def finish_and_check(store_path: str, runs_file, monkeypatch) -> None:
    """Resume here to the end, then once more: the second run executes nothing."""
    safe, before = restorable(store_path), executions(runs_file)
    flow = Flow("crashable", store=store_path, workers=4)
    crashable_flow.declare(flow)
    monkeypatch.setenv("EXECUTIONS", str(runs_file))
    try:
        last = flow.run(resume=True)
        assert last.counts() == {"succeeded": crashable_flow.TASKS}
        after = executions(runs_file)
        assert not {t for t in safe if after[t] != before[t]}
        assert set(after) == set(crashable_flow.DEPS)   # everything ran at least once
        again = flow.run(resume=True)
        assert executions(runs_file) == after
        assert again.status()["cached"].all()
        assert {t: again.result(t) for t in crashable_flow.DEPS} == \
            crashable_flow.expected_results()
    finally:
        flow.store.close()
    check_store(store_path)


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(tmp_path, monkeypatch):
    rng = random.Random(SEED)
    kills = mid_run = trials = 0
    while kills < KILLS or mid_run < MID_RUN_KILLS:
        assert kills < MAX_KILLS, f"only {mid_run} of {kills} kills landed while tasks ran"
        # A trial: a fresh store, killed and resumed until every result is saved.
        folder = tmp_path / f"trial{trials}"
        folder.mkdir()
        trials += 1
        store_path, runs_file = str(folder / "nbflow.db"), folder / "executions"
        mode, safe = "new", set()
        while len(safe) < crashable_flow.TASKS:
            before = executions(runs_file)
            proc = start(store_path, runs_file, mode)
            # A kill point within the work left (a resumed run has less to do).
            window = 0.2 + LATEST_KILL * (1 - len(safe) / crashable_flow.TASKS)
            try:
                proc.wait(rng.uniform(0, window))
                _, err = proc.communicate()
                assert proc.returncode == 0, err   # ended before its kill: not counted
                killed = False
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                killed = True
            after = executions(runs_file)
            assert {t: after[t] - before[t] for t in safe if after[t] != before[t]} == {}
            saved = check_store(store_path)
            kills += killed
            mid_run += killed and len(safe) < saved < crashable_flow.TASKS
            mode, safe = "resume", restorable(store_path)
        finish_and_check(store_path, runs_file, monkeypatch)
