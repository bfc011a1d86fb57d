"""What a worker does with one task: call it, time it, capture its output.

Workers are pure: :func:`execute` takes the function, its arguments and the
attempt's :class:`TaskContext` and returns an :class:`Outcome`; it never
touches the run state, the store or a widget.  Executors call it (in a thread,
a process or on a Dask worker) and report the outcome to the engine's inbox.

Inside a task, :func:`current_task` gives the attempt's context; a long task
polls ``current_task().cancelled`` or calls :func:`check_cancelled` to stop
early when its run is cancelled or its attempt timed out (a thread cannot be
stopped from outside).

Output capture is per thread: :func:`capturing` swaps ``sys.stdout`` and
``sys.stderr`` for routers that send each write to the buffer of the task the
writing thread is running, and everything else (the cell's own prints, other
threads) to the stream that was there before.  Rich output (``display(df)``)
is the notebook layer's to catch (``notebook/displays.py``); it hands each
bundle to :func:`record_display`, which keeps it with the attempt like its text.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, NamedTuple, TextIO

from ..errors import SkipTask, TaskCancelled
from .safe import describe
from .scoped import WhileAny
from .text import CappedText

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the first frame outside nbflow: this function's frame and
    nbflow's wrappers (result persistence, run_if, cell execution) are not the
    user's concern.  Kept whole if every frame is nbflow's."""
    first = tb
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    return tb if tb is not None else first


class TaskContext:
    """The attempt a worker is running: what a task can know about itself.

    ``cancelled`` is set (by the engine's thread, hence a plain attribute that
    a task only reads) when the run is cancelled or the attempt times out.
    """

    __slots__ = ("attempt", "cancelled", "key", "name", "run_id")

    def __init__(self, name: str, attempt: int, run_id: str = "", key: str | None = None):
        self.name, self.attempt, self.run_id, self.key = name, attempt, run_id, key
        self.cancelled = False

    def check_cancelled(self) -> None:
        """Raise :class:`nbflow.TaskCancelled` if this attempt should stop."""
        if self.cancelled:
            raise TaskCancelled(f"task {self.name!r} (attempt {self.attempt}) was cancelled")

    def __reduce__(self) -> tuple[type[TaskContext], tuple[str, int, str, str | None]]:
        # crosses to process workers without the live flag
        return (TaskContext, (self.name, self.attempt, self.run_id, self.key))

    def __repr__(self) -> str:
        return f"<TaskContext {self.name!r} attempt {self.attempt} of run {self.run_id}>"


def current_task() -> TaskContext:
    """The context of the task running in this thread.

    Raises
    ------
    RuntimeError
        when called outside a task.
    """
    ctx = _local.ctx
    if ctx is None:
        raise RuntimeError("nbflow.current_task() was called outside a running task; call it "
                           "from inside a task function or %%task cell")
    return ctx


def check_cancelled() -> None:
    """Raise :class:`nbflow.TaskCancelled` if the current task should stop; a no-op
    outside a task."""
    ctx = _local.ctx
    if ctx is not None and ctx.cancelled:
        ctx.check_cancelled()


class Outcome(NamedTuple):
    """The result of one attempt, as a worker reports it."""

    ok: bool
    value: Any
    error: BaseException | None     # the user's exception, engine frames trimmed
    error_text: str | None          # its formatted traceback (survives pickling)
    started: float
    finished: float
    stdout: str
    stderr: str
    worker: str
    displays: tuple[dict[str, Any], ...] = ()   # the rich outputs it displayed (record_display)


class Saved(NamedTuple):
    """A task's value and what its run's wrapper saved of it (``nbflow/results.py``).

    ``kind``: ``"none"`` (the value is None), ``"inline"`` (``blob`` is its
    pickle, to be stored with the success event), ``"file"`` (the worker wrote
    it to the results folder) or None (nothing was saved).  The engine unwraps
    it, so downstream tasks and ``Run.result`` see the value itself.
    """

    value: Any
    kind: str | None
    blob: bytes | None


class _Nothing(enum.Enum):
    NOTHING = 0


#: The buffer of a task that has written nothing to a stream yet.
_NOTHING: Final = _Nothing.NOTHING
#: An attempt's buffer of one stream; None outside a task.
_Buffer = CappedText | Literal[_Nothing.NOTHING]


class _Thread(threading.local):
    """What the current thread runs: the attempt, its output buffers and their
    key in ``_running`` (the class's values until its first task)."""

    ctx: TaskContext | None = None
    stdout: _Buffer | None = None
    stderr: _Buffer | None = None
    live: tuple[str, str, int] | None = None
    displays: list[dict[str, Any]] | None = None   # what the attempt displayed (record_display)
    display_chars: int = 0
    worker: str   # the thread's name, read once (unset until then)


