"""The Dask executor on real ``LocalCluster``s: in-process ones for speed, worker
processes where it matters (pickling by value, restarting a worker)."""

from __future__ import annotations

import contextlib
import queue
import re
import sys
import threading
import time
import types

import pytest

distributed = pytest.importorskip("distributed", reason="the Dask executor needs distributed "
                                  "(pip install 'nbflow[dask]')")
dask = pytest.importorskip("dask")

from shipped_cells import check_reads_that_cannot_go

from nbflow import Flow, current_task
from nbflow.core.events import AT, ATTEMPT, DETAIL, TASK, TO
from nbflow.core.worker import TaskContext
from nbflow.executors import DaskExecutor, make_executor


@pytest.fixture
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", resources={"GPU": 1}) as c, \
            distributed.Client(c, set_as_default=False) as cl:
        yield cl


def sleepy():
    time.sleep(5)
    return "woke"


def key_and_worker():
    worker = distributed.get_worker()
    if current_task().attempt == 1:
        raise ConnectionError("first attempt fails")
    return worker.get_current_task(), worker.address


def events_of(run):
    run.store.flush()
    return run.store.events(run.id)


def test_a_5s_task_with_a_half_second_timeout_fails_on_time(client, store_path):
    flow = Flow("t", store=store_path)
    flow.task(sleepy, timeout=0.5)
    begin = time.monotonic()
    run = flow.run(executor=DaskExecutor(client))
    assert time.monotonic() - begin < 5   # the run does not wait for the thread
    assert run.task_state("sleepy") == "failed"
    log = events_of(run)
    start = next(ev[6] for ev in log if ev[TO] == "running")
    end = next(ev for ev in log if ev[TO] == "failed")
    assert end[6] - start < 1.0
    assert end[DETAIL]["error"] == "TaskTimeout: task 'sleepy' exceeded its timeout of 0.5s"


def test_every_attempt_has_its_own_key_and_records_its_worker(client, store_path):
    flow = Flow("k", store=store_path)
    flow.task(key_and_worker, retries=1)
    run = flow.run(executor=DaskExecutor(client))
    key, address = run.result("key_and_worker")
    # function, run, task, attempt: Dask groups the keys by the function's name
    assert re.match(r"^key_and_worker-[0-9a-f]{8}-key_and_worker-2-\d+$", key)
    assert address in client.scheduler_info()["workers"]
    (ok,) = [ev for ev in events_of(run) if ev[TO] == "succeeded"]
    assert ok[DETAIL]["worker"] == address


def test_a_function_defined_in_the_notebook_runs_on_worker_processes(store_path):
    main = types.ModuleType("__main__")
    exec("def shout(text='hi'):\n    return text.upper() + '!'\n", main.__dict__)
    assert main.shout.__module__ == "__main__"
    flow = Flow("nb", store=store_path)
    flow.task(main.shout)
    run = flow.run(executor=DaskExecutor(workers=1, processes=True))
    assert run.result("shout") == "HI!"


def test_kill_on_timeout_restarts_the_worker_process(store_path):
    flow = Flow("kill", store=store_path)
    flow.task(sleepy, timeout=0.5)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as c, \
            distributed.Client(c, set_as_default=False) as cl:
        before = set(cl.scheduler_info()["workers"])
        pid = next(iter(cl.run(__import__("os").getpid).values()))
        begin = time.monotonic()
        run = flow.run(executor=DaskExecutor(cl, kill_on_timeout=True))
        assert time.monotonic() - begin < 5
        assert run.task_state("sleepy") == "failed"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:   # the nanny starts a new worker process
            now = set(cl.scheduler_info()["workers"])
            if now and now != before:
                break
            time.sleep(0.1)
        assert now and now != before
        assert next(iter(cl.run(__import__("os").getpid).values())) != pid


def test_a_value_that_does_not_pickle_fails_before_it_is_submitted(client, store_path):
    lock = threading.Lock()

    def holds_a_lock():
        return lock.locked()

    flow = Flow("pickle", store=store_path)
    flow.task(holds_a_lock)
    run = flow.run(executor=DaskExecutor(client))
    assert run.task_state("holds_a_lock") == "failed"
    with pytest.raises(TypeError, match="lock") as info:
        run.result("holds_a_lock")
    assert "task 'holds_a_lock' (attempt 1) cannot be sent to a Dask worker" in \
        "".join(info.value.__notes__)


def _drive(executor, specs, jobs):
    """Start ``executor``, submit ``jobs`` [(token, fn)], return their outcomes."""
    got: queue.SimpleQueue = queue.SimpleQueue()
    executor.prepare(specs)
    executor.start(got.put)
    try:
        for token, fn in jobs:
            executor.submit(token, fn, {}, TaskContext(specs[token[0]].name, token[1], "r1"))
        return dict(got.get(timeout=30) for _ in jobs)
    finally:
        executor.shutdown()


