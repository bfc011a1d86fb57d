"""What crosses to a worker in another interpreter and back: shared by the process
and Dask executors.

Functions and their arguments go with cloudpickle, so functions and classes
defined in a notebook (module ``__main__``) work; code keeps its real file
name, so a worker's traceback points at the user's file or notebook cell.
A ``%%task`` cell that declares its reads and assigns goes as its source
(``nbflow/shipped.py``).
An :class:`Outcome` comes back the same way.  The user's own exception comes
back as itself when it pickles, with the worker's traceback as its
``__cause__`` (as ``concurrent.futures`` does); otherwise a
:class:`RemoteError` carries its type name, message and traceback.
``Outcome.error_text`` always holds the formatted traceback.
"""

from __future__ import annotations

import io
import pickle
import time
import types
from collections import ChainMap
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar

import cloudpickle

from ..core.safe import add_note, safe_str
from ..core.worker import Outcome, TaskContext, execute, format_error
from ..errors import NbflowError


class RemoteError(NbflowError):
    """Stands in for an exception from a worker that could not be sent back.

    ``type_name`` is the original type's qualified name, ``message`` its text
    and ``remote_traceback`` the traceback formatted in the worker.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.remote_traceback = type_name, message, remote_traceback

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (RemoteError, (self.type_name, self.message, self.remote_traceback))


class _RemoteTraceback(Exception):
    """Shows the worker's traceback as the cause of the exception it raised."""

    def __init__(self, text: str):
        super().__init__(text)

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


_cloudpickle_code = cloudpickle.Pickler.dispatch_table.get(types.CodeType)


def _code_reduce(code: types.CodeType) -> tuple[Callable[..., types.CodeType], tuple[Any, ...]]:
    # cloudpickle names the code it ships "<dynamic-code>"; keeping the real file
    # name lets a worker's traceback point at the user's file or notebook cell.
    ctor, args = _cloudpickle_code(code)
    return ctor, tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle ships no types
    dispatch_table: ClassVar[ChainMap[type, Callable[[Any], Any]]] = ChainMap(
        {types.CodeType: _code_reduce} if _cloudpickle_code else {},
        cloudpickle.Pickler.dispatch_table)

    def reducer_override(self, obj: Any) -> Any:
        # A %%task cell that declares its reads and assigns goes as its code alone
        # (nbflow/shipped.py): its function refers to the notebook's namespace.
        if type(obj) is types.FunctionType:
            cell = getattr(obj, "nbflow_cell", None)
            if cell is not None and cell.declared:
                return cell.code.__reduce__()
        return super().reducer_override(obj)


def dumps(obj: Any) -> bytes:
    """``obj`` pickled with cloudpickle (by value for ``__main__``), code names kept."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def culprit(kwargs: Mapping[str, Any], reads: Collection[str] = ()) -> str:
    """``: its argument 'x' does not pickle`` (``the variable`` for one of a cell's
    ``reads``), or '' when every argument pickles."""
    for name, value in kwargs.items():
        try:
            dumps(value)
        except Exception:  # noqa: BLE001 - this is the one that does not pickle
            what = "the variable" if name in reads else "its argument"
            return f": {what} {name!r} does not pickle"
    return ""


def who(ctx: TaskContext | None) -> str:
    """The attempt as messages name it."""
    return f"task {ctx.name!r} (attempt {ctx.attempt})" if ctx is not None else "a task"


def failed(error: BaseException, started: float, worker: str) -> Outcome:
    """A failed outcome for ``error``, which happened around the task, not in it."""
    return Outcome(False, None, error, format_error(error), started, time.time(), "", "",
                   worker)


def portable(out: Outcome) -> Outcome:
    """``out`` with an error that survives a pickle round trip (a :class:`RemoteError`
    in place of one that does not)."""
    error = out.error
    if error is None:
        return out
    try:
        pickle.loads(dumps(error))
        return out
    except Exception:  # noqa: BLE001 - reported as the attempt's outcome
        kind = type(error)
        return out._replace(error=RemoteError(f"{kind.__module__}.{kind.__qualname__}",
                                              safe_str(error), out.error_text or ""))


def send_back(out: Outcome, ctx: TaskContext | None, worker: str, place: str, instead: str
              ) -> bytes:
    """The pickle of ``out`` to send back from ``place`` (a worker process, a Dask
    worker); a failure that says so when its value does not pickle, suggesting
    the executor ``instead``."""
    out = portable(out)
    try:
        return dumps(out)
    except Exception as exc:  # noqa: BLE001 - reported as the attempt's outcome
        err = pickle.PicklingError(
            f"{who(ctx)} returned a value that cannot be sent back from its {place} "
            f"({type(exc).__name__}: {exc}). Return picklable data, or run the task with "
            f"{instead}.")
        return dumps(failed(err, out.started, worker)._replace(
            finished=out.finished, stdout=out.stdout, stderr=out.stderr))


def received(data: bytes, ctx: TaskContext | None, started: float, worker: str) -> Outcome:
    """The outcome a worker sent back, its traceback attached as the error's cause."""
    try:
        out = pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - reported as the attempt's outcome
        add_note(exc, f"nbflow: the outcome of {who(ctx)} could not be read back from the "
                      "worker that ran it.")
        return failed(exc, started, worker)
    return with_remote_cause(out)


def with_remote_cause(out: Outcome) -> Outcome:
    """``out`` with the worker's traceback shown as the cause of its error."""
    if out.error is not None and out.error_text:
        out.error.__cause__ = _RemoteTraceback(out.error_text)
    return out


class FunctionBlobs:
    """Each function pickled once per run: a flow built in a loop runs one function
    (one result wrapper) for thousands of tasks, and cloudpickle takes ~0.1 ms
    a call by value.  Holds the functions, so an id is not reused meanwhile."""

    def __init__(self) -> None:
        self._blobs: dict[int, tuple[Any, bytes]] = {}

    def __call__(self, fn: Any) -> bytes:
        found = self._blobs.get(id(fn))
        if found is None:
            found = self._blobs[id(fn)] = (fn, dumps(fn))
        return found[1]


_LOADED: dict[bytes, Any] = {}   # in a worker: function pickle -> the function
_LOADED_MAX = 256


def _function(fn: Any) -> Any:
    """``fn``, or the function a :class:`FunctionBlobs` pickle holds (loaded once)."""
    if type(fn) is not bytes:
        return fn
    found = _LOADED.get(fn)
    if found is None:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.clear()
        found = _LOADED[fn] = pickle.loads(fn)
    return found


def run_job(job: bytes, worker: str, place: str,
            context: Callable[[TaskContext], TaskContext] | None = None) -> bytes:
    """In a worker (``place``: "worker process", "Dask worker"): run one pickled
    ``(fn, kwargs, ctx)`` and return its pickled outcome, which names ``worker``.
    ``fn`` may be a :class:`FunctionBlobs` pickle of its own.

    ``context`` makes the worker's own context from the shipped one (where a
    cancel can reach the task there).
    """
    started = time.time()
    ctx = None
    try:
        fn, kwargs, ctx = pickle.loads(job)
        fn = _function(fn)
    except Exception as exc:  # noqa: BLE001 - reported as the attempt's outcome
        add_note(exc, f"nbflow: the task could not be loaded on its {place}: it refers to a "
                      f"module or object the {place} cannot import (install it there).")
        out = failed(exc, started, worker)
    else:
        run_ctx = context(ctx) if context is not None and ctx is not None else ctx
        out = execute(fn, kwargs, run_ctx)._replace(worker=worker)
    return send_back(out, ctx, worker, place, "executor='threads'")
