"""Result keys, result files, and ``cache=True``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

import nbflow
from nbflow.results import INLINE_LIMIT, ResultFiles, RunResults, encode, results_folder, task_base

#: A value whose pickle is too big to travel with its event: it goes to a file.
BIG = list(range(INLINE_LIMIT))


# -- keys -----------------------------------------------------------------------
def test_a_key_is_the_same_in_every_interpreter_whatever_its_hash_seed(tmp_path):
    (tmp_path / "keyed.py").write_text(textwrap.dedent('''
        def shape(rows, kinds=("a", "b"), *, scale=2.5):
            def inner(v):
                return v * scale
            # {"x", "y", "z"} compiles to a frozenset constant, whose order
            # depends on the string hash seed.
            return [inner(r) for r in rows if r in {"x", "y", "z"}]
    '''))
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import keyed; "
              "from nbflow.results import task_base; print(task_base(keyed.shape, 'shape'))")
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("0", "1", "2", "3")}
    assert len(keys) == 1 and len(keys.pop().strip()) == 64


def _compiled(source: str, filename: str):
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["f"]


def test_the_key_ignores_where_the_code_is_and_follows_what_it_does():
    body = "def f(x, k=2):\n    return x * k\n"
    key = task_base(_compiled(body, "<cell 1>"), "f")
    # Another kernel's file name, the function moved down its cell: same key.
    assert task_base(_compiled("\n\n\n" + body, "/tmp/ipykernel_99/123.py"), "f") == key
    assert task_base(_compiled(body.replace("x * k", "x + k"), "<cell 1>"), "f") != key
    assert task_base(_compiled(body.replace("k=2", "k=3"), "<cell 1>"), "f") != key
    assert task_base(_compiled(body, "<cell 1>"), "g") != key  # the task's name counts


def test_closure_values_count_when_they_are_immutable_plain_data():
    def make(limit, seen):
        def f(x):
            return x < limit and x not in seen
        return f

    key = task_base(make(10, []), "f")
    assert task_base(make(10, [1, 2, 3]), "f") == key  # a list changes while a notebook runs
    assert task_base(make(11, []), "f") != key
    assert task_base(make(10, ()), "f") != key
    assert task_base(make((1, "a"), []), "f") != task_base(make((1, "b"), []), "f")


def test_a_task_key_combines_its_base_with_its_inputs_keys(tmp_path):
    flow = nbflow.Flow("keys")

    @flow.task
    def a():
        return 1

    @flow.task
    def b(a):
        return a

    _graph, specs = flow.build()
    results = RunResults(specs, ResultFiles(str(tmp_path)), flow._bases, {})
    root = results.key(0, [])
    assert root == task_base(a, "a")
    assert results.key(1, [root]) != results.key(1, ["0" * 64])
    assert results.key(1, [root]) == results.key(1, [root])
    assert results.key(1, [None]) is None  # downstream of a task with no key


# -- cache=True ------------------------------------------------------------------
def test_a_cached_task_reuses_the_result_of_an_earlier_run(backend_url, log):
    flow = nbflow.Flow("cache", store=backend_url)

    @flow.task(cache=True)
    def slow():
        log("slow")
        return {"rows": 3}

    @flow.task
    def report(slow):
        log("report")
        return slow["rows"]

    assert flow.run().state == "succeeded"
    assert log.take() == ["report", "slow"]
    second = flow.run()  # a fresh run, not a resume
    assert log.take() == ["report"]
    assert second.result("slow") == {"rows": 3} and second.result("report") == 3
    status = second.status().set_index("task")
    assert status.loc["slow", "state"] == "succeeded"
    assert status["cached"].to_dict() == {"slow": True, "report": False}
    [restored] = [e for e in second.events().itertuples() if e.task == "slow"]
    assert (restored.from_state, restored.to_state) == ("pending", "succeeded")
    assert restored.detail["cached"] is True and len(restored.detail["key"]) == 64


def test_a_task_without_cache_runs_in_every_new_run(store_path, results_dir, log):
    flow = nbflow.Flow("nocache", store=store_path)

    @flow.task
    def fetch():
        log("fetch")
        return 1

    flow.run()
    flow.run()
    assert log.take() == ["fetch", "fetch"]


def test_none_and_small_results_need_no_file_and_are_still_restored(store_path, results_dir,
                                                                     log):
    flow = nbflow.Flow("none", store=store_path)

    @flow.task(cache=True)
    def notify():
        log("notify")

    @flow.task(cache=True)
    def count():
        log("count")
        return 7

    first = flow.run()
    assert not results_dir.exists()   # 7 is stored in the row of its success event
    kinds = {e.task: e.detail["result"] for e in first.events().itertuples()
             if e.to_state == "succeeded"}
    assert kinds == {"notify": "none", "count": "inline"}
    second = flow.run()
    assert log.take() == ["count", "notify"]
    assert second.result("notify") is None and second.result("count") == 7
    assert second.status()["cached"].all()


def test_a_result_that_does_not_pickle_is_not_saved_and_the_log_says_so(store_path,
                                                                        results_dir, log):
    flow = nbflow.Flow("unpicklable", store=store_path)

    @flow.task(cache=True)
    def lock():
        log("lock")
        return threading.Lock()

    first = flow.run()
    assert first.state == "succeeded"
    assert ("nbflow: the result of task 'lock' was not saved: it does not pickle "
            "(TypeError: cannot pickle '_thread.lock' object); a resumed run will run this "
            "task again.") in first.logs("lock", "stderr")
    flow.run()
    assert log.take() == ["lock", "lock"]


def test_a_result_file_that_does_not_load_is_a_miss(store_path, results_dir, log):
    flow = nbflow.Flow("corrupt", store=store_path)

    @flow.task(cache=True)
    def table():
        log("table")
        return BIG

    flow.run()
    path = results_dir / (task_base(table, "table") + ".pkl")
    path.write_bytes(path.read_bytes()[:20])  # truncated, as by a full disk
    again = flow.run()
    assert log.take() == ["table", "table"]
    assert again.result("table") == BIG
    assert not again.status()["cached"].any()


def test_results_that_cannot_be_written_leave_the_run_going(tmp_path, monkeypatch, log):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("NBFLOW_RESULTS", str(blocker))
    flow = nbflow.Flow("unwritable", store=str(tmp_path / "nbflow.db"))

    @flow.task(cache=True)
    def value():
        log("value")
        return BIG

    run = flow.run()
    assert run.result("value") == BIG
    assert (f"nbflow: the result of task 'value' was not saved: the results folder {blocker} "
            "is not a folder (it is a file): nbflow does not use it.") in run.logs("value",
                                                                                   "stderr")
    flow.run()
    assert log.take() == ["value", "value"]


def test_result_files_are_written_whole_or_not_at_all(tmp_path):
    files = ResultFiles(str(tmp_path / "r"))
    assert files.save("k" * 64, encode({"a": 1})) is None
    assert files.load("k" * 64) == (True, {"a": 1})
    assert files.load("m" * 64) == (False, None)
    assert os.listdir(files.folder) == ["k" * 64 + ".pkl"]  # no temporary file left


# -- where results go --------------------------------------------------------------
def test_results_go_beside_a_sqlite_store_or_where_nbflow_results_says(tmp_path, monkeypatch):
    monkeypatch.delenv("NBFLOW_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert results_folder("/data/flows/nbflow.db") == "/data/flows/results"
    assert results_folder(None) == str(tmp_path / ".nbflow" / "results")  # a server database
    monkeypatch.setenv("NBFLOW_RESULTS", "shared")
    assert results_folder("/data/flows/nbflow.db") == str(tmp_path / "shared")


def test_a_flow_saves_its_results_beside_its_store(store_path, results_dir):
    flow = nbflow.Flow("beside", store=store_path)

    @flow.task
    def numbers():
        return BIG

    flow.run()
    assert os.listdir(results_dir) == [task_base(numbers, "numbers") + ".pkl"]
    assert os.path.dirname(store_path) == os.path.dirname(results_dir)


@pytest.mark.parametrize("kind", ["function", "cell"])
def test_cached_results_survive_a_new_flow_object(store_path, results_dir, log, kind):
    """A restarted kernel declares the tasks again: same code, same keys, same results."""
    def declare() -> tuple[nbflow.Flow, dict]:
        flow = nbflow.Flow("restart", store=store_path)
        namespace = {"log": log}
        if kind == "cell":
            flow.cell_task("make", "log('make')\nvalue = 40 + 2\n", namespace, cache=True)
        else:
            @flow.task(cache=True)
            def make():
                log("make")
                return {"value": 42}
        return flow, namespace

    flow, _ = declare()
    flow.run()
    flow, namespace = declare()
    run = flow.run()
    assert log.take() == ["make"]
    assert run.result("make") == {"value": 42}
    if kind == "cell":
        assert namespace["value"] == 42  # restored into the notebook's namespace
