"""The benchmark workloads: task graphs as ``(names, deps)`` with fixed seeds.

A graph is two parallel lists, the task names in declaration order and, for each,
the list of names it depends on; every runner (nbflow, graphlib, dask) is fed the
same lists.  Generators are deterministic: the same arguments give the same graph
on every machine and Python version (``random.Random`` with a fixed seed).

Each :class:`Workload` has a full size (the figures in ``README.md``) and a tiny
size (``--tiny``, and the smoke test) that goes through the same code in seconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from nbflow import current_task

Shape = tuple[list[str], list[list[str]]]

SEED = 20261126


def names_for(n: int) -> list[str]:
    """``t0 .. t{n-1}``: the task names of an ``n``-task graph."""
    return [f"t{i}" for i in range(n)]


def wide(n: int) -> Shape:
    """``n`` independent tasks."""
    return names_for(n), [[] for _ in range(n)]


def chain(n: int) -> Shape:
    """``n`` tasks in one chain: each depends on the one before."""
    names = names_for(n)
    return names, [[]] + [[names[i - 1]] for i in range(1, n)]


def layered(n: int, levels: int, seed: int = SEED) -> Shape:
    """``n`` tasks in ``levels`` levels of (nearly) equal width.

    Each task after the first level depends on 1 to 3 distinct tasks of the level
    just before it, drawn at random, so its Kahn level is exactly its layer.
    """
    if not 0 < levels <= n:
        raise ValueError(f"need 0 < levels <= n, got levels={levels}, n={n}")
    rng = random.Random(seed)
    names = names_for(n)
    deps: list[list[str]] = []
    previous: list[str] = []
    start = 0
    for k in range(levels):
        width = n // levels + (1 if k < n % levels else 0)
        layer = names[start:start + width]
        for _ in layer:
            deps.append(rng.sample(previous, min(len(previous), rng.randint(1, 3)))
                        if previous else [])
        previous, start = layer, start + width
    return names, deps


def random_dag(n: int, edges: int, window: int, seed: int = SEED) -> Shape:
    """``n`` tasks and exactly ``edges`` dependencies, each on one of the ``window`` tasks before.

    Edges are spread as evenly as the first tasks allow (task ``i`` can have at
    most ``min(i, window)`` distinct dependencies); the remainder goes to the last
    tasks.  Dependencies only point backwards, so the graph is acyclic.
    """
    capacity = [min(i, window) for i in range(n)]
    if edges > sum(capacity):
        raise ValueError(f"{edges} edges do not fit in {n} tasks with window {window}")
    rng = random.Random(seed)
    counts = [min(c, edges // n) for c in capacity]
    left = edges - sum(counts)
    for i in range(n - 1, -1, -1):
        extra = min(left, capacity[i] - counts[i])
        counts[i] += extra
        left -= extra
        if not left:
            break
    names = names_for(n)
    deps = [[names[j] for j in rng.sample(range(i - capacity[i], i), counts[i])]
            for i in range(n)]
    return names, deps


def noop(*_results):
    """The no-op task that returns None (the second line of each run workload).

    It takes any positional arguments because dask passes dependency results positionally.
    """
    return None


MOD = 1_000_003


def value(*parts):
    """A task that returns a value made of its dependencies' values, as real tasks do.

    Dask and the graphlib baseline pass the dependencies' values positionally.
    """
    return (sum(parts) + 1) % MOD


def value_of(parts=()):
    """:func:`value` as nbflow calls it: ``inputs={"parts": deps}`` passes the list of
    the dependencies' values."""
    return (sum(parts) + 1) % MOD


