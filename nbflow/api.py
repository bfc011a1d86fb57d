"""The public Python API: ``Flow``, to declare tasks and run them (``run.py`` has ``Run``)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import keyword
import os
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from .core.engine import Engine, check_phases
from .core.executor import check_runnable
from .core.graph import Graph
from .core.options import FLOW_DEFAULTS, check, check_all, flag_type, task_options, unknown
from .core.policies import make_policy, policy_name
from .core.scheduler import check_pools
from .core.text import check_name
from .declare import (
    Declaration,
    cell_collector_declaration,
    cell_declaration,
    cell_item_declaration,
    check_redeclaration,
    compiled_cell,
    function_declaration,
    resolve,
)
from .errors import InvalidOption, NbflowError, NoSuchRun, NoSuchTask
from .executors import make_executor
from .mapping import Each, item_name, items_of, plan
from .parameters import notebook_params
from .results import ResultFiles, RunResults, results_folder, task_base
from .run import Run


class Flow:
    """A named set of tasks and their dependencies, and the runs made of them.

    Parameters
    ----------
    name
        The flow's name, recorded with each run.
    store
        Where runs are recorded: a SQLAlchemy URL, a SQLite file path or a
        :class:`nbflow.store.Store`.  Default: ``NBFLOW_STORE``, else
        ``.nbflow/nbflow.db`` in the working directory (beside the notebook, in
        a kernel).  Task results are saved beside it (``docs/reliability.md``).
    workers
        Default number of attempts run at once; without it, ``NBFLOW_WORKERS``
        (which ``nbflow run --workers N`` sets), else the executor's default.
    policy
        How ready tasks are ordered: a name (``fifo``, ``priority``, ``aging``,
        ``sjf``, ``edf``, ``critical_path``) or a policy object from
        :mod:`nbflow.policies` (``docs/scheduling.md``).  Without it,
        ``NBFLOW_POLICY`` (which ``nbflow run --policy NAME`` sets), else ``priority``.
    inherit_priority
        A task's priority is at least that of any task waiting on it.
    retries, retry_delay, backoff, max_delay, jitter, retry_on, timeout
        Defaults for tasks that do not set their own (see :meth:`task`).
    """

    def __init__(self, name: str = "flow", *, store: Any = None, workers: int | None = None,
                 executor: Any = "threads", policy: Any = None,
                 inherit_priority: bool = False, **defaults: Any):
        self.name = check("name", name, "Flow()")
        check_name("flow", name)
        who = f"Flow {name!r}"
        unknown(defaults, FLOW_DEFAULTS, who)
        self.workers = check("workers", workers, who)
        self.executor = check("executor", executor, who)
        self.policy = None if policy is None else check("policy", policy, who)
        self.inherit_priority = check("inherit_priority", inherit_priority, who)
        self.defaults = check_all(defaults, who)
        self.pools: dict[str, int] = {}
        self._scope: list[tuple[str, str]] = []   # ("group" | "phase", name), outermost first
        self._history = None
        self._store_arg = store
        self._store = None
        self._decls: dict[str, Declaration] = {}
        # The last resolution, until a declaration changes: re-running an
        # unchanged flow (the usual case in a notebook) skips resolving and
        # validating it again, a quarter of a 10,000-task run's own cost.
        self._built: tuple[Graph, list] | None = None
        self._bases: dict[str, str] = {}  # task -> hash of its name and code (results.py)
        self._namespaces: dict[str, dict[str, Any]] = {}  # cell task -> where it restores to
        self._maps: dict[str, list[str]] = {}   # map name -> its tasks (flow.map)
        # Weak: a run refers to its flow, and a flow that referred to its last run
        # would make a cycle that only the cyclic collector frees, so a dropped
        # Flow kept its Store, writer process included, until a full collection
        # (often never, in a kernel).  A live run is held by its thread.
        self._last_run_ref: weakref.ref[Run] | None = None
        self._cells: dict[str, str] = {}  # task -> id of the notebook cell that declared it
        self._run_listeners: list[Callable[[Run], None]] = []  # dashboards that follow the flow
        if "ipykernel" in sys.modules:   # the lab extension's cell badges follow its runs
            _attach_cells(self)

    def __repr__(self) -> str:
        return f"<nbflow.Flow {self.name!r}: {len(self._decls)} tasks>"

    @property
    def _last_run(self) -> Run | None:
        """The latest run of this flow in this process, while something holds it."""
        ref = self._last_run_ref
        return ref() if ref is not None else None

    # -- declaring -------------------------------------------------------------
    def task(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             after: Iterable[str] = (), inputs: dict[str, Any] | None = None,
             retries: int | None = None,
             retry_delay: float | None = None, backoff: float | None = None,
             max_delay: float | None = None, jitter: float | None = None,
             retry_on: Any = None, timeout: float | None = None, priority: int | None = None,
             tags: Iterable[str] | None = None, trigger: str | None = None,
             run_if: Callable[..., bool] | None = None,
             compensate: Callable[[Any], Any] | None = None, cache: bool | None = None,
             expected: float | None = None, deadline: Any = None,
             resources: dict[str, int] | None = None, group: str | None = None,
             phase: str | None = None):
        """Declare ``fn`` as a task; usable as ``@flow.task``, ``@flow.task(...)`` or a call.

        Parameters named after another task receive that task's result (and make
        it a dependency); ``after`` adds dependencies that pass no data.  Returns
        ``fn`` unchanged, so it can still be called directly.

        Parameters
        ----------
        inputs
            Which upstream results the parameters receive, for tasks whose names
            are made up (a flow built in a loop): ``{"raw": "fetch-3"}`` passes
            task ``fetch-3``'s result as ``raw``; ``{"parts": ["a", "b"]}``
            passes the list of those tasks' results.  Each is a dependency.
        retries, retry_delay, backoff, max_delay, jitter
            Retry a failed attempt up to ``retries`` times, waiting
            ``retry_delay * backoff ** (attempt - 1)`` seconds (at most
            ``max_delay``), spread by +/- ``jitter`` of itself.
        retry_on
            Exception class(es) worth a retry; other errors fail at once.
        timeout
            Seconds an attempt may run before it fails with ``TaskTimeout``
            (None: no timeout; finite and at most a year).
        priority
            Higher runs first among ready tasks.
        tags
            A label or a list of labels for the task.
        trigger
            When the task runs, given how its dependencies ended: Airflow's rules,
            ``"all_success"`` (default), ``"all_failed"``, ``"all_done"``,
            ``"all_skipped"``, ``"one_success"``, ``"one_failed"``, ``"one_done"``,
            ``"none_failed"``, ``"none_failed_min_one_success"``, ``"none_skipped"``,
            ``"always"`` (``core/triggers.py``; decided as soon as the outcome is fixed).
        run_if
            Called with the task's arguments; a false value skips the task.
        compensate
            ``compensate(result)`` undoes this task's success when a run with
            ``on_failure="compensate"`` fails or is cancelled.
        cache
            Reuse a stored result from any earlier run with the same code and inputs.
        expected, deadline, resources, group, phase
            Scheduling (``docs/scheduling.md``): the seconds it usually takes;
            when it should end (seconds after the run starts, or a datetime);
            the pool slots it holds while it runs (``{"db": 1}``, pools from
            :meth:`pool`); its group for roll-ups, inside the enclosing
            :meth:`group`; its phase (as inside ``with flow.phase(...)``).

        Raises
        ------
        DuplicateTaskError
            a different function already declared a task with this name.
        TypeError, ValueError
            a bad option value (the message names the task and the option).
        """
        given = {"retries": retries, "retry_delay": retry_delay, "backoff": backoff,
                 "max_delay": max_delay, "jitter": jitter, "retry_on": retry_on,
                 "timeout": timeout, "priority": priority, "tags": tags, "trigger": trigger,
                 "run_if": run_if, "compensate": compensate, "cache": cache,
                 "expected": expected, "deadline": deadline, "resources": resources,
                 "group": group, "phase": phase}

        if fn is None:   # @flow.task(...): the decorator
            return lambda f: self._task(f, name, after, inputs, given)
        # A call: no closure made (a flow built in a loop declares thousands).
        return self._task(fn, name, after, inputs, given)

    def _task(self, f: Callable[..., Any], name: str | None, after: Iterable[str],
              inputs: dict[str, Any] | None, given: dict[str, Any]) -> Callable[..., Any]:
        """:meth:`task`'s declaration of ``f``; returns ``f``."""
        if name is not None:
            task_name = check("name", name, "flow.task()")
        else:
            task_name = getattr(f, "__name__", None)
            if not isinstance(task_name, str) or task_name == "<lambda>":
                raise InvalidOption("a lambda or callable object needs a task name: "
                                    "flow.task(fn, name='...')", option="name", value=None)
        deps = check("after", after, f"task {task_name!r}")
        options = self._scoped(task_options(self.defaults, given, task_name), task_name)
        self._add(function_declaration(f, task_name, deps, options, inputs), _declaring_cell())
        return f

    def map(self, fn: Callable[..., Any], /, over: Any, *, name: str | None = None,
            param: str | None = None, inputs: dict[str, Any] | None = None,
            after: Iterable[str] = (), **options: Any) -> Each:
        """Declare one task per item of ``over`` (fan-out); returns them as ``flow.each(name)``.

        The tasks are ``name[0]``, ``name[1]``, ...: task ``k`` calls ``fn`` with
        item ``k`` as its parameter ``param`` (default: its first parameter).
        ``over=flow.each("other")`` maps over another map's results instead,
        item by item.  ``inputs`` and ``after`` are those of :meth:`task`; an
        input given as ``flow.each(...)`` is paired item by item too.  Every
        other keyword is a task option of :meth:`task`, for each task.  Running
        the declaration again replaces the map's tasks (fewer items: the extra
        tasks are removed).  See ``nbflow/mapping.py``.

        Raises
        ------
        TypeError
            ``over`` is not a list of items, ``fn`` has no parameter for the
            item, paired maps differ in length, or a bad option.
        """
        group = name or getattr(fn, "__name__", None)
        if not group or group == "<lambda>":
            raise ValueError("a lambda or callable object needs a map name: "
                             "flow.map(fn, over=..., name='...')")
        after = [after] if isinstance(after, str) else list(after)
        planned = plan(fn, over, group, param, inputs)
        for old in set(self._maps.get(group, ())) - {task for task, *_ in planned}:
            self.remove(old)
        for task_name, call, task_inputs, salt in planned:
            decl_options = self._scoped(task_options(self.defaults, options, task_name),
                                        task_name)
            self._add(function_declaration(call, task_name, after, decl_options, task_inputs,
                                           salt), _declaring_cell())
        self._maps[group] = [task for task, *_ in planned]
        return self.each(group)

    def each(self, name: str) -> Each:
        """The tasks of map ``name``, in order: as an input, the list of their results
        (fan-in); as ``over=`` or an input of another map, paired item by item.

        Raises
        ------
        NoSuchTask
            no map of that name was declared (declare the map first).
        """
        try:
            return Each(name, self._maps[name])
        except KeyError:
            known = ", ".join(repr(m) for m in self._maps) or "none yet"
            raise NoSuchTask(f"flow {self.name!r} has no map named {name!r} (its maps: "
                             f"{known}); declare it with flow.map(...) before using "
                             "flow.each()") from None

    def cell_task(self, name: str, source: str, namespace: dict[str, Any], *,
                  after: Iterable[str] | None = None, reads: Iterable[str] | None = None,
                  assigns: Iterable[str] | None = None, cell_id: str | None = None,
                  **options: Any) -> None:
        """Declare notebook-cell code as a task (what ``%%task`` calls).

        Without ``after`` its dependencies are the task cells that assign names
        it reads.  It runs in ``namespace`` and its result is a dict of the
        variables it assigned.  ``reads`` and ``assigns`` (``--reads``,
        ``--assigns``) declare the variables it reads and the ones that come
        back into ``namespace``; with both it can run on a Dask worker or a
        worker process.
        ``options`` are those of :meth:`task`.
        """
        from .notebook.context import valid_cell_id
        cell_id = valid_cell_id(cell_id)   # it came from the network: recorded only if sane
        name = check("name", name, "%%task")
        deps = None if after is None else check("after", after, f"task {name!r}")
        merged = self._scoped(task_options(self.defaults, options, name), name)
        declared = {k: check(k, v, f"task {name!r}") for k, v in
                    (("reads", reads), ("assigns", assigns))}
        self._add(cell_declaration(name, source, namespace, deps, merged, cell_id, **declared),
                  cell_id)
        for old in self._maps.pop(name, ()):   # it was a mapped cell before
            self.remove(old)
        self._namespaces[name] = namespace

    def cell_map(self, name: str, source: str, namespace: dict[str, Any], over: Any, *,
                 bind: str = "item", after: Iterable[str] | None = None,
                 cell_id: str | None = None, **options: Any) -> Each:
        """Declare notebook-cell code as one task per item of ``over`` (what
        ``%%task NAME --map ITEMS --as VAR`` calls).

        Task ``NAME[k]`` runs the cell with item ``k`` bound to ``bind``, in globals
        of its own; task ``NAME`` then sets each variable the cell assigns to the
        list of the items' values, in order, so a cell that reads one depends on
        the whole map (fan-in).  ``options`` are those of :meth:`task`, for each
        item; the collector takes only ``trigger``.  Returns ``flow.each(name)``.

        Raises
        ------
        TypeError
            ``over`` is not a list of items.
        ValueError
            ``bind`` is not a Python name.
        """
        from .notebook.context import valid_cell_id
        cell_id = valid_cell_id(cell_id)
        name = check("name", name, "%%task")
        if not isinstance(bind, str) or not bind.isidentifier() or keyword.iskeyword(bind):
            raise ValueError(f"task {name!r}: --as needs a Python name for the item, got "
                             f"{bind!r}; e.g. %%task {name} --map files --as path")
        deps = None if after is None else check("after", after, f"task {name!r}")
        # A cell reads another map's results as its list variable, so it pairs with nothing.
        items = items_of(over, name, "--map ITEMS", pairs=False)
        names, code = compiled_cell(name, source)
        planned = [item_name(name, k) for k in range(len(items))]
        for old in set(self._maps.get(name, ())) - set(planned):
            self.remove(old)
        for task_name, item in zip(planned, items):
            merged = self._scoped(task_options(self.defaults, options, task_name), task_name)
            self._add(cell_item_declaration(task_name, names, code, namespace, bind, item,
                                            deps, merged, cell_id), cell_id)
        trigger = {"trigger": options["trigger"]} if options.get("trigger") else {}
        collector = self._scoped(task_options(self.defaults, trigger, name), name)
        self._add(cell_collector_declaration(name, planned, names.assigns, namespace,
                                             collector, cell_id), cell_id)
        self._namespaces[name] = namespace
        self._maps[name] = planned
        return self.each(name)

    # -- scheduling declarations ----------------------------------------------------
    def pool(self, name: str, slots: int) -> None:
        """Declare (or resize) the resource pool ``name`` with ``slots`` slots: at
        most that many slots are held at once by running tasks that ask for it
        (``resources={name: n}``).

        Raises
        ------
        ValueError
            an empty name, or ``slots`` not a whole number >= 1.
        """
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise ValueError(f"flow.pool: the name must be a non-empty printable string, got "
                             f"{name!r}; e.g. flow.pool('db', slots=2)")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"pool {name!r}: slots must be a whole number >= 1, got "
                             f"{slots!r}; e.g. flow.pool({name!r}, slots=2)")
        self.pools[name] = slots

    @contextlib.contextmanager
    def group(self, name: str):
        """Tasks declared inside ``with flow.group(name):`` belong to group ``name``
        (inside the enclosing groups: ``"extract/api"``); a task's own ``group=``
        is a subgroup of it.

        Raises
        ------
        ValueError
            an empty name (or an empty part between ``/``).
        """
        check("group", name, "flow.group()")
        self._scope.append(("group", name))
        try:
            yield self
        finally:
            self._scope.pop()

    @contextlib.contextmanager
    def phase(self, name: str):
        """Tasks declared inside ``with flow.phase(name):`` form phase ``name``.
        Phases run in the order they are first declared: every task of a phase
        ends before any task of the next one starts (``docs/scheduling.md``).  A
        phase is also the outermost group of its tasks.

        Raises
        ------
        ValueError
            an empty name or one with ``/``; a phase inside a phase or a group
            (phases are the top of the hierarchy).
        """
        check("group", name, "flow.phase()")
        if "/" in name:
            raise ValueError(f"flow.phase: {name!r} has a '/': a phase is one name; put "
                             f"the parts in groups inside it (with flow.group(...))")
        if self._scope:
            kind, outer = self._scope[-1] if self._scope[-1][0] == "phase" else self._scope[0]
            raise ValueError(f"flow.phase({name!r}) inside flow.{kind}({outer!r}): phases do "
                             f"not nest, they run one after another at the top. Close the "
                             f"{kind} first, or use flow.group({name!r}) for a part of it")
        self._scope.append(("phase", name))
        try:
            yield self
        finally:
            self._scope.pop()

    def _scoped(self, options: dict[str, Any], task: str) -> dict[str, Any]:
        """``options`` with the group and phase of the enclosing ``with`` blocks."""
        if not self._scope and options.get("phase") is None:
            return options
        phase = next((name for kind, name in self._scope if kind == "phase"), None)
        own = options.get("phase")
        if own is not None and phase is not None and own != phase:
            raise ValueError(f"task {task!r}: phase={own!r} inside flow.phase({phase!r}); "
                             "a task is in one phase: drop one of them")
        options["phase"] = own or phase
        parts = [name for _, name in self._scope]
        if own is not None and phase is None:
            parts.insert(0, own)
        if options.get("group"):
            parts.append(options["group"])
        options["group"] = "/".join(parts) or None
        return options

    def _add(self, decl: Declaration, cell_id: str | None) -> None:
        name = decl.spec.name
        check_name("task", name)
        old = self._decls.get(name)
        if old is not None:
            check_redeclaration(old, decl)
        self._decls[name] = decl
        base = task_base(decl.spec.fn, name)
        if decl.salt:
            base = hashlib.sha256(base.encode() + decl.salt).hexdigest()
        self._bases[name] = base
        if cell_id is None:
            self._cells.pop(name, None)
        else:
            self._cells[name] = cell_id
        self._built = None

    def remove(self, name: str) -> None:
        """Forget the task ``name``."""
        if self._decls.pop(name, None) is None:
            raise NoSuchTask(self._unknown(name))
        for names in self._maps.values():
            if name in names:
                names.remove(name)
        self._built = None
        self._bases.pop(name, None)
        self._namespaces.pop(name, None)
        self._cells.pop(name, None)

    def clear(self) -> None:
        """Forget every task (runs stay in the store)."""
        self._decls.clear()
        self._maps.clear()
        self._built = None
        self._bases.clear()
        self._namespaces.clear()
        self._cells.clear()

    @property
    def tasks(self) -> list[str]:
        """Task names in declaration order."""
        return list(self._decls)

    def __contains__(self, name: str) -> bool:
        return name in self._decls

    def __len__(self) -> int:
        return len(self._decls)

    def _unknown(self, name: str) -> str:
        from .core.graph import close_names
        near = close_names(name, self._decls)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return f"flow {self.name!r} has no task {name!r}.{hint}"

    # -- the DAG -----------------------------------------------------------------
    def build(self) -> tuple[Graph, list]:
        """Resolve and validate the declared tasks: ``(graph, specs)``.

        Raises
        ------
        CycleError, UnknownDependencyError, DuplicateTaskError
        """
        if self._built is None:
            self._built = resolve(self._decls.values())
        graph, specs = self._built
        return graph, list(specs)

    def levels(self) -> list[list[str]]:
        """Kahn levels: tasks that can run together, level by level."""
        return self.build()[0].levels()

    def graph(self):
        """A ``graphviz.Digraph`` of the flow, one rank per level (renders inline)."""
        from .render import flow_digraph
        graph, specs = self.build()
        return flow_digraph(self.name, graph, specs)

    def to_networkx(self):
        """A ``networkx.DiGraph`` with an edge from each dependency to its dependent."""
        import networkx as nx
        graph, specs = self.build()
        g = nx.DiGraph(name=self.name)
        for i, spec in enumerate(specs):
            g.add_node(spec.name, level=graph.level[i], kind=spec.kind,
                       priority=spec.priority, tags=list(spec.tags), group=spec.group or "")
        g.add_edges_from((dep, spec.name) for spec in specs for dep in spec.deps)
        return g

    def dashboard(self, *, collapse_above: int | None = 300):
        """A live dashboard of this flow: its latest run in this kernel, then every new run.

        Display it, then run the flow (blocking or ``background=True``): the DAG,
        the status table and the timeline follow.  ``collapse_above``: see
        :class:`nbflow.notebook.widgets.Dashboard`.
        """
        from .notebook.widgets import dashboard
        return dashboard(flow=self, collapse_above=collapse_above)

    # -- running -------------------------------------------------------------------
    @property
    def store(self):
        """The :class:`nbflow.store.Store` this flow records to (opened on first use).

        Flows on one store location share one Store, and so one writer; a Store
        given as ``store=`` is used as it is.
        """
        if self._store is None:
            from .store import Store
            from .store.shared import shared_store
            arg = self._store_arg
            self._store = arg if isinstance(arg, Store) else shared_store(arg)
        return self._store

    def run(self, *, workers: int | None = None, mode: str = "eager", executor: Any = None,
            policy: Any = None, background: bool = False, sinks: Iterable[Any] = (),
            fail_fast: bool = False, on_failure: str | None = None,
            resume: bool | str = False, rerun: Iterable[str] = (), seed: int | None = None,
            inherit_priority: bool | None = None) -> Run:
        """Run every task; returns the :class:`Run`.

        Blocking by default: returns when every task is done.  With
        ``background=True`` it returns at once and the run goes on in an
        ``nbflow-engine`` thread (``run.wait()``, ``run.cancel()``, ``run.done``),
        so the kernel stays free for widgets and other cells.

        A failing task does not raise here: its dependents become
        ``upstream_failed``, independent branches go on, and the Run reports it
        (``run.failed``, ``run.status()``, ``run.reraise()``).  Interrupting a
        blocking run cancels it and re-raises ``KeyboardInterrupt``.

        ``fail_fast`` cancels the run when a task fails for good;
        ``on_failure="compensate"`` then (or after any failure) undoes the
        succeeded tasks that declared a ``compensate``, last first.
        ``sinks`` receive the run's events as they happen (see ``core/engine.py``).
        ``seed`` seeds the retry jitter, so a run with the same failures waits the
        same delays.  Every option is checked first (``core/options.py``): a bad
        one raises ``InvalidOption`` before anything is recorded.
        ``policy`` and ``inherit_priority`` override the flow's for this run
        (``docs/scheduling.md``).

        ``resume=True`` resumes the latest run of this flow in its store,
        ``resume=RUN_ID`` that run: the new run (``params["resumed_from"]``)
        restores every task whose result that run, or a run it resumed, saved,
        and runs the others (failed ones included).  ``rerun`` names tasks to
        run again even when their result could be restored, with everything
        downstream of them.  See ``docs/reliability.md``.

        In a notebook run by ``nbflow run -p/-f``, the run records the notebook's
        parameters (``NBFLOW_PARAMS``) in its params under ``notebook_params``.

        Raises
        ------
        ValueError
            ``NBFLOW_PARAMS`` is set but is not a JSON object.
        NoSuchRun
            nothing to resume, or ``resume`` names a run of another flow.
        LeaseHeldError
            the run to resume is still live in another kernel (or this one).
        StoreVersionConflict
            that run was already resumed, or another kernel took it first.
        """
        kind = self.executor if executor is None else executor
        policy = next(p for p in (policy, self.policy, env_policy(), "priority")
                      if p is not None)
        opts = check_all({"workers": workers, "mode": mode, "executor": kind, "policy": policy,
                          "fail_fast": fail_fast, "on_failure": on_failure, "seed": seed,
                          "inherit_priority": inherit_priority},
                         f"run of flow {self.name!r}")
        inherit = self.inherit_priority if opts["inherit_priority"] is None \
            else opts["inherit_priority"]
        given = notebook_params()
        graph, specs = self.build()
        check_phases(mode, specs)
        check_pools(specs, self.pools)
        store = self.store
        resumed = self._resume_target(resume)
        rerun_idx = self._with_downstream(graph, rerun)
        results = RunResults(specs, ResultFiles(results_folder(store.path)), self._bases,
                             self._namespaces)
        n = opts["workers"] or self.workers or env_workers()
        ex = make_executor(kind, n, tasks=len(specs), **_thread_options(kind))
        check_runnable(ex, specs)
        run_id = new_run_id()
        created = time.time()
        params = {"workers": ex.workers, "mode": mode, "policy": policy_name(policy),
                  "executor": kind if isinstance(kind, str) else type(ex).__name__}
        if seed is not None:
            params["seed"] = seed
        if inherit:
            params["inherit_priority"] = True
        if self.pools:
            params["pools"] = dict(self.pools)
        groups = {s.name: s.group for s in specs if s.group is not None}
        if groups:   # read by `nbflow status --by group` (tasks has no column for it)
            params["groups"] = groups
        phases = {s.name: s.phase for s in specs if s.phase is not None}
        if phases:   # the dashboard of a new kernel draws them as the live one does
            params["phases"] = phases
        holds = {s.name: dict(s.resources) for s in specs if s.resources}
        if holds:
            params["resources"] = holds
        if any(s.deadline is not None for s in specs):
            params["deadlines"] = True   # `nbflow status` then lists the missed ones
        if resumed is not None:
            params["resumed_from"] = resumed
        if given is not None:
            params["notebook_params"] = given
        cells = self._cells
        store.create_run(run_id, self.name, graph, [s.kind for s in specs], params, created,
                         resumed_from=resumed,
                         cells=[cells.get(s.name) for s in specs] if cells else None,
                         notebook=notebook_path())
        known = store.saved_results(store.resume_chain(resumed)) if resumed else {}
        cached = results.cache_index(store.record_results, run_id, graph.index)
        engine = Engine(graph, specs, ex, sinks=[store.sink(run_id), *filter(None, [cached]),
                                                 *sinks],
                        mode=mode, policy=policy, run_id=run_id, pools=self.pools,
                        inherit_priority=inherit, history=self._expected_durations(policy, graph),
                        fail_fast=fail_fast, seed=seed, on_failure=on_failure, keyer=results.key,
                        fns=results.fns,
                        restore=results.restorer(known, rerun_idx, store.saved_result))
        run = Run(self, run_id, engine)
        store.keep_lease(run_id, run.cancel)
        self._last_run_ref = weakref.ref(run)
        for listener in list(self._run_listeners):
            try:
                listener(run)
            except Exception as exc:  # noqa: BLE001 - a broken dashboard must never stop a run
                warnings.warn(f"nbflow: {listener!r} failed to follow run {run_id}: {exc!r}",
                              RuntimeWarning, stacklevel=2)
        if background:
            init = _thread_options("threads").get("initializer")
            run._thread = threading.Thread(target=run._execute, args=(init,), daemon=True,
                                           name="nbflow-engine")
            run._thread.start()
        else:
            run._execute()
            run._raise_store_error()
        return run

    def _expected_durations(self, policy: Any, graph: Graph) -> dict[str, float]:
        """Median durations of the tasks, for policies that read them
        (``store/history.py``); a task's own ``expected=`` still comes first."""
        if not getattr(make_policy(policy), "needs_history", False):
            return {}
        return self.history.expected(graph, self._bases)

    @property
    def history(self):
        """Durations of this flow's tasks in its store (``store/history.py``)."""
        if self._history is None:
            from .store.history import History
            self._history = History(self.store, self.name)
        return self._history

    def _resume_target(self, resume: bool | str) -> str | None:
        if resume is False or resume is None:
            return None
        if resume is True:
            latest = self.store.latest_run_id(self.name)
            if latest is None:
                raise NoSuchRun(f"flow {self.name!r} has no run in the store "
                                f"{self.store.label} to resume; run it once without resume=")
            return latest
        if isinstance(resume, str):
            return resume
        raise TypeError(f"resume must be True, False or a run id, got {resume!r}")

    def _with_downstream(self, graph: Graph, names: Iterable[str]) -> set[int]:
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            if name not in graph.index:
                raise NoSuchTask(self._unknown(name))
        return {graph.index[n] for name in names for n in (name, *graph.descendants(name))}

    # -- simulation ---------------------------------------------------------------------
    def simulate(self, *, workers: int = 4, policy: str | None = None, durations: Any = None,
                 default: float = 1.0, failures: Any = None, seed: int | None = None,
                 mode: str = "eager", step: bool = False, record: bool = False,
                 inherit_priority: bool | None = None, unit: str = "s"):
        """Simulate a run on a virtual clock: the same engine and policies, no task's code.

        ``durations``: a dict ``{task: seconds}``, a function ``(task, attempt) ->
        seconds``, or ``"history"`` (each task's median duration in this flow's
        recorded runs); a task it does not cover takes ``default`` seconds.
        ``failures``: a dict ``{task: how many first attempts fail}``, a probability
        per attempt (drawn from ``seed``), or a function ``(task, attempt) -> bool``;
        retries and back-off apply as in a real run.  Nothing sleeps.  With
        ``step=True`` the result advances by ``sim.step()``; with ``record=True`` the
        simulation is stored as a run marked simulated (``params["simulated"]``).
        The flow's pools apply, and its ``inherit_priority`` unless this overrides it.
        ``unit``: what the durations count ("ms", "min", "" for plain numbers...), as the
        charts and the step view label the clock; nothing is converted.
        Returns a :class:`nbflow.simulation.Simulation` (see ``docs/simulation.md``).
        """
        from .simulation import simulate_flow
        return simulate_flow(self, workers=workers, policy=policy, durations=durations,
                             default=default, failures=failures, seed=seed, mode=mode,
                             step=step, record=record, inherit_priority=inherit_priority,
                             unit=unit)

    def prune(self, keep: int | None = None, *, older_than: Any = None, before: Any = None,
              dry_run: bool = False, vacuum: bool | None = None):
        """Delete this flow's old runs and the result files no kept run needs.

        ``keep=N`` keeps the newest N runs; ``older_than`` (``"30d"``, ``"12h"``,
        seconds or a timedelta) or ``before`` (a date such as ``"2026-01-01"``)
        deletes the runs created before it; with a count and a date, a run goes
        only when both let it.  Without any: the last 50 runs and those of the
        last 30 days stay.  A live run, and every run a kept run resumed (its
        resume chain), always stay.  ``dry_run=True`` only says what would go;
        ``vacuum=True`` compacts the database afterwards (by default only after
        a prune that freed a lot).  Returns a report (``runs``, ``rows``,
        ``files``, ``file_bytes``, ``kept``...).  See ``docs/reliability.md``.

        Raises
        ------
        ValueError, TypeError
            a count, age or date that means nothing.
        """
        return self.store.prune(keep, older_than=older_than, before=before, flow=self.name,
                                dry_run=dry_run, vacuum=vacuum)

    # -- dead letters ------------------------------------------------------------------
    def dead_letters(self, *, requeued: bool = False):
        """Tasks of this flow's runs that failed after their last attempt, newest first.

        A pandas DataFrame with columns run_id, task, attempt, error, traceback,
        inputs (``{parameter: upstream result key}``), key, created and
        requeued_by (the run that ran the task again).  Only those not yet
        requeued, unless ``requeued=True``.
        """
        import pandas as pd
        self.store.flush()
        df = pd.DataFrame(self.store.dead_letters(self.name, requeued=requeued),
                          columns=DEAD_LETTER_COLUMNS)
        df["created"] = pd.to_datetime(df["created"], unit="s", utc=True)
        return df

    def requeue(self, run_id: str | None = None, tasks: Iterable[str] | None = None,
                **options: Any) -> Run:
        """Run dead letters again: a new run that resumes their run.

        ``run_id`` defaults to the run of the newest dead letter not yet
        requeued; ``tasks`` to all of that run's.  Those tasks and everything
        downstream of them run again; every other task whose result the run
        saved is restored, and the rest run (as in any resume).  The run's dead
        letters are marked ``requeued_by`` the new run.  ``options`` are those
        of :meth:`run` (``workers``, ``background``...).

        Raises
        ------
        NbflowError
            there is no dead letter to requeue, or a name in ``tasks`` is not
            one of the run's.
        """
        self.store.flush()
        letters = self.store.dead_letters(self.name, run_id=run_id)
        if not letters:
            where = f"run {run_id} of flow" if run_id else "flow"
            raise NbflowError(f"{where} {self.name!r} has no dead letters waiting to be "
                              "requeued; flow.dead_letters(requeued=True) also lists those "
                              "already requeued")
        run_id = letters[0]["run_id"]
        dead = [row["task"] for row in letters if row["run_id"] == run_id]
        chosen = dead if tasks is None else [tasks] if isinstance(tasks, str) else list(tasks)
        stray = [t for t in chosen if t not in dead]
        if stray:
            raise NbflowError(f"task {stray[0]!r} is not a dead letter of run {run_id} waiting "
                              f"to be requeued; its dead letters are: {', '.join(sorted(dead))}")
        return self.run(resume=run_id, rerun=chosen, **options)


