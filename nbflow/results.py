"""Persisted task results: their keys, how they are saved, and restoring them.

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
  task's function and pickles a non-None result before the attempt returns
  (plain ``pickle`` when that needs nothing from ``__main__``, else
  cloudpickle, so classes and functions defined in a notebook load in another
  kernel).  A pickle of up to :data:`INLINE_LIMIT` bytes goes back with the
  outcome and is stored *in the row of the attempt's* ``succeeded`` *event*
  (column ``events.value``), in the same transaction; a larger one is written
  by the worker to ``<results folder>/<key>.pkl`` (owner-only, tmp file +
  ``os.replace``).  The wrapper returns a :class:`~nbflow.core.worker.Saved`
  saying what it did, and the engine notes it in the event's detail:
  ``result`` is ``"none"`` (the task returned None), ``"inline"`` or
  ``"file"``, and absent when nothing was saved (the task's stderr log says
  why).  So a result counts as saved exactly when its success is committed,
  and only when this attempt saved it: a file somebody else put there is
  never mistaken for one.
* A resumed run learns what it can restore from the ``succeeded`` events of
  the run it resumes (and the runs that one resumed); ``cache=True`` tasks also
  get a row in the store's ``results`` table, indexed by key, so any run finds
  them (:class:`CacheIndex`, a sink that only observes).
* :class:`Restorer` is the engine's ``restore`` hook: a saved result is loaded
  back; a cell task's variables go back into the notebook namespace.  A file
  that is missing or does not load is a miss: the task runs again.
* Files are trusted only if they are ours: :class:`ResultFiles` saves and loads
  only in a folder owned by this user that no one else can write to, and loads
  only regular files owned by this user and writable by no one else (opened
  without following links or blocking on a FIFO).  Anything else is refused
  with a message saying how to fix the folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import sys
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

from .core.safe import safe_str
from .core.spec import TaskSpec
from .core.weakcache import WeakCache
from .core.worker import Saved, current_task
from .store.open import make_private_folders

MISS = (False, None)
_SIMPLE = (int, float, complex, str, bytes, bool, type(None))
_DIGESTS = WeakCache()


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
    digest: bytes | None = _DIGESTS.get(fn)
    if digest is not None:
        return digest
    h = hashlib.sha256(b"nbflow-code-1 %d.%d\0" % sys.version_info[:2])
    _feed_callable(h, fn, set())
    digest = h.digest()
    _DIGESTS.put(fn, digest)   # not weak-referenceable: hashed again next run
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


# -- encoding ------------------------------------------------------------------------
#: Pickles up to this size travel with their success event into the store (the
#: row of the event); larger ones go to a file, written by the worker.  A few
#: thousand such rows make a transaction of a few megabytes at most, and reading
#: a run's saved results back for a resume stays one query.
INLINE_LIMIT = 64 * 1024


def encode(value: Any) -> bytes:
    """``value`` pickled so that another kernel can load it.

    Plain pickle is ten to a hundred times faster than cloudpickle for small
    values, but pickles classes and functions by reference, and a reference to
    ``__main__`` (a notebook's own definitions) does not load in another
    kernel: such pickles are made again with cloudpickle, which pickles what
    ``__main__`` defines by value.

    Raises
    ------
    Exception
        whatever pickling the value raised (a lock, a generator, a socket...).
    """
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a lambda, a local class...: cloudpickle may manage
        data = None
    if data is None or b"__main__" in data:
        import cloudpickle
        data = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data


# -- result files -----------------------------------------------------------------
class UnsafeLocation(Exception):
    """A results folder or file that others could have written: never loaded."""


class ResultFiles:
    """One folder of pickled results, one file per key, each written atomically.

    The folder is created owner-only (0700); files are created 0600.  Before a
    save or a load the folder must be a real folder (not a link) owned by this
    user and writable by no one else, because a pickle runs code when loaded:
    a file another user could plant or swap is never read.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self._checked = False   # the folder passed check_folder() in this process

    def __repr__(self) -> str:
        return f"ResultFiles({self.folder!r})"

    def __getstate__(self) -> dict:   # a worker process checks the folder itself
        return {"folder": self.folder, "_checked": False}

    def path(self, key: str) -> str:
        return os.path.join(self.folder, key + ".pkl")

    def check_folder(self, create: bool) -> None:
        """Create the folder (owner-only) if asked, then make sure it is safe to use.

        Raises
        ------
        UnsafeLocation
            it is a link or not a folder, belongs to another user, or others
            can write to it.
        FileNotFoundError
            it does not exist and ``create`` is false.
        OSError
            it could not be created.
        """
        if self._checked:
            return
        if create:
            make_private_folders(self.folder)
        st = os.lstat(self.folder)
        _check_owned(st, self.folder, "results folder", stat.S_ISDIR)
        self._checked = True

    def save(self, key: str, data: bytes) -> str | None:
        """Write the pickle ``data`` under ``key``; None when saved, else why it was not."""
        path = self.path(key)
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            self.check_folder(create=True)
            # O_EXCL | O_NOFOLLOW: never write through a file or link left there.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with open(fd, "wb", closefd=True) as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
        except UnsafeLocation as exc:
            return str(exc)
        except OSError as exc:
            return f"it could not be written to {self.folder} ({exc.strerror or exc})"
        return None

    def load(self, key: str) -> tuple[bool, Any]:
        """``(True, value)``; ``(False, None)`` for a missing, unreadable or unsafe file.

        Opening neither follows a link nor waits on a FIFO or a device planted in
        the file's place; only a regular file this user owns, that no one else
        can write, in a safe folder, is unpickled.
        """
        try:
            self.check_folder(create=False)
            fd = os.open(self.path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, UnsafeLocation):
            return MISS
        try:
            with open(fd, "rb", closefd=True) as f:
                _check_owned(os.fstat(f.fileno()), f.name, "result file", stat.S_ISREG)
                data = f.read()
        except (OSError, UnsafeLocation):
            return MISS
        return decode(data)


def _check_owned(st: os.stat_result, path: Any, what: str, is_kind: Callable[[int], bool]
                 ) -> None:
    fix = ("Make it yours and private (chmod 700 on a folder, 600 on a file), or point "
           "NBFLOW_RESULTS at a folder of your own.")
    if not is_kind(st.st_mode):
        want = "folder" if what.endswith("folder") else "regular file"
        raise UnsafeLocation(f"the {what} {path} is not a {want} (it is a "
                             f"{_file_type(st.st_mode)}): nbflow does not use it. {fix}")
    if st.st_uid != os.geteuid():
        raise UnsafeLocation(f"the {what} {path} belongs to another user (uid {st.st_uid}): "
                             f"nbflow does not save or load results there, since loading a "
                             f"result runs code. {fix}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeLocation(f"the {what} {path} can be written by other users: nbflow does "
                             f"not save or load results there, since a planted result would "
                             f"run code when loaded. {fix}")


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "folder"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device")):
        if test(mode):
            return name
    return "file"


def decode(data: bytes) -> tuple[bool, Any]:
    """``(True, value)`` from a pickle this user saved; a miss if it does not load."""
    try:
        return True, pickle.loads(data)
    except Exception:  # noqa: BLE001 - truncated, or from an incompatible library version
        return MISS


class PersistResult:
    """A task function that saves its own result under its attempt's key.

    Runs on the worker, so the pickling cost lands where the task ran, and a
    process or Dask worker writes a large result's file itself.  Returns a
    :class:`Saved` (the value and what was saved of it), which the engine
    unwraps.  Picklable (by reference to this class) whenever the wrapped
    function is.
    """

    def __init__(self, fn: Callable[..., Any], files: ResultFiles):
        self.fn, self.files = fn, files
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, **kwargs: Any) -> Saved:
        value = self.fn(**kwargs)
        if value is None:
            return _saved((None, "none", None))
        try:
            ctx = current_task()
        except RuntimeError:  # called outside a run: nothing to save it under
            return _saved((value, None, None))
        if ctx.key is None:   # downstream of an unkeyed task: nothing to save it under
            return _saved((value, None, None))
        try:
            data = encode(value)
        except Exception as exc:  # noqa: BLE001 - anything a __reduce__ may raise
            return self._not_saved(ctx.name, value, f"it does not pickle "
                                   f"({type(exc).__name__}: {safe_str(exc)})")
        if len(data) <= INLINE_LIMIT:
            return _saved((value, "inline", data))
        why = self.files.save(ctx.key, data)
        if why is not None:
            return self._not_saved(ctx.name, value, why)
        return _saved((value, "file", None))

    @staticmethod
    def _not_saved(name: str, value: Any, why: str) -> Saved:
        # The worker routes stderr to this task's log: the user sees it there.
        sys.stderr.write(f"nbflow: the result of task {name!r} was not saved: "
                         f"{why.rstrip('.')}; "
                         "a resumed run will run this task again.\n")
        return _saved((value, None, None))


