"""The simulator: the engine on a virtual clock with a simulated executor.

Known results are asserted exactly.  Graham's list-scheduling anomalies: R. L.
Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math.
17(2):416-429, 1969 (the nine-task example, also in Wikipedia's "List
scheduling", section Anomalies): 3 machines give makespan 12; another priority
list 14; every task one unit shorter 13; two precedence constraints removed 16;
a fourth machine 15.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.core.clock import VirtualClock
from nbflow.core.engine import Engine
from nbflow.core.graph import Graph
from nbflow.core.simulate import SimulatedExecutor, durations_of, failures_of, simulate
from nbflow.core.spec import TaskSpec
from nbflow.executors.sync import SyncExecutor


def specs_of(deps: dict[str, list[str]], **options) -> tuple[Graph, list[TaskSpec]]:
    specs = [TaskSpec(name, lambda: None, tuple(ds), **options.get(name, {}))
             for name, ds in deps.items()]
    return Graph([s.name for s in specs], [s.deps for s in specs]), specs


# -- Graham's anomalies -------------------------------------------------------------
GRAHAM_LENGTHS = dict(zip([f"T{k}" for k in range(1, 10)], [3, 2, 2, 2, 4, 4, 4, 4, 9]))
GRAHAM_DEPS = {"T9": ["T1"], **{f"T{k}": ["T4"] for k in (5, 6, 7, 8)}}
GRAHAM_LIST = [f"T{k}" for k in range(1, 10)]


def graham(machines=3, lengths=GRAHAM_LENGTHS, deps=GRAHAM_DEPS, order=GRAHAM_LIST) -> float:
    """List scheduling of Graham's example: the list is the priority order."""
    priority = {t: len(order) - k for k, t in enumerate(order)}
    graph, specs = specs_of({t: deps.get(t, []) for t in GRAHAM_LIST},
                            **{t: {"priority": priority[t]} for t in GRAHAM_LIST})
    return simulate(graph, specs, workers=machines, policy="priority",
                    duration=durations_of(lengths, graph.names)).makespan


def test_graham_anomalies_are_reproduced_exactly():
    assert graham() == 12
    assert graham(order=["T1", "T2", "T4", "T5", "T6", "T3", "T9", "T7", "T8"]) == 14
    assert graham(lengths={t: d - 1 for t, d in GRAHAM_LENGTHS.items()}) == 13
    assert graham(deps={"T9": ["T1"], "T7": ["T4"], "T8": ["T4"]}) == 16
    assert graham(machines=4) == 15


# -- list scheduling semantics ------------------------------------------------------
def test_endings_at_one_instant_are_all_applied_before_the_next_start():
    # a and b end at t=2, freeing both workers. b's followers c1, c2 outrank a's
    # follower d. Were a's ending applied alone first, d would take a worker.
    graph, specs = specs_of({"a": [], "b": [], "d": ["a"], "c1": ["b"], "c2": ["b"]},
                            d={"priority": 1}, c1={"priority": 5}, c2={"priority": 4})
    schedule = simulate(graph, specs, workers=2, policy="priority",
                        duration=durations_of({"a": 2, "b": 2, "c1": 1, "c2": 1, "d": 1},
                                              graph.names))
    spans = {s.task: (s.start, s.end) for s in schedule.spans}
    assert spans["c1"] == (2, 3) and spans["c2"] == (2, 3) and spans["d"] == (3, 4)


def test_the_same_inputs_give_the_same_schedule():
    deps = {f"t{k}": [f"t{j}" for j in range(k) if (k * 7 + j) % 3 == 0] for k in range(30)}
    graph, specs = specs_of(deps, **{f"t{k}": {"retries": 2} for k in range(30)})

    def once():
        s = simulate(graph, specs, workers=3, duration=lambda n, a: 1 + int(n[1:]) % 4,
                     fails=failures_of(0.3, seed=7), seed=7)
        return [(sp.task, sp.attempt, sp.worker, sp.start, sp.end, sp.state) for sp in s.spans]

    assert once() == once()


def test_retries_and_back_off_run_on_the_virtual_clock():
    graph, specs = specs_of({"flaky": [], "after": ["flaky"]},
                            flaky={"retries": 2, "retry_delay": 10.0, "backoff": 2.0})
    schedule = simulate(graph, specs, workers=1, duration=durations_of({"flaky": 1,
                                                                         "after": 1},
                                                                        graph.names),
                        fails=failures_of({"flaky": 2}, None))
    flaky = [(s.attempt, s.start, s.end, s.state) for s in schedule.spans if s.task == "flaky"]
    # attempt 1 at 0, fails at 1, waits 10; attempt 2 at 11, fails at 12, waits 20
    assert flaky == [(1, 0, 1, "retrying"), (2, 11, 12, "retrying"), (3, 32, 33, "succeeded")]
    assert schedule.makespan == 34


