"""Attempts on a Dask cluster (``executor="dask"`` or ``DaskExecutor(client)``).

The engine and the store stay in the kernel; only the attempts go to the
cluster, so retries, back-off, timeouts, trigger rules and dead letters are
decided by nbflow's engine exactly as on threads.

What is sent
------------
Each attempt is pickled in the kernel (``wire.py``: cloudpickle, so functions
defined in the notebook work) before it is submitted, so an argument that
does not pickle fails that attempt at once, with the task named, instead of
somewhere inside Dask.  The worker runs :func:`nbflow.core.worker.execute`
with its output captured and sends the :class:`Outcome` back the same way.
Every attempt is its own Dask key (function, run, task, attempt): Dask hands a
key that is still held the first result it had, so a retry must never reuse one.

Timeouts and cancel
-------------------
Dask cannot stop a running thread, so the engine's timer decides: an attempt
is recorded as timed out on time, and :meth:`DaskExecutor.cancel` asks it to
stop.  A cooperative task sees that through ``nbflow.check_cancelled()`` on the
worker (a Dask ``Event`` per attempt, polled at most every
``POLL`` seconds).  With ``kill_on_timeout=True`` on a cluster of worker
processes the worker running it is restarted instead.  Until an attempt
returns, its worker thread is busy, and the engine counts it so (the contract:
one outcome per submit, sent when the attempt really ended).

Workers and resources
---------------------
``workers`` is the number of threads of the cluster's workers (the maximum,
for an adaptive cluster: Dask grows it while attempts wait).  Each outcome
names the Dask worker that ran it (its address), which is the dashboard
timeline's lane.  A task's ``resources`` whose names the workers advertise
are passed to Dask; a request larger than any worker offers fails at submit,
listing what the workers advertise, rather than waiting in Dask's
``no-worker`` state for ever.  Names no worker advertises are left to
nbflow's own pools.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..core.executor import Report, Token
from ..core.safe import add_note
from ..core.worker import Outcome, TaskContext, capturing
from ..errors import NbflowError, TaskCancelled
from ..extras import need
from ..shipped import Publish, ShippedCells
from .wire import FunctionBlobs, culprit, dumps, failed, received, run_job, who

if TYPE_CHECKING:   # imported when a run starts (need()): Dask is an optional extra
    from distributed import Client, Future

#: An attempt submitted, not yet handed to Dask: token, job, key, resources, context,
#: publish, start time.
Pending = tuple[Token, bytes, str, dict[str, float] | None, TaskContext | None, Publish | None,
                float]

POLL = 0.1   # seconds between two looks at an attempt's stop event on the worker
# Attempts queued per worker thread by default.  The round trip from a worker's
# result to its next task (scheduler, this kernel's engine, scheduler again) is
# milliseconds; with one queued per thread 2,000 no-op tasks took 1.6x plain
# client.submit/gather, with four 0.9-1.4x over several runs on a busy machine
# (benchmarks/README.md), and deeper queues charge timeouts for longer waits.
LOOKAHEAD = 4
# Per worker thread for a run in which no task has a timeout, which a long wait in
# the queue cannot then mis-charge.  The engine's round trip is what keeps the
# cluster fed, and on a loaded machine (a woken thread waits for a core and for
# the GIL the cluster's loop holds) it can outlast four no-op tasks per thread.
# 2,000 no-op tasks against plain client.submit/gather, 4 against 16 per thread in
# the same sitting: 1.63x/1.19x at load 5.6, 1.25x/1.20x at load 4.0
# (benchmarks/README.md).  The cost: the engine commits to more choices early.
LOOKAHEAD_UNTIMED = 16


class DaskExecutor:
    """Runs attempts on a Dask cluster.

    Parameters
    ----------
    client
        A ``distributed.Client`` to use as it is (it is not closed afterwards).
    address
        The scheduler of an existing cluster (``"tcp://host:8786"``): a client
        is opened for each run and closed after it.
    workers
        Without ``client`` or ``address``: a ``LocalCluster`` of that many
        single-threaded workers (default: the CPU count) is started for each run.
    processes
        The local cluster's workers are processes (Dask's default) or threads
        of this process (faster to start, shares memory).
    minimum, maximum
        Make the local cluster adaptive (Dask's ``adapt``) between these
        numbers of workers.
    kill_on_timeout
        Restart the worker process of an attempt that timed out or was
        cancelled (process clusters only), instead of letting it run on.
    lookahead
        Attempts queued on the cluster while every worker is busy (default:
        ``LOOKAHEAD`` per worker thread, ``LOOKAHEAD_UNTIMED`` when no task of the
        run has a timeout), which hides the round trip through the engine
        between two short tasks.  A queued attempt counts as running, and its
        timeout runs, from when a worker ended the attempt before it; Dask may
        run queued attempts in another order, so with timeouts shorter than a
        task's wait in that queue pass ``lookahead=0``, which submits an
        attempt only when a worker is free for it.

    Raises
    ------
    ValueError
        contradictory or out-of-range options.
    ImportError
        ``distributed`` is not installed (with the install command), when the
        executor starts.
    """

    shares_memory = False

    @property
    def lookahead(self) -> int:
        """Attempts queued on the cluster behind its busy workers (see ``__init__``)."""
        if self._lookahead is not None:
            return self._lookahead
        return self.workers * (LOOKAHEAD if self._timed else LOOKAHEAD_UNTIMED)

    def __init__(self, client: Any = None, *, address: str | None = None,
                 workers: int | None = None, processes: bool = True,
                 minimum: int | None = None, maximum: int | None = None,
                 kill_on_timeout: bool = False, lookahead: int | None = None):
        if client is not None and address is not None:
            raise ValueError("give DaskExecutor a client or an address, not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        own = client is None and address is None
        if (minimum is not None or maximum is not None) and not own:
            raise ValueError("minimum= and maximum= adapt a cluster nbflow starts; scale an "
                             "existing cluster with its own cluster.adapt()")
        if minimum is not None and maximum is None:
            raise ValueError("DaskExecutor(minimum=...) needs maximum= too: the engine sizes "
                             "what it submits by the largest the cluster may grow to")
        if maximum is not None and (maximum < 1 or (minimum or 0) > maximum):
            raise ValueError(f"DaskExecutor needs 0 <= minimum <= maximum and maximum >= 1, "
                             f"got minimum={minimum}, maximum={maximum}")
        if lookahead is not None and lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more, got {lookahead}")
        if kill_on_timeout and own and not processes:
            raise ValueError("kill_on_timeout=True restarts worker processes; a cluster of "
                             "threads (processes=False) has none. Use processes=True.")
        self._client_arg, self._address = client, address
        self._own = own
        self._size, self._processes = workers, processes
        self._adapt = (minimum or 0, maximum) if maximum is not None else None
        self.kill_on_timeout = kill_on_timeout
        self._lookahead = lookahead
        self._timed = True   # a task of the run has a timeout (prepare), or not known
        self.workers = workers or maximum or 1
        self._client: Any = None
        self._cluster: Any = None
        # Guards _running and _pending between the engine's thread and the client's loop.
        self._lock = threading.Lock()
        self._running: dict[Token, tuple[Future[bytes], TaskContext | None, Publish | None]] = {}
        self._pending: list[Pending] = []   # submitted, not yet handed to Dask (_flush)
        self._flush_asked = False
        # ended, result not fetched yet: the loop's only
        self._ended: list[tuple[Token, Future[bytes], float]] = []
        self._gathering = False
        self._tracking: set[asyncio.Task[None]] = set()
        self._cells = ShippedCells((), "a Dask worker")
        self._resources: dict[int, dict[str, float]] = {}
        self._advertised: dict[str, float] = {}   # resource -> most any one worker has
        self._signals: ThreadPoolExecutor | None = None
        self._report: Report   # set by start()

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the run going on, None between runs (typed Any:
        Dask is an optional extra). Its ``dashboard_link`` is Dask's own dashboard, its
        ``scheduler_info()`` the workers an adaptive cluster has now."""
        return self._client

    def __repr__(self) -> str:
        where = self._address or ("local cluster" if self._own else repr(self._client_arg))
        return f"<DaskExecutor {where}, {self.workers} workers>"

    # -- the contract ----------------------------------------------------------------
    def prepare(self, specs: Sequence[Any]) -> None:
        """Refuse ``%%task`` cells that do not declare their reads and assigns
        (:class:`ShippedCells`); note each task's resources (read again at start)
        and cells.

        Raises
        ------
        ValueError
            such a cell: it runs in the notebook's namespace.
        """
        self._cells = ShippedCells(specs, "a Dask worker")
        self._timed = any(getattr(s, "timeout", None) is not None for s in specs)
        self._resources = {i: dict(r) for i, s in enumerate(specs)
                           if (r := getattr(s, "resources", None))}

    def start(self, report: Report) -> None:
        """Connect to (or start) the cluster and read what its workers offer."""
        distributed = need("distributed", "executor='dask'")
        self._report = report
        self._nonce = uuid.uuid4().hex[:8]
        self._blobs = FunctionBlobs()
        self._keys = itertools.count()
        if self._client_arg is not None:
            self._client = self._client_arg
        elif self._address is not None:
            self._client = distributed.Client(self._address, set_as_default=False)
        else:
            n = self._size or (self._adapt[1] if self._adapt else None)
            options: dict[str, Any] = {"n_workers": 0 if self._adapt else n,
                                       "threads_per_worker": 1, "processes": self._processes,
                                       "dashboard_address": ":0"}
            if self._processes:   # with threads, host= makes the scheduler fail to start
                options["host"] = "127.0.0.1"
            self._cluster = distributed.LocalCluster(**options)
            if self._adapt:
                self._cluster.adapt(minimum=self._adapt[0], maximum=self._adapt[1])
            self._client = distributed.Client(self._cluster, set_as_default=False)
        self._signals = ThreadPoolExecutor(1, thread_name_prefix="nbflow-dask-signal")
        info = self._client.scheduler_info(n_workers=-1)["workers"].values()
        if not self._adapt:
            self.workers = max(sum(w.get("nthreads", 1) for w in info), 1)
        advertised: dict[str, float] = {}
        for w in info:
            for name, amount in (w.get("resources") or {}).items():
                advertised[name] = max(advertised.get(name, 0), amount)
        self._advertised = advertised

    def submit(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
               ctx: TaskContext | None = None) -> None:
        started = time.time()
        wanted = self._resources.get(token[0])
        resources = None
        if wanted:
            resources, missing = self._dask_resources(wanted)
            if missing:
                self._report((token, failed(NbflowError(missing), started, "dask")))
                return
        try:
            kwargs, publish = self._cells.start(token[0], kwargs)
        except NameError as exc:
            self._report((token, failed(exc, started, "dask")))
            return
        try:
            job = dumps((self._blobs(fn), kwargs, ctx))
        except Exception as exc:  # noqa: BLE001 - reported as the attempt's outcome
            add_note(exc, f"nbflow: {who(ctx)} cannot be sent to a Dask worker"
                      f"{culprit(kwargs, self._cells.reads(token[0]))}. Functions run with "
                      "executor='dask' must not refer to open files, locks, connections or "
                      "a %%task cell's namespace; use executor='threads' for those.")
            self._report((token, failed(exc, started, "dask")))
            return
        # The function's name first: Dask groups keys by that prefix (key_split), as it
        # does its own; a prefix per task name made one Dask task group per task, and
        # its scheduler walks every group on each tick.
        key = (f"{getattr(fn, '__name__', 'task')}-{self._nonce}-{ctx.name if ctx else 'task'}"
               f"-{token[1]}-{next(self._keys)}")
        with self._lock:
            self._pending.append((token, job, key, resources, ctx, publish, started))
            if self._flush_asked:
                return
            self._flush_asked = True
        # One wake-up of the client's event loop for all the attempts submitted
        # until it runs (each wake-up from this thread is a write to its pipe).
        self._client.loop.add_callback(self._flush, self._client)

    def cancel(self, token: Token) -> None:
        """Signal the attempt to stop (its stop event), or restart its worker
        (``kill_on_timeout``); returns at once, the outcome comes when it ends."""
        with self._lock:
            entry = self._running.get(token)
            if entry is None:   # not handed to Dask yet (_flush): it never will be
                queued = next((p for p in self._pending if p[0] == token), None)
                if queued is not None:
                    self._pending.remove(queued)
        if entry is None:
            if queued is not None:
                self._report((token, failed(TaskCancelled(f"{who(queued[4])} was cancelled "
                                                          "before it reached the cluster"),
                                            queued[6], "dask")))
            return
        if self._signals is None:
            return
        self._signals.submit(self._stop, self._client, token, entry[0])

    def shutdown(self) -> None:
        """Cancel what still runs; close the client and cluster if this executor made them."""
        if self._signals is not None:   # the stop signals and restarts already asked for
            self._signals.shutdown(wait=True)
            self._signals = None
        with self._lock:
            left, self._running, self._pending = list(self._running.values()), {}, []
        self._blobs = FunctionBlobs()   # lets the run's functions go
        client, self._client = self._client, None
        if client is None:
            return
        if left:
            client.cancel([entry[0] for entry in left], force=True)
        if client is not self._client_arg:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    # -- on the client's event loop and its threads -------------------------------------------------------------
    def _flush(self, client: Client) -> None:
        with self._lock:
            batch, self._pending, self._flush_asked = self._pending, [], False
        if self._client is not client:   # shut down meanwhile: the run no longer reads them
            return
        for token, job, key, resources, ctx, publish, started in batch:
            fut = client.submit(_run_remote, job, key, key=key, pure=False, resources=resources)
            with self._lock:
                self._running[token] = (fut, ctx, publish)
            # Started here, on the loop, not through add_callback (a pipe write each);
            # held until it ends, as asyncio asks of a task nobody awaits.
            task = asyncio.ensure_future(self._track(client, token, fut, started))
            self._tracking.add(task)
            task.add_done_callback(self._tracking.discard)

    async def _track(self, client: Client, token: Token, fut: Future[bytes],
                     started: float) -> None:
        # Waits for the attempt to end without fetching its result: results are
        # fetched in batches (_collect), one gather per batch instead of the
        # round trip to the worker that awaiting each future makes.
        state = fut._state
        if state is not None:   # None only once the future was released
            await state.wait()
        self._ended.append((token, fut, started))
        if self._gathering:   # the running gather's loop takes it next
            return
        self._gathering = True
        try:
            while self._ended:
                batch, self._ended = self._ended, []
                await self._collect(client, batch)
        finally:
            self._gathering = False

    async def _collect(self, client: Client,
                       batch: list[tuple[Token, Future[bytes], float]]) -> None:
        done = [fut for _, fut, _ in batch if fut.status == "finished"]
        data: dict[Any, bytes] = {}
        if done:
            try:
                data = dict(zip([f.key for f in done],
                                await client.gather(done, asynchronous=True)))
            except BaseException:  # noqa: BLE001 - each is awaited alone below, which says why
                data = {}
        for token, fut, started in batch:
            blob, error = data.get(fut.key), None
            if blob is None:
                try:
                    blob = await fut
                # cancelled, or the worker died: still one outcome
                except BaseException as exc:  # noqa: BLE001 - see above
                    error = exc
            self._finish(token, blob, error, started)

    def _finish(self, token: Token, blob: bytes | None, error: BaseException | None,
                started: float) -> None:
        with self._lock:
            entry = self._running.pop(token, None)
        if entry is None:   # already reported (its worker was restarted), or shut down
            return
        _, ctx, publish = entry
        if blob is None:
            out = _lost(error or RuntimeError("the Dask future ended without a result"), ctx,
                        started)
        else:
            out = received(blob, ctx, started, "dask")
        if publish is not None and out.ok:   # a %%task cell's assigns, before its successors run
            publish(out.value, ctx)
        self._report((token, out))

    def _stop(self, client: Client, token: Token, fut: Future[bytes]) -> None:
        distributed = need("distributed", "executor='dask'")
        try:
            distributed.Event(fut.key, client=client).set()
            if not self.kill_on_timeout:
                return
            # Only workers a nanny watches: one in this process (a cluster of
            # threads) would take the kernel with it, one without a nanny would
            # not come back.
            info = client.scheduler_info(n_workers=-1)["workers"]
            workers = [w for w, keys in client.processing().items()
                       if fut.key in keys and (info.get(w) or {}).get("nanny")]
            with self._lock:
                entry = self._running.pop(token, None)
            if entry is None:   # it ended meanwhile
                return
            client.cancel([fut], force=True)
            if workers:
                # SIGKILL, which the worker's nanny answers with a fresh process at
                # once; restart_workers would first wait seconds for a graceful close
                # that a thread stuck in the task never allows.
                client.run(_kill_me, workers=workers, wait=False)
            self._report((token, _killed(entry[1], workers)))
        # The cluster is going away: the future's callback reports.
        except Exception:  # noqa: BLE001 - see above
            pass

    def _dask_resources(self, wanted: Mapping[str, float]
                        ) -> tuple[dict[str, float] | None, str]:
        """What to ask Dask for, and why the task cannot run (empty if it can)."""
        offered = self._advertised
        mine = {k: v for k, v in wanted.items() if k in offered}
        short = {k: v for k, v in mine.items() if v > offered[k]}
        if short:
            have = ", ".join(f"{k}={v:g}" for k, v in sorted(offered.items()))
            need_ = ", ".join(f"{k}={v:g}" for k, v in sorted(short.items()))
            return None, (f"this task needs {need_}, more than any Dask worker advertises "
                          f"({have}); start workers with more (dask worker --resources "
                          "'NAME=N') or ask for less")
        return mine or None, ""


def _lost(exc: BaseException, ctx: TaskContext | None, started: float) -> Outcome:
    if type(exc).__name__ == "CancelledError":
        return failed(TaskCancelled(f"{who(ctx)} was cancelled on the Dask cluster"),
                      started, "dask")
    add_note(exc, f"nbflow: Dask could not run {who(ctx)} to the end (its worker died or "
                  "the cluster went away).")
    return failed(exc, started, "dask")


def _killed(ctx: TaskContext | None, workers: list[str]) -> Outcome:
    where = workers[0] if workers else "dask"
    return failed(TaskCancelled(f"{who(ctx)} was stopped: its Dask worker {where} was "
                                "restarted"), time.time(), where)


# -- on the Dask worker ----------------------------------------------------------------

class _RemoteContext(TaskContext):
    """The attempt's context on a Dask worker: ``cancelled`` is the attempt's stop event."""

    __slots__ = ("_event", "_next", "_seen")

    def __init__(self, ctx: TaskContext, key: str):
        super().__init__(ctx.name, ctx.attempt, ctx.run_id, ctx.key)
        # The first look only after POLL seconds: most attempts are over by
        # then, and each look is a round trip to the scheduler.
        self._event, self._seen, self._next = key, False, time.monotonic() + POLL

    @property
    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._seen and now >= self._next:
            self._next = now + POLL
            from distributed import Event
            self._seen = Event(self._event).is_set()
        return self._seen

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        self._seen = value


async def _kill_me() -> None:   # a coroutine: client.run(wait=False) wants one
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


def _run_remote(job: bytes, key: str) -> bytes:
    """Run one pickled attempt on a Dask worker; its pickled outcome."""
    from distributed import get_worker

    with capturing():
        return run_job(job, get_worker().address, "Dask worker",
                       lambda ctx: _RemoteContext(ctx, key))
