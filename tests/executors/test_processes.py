"""What only the process executor does: real kills, worker reuse, crashes, pickling.

The shared contract (ordering, failures, capture, timeout, cancel, context)
is in ``test_contract.py``.  Functions defined inside these tests are shipped
by value, as a notebook's are; the last test runs one from a real kernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from shipped_cells import check_reads_that_cannot_go
from test_contract import BOUND, _note_preexisting_children, child_pids, wait_for_cancel  # noqa: F401

from nbflow import Flow, TaskCancelled, current_task
from nbflow.core.worker import TaskContext
from nbflow.executors.processes import ProcessExecutor, RemoteError


@pytest.fixture
def flow(store_path):
    return Flow("processes", store=store_path, executor="processes", workers=1)


@pytest.fixture
def pool():
    """A started executor and the queue its outcomes arrive on: ``(executor, outcomes)``."""
    outcomes: queue.SimpleQueue = queue.SimpleQueue()
    ex = ProcessExecutor(1)
    ex.start(outcomes.put)
    yield ex, outcomes
    ex.shutdown()
    assert not child_pids()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_start_once_and_are_reused(store_path):
    flow = Flow("reuse", store=store_path, executor="processes", workers=2)
    for k in range(12):
        flow.task(os.getpid, name=f"pid{k}")
    run = flow.run()
    pids = {run.result(f"pid{k}") for k in range(12)}
    assert len(pids) <= 2 and os.getpid() not in pids
    assert not any(alive(p) for p in pids) and not child_pids()


def test_a_timeout_kills_the_worker_running_the_attempt(flow, tmp_path):
    pid_file = tmp_path / "pid"

    @flow.task(timeout=3)
    def stuck():
        pid_file.write_text(str(os.getpid()))
        time.sleep(600)

    started = time.monotonic()
    run = flow.run()
    assert time.monotonic() - started < BOUND
    assert run.task_state("stuck") == "failed"
    assert not alive(int(pid_file.read_text()))


def test_a_worker_that_dies_fails_the_attempt_and_a_new_one_takes_over(flow):
    @flow.task(retries=2)
    def crash():
        ctx = current_task()
        if ctx.attempt == 1:
            os._exit(3)
        if ctx.attempt == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return ctx.attempt

    run = flow.run()
    assert run.result("crash") == 3
    errors = [ev[7]["error"] for ev in run.store.events(run.id) if ev[5] == "retrying"]
    assert errors == [
        "WorkerDied: the worker process running task 'crash' (attempt 1) exited with exit "
        "code 3 before reporting its outcome (it crashed, was killed, e.g. by the system when "
        "out of memory, or the task ended the process)",
        "WorkerDied: the worker process running task 'crash' (attempt 2) exited with signal 9 "
        "(SIGKILL) before reporting its outcome (it crashed, was killed, e.g. by the system "
        "when out of memory, or the task ended the process)"]


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


class TwoArguments(Exception):
    def __init__(self, what, why):   # default pickling calls cls(*args): one argument short
        super().__init__(f"{what} because {why}")


def test_an_exception_that_cannot_come_back_arrives_as_a_stand_in(flow):
    @flow.task
    def locked():
        raise Unpicklable("holding a lock")

    @flow.task
    def two():
        raise TwoArguments("no data", "the file is empty")

    run = flow.run()
    with pytest.raises(RemoteError, match=r"^test_processes\.Unpicklable: holding a lock$") as e:
        run.result("locked")
    assert e.value.type_name == "test_processes.Unpicklable"
    assert "in locked" in e.value.remote_traceback
    with pytest.raises(RemoteError, match=r"TwoArguments: no data because the file is empty$"):
        run.result("two")


def test_a_result_that_cannot_come_back_fails_the_task_clearly(flow):
    @flow.task
    def lock():
        print("made a lock")
        return threading.Lock()

    run = flow.run()
    with pytest.raises(Exception, match=r"^task 'lock' \(attempt 1\) returned a value that "
                                        r"cannot be sent back from its worker process \("
                                        r"TypeError: cannot pickle '_thread.lock' object\)\. "
                                        r"Return picklable data, or run the task with "
                                        r"executor='threads'\.$"):
        run.result("lock")
    assert run.logs("lock", "stdout") == "made a lock\n"


def test_a_function_that_cannot_be_sent_fails_the_task_clearly(flow):
    guard = threading.Lock()

    @flow.task
    def uses_lock():
        with guard:
            return 1

    run = flow.run()
    with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object") as e:
        run.result("uses_lock")
    assert e.value.__notes__ == [
        "nbflow: task 'uses_lock' (attempt 1) cannot be sent to a worker process. Functions "
        "run with executor='processes' must not refer to open files, locks, connections or "
        "a %%task cell's namespace; use executor='threads' for those."]


def test_shutdown_kills_an_abandoned_attempt_and_leaves_no_process(pool):
    ex, outcomes = pool
    ex.submit((0, 1), wait_for_cancel, {}, TaskContext("stuck", 1))
    (pid,) = ex.pids
    started = time.monotonic()
    ex.shutdown()
    assert time.monotonic() - started < BOUND
    assert not alive(pid) and not child_pids()


def test_an_attempt_cancelled_before_it_started_never_runs(pool, tmp_path):
    ex, outcomes = pool
    marker = tmp_path / "ran"
    ex.submit((0, 1), wait_for_cancel, {}, TaskContext("first", 1))
    ex.submit((1, 1), marker.touch, {}, TaskContext("second", 1))
    ex.cancel((1, 1))
    ex.cancel((0, 1))
    got = dict(outcomes.get(timeout=BOUND) for _ in range(2))
    for token, name in (((0, 1), "first"), ((1, 1), "second")):
        assert isinstance(got[token].error, TaskCancelled)
        assert str(got[token].error) == (f"task {name!r} (attempt 1) was stopped: its worker "
                                         "process was killed")
    assert not marker.exists()


def test_workers_ignore_an_interrupt_the_parent_decides(pool):
    ex, outcomes = pool
    (pid,) = ex.pids
    for attempt in (1, 2):
        ex.submit((0, attempt), os.getpid, {}, TaskContext("pid", attempt))
        token, out = outcomes.get(timeout=BOUND)
        assert out.ok and out.value == pid
        os.kill(pid, signal.SIGINT)   # as a kernel interrupt reaching the process group


NOTEBOOK_CELLS = [
    """\
