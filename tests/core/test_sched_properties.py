"""Properties of scheduling: random DAGs x every policy x random pools, phases,
failures and retries, run on a virtual clock where attempts overlap (the timed
executor of ``conftest.py``).  From the event log:

* no task starts before its dependencies succeeded, nor before every task of
  the phases before its own ended;
* never more attempts running than workers, nor more slots held than a pool has;
* every task ends exactly once, in the state a model of the rules gives;
* replaying the events gives the engine's task table.
"""

from __future__ import annotations

from typing import NamedTuple

from flowgen import Plan, failing, plans
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.core.events import ATTEMPT, TASK, TO
from nbflow.core.policies import Aging
from nbflow.core.replay import TERMINAL, replay

POLICIES = ["fifo", "priority", "aging", "sjf", "edf", "critical_path", Aging(rate=0.5, cap=4)]


class Case(NamedTuple):
    plan: Plan
    policy: object
    workers: int
    inherit: bool
    pools: dict[str, int]
    needs: dict[str, dict[str, int]]
    phases: dict[str, str | None]
    options: dict[str, dict]
    durations: dict[str, float]

    def expected(self) -> dict[str, str]:
        """Final states: the all_success rule, with each phase's end as one more
        dependency of the tasks of the next phase."""
        plan, out = self.plan, {}
        order = list(dict.fromkeys(p for p in self.phases.values() if p is not None))
        for name in plan.topo:
            k = order.index(self.phases[name]) if self.phases[name] is not None else -1
            before = [t for t in plan.topo if k > 0 and self.phases[t] == order[k - 1]]
            # phases follow the topological order, so ``before`` is decided already
            if any(out[d] != "succeeded" for d in plan.deps[name] + before):
                out[name] = "upstream_failed"
            else:
                out[name] = ("failed" if plan.failures[name] > plan.retries[name]
                             else "succeeded")
        return out


@st.composite
def cases(draw) -> Case:
    plan = draw(plans(max_tasks=10))
    pools = {p: draw(st.integers(1, 3)) for p in draw(st.lists(st.sampled_from(["db", "api"]),
                                                               unique=True, max_size=2))}
    needs = {t: {p: draw(st.integers(1, n)) for p, n in pools.items() if draw(st.booleans())}
             for t in plan.topo}
    nphases = draw(st.integers(0, 3))
    # phases along the topological order, so no task waits for a later phase
    phases = {t: (None if not nphases or draw(st.integers(0, 4)) == 0
                  else f"p{k * nphases // len(plan.topo)}")
              for k, t in enumerate(plan.topo)}
    if any(p is not None for p in phases.values()):
        # a task outside the phases that waits on one, and is waited on by an
        # earlier one, would make a cycle: keep the phase-less ones free of deps
        for t in plan.topo:
            if phases[t] is None:
                plan.deps[t].clear()
    options = {t: {"priority": draw(st.integers(0, 3)),
                   "expected": draw(st.sampled_from([None, 0.5, 1.0, 2.0])),
                   "deadline": draw(st.sampled_from([None, 1.0, 3.0, 8.0]))}
               for t in plan.topo}
    return Case(plan, draw(st.sampled_from(POLICIES)), draw(st.integers(1, 4)), draw(st.booleans()),
                pools, needs, phases, options,
                {t: draw(st.sampled_from([0.5, 1.0, 1.5, 3.0])) for t in plan.topo})


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_random_schedules(case, spec, timed):
    plan = case.plan
    # phases run in the order they are first declared: declare them in topo order
    declared = sorted(plan.order, key=lambda t: case.phases[t] or "")
    specs = [spec(name, failing(plan.failures[name]), after=plan.deps[name],
                  retries=plan.retries[name], resources=case.needs[name],
                  phase=case.phases[name], **case.options[name])
             for name in declared]
    engine, rec = timed(specs, case.durations, workers=case.workers, policy=case.policy,
                        pools=case.pools, inherit_priority=case.inherit)
    log = rec.log
    ended: dict[str, str] = {}
    running: dict[str, int] = {}
    order = list(dict.fromkeys(p for p in case.phases.values() if p is not None))
    for ev in log:
        name, to = ev[TASK], ev[TO]
        if to == "running" and ev[4] != "running":
            assert all(ended.get(d) == "succeeded" for d in plan.deps[name]), name
            if case.phases[name] is not None:
                k = order.index(case.phases[name])
                assert all(t in ended for t in plan.topo if case.phases[t] in order[:k]), name
            running[name] = ev[ATTEMPT]
            assert len(running) <= case.workers
            for pool, slots in case.pools.items():
                assert sum(case.needs[t].get(pool, 0) for t in running) <= slots, pool
        elif ev[4] == "running" and to != "running":
            del running[name]
        if to in TERMINAL:
            assert name not in ended, f"{name} ended twice"
            ended[name] = to
    assert ended == case.expected()
    rows = replay(engine.graph.names, log)
    assert {n: (r[0], r[1]) for n, r in rows.items()} == {
        n: (s.value, a) for n, s, a in zip(engine.graph.names, engine.state, engine.attempt)}
