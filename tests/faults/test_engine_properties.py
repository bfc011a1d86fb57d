"""Properties of random runs with failures, retries, trigger rules and cancellations.

A scenario is a random flow from ``tests/flowgen.py`` (a DAG whose task ``t``
fails its first ``failures[t]`` attempts and may retry ``retries[t]`` times)
plus, per task, a trigger rule and whether its error is one it retries on;
the run may be cancelled from inside a chosen task, and may fail fast.  The
engine records to a real SQLite store, and the checks read the log and the
dead-letter table back from it:

* no task starts before its dependencies ended (succeeded, under
  ``all_success``), and none after the run was cancelled;
* every task ends in exactly one terminal state, its last event;
* every attempt that started ends, exactly once;
* replaying the log gives the ``tasks`` table, and the engine's own view;
* the dead letters are exactly the tasks whose last attempt failed, each after
  its last retry (or a non-retryable error, or a cancelled run);
* without a cancel, every task ends as an independent model of the trigger
  rules and retries says, after that many attempts.

Most examples run on the synchronous executor and a virtual clock; fewer on
the thread pool and the real clock.
"""

from __future__ import annotations

import time
import uuid
from typing import NamedTuple

import pytest
from flowgen import Plan, plans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbflow.core.clock import RealClock, VirtualClock
from nbflow.core.engine import Engine
from nbflow.core.events import ATTEMPT, FROM, SEQ, TASK, TO
from nbflow.core.graph import Graph
from nbflow.core.replay import COLUMNS, TERMINAL, replay
from nbflow.core.spec import TaskSpec
from nbflow.executors.sync import SyncExecutor
from nbflow.executors.threads import ThreadExecutor
from nbflow.store import Store

FAILED = {"failed", "upstream_failed", "cancelled"}   # what a trigger rule counts as failed

# The trigger rules' table (triggers.py docs, Airflow's meaning), written out
# again as the model: the verdict once every dependency ended, from the counts of
# failed, skipped and succeeded ones.  A task without dependencies runs.
RULES = {
    "all_success": lambda f, k, s: "upstream_failed" if f else "skipped" if k else "run",
    "all_failed": lambda f, k, s: "skipped" if s or k else "run",
    "all_done": lambda f, k, s: "run",
    "all_skipped": lambda f, k, s: "skipped" if s or f else "run",
    "one_success": lambda f, k, s: "run" if s else "upstream_failed" if f else "skipped",
    "one_failed": lambda f, k, s: "run" if f else "skipped",
    "one_done": lambda f, k, s: "run" if s or f else "skipped",
    "none_failed": lambda f, k, s: "upstream_failed" if f else "run",
    "none_failed_min_one_success": lambda f, k, s: "upstream_failed" if f else
    "run" if s else "skipped",
    "none_skipped": lambda f, k, s: "skipped" if k else "run",
    "always": lambda f, k, s: "run",
}
# Rules that may start a task before all its dependencies ended: what must hold
# of those that did when it starts.
EARLY = {
    "one_success": lambda ends: "succeeded" in ends,
    "one_failed": lambda ends: any(e in FAILED for e in ends),
    "one_done": lambda ends: any(e != "skipped" for e in ends),
    "always": lambda ends: True,
}


class Planned(RuntimeError):
    """A failure the tasks retry on."""


class Fatal(ValueError):
    """A failure the tasks do not retry on."""


class Scenario(NamedTuple):
    plan: Plan
    triggers: dict[str, str]
    fatal: dict[str, bool]
    cancel_at: str | None      # the task whose first attempt cancels the run
    fail_fast: bool

    def expected(self) -> dict[str, tuple[str, int]]:
        """``(final state, attempts)`` per task when nothing cancels the run."""
        plan, out = self.plan, {}
        for name in plan.topo:
            ends = [out[d][0] for d in plan.deps[name]]
            verdict = RULES[self.triggers[name]](
                sum(e in FAILED for e in ends), ends.count("skipped"),
                ends.count("succeeded")) if ends else "run"
            failures, retries = plan.failures[name], plan.retries[name]
            if verdict != "run":
                out[name] = (verdict, 0)
            elif failures and self.fatal[name]:
                out[name] = ("failed", 1)
            elif failures > retries:
                out[name] = ("failed", retries + 1)
            else:
                out[name] = ("succeeded", failures + 1)
        return out


@st.composite
def scenarios(draw) -> Scenario:
    plan = draw(plans(max_tasks=12))
    return Scenario(plan,
                    {t: draw(st.sampled_from(sorted(RULES))) for t in plan.topo},
                    {t: draw(st.integers(0, 4)) == 0 for t in plan.topo},
                    draw(st.none() | st.sampled_from(plan.topo)),
                    draw(st.booleans()))


def task(name: str, failures: int, fatal: bool, cancel) -> callable:
    calls = []

    def fn():
        calls.append(None)
        if cancel is not None and len(calls) == 1:
            cancel()
        if len(calls) <= failures:
            raise (Fatal if fatal else Planned)(f"{name}: planned failure {len(calls)}")
        return len(calls)
    return fn


