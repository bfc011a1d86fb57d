"""Published scheduling results, reproduced exactly by ``flow.simulate``.

Each test cites its source and asserts the numbers the source prints.
"""

from __future__ import annotations

import nbflow
from nbflow.policies import Aging
from nbflow.simulation import Simulation


def one_machine(name: str, lengths: dict[str, float], policy: str, **per_task) -> Simulation:
    """The tasks, declared in the given order, simulated on one worker."""
    flow = nbflow.Flow(name)
    for task in lengths:
        flow.task(lambda: None, name=task, **{k: v[task] for k, v in per_task.items()})
    return flow.simulate(workers=1, policy=policy, durations=lengths)


def test_sjf_and_fcfs_waiting_times_of_the_operating_systems_textbook():
    """A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System Concepts* (9th ed.,
    Wiley 2013), ch. 6 "CPU Scheduling" (ch. 5 in the 10th ed.), section on
    shortest-job-first scheduling: P1..P4 with bursts 6, 8, 7, 3 ms, all arriving at 0.
    SJF runs P4, P1, P3, P2 and waits 3, 16, 9, 0 ms: average 7 ms; FCFS in the
    order P1..P4 would average 10.25 ms."""
    bursts = {"P1": 6, "P2": 8, "P3": 7, "P4": 3}
    sjf = one_machine("sjf", bursts, "sjf", expected=bursts)   # SJF knows each burst
    assert sjf.order == ["P4", "P1", "P3", "P2"]
    assert {t: r["wait"] for t, r in sjf.tasks().items()} == {"P1": 3, "P2": 16, "P3": 9,
                                                               "P4": 0}
    assert sjf.mean_wait == 7
    fcfs = one_machine("fcfs", bursts, "fifo")
    assert fcfs.order == ["P1", "P2", "P3", "P4"] and fcfs.mean_wait == 10.25


def test_edd_minimises_the_maximum_lateness_in_buttazzos_examples():
    """Jackson's rule (J. R. Jackson, "Scheduling a production line to minimize
    maximum tardiness", Research Report 43, Management Science Research Project,
    UCLA, 1955): on one machine, earliest due date first minimises the maximum
    lateness.  Instances: G. C. Buttazzo, *Hard Real-Time Computing Systems* (3rd ed.,
    Springer 2011), section 3.2.1, Example 1 (Figure 3.2: C = 1, 1, 1, 3, 2 and
    d = 3, 10, 7, 8, 5: L_max = L4 = -1, every task on time) and Example 2
    (Figure 3.3: C = 1, 2, 1, 4, 2 and d = 2, 5, 4, 8, 6: L_max = L4 = 2, J4 late)."""
    for lengths, due, order, l_max in [
        ([1, 1, 1, 3, 2], [3, 10, 7, 8, 5], ["J1", "J5", "J3", "J4", "J2"], -1),
        ([1, 2, 1, 4, 2], [2, 5, 4, 8, 6], ["J1", "J3", "J2", "J5", "J4"], 2),
    ]:
        names = [f"J{k}" for k in range(1, 6)]
        edd = one_machine("edd", dict(zip(names, lengths)), "edf",
                          deadline=dict(zip(names, due)))
        assert edd.order == order
        lateness = edd.lateness()
        assert edd.max_lateness == l_max == lateness["J4"]
        assert edd.deadline_misses == ([] if l_max <= 0 else ["J4"])
        worst_fifo = one_machine("fifo", dict(zip(names, lengths)), "fifo",
                                 deadline=dict(zip(names, due))).max_lateness
        assert worst_fifo > l_max   # declaration order is worse here; EDD is optimal


def test_aging_bounds_the_wait_that_priority_leaves_unbounded():
    """docs/scheduling.md: under a stream of tasks of priority at most P, a ready task
    of priority p outranks every newcomer after (P - p) / rate seconds.  Two clients
    each send their next priority-5 request when the last is answered (2 s each);
    the priority-0 report waits for the whole stream under ``priority`` and
    ceil((5 - 0) / rate / 2) * 2 seconds under aging."""
    def stream(length: int, policy) -> float:
        flow = nbflow.Flow("stream")
        flow.task(lambda: None, name="report", priority=0)
        for client in "ab":
            for k in range(length):
                flow.task(lambda: None, name=f"{client}{k}", priority=5,
                          after=[f"{client}{k - 1}"] if k else [])
        sim = flow.simulate(workers=2, policy=policy, durations={"report": 3}, default=2)
        return sim.tasks()["report"]["wait"]

    assert [stream(n, "priority") for n in (5, 10, 20)] == [10, 20, 40]
    for rate, wait in [(1.0, 6), (0.5, 10), (2.0, 4)]:
        assert stream(20, Aging(rate=rate)) == wait
        assert (5 - 0) / rate <= wait <= (5 - 0) / rate + 2
    assert stream(20, Aging(rate=1.0, cap=4)) == 40   # a cap below P: starved again