import os
from nbflow import Flow
flow = Flow("nb", store="nb.db", executor="processes", workers=2)

class Oops(Exception):
    pass

class Point:
    def __init__(self, x):
        self.x = x""",
    """\
@flow.task
def load():
    return [Point(k) for k in range(4)]

@flow.task
def total(load):
    print("summing in", os.getpid())
    return sum(p.x for p in load), os.getpid()

@flow.task
def broken(load):
    raise Oops(f"{len(load)} points are not enough")

run = flow.run()""",
    """\
points, pid = run.result("total")
assert points == 6 and pid != os.getpid(), (points, pid)
assert all(type(p) is Point for p in run.result("load"))   # the notebook's own class
try:
    run.result("broken")
except Oops as e:   # the notebook's own exception type, not a copy
    assert str(e) == "4 points are not enough"
else:
    raise AssertionError("no Oops")
text = [ev[7]["traceback"] for ev in run.store.events(run.id) if ev[5] == "failed"][0]
assert broken.__code__.co_filename in text, text   # the cell's file, not <dynamic-code>
print(run.logs("total").startswith("summing in"), run.counts())""",
]


@pytest.mark.kernel
def test_functions_and_classes_defined_in_a_notebook_run_in_worker_processes(tmp_path):
    # Imported here: worker processes import this module, and nbclient is slow to import.
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = nb.cells[-1].outputs
    assert [o.get("text") for o in last] == [
        "True {'succeeded': 2, 'failed': 1}\n"]
    assert not child_pids()


TASK_CELLS = [
    """\
