"""How nbflow is measured: through its public API, with persistence on.

Declaring the tasks happens outside the timed region; ``flow.run(workers=8)`` is
timed whole, which includes building and validating the graph, recording the run
and its tasks, running every task, and waiting for the store's writer thread to
commit the last event.  The store is opened, and a small warm-up run made, before
anything is timed, so imports and first connections are not counted.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import NamedTuple

import nbflow
from nbflow.core.engine import Engine
from nbflow.executors import SyncExecutor

from .workloads import chain, noop, wide


def declare(name: str, names: Sequence[str], deps: Sequence[Sequence[str]],
            fn: Callable[..., object], store=None, pass_values: bool = False) -> nbflow.Flow:
    """A flow with one task ``fn`` per name, depending on its ``deps``.

    With ``pass_values`` each task takes its dependencies' values as one list
    (``inputs={"parts": deps}``), else the dependencies are ``after=``.  With a
    ``store`` (a path or a ``Store``), the store is opened here, so that opening
    it is not timed.
    """
    flow = nbflow.Flow(name, store=store)
    task = flow.task
    for name_, after in zip(names, deps):
        if pass_values and after:
            task(fn, name=name_, inputs={"parts": after})
        else:
            task(fn, name=name_, after=after)
    if store is not None:
        flow.store  # noqa: B018 (the property opens it)
    return flow


def declare_timed(name: str, names: Sequence[str], deps: Sequence[Sequence[str]],
                  fn: Callable[..., object], store, pass_values: bool) -> Timing:
    """Declare the flow (every ``flow.task`` call, then its first ``build``) on the clock;
    the flow is the result.  ``store`` is a :class:`nbflow.store.Store` opened before."""
    def declare_and_build() -> nbflow.Flow:
        flow = declare(name, names, deps, fn, store, pass_values)
        flow.build()
        return flow
    return timed(declare_and_build)


def warm_up(store: str, workers: int) -> None:
    """A small run on ``store`` so the timed runs pay for no import or first connection."""
    names, deps = chain(10)
    more, _ = wide(30)
    flow = declare("warm-up", names + [f"w{m}" for m in more], deps + [[] for _ in more],
                   noop, store)
    try:
        check(flow.run(workers=workers))
    finally:
        flow.store.close()


def check(run) -> None:
    """Refuse to report a time for a run that did not do the whole job."""
    if run.state != "succeeded":
        raise RuntimeError(f"benchmark run {run.id} ended {run.state}: {run.counts()}")


class Timing(NamedTuple):
    """One timed call: wall seconds, CPU seconds of the whole process, what it returned."""

    seconds: float
    cpu: float
    result: object


def timed(fn: Callable[..., object], *args) -> Timing:
    """Time ``fn(*args)``.

    A full collection runs first, so no earlier garbage is collected on the clock.
    The process CPU time counts every thread, and hardly depends on what else
    the machine is running, unlike the wall time.
    """
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    result = fn(*args)
    return Timing(time.perf_counter() - start, time.process_time() - cpu, result)


def time_flow(flow: nbflow.Flow, workers: int) -> Timing:
    """Time one blocking ``flow.run`` (the run is the result); raises unless it all succeeded."""
    timing = timed(lambda: flow.run(workers=workers))
    check(timing.result)
    return timing


def makespan(run) -> float:
    """First start to last finish of ``run``, read from its recorded events."""
    events = run.events()
    starts = events["at"][events["to_state"] == "running"]
    ends = events["at"][events["to_state"] == "succeeded"]
    if starts.empty or ends.empty:
        raise RuntimeError(f"run {run.id} recorded no start or no finish")
    return (ends.max() - starts.min()).total_seconds()


def scheduling_bound(flow: nbflow.Flow, durations: dict[str, float], workers: int) -> float:
    """The shortest possible makespan: ``max(critical path, total work / workers)``,
    for the tasks' ``durations`` by name."""
    graph, _specs = flow.build()
    critical, _path = graph.critical_path(durations)
    return max(critical, sum(durations.values()) / workers)


def build_graph(names: Sequence[str], deps: Sequence[Sequence[str]]):
    """What nbflow does to level a graph: construct it (validation, Kahn levels, cycle check)."""
    from nbflow.core.graph import Graph
    return Graph(names, deps)


class NullSink:
    """An engine sink that drops every batch."""

    def events(self, batch) -> None:
        pass

    def logs(self, batch) -> None:
        pass


def engine_memory(names: Sequence[str], deps: Sequence[Sequence[str]]) -> tuple[float, float]:
    """Peak bytes per task that :class:`~nbflow.core.engine.Engine` allocates for one run.

    The graph and specs are built first and their size is subtracted: what is left
    is the engine's own run state, ready queue, event buffers and outcomes at their
    peak, with the synchronous executor and a sink that keeps nothing.  Returns
    ``(engine bytes per task, graph and specs bytes per task)``.
    """
    flow = declare("memory", names, deps, noop)
    n = len(names)
    gc.collect()
    tracemalloc.start()
    try:
        graph, specs = flow.build()
        graph_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        engine = Engine(graph, specs, SyncExecutor(), sinks=[NullSink()])
        engine.run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if engine.unfinished:
        raise RuntimeError(f"the memory run left {engine.unfinished} tasks unfinished")
    return (peak - graph_bytes) / n, graph_bytes / n


def simulate_flow(flow: nbflow.Flow, durations: Sequence[float], workers: int) -> float:
    """Simulate ``flow`` (built before) with ``durations`` by position; its makespan."""
    from nbflow.core.simulate import durations_of, simulate
    graph, specs = flow.build()
    duration = durations_of(dict(zip(graph.names, durations)), graph.names)
    return simulate(graph, specs, workers=workers, policy="priority",
                    duration=duration).makespan
