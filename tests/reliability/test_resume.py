"""``flow.run(resume=...)``: what a resumed run restores, what it runs again."""

from __future__ import annotations

import collections
import json
import os
import runpy
import signal
import subprocess
import sys

import pytest
from pipelines import pipeline

import nbflow
from nbflow.errors import NoSuchRun, NoSuchTask, StoreVersionConflict
from nbflow.results import INLINE_LIMIT, task_base


def cached(run: nbflow.Run) -> dict[str, bool]:
    return run.status().set_index("task")["cached"].to_dict()


def test_a_resumed_run_restores_what_succeeded_and_runs_the_rest(backend_url, log):
    fail = {"transform"}
    flow = pipeline(nbflow.Flow("etl", store=backend_url), log, fail)
    first = flow.run()
    assert first.failed == ["transform"] and first.task_state("load") == "upstream_failed"
    assert log.take() == ["extract", "side", "transform"]

    fail.clear()
    run = flow.run(resume=True)
    assert log.take() == ["load", "transform"]
    assert run.state == "succeeded" and run.id != first.id
    assert run.result("extract") == [1, 2, 3] and run.result("load") == 60
    assert cached(run) == {"extract": True, "transform": False, "load": False, "side": True}
    row = flow.store.run(run.id)
    assert row["resumed_from"] == first.id
    assert json.loads(row["params"])["resumed_from"] == first.id


def test_resume_follows_the_runs_a_resumed_run_resumed(store_path, results_dir, log):
    fail = {"transform"}
    flow = pipeline(nbflow.Flow("etl", store=store_path), log, fail)
    flow.run()
    fail.symmetric_difference_update({"transform", "load"})  # now load fails
    second = flow.run(resume=True)
    assert second.failed == ["load"]
    fail.clear()
    log.take()
    third = flow.run(resume=True)
    # extract was saved by the first run and only restored by the second one.
    assert log.take() == ["load"]
    assert third.state == "succeeded"
    assert flow.store.resume_chain(third.id) == [third.id, second.id,
                                                 flow.store.run(second.id)["resumed_from"]]


def test_resume_names_a_run_by_id(store_path, results_dir, log):
    fail = {"side"}
    flow = pipeline(nbflow.Flow("etl", store=store_path), log, fail)
    first = flow.run()
    second = flow.run(resume=True)  # side fails again
    fail.clear()
    log.take()
    run = flow.run(resume=second.id)
    assert log.take() == ["side"]
    with pytest.raises(StoreVersionConflict,
                       match=rf"^run {first.id} was already resumed by run {second.id}\. "
                             r"Resume that run instead \(flow\.run\(resume=True\) picks the "
                             r"latest run of the flow\)\.$"):
        flow.run(resume=first.id)
    assert run.state == "succeeded"


def test_what_cannot_be_resumed_is_a_clear_error(store_path, results_dir, log):
    flow = pipeline(nbflow.Flow("etl", store=store_path), log)
    with pytest.raises(NoSuchRun, match=r"^flow 'etl' has no run in the store '.*nbflow\.db' "
                                        r"to resume; run it once without resume=$"):
        flow.run(resume=True)
    other = nbflow.Flow("other", store=store_path)
    other.task(lambda: 1, name="one")
    theirs = other.run()
    with pytest.raises(NoSuchRun, match=rf"^flow 'etl' has no run '{theirs.id}' \(it is a run "
                                        r"of flow 'other'\); its runs are listed by"):
        flow.run(resume=theirs.id)
    with pytest.raises(NoSuchRun, match=r"^flow 'etl' has no run 'nope'; its runs are listed "
                                        r"by flow\.store\.runs\('etl'\) and `nbflow runs`$"):
        flow.run(resume="nope")
    with pytest.raises(TypeError, match=r"^resume must be True, False or a run id, got 3$"):
        flow.run(resume=3)
    assert log.take() == []  # nothing ran
    assert [r["id"] for r in flow.store.runs("etl")] == []  # and no run was recorded


def test_rerun_runs_tasks_again_with_everything_downstream(store_path, results_dir, log):
    flow = pipeline(nbflow.Flow("etl", store=store_path), log)
    flow.run()
    log.take()
    run = flow.run(resume=True, rerun=["transform"])
    assert log.take() == ["load", "transform"]
    assert cached(run) == {"extract": True, "transform": False, "load": False, "side": True}
    with pytest.raises(NoSuchTask, match=r"^flow 'etl' has no task 'transfrom'\. Did you mean "
                                         r"'transform'\?$"):
        flow.run(resume=True, rerun=["transfrom"])


def test_a_changed_task_runs_again_and_so_does_its_downstream(store_path, results_dir, log):
    flow = pipeline(nbflow.Flow("etl", store=store_path), log)
    flow.run()
    log.take()

    flow.remove("transform")

    @flow.task  # edited: the same name, new code
    def transform(extract):
        log("transform v2")
        return [x * 100 for x in extract]

    run = flow.run(resume=True)
    assert log.take() == ["load", "transform v2"]
    assert run.result("load") == 600


def test_a_task_whose_result_file_is_gone_runs_again(store_path, results_dir, log):
    flow = pipeline(nbflow.Flow("etl", store=store_path), log, big=True)
    flow.run()
    log.take()
    extract = flow._decls["extract"].spec.fn
    os.remove(results_dir / (task_base(extract, "extract") + ".pkl"))
    run = flow.run(resume=True)
    # Same code, same inputs: the same key, so what depends on it is still restored.
    assert log.take() == ["extract"]
    assert cached(run) == {"extract": False, "transform": True, "load": True, "side": True}