_local = _Thread()
_new_outcome = tuple.__new__
# What the attempts running in this process have printed so far, by (run, task,
# attempt): read (never written) by the dashboard's thread to stream it live.
_running: dict[tuple[str, str, int], list[_Buffer]] = {}   # [stdout, stderr] buffers
_shown: dict[tuple[str, str, int], list[dict[str, Any]]] = {}    # ... and what they displayed
#: What one attempt keeps of its rich output: bundles, and characters in all.
DISPLAY_LIMIT, DISPLAY_CHARS = 50, 800_000   # under the store's TEXT_LIMIT


def record_display(bundle: dict[str, Any], size: int, display_id: str | None = None) -> bool:
    """Keep ``bundle`` (a JSON-able dict, ``size`` characters) as rich output of the task
    this thread runs; False if it runs none (the caller shows the bundle as usual).

    A bundle with the ``display_id`` of an earlier one replaces it (``update_display``).
    Past ``DISPLAY_LIMIT`` bundles or ``DISPLAY_CHARS`` characters an attempt keeps one
    note that says how many more it displayed.
    """
    if getattr(_local, "ctx", None) is None:
        return False
    shown = _local.displays
    if shown is None:
        shown = _local.displays = []
        _local.display_chars = 0
        live = getattr(_local, "live", None)
        if live is not None:
            _shown[live] = shown
    # An update (display_id seen before) counts its size too: a display updated without
    # end is capped like one that grows.
    updated = None if display_id is None else next(
        (k for k, old in enumerate(shown) if old.get("id") == display_id), None)
    if updated is not None and _local.display_chars + size <= DISPLAY_CHARS:
        _local.display_chars += size
        shown[updated] = {**bundle, "id": display_id}
        return True
    if len(shown) >= DISPLAY_LIMIT or _local.display_chars + size > DISPLAY_CHARS:
        last = shown[-1] if shown else {}
        more = last.get("dropped", 0) + 1
        note = {"data": {"text/plain": f"[{more} more outputs not kept: an attempt keeps "
                         f"{DISPLAY_LIMIT} outputs and {DISPLAY_CHARS:,} characters]"},
                "dropped": more}
        if last.get("dropped"):
            shown[-1] = note
        else:
            shown.append(note)
        return True
    _local.display_chars += size
    shown.append(bundle if display_id is None else {**bundle, "id": display_id})
    return True


def clear_displays() -> bool:
    """Forget what the task this thread runs displayed (``clear_output``); False if it
    runs none."""
    if getattr(_local, "ctx", None) is None:
        return False
    if _local.displays:
        _local.displays.clear()
        _local.display_chars = 0
    return True


def displays_so_far(run_id: str, task: str, attempt: int) -> list[dict[str, Any]] | None:
    """What a running attempt has displayed so far, or None if nothing (or it is not
    running in this process)."""
    shown = _shown.get((run_id, task, attempt))
    return list(shown) if shown else None


def output_so_far(run_id: str, task: str, attempt: int) -> str | None:
    """What a running attempt has printed so far (stdout, then stderr), or None if it
    is not running in this process (ended, or on a process or Dask worker)."""
    buffers = _running.get((run_id, task, attempt))
    if buffers is None:
        return None
    # text() copies under the GIL while the task may write: a consistent prefix.
    return "".join("" if b is _NOTHING else b.text() for b in list(buffers))


def _worker_name() -> str:
    try:
        return _local.worker
    except AttributeError:   # the thread's first task
        name = _local.worker = threading.current_thread().name
        return name


