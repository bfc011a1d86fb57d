"""The benchmark harness at tiny sizes: it must keep working, and measure the right thing.

No timing is asserted here.  What is checked: the graphs are the ones the README
describes, every runner runs every task once and after its dependencies, the
levelling baseline finds nbflow's levels, and the runner and profiler complete.
"""

from __future__ import annotations

import itertools
import threading

import pytest

from benchmarks import baselines, measure, policies, profile_run, run
from benchmarks.workloads import (
    BY_NAME,
    WORKERS,
    WORKLOADS,
    chain,
    layered,
    noop,
    random_dag,
    value,
    value_of,
    wide,
)
from nbflow.core.graph import Graph
from nbflow.store import Store


@pytest.fixture
def declare(tmp_path):
    """``measure.declare`` on a store in ``tmp_path``; the stores are closed afterwards."""
    flows = []

    def make(name, names, deps, fn):
        flows.append(measure.declare(name, names, deps, fn, str(tmp_path / "bench.db")))
        return flows[-1]

    yield make
    for flow in flows:
        flow.store.close()


def _level_sets(levels):
    return [sorted(level) for level in levels]


def test_full_size_graphs_are_the_ones_described():
    names, deps = BY_NAME["wide"].shape()
    assert len(names) == 10_000 and not any(deps)
    names, deps = BY_NAME["chain"].shape()
    assert len(names) == 1_000 and len(Graph(names, deps).levels()) == 1_000
    names, deps = BY_NAME["layered"].shape()
    graph = Graph(names, deps)
    assert len(names) == 10_000 and len(graph.levels()) == 100
    assert all(1 <= len(d) <= 3 for d in deps[100:]) and not any(deps[:100])
    names, deps = BY_NAME["levelling"].shape()
    assert len(names) == 100_000 and sum(map(len, deps)) == 300_000
    assert len(BY_NAME["memory"].shape()[0]) == 100_000


def test_generators_are_deterministic_and_layered_deps_point_one_level_back():
    assert layered(300, 7) == layered(300, 7)
    assert random_dag(200, 500, 20) == random_dag(200, 500, 20)
    names, deps = layered(300, 7)
    level = Graph(names, deps).level
    index = {n: i for i, n in enumerate(names)}
    assert all(level[index[d]] == level[i] - 1 for i, ds in enumerate(deps) for d in ds)


def test_generators_refuse_impossible_shapes():
    with pytest.raises(ValueError, match="need 0 < levels <= n, got levels=20, n=10"):
        layered(10, 20)
    with pytest.raises(ValueError, match="100 edges do not fit in 10 tasks with window 3"):
        random_dag(10, 100, 3)


def _assert_dependency_order(names, deps, ticket_of):
    # Each task took a ticket from one shared counter when it ran: a dependency's
    # ticket must be smaller than its dependent's, and no ticket may repeat.
    tickets = [ticket_of(n) for n in names]
    assert len(set(tickets)) == len(names)
    index = {n: i for i, n in enumerate(names)}
    for i, ds in enumerate(deps):
        for d in ds:
            assert tickets[index[d]] < tickets[i], (names[i], d)


@pytest.mark.parametrize("shape", [wide(50), chain(50), layered(50, 5)],
                         ids=["wide", "chain", "layered"])
def test_every_runner_runs_each_task_once_after_its_dependencies(shape, declare):
    names, deps = shape
    counter = itertools.count()

    def ticket(*_results):
        return next(counter)

    results = baselines.graphlib_threads(names, deps, ticket, WORKERS)
    _assert_dependency_order(names, deps, results.__getitem__)
    values = dict(zip(names, baselines.dask_threaded(names, deps, ticket, WORKERS)))
    _assert_dependency_order(names, deps, values.__getitem__)
    flow = declare("smoke", names, deps, ticket)
    nb_run = measure.time_flow(flow, WORKERS).result
    _assert_dependency_order(names, deps, nb_run.result)
    assert next(counter) == 3 * len(names)


@pytest.mark.parametrize("shape", [wide(50), chain(50), layered(50, 5)],
                         ids=["wide", "chain", "layered"])
def test_every_runner_passes_the_dependencies_values(shape, tmp_path):
    """The value workloads: each task gets its dependencies' values (nbflow by
    ``inputs=``, the others positionally), so all three compute the same numbers."""
    names, deps = shape
    expected = baselines.graphlib_threads(names, deps, value, WORKERS)
    assert dict(zip(names, baselines.dask_threaded(names, deps, value, WORKERS))) == expected
    store = Store(str(tmp_path / "values.db"))
    try:
        timing = measure.declare_timed("values", names, deps, value_of, store, pass_values=True)
        nb_run = measure.time_flow(timing.result, WORKERS).result
        assert {n: nb_run.result(n) for n in names} == expected
        assert timing.seconds > 0
    finally:
        store.close()
    assert len(set(expected.values())) > 1 or not any(deps)


