"""The policies: each one's order, aging against starvation, priority inheritance
against inversion, and starts that follow the policy despite the pool's lookahead.

Most run on the synchronous executor and a virtual clock; a task "takes" time
by advancing the clock.  The lookahead case runs real threads.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.core.clock import VirtualClock
from nbflow.core.graph import Graph
from nbflow.core.policies import (
    DEFAULT_EXPECTED,
    Aging,
    EarliestDeadlineFirst,
    Keyed,
    RunInfo,
    make_policy,
)

POLICY_NAMES = ["fifo", "priority", "aging", "sjf", "edf", "critical_path"]

# name, priority, expected, deadline: independent tasks, all ready at once
TASKS = [("t0", 0, 3.0, None), ("t1", 2, 1.0, 9.0), ("t2", 5, 2.0, 4.0), ("t3", 2, 0.5, None),
         ("t4", 0, 4.0, 1.0), ("t5", 5, 1.0, 30.0)]


def expected_order(policy: str, tasks) -> list[int]:
    """The policy's order by its formula, written out again (ties: declaration)."""
    key = {
        "fifo": lambda k: 0,
        "priority": lambda k: -tasks[k][1],
        "aging": lambda k: -tasks[k][1],           # all ready at t=0: equal ages
        "sjf": lambda k: tasks[k][2],
        "edf": lambda k: float("inf") if tasks[k][3] is None else tasks[k][3],
        "critical_path": lambda k: -tasks[k][2],   # independent: rank = own duration
    }[policy]
    return sorted(range(len(tasks)), key=lambda k: (key(k), k))


@pytest.mark.parametrize("flip", [False, True], ids=["a-to-z", "z-to-a"])
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_one_worker_every_task_ready_starts_in_the_policys_order(policy, flip, spec, run):
    names = [("z" if flip else "a") + str(9 - k if flip else k) for k in range(len(TASKS))]
    specs = [spec(names[k], priority=p, expected=e, deadline=d)
             for k, (_n, p, e, d) in enumerate(TASKS)]
    _, rec = run(specs, policy=policy)
    assert rec.starts() == [names[k] for k in expected_order(policy, TASKS)]


def test_edf_brings_forward_what_a_deadline_waits_on(spec, run):
    # prep has no deadline, but ship (4 s) must end by 10, so prep must end by 6:
    # before other (due 8)
    specs = [spec("other", expected=1, deadline=8), spec("prep", expected=1),
             spec("ship", after=["prep"], expected=4, deadline=10)]
    _, rec = run(specs, policy="edf")
    assert rec.starts() == ["prep", "other", "ship"]
    _, rec = run(specs, policy="fifo")
    assert rec.starts() == ["other", "prep", "ship"]


def test_critical_path_starts_the_longest_chain_first(spec, run):
    specs = [spec("solo", expected=2.5), spec("a", expected=1), spec("b", after=["a"], expected=1),
             spec("c", after=["b"], expected=1)]
    _, rec = run(specs, policy="critical_path")
    assert rec.starts() == ["a", "solo", "b", "c"]   # rank a = 3 > solo = 2.5 > b = 2


def ticking(clock: VirtualClock, seconds: float):
    def fn(**_):
        clock.advance(seconds)
    return fn


def stream(spec, clock, n: int, priority: int):
    """``low`` (priority 0, ready at once) and a chain of ``n`` one-second tasks of
    ``priority``: each is ready as the one before it ends, so one is always ready."""
    specs = [spec("low", ticking(clock, 1.0))]
    for k in range(n):
        specs.append(spec(f"high{k}", ticking(clock, 1.0), priority=priority,
                          after=[f"high{k - 1}"] if k else []))
    return specs


def start_time(rec, name: str) -> float:
    return next(ev[6] for ev in rec.log if ev[2] == name and ev[5] == "running")


def test_aging_starts_a_starved_task_within_the_stated_bound(spec, run):
    clock = VirtualClock()
    _, rec = run(stream(spec, clock, 50, priority=5), clock=clock, policy="priority")
    assert start_time(rec, "low") == 50.0      # waits for as long as the stream lasts
    for rate in (1.0, 2.5, 0.5):
        clock = VirtualClock()
        _, rec = run(stream(spec, clock, 50, priority=5), clock=clock, policy=Aging(rate=rate))
        bound = (5 - 0) / rate + 1.0           # (P - p) / rate, then the running task ends
        assert start_time(rec, "low") <= bound, rate


