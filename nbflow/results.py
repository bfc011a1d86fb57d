"""Persisted task results: their keys, their files, and restoring them.

A task's *key* names its result: a sha256 over the task's name, its code and
the keys of its inputs (its dependencies' keys, in ``graph.preds`` order).  The
same code fed the same inputs gets the same key in any run and any kernel,
which is what lets a resumed run (``flow.run(resume=...)``) and a cached task
(``cache=True``) take a stored result instead of running the task again.

Who does what, and on which thread:

* :func:`task_base` hashes a task's name and code once, when it is declared
  (the code digest is also cached per function object);
  :meth:`RunResults.key` is the engine's ``keyer`` hook and only combines
  those with the input keys, so it is cheap on the engine thread.
* The worker that ran a task saves its result: :class:`PersistResult` wraps the
  task's function and, before the attempt returns, pickles a non-None result
  with cloudpickle to ``<results folder>/<key>.pkl`` (tmp file + ``os.replace``,
  so a file is whole or absent).  A None result needs no file.  A result that
  does not pickle is not saved (the task's stderr log says so).
* :class:`SavedResults` (an engine sink, engine thread) notes in each
  ``succeeded`` event of an attempt what was saved: ``detail["result"]`` is
  ``"none"`` (the task returned None) or ``"file"``.  The note is written with
  the event, in the same row, so a result counts as saved exactly when its
  success was committed; a success not yet committed when the process died
  runs again (at-least-once).  Results of ``cache=True`` tasks also get a row
  in the store's ``results`` table, indexed by key.  (A row per task for every
  task would cost the store as much as the task rows themselves.)
* :class:`Restorer` is the engine's ``restore`` hook: a key saved by the run
  being resumed (or the runs it resumed in turn), or by any run for a
  ``cache=True`` task, is loaded back; a cell task's variables go back into the
  notebook namespace.  A file that is missing or does not load is a miss: the
  task runs again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

from .core.spec import TaskSpec
from .core.worker import current_task

MISS = (False, None)
_SIMPLE = (int, float, complex, str, bytes, bool, type(None))
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def results_folder(store_path: str | None) -> str:
    """Where result files go: ``NBFLOW_RESULTS``, else ``results/`` beside a SQLite
    store file, else ``.nbflow/results`` in the working directory."""
    folder = os.environ.get("NBFLOW_RESULTS")
    if folder:
        return os.path.abspath(folder)
    if store_path is not None:
        return os.path.join(os.path.dirname(store_path), "results")
    return os.path.abspath(os.path.join(".nbflow", "results"))


# -- keys ---------------------------------------------------------------------------
def code_digest(fn: Callable[..., Any]) -> bytes:
    """A digest of what ``fn`` computes, stable across kernels and Python sessions.

    It covers the bytecode and constants of ``fn`` and of the functions and
    code objects it encloses, the names it uses, and its defaults and closure
    values when they are immutable plain data (numbers, strings, tuples of
    them...); other values (lists, dicts, objects) count by type only.
    Globals and helper functions it calls by name are *not* followed: change
    the task's code, or its name, to change its key.  Cached per function
    object, so it is computed once per declaration.
    """
    try:
        return _DIGESTS[fn]
    except (KeyError, TypeError):
        pass
    h = hashlib.sha256(b"nbflow-code-1 %d.%d\0" % sys.version_info[:2])
    _feed_callable(h, fn, set())
    digest = h.digest()
    with suppress(TypeError):  # not weak-referenceable: hashed again next run
        _DIGESTS[fn] = digest
    return digest


def task_base(fn: Callable[..., Any], name: str) -> str:
    """The key of task ``name`` running ``fn`` when it has no inputs; the seed of
    its key otherwise.  Computed when the task is declared."""
    return hashlib.sha256(name.encode() + b"\0" + code_digest(fn)).hexdigest()


def _feed_callable(h, obj: Any, seen: set[int]) -> None:
    if id(obj) in seen:  # a closure that refers to itself
        h.update(b"<again>")
        return
    seen.add(id(obj))
    if isinstance(obj, functools.partial):
        _feed_callable(h, obj.func, seen)
        _feed_value(h, obj.args, seen)
        _feed_value(h, tuple(sorted(obj.keywords.items())), seen)
        return
    fn = getattr(obj, "__func__", obj)  # a bound method: its function
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: what its class's __call__ does
        cls = type(obj)
        h.update(f"{cls.__module__}.{cls.__qualname__}\0".encode())
        if getattr(cls.__call__, "__code__", None) is not None:  # not a builtin's slot
            _feed_callable(h, cls.__call__, seen)
        return
    _feed_code(h, code)
    for value in fn.__defaults__ or ():
        _feed_value(h, value, seen)
    _feed_value(h, tuple(sorted((fn.__kwdefaults__ or {}).items())), seen)
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not yet assigned
            value = None
        _feed_value(h, value, seen)


def _feed_code(h, code: types.CodeType) -> None:
    h.update(code.co_code)
    # Line numbers and file names are left out: moving a function within its
    # cell, or a new kernel's file names, must not change the key.
    h.update("\0".join((*code.co_names, *code.co_varnames, *code.co_freevars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            h.update(_stable(const).encode() + b"\0")


def _feed_value(h, value: Any, seen: set[int]) -> None:
    if isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
        _feed_callable(h, value, seen)
    elif isinstance(value, types.CodeType):
        _feed_code(h, value)
    else:
        h.update(_stable(value).encode() + b"\0")


def _stable(value: Any, depth: int = 0) -> str:
    """A text for ``value`` that is the same in every process (no addresses, no
    set order); immutable plain data in full, anything else by its type."""
    if isinstance(value, _SIMPLE):
        return repr(value)
    cls = type(value)
    # Immutable containers only: a list or dict captured by a closure changes
    # while the notebook runs, and would change the key with it.
    if isinstance(value, (tuple, frozenset)) and len(value) <= 64 and depth < 4:
        parts = [_stable(v, depth + 1) for v in value]
        if isinstance(value, frozenset):
            parts.sort()
        return f"{cls.__name__}({','.join(parts)})"
    return f"<{cls.__module__}.{cls.__qualname__}>"


# -- result files -----------------------------------------------------------------
class ResultFiles:
    """One folder of pickled results, one file per key, each written atomically."""

    def __init__(self, folder: str):
        self.folder = folder

    def __repr__(self) -> str:
        return f"ResultFiles({self.folder!r})"

    def path(self, key: str) -> str:
        return os.path.join(self.folder, key + ".pkl")

    def save(self, key: str, value: Any) -> str | None:
        """Pickle ``value`` under ``key``; None when saved, else why it was not."""
        import cloudpickle
        try:
            data = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - anything a __reduce__ may raise
            return f"it does not pickle ({type(exc).__name__}: {exc})"
        path = self.path(key)
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(tmp)
            return f"it could not be written to {self.folder} ({exc.strerror or exc})"
        return None

    def load(self, key: str) -> tuple[bool, Any]:
        """``(True, value)``, or ``(False, None)`` for a missing or unreadable file."""
        try:
            with open(self.path(key), "rb") as f:
                return True, pickle.load(f)
        except Exception:  # noqa: BLE001 - missing, truncated, or from an incompatible library
            return MISS


class PersistResult:
    """A task function that saves its own result under its attempt's key.

    Runs on the worker, so the pickling cost lands where the task ran, and a
    process or Dask worker writes the file itself.  Picklable (by reference to
    this class) whenever the wrapped function is.
    """

    def __init__(self, fn: Callable[..., Any], files: ResultFiles):
        self.fn, self.files = fn, files
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, **kwargs: Any) -> Any:
        value = self.fn(**kwargs)
        if value is not None:
            try:
                ctx = current_task()
            except RuntimeError:  # called outside a run: nothing to save it under
                return value
            if ctx.key is not None:
                why = self.files.save(ctx.key, value)
                if why is not None:
                    # The worker routes stderr to this task's log: the user sees it there.
                    sys.stderr.write(f"nbflow: the result of task {ctx.name!r} was not saved: "
                                     f"{why}; a resumed run will run this task again.\n")
        return value


# -- one run ------------------------------------------------------------------------
class RunResults:
    """Keys, result saving and restoring for one run of ``specs``.

    ``fns`` are the specs' functions wrapped in :class:`PersistResult`, for the
    engine to call (the specs themselves are shared and left as they are).
    ``bases`` maps a task's name to its :func:`task_base`, ``namespaces`` a
    cell task's name to the namespace its variables are restored into.
    """

    def __init__(self, specs: Sequence[TaskSpec], files: ResultFiles, bases: dict[str, str],
                 namespaces: dict[str, dict[str, Any]]):
        self.files = files
        self.bases = [bases[spec.name] for spec in specs]
        self.cache = [spec.cache for spec in specs]
        self.namespaces = {i: namespaces[s.name] for i, s in enumerate(specs)
                           if s.kind == "cell" and s.name in namespaces}
        wrapped: dict[int, PersistResult] = {}  # one wrapper per function, however many tasks
        self.fns = [wrapped.get(id(s.fn))
                    or wrapped.setdefault(id(s.fn), PersistResult(s.fn, files)) for s in specs]

    def key(self, i: int, input_keys: list[str | None]) -> str | None:
        """The engine's keyer: task ``i``'s key, None when an input has no key."""
        if not input_keys:
            return self.bases[i]
        if None in input_keys:  # downstream of a skipped or failed task: not keyed
            return None
        return hashlib.sha256("\0".join((self.bases[i], *input_keys)).encode()).hexdigest()

    def restorer(self, known: dict[str, str], rerun: Iterable[int],
                 lookup: Callable[[str], str | None]) -> Restorer | None:
        """The engine's restore hook, or None when nothing could be restored.

        ``known``: key -> kind indexed by the resumed run and its own resumed
        runs; ``lookup(key)``: the kind indexed by any run (for ``cache=True``
        tasks); ``rerun``: tasks never restored.
        """
        if not known and not any(self.cache):
            return None
        return Restorer(self.files, known, frozenset(rerun), self.cache, lookup,
                        self.namespaces)

    def sink(self, record: Callable[[str, list[tuple]], None], run_id: str,
             index: dict[str, int]) -> SavedResults:
        return SavedResults(record, run_id, index, self.files, self.cache)


class Restorer:
    """``restore(i, key) -> (found, value)`` for the engine (engine thread)."""

    def __init__(self, files: ResultFiles, known: dict[str, str], rerun: frozenset[int],
                 cache: list[bool], lookup: Callable[[str], str | None],
                 namespaces: dict[int, dict[str, Any]]):
        self.files, self.known, self.rerun = files, known, rerun
        self.cache, self.lookup, self.namespaces = cache, lookup, namespaces

    def __call__(self, i: int, key: str) -> tuple[bool, Any]:
        if i in self.rerun:
            return MISS
        kind = self.known.get(key)
        if kind is None and self.cache[i]:
            kind = self.lookup(key)
        if kind is None:
            return MISS
        found, value = (True, None) if kind == "none" else self.files.load(key)
        namespace = self.namespaces.get(i)
        if found and namespace is not None:
            namespace.update(value)
        return found, value


class SavedResults:
    """Engine sink: note in each succeeded attempt's event whether its result was saved.

    It adds ``"result": "none" | "file"`` to the event's detail, so it must come
    *before* the store's sink in the engine's sink list (the store's writer reads the
    detail later, once it has the batch).  For ``cache=True``
    tasks it also hands ``(run_id, task, key, kind, at)`` rows to ``record``
    for the ``results`` index.  ``values`` must be set to the engine's
    ``results`` list before the run starts (the engine sets a task's value
    before its ``succeeded`` event and never changes it after).
    """

    def __init__(self, record: Callable[[str, list[tuple]], None], run_id: str,
                 index: dict[str, int], files: ResultFiles, cache: list[bool]):
        self.record, self.run_id, self.index = record, run_id, index
        self.files, self.cache = files, cache
        self.values: list[Any] = []

    def events(self, batch: list[tuple]) -> None:
        rows = []
        values, index = self.values, self.index
        for ev in batch:
            # Restored tasks (from pending) were saved by an earlier run.
            if ev[5] != "succeeded" or ev[4] != "running":
                continue
            detail = ev[7]
            key = detail.get("key")
            if key is None:
                continue
            i = index[ev[2]]
            if values[i] is None:
                kind = detail["result"] = "none"
            elif os.path.exists(self.files.path(key)):
                kind = detail["result"] = "file"
            else:
                continue
            if self.cache[i]:
                rows.append((self.run_id, ev[2], key, kind, ev[6]))
        if rows:
            self.record(self.run_id, rows)

    def logs(self, batch: list[tuple]) -> None:
        pass
