"""The event loop that runs one flow.

Thread ownership
----------------
One thread, the one that calls :meth:`Engine.run`, owns all mutable run state
and is the only code that changes it; no lock guards it, so nothing else may
touch it.  Everyone else talks to the engine through ``inbox`` (a SimpleQueue):

* executors put ``((task, attempt), Outcome)`` when an attempt ends;
* :meth:`Engine.cancel` (any thread) puts ``(None, ("cancel", reason))``.

Timers (retry back-off, timeouts) live in a heap that the loop consults on each
turn; the clock decides how long to wait for the inbox (see ``clock.py``).

Run state, per task ``i`` (plain lists indexed by declaration order)
---------------------------------------------------------------------
state      the task's :class:`State`; changed only via ``states.transition``
remaining  dependencies not yet in a terminal state (Kahn's in-degree)
nfailed    dependencies that ended failed, upstream_failed or cancelled
nskipped   dependencies that ended skipped
attempt    the current attempt number (0 before the first start)
results    the return value of the succeeded attempt

Plus: the ready queue (a policy from ``policies.py``), ``running`` (the task of
each attempt in flight), the timer heap, and in ``levels`` mode the level being
run and the tasks held back behind its barrier.

Every transition appends one event ``(seq, task, attempt, from, to, at,
detail)`` to a buffer; once per loop turn the buffer goes to the sinks (the
store's writer queue, widget bridges).  Sinks must return quickly and must not
raise; a sink that raises is dropped, it never fails the run.
"""

from __future__ import annotations

import heapq
import queue
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .clock import RealClock
from .events import Detail
from .graph import Graph
from .policies import make_policy
from .spec import TaskSpec
from .states import TERMINAL, State, Trigger, transition
from .worker import Outcome

S, T = State, Trigger
Event = tuple  # (run_id, seq, task, attempt, from_state, to_state, at, detail): events.py
LogRecord = tuple  # (task, attempt, stdout, stderr)


class Executor(Protocol):
    """Runs attempts; knows nothing of scheduling."""

    def start(self, report: Callable[[tuple], None]) -> None: ...
    def submit(self, token: tuple[int, int], fn: Callable[..., Any], kwargs: dict) -> None: ...
    def cancel(self, token: tuple[int, int]) -> None: ...
    def shutdown(self) -> None: ...
    @property
    def workers(self) -> int: ...


class Sink(Protocol):
    """Receives a run's batches on the engine thread: return fast, never block.

    Optional hooks: ``snapshot(rows)`` when added to a running engine, and
    ``finish(cancel_reason_or_None)`` once when the run ends.
    """

    def events(self, batch: list[Event]) -> None: ...
    def logs(self, batch: list[LogRecord]) -> None: ...


class TaskTimeout(TimeoutError):
    """An attempt ran longer than its task's ``timeout``."""


MODES = ("eager", "levels")


