"""What nbflow is compared with: the standard library and dask on the same graph.

Each runner is written the way a user of that tool would write it, with no
nbflow-specific help: the graph is built inside the runner (nbflow's ``run``
builds and validates its graph too), and every result is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter


def graphlib_threads(names: Sequence[str], deps: Sequence[Sequence[str]],
                     fn: Callable[..., object], workers: int) -> dict[str, object]:
    """Run ``fn`` once per task with ``graphlib`` and a ``ThreadPoolExecutor``.

    The idiomatic loop: submit every ready task with its dependencies' results
    as arguments, wait for the first completion, mark what finished as done.
    Returns each task's result by name.

    Raises
    ------
    graphlib.CycleError
        the graph has a cycle.
    """
    graph = dict(zip(names, deps))
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    results: dict[str, object] = {}
    running: dict = {}
    with ThreadPoolExecutor(workers) as pool:
        while sorter.is_active():
            for name in sorter.get_ready():
                running[pool.submit(fn, *[results[d] for d in graph[name]])] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                results[name] = future.result()
                sorter.done(name)
    return results


def dask_graph(names: Sequence[str], deps: Sequence[Sequence[str]],
               fn: Callable[..., object]) -> dict[str, tuple]:
    """The same graph as a dask graph: each task is ``(fn, *its dependencies)``."""
    return {name: (fn, *ds) for name, ds in zip(names, deps)}


def dask_threaded(names: Sequence[str], deps: Sequence[Sequence[str]],
                  fn: Callable[..., object], workers: int) -> tuple:
    """Run the graph with ``dask.threaded.get`` on ``workers`` threads; every task's result."""
    from dask.threaded import get
    return get(dask_graph(names, deps, fn), list(names), num_workers=workers)


def graphlib_levels(names: Sequence[str], deps: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Kahn levels with graphlib: each ``get_ready()`` batch, marked done whole, is a level.

    ``prepare()`` is graphlib's cycle check, so this does what ``nbflow.core.graph.Graph``
    construction does.
    """
    sorter = TopologicalSorter(dict(zip(names, deps)))
    sorter.prepare()
    levels = []
    while sorter.is_active():
        level = sorter.get_ready()
        levels.append(level)
        sorter.done(*level)
    return levels


def list_schedule(names: Sequence[str], deps: Sequence[Sequence[str]],
                  durations: Sequence[float], workers: int
                  ) -> tuple[float, list[float], list[float], list[int]]:
    """A minimal hand-written list scheduler: the makespan of ``names`` on ``workers``,
    and each task's start, finish and worker (by position).

    Ready tasks wait in a heap by declaration order, running ones in a heap by
    finishing time; every ending of one instant is applied before anything
    starts, as in :mod:`nbflow.core.simulate`; a starting task takes the worker
    freed last.  What a teacher would write in an afternoon, with nothing of
    nbflow's: no events, no states, no retries.  It does the simulation's job
    (dependencies, workers, who ran what when) and no more.
    """
    import heapq
    index = {name: i for i, name in enumerate(names)}
    waiting = [len(ds) for ds in deps]
    succs: list[list[int]] = [[] for _ in names]
    for i, ds in enumerate(deps):
        for d in ds:
            succs[index[d]].append(i)
    ready = [i for i, n in enumerate(waiting) if not n]
    heapq.heapify(ready)
    start, finish, worker = [0.0] * len(names), [0.0] * len(names), [0] * len(names)
    running: list[tuple[float, int]] = []
    now, free = 0.0, list(range(workers - 1, -1, -1))
    while ready or running:
        while free and ready:
            i = heapq.heappop(ready)
            start[i], worker[i] = now, free.pop()
            heapq.heappush(running, (now + durations[i], i))
        now = running[0][0]
        while running and running[0][0] <= now:
            _, i = heapq.heappop(running)
            finish[i] = now
            free.append(worker[i])
            for s in succs[i]:
                waiting[s] -= 1
                if not waiting[s]:
                    heapq.heappush(ready, s)
    return now, start, finish, worker
