"""The executor contract, written once and run against every executor by inheritance.

:class:`ExecutorContract` holds the tests; each ``Test...`` subclass says how to
make its executor and whether it can stop an attempt from outside
(``preemptive``): the synchronous executor runs each call inside ``submit``, so
nothing can time out or be cancelled mid-task there, and those tests are
skipped for it with that reason.

The task functions live at module level, so the process executor ships them
by reference (the worker imports this module, as it would a user's module);
``tests/executors/test_processes.py`` covers functions defined in a notebook.
"""

from __future__ import annotations

import inspect
import os
import threading
import time

import pytest

from nbflow import Flow, check_cancelled, current_task
from nbflow.core.engine import TaskTimeout
from nbflow.core.events import DETAIL, SEQ, TASK, TO
from nbflow.core.executor import Executor, lookahead, shares_memory
from nbflow.executors.processes import ProcessExecutor
from nbflow.executors.sync import SyncExecutor
from nbflow.executors.threads import ThreadExecutor

BOUND = 20.0   # seconds within which a cancelled or timed-out run must end


class Planned(ValueError):
    """The users' own exception type: it must reach the run as itself."""


def source():
    return 10


def double(source):
    return 2 * source


def square(source):
    return source ** 2


def join(double, square):
    return double + square


def independent():
    return "alone"


def bad(source):
    raise Planned(f"bad input {source}")


def talk_a():
    print("a says 1")
    print("a says 2")
    print("a warns", file=__import__("sys").stderr)
    return "a"


def talk_b():
    print("b says 1")
    return "b"


def who_am_i():
    ctx = current_task()
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return ctx.name, ctx.attempt, ctx.run_id


