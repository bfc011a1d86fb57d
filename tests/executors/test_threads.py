"""The thread pool starts its threads on demand, up to ``workers``."""

from __future__ import annotations

import threading

from nbflow import Flow
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