_saved = functools.partial(tuple.__new__, Saved)


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

    def restorer(self, known: dict[str, tuple[str, bytes | None]], rerun: Iterable[int],
                 lookup: Callable[[str], tuple[str, bytes | None] | None]) -> Restorer | None:
        """The engine's restore hook, or None when nothing could be restored.

        ``known``: key -> (kind, inline pickle) saved by the resumed run and its
        own resumed runs; ``lookup(key)``: the same saved by any run (for
        ``cache=True`` tasks); ``rerun``: tasks never restored.
        """
        if not known and not any(self.cache):
            return None
        return Restorer(self.files, known, frozenset(rerun), self.cache, lookup,
                        self.namespaces)

    def cache_index(self, record: Callable[[str, list[tuple]], None], run_id: str,
                    index: dict[str, int]) -> CacheIndex | None:
        """The sink that indexes this run's ``cache=True`` results, if it has such tasks."""
        if not any(self.cache):
            return None
        return CacheIndex(record, run_id, index, self.cache)


class Restorer:
    """``restore(i, key) -> (found, value)`` for the engine (engine thread)."""

    def __init__(self, files: ResultFiles, known: dict[str, tuple[str, bytes | None]],
                 rerun: frozenset[int], cache: list[bool],
                 lookup: Callable[[str], tuple[str, bytes | None] | None],
                 namespaces: dict[int, dict[str, Any]]):
        self.files, self.known, self.rerun = files, known, rerun
        self.cache, self.lookup, self.namespaces = cache, lookup, namespaces

    def __call__(self, i: int, key: str) -> tuple[bool, Any]:
        if i in self.rerun:
            return MISS
        saved = self.known.get(key)
        if saved is None and self.cache[i]:
            saved = self.lookup(key)
        if saved is None:
            return MISS
        kind, blob = saved
        if kind == "none":
            found, value = True, None
        elif kind == "inline" and blob is not None:
            found, value = decode(blob)
        elif kind == "file":
            found, value = self.files.load(key)
        else:
            return MISS
        namespace = self.namespaces.get(i)
        if found and namespace is not None:
            namespace.update(value)
        return found, value


class CacheIndex:
    """Engine sink: index the saved results of ``cache=True`` tasks by key.

    It only reads the ``succeeded`` events of attempts (the engine noted what
    was saved in their detail) and hands ``(run_id, task, key, kind, at)``
    rows to ``record`` for the store's ``results`` table.  It comes after the
    store's own sink, so a row is committed with its success or after it.
    """

    def __init__(self, record: Callable[[str, list[tuple]], None], run_id: str,
                 index: dict[str, int], cache: list[bool]):
        self.record, self.run_id, self.index, self.cache = record, run_id, index, cache

    def events(self, batch: list[tuple]) -> None:
        rows = []
        for ev in batch:
            # Restored tasks (from pending) were indexed by the run that saved them.
            if ev[5] != "succeeded" or ev[4] != "running" or not self.cache[self.index[ev[2]]]:
                continue
            kind = ev[7].get("result")
            if kind is not None:
                rows.append((self.run_id, ev[2], ev[7]["key"], kind, ev[6]))
        if rows:
            self.record(self.run_id, rows)

    def logs(self, batch: list[tuple]) -> None:
        pass