def wait_for_cancel():
    """Runs until stopped: killed (processes) or told via ``check_cancelled`` (threads)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        check_cancelled()
        time.sleep(0.01)
    return "never stopped"


def slow_first_time():
    if current_task().attempt == 1:
        wait_for_cancel()
    return "second attempt"


def after(wait_for_cancel):
    return wait_for_cancel


def quits():
    __import__("sys").exit(3)


def busy_first_time():
    """The first attempt ignores cancellation and keeps its worker a while."""
    if current_task().attempt == 1:
        time.sleep(1.5)
    return "second attempt"


class Started:
    """A sink that sets ``event`` when the task ``name`` starts running."""

    def __init__(self, name: str):
        self.name, self.event = name, threading.Event()

    def events(self, batch):
        if any(ev[TASK] == self.name and ev[TO] == "running" for ev in batch):
            self.event.set()

    def logs(self, batch):
        pass


def events_of(run):
    run.store.flush()
    return run.store.events(run.id)


class ExecutorContract:
    """What every executor must do; subclasses define :meth:`make` and ``preemptive``."""

    preemptive = True
    timeout = 0.5   # of the attempts that must time out

    def make(self, workers: int):
        raise NotImplementedError

    def assert_nothing_left(self, executor) -> None:
        """Whatever the executor started is gone after the run."""

    def flow(self, store_path, *tasks, **options) -> Flow:
        flow = Flow("contract", store=store_path)
        for fn in tasks:
            flow.task(fn, **options.get(fn.__name__, {}))
        return flow

    def run(self, flow, workers=2, **options):
        ex = self.make(workers)
        run = flow.run(executor=ex, **options)
        self.assert_nothing_left(ex)
        return run

    def need_preemption(self):
        if not self.preemptive:
            pytest.skip("this executor runs each call inside submit(): nothing can time out "
                        "or be cancelled while a task runs")

    # -- the contract --------------------------------------------------------------
    def test_it_has_every_member_the_protocol_names(self):
        ex = self.make(2)
        members = [m for m in vars(Executor) if not m.startswith("_")]
        assert members == ["start", "submit", "cancel", "shutdown"]
        for name in members:
            want = inspect.signature(getattr(Executor, name))
            args = [p.name for p in want.parameters.values()][1:]   # without self
            inspect.signature(getattr(ex, name)).bind(*args)   # callable as the engine calls it
        assert isinstance(ex.workers, int) and ex.workers >= 1
        assert lookahead(ex) >= 0 and shares_memory(ex) in (True, False)

    def test_dependencies_end_before_dependents_start_and_pass_their_results(self, store_path):
        run = self.run(self.flow(store_path, source, double, square, join, independent))
        assert run.counts() == {"succeeded": 5}
        assert run.result("join") == 20 + 100
        log = events_of(run)
        seq = {(ev[TASK], ev[TO]): ev[SEQ] for ev in log}
        for task, deps in {"double": ["source"], "square": ["source"],
                           "join": ["double", "square"]}.items():
            for dep in deps:
                assert seq[dep, "succeeded"] < seq[task, "running"]

    def test_a_failure_reaches_the_run_as_the_users_exception(self, store_path):
        run = self.run(self.flow(store_path, source, bad, independent))
        assert (run.task_state("bad"), run.task_state("independent")) == ("failed", "succeeded")
        with pytest.raises(Planned, match=r"^bad input 10$"):
            run.result("bad")
        failed = [ev for ev in events_of(run) if ev[TO] == "failed"]
        assert [ev[TASK] for ev in failed] == ["bad"]
        assert failed[0][DETAIL]["error"] == "Planned: bad input 10"
        text = failed[0][DETAIL]["traceback"]
        assert "in bad" in text and text.rstrip().endswith("Planned: bad input 10")

    def test_each_task_output_is_captured_on_its_own(self, store_path, capfd):
        run = self.run(self.flow(store_path, talk_a, talk_b))
        assert run.logs("talk_a", "stdout") == "a says 1\na says 2\n"
        assert run.logs("talk_a", "stderr") == "a warns\n"
        assert run.logs("talk_b") == "b says 1\n"
        out, err = capfd.readouterr()
        assert "says" not in out and "warns" not in err

    def test_a_task_sees_its_own_context(self, store_path):
        run = self.run(self.flow(store_path, who_am_i, who_am_i={"retries": 1}))
        assert run.result("who_am_i") == ("who_am_i", 2, run.id)

    def test_a_timeout_fails_the_attempt_and_the_retry_runs(self, store_path):
        self.need_preemption()
        flow = self.flow(store_path, wait_for_cancel, slow_first_time,
                         wait_for_cancel={"timeout": self.timeout},
                         slow_first_time={"timeout": self.timeout, "retries": 1})
        started = time.monotonic()
        run = self.run(flow)
        assert time.monotonic() - started < BOUND
        assert run.task_state("wait_for_cancel") == "failed"
        with pytest.raises(TaskTimeout, match=f"task 'wait_for_cancel' exceeded its timeout "
                                              f"of {self.timeout:g}s"):
            run.result("wait_for_cancel")
        assert run.result("slow_first_time") == "second attempt"

    def test_sys_exit_in_a_task_fails_the_task(self, store_path):
        run = self.run(self.flow(store_path, quits, independent))
        assert (run.task_state("quits"), run.task_state("independent")) == ("failed",
                                                                             "succeeded")
        assert run.status().set_index("task").loc["quits", "error"] == "SystemExit: 3"

    def test_a_retry_waits_for_the_worker_its_timed_out_attempt_holds(self, store_path):
        # One worker: the retry must not be handed out (and its clock started)
        # while the abandoned first attempt still occupies that worker.
        self.need_preemption()
        flow = self.flow(store_path, busy_first_time,
                         busy_first_time={"timeout": self.timeout, "retries": 1})
        run = self.run(flow, workers=1)
        assert run.result("busy_first_time") == "second attempt"

    def test_cancel_stops_the_running_task_and_what_waits(self, store_path):
        self.need_preemption()
        started = Started("wait_for_cancel")
        flow = self.flow(store_path, wait_for_cancel, after)
        ex = self.make(2)
        run = flow.run(executor=ex, background=True, sinks=[started])
        assert started.event.wait(BOUND)
        begin = time.monotonic()
        run.cancel("test says stop")
        run.wait(BOUND)
        assert time.monotonic() - begin < BOUND
        assert run.counts() == {"cancelled": 2} and run.state == "cancelled"
        reasons = {ev[TASK]: ev[DETAIL]["reason"] for ev in events_of(run)
                   if ev[TO] == "cancelled"}
        assert reasons == {"wait_for_cancel": "test says stop", "after": "test says stop"}
        self.assert_nothing_left(ex)


class TestSync(ExecutorContract):
    preemptive = False

    def make(self, workers):
        return SyncExecutor(workers)


class TestThreads(ExecutorContract):
    def make(self, workers):
        return ThreadExecutor(workers)

    def assert_nothing_left(self, executor):
        assert not [t for t in threading.enumerate() if t.name.startswith("nbflow-worker")]


_preexisting: set[int] = set()


@pytest.fixture(autouse=True)
def _note_preexisting_children():
    """Children this process already had (a JupyterLab and chromium that browser tests
    keep for the session, say) are not the executor's to end."""
    _preexisting.clear()
    _preexisting.update(_children())
    yield


def child_pids() -> set[int]:
    """Child processes started since the test began (read from /proc), but for the
    writer process of the test's store, which lives as long as the store."""
    return {pid for pid in _children() - _preexisting if not _is_store_writer(pid)}


def _is_store_writer(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"nbflow.store.writerproc" in f.read()
    except OSError:
        return False


def _children() -> set[int]:
    me = os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue   # ended while we looked
        if int(fields[1]) == me:
            out.add(int(entry))
    return out


class TestProcesses(ExecutorContract):
    # The retry after a timeout runs on a new worker, whose start-up (an
    # interpreter, then this module's imports) counts against its timeout.
    timeout = 3.0

    def make(self, workers):
        return ProcessExecutor(workers)

    def assert_nothing_left(self, executor):
        assert not [t for t in threading.enumerate() if t.name.startswith("nbflow-process")]
        assert not child_pids()


class TestDask(ExecutorContract):
    """A real in-process ``LocalCluster`` (threads), one per test; the timeout and
    cancel tests rely on the cooperative stop (``check_cancelled`` on the worker)."""

    timeout = 1.0   # the stop event is polled every 0.1 s, through the scheduler

    def make(self, workers):
        pytest.importorskip("distributed", reason="the Dask executor needs distributed "
                            "(pip install 'nbflow[dask]')")
        from nbflow.executors.dask import DaskExecutor
        return DaskExecutor(workers=workers, processes=False)

    def assert_nothing_left(self, executor):
        assert executor._client is None and executor._cluster is None
        assert not [t for t in threading.enumerate() if t.name.startswith("nbflow-dask")]