def test_resources_the_workers_advertise_go_to_dask_and_too_much_fails_at_submit(client):
    specs = [types.SimpleNamespace(name="fits", kind="function", resources={"GPU": 1}),
             types.SimpleNamespace(name="greedy", kind="function", resources={"GPU": 2}),
             types.SimpleNamespace(name="pooled", kind="function", resources={"db": 5})]
    ex = DaskExecutor(client)
    out = _drive(ex, specs, [((0, 1), lambda: "ran"), ((1, 1), lambda: "never"),
                             ((2, 1), lambda: "pool")])
    assert (out[0, 1].ok, out[0, 1].value) == (True, "ran")
    assert (out[2, 1].ok, out[2, 1].value) == (True, "pool")   # nbflow's pools, not Dask's
    assert not out[1, 1].ok
    assert str(out[1, 1].error) == (
        "this task needs GPU=2, more than any Dask worker advertises (GPU=1); start "
        "workers with more (dask worker --resources 'NAME=N') or ask for less")


def test_an_adaptive_cluster_runs_the_flow(store_path):
    flow = Flow("adapt", store=store_path)
    for i in range(4):
        flow.task(lambda i=i: i * i, name=f"sq{i}")
    ex = DaskExecutor(processes=False, minimum=0, maximum=2)
    run = flow.run(executor=ex)
    assert [run.result(f"sq{i}") for i in range(4)] == [0, 1, 4, 9]
    assert ex.workers == 2


def test_executor_dask_by_name_is_a_local_cluster_sized_by_workers(store_path):
    ex = make_executor("dask", 3)
    assert isinstance(ex, DaskExecutor) and ex.workers == 3


def test_a_task_cell_that_does_not_declare_its_names_is_refused_with_the_flags_to_add(
        store_path):
    flow = Flow("cells", store=store_path)
    flow.cell_task("load", "x = 1\n", {})
    flow.cell_task("use", "y = x + base\n", {}, reads=["x", "base"])
    with pytest.raises(ValueError, match=r"^task 'load' is a %%task cell that does not declare "
                                         r"what it reads and assigns, .* which a Dask worker "
                                         r"does not share\. Add --reads \"\" --assigns x to its "
                                         r"%%task line"):
        flow.run(executor=DaskExecutor(processes=False))
    flow.remove("load")
    flow.cell_task("load", "x = 1\n", {}, reads=[], assigns=["x"])
    with pytest.raises(ValueError, match=r"^task 'use' is a %%task cell .* Add --assigns y to "):
        flow.run(executor=DaskExecutor(processes=False))


def test_a_mapped_cell_is_refused_before_anything_is_submitted(store_path):
    flow = Flow("mapped", store=store_path)
    flow.cell_map("double", "y = item * 2\n", {}, [1, 2])
    with pytest.raises(ValueError, match=r"^task 'double\[0\]' belongs to a %%task --map cell, "
                                         r"whose items run in the notebook's namespace"):
        flow.run(executor=DaskExecutor(processes=False))
    assert flow.store.runs(flow.name) == []


def test_a_declared_task_cell_runs_on_the_cluster_and_its_assigns_come_back(client, store_path):
    ns = {"base": 10, "lock": threading.Lock()}
    flow = Flow("cells", store=store_path)
    flow.cell_task("load", "import distributed\nx = 1\nwhere = distributed.get_worker().address"
                   "\nhelper = 5\n", ns, reads=[], assigns=["x", "where"])
    flow.cell_task("use", "y = x + base\n", ns, reads=["x", "base"], assigns=["y"])
    run = flow.run(executor=DaskExecutor(client))
    assert run.state == "succeeded"
    assert ns["x"] == 1 and ns["y"] == 11
    assert ns["where"] in client.scheduler_info()["workers"]
    assert "helper" not in ns   # only the declared assigns come back
    assert run.result("use") == {"y": 11}

    check_reads_that_cannot_go(flow, ns, "a Dask worker", executor=DaskExecutor(client))


def test_a_task_cell_that_timed_out_writes_nothing_back_when_it_ends(client, store_path):
    ns: dict = {}
    flow = Flow("late", store=store_path)
    flow.cell_task("slow", "import time\ntime.sleep(1.5)\nz = 1\n", ns, reads=[],
                   assigns=["z"], timeout=0.5)
    flow.task(lambda: time.sleep(4), name="keeps_the_run_going")
    run = flow.run(executor=DaskExecutor(client))
    assert run.task_state("slow") == "failed"
    assert "z" not in ns   # its attempt ended during the run, after it was given up


def test_without_distributed_the_error_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"^executor='dask' needs the 'distributed' package, "
                                          r"which is not installed\. Install it with: "
                                          r'pip install "nbflow\[dask\]"$'):
        DaskExecutor(processes=False).start(lambda msg: None)


@pytest.mark.parametrize("options, message", [
    ({"client": object(), "address": "tcp://x:1"}, "a client or an address, not both"),
    ({"workers": 0}, "workers must be at least 1, got 0"),
    ({"address": "tcp://x:1", "maximum": 2}, "minimum= and maximum= adapt a cluster nbflow"),
    ({"minimum": 3, "maximum": 2}, "0 <= minimum <= maximum"),
    ({"minimum": 1}, r"minimum=\.\.\.\) needs maximum= too"),
    ({"processes": False, "kill_on_timeout": True}, "a cluster of threads"),
])
def test_contradictory_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        DaskExecutor(**options)