def execute(fn: Callable[..., Any], kwargs: dict[str, Any], ctx: TaskContext | None = None
            ) -> Outcome:
    """Run ``fn(**kwargs)`` and report what happened; never raises.

    An attempt cancelled before a worker took it is not run.
    """
    if ctx is not None and ctx.cancelled:
        now = time.time()
        return Outcome(False, None, TaskCancelled(f"task {ctx.name!r} was cancelled before it "
                                                  "started"), None, now, now, "", "",
                       _worker_name())
    # A task's first write makes its buffer (most tasks print nothing).
    _local.stdout = _local.stderr = _NOTHING
    _local.displays = None
    _local.ctx = ctx
    live = _local.live = None if ctx is None else (ctx.run_id, ctx.name, ctx.attempt)
    if live is not None:   # the buffers, once made (_Router), for output_so_far
        _running[live] = [_NOTHING, _NOTHING]
    started = time.time()
    try:
        value = fn(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - whatever a task raises fails the task
        # Whatever a task raises ends the attempt, and the worker goes on:
        # sys.exit(), KeyboardInterrupt, GeneratorExit, asyncio.CancelledError
        # and custom BaseExceptions fail the task (docs/reliability.md).  Only
        # a real interrupt of the engine's own thread is raised again, by the
        # executor that runs tasks there (sync.py).
        finished = time.time()
        exc = exc.with_traceback(_user_frames(exc.__traceback__))
        printed, errors, displayed = _end_capture()
        return Outcome(False, None, exc, format_error(exc), started, finished, printed, errors,
                       _worker_name(), displayed)
    # _end_capture() inline: this is every task's way back.
    out, err, shown = _local.stdout, _local.stderr, _local.displays
    _local.stdout = _local.stderr = _local.ctx = None
    if live is not None:
        _running.pop(live, None)
        if shown is not None:
            _shown.pop(live, None)
    # tuple.__new__ as namedtuple's own __new__ does, without its Python frame.
    return _new_outcome(Outcome, (True, value, None, None, started, time.time(),
                                  "" if out is _NOTHING else out.text(),
                                  "" if err is _NOTHING else err.text(), _worker_name(),
                                  () if shown is None else tuple(shown)))


def _end_capture() -> tuple[str, str, tuple[dict[str, Any], ...]]:
    """What the attempt printed to stdout and stderr and displayed; later writes go to
    the streams."""
    out, err, shown = _local.stdout, _local.stderr, getattr(_local, "displays", None)
    _local.stdout = _local.stderr = _local.ctx = None
    live = _local.live
    if live is not None:
        _running.pop(live, None)
        _shown.pop(live, None)
    return _text(out), _text(err), () if shown is None else tuple(shown)


def _text(buf: _Buffer | None) -> str:
    # None: a task that ran in a thread which then ended its attempt (run_coroutine's).
    return "" if buf is None or buf is _NOTHING else buf.text()


def format_error(exc: BaseException) -> str:
    """The formatted traceback of ``exc``; never raises, whatever the user's
    exception does in ``__str__``, ``__notes__`` or ``__cause__``."""
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001 - a broken exception must still fail its task
        return describe(exc) + "\n"


def run_coroutine(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run ``async def fn(**kwargs)`` to completion on an event loop of its own.

    What an ``async def`` task is declared as (``declare.py``).  A worker
    thread has no loop, so the coroutine gets a new one (``asyncio.run``).  A
    thread that already runs one (a notebook's, when the engine runs tasks in
    its own thread) cannot run a second: the coroutine then runs on a new
    thread that carries the attempt's context and output capture, and this
    one waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fn(**kwargs))
    live = _local.live
    slots = None if live is None else _running.get(live)
    for k, attr in enumerate(("stdout", "stderr")):   # buffers both threads write to, made now
        if getattr(_local, attr, None) is _NOTHING:
            setattr(_local, attr, CappedText())
            if slots is not None:
                slots[k] = getattr(_local, attr)
    if getattr(_local, "displays", None) is None:   # shared with the coroutine's thread too
        _local.displays, _local.display_chars = [], 0
        if slots is not None and live is not None:
            _shown[live] = _local.displays
    attempt = (_local.stdout, _local.stderr, _local.ctx, _local.displays, _local.live)
    box: list[Any] = []

    def main() -> None:
        (_local.stdout, _local.stderr, _local.ctx, _local.displays,
         _local.live) = attempt
        _local.display_chars = 0
        try:
            box.append((True, asyncio.run(fn(**kwargs))))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as is
            box.append((False, exc))

    thread = threading.Thread(target=main, name=threading.current_thread().name + "-async")
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


class RunIf:
    """``fn`` behind a ``run_if`` predicate that gets the same arguments.

    A false predicate raises :class:`nbflow.SkipTask` before ``fn`` runs, so
    the predicate runs on the worker like the task (never on the engine's
    thread) and its own errors fail the task as the task's would.
    """

    def __init__(self, fn: Callable[..., Any], run_if: Callable[..., bool]):
        self.fn, self.run_if = fn, run_if
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, **kwargs: Any) -> Any:
        if not self.run_if(**kwargs):
            raise SkipTask(f"run_if of {self.__name__!r} returned a false value")
        return self.fn(**kwargs)


class _Router:
    """A text stream that writes to the current task's buffer, else to ``target``.

    A buffer keeps at most ``TEXT_LIMIT`` characters (``text.py``): its start and end.
    """

    def __init__(self, target: TextIO, attr: str):
        self._target = target
        self._attr = attr

    def write(self, s: str) -> int:
        buf = getattr(_local, self._attr, None)
        if buf is None:
            return self._target.write(s)
        if not isinstance(s, str):   # as sys.stdout says it
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if buf is _NOTHING:
            buf = CappedText()
            setattr(_local, self._attr, buf)
            live = _local.live
            slots = None if live is None else _running.get(live)
            if slots is not None:   # seen live by output_so_far
                slots[self._attr == "stderr"] = buf
        buf.write(s)
        return len(s)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if getattr(_local, self._attr, None) is None:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _install_routers() -> None:
    sys.stdout = _Router(sys.stdout, "stdout")
    sys.stderr = _Router(sys.stderr, "stderr")


def _remove_routers() -> None:
    # Unwrap only our own routers: someone may have replaced them since.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _Router):
            setattr(sys, name, stream._target)


#: ``with capturing():`` routes task output per thread while any run is inside.
capturing = WhileAny(_install_routers, _remove_routers)