def test_aging_with_a_cap_ranks_capped_tasks_by_ready_order(spec, run):
    # first (at the cap, 3) goes first; by t=10 b and c have reached the cap and
    # rank as one, by ready order (uncapped, c's 12 would beat b's 11); vip's 9 is
    # above the cap and never ages
    def starts(policy):
        clock = VirtualClock()
        specs = [spec("first", ticking(clock, 10.0), priority=3), spec("b", priority=1),
                 spec("c", priority=2), spec("vip", after=["first"], priority=9)]
        return run(specs, clock=clock, policy=policy)[1].starts()

    assert starts(Aging(rate=1.0, cap=3)) == ["first", "vip", "b", "c"]
    assert starts(Aging(rate=1.0)) == ["first", "c", "b", "vip"]   # 12, 11, then 9


def inversion(spec):
    """urgent (10) needs prep (0); five independent medium tasks (5) are ready too."""
    return ([spec("prep", priority=0), spec("urgent", after=["prep"], priority=10)]
            + [spec(f"medium{k}", priority=5) for k in range(5)])


def test_priority_inheritance_removes_the_inversion(spec, run):
    _, rec = run(inversion(spec))
    # without inheritance urgent waits behind every medium task (the inversion)
    assert rec.starts() == [f"medium{k}" for k in range(5)] + ["prep", "urgent"]
    _, rec = run(inversion(spec), inherit_priority=True)
    assert rec.starts() == ["prep", "urgent"] + [f"medium{k}" for k in range(5)]
    _, rec = run(inversion(spec), inherit_priority=True, policy=Aging(rate=0.1))
    assert rec.starts()[:2] == ["prep", "urgent"]


def test_expected_durations_come_from_the_declaration_the_history_or_the_default(spec):
    specs = [spec("declared", expected=2.0), spec("known"), spec("new")]
    info = RunInfo(Graph([s.name for s in specs], [()] * 3), specs, VirtualClock(),
                   history={"known": 7.5, "declared": 99.0})
    assert info.expected == [2.0, 7.5, DEFAULT_EXPECTED]
    assert info.source == ["declared", "history", "default"]


def test_bad_policies_say_how_to_fix_them():
    with pytest.raises(ValueError, match=r"^Aging: rate must be a finite number >= 0 \(priority "
                                         r"points per second ready\), got -1; e\.g\. "
                                         r"nbflow\.policies\.Aging\(rate=1\.0, cap=10\)$"):
        Aging(rate=-1)
    with pytest.raises(ValueError, match="^Aging: cap must be a finite number, got 'high'"):
        Aging(cap="high")
    with pytest.raises(ValueError, match="Aging: rate must be a finite number"):
        Aging(rate=float("nan"))
    with pytest.raises(TypeError, match=r"^policy must be a name \(aging, critical_path, edf, "
                                        r"fifo, priority, sjf\) or a policy object such as "):
        make_policy(42)
    assert isinstance(make_policy(EarliestDeadlineFirst()), EarliestDeadlineFirst)




class GivenKeys(Keyed):
    name = "given"

    def __init__(self, keys):
        self._keys = keys

    def keys(self, run):
        return self._keys


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.integers(0, 2) | st.floats(0, 3), min_size=1, max_size=12),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 11), st.integers(0, 1)), max_size=60))
def test_fixed_keys_pop_smallest_first_ties_by_ready_order_across_queues(keys, ops, spec):
    # Two queues of one run (as with two pools), the better head taken each
    # time, against a model: smallest key first, then the earliest push.
    n = len(keys)
    specs = [spec(f"t{i}") for i in range(n)]
    make = GivenKeys(keys).prepare(RunInfo(Graph([s.name for s in specs], [()] * n), specs,
                                           VirtualClock()))
    queues, model, seq = [make(), make()], [], 0
    for push, task, which in ops:
        i = task % n
        if push and all(q != i for _k, _s, q in model):
            queues[which].push(i)
            model.append((keys[i], seq, i))
            seq += 1
        elif not push and model:
            q = min((q for q in queues if len(q)), key=lambda q: q.head())
            best = min(model)
            assert q.peek() == best[2]
            assert q.pop() == best[2]
            model.remove(best)
        assert sorted(i for q in queues for _r, i in q.ranked()) == sorted(i for *_, i in model)
        assert sum(map(len, queues)) == len(model)
