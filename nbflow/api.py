"""The public Python API: ``Flow``, to declare tasks and run them (``run.py`` has ``Run``)."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from .core.engine import Engine, check_options
from .core.graph import Graph
from .declare import (Declaration, cell_declaration, check_redeclaration, function_declaration,
                      resolve)
from .errors import NbflowError, NoSuchRun, NoSuchTask
from .executors import make_executor
from .options import FLOW_DEFAULTS, task_options, validate
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
    retries, retry_delay, backoff, max_delay, jitter, retry_on, timeout
        Defaults for tasks that do not set their own (see :meth:`task`).
    """

    def __init__(self, name: str = "flow", *, store: Any = None, workers: int | None = None,
                 executor: Any = "threads", policy: str = "priority", **defaults: Any):
        unknown = set(defaults) - set(FLOW_DEFAULTS)
        if unknown:
            raise TypeError(f"Flow() got unknown option(s) {', '.join(sorted(unknown))}; "
                            f"flow-wide task defaults are: {', '.join(FLOW_DEFAULTS)}")
        self.name = name
        self.workers = workers
        self.executor = executor
        self.policy = policy
        self.defaults = validate(dict(defaults), f"Flow {name!r}")
        self._store_arg = store
        self._store = None
        self._decls: dict[str, Declaration] = {}
        # The last resolution, until a declaration changes: re-running an
        # unchanged flow (the usual case in a notebook) skips resolving and
        # validating it again, a quarter of a 10,000-task run's own cost.
        self._built: tuple[Graph, list] | None = None
        self._bases: dict[str, str] = {}  # task -> hash of its name and code (results.py)
        self._namespaces: dict[str, dict[str, Any]] = {}  # cell task -> where it restores to
        self._last_run: Run | None = None
        self._run_listeners: list[Callable[[Run], None]] = []  # dashboards that follow the flow

    def __repr__(self) -> str:
        return f"<nbflow.Flow {self.name!r}: {len(self._decls)} tasks>"

    # -- declaring -------------------------------------------------------------
    def task(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             after: Iterable[str] = (), inputs: dict[str, Any] | None = None,
             retries: int | None = None,
             retry_delay: float | None = None, backoff: float | None = None,
             max_delay: float | None = None, jitter: float | None = None,
             retry_on: Any = None, timeout: float | None = None, priority: int | None = None,
             tags: Iterable[str] | None = None, trigger: str | None = None,
             run_if: Callable[..., bool] | None = None,
             compensate: Callable[[Any], Any] | None = None, cache: bool | None = None):
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
            Seconds an attempt may run before it fails with ``TaskTimeout``.
        priority
            Higher runs first among ready tasks.
        trigger
            ``"all_success"`` (default), ``"all_done"``, ``"one_failed"`` or
            ``"none_failed"``: when the task runs, given how its dependencies ended.
        run_if
            Called with the task's arguments; a false value skips the task.
        compensate
            ``compensate(result)`` undoes this task's success when a run with
            ``on_failure="compensate"`` fails or is cancelled.
        cache
            Reuse a stored result from any earlier run with the same code and inputs.

        Raises
        ------
        DuplicateTaskError
            a different function already declared a task with this name.
        TypeError, ValueError
            a bad option value (the message names the task and the option).
        """
        after = [after] if isinstance(after, str) else list(after)
        given = dict(retries=retries, retry_delay=retry_delay, backoff=backoff,
                     max_delay=max_delay, jitter=jitter, retry_on=retry_on, timeout=timeout,
                     priority=priority, tags=tags, trigger=trigger, run_if=run_if,
                     compensate=compensate, cache=cache)

        def declare(f: Callable[..., Any]) -> Callable[..., Any]:
            task_name = name or getattr(f, "__name__", None)
            if not task_name or (name is None and task_name == "<lambda>"):
                raise ValueError("a lambda or callable object needs a task name: "
                                 "flow.task(fn, name='...')")
            options = task_options(self.defaults, given, task_name)
            self._add(function_declaration(f, task_name, after, options, inputs))
            return f

        return declare if fn is None else declare(fn)

    def cell_task(self, name: str, source: str, namespace: dict[str, Any], *,
                  after: Iterable[str] | None = None, cell_id: str | None = None,
                  **options: Any) -> None:
        """Declare notebook-cell code as a task (what ``%%task`` calls).

        Without ``after`` its dependencies are the task cells that assign names
        it reads.  It runs in ``namespace`` and its result is a dict of the
        variables it assigned.  ``options`` are those of :meth:`task`.
        """
        merged = task_options(self.defaults, options, name)
        self._add(cell_declaration(name, source, namespace,
                                   list(after) if after is not None else None, merged, cell_id))
        self._namespaces[name] = namespace

    def _add(self, decl: Declaration) -> None:
        old = self._decls.get(decl.spec.name)
        if old is not None:
            check_redeclaration(old, decl)
        self._decls[decl.spec.name] = decl
        self._bases[decl.spec.name] = task_base(decl.spec.fn, decl.spec.name)
        self._built = None

    def remove(self, name: str) -> None:
        """Forget the task ``name``."""
        if self._decls.pop(name, None) is None:
            raise NoSuchTask(self._unknown(name))
        self._built = None
        self._bases.pop(name, None)
        self._namespaces.pop(name, None)

    def clear(self) -> None:
        """Forget every task (runs stay in the store)."""
        self._decls.clear()
        self._built = None
        self._bases.clear()
        self._namespaces.clear()

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
                       priority=spec.priority, tags=list(spec.tags))
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
        """The :class:`nbflow.store.Store` this flow records to (opened on first use)."""
        if self._store is None:
            from .store import Store
            arg = self._store_arg
            self._store = arg if isinstance(arg, Store) else Store(arg)
        return self._store

    def run(self, *, workers: int | None = None, mode: str = "eager", executor: Any = None,
            policy: str | None = None, background: bool = False, sinks: Iterable[Any] = (),
            fail_fast: bool = False, on_failure: str | None = None,
            resume: bool | str = False, rerun: Iterable[str] = ()) -> Run:
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

        ``resume=True`` resumes the latest run of this flow in its store,
        ``resume=RUN_ID`` that run: the new run (``params["resumed_from"]``)
        restores every task whose result that run, or a run it resumed, saved,
        and runs the others (failed ones included).  ``rerun`` names tasks to
        run again even when their result could be restored, with everything
        downstream of them.  See ``docs/reliability.md``.

        Raises
        ------
        NoSuchRun
            nothing to resume, or ``resume`` names a run of another flow.
        LeaseHeldError
            the run to resume is still live in another kernel (or this one).
        StoreVersionConflict
            that run was already resumed, or another kernel took it first.
        """
        check_options(mode, on_failure, policy or self.policy)
        graph, specs = self.build()
        store = self.store
        resumed = self._resume_target(resume)
        rerun_idx = self._with_downstream(graph, rerun)
        results = RunResults(specs, ResultFiles(results_folder(store.path)), self._bases,
                             self._namespaces)
        kind = executor or self.executor
        ex = make_executor(kind, workers or self.workers or env_workers(),
                           **_thread_options(kind))
        if not getattr(ex, "shares_memory", True):
            cell = next((s.name for s in specs if s.kind == "cell"), None)
            if cell is not None:
                raise ValueError(
                    f"task {cell!r} is a %%task cell: it runs in the notebook's namespace, "
                    f"which a worker process does not share. Run this flow with "
                    f"executor='threads', or declare {cell!r} as a function with @flow.task.")
        run_id = new_run_id()
        created = time.time()
        params = {"workers": ex.workers, "mode": mode, "policy": policy or self.policy,
                  "executor": kind if isinstance(kind, str) else type(ex).__name__}
        if resumed is not None:
            params["resumed_from"] = resumed
        store.create_run(run_id, self.name, graph, [s.kind for s in specs], params, created,
                         resumed_from=resumed)
        known = store.saved_results(store.resume_chain(resumed)) if resumed else {}
        cached = results.cache_index(store.record_results, run_id, graph.index)
        engine = Engine(graph, specs, ex, sinks=[store.sink(run_id), *filter(None, [cached]),
                                                 *sinks],
                        mode=mode, policy=policy or self.policy, run_id=run_id,
                        fail_fast=fail_fast, on_failure=on_failure, keyer=results.key,
                        fns=results.fns,
                        restore=results.restorer(known, rerun_idx, store.saved_result))
        run = Run(self, run_id, engine)
        store.keep_lease(run_id, run.cancel)
        self._last_run = run
        for listener in list(self._run_listeners):
            try:
                listener(run)
            except Exception as exc:  # a broken dashboard must never stop a run
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
    n = int(text) if text.isascii() and text.isdigit() else 0
    if n < 1:
        raise ValueError(f"NBFLOW_WORKERS must be a whole number of at least 1, got {text!r}. "
                         "Fix or unset the environment variable (`nbflow run --workers N` "
                         "sets it).")
    return n


def _thread_options(kind: Any) -> dict[str, Any]:
    if kind != "threads" or "ipykernel" not in sys.modules:
        return {}
    from .notebook.context import thread_initializer
    init = thread_initializer()
    return {"initializer": init} if init is not None else {}


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