def test_a_timed_out_attempt_keeps_its_worker_until_its_duration_ends():
    graph, specs = specs_of({"slow": [], "next": []}, slow={"timeout": 2.0})
    schedule = simulate(graph, specs, workers=1,
                        duration=durations_of({"slow": 5, "next": 1}, graph.names))
    spans = {s.task: (s.start, s.end, s.state) for s in schedule.spans}
    assert spans["slow"] == (0, 2, "failed")
    assert spans["next"] == (5, 6, "succeeded")   # a thread cannot be stopped


def test_a_real_run_on_the_synchronous_executor_makes_the_same_decisions():
    """Same flow, same durations, same policy: the same start order and times."""
    lengths = {"a": 3, "b": 1, "c": 2, "d": 2, "e": 1, "f": 4}
    deps = {"a": [], "b": [], "c": ["a"], "d": ["b"], "e": ["b", "c"], "f": []}
    priorities = {"a": 1, "b": 3, "c": 0, "d": 2, "e": 5, "f": 4}
    clock = VirtualClock()

    def work(name):
        def fn():
            clock.advance(lengths[name])   # the task really takes its time, on this clock
        return fn

    specs = [TaskSpec(n, work(n), tuple(ds), priority=priorities[n]) for n, ds in deps.items()]
    graph = Graph(list(deps), [s.deps for s in specs])
    events: list = []

    class Keep:
        def events(self, batch):
            events.extend(batch)

        def logs(self, batch):
            pass

    Engine(graph, specs, SyncExecutor(1), sinks=[Keep()], clock=clock).run()
    real = [(ev[2], ev[6]) for ev in events if ev[5] == "running"]
    simulated = simulate(graph, specs, workers=1, duration=durations_of(lengths, graph.names))
    assert real == [(s.task, s.start) for s in simulated.spans]


# -- inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("durations, message", [
    ({"a": -1}, r"the duration of task 'a' must be a finite number of seconds >= 0, got -1"),
    ({"a": float("inf")}, r"must be a finite number of seconds >= 0, got inf"),
    ({"a": float("nan")}, r"must be a finite number of seconds >= 0, got nan"),
    ({"a": 1.0, "zz": 1.0}, r"durations name tasks the flow does not have: 'zz'"),
    ({"a": "x"}, r"the duration of task 'a' must be a number of seconds, got 'x'"),
    ({"zz": 1}, r"durations name tasks the flow does not have: 'zz'"),
])
def test_bad_durations_are_named(durations, message):
    with pytest.raises(ValueError, match=message):
        durations_of(durations, ["a"])


@pytest.mark.parametrize("failures, error, message", [
    (1.5, ValueError, r"a failure probability must be between 0 and 1, got 1.5"),
    ({"a": -1}, ValueError, r"failures\['a'\] must be how many of the task's first attempts"),
    ("all", TypeError, r"failures must be a dict"),
])
def test_bad_failures_are_named(failures, error, message):
    with pytest.raises(error, match=message):
        failures_of(failures, None)


# -- properties -------------------------------------------------------------------------
@st.composite
def instances(draw, max_tasks=8):
    n = draw(st.integers(1, max_tasks))
    deps = {f"t{k}": sorted(draw(st.sets(st.sampled_from([f"t{j}" for j in range(k)]),
                                         max_size=min(k, 3)))) if k else []
            for k in range(n)}
    lengths = {t: draw(st.integers(0, 4)) for t in deps}
    priorities = {t: draw(st.integers(0, 3)) for t in deps}
    workers = draw(st.integers(1, 3))
    policy = draw(st.sampled_from(["fifo", "priority"]))
    return deps, lengths, priorities, workers, policy


def run_instance(deps, lengths, priorities, workers, policy):
    graph, specs = specs_of(deps, **{t: {"priority": p} for t, p in priorities.items()})
    return simulate(graph, specs, workers=workers, policy=policy,
                    duration=durations_of(lengths, graph.names))