class Engine:
    """Runs ``specs`` (already validated into ``graph``) on ``executor``.

    Parameters
    ----------
    mode
        ``"eager"``: a task is ready as soon as its dependencies allow.
        ``"levels"``: Kahn level ``k+1`` starts only when level ``k`` is done.
    policy
        name of the ready-queue policy (``policies.POLICIES``).
    cancel_grace
        seconds to wait for running attempts after a cancel before recording
        them as cancelled and returning.
    """

    def __init__(self, graph: Graph, specs: Sequence[TaskSpec], executor: Executor, *,
                 sinks: Sequence[Sink] = (), clock=None, mode: str = "eager",
                 policy: str = "priority", cancel_grace: float = 10.0, run_id: str = ""):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose 'eager' or 'levels'")
        n = len(graph)
        self.graph, self.specs, self.executor = graph, specs, executor
        self.run_id = run_id
        self.sinks = list(sinks)
        self.clock = clock or RealClock()
        self.mode = mode
        self.cancel_grace = cancel_grace
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.state: list[State] = [S.PENDING] * n
        self.remaining = [len(p) for p in graph.preds]
        self.nfailed = [0] * n
        self.nskipped = [0] * n
        self.attempt = [0] * n
        self.results: list[Any] = [None] * n
        self.errors: dict[int, BaseException] = {}
        self.ready = make_policy(policy, [s.priority for s in specs])
        self.running: set[tuple[int, int]] = set()
        self.timers: list[tuple[float, int, str, int, int]] = []
        self.unfinished = n
        self.cancelled: str | None = None
        self._seq = 0
        self._buf: list[Event] = []
        self._logs: list[LogRecord] = []
        self._timer_seq = 0
        self._names = graph.names
        self._now = self.clock.now
        self._ended = False
        if mode == "levels":
            self.level_left = [len(lv) for lv in graph.levels_idx]
            self.current_level = 0
            self.held: dict[int, list[int]] = {}

    # -- public, thread-safe ---------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop (safe from any thread): nothing new starts."""
        self.inbox.put((None, ("cancel", reason)))

    def add_sink(self, sink: Sink) -> None:
        """Subscribe ``sink`` from any thread.

        On the engine thread it first gets ``sink.snapshot(rows)`` (if it has
        that method) with ``(task, state, attempt)`` for every task, then every
        event from that point on.  After the run, the snapshot is sent at once.
        """
        if self._ended:
            self._send_snapshot(sink)
            _call(sink, "finish", None)
        else:
            self.inbox.put((None, ("add_sink", sink)))

    def _send_snapshot(self, sink: Sink) -> None:
        rows = [(n, s._value_, a) for n, s, a in zip(self._names, self.state, self.attempt)]
        _call(sink, "snapshot", rows)

    # -- the loop ----------------------------------------------------------------
    def run(self) -> None:
        """Run until every task is terminal.  Mutates the run state (owner thread only)."""
        names = self.graph.names
        self.executor.start(self.inbox.put)
        try:
            for i in range(len(names)):
                if not self.remaining[i]:
                    self._deps_done(i)
            self._loop()
        except KeyboardInterrupt:
            self._on_control("cancel", "interrupted")
            self._finish_cancel()
            raise
        finally:
            self._flush()
            self._ended = True
            self.executor.shutdown()
            # A sink whose add_sink message arrived too late still gets the end state.
            while True:
                try:
                    token, payload = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if token is None and payload[0] == "add_sink":
                    self._send_snapshot(payload[1])
                    self.sinks.append(payload[1])
            for sink in self.sinks:
                _call(sink, "finish", self.cancelled)

    def _loop(self) -> None:
        inbox, clock = self.inbox, self.clock
        while self.unfinished:
            self._dispatch()
            self._flush()
            if not self.unfinished:
                break
            msg = clock.wait(inbox, self.timers[0][0] if self.timers else None)
            while msg is not None:
                token, payload = msg
                if token is None:
                    self._on_control(*payload)
                else:
                    self._on_outcome(token, payload)
                try:
                    msg = inbox.get_nowait()
                except queue.Empty:
                    msg = None
            self._fire_timers()
            if self.cancelled is not None and not self.running:
                self._finish_cancel()

    def _dispatch(self) -> None:
        if self.cancelled is not None:
            return
        ready, running, submit = self.ready, self.running, self.executor.submit
        free = self.executor.workers - len(running)
        specs, results, attempt = self.specs, self.results, self.attempt
        index = self.graph.index
        while free > 0 and ready:
            i = ready.pop()
            spec = specs[i]
            attempt[i] += 1
            a = attempt[i]
            self._move(i, T.START)
            kwargs = {}
            for param, (dep, key) in spec.inputs.items():
                value = results[index[dep]]
                kwargs[param] = value if key is None else value[key]
            token = (i, a)
            running.add(token)
            if spec.timeout is not None:
                self._add_timer(self.clock.now() + spec.timeout, "timeout", i, a)
            submit(token, spec.fn, kwargs)
            free -= 1

    # -- transitions -------------------------------------------------------------
    def _move(self, i: int, trigger: Trigger, detail: Detail | None = None, **facts: bool
              ) -> State:
        old = self.state[i]
        name = self._names[i]
        new = transition(old, trigger, name, **facts)
        self.state[i] = new
        self._buf.append((self.run_id, self._seq, name, self.attempt[i], old._value_,
                          new._value_, self._now(), detail))
        self._seq += 1
        if new in TERMINAL:
            self._terminal(i, new)
        return new

    def _terminal(self, i: int, new: State) -> None:
        self.unfinished -= 1
        ok, skipped = new is S.SUCCEEDED, new is S.SKIPPED
        remaining, nfailed, nskipped = self.remaining, self.nfailed, self.nskipped
        for s in self.graph.succs[i]:
            remaining[s] -= 1
            if not ok:
                if skipped:
                    nskipped[s] += 1
                else:
                    nfailed[s] += 1
            if not remaining[s] and self.state[s] is S.PENDING:
                self._deps_done(s)
        if self.mode == "levels":
            self._level_done(i)

    def _deps_done(self, i: int) -> None:
        # Trigger rule all_success: any failed dependency fails this task upstream,
        # else any skipped dependency skips it.
        if self.cancelled is not None:
            self._move(i, T.CANCEL)
        elif self.nfailed[i]:
            self._move(i, T.UPSTREAM_FAIL)
        elif self.nskipped[i]:
            self._move(i, T.SKIP)
        elif self.mode == "levels" and self.graph.level[i] > self.current_level:
            self.held.setdefault(self.graph.level[i], []).append(i)
        else:
            self._move(i, T.DEPS_MET)
            self.ready.push(i)

    def _level_done(self, i: int) -> None:
        self.level_left[self.graph.level[i]] -= 1
        nlevels = len(self.level_left)
        while self.current_level < nlevels and not self.level_left[self.current_level]:
            self.current_level += 1
            for j in self.held.pop(self.current_level, ()):
                self._deps_done(j)

    # -- inbox messages ------------------------------------------------------------
    def _on_outcome(self, token: tuple[int, int], out: Outcome) -> None:
        if token not in self.running:
            return  # a late result of an attempt already timed out or cancelled
        self.running.discard(token)
        i, a = token
        if out.stdout or out.stderr:
            self._logs.append((self.graph.names[i], a, out.stdout, out.stderr))
        if out.ok:
            self.results[i] = out.value
            # The attempt's span is the running and succeeded events' times; only
            # the worker is new (kept small: this is the hot path).
            self._move(i, T.SUCCEED, Detail(worker=out.worker))
        else:
            self._fail(i, out.error, out.error_text,
                       Detail(started=out.started, finished=out.finished, worker=out.worker))

    def _fail(self, i: int, error: BaseException | None, text: str | None, detail: Detail
              ) -> None:
        spec = self.specs[i]
        a = self.attempt[i]
        retries_left = a <= spec.retries and self.cancelled is None
        if error is not None:
            self.errors[i] = error
        detail["error"] = _summary(error, text)
        detail["traceback"] = text
        if self._move(i, T.FAIL, detail, retries_left=retries_left) is S.RETRYING:
            self._add_timer(self.clock.now() + spec.retry_delay, "retry", i, a)

    def _on_control(self, kind: str, arg: Any) -> None:
        if kind == "add_sink":
            self._send_snapshot(arg)
            self.sinks.append(arg)
            return
        if kind != "cancel" or self.cancelled is not None:
            return
        self.cancelled = arg
        for i, st in enumerate(self.state):
            if st is S.PENDING or st is S.READY or st is S.RETRYING:
                self._move(i, T.CANCEL, Detail(reason=arg))
        for token in self.running:
            self.executor.cancel(token)
        self._add_timer(self.clock.now() + self.cancel_grace, "grace", -1, 0)

    def _finish_cancel(self) -> None:
        for (i, _a) in list(self.running):
            self._move(i, T.CANCEL, Detail(reason=self.cancelled))
        self.running.clear()
        # Tasks held behind a barrier or waiting on a dependency never started.
        for i, st in enumerate(self.state):
            if st is S.PENDING or st is S.READY or st is S.RETRYING:
                self._move(i, T.CANCEL, Detail(reason=self.cancelled))

    # -- timers ----------------------------------------------------------------------
    def _add_timer(self, when: float, kind: str, i: int, a: int) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (when, self._timer_seq, kind, i, a))

    def _fire_timers(self) -> None:
        timers, now = self.timers, self.clock.now()
        while timers and timers[0][0] <= now:
            _, _, kind, i, a = heapq.heappop(timers)
            if kind == "timeout" and (i, a) in self.running:
                self.running.discard((i, a))
                self.executor.cancel((i, a))
                limit = self.specs[i].timeout
                err = TaskTimeout(f"task {self.graph.names[i]!r} exceeded its timeout of {limit:g}s")
                self._fail(i, err, f"TaskTimeout: {err}", Detail(timeout=limit))
            elif kind == "retry" and self.state[i] is S.RETRYING and self.attempt[i] == a:
                if self.cancelled is None:
                    self._move(i, T.RETRY)
                    self.ready.push(i)
            elif kind == "grace" and self.running:
                self._finish_cancel()

    # -- sinks -----------------------------------------------------------------------
    def _flush(self) -> None:
        if self._buf:
            batch, self._buf = self._buf, []
            self._publish("events", batch)
        if self._logs:
            logs, self._logs = self._logs, []
            self._publish("logs", logs)

    def _publish(self, method: str, batch: list) -> None:
        for sink in list(self.sinks):
            try:
                getattr(sink, method)(batch)
            except Exception as exc:  # a broken dashboard must never fail a run
                self.sinks.remove(sink)
                warnings.warn(f"nbflow: dropped sink {sink!r} after it raised {exc!r}",
                              RuntimeWarning, stacklevel=1)


def _call(sink: Any, method: str, arg: Any) -> None:
    """Call an optional sink hook; a failing hook is reported, never raised."""
    fn = getattr(sink, method, None)
    if fn is None:
        return
    try:
        fn(arg)
    except Exception as exc:
        warnings.warn(f"nbflow: sink {sink!r} raised {exc!r} in {method}()", RuntimeWarning,
                      stacklevel=1)


def _summary(error: BaseException | None, text: str | None) -> str:
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return (text or "").strip().splitlines()[-1] if text else "unknown error"
