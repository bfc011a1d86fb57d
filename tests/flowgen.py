"""Hypothesis strategies for random flows, shared by the core and store property tests.

A plan is a DAG whose tasks are listed in ``topo`` order (a task may depend
only on tasks listed before it, so it is acyclic), declared in the random
order ``order``; task ``t`` fails its first ``failures[t]`` attempts and may
retry ``retries[t]`` times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from hypothesis import strategies as st

from nbflow.core.events import ATTEMPT, FROM, TASK, TO

TERMINAL = {"succeeded", "failed", "skipped", "upstream_failed", "cancelled"}


class Plan(NamedTuple):
    topo: list[str]
    order: list[str]
    deps: dict[str, list[str]]
    failures: dict[str, int]
    retries: dict[str, int]

    def expected(self) -> dict[str, tuple[str, int]]:
        """``(final state, attempts)`` per task under the all_success rule."""
        out: dict[str, tuple[str, int]] = {}
        for name in self.topo:
            if any(out[d][0] != "succeeded" for d in self.deps[name]):
                out[name] = ("upstream_failed", 0)
            elif self.failures[name] > self.retries[name]:
                out[name] = ("failed", self.retries[name] + 1)
            else:
                out[name] = ("succeeded", self.failures[name] + 1)
        return out


@st.composite
def plans(draw, names=None, max_tasks: int = 10, max_failures: int = 3) -> Plan:
    """Random plans; ``names`` is a strategy for task names (default ``t0, t1, ...``)."""
    n = draw(st.integers(1, max_tasks))
    topo = (draw(st.lists(names, min_size=n, max_size=n, unique=True)) if names is not None
            else [f"t{k}" for k in range(n)])
    deps = {name: [topo[d] for d in draw(st.lists(st.integers(0, k - 1), max_size=3,
                                                   unique=True))] if k else []
            for k, name in enumerate(topo)}
    return Plan(topo, draw(st.permutations(topo)), deps,
                {name: draw(st.integers(0, max_failures)) for name in topo},
                {name: draw(st.integers(0, 2)) for name in topo})


def failing(failures: int):
    """A task function that raises on its first ``failures`` calls, then returns
    the number of calls."""
    calls = []

    def fn(**_):
        calls.append(None)
        if len(calls) <= failures:
            raise RuntimeError(f"planned failure {len(calls)}")
        return len(calls)
    return fn


def check_run(plan: Plan, log: list[tuple], workers: int,
              earlier: Callable[[str], Iterable[str]] = lambda _name: ()) -> None:
    """The invariants of a run of ``plan`` from its event ``log``.

    Every task ends in exactly one terminal state, its last event, as planned; no
    task starts before its dependencies succeeded, nor before the tasks
    ``earlier(task)`` are over; never more attempts at once than ``workers``.
    """
    expected = plan.expected()
    for name in plan.order:
        mine = [ev for ev in log if ev[TASK] == name]
        ends = [ev for ev in mine if ev[TO] in TERMINAL]
        assert len(ends) == 1 and ends[0] is mine[-1]
        assert (ends[0][TO], ends[0][ATTEMPT]) == expected[name]
    succeeded: set[str] = set()
    over: set[str] = set()
    running = 0
    for ev in log:
        if ev[TO] == "running":
            assert set(plan.deps[ev[TASK]]) <= succeeded
            assert set(earlier(ev[TASK])) <= over
            running += 1
            assert running <= workers
        elif ev[FROM] == "running":
            running -= 1
        if ev[TO] == "succeeded":
            succeeded.add(ev[TASK])
        if ev[TO] in TERMINAL:
            over.add(ev[TASK])
