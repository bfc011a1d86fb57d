"""A pool of long-lived worker processes, each with its own pipe (``executor="processes"``).

Processes run CPU-bound Python in parallel, and they can be stopped: a cancel
or a timeout kills the worker running that attempt and starts a replacement,
where a thread could only be asked to stop.

Starting workers
----------------
Each worker is a fresh interpreter started with :mod:`subprocess` (the spawn
model: ``fork`` is unsafe in a kernel that runs threads).  Unlike
multiprocessing's spawn it never re-imports the caller's ``__main__``, so it
works the same from a notebook and from a script without an
``if __name__ == "__main__":`` guard.  A worker gets the parent's ``sys.path``
and one end of a socket pair, and runs :func:`serve`.  Start-up (an interpreter
plus nbflow's worker module: 0.1 s measured on an idle machine, a few tenths
under load) is paid by :meth:`ProcessExecutor.start` for all workers at once,
never per task: workers are reused, and only a killed or crashed one is
started again (its replacement's start-up counts against the timeout of the
attempt it runs next).

What crosses the pipe
---------------------
The job and its :class:`Outcome`, pickled as ``wire.py`` describes (cloudpickle,
so notebook functions work; the user's exception comes back as itself).  The
worker runs :func:`nbflow.core.worker.execute` (its output capture is installed
once per worker).  A ``%%task`` cell that declares what it reads and assigns
runs here as on Dask (``nbflow/shipped.py``: its reads go with it, its assigns
come back into the notebook before the tasks after it start); one that does
not is refused before anything is submitted.

Threads
-------
One thread per worker slot sends a job, blocks on the answer and reports it to
the engine.  :meth:`ProcessExecutor.cancel` runs on the engine's thread and
kills the process of the slot running that attempt; the executor's one lock
makes sure it cannot kill a process that has already moved on to the next job.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ..children import reap
from ..core.executor import Report, Token
from ..core.options import check
from ..core.safe import add_note
from ..core.worker import Outcome, TaskContext, capturing
from ..errors import NbflowError, TaskCancelled
from ..shipped import Publish, ShippedCells
from .wire import RemoteError, culprit, dumps, failed, received, run_job, who

__all__ = ["ProcessExecutor", "RemoteError", "WorkerDied", "serve"]

EXIT_WAIT = 2.0  # seconds an idle worker gets to exit after its pipe closes

#: One attempt as a slot takes it: what ``submit`` was given (a cell's reads added)
#: and what writes a cell's assigns back.
_Job = tuple[Token, Callable[..., Any], dict[str, Any], TaskContext | None, Publish | None]


class WorkerDied(NbflowError):
    """The worker process running an attempt exited before reporting how it ended.

    The attempt counts as failed (and is retried if its task has retries left).
    ``exitcode`` is the process's exit status, negative for a signal.
    """

    def __init__(self, message: str, exitcode: int | None = None):
        super().__init__(message)
        self.exitcode = exitcode


class ProcessExecutor:
    """``workers`` processes (default: the CPU count), started by :meth:`start`.

    Raises
    ------
    ValueError
        ``workers`` is less than 1.
    """

    # Tasks run in other interpreters: only a %%task cell that declares its
    # reads and assigns can run here (prepare refuses the others up front).
    shares_memory = False
    # Every worker is an interpreter started by start(): make_executor starts no
    # more than the run has tasks.
    starts_all = True

    def __init__(self, workers: int | None = None):
        workers = check("workers", workers, "ProcessExecutor()")
        self.workers = workers or os.cpu_count() or 1
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()   # None: stop
        self._lock = threading.Lock()   # guards the slots' token/stopping/proc and the two below
        self._closing = False
        self._dropped: set[tuple[int, int]] = set()   # cancelled before a slot took them
        self._slots: list[_Slot] = []
        self._report: Report | None = None
        self._cells = ShippedCells((), "a worker process")

    def prepare(self, specs: Sequence[Any]) -> None:
        """Refuse ``%%task`` cells that do not declare their reads and assigns
        (:class:`ShippedCells`), before anything is recorded.

        Raises
        ------
        ValueError
            such a cell: it runs in the notebook's namespace.
        """
        self._cells = ShippedCells(specs, "a worker process")

    def start(self, report: Report) -> None:
        """Start the worker processes (all at once) and their slot threads.

        Raises
        ------
        NbflowError
            a worker could not be started (the ones already started are stopped).
        """
        self._report = report
        self._closing = False
        self._dropped.clear()
        self._slots = []
        try:
            for k in range(self.workers):
                self._slots.append(_Slot(self, k))
        except OSError as exc:
            self.shutdown()
            raise NbflowError(
                f"could not start worker process {k + 1} of {self.workers}: "
                f"{type(exc).__name__}: {exc}. Use fewer workers (workers=N), or allow more "
                "processes and open files (ulimit -u, ulimit -n).") from exc

    def submit(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
               ctx: TaskContext | None = None) -> None:
        # A cell's reads are taken now, on the engine's thread, as the attempt
        # starts (this executor queues none ahead).
        try:
            kwargs, publish = self._cells.start(token[0], kwargs)
        except NameError as exc:
            if self._report is not None:
                self._report((token, failed(exc, time.time(), "processes")))
            return
        self._jobs.put((token, fn, kwargs, ctx, publish))

    def cancel(self, token: Token) -> None:
        """Kill the worker running ``token`` (a replacement starts), or drop it unstarted."""
        with self._lock:
            for slot in self._slots:
                if slot.token == token:
                    slot.stop()
                    return
            self._dropped.add(token)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every worker: idle ones exit, busy ones (abandoned attempts) are killed.

        Returns once every worker process has ended and been reaped, and every
        slot thread has ended (waiting at most ``timeout`` seconds for threads).
        """
        with self._lock:
            self._closing = True
            for slot in self._slots:
                if slot.token is not None:
                    slot.stop()
        for _ in self._slots:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            slot.thread.join(max(deadline - time.monotonic(), 0))
        for slot in self._slots:   # a thread that missed the deadline must not leave its worker
            slot.kill_now()
        self._slots = []

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        with self._lock:
            return [s.proc.pid for s in self._slots if s.proc is not None]