@settings(max_examples=150, deadline=None)
@given(instances(max_tasks=12))
def test_schedules_respect_dependencies_and_workers(instance):
    deps, lengths, _p, workers, _policy = instance
    schedule = run_instance(*instance)
    spans = {s.task: s for s in schedule.spans}
    assert set(spans) == set(deps)   # every task ran exactly once
    for task, ds in deps.items():
        assert all(spans[d].end <= spans[task].start for d in ds)
        assert spans[task].end - spans[task].start == lengths[task]
    instants = sorted({s.start for s in spans.values()})
    for t in instants:   # never more running at once than workers
        assert sum(s.start <= t < s.end for s in spans.values()) <= workers
    lanes = {}
    for s in sorted(spans.values(), key=lambda s: s.start):   # one attempt per lane at a time
        assert lanes.get(s.worker, 0) <= s.start
        lanes[s.worker] = s.end


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.sampled_from(["fifo", "priority"]),
       st.integers(1, 5))
def test_independent_equal_tasks_reach_the_optimal_makespan(n, workers, policy, length):
    deps = {f"t{k}": [] for k in range(n)}
    schedule = run_instance(deps, dict.fromkeys(deps, length), dict.fromkeys(deps, 0),
                            workers, policy)
    assert schedule.makespan == -(-n // workers) * length


def optimum(deps: dict[str, list[str]], lengths: dict[str, int], machines: int) -> int:
    """The best non-preemptive makespan, by brute force: every semi-active schedule is
    tasks taken in some topological order, each placed on some machine as early as
    its machine and its dependencies allow (machines are identical: canonical labels).
    Branches that cannot beat the best so far are cut."""
    names = list(deps)
    best = sum(lengths.values())
    finish: dict[str, int] = {}
    free = [0] * machines

    def place(left: frozenset, used: int) -> None:
        nonlocal best
        if not left:
            best = min(best, max(finish.values(), default=0))
            return
        for t in sorted(left):
            if any(d not in finish for d in deps[t]):
                continue
            ready = max((finish[d] for d in deps[t]), default=0)
            for m in range(min(used + 1, machines)):
                end = max(free[m], ready) + lengths[t]
                if end >= best and lengths[t]:
                    continue
                old, free[m], finish[t] = free[m], end, end
                place(left - {t}, max(used, m + 1))
                free[m] = old
                del finish[t]

    place(frozenset(names), 0)
    return best


@settings(max_examples=40, deadline=None)
@given(instances(max_tasks=6))
def test_list_scheduling_is_within_2_minus_1_over_m_of_the_optimum(instance):
    deps, lengths, _p, workers, _policy = instance
    schedule = run_instance(*instance)
    best = optimum(deps, lengths, workers)
    assert schedule.makespan <= (2 - 1 / workers) * best + 1e-9
    assert schedule.makespan >= best


def test_the_brute_force_optimum_beats_a_greedy_list_where_it_should():
    # Two machines, lengths 3, 3, 2, 2, 2 in that list: greedy gives 7; 3+3 | 2+2+2 is 6.
    deps = {t: [] for t in "abcde"}
    lengths = {"a": 3, "b": 3, "c": 2, "d": 2, "e": 2}
    assert optimum(deps, lengths, 2) == 6
    assert run_instance(deps, lengths, dict.fromkeys(deps, 0), 2, "fifo").makespan == 7
    assert optimum({"a": [], "b": ["a"], "c": ["b"]}, {"a": 1, "b": 1, "c": 1}, 3) == 3


def test_the_simulated_executor_uses_the_lowest_free_worker():
    clock = VirtualClock()
    reported = []
    ex = SimulatedExecutor(2, clock, lambda n, a: 1.0, lambda n, a: False)
    ex.start(reported.append)

    class Ctx:
        def __init__(self, name):
            self.name, self.attempt = name, 1

    ex.submit((0, 1), None, {}, Ctx("a"))
    ex.submit((1, 1), None, {}, Ctx("b"))
    import queue
    inbox = queue.SimpleQueue()
    first = clock.wait(inbox, None)
    second = inbox.get_nowait()   # both end at t=1: delivered together
    assert clock.now() == 1 and [first[1].worker, second[1].worker] == ["worker 0", "worker 1"]


def test_a_sink_gets_every_event_once_in_order():
    # The schedule keeps the engine's event buffer itself; sinks get what is new at
    # each flush: the whole record, each event once.
    graph, specs = specs_of({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]},
                            b={"retries": 1})
    got: list = []

    class Keep:
        def events(self, batch):
            got.extend(batch)

        def logs(self, batch):
            pass

    schedule = simulate(graph, specs, workers=2, sinks=[Keep()],
                        fails=failures_of({"b": 1}, None))
    assert got == schedule.events and len(got) == len({ev[1] for ev in got}) == 15
