"""The thread pool starts its threads on demand, up to ``workers``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from nbflow import Flow
from nbflow.core.clock import RealClock
from nbflow.executors.threads import ThreadExecutor

WAIT = 10.0


def test_a_chain_keeps_handing_its_next_task_to_the_same_thread(tmp_path):
    flow = Flow("chain", store=str(tmp_path / "s.db"))
    seen: list[str] = []

    def step():
        seen.append(threading.current_thread().name)

    for k in range(30):
        flow.task(step, name=f"s{k}", after=[f"s{k - 1}"] if k else [])
    assert flow.run(workers=8).state == "succeeded"
    assert set(seen) == {"nbflow-worker-0"}


def test_parallel_tasks_get_a_thread_each_up_to_workers(tmp_path):
    flow = Flow("wide", store=str(tmp_path / "s.db"))
    arrived = threading.Barrier(4, timeout=WAIT)   # 4 must run at once to pass it
    names: set[str] = set()

    def meet():
        names.add(threading.current_thread().name)
        arrived.wait()

    for k in range(12):
        flow.task(meet, name=f"m{k}")
    assert flow.run(executor=ThreadExecutor(4)).state == "succeeded"
    assert names == {f"nbflow-worker-{k}" for k in range(4)}


def test_the_threads_end_with_the_run(tmp_path):
    flow = Flow("end", store=str(tmp_path / "s.db"))
    for k in range(5):
        flow.task(lambda: None, name=f"t{k}")
    before = {t.ident for t in threading.enumerate()}
    flow.run(workers=3)
    left = [t for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("nbflow-worker-")]
    assert left == []


def test_a_pool_used_again_after_a_thread_was_abandoned_runs_the_next_run(tmp_path):
    """The first run leaves a thread stuck in a timed-out task; the same pool
    must still run the second run (the stuck thread takes nothing of it)."""
    release = threading.Event()
    pool = ThreadExecutor(1)
    stuck = Flow("stuck", store=str(tmp_path / "s.db"))
    stuck.task(lambda: release.wait(WAIT), name="hang", timeout=0.2)
    try:
        assert stuck.run(executor=pool).state == "failed"
        quick = Flow("quick", store=str(tmp_path / "s.db"))
        quick.task(lambda: 1, name="one")
        quick.task(lambda one: one + 1, name="two")
        run = quick.run(executor=pool, background=True)
        assert run.wait(WAIT).state == "succeeded" and run.result("two") == 2
    finally:
        release.set()


class Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), GeneratorExit(),
                                 asyncio.CancelledError(), Custom("mine")],
                         ids=lambda e: type(e).__name__)
def test_a_base_exception_in_a_task_fails_it_and_the_run_goes_on(tmp_path, exc):
    # Before: the worker thread died with it, no outcome came, the run hung.
    flow = Flow("base", store=str(tmp_path / "s.db"))

    def bad():
        raise exc

    flow.task(bad, name="bad", timeout=WAIT)
    for k in range(3):
        flow.task(lambda k=k: k, name=f"other{k}")
    run = flow.run(workers=1, background=True).wait(WAIT)
    assert run.counts() == {"failed": 1, "succeeded": 3}
    assert flow.store.tasks(run.id)[0]["error"].startswith(type(exc).__name__)


def test_an_abandoned_attempt_no_longer_holds_a_worker(tmp_path):
    """Two workers, one stuck for good in a timed-out task that ignores the
    cancel flag: the two tasks that must meet still run side by side."""
    release = threading.Event()
    meet = threading.Barrier(2, timeout=WAIT)
    flow = Flow("width", store=str(tmp_path / "s.db"))
    flow.task(lambda: release.wait(2 * WAIT), name="stuck", timeout=0.2, priority=1)
    flow.task(meet.wait, name="left", after=["gate"])
    flow.task(meet.wait, name="right", after=["gate"])
    flow.task(lambda: time.sleep(0.3), name="gate")   # outlasts stuck's timeout
    try:
        run = flow.run(workers=2, background=True).wait(WAIT)
        assert {t["name"]: t["state"] for t in flow.store.tasks(run.id)} == {
            "stuck": "failed", "left": "succeeded", "right": "succeeded", "gate": "succeeded"}
    finally:
        release.set()


def test_with_one_worker_a_timed_out_task_does_not_starve_the_run(tmp_path):
    release = threading.Event()
    flow = Flow("starve", store=str(tmp_path / "s.db"))
    flow.task(lambda: release.wait(2 * WAIT), name="stuck", timeout=0.2, priority=1)
    for k in range(4):
        flow.task(lambda k=k: k, name=f"t{k}")
    pool = ThreadExecutor(1)
    try:
        run = flow.run(executor=pool, background=True).wait(WAIT)
        assert run.counts() == {"failed": 1, "succeeded": 4}
    finally:
        release.set()
    # Once its attempt returns, the stuck thread leaves: the pool shrinks back.
    deadline = time.monotonic() + WAIT
    while len(pool._threads) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(pool._threads) <= 1


async def fetch():
    await asyncio.sleep(0.01)
    return threading.current_thread().name


def test_an_async_task_runs_on_a_worker_thread(tmp_path):
    flow = Flow("aio", store=str(tmp_path / "s.db"))
    flow.task(fetch)
    flow.task(lambda fetch: fetch.upper(), name="shout")
    run = flow.run()
    assert run.result("fetch").startswith("nbflow-worker-")
    assert run.result("shout") == run.result("fetch").upper()


def test_transitions_happen_on_the_engine_thread(spec, engine_for):
    """One thread owns the run state: every event is produced on the thread that
    called ``run``, while the tasks run on the pool's worker threads."""
    sink_threads, task_threads = set(), set()

    class ThreadSink:
        def events(self, batch):
            sink_threads.add(threading.current_thread().name)

        def logs(self, batch):
            pass

    def work():
        task_threads.add(threading.current_thread().name)

    engine, _ = engine_for([spec(f"t{k}", work) for k in range(8)],
                           executor=ThreadExecutor(3), clock=RealClock())
    engine.sinks.append(ThreadSink())
    engine.run()
    assert sink_threads == {threading.current_thread().name}
    assert task_threads and all(n.startswith("nbflow-worker-") for n in task_threads)
    assert all(s.value == "succeeded" for s in engine.state)