class _Slot:
    """One worker process, its pipe, and the thread that feeds it."""

    def __init__(self, pool: ProcessExecutor, k: int):
        self.pool = pool
        self.name = f"nbflow-process-{k}"
        self.token: tuple[int, int] | None = None   # the attempt the worker runs
        self.stopping = False                       # cancel() killed the worker
        self.proc: subprocess.Popen[bytes] | None   # None once kill_now() reaped it
        self.proc, self.conn = _spawn(self.name)
        self.thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Kill the worker (caller holds the pool's lock)."""
        self.stopping = True
        if self.proc is not None:
            self.proc.kill()

    def kill_now(self) -> None:
        with self.pool._lock:
            proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def _work(self) -> None:
        pool = self.pool
        jobs = pool._jobs
        while True:
            job = jobs.get()
            if job is None:
                break
            token, fn, kwargs, ctx, publish = job
            with pool._lock:
                closing = pool._closing
                dropped = token in pool._dropped
                if not (closing or dropped):
                    self.token = token
            if closing:
                continue
            try:
                out = _cancelled(ctx, self.name, time.time()) if dropped else \
                    self._attempt(token, fn, kwargs, ctx)
            # E.g. no replacement worker could start: report it, or the run would wait
            # for ever.
            except Exception as exc:  # noqa: BLE001 - reported as the attempt's failure
                out = failed(exc, time.time(), self.name)
            if publish is not None and out.ok:   # a cell's assigns, before its successors run
                publish(out.value, ctx)
            report = pool._report
            if not pool._closing and report is not None:
                report((token, out))
        self._close()

    def _attempt(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
                 ctx: TaskContext | None) -> Outcome:
        started = time.time()
        try:
            job = dumps((fn, kwargs, ctx))
        except Exception as exc:  # noqa: BLE001 - a task that does not pickle fails its attempt
            with self.pool._lock:
                self.token = None
            add_note(exc, f"nbflow: {who(ctx)} cannot be sent to a worker process"
                          f"{culprit(kwargs, self.pool._cells.reads(token[0]))}. Functions "
                          "run with executor='processes' must not refer to open files, locks, "
                          "connections or a %%task cell's namespace; use executor='threads' "
                          "for those.")
            return failed(exc, started, self.name)
        with self.pool._lock:
            cancelled_early = self.stopping   # cancel() came while the job was pickled
            if cancelled_early:
                self.stopping, self.token = False, None
        if cancelled_early:
            self._replace()
            return _cancelled(ctx, self.name, started)
        if self.proc is None or self.proc.poll() is not None:   # died idle (killed from outside)
            self._replace()
        try:
            self.conn.send_bytes(job)
            data: bytes | None = self.conn.recv_bytes()
        except (EOFError, OSError):
            data = None
        with self.pool._lock:
            stopped, self.stopping, self.token = self.stopping, False, None
        if data is not None and not stopped:
            return received(data, ctx, started, self.name)
        code = self._replace()
        if data is not None:   # it finished just as it was cancelled: the outcome stands
            return received(data, ctx, started, self.name)
        if stopped:
            return _cancelled(ctx, self.name, started)
        return failed(WorkerDied(
            f"the worker process running {who(ctx)} exited with {_exit_status(code)} "
            "before reporting its outcome (it crashed, was killed, e.g. by the system when "
            "out of memory, or the task ended the process)", code), started, self.name)

    def _replace(self) -> int:
        """Reap the worker and start a new one unless the pool is closing; its exit code."""
        if self.proc is not None:
            self.proc.kill()
            code = self.proc.wait()
        else:   # shutdown's kill_now() killed and reaped it while this attempt ran
            code = -signal.SIGKILL
        self.conn.close()
        with self.pool._lock:
            if not self.pool._closing:
                self.proc, self.conn = _spawn(self.name)
        return code

    def _close(self) -> None:
        self.conn.close()   # an idle worker exits when its pipe closes
        if self.proc is not None:
            reap(self.proc, EXIT_WAIT)


def _spawn(name: str) -> tuple[subprocess.Popen[bytes], Connection]:
    parent, child = socket.socketpair()
    # SIGINT is ignored from the first line: see serve().
    code = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            f"import sys; sys.path[:] = {sys.path!r}; "
            f"from nbflow.executors.processes import serve; serve({child.fileno()}, {name!r})")
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[child.fileno()],
                                stdin=subprocess.DEVNULL)
    finally:
        child.close()
    return proc, Connection(parent.detach())


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _cancelled(ctx: TaskContext | None, worker: str, started: float) -> Outcome:
    return failed(TaskCancelled(f"{who(ctx)} was stopped: its worker process was killed"),
                  started, worker)


# -- in the worker process ---------------------------------------------------------------

def serve(fd: int, name: str) -> None:
    """The loop of a worker process: run each job read from the socket ``fd``, send
    back its outcome, and return when the parent closes its end."""
    # SIGINT was ignored before this was imported: an interrupt reaches the
    # whole process group, and the parent decides what it means (cancel the
    # run, which kills the workers that must stop).
    threading.current_thread().name = name
    conn = Connection(fd)
    with capturing():
        while True:
            try:
                job = conn.recv_bytes()
            except EOFError:
                return
            conn.send_bytes(run_job(job, name, "worker process"))