DEAD_LETTER_COLUMNS = ["run_id", "task", "attempt", "error", "traceback", "inputs", "key",
                       "created", "requeued_by"]


def env_workers() -> int | None:
    """The default number of workers from ``NBFLOW_WORKERS``, or None when it is unset.

    Raises
    ------
    ValueError
        the variable is set to something other than a whole number >= 1.
    """
    text = os.environ.get("NBFLOW_WORKERS", "").strip()
    if not text:
        return None
    try:
        return flag_type("workers")(text)   # the row that checks --workers and workers=
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"NBFLOW_WORKERS {exc}. Fix or unset the environment variable "
                         "(`nbflow run --workers N` sets it).") from None


def notebook_path() -> str | None:
    """The absolute path of the notebook this kernel runs for, or None outside one.

    jupyter_server tells a kernel it starts in ``JPY_SESSION_NAME``.
    """
    session = os.environ.get("JPY_SESSION_NAME")
    return os.path.realpath(session) if session else None


def _attach_cells(flow: Flow) -> None:
    try:
        from .notebook.cellstatus import attach
        attach(flow)
    except Exception as exc:  # noqa: BLE001 - badges are a view: never stop a Flow
        warnings.warn(f"nbflow: the lab extension's cell badges will not follow flow "
                      f"{flow.name!r} ({exc!r}); the flow itself works as usual",
                      RuntimeWarning, stacklevel=3)


def _declaring_cell() -> str | None:
    # Only a kernel has cells; outside one the module is never imported, and
    # inside one this costs a dict lookup per declaration.
    context = sys.modules.get("nbflow.notebook.context")
    return context.declaring_cell() if context is not None else None


def env_policy() -> str | None:
    """The default policy from ``NBFLOW_POLICY``, or None when it is unset (checked
    with the run's other options, so a bad name fails the run that uses it)."""
    return os.environ.get("NBFLOW_POLICY", "").strip() or None


def _thread_options(kind: Any) -> dict[str, Any]:
    if kind != "threads" or "ipykernel" not in sys.modules:
        return {}
    from .notebook.context import thread_initializer
    init = thread_initializer()
    return {"initializer": init} if init is not None else {}


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
