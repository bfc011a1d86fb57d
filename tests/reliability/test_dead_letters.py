"""Dead letters: tasks that failed after their last attempt; ``flow.requeue`` and ``%flow dlq``."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from pipelines import pipeline

import nbflow
from nbflow.errors import NbflowError
from nbflow.results import task_base


def test_a_task_that_fails_its_last_retry_becomes_one_dead_letter(backend_url, log):
    flow = nbflow.Flow("dlq", store=backend_url)

    @flow.task
    def extract():
        return [1, 2]

    @flow.task(retries=2)
    def parse(extract):
        log("parse")
        raise ValueError(f"bad row {extract[0]}")

    run = flow.run()
    assert log.take() == ["parse"] * 3
    letters = flow.dead_letters()
    assert list(letters.columns) == ["run_id", "task", "attempt", "error", "traceback",
                                     "inputs", "key", "created", "requeued_by"]
    [letter] = letters.to_dict("records")
    assert (letter["run_id"], letter["task"], letter["attempt"]) == (run.id, "parse", 3)
    assert letter["error"] == "ValueError: bad row 1"
    assert 'raise ValueError(f"bad row {extract[0]}")' in letter["traceback"]
    assert letter["inputs"] == {"extract": task_base(extract, "extract")}
    assert len(letter["key"]) == 64 and letter["requeued_by"] is None
    assert isinstance(letter["created"], pd.Timestamp)


def test_dead_letters_are_exactly_the_final_failures_in_the_event_log(store_path, results_dir):
    flow = nbflow.Flow("mixed", store=store_path)
    tries = {"flaky": 0}

    @flow.task(retries=1)
    def flaky():  # fails once, then succeeds: not a dead letter
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise OSError("network blip")
        return 1

    @flow.task(retries=1, retry_on=OSError)
    def wrong():  # not an error worth a retry: a dead letter after one attempt
        raise KeyError("column")

    @flow.task(timeout=0.2)
    def stuck():  # times out: a dead letter; it stops when told to
        while not nbflow.current_task().cancelled:
            threading.Event().wait(0.005)

    @flow.task(compensate=lambda result: 1 / 0)
    def booked():  # its undo fails: recorded failed, but not a dead letter
        return "booking"

    @flow.task(after=["booked"])
    def pay():
        raise RuntimeError("card declined")

    run = flow.run(on_failure="compensate")
    assert tries == {"flaky": 2}
    events = run.events()
    final = events[(events.to_state == "failed") & (events.from_state == "running")]
    letters = flow.dead_letters()
    assert sorted(letters.task) == sorted(final.task) == ["pay", "stuck", "wrong"]
    assert set(letters.attempt) == {1}
    assert letters.set_index("task").loc["stuck", "error"] == (
        "TaskTimeout: task 'stuck' exceeded its timeout of 0.2s")
    undo = events[(events.task == "booked") & (events.to_state == "failed")]
    assert undo.detail.iloc[0]["error"] == (
        "compensation failed: ZeroDivisionError: division by zero")
    assert run.task_state("booked") == "failed"


def test_requeue_runs_the_dead_letters_and_what_depends_on_them(backend_url, log):
    fail = {"transform"}
    flow = pipeline(nbflow.Flow("etl", store=backend_url), log, fail)
    first = flow.run()
    log.take()
    fail.clear()
    run = flow.requeue()
    assert log.take() == ["load", "transform"]
    assert run.state == "succeeded"
    assert run.status().set_index("task")["cached"].to_dict() == {
        "extract": True, "transform": False, "load": False, "side": True}
    assert flow.store.run(run.id)["resumed_from"] == first.id
    assert flow.dead_letters().empty
    [letter] = flow.dead_letters(requeued=True).to_dict("records")
    assert (letter["run_id"], letter["task"], letter["requeued_by"]) == (
        first.id, "transform", run.id)


def test_requeue_picks_the_run_and_the_tasks(store_path, results_dir, log):
    fail = {"transform", "side"}
    flow = pipeline(nbflow.Flow("etl", store=store_path), log, fail)
    first = flow.run()
    with pytest.raises(NbflowError, match=rf"^task 'extract' is not a dead letter of run "
                                          rf"{first.id} waiting to be requeued; its dead "
                                          r"letters are: side, transform$"):
        flow.requeue(tasks=["extract"])
    fail.clear()
    log.take()
    run = flow.requeue(first.id, tasks="side")
    # side is requeued; transform, dead too, has no result to restore: it runs as well.
    assert log.take() == ["load", "side", "transform"]
    assert set(flow.dead_letters(requeued=True).requeued_by) == {run.id}
    with pytest.raises(NbflowError, match=r"^flow 'etl' has no dead letters waiting to be "
                                          r"requeued; flow\.dead_letters\(requeued=True\) also "
                                          r"lists those already requeued$"):
        flow.requeue()
    with pytest.raises(NbflowError, match=rf"^run {first.id} of flow 'etl' has no dead letters "
                                          "waiting to be requeued"):
        flow.requeue(first.id)


def test_a_resume_requeues_the_dead_letters_of_the_run_it_resumes(store_path, results_dir,
                                                                  log):
    fail = {"load"}
    flow = pipeline(nbflow.Flow("etl", store=store_path), log, fail)
    flow.run()
    fail.clear()
    run = flow.run(resume=True)  # load has no result: it runs again
    assert list(flow.dead_letters(requeued=True).requeued_by) == [run.id]
    assert flow.dead_letters().empty


@pytest.mark.kernel
def test_the_dlq_magic_lists_and_requeues(start_kernel):
    kernel = start_kernel()
    kernel.ok("broken = True")
    kernel.ok("%%task rows\nrows = [1, 2, 3]")
    kernel.ok("%%task total --retries 1\nif broken:\n    raise ValueError('bad <row>')\n"
              "total = sum(rows)")
    kernel.ok("%flow run")
    listed = kernel.ok("%flow dlq")
    [html] = listed.data("text/html")
    assert "total" in html and "ValueError: bad &lt;row&gt;" in html and "traceback" not in html
    kernel.ok("broken = False")
    requeued = kernel.ok("%flow dlq requeue")
    assert "succeeded" in requeued.data("text/plain")[0]
    assert kernel.value("total") == 6
    assert kernel.ok("%flow dlq").stdout.endswith(
        "has no dead letters waiting to be requeued\n")
    [html] = kernel.ok("%flow dlq --all").data("text/html")
    assert "total" in html
    error = kernel.execute("%flow dlq 20260101-000000-abcdef")
    assert error.reply["ename"] == "UsageError"
    assert error.reply["evalue"] == (
        "argument requeue: invalid choice: '20260101-000000-abcdef' (choose from 'requeue'). "
        "Usage: %flow dlq [--all] [requeue] [RUN_ID]")
