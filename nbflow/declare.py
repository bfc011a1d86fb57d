"""Declarations -> validated engine input.

A flow keeps what the user declared (functions with their parameters, cells
with their source) and resolves it into ``TaskSpec``s only when asked, so tasks
can be declared in any order and redefined while a notebook is being edited.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import linecache
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .core.cellvars import CellNames, analyse
from .core.graph import Graph, close_names
from .core.options import OPTIONS
from .core.spec import TaskSpec
from .core.weakcache import WeakCache
from .core.worker import current_task, run_coroutine
from .errors import DuplicateTaskError, InvalidOption, UnknownDependencyError
from .mapping import item_salt
from .shipped import CellTask


class Declaration(NamedTuple):
    """A task as declared, before its dependencies are resolved (a tuple: one per
    declaration, made in one call)."""

    spec: TaskSpec      # deps and inputs as far as the declaration alone decides them
    after: tuple[str, ...] = ()                 # the dependencies given by name (after=)
    params: tuple[tuple[str, bool], ...] = ()   # (name, has default): those inputs= does not feed
    reads: frozenset[str] = frozenset()         # names a cell task reads
    assigns: tuple[str, ...] = ()               # names a cell task assigns
    explicit_after: bool = False                # a cell's --after replaces inference
    identity: Any = None                        # what makes a redeclaration "the same"
    salt: bytes = b""                           # mixed into the result key (a map's item)


def function_declaration(fn: Callable[..., Any], name: str, after: Iterable[str],
                         options: dict[str, Any], inputs: Any = None, salt: bytes = b""
                         ) -> Declaration:
    """A function task; an ``async def`` one runs to completion on a loop of its own.
    ``inputs`` maps parameters of ``fn`` to the upstream task whose result they
    receive, or to a list of tasks (the parameter gets the list of their
    results, in that order); ``salt`` goes into its result key (a map's item).

    Raises
    ------
    TypeError
        ``fn`` is a generator function, or has positional-only parameters;
        ``inputs`` is not such a mapping, or names a parameter ``fn`` does not have.
    """
    sig = _analysed(fn)
    if sig.kind == "generator":
        raise TypeError(
            f"task {name!r}: {getattr(fn, '__qualname__', fn)!r} is a generator function "
            "(it uses yield), so calling it runs none of its body. Return a list instead, "
            "e.g. a wrapper that returns list(gen()), or use return in place of yield.")
    if sig.positional_only is not None:
        raise TypeError(f"task {name!r}: parameter {sig.positional_only!r} is positional-only; "
                        "nbflow passes upstream results by keyword, so drop the '/' marker.")
    params = sig.params
    ordered = dict.fromkeys(after)   # after=, then each input's tasks, each once
    given: dict[str, tuple[str | tuple[str, ...], None]] = {}
    if inputs is not None:
        inputs = _INPUTS.validate(inputs, f"task {name!r}")
        for param, source in _check_inputs(name, inputs, sig):
            given[param] = (source, None)
            ordered.update(dict.fromkeys((source,) if isinstance(source, str) else source))
        # Parameters that ``inputs`` does not feed: only these can name other tasks.
        params = tuple([p for p in params if p[0] not in given])
    # The partial keeps ``fn`` visible to result keys (results.code_digest).
    call = functools.partial(run_coroutine, fn) if sig.kind == "coroutine" else fn
    # The spec a run uses as it is, unless resolving adds to its deps (``resolve``).
    spec = TaskSpec(name=name, fn=call, deps=tuple(ordered), inputs=given, kind="function",
                    origin=sig.origin, **options)
    return Declaration(spec, after=tuple(after), params=params, identity=sig.identity,
                       salt=salt)


_INPUTS = OPTIONS["inputs"]


def _check_inputs(task: str, inputs: dict[str, Any], sig: _Signature
                  ) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
    """``inputs`` (already checked by its options row) as pairs, each naming a
    parameter ``fn`` has."""
    if not sig.any_keyword and not sig.known.issuperset(inputs):
        param = next(p for p in inputs if p not in sig.known)
        raise InvalidOption(
            f"task {task!r}: inputs= names {param!r}, which is not a parameter of its "
            f"function (its parameters: {', '.join(sorted(sig.known)) or 'none'})",
            option="inputs", value=inputs)
    return tuple(inputs.items())


class _Signature(NamedTuple):
    """What declaring needs to know of a function, worked out once per function."""

    params: tuple[tuple[str, bool | None], ...]   # (name, has default); None: positional-only
    known: frozenset[str]          # the names of params
    positional_only: str | None    # the first positional-only parameter (refused)
    origin: str                    # where it was defined
    any_keyword: bool              # it takes **kwargs
    kind: str                      # "generator", "coroutine" or "function"
    identity: tuple[Any, Any]      # (module, qualname) of the function a map's item binds


_ANALYSED = WeakCache()


def _analysed(fn: Callable[..., Any]) -> _Signature:
    """``fn``'s :class:`_Signature`, once per function object.

    A flow built in a loop declares one function many times, and
    ``inspect.signature`` was half of what declaring a task cost.
    """
    known: _Signature | None = _ANALYSED.get(fn)
    if known is not None:
        return known
    params, any_keyword = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            any_keyword = any_keyword or p.kind is p.VAR_KEYWORD
            continue
        params.append((p.name, None if p.kind is p.POSITIONAL_ONLY else p.default is not p.empty))
    kind = ("generator" if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
            else "coroutine" if inspect.iscoroutinefunction(fn) else "function")
    base = fn.func if isinstance(fn, functools.partial) else fn   # a map's item bound
    found = _Signature(tuple(params), frozenset(p for p, _ in params),
                       next((p for p, has_default in params if has_default is None), None),
                       _origin(fn), any_keyword, kind,
                       (getattr(base, "__module__", None), getattr(base, "__qualname__", None)))
    _ANALYSED.put(fn, found)   # not weak-referenceable: analysed again next time
    return found


def cell_declaration(name: str, source: str, namespace: dict[str, Any], after: Iterable[str] | None,
                     options: dict[str, Any], cell_id: str | None = None,
                     reads: tuple[str, ...] | None = None,
                     assigns: tuple[str, ...] | None = None) -> Declaration:
    """A task whose body is notebook cell ``source``, run against ``namespace``.

    It reads the notebook's variables live, binds names in globals of its own
    and, when its attempt ends and is still wanted, writes every name it bound
    into ``namespace`` (``_Publisher``), or only ``assigns`` when they are
    declared.  Its result is a dict of the variables it assigned.  Declared
    ``reads`` replace the analysis's for its dependencies; a cell that declares
    both can be sent to a worker elsewhere (``nbflow/shipped.py``).

    Raises
    ------
    InvalidOption
        ``reads`` leaves out a name the cell reads, or ``assigns`` names one it
        does not assign.
    """
    names, code = compiled_cell(name, source)
    _check_declared(name, names, reads, assigns)
    publish = _Publisher(namespace)
    cell = CellTask(name, source, namespace, names, reads, assigns, publish)
    wanted = cell.assigns

    def run_cell() -> dict[str, Any]:
        ticket = publish.ticket()
        scratch = {"__builtins__": _Fallthrough(namespace)}
        exec(code, scratch)
        del scratch["__builtins__"]
        values = {k: scratch[k] for k in wanted if k in scratch}
        publish(ticket, scratch if assigns is None else values)
        return values

    run_cell.__qualname__ = run_cell.__name__ = name
    run_cell.nbflow_cell = cell   # type: ignore[attr-defined]  (read by executors and wire.py)
    deps = tuple(dict.fromkeys(after or ()))
    spec = TaskSpec(name=name, fn=run_cell, deps=deps, kind="cell",
                    origin=f"cell {cell_id}" if cell_id else "a %%task cell", **options)
    return Declaration(spec, after=deps, reads=frozenset(cell.reads), assigns=wanted,
                       explicit_after=after is not None, identity=("cell", cell_id or name))


def compiled_cell(name: str, source: str) -> tuple[CellNames, types.CodeType]:
    """What cell ``source`` of task ``name`` reads and assigns, and its code, whose
    tracebacks show the cell's lines."""
    filename = f"<task {name}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return analyse(source), code


def cell_item_declaration(name: str, names: CellNames, code: types.CodeType,
                          namespace: dict[str, Any], bind: str, item: Any,
                          after: Iterable[str] | None, options: dict[str, Any],
                          cell_id: str | None = None) -> Declaration:
    """Item ``k`` of a mapped cell (``%%task NAME --map ITEMS``): the cell run with
    ``item`` bound to ``bind`` in globals of its own.

    It publishes nothing into the notebook (its siblings bind the same names);
    its result is the dict of what it assigned, which the map's collector
    (:func:`cell_collector_declaration`) turns into lists.
    """
    assigns = names.assigns

    def run_item() -> dict[str, Any]:
        scratch = {"__builtins__": _Fallthrough(namespace), bind: item}
        exec(code, scratch)
        return {k: scratch[k] for k in assigns if k in scratch}

    run_item.__qualname__ = run_item.__name__ = name
    deps = tuple(dict.fromkeys(after or ()))
    spec = TaskSpec(name=name, fn=run_item, deps=deps, kind="cell",
                    origin=f"cell {cell_id}" if cell_id else "a %%task --map cell", **options)
    return Declaration(spec, after=deps, reads=names.reads - {bind},
                       explicit_after=after is not None,
                       identity=("cell", cell_id or name), salt=item_salt(item))


def cell_collector_declaration(name: str, items: list[str], assigns: tuple[str, ...],
                               namespace: dict[str, Any], options: dict[str, Any],
                               cell_id: str | None = None) -> Declaration:
    """The task ``NAME`` of a mapped cell: after its items, each variable the cell
    assigns becomes the list of the items' values, in order (None where an item
    did not bind it, or failed under a trigger rule that lets this run)."""
    publish = _Publisher(namespace)

    def collect(parts: list[dict[str, Any] | None]) -> dict[str, list[Any]]:
        ticket = publish.ticket()
        values = {var: [None if part is None else part.get(var) for part in parts]
                  for var in assigns}
        publish(ticket, values)
        return values

    collect.__qualname__ = collect.__name__ = name
    spec = TaskSpec(name=name, fn=collect, deps=tuple(items), kind="cell",
                    inputs={"parts": (tuple(items), None)},
                    origin=f"cell {cell_id}" if cell_id else "a %%task --map cell", **options)
    return Declaration(spec, assigns=assigns,
                       explicit_after=True, identity=("cell", cell_id or name))


def _check_declared(name: str, names: Any, reads: tuple[str, ...] | None,
                    assigns: tuple[str, ...] | None) -> None:
    if reads is not None and (left := sorted(names.reads - set(reads))):
        raise InvalidOption(
            f"task {name!r}: the cell reads {', '.join(left)}, which --reads does not list; "
            f"add them (--reads {','.join(sorted({*reads, *left}))}), or define them in "
            "the cell", option="reads", value=reads)
    if assigns is not None and (stray := [n for n in assigns if n not in names.assigns]):
        raise InvalidOption(
            f"task {name!r}: --assigns names {', '.join(stray)}, which the cell does not "
            f"assign at top level (it assigns: {', '.join(names.assigns) or 'nothing'})",
            option="assigns", value=assigns)


class _Fallthrough(dict):
    """The builtins of a cell task's private globals: a name the cell did not bind
    is read from the notebook's namespace (live), then from Python's builtins.

    A cell task runs in globals of its own, so an attempt writes nothing into
    the notebook until it ends; the interpreter looks a missing global up in
    ``__builtins__``, which this dict subclass forwards.  Names the cell binds
    are plain dict entries: its own loops run at full speed.
    """

    __slots__ = ("builtins", "namespace")

    def __init__(self, namespace: dict[str, Any]):
        super().__init__()
        self.namespace = namespace
        b = namespace.get("__builtins__", builtins)
        self.builtins = b.__dict__ if isinstance(b, types.ModuleType) else b
        # ``import`` looks __import__ up in the builtins dict itself, not through
        # __missing__.
        self["__import__"] = self.builtins["__import__"]

    def __missing__(self, name: str) -> Any:
        try:
            return self.namespace[name]
        except KeyError:
            return self.builtins[name]


class _Publisher:
    """Writes what a cell task's attempt bound into the notebook, unless it must not.

    An attempt that was abandoned (it timed out, or its run was cancelled) may
    still be running when a later attempt, or a later run, has set the cell's
    variables: its values never replace those.  Each attempt takes a ticket
    when it starts; it publishes only if no attempt that started after it
    published first, and not once its attempt was given up.
    """

    def __init__(self, namespace: dict[str, Any]):
        self.namespace = namespace
        self._tickets = itertools.count(1)
        self._published = 0
        self._lock = threading.Lock()

    def ticket(self) -> int:
        return next(self._tickets)

    def __call__(self, ticket: int, values: dict[str, Any], given_up: bool | None = None
                 ) -> None:
        """``given_up``: whether the attempt was given up; None asks the running task's
        context (when called in the attempt itself)."""
        with self._lock:
            if ticket < self._published or (_given_up() if given_up is None else given_up):
                return
            self._published = ticket
            self.namespace.update(values)


def _given_up() -> bool:
    try:
        return current_task().cancelled
    except RuntimeError:   # called outside a run (a test, a direct call): nothing to give up
        return False


def check_redeclaration(old: Declaration, new: Declaration) -> None:
    """Allow re-running the cell that declared a task; refuse a second, different one."""
    if old.identity != new.identity:
        raise DuplicateTaskError(
            f"a task named {new.spec.name!r} is already declared ({old.spec.origin}); "
            f"this one comes from {new.spec.origin}. Give one of them another name "
            f"(name=... or %%task OTHER), or remove the old one with flow.remove({new.spec.name!r}).")


def resolve(decls: Iterable[Declaration]) -> tuple[Graph, list[TaskSpec]]:
    """Resolve parameters and cell variables into dependencies; validate the DAG.

    Raises
    ------
    DuplicateTaskError
        two cell tasks assign the same variable.
    UnknownDependencyError
        an ``after`` entry or a parameter without a default matches nothing.
    CycleError
    """
    decls = list(decls)
    names = [d.spec.name for d in decls]
    task_names = set(names)
    owner: dict[str, str] = {}   # variable -> the cell task that assigns it
    for d in decls:
        for var in d.assigns:
            other = owner.setdefault(var, d.spec.name)
            if other != d.spec.name:
                raise DuplicateTaskError(
                    f"task cells {other!r} and {d.spec.name!r} both assign {var!r}, so nbflow "
                    f"cannot tell which one a reader of {var!r} depends on. Assign it in one "
                    "cell only, or rename it in one of them.")
    specs = []
    for d in decls:
        spec = d.spec
        if not task_names.issuperset(spec.deps):
            _unknown_dependency(d, task_names, names)
        deps: dict[str, None] | None = None    # made only when resolving adds a dependency
        inputs = spec.inputs
        for param, has_default in d.params:   # the ones inputs= does not feed
            if param in task_names:
                source = (param, None)
            elif param in owner:
                source = (owner[param], param)
            elif not has_default:
                raise UnknownDependencyError(
                    spec.name, param, close_names(param, [*names, *owner]), how="parameter")
            else:
                continue
            if deps is None:
                deps, inputs = dict.fromkeys(spec.deps), dict(inputs)
            inputs[param] = source
            deps.setdefault(source[0])
        if spec.kind == "cell" and not d.explicit_after:
            for var in sorted(d.reads):
                if var in owner and owner[var] != spec.name:
                    if deps is None:
                        deps = dict.fromkeys(spec.deps)
                    deps.setdefault(owner[var])
        # Most declarations resolve to what they declared: their spec is the run's.
        unchanged = deps is None or (inputs is spec.inputs and len(deps) == len(spec.deps))
        specs.append(spec if unchanged else spec.resolved(tuple(deps), inputs))
    graph = Graph(names, [s.deps for s in specs])
    return graph, specs


def _unknown_dependency(d: Declaration, task_names: set[str], names: list[str]) -> None:
    """Raise for the first dependency of ``d`` that names no task: one of ``after``,
    else one of ``inputs`` (the order its spec lists them in)."""
    for dep in d.spec.deps:
        if dep not in task_names:
            how = {} if dep in d.after else {"how": "inputs"}
            raise UnknownDependencyError(d.spec.name, dep, close_names(dep, names), **how)


def _origin(fn: Callable[..., Any]) -> str:
    if isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"