def test_graphlib_levels_are_nbflow_levels():
    for names, deps in (random_dag(60, 150, 8), layered(60, 6), chain(20), wide(20)):
        assert _level_sets(baselines.graphlib_levels(names, deps)) == \
            _level_sets(measure.build_graph(names, deps).levels())


def test_a_failed_run_is_not_timed(declare):
    def boom():
        raise RuntimeError("boom")

    flow = declare("smoke", ["a"], [[]], boom)
    with pytest.raises(RuntimeError, match=r"benchmark run \S+ ended failed: \{'failed': 1\}"):
        measure.time_flow(flow, WORKERS)


def test_makespan_and_bound_of_the_tiny_sleep_workload(declare):
    w = BY_NAME["sleep"]
    names, deps = w.shape(tiny=True)
    fn = w.task()
    flow = declare("sleep", names, deps, fn)
    bound = measure.scheduling_bound(flow, dict.fromkeys(names, w.task_seconds), WORKERS)
    # 5 levels of 10 ms on the critical path, 50 x 10 ms of work over 8 workers
    assert bound == pytest.approx(max(5 * 0.010, 50 * 0.010 / WORKERS))
    sleep_run = measure.time_flow(flow, WORKERS).result
    # A chain of 5 sleeps of 10 ms cannot finish sooner than 50 ms.
    assert measure.makespan(sleep_run) >= 5 * 0.010
    # every task recorded what it slept, at least what it asked for; the bound
    # made of it is no shorter than the nominal one, and the run no shorter still
    assert sorted(fn.slept) == sorted(names) and min(fn.slept.values()) >= w.task_seconds
    slept = measure.scheduling_bound(flow, fn.slept, WORKERS)
    assert bound <= slept <= measure.makespan(sleep_run)


def test_engine_memory_counts_the_engine_not_the_graph():
    per_task, graph_per_task = measure.engine_memory(*wide(50))
    assert per_task > 0 and graph_per_task > 0


@pytest.mark.slow
def test_runner_prints_a_row_per_workload(capsys):
    rows = run.main(["--tiny", "--repeat", "1", "--markdown"])
    assert [r.workload.name for r in rows] == [w.name for w in WORKLOADS]
    out = capsys.readouterr().out
    assert ("| workload | nbflow | baseline | ratio | dask | declare | declare+run | target "
            "| result |") in out
    for w in WORKLOADS:
        assert f"| {w.name} |" in out
    assert all(r.nbflow > 0 for r in rows)


@pytest.mark.slow
def test_the_policy_runner_measures_every_policy_and_the_pools(capsys):
    rows = policies.main(["--tiny", "--repeat", "1"])
    expected = [*policies.POLICIES, *(f"{p}+2 pools" for p in policies.POOLED)]
    assert [r[1] for r in rows] == expected * 2 and {r[0] for r in rows} == {"wide", "layered"}
    out = capsys.readouterr().out
    assert "load average" in out and out.count("CPU x fifo") == 1   # one table
    assert all(r[2] > 0 for r in rows)


def test_runner_refuses_a_bad_repeat(capsys):
    with pytest.raises(SystemExit):
        run.main(["--repeat", "0"])
    assert "--repeat must be at least 1, got 0" in capsys.readouterr().err


def test_profiler_finds_the_store_writer_thread(capsys, declare):
    # The CPU split reads the writer thread by name: pin that name here.
    measure.check(declare("smoke", *chain(5), noop).run(workers=WORKERS))
    assert profile_run.WRITER_THREAD in {t.name for t in threading.enumerate()}
    profile_run.main(["chain", "--tiny", "--top", "5"])
    out = capsys.readouterr().out
    assert "store writer CPU" in out and "by tottime" in out
    try:
        import yappi  # noqa: F401
    except ImportError:
        assert "yappi is not installed" in out
    else:
        assert f"{profile_run.WRITER_THREAD}: top 5 functions" in out


def test_the_list_scheduler_baseline_does_the_simulations_job():
    # A fair baseline does the simulation's whole job: who ran what when, after
    # its dependencies, never more at once than workers, one task at a time per
    # worker, each for its duration.
    names, deps = layered(60, 6)
    durations = [1.0 + (i % 7) for i in range(len(names))]
    makespan, start, finish, worker = baselines.list_schedule(names, deps, durations, 3)
    at = {name: i for i, name in enumerate(names)}
    for i, ds in enumerate(deps):
        assert finish[i] - start[i] == durations[i]
        assert all(finish[at[d]] <= start[i] for d in ds)
        assert 0 <= worker[i] < 3
        assert sum(start[j] <= start[i] < finish[j] for j in range(len(names))) <= 3
    for k in range(3):
        lane = sorted((start[i], finish[i]) for i in range(len(names)) if worker[i] == k)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(lane))
    assert makespan == max(finish)