def test_kill_on_timeout_never_kills_a_worker_in_this_process(client, store_path):
    # A cluster of threads runs its workers in the kernel's own process.
    flow = Flow("no-suicide", store=store_path)
    flow.task(sleepy, timeout=0.3)
    run = flow.run(executor=DaskExecutor(client, kill_on_timeout=True))
    assert run.task_state("sleepy") == "failed"   # and this process is still here


def test_an_attempt_cancelled_before_it_reaches_the_cluster_never_runs(client):
    # submit() queues attempts for the client's loop to hand over in a burst; a cancel
    # in between (a timeout, run.cancel()) must not let them start later.
    ex = DaskExecutor(client)
    outcomes: queue.SimpleQueue = queue.SimpleQueue()
    ex.start(outcomes.put)
    try:
        for k in range(10):
            ex.submit((k, 1), time.sleep, {"seconds": 0.01}, TaskContext(f"t{k}", 1, "r"))
            ex.cancel((k, 1))
        got = [outcomes.get(timeout=30) for _ in range(10)]
    finally:
        ex.shutdown()
    assert sorted(token for token, _ in got) == [(k, 1) for k in range(10)]   # one each
    early = [out for _, out in got if "before it reached the cluster" in str(out.error)]
    assert early and all(not out.ok for out in early)


def wide_then_tail(flow, wide: int, tail: int, seconds: float) -> None:
    """``wide`` independent tasks, then a chain of ``tail`` after all of them; each sleeps."""
    def nap():
        time.sleep(seconds)
    for k in range(wide):
        flow.task(nap, name=f"wide{k}")
    for k in range(tail):
        flow.task(nap, name=f"tail{k}",
                  after=[f"tail{k - 1}"] if k else [f"wide{j}" for j in range(wide)])


def attempts_of(run) -> list[tuple[str, str, float, float]]:
    """(task, worker, start, end) of every attempt that ended, in the order they started."""
    log, started, out = events_of(run), {}, []
    for ev in log:
        if ev[TO] == "running":
            started[ev[TASK], ev[ATTEMPT]] = ev[AT]
        elif ev[TO] in ("succeeded", "failed"):
            out.append((ev[TASK], ev[DETAIL]["worker"], started[ev[TASK], ev[ATTEMPT]], ev[AT]))
    return sorted(out, key=lambda a: a[2])


def most_at_once(spans) -> int:
    """The most of ``spans`` [(start, end)] that overlap at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_an_adaptive_cluster_grows_for_a_wide_level_and_shrinks_in_a_long_tail(store_path):
    # Dask's adapt looks every interval; it retires a worker it found idle wait-count
    # times running, and asks for a worker per target-duration of work it sees.
    flow = Flow("adapt-timeline", store=store_path)
    wide_then_tail(flow, wide=16, tail=10, seconds=0.4)
    ex = DaskExecutor(processes=False, minimum=1, maximum=4)
    with dask.config.set({"distributed.adaptive.interval": "100ms",
                          "distributed.adaptive.wait-count": 2,
                          "distributed.adaptive.target-duration": "1s"}):
        run = flow.run(executor=ex, background=True)
        sizes = []   # (when, the workers the cluster has), as the run goes
        while not run.done:
            client = ex.client
            with contextlib.suppress(Exception):   # the run may end meanwhile
                sizes.append((time.time(), set(client.scheduler_info(n_workers=-1)["workers"])))
            time.sleep(0.05)
        run.wait()
    assert run.state == "succeeded"
    ran = attempts_of(run)
    wide = [a for a in ran if a[0].startswith("wide")]
    tail = [a for a in ran if a[0].startswith("tail")]
    wide_end, last_start = max(e for *_, e in wide), tail[-3][2]
    # The cluster grew for the wide level, which ran on several workers at once ...
    assert max(len(w) for t, w in sizes if t <= wide_end) >= 3
    assert len({w for _, w, _, _ in wide}) >= 3
    assert most_at_once([(s, e) for _, _, s, e in wide]) >= 2
    # ... and shrank to one worker in the tail, which ran its last attempts: the workers
    # that ran the wide level are gone but that one, as their lanes in the timeline show.
    left = [w for t, w in sizes if last_start <= t]
    assert left and all(len(w) == 1 for w in left)
    assert {w for _, w, _, _ in tail[-3:]} == left[-1]
    assert len({w for _, w, _, _ in wide} - left[-1]) >= 2


def test_the_cluster_queues_deeper_when_no_task_has_a_timeout(client):
    # A long wait in Dask's queue can only mis-charge a timeout; without one the engine
    # keeps more attempts on the cluster, so its own round trip never leaves it idle.
    ex = DaskExecutor(client)
    for timeout, per_thread in ((None, 16), (5.0, 4)):
        ex.prepare([types.SimpleNamespace(name="t", kind="function", timeout=timeout)])
        ex.start(lambda msg: None)
        try:
            assert ex.lookahead == 2 * per_thread   # the fixture's two one-thread workers
        finally:
            ex.shutdown()
    assert DaskExecutor(client, lookahead=3).lookahead == 3