%load_ext nbflow
import os
import nbflow
cells = nbflow.Flow("nb-cells", store="nb.db", executor="processes", workers=2)
base = 10""",
    "%flow use cells",
    "%%task load\nx = base + 1",
    "%flow run",   # refused: tagged raises-exception
    "%%task load --reads base --assigns x\nimport os\nx = base + 1\nwhere = os.getpid()",
    "%%task double --reads x --assigns y,pid\nimport os\ny = 2 * x\npid = os.getpid()",
    "%flow run",
    "print([x, y], pid != os.getpid(), 'where' in globals(),\n"
    "      [r['state'] for r in cells.store.runs()])",
]


@pytest.mark.kernel
def test_task_cells_run_in_worker_processes_from_a_notebook(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in TASK_CELLS])
    nb.cells[3].metadata["tags"] = ["raises-exception"]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    (refused,) = nb.cells[3].outputs
    assert refused["ename"] == "ValueError"
    assert refused["evalue"] == (
        "task 'load' is a %%task cell that does not declare what it reads and assigns, so it "
        "can only run in the notebook's namespace, which a worker process does not share. "
        "Add --reads base --assigns x to its %%task line (what nbflow sees it read and "
        "assign; only --assigns come back into the notebook), or run this flow with "
        "executor='threads'.")
    # Nothing was recorded for the refused run; the declared cells ran in another
    # process and only their --assigns came back.
    assert [o.get("text") for o in nb.cells[-1].outputs] == ["[11, 22] True False ['succeeded']\n"]
    assert not child_pids()


def test_a_task_cell_that_does_not_declare_its_names_is_refused_with_the_flags_to_add(
        store_path):
    flow = Flow("cells", store=store_path, executor="processes")
    flow.cell_task("load", "rows = [1, 2]", {})
    with pytest.raises(ValueError, match=r"^task 'load' is a %%task cell that does not declare "
                                         r"what it reads and assigns, so it can only run in "
                                         r"the notebook's namespace, which a worker process "
                                         r"does not share\. Add --reads \"\" --assigns rows to "
                                         r"its %%task line .* or run this flow with "
                                         r"executor='threads'\.$"):
        flow.run()
    flow.remove("load")
    flow.cell_map("double", "y = item * 2\n", {}, [1, 2])
    with pytest.raises(ValueError, match=r"^task 'double\[0\]' belongs to a %%task --map cell, "
                                         r".* which a worker process does not share"):
        flow.run()
    assert flow.store.runs() == []
    assert not child_pids()


def test_a_declared_task_cell_runs_in_a_worker_process_and_its_assigns_come_back(store_path):
    ns = {"base": 10, "lock": threading.Lock()}
    flow = Flow("cells", store=store_path, executor="processes", workers=2)
    flow.cell_task("load", "import os\nx = base + 1\npid = os.getpid()\nhelper = 5\n", ns,
                   reads=["base"], assigns=["x", "pid"])
    flow.cell_task("use", "y = 2 * x\n", ns, reads=["x"], assigns=["y"])
    run = flow.run()
    assert run.state == "succeeded"
    assert (ns["x"], ns["y"]) == (11, 22)
    assert ns["pid"] != os.getpid()   # it ran in a worker process
    assert "helper" not in ns   # only the declared assigns come back
    assert run.result("use") == {"y": 22}

    check_reads_that_cannot_go(flow, ns, "a worker process")
    assert not child_pids()


def test_a_task_cell_killed_at_its_timeout_writes_nothing_back(store_path):
    ns: dict = {}
    flow = Flow("late", store=store_path, executor="processes", workers=1)
    flow.cell_task("slow", "import time\ntime.sleep(30)\nz = 1\n", ns, reads=[],
                   assigns=["z"], timeout=0.5)
    run = flow.run()
    assert run.task_state("slow") == "failed" and "z" not in ns


def interrupted():
    raise KeyboardInterrupt


def test_a_keyboard_interrupt_in_a_task_is_reported_as_such(flow):
    # Before: the worker died of it, and the attempt read "signal 9 (SIGKILL) ...
    # e.g. by the system when out of memory".
    flow.task(interrupted)
    flow.task(os.getpid, name="other")
    run = flow.run()
    assert run.counts() == {"failed": 1, "succeeded": 1}
    with pytest.raises(KeyboardInterrupt):
        run.result("interrupted")
    [row] = [t for t in flow.store.tasks(run.id) if t["name"] == "interrupted"]
    assert row["error"] == "KeyboardInterrupt: "
    assert not child_pids()


def test_no_more_workers_start_than_the_run_has_tasks(store_path):
    flow = Flow("few", store=store_path, executor="processes", workers=120)
    flow.task(os.getpid, name="a")
    flow.task(os.getpid, name="b")
    run = flow.run()
    assert json.loads(flow.store.run(run.id)["params"])["workers"] == 2
    assert len({run.result("a"), run.result("b")}) <= 2


def test_a_pool_that_cannot_start_is_shut_down_and_says_why(tmp_path):
    # Before: a raw OSError, and the 50-odd workers already started (and their
    # threads) were left running.
    script = Path(__file__).with_name("fd_limited_run.py")
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "s.db")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert re.match(r"^NbflowError: could not start worker process \d+ of 120: OSError: "
                    r"\[Errno 24\] Too many open files\. Use fewer workers \(workers=N\), or "
                    r"allow more processes and open files \(ulimit -u, ulimit -n\)\.$",
                    report["error"]), report["error"]
    assert [c for c in report["children"] if "nbflow.executors.processes" in c] == []
    assert [t for t in report["threads"] if t.startswith("nbflow-process-")] == []


async def pid_later():
    await asyncio.sleep(0)
    return os.getpid()


def test_an_async_task_runs_to_completion_in_a_worker_process(flow):
    flow.task(pid_later)
    run = flow.run()
    assert isinstance(run.result("pid_later"), int) and run.result("pid_later") != os.getpid()