def execute(store: Store, sc: Scenario, executor, clock, retry_delay: float):
    """Run the scenario to the end, recorded in ``store``; ``(engine, run_id)``."""
    plan = sc.plan
    holder: list[Engine] = []

    def cancel():
        holder[0].cancel("planned cancel")

    specs = [TaskSpec(name, task(name, plan.failures[name], sc.fatal[name],
                                 cancel if name == sc.cancel_at else None),
                      tuple(plan.deps[name]), retries=plan.retries[name],
                      retry_delay=retry_delay, retry_on=(Planned,), trigger=sc.triggers[name])
             for name in plan.order]
    graph = Graph(plan.order, [plan.deps[n] for n in plan.order])
    run_id = uuid.uuid4().hex
    store.create_run(run_id, "properties", graph, ["function"] * len(specs), {}, time.time())
    engine = Engine(graph, specs, executor, sinks=[store.sink(run_id)], clock=clock,
                    run_id=run_id, fail_fast=sc.fail_fast, seed=0)
    holder.append(engine)
    engine.run()
    store.finish_run(run_id, "cancelled" if engine.cancelled else "done", time.time())
    return engine, run_id


def check(store: Store, sc: Scenario, engine: Engine, run_id: str) -> None:
    plan = sc.plan
    log = store.events(run_id)
    assert [ev[SEQ] for ev in log] == list(range(len(log)))

    # Starts: after the dependencies ended, and never after the run was cancelled.
    ended: dict[str, str] = {}
    cancelled_seen = False
    for ev in log:
        name = ev[TASK]
        if ev[TO] == "running":
            assert not cancelled_seen, f"{name} started after the run was cancelled"
            rule = sc.triggers[name]
            if rule in EARLY and plan.deps[name]:
                assert EARLY[rule]([ended[d] for d in plan.deps[name] if d in ended])
            else:
                assert all(d in ended for d in plan.deps[name])
            if sc.triggers[name] == "all_success":
                assert all(ended[d] == "succeeded" for d in plan.deps[name])
        if ev[TO] in TERMINAL:
            assert name not in ended, f"{name} ended twice"
            ended[name] = ev[TO]
        cancelled_seen |= ev[TO] == "cancelled"

    # One terminal state per task, its last event.
    for name in plan.topo:
        mine = [ev for ev in log if ev[TASK] == name]
        assert mine[-1][TO] in TERMINAL and sum(ev[TO] in TERMINAL for ev in mine) == 1

    # Every attempt that started ends once; nothing ends that did not start.
    started = [(ev[TASK], ev[ATTEMPT]) for ev in log if ev[TO] == "running"]
    finished = [(ev[TASK], ev[ATTEMPT]) for ev in log if ev[FROM] == "running"]
    assert sorted(started) == sorted(finished) and len(set(started)) == len(started)

    # Replaying the log gives the table and the engine's view.
    rows = {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run_id)}
    assert replay(plan.order, log) == rows
    assert {n: (r[0], r[1]) for n, r in rows.items()} == {
        n: (s.value, a) for n, s, a in zip(engine.graph.names, engine.state, engine.attempt)}

    # Dead letters: exactly the tasks whose last attempt failed, after its last retry.
    final_failures = {ev[TASK]: ev[ATTEMPT] for ev in log
                      if ev[FROM] == "running" and ev[TO] == "failed"}
    letters = store.dead_letters("properties", run_id=run_id)
    assert {r["task"]: r["attempt"] for r in letters} == final_failures
    for r in letters:
        name = r["task"]
        assert (r["attempt"] == plan.retries[name] + 1 or sc.fatal[name]
                or engine.cancelled is not None)
        kind = "Fatal" if sc.fatal[name] else "Planned"
        assert r["error"] == f"{kind}: {name}: planned failure {r['attempt']}"
        assert r["traceback"].rstrip().endswith(r["error"])

    if sc.cancel_at is None and engine.cancelled is None:
        expected = sc.expected()
        assert {n: (r[0], r[1]) for n, r in rows.items()} == expected
        assert set(final_failures) == {n for n, (s, _a) in expected.items() if s == "failed"}
    if sc.fail_fast and sc.cancel_at is None and final_failures:
        assert engine.cancelled.startswith("fail_fast: task ")


PROPERTY = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def store(store_path):
    """One store for all of a test's examples (each example is a run of its own)."""
    return Store(store_path)


@PROPERTY
@given(scenarios(), st.integers(1, 3))
def test_random_runs_on_the_synchronous_executor(store, sc, workers):
    engine, run_id = execute(store, sc, SyncExecutor(workers), VirtualClock(), 1.5)
    check(store, sc, engine, run_id)


@settings(PROPERTY, max_examples=15)
@given(scenarios(), st.integers(1, 4))
def test_random_runs_on_the_thread_pool(store, sc, workers):
    engine, run_id = execute(store, sc, ThreadExecutor(workers), RealClock(), 0.0)
    check(store, sc, engine, run_id)