def sleeper(seconds: float) -> Callable[..., None]:
    """A task that sleeps ``seconds`` (a stand-in for I/O-bound work).

    The OS sleeps longer than asked (2-5% at 10 ms on the benchmark VM, more
    when it is busy), so in nbflow's runs each task also records how long it
    really slept in the function's ``slept`` dict, by task name: that is the
    work the scheduling bound is made of.
    """
    slept: dict[str, float] = {}

    def sleep(*_results):
        start = time.perf_counter()
        time.sleep(seconds)
        try:
            name = current_task().name
        except RuntimeError:   # a baseline's call: nothing to record
            return
        slept[name] = time.perf_counter() - start
    sleep.slept = slept  # type: ignore[attr-defined]
    return sleep


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark table.

    ``kind`` says how it is measured: ``run`` (wall time of a whole run against the
    baselines), ``sleep`` (makespan against the scheduling bound), ``levelling``
    (graph construction against graphlib) or ``memory`` (engine bytes per task).
    ``limit`` is the target: the highest passing ratio, or bytes per task.
    """

    name: str
    kind: str
    what: str
    full: Callable[[], Shape]
    tiny: Callable[[], Shape]
    limit: float
    beat_dask: bool = False
    task_seconds: float = 0.0
    #: tasks return values made of their dependencies' values (else None).
    values: bool = False
    #: ``(declaration + run) / baseline`` must stay at or below this (run workloads).
    total_limit: float | None = None

    def shape(self, tiny: bool = False) -> Shape:
        return (self.tiny if tiny else self.full)()

    def task(self) -> Callable[..., object]:
        """The task as dask and the baseline call it."""
        if self.task_seconds:
            return sleeper(self.task_seconds)
        return value if self.values else noop

    def nbflow_task(self, fn: Callable[..., object]) -> Callable[..., object]:
        """The same task as nbflow calls it (by keyword), given :meth:`task`'s ``fn``."""
        return value_of if fn is value else fn


WORKERS = 8

WORKLOADS = [
    Workload("wide", "run", "10,000 independent tasks returning an int",
             lambda: wide(10_000), lambda: wide(50), limit=2.0, beat_dask=True, values=True,
             total_limit=3.0),
    Workload("layered", "run",
             "10,000 tasks in 100 levels, each taking the values of 1-3 deps on the previous "
             "level and returning an int",
             lambda: layered(10_000, 100), lambda: layered(50, 5), limit=2.0, beat_dask=True,
             values=True, total_limit=3.0),
    Workload("chain", "run", "1,000 tasks in one chain, each taking the previous value",
             lambda: chain(1_000), lambda: chain(50), limit=1.3, values=True),
    Workload("wide-none", "run", "wide, with no-op tasks returning None",
             lambda: wide(10_000), lambda: wide(50), limit=2.0, beat_dask=True),
    Workload("layered-none", "run", "layered, with no-op tasks returning None",
             lambda: layered(10_000, 100), lambda: layered(50, 5), limit=2.0, beat_dask=True),
    Workload("chain-none", "run", "chain, with no-op tasks returning None",
             lambda: chain(1_000), lambda: chain(50), limit=1.3),
    Workload("sleep", "sleep", "200 tasks x 10 ms in 10 levels (1-3 deps each), 8 workers",
             lambda: layered(200, 10), lambda: layered(50, 5), limit=1.05, task_seconds=0.010),
    Workload("levelling", "levelling",
             "levels + cycle check of 100,000 tasks / 300,000 deps (each on one of the "
             "1,000 tasks before it)",
             lambda: random_dag(100_000, 300_000, 1_000), lambda: random_dag(50, 100, 10),
             limit=0.5),
    Workload("memory", "memory", "engine state of a run of 100,000 independent no-op tasks",
             lambda: wide(100_000), lambda: wide(50), limit=2048),
    Workload("simulate", "simulate",
             "simulating layered (10,000 tasks, 1-7 s each) on 8 workers, against a minimal "
             "heap-based list scheduler; and at least 100,000 simulated tasks per second",
             lambda: layered(10_000, 100), lambda: layered(50, 5), limit=3.0),
]

#: The simulate workload's other target: simulated tasks per second, at least.
SIMULATED_PER_SECOND = 100_000


def sim_durations(names: list[str]) -> list[float]:
    """The simulate workload's task durations: 1 to 7 seconds, by position."""
    return [1.0 + (i % 7) for i in range(len(names))]

BY_NAME = {w.name: w for w in WORKLOADS}