def test_resumed_cell_tasks_put_their_variables_back(store_path, results_dir, log):
    def declare(namespace: dict) -> nbflow.Flow:
        flow = nbflow.Flow("cells", store=store_path)
        flow.cell_task("load", "log('load')\nrows = [1, 2, 3]\n", namespace)
        flow.cell_task("total", "log('total')\nif broken:\n    raise ValueError('no')\n"
                                "answer = sum(rows)\n", namespace)
        return flow

    first = declare({"log": log, "broken": True}).run()
    assert first.failed == ["total"]
    assert log.take() == ["load", "total"]
    namespace = {"log": log, "broken": False}  # a restarted kernel: nothing assigned yet
    run = declare(namespace).run(resume=True)
    assert log.take() == ["total"]
    assert namespace["rows"] == [1, 2, 3] and namespace["answer"] == 6
    assert cached(run) == {"load": True, "total": False}


def test_a_cell_whose_variables_do_not_all_pickle_runs_again(store_path, results_dir, log):
    def declare(namespace: dict) -> nbflow.Flow:
        flow = nbflow.Flow("cells", store=store_path)
        flow.cell_task("connect", "log('connect')\nlock = make_lock()\nname = 'db'\n", namespace)
        return flow

    import threading
    namespace = {"log": log, "make_lock": threading.Lock}
    first = declare(namespace).run()
    assert "was not saved: it does not pickle" in first.logs("connect", "stderr")
    declare(dict(namespace)).run(resume=True)
    assert log.take() == ["connect", "connect"]


def test_a_worker_process_saves_the_result_it_computed(store_path, results_dir, tmp_path):
    ready = str(tmp_path / "ready")
    flow = nbflow.Flow("procs", store=store_path, executor="processes")

    @flow.task
    def where():
        # Too big to travel with its event: the worker process writes the file.
        return os.getpid(), b"x" * INLINE_LIMIT

    @flow.task
    def after(where):
        if not os.path.exists(ready):
            raise FileNotFoundError(ready)
        return where[0]

    first = flow.run(workers=1)
    child = first.result("where")[0]
    assert child != os.getpid() and first.failed == ["after"]
    assert os.listdir(results_dir) == [task_base(where, "where") + ".pkl"]
    open(ready, "w").close()
    run = flow.run(resume=True, workers=1)
    assert run.result("after") == child
    assert cached(run) == {"where": True, "after": False}


@pytest.mark.kernel
def test_after_a_kernel_restart_a_resume_restores_the_cells_variables(start_kernel):
    cells = ["%%task rows\nrows = [1, 2, 3]",
             "%%task total\nif broken:\n    raise ValueError('no')\ntotal = sum(rows)"]
    kernel = start_kernel()
    kernel.ok("broken = True")
    for cell in cells:
        kernel.ok(cell)
    kernel.ok("%flow run")
    kernel = start_kernel()  # restarted: the namespace is empty
    kernel.ok("broken = False")
    for cell in cells:
        kernel.ok(cell)
    kernel.ok("from nbflow.notebook.magics import current_flow\n"
              "run = current_flow().run(resume=True)")
    assert kernel.value("rows") == [1, 2, 3] and kernel.value("total") == 6
    assert kernel.value("run.status().set_index('task')['cached'].to_dict()") == {
        "rows": True, "total": False}


CRASHING_FLOW = '''
import os
import signal
import threading

import nbflow

flow = nbflow.Flow("crashy", store=os.environ["STORE"])
gate_queued = threading.Event()


def log(name):
    with open(os.environ["LOG"], "a") as f:
        f.write(name + "\\n")


@flow.task
def a():
    log("a")
    return "A"


@flow.task
def b():
    log("b")
    return "B"


@flow.task
def gate(a, b):
    log("gate")


@flow.task
def crash(a, b, gate):
    log("crash")
    if os.environ.get("CRASH"):
        gate_queued.wait(60)
        flow.store.flush()  # what was queued is committed: a, b and gate succeeded
        os.kill(os.getpid(), signal.SIGKILL)
    return a + b


@flow.task
def last(crash):
    log("last")
    return crash * 2


class GateQueued:
    """Sees gate's success after the store's sink has queued it."""

    def events(self, batch):
        if any(ev[2] == "gate" and ev[5] == "succeeded" for ev in batch):
            gate_queued.set()

    def logs(self, batch):
        pass


if __name__ == "__main__":
    flow.run(workers=2, sinks=[GateQueued()])
'''


def test_after_a_kill_9_a_resume_runs_only_what_was_not_committed(tmp_path, monkeypatch):
    script, log_path = tmp_path / "crashy.py", tmp_path / "ran.txt"
    monkeypatch.setenv("STORE", str(tmp_path / "nbflow.db"))
    monkeypatch.setenv("LOG", str(log_path))
    monkeypatch.delenv("NBFLOW_RESULTS", raising=False)
    script.write_text(CRASHING_FLOW)
    killed = subprocess.run([sys.executable, str(script)], env={**os.environ, "CRASH": "1"},
                            timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL

    # A new kernel on the same machine: the dead owner's lease is over at once.
    flow = runpy.run_path(str(script), run_name="crashy")["flow"]
    crashed = flow.store.latest_run_id("crashy")
    assert flow.store.run(crashed)["state"] == "running"
    run = flow.run(resume=True)
    assert run.state == "succeeded" and run.result("last") == "ABAB"
    ran = collections.Counter(log_path.read_text().split())
    assert ran == {"a": 1, "b": 1, "gate": 1, "crash": 2, "last": 1}
    assert cached(run) == {"a": True, "b": True, "gate": True, "crash": False, "last": False}
    old = flow.store.run(crashed)
    assert old["state"] == "crashed" and old["finished"] == old["heartbeat"]
    assert old["owner"] == flow.store.owner.id
