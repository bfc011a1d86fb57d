"""nbflow as a Dask scheduler: ``dask.compute(x, scheduler=nbflow.dask.get)``.

Any Dask graph (delayed, arrays, bags; dataframes where pyarrow is
installed) runs through nbflow's engine: each key is a task, Dask's own
ordering (``dask.order``) becomes the tasks' priorities, and nbflow's retries
and timeouts apply to every key.

By default nothing is recorded: the engine runs the graph on a thread pool
with no store and no sink at all, so a graph of 100,000 chunks costs about
what ``dask.threaded.get`` costs.  ``store=`` records the run like any flow's
(every key's events and saved results, ``nbflow runs`` lists it), and
``dashboard=True`` shows the run's live dashboard (large graphs folded by
level) in the notebook.

Keys become task names as text (``('sum', 0)`` is the task ``"('sum', 0)"``).
Constant nodes of the graph are not tasks: their values are handed to the
tasks that read them.  Like ``dask.threaded.get``, the first task to fail for
good stops the run and its own exception reaches the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .core.engine import Engine
from .core.graph import Graph
from .core.spec import TaskSpec
from .core.states import State
from .executors import make_executor
from .extras import need

__all__ = ["get"]


def get(dsk: Any, keys: Any, *, num_workers: int | None = None, executor: Any = "threads",
        retries: int = 0, timeout: float | None = None, store: Any = None,
        dashboard: bool = False, name: str = "dask", **_ignored: Any) -> Any:
    """Compute ``keys`` of the Dask graph ``dsk``; the ``get`` of Dask's scheduler protocol.

    Parameters
    ----------
    dsk
        A graph mapping, a ``HighLevelGraph`` or anything with ``__dask_graph__``.
    keys
        A key, or a (nested) list of keys: the result has the same shape, lists
        turned into tuples, as with Dask's own schedulers.
    num_workers
        Attempts run at once (default: the executor's default).
    executor
        ``"threads"`` (default), ``"processes"``, ``"sync"`` or an executor.
    retries, timeout
        Given to every key's task (see ``Flow.task``).
    store
        Record the run there (a URL, a SQLite path, a ``Store``); None records nothing.
    dashboard
        Show the run's live dashboard (a store is then opened: ``store`` or the
        default one).
    name
        The flow name the recorded run carries.

    Other keyword arguments that Dask passes to every scheduler are accepted and ignored.

    Raises
    ------
    KeyError
        a key that is not in the graph.
    Exception
        the first failing task's own exception.
    """
    nested_get = need("dask.local", "nbflow.dask.get").nested_get
    nodes, wanted = _as_tasks(dsk, keys)
    data = {k: node() for k, node in nodes.items() if _is_data(node)}
    tasks = {k: node for k, node in nodes.items() if k not in data}
    names = _names(tasks)
    graph, specs = _specs(tasks, names, data, retries, timeout)
    if store is not None or dashboard:
        results = _recorded(graph, specs, num_workers, executor, store, dashboard, name)
    else:
        results = _unrecorded(graph, specs, num_workers, executor)
    index = graph.index
    values = {k: data[k] if k in data else results[index[names[k]]] for k in wanted}
    return nested_get(keys, values)


def _as_tasks(dsk: Any, keys: Any) -> tuple[dict, set]:
    """The graph's nodes that ``keys`` need (Dask's task objects), and the wanted keys."""
    from dask._task_spec import convert_legacy_graph
    from dask.core import flatten

    if not isinstance(dsk, Mapping):
        dsk = dsk.__dask_graph__()
    dsk = convert_legacy_graph(dsk)
    wanted = set(flatten(keys)) if isinstance(keys, list) else {keys}
    for key in wanted:
        if key not in dsk:
            raise KeyError(key)
    needed: set = set()
    stack = list(wanted)
    while stack:   # iterative: a chain of 10,000 keys must not recurse
        key = stack.pop()
        if key in needed or key not in dsk:
            continue
        needed.add(key)
        stack.extend(dsk[key].dependencies)
    # In the graph's own order: the tie-break among equal priorities, and the
    # order of the dashboard's rows.
    return {k: node for k, node in dsk.items() if k in needed}, wanted


def _is_data(node: Any) -> bool:
    from dask._task_spec import DataNode
    return isinstance(node, DataNode)


def _names(tasks: Mapping) -> dict:
    """Key -> task name: the key as text, made unique if two keys print alike."""
    names = {k: k if isinstance(k, str) else str(k) for k in tasks}
    if len(set(names.values())) < len(names):
        seen: set[str] = set()
        for k, text in names.items():
            n = 1
            while text in seen:
                n += 1
                text = f"{names[k]} #{n}"
            names[k] = text
            seen.add(text)
    return names


class _Key:
    """Runs one Dask task with its dependencies' values (the engine passes them by name).

    ``pairs``: (task name, Dask key) of the task-made inputs; ``data``: the
    constant inputs by key.
    """

    __slots__ = ("__name__", "data", "node", "pairs")

    def __init__(self, node: Any, pairs: tuple, data: dict, name: str):
        self.node, self.pairs, self.data, self.__name__ = node, pairs, data, name

    def __call__(self, **kwargs: Any) -> Any:
        values = {key: kwargs[name] for name, key in self.pairs}
        if self.data:
            values.update(self.data)
        return self.node(values)

    def __reduce__(self):
        return (_Key, (self.node, self.pairs, self.data, self.__name__))


def _specs(tasks: Mapping, names: Mapping, data: Mapping, retries: int,
           timeout: float | None) -> tuple[Graph, list[TaskSpec]]:
    from dask.order import order

    pairs = {key: tuple((names[d], d) for d in node.dependencies if d in names)
             for key, node in tasks.items()}
    # Built before dask.order runs, so that a cycle is nbflow's CycleError, named
    # as a chain of the keys, like any flow's.
    graph = Graph([names[k] for k in tasks], [[n for n, _ in p] for p in pairs.values()])
    # dask.order's number is "start me earlier" where nbflow's priority is
    # "higher starts first"; ties break by position, as in nbflow.
    rank = order(tasks) if tasks else {}
    specs = []
    for key, node in tasks.items():
        mine = pairs[key]
        consts = {d: data[d] for d in node.dependencies if d in data}
        name = names[key]
        specs.append(TaskSpec(name=name, fn=_Key(node, mine, consts, name),
                              deps=tuple(n for n, _ in mine),
                              inputs={n: (n, None) for n, _ in mine}, retries=retries,
                              timeout=timeout, priority=-rank.get(key, 0), origin="dask graph"))
    return graph, specs


def _unrecorded(graph: Graph, specs: list[TaskSpec], workers: int | None, executor: Any
                ) -> list[Any]:
    # No lookahead: an attempt queued behind busy workers is chosen before the
    # tasks that become ready meanwhile, and Dask's order (which keeps memory
    # low by finishing branches) must decide every start.
    ex = make_executor(executor, workers or _default_workers(executor),
                       **({"lookahead": 0} if executor == "threads" else {}))
    engine = Engine(graph, specs, ex, fail_fast=True, cancel_grace=0.0)
    engine.run()
    _raise_first_error(engine)
    return engine.results


def _recorded(graph: Graph, specs: list[TaskSpec], workers: int | None, executor: Any,
              store: Any, dashboard: bool, name: str) -> list[Any]:
    from .api import Flow

    flow = Flow(name, store=store)
    for spec in specs:
        flow.task(spec.fn, name=spec.name,
                  inputs={n: dep for n, (dep, _) in spec.inputs.items()},
                  retries=spec.retries, timeout=spec.timeout, priority=spec.priority)
    run = flow.run(workers=workers or _default_workers(executor), executor=executor,
                   fail_fast=True, background=dashboard)
    if dashboard:
        _show(run.dashboard())
        run.wait()
    _raise_first_error(run._engine)
    return run._engine.results


def _default_workers(executor: Any) -> int | None:
    # dask.threaded.get's default: one thread per core.
    return (os.cpu_count() or 1) if executor == "threads" else None


def _show(widget: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:   # outside IPython there is nothing to draw on
        return
    display(widget)


def _raise_first_error(engine: Engine) -> None:
    # ``errors`` keeps the error of every failed attempt, retried ones too.
    state = engine.state
    for i, error in engine.errors.items():
        if state[i] is State.FAILED:
            raise error
