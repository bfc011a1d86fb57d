"""The event loop that runs one flow.

Thread ownership
----------------
One thread, the one that calls :meth:`Engine.run`, owns all mutable run state
and is the only code that changes it; no lock guards it, so nothing else may
touch it.  Everyone else talks to the engine through ``inbox`` (a SimpleQueue):

* executors put ``((task, attempt), Outcome)`` when an attempt ends;
* :meth:`Engine.cancel` and :meth:`Engine.add_sink` (any thread) put
  ``(None, (kind, argument))``.

Timers (retry back-off, timeouts, deadlines, the cancel grace period) live in
a heap that the loop consults on each turn; the clock decides how long to wait
for the inbox (see ``clock.py``), so a virtual clock runs them instantly.

Run state: one record, :class:`runstate.RunState` (documented there), which the
engine is.  What starts next is the scheduler's decision (``scheduler.py``):
the policy's order, resource pools with reservation; phases are join points
the engine counts as dependencies.

A task's life: when its last dependency ends (or earlier, when an ending
decides its rule), its trigger rule (``triggers.py``) runs, skips or fails
it.  To run, it first asks ``restore`` whether a stored result with its key
exists (resume, caching); if so it is
``succeeded`` at once with ``cached`` in the event detail.  Otherwise it is
``ready``, a free worker starts it, and its outcome ends it, or retries it
after a back-off while it has retries left and the error is one it retries on.
``fail_fast`` cancels the run at the first task that fails for good.  After
the last task, a failed or cancelled run with ``on_failure="compensate"``
undoes its successes one by one in reverse topological order (``saga.py``).
A cancel, its grace period and abandoned attempts are ``cancelling.py``'s.

Every transition appends one event (``events.py``) to a buffer; once per loop
turn the buffer goes to the sinks (the store's writer queue, widget bridges).
Sinks must return quickly; a sink that raises is dropped with a warning, it
never fails the run.
"""

from __future__ import annotations

import heapq
import queue
import random
import threading
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, cast

from ..errors import SkipTask, TaskCancelled
from .cancelling import Cancelling
from .clock import Clock, Inbox, Message, RealClock
from .events import Detail
from .executor import Executor, lookahead
from .gcfreeze import frozen
from .graph import Graph
from .options import check_all
from .policies import RunInfo
from .retry import backoff_delay
from .runstate import RunState
from .safe import describe, safe_str
from .saga import COMPENSATION, Saga
from .scheduler import Phases, Scheduler
from .sinks import Event, LogRecord, Sink, call_hook, publish
from .spec import TaskSpec
from .states import PLAIN, TERMINAL, State, Trigger, transition
from .triggers import COUNT_SUCCEEDED, EARLY_ON_SUCCESS, RUN, SKIP, decide
from .worker import Outcome, RunIf, Saved, TaskContext

S, T = State, Trigger


class TaskTimeout(TimeoutError):
    """An attempt ran longer than its task's ``timeout``."""


ACTIVE = frozenset({S.PENDING, S.READY, S.RUNNING, S.RETRYING})


def check_phases(mode: str, specs: Sequence[TaskSpec]) -> None:
    """Raise ValueError for a run whose mode cannot run these specs' phases (before
    anything is recorded: ``Flow.run`` calls it before it writes the run)."""
    if mode == "levels" and any(map(attrgetter("phase"), specs)):
        raise ValueError("mode='levels' cannot run phases: levels ignore them and would "
                         "wait on each other. Use mode='eager' (each phase already waits "
                         "for the one before it)")


class Engine(RunState, Saga, Cancelling):
    """Runs ``specs`` (already validated into ``graph``) on ``executor``.

    Parameters
    ----------
    mode
        ``"eager"``: a task is ready as soon as its dependencies allow.
        ``"levels"``: Kahn level ``k+1`` starts only when level ``k`` is done.
    policy
        a ready-queue policy: a name (``policies.POLICIES``) or a policy object.
    pools
        ``{pool: slots}`` of the resource pools tasks may ask for.
    inherit_priority
        raise each task's priority to that of the tasks waiting on it.
    history
        ``{task: seconds}``: its usual duration, for policies that need one
        when the task declares no ``expected``.
    cancel_grace
        seconds to wait for running attempts after a cancel before recording
        them as cancelled and returning.
    fail_fast
        cancel the run as soon as a task fails for good.
    on_failure
        ``"compensate"``: when the run fails or is cancelled, call each
        succeeded task's ``compensate(result)``, last finished first.
    keyer
        ``keyer(i, input_keys) -> key or None``: the result key of task ``i``.
    restore
        ``restore(i, key) -> (found, value)``: a stored result for that key.
    seed
        seed of the random generator used for retry jitter.
    fns
        what to call for each task, by index (default: each spec's ``fn``); the
        run's wrappers (result saving) go here, so specs stay shared and unchanged.
    """

    def __init__(self, graph: Graph, specs: Sequence[TaskSpec], executor: Executor, *,
                 sinks: Sequence[Sink] = (), clock: Clock | None = None, mode: str = "eager",
                 policy: str = "priority", cancel_grace: float = 10.0, run_id: str = "",
                 fail_fast: bool = False, on_failure: str | None = None,
                 keyer: Callable[[int, list[str | None]], str | None] | None = None,
                 restore: Callable[[int, str], tuple[bool, Any]] | None = None,
                 seed: int | None = None, fns: Sequence[Callable[..., Any]] | None = None,
                 pools: dict[str, int] | None = None, inherit_priority: bool = False,
                 history: dict[str, float] | None = None):
        # Flow.run checked them already; an Engine built directly is checked here.
        check_all({"mode": mode, "policy": policy, "fail_fast": fail_fast,
                   "on_failure": on_failure, "seed": seed}, "Engine()")
        check_phases(mode, specs)
        n = len(graph)
        RunState.__init__(self, [len(p) for p in graph.preds])
        self.graph, self.specs, self.executor = graph, specs, executor
        self.run_id = run_id
        self.sinks = list(sinks)
        self.clock = clock or RealClock()
        self.mode = mode
        self.cancel_grace = cancel_grace
        self.fail_fast = fail_fast
        self.on_failure = on_failure
        self.keyer, self.restore = keyer, restore
        self.rng = random.Random(seed)
        self.inbox: Inbox = queue.SimpleQueue()
        self.info = RunInfo(graph, specs, self.clock, history or {}, inherit_priority)
        self.ready = Scheduler(self.info, policy, pools)
        self._pooled = self.ready.pooled
        self._lookahead = 0   # the executor's, once it started (it may size itself then)
        self._held = 0 if getattr(executor, "replaces_abandoned", False) else 1
        self._early = [s.trigger in EARLY_ON_SUCCESS for s in specs]
        self._succs = graph.succs
        self.phases = None
        if any(map(attrgetter("phase"), specs)):
            self.phases = Phases(specs, graph.index)
            for i in range(n):
                self.remaining[i] += self.phases.waits(i)
        if "always" in map(attrgetter("trigger"), specs):
            # ``always`` waits for its phase only: its dependencies' endings skip it.
            self._succs = [[s for s in succ if specs[s].trigger != "always"]
                           for succ in graph.succs]
            for i, s in enumerate(specs):
                if s.trigger == "always":
                    self.remaining[i] = self.phases.waits(i) if self.phases else 0
        self._fns = [fn if s.run_if is None else RunIf(fn, s.run_if)
                     for fn, s in zip(fns or [s.fn for s in specs], specs)]
        self._seq = 0
        self._buf: list[Event] = []
        self._values: dict[int, bytes] = {}   # seq of a success event -> its result's pickle
        self._logs: list[LogRecord] = []
        self._timer_seq = 0
        self._names = graph.names
        self._now = self.clock.now
        self._ended = False
        self._ending = threading.Lock()   # the one lock: add_sink (any thread) vs the run's end
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
        with self._ending:  # so the run cannot end between this check and the put
            if not self._ended:
                self.inbox.put((None, ("add_sink", sink)))
                return
        self._send_snapshot(sink)
        call_hook(sink, "finish", self.cancelled)

    def _send_snapshot(self, sink: Sink) -> None:
        rows = [(n, s._value_, a) for n, s, a in zip(self._names, self.state, self.attempt)]
        call_hook(sink, "snapshot", rows)

    # -- the loop ----------------------------------------------------------------
    def run(self, *, freeze: bool = True) -> None:
        """Run until every task is terminal.  Mutates the run state (owner thread only).

        ``freeze``: hide the objects that exist before the run from the garbage
        collector while it goes (``gcfreeze.py``).  A stepped simulation, which
        waits on a person between instants, passes False: frozen for that long,
        the kernel's garbage would pile up.
        """
        if not freeze:
            self._run()
            return
        with frozen():
            self._run()

    def _run(self) -> None:
        try:
            # Inside the try: an executor that fails half-way through starting
            # (processes under a low limit of open files) is shut down too.
            self.executor.start(self.inbox.put)
            self._lookahead = lookahead(self.executor)
            # Sinks subscribed before the run started (a dashboard shown before
            # flow.run) get every event: they need no history from the store.
            # Any other message waits for the loop, as it would have.
            for msg in self._queued_sinks():
                self.inbox.put(msg)
            # The roots, listed first: a restored root ends at once and readies
            # its dependents, which must not be started a second time here.
            if any(map(attrgetter("deadline"), self.specs)):   # a deadline is > 0 or a datetime
                for i, due in enumerate(self.info.deadlines):
                    if due is not None:
                        self._add_timer(due, "deadline", i, 0)
            for i in [i for i, r in enumerate(self.remaining) if not r]:
                self._deps_done(i)
            self._loop()
            if self.on_failure == "compensate" and self._needs_compensation():
                self._compensate()
        except KeyboardInterrupt:
            self._cancel("interrupted")
            self._finish_cancel()
            raise
        finally:
            self._flush()
            with self._ending:
                self._ended = True
            self.executor.shutdown()
            # A sink whose add_sink arrived after the last turn still gets the end
            # state; other late messages (an outcome abandoned at the end) are moot.
            self._queued_sinks()
            for sink in self.sinks:
                call_hook(sink, "finish", self.cancelled)

    def _loop(self) -> None:
        inbox, clock = self.inbox, self.clock
        while self.unfinished:
            self._dispatch()
            self._flush()
            if not self.unfinished:
                break
            self._drain(clock.wait(inbox, self.timers[0][0] if self.timers else None))
            if self.timers:
                self._fire_timers()
            if self.cancelled is not None and not self.running:
                self._finish_cancel()

    def _drain(self, msg: Message | None) -> None:
        inbox = self.inbox
        while msg is not None:
            token, payload = msg
            if token is None:
                self._on_control(*payload)
            else:
                if self._ahead and token not in self.running:
                    self._ran_ahead(token)
                self._on_outcome(token, payload)
                if self._ahead:
                    self._picked_up()
            # Only this thread takes from the inbox, so a non-empty one cannot
            # empty before get_nowait (which raising Empty at the end of every
            # turn cost more than the check).
            msg = inbox.get_nowait() if not inbox.empty() else None

    def _queued_sinks(self) -> list[Message]:
        """Subscribe the sinks whose ``add_sink`` is in the inbox now; return the
        other messages taken out of it."""
        others: list[Message] = []
        while not self.inbox.empty():   # only this thread takes from the inbox
            msg = self.inbox.get_nowait()
            if msg[0] is None and msg[1][0] == "add_sink":
                self._on_control(*msg[1])
            else:
                others.append(msg)
        return others

    def _inputs(self, i: int) -> dict[str, Any]:
        results, index = self.results, self.graph.index
        kwargs = {}
        for param, (dep, key) in self.specs[i].inputs.items():
            if isinstance(dep, tuple):   # inputs={param: [tasks]}: the list of their results
                kwargs[param] = [results[index[d]] for d in dep]
                continue
            value = results[index[dep]]
            kwargs[param] = value if key is None else value[key]
        return kwargs

    def _dispatch(self) -> None:
        if self.cancelled is not None:
            return
        ready = self.ready
        # An abandoned attempt (timed out, or left after a cancel) still holds its
        # worker until it returns, unless the executor gives the run another.
        free = self.executor.workers - len(self.running) - self._held * len(self.abandoned)
        chosen = ready.take(free) if free > 0 and len(ready) else ()
        if chosen:
            # Recorded and published before the executor has them, so no task
            # runs before the sinks have its running event (a thread the pool
            # starts for it runs it at once).
            attempts = [self._attempt(i) for i in chosen]
            for token, ctx in attempts:
                self._start(token, ctx)
            self._flush()
            for token, ctx in attempts:
                self._submit(token, ctx)
        if len(chosen) == free and self._lookahead:  # every worker busy: queue a few
            ahead = self._ahead
            room = self._lookahead - len(ahead)
            for i in ready.take(room, ahead=True) if room > 0 and len(ready) else ():
                token, ctx = attempt = self._attempt(i)
                self._submit(token, ctx)
                ahead.append(attempt)

    def _attempt(self, i: int) -> tuple[tuple[int, int], TaskContext]:
        """Task ``i``'s next attempt: its token and context."""
        a = self.attempt[i] + 1
        return (i, a), TaskContext(self._names[i], a, self.run_id, self.keys[i])

    def _submit(self, token: tuple[int, int], ctx: TaskContext) -> None:
        """Hand an attempt to the executor (its state is not changed)."""
        i = token[0]
        self.executor.submit(token, self._fns[i],
                             self._inputs(i) if self.specs[i].inputs else {}, ctx)

    def _start(self, token: tuple[int, int], ctx: TaskContext) -> None:
        """A worker has the attempt ``token``: it is running from now on."""
        i, a = token
        self.attempt[i] = a
        self._move(i, T.START)
        self.running[token] = ctx
        timeout = self.specs[i].timeout
        if timeout is not None:
            self._add_timer(self._now() + timeout, "timeout", i, a)

    def _ran_ahead(self, token: tuple[int, int]) -> None:
        # An executor whose workers take queued attempts out of order (a
        # cluster) reported one the engine still counted as queued: it started.
        for k, (queued, ctx) in enumerate(self._ahead):
            if queued == token:
                del self._ahead[k]
                if ctx.cancelled:
                    self.abandoned.add(token)
                else:
                    self._start(token, ctx)
                return

    def _picked_up(self) -> None:
        # A worker that reported an outcome takes the oldest queued attempt next.
        token, ctx = self._ahead.popleft()
        if ctx.cancelled:  # cancelled while queued: the worker returns it unrun
            self.abandoned.add(token)
            self.ready.release(token[0])
        else:
            self._start(token, ctx)

    # -- transitions -------------------------------------------------------------
    def _move(self, i: int, trigger: Trigger, detail: Detail | None = None,
              retries_left: bool | None = None) -> State:
        old = self.state[i]
        name = self._names[i]
        # A plain entry read from the table here: transition() with a dict of facts
        # per move was a tenth of a simulation's instructions; only a failure's
        # guarded entry goes through it, with its one fact.
        new = PLAIN.get((old, trigger)) or (
            transition(old, trigger, name) if retries_left is None
            else transition(old, trigger, name, retries_left=retries_left))
        self.state[i] = new
        self._buf.append((self.run_id, self._seq, name, self.attempt[i], old._value_,
                          new._value_, self._now(), detail))
        self._seq += 1
        if new in TERMINAL and old in ACTIVE:  # not the compensation phase's moves
            self._terminal(i, new)
        return new

    def _terminal(self, i: int, new: State) -> None:
        self.unfinished -= 1
        ok, skipped = new is S.SUCCEEDED, new is S.SKIPPED
        self._deps_ended(self._succs[i], ok, skipped)
        if self.phases is not None:
            nxt = self.phases.ended(i, not ok and not skipped, skipped)
            if nxt is not None:   # the phase's join point: one ending for each task after it
                self._deps_ended(*nxt)
        if self.mode == "levels":
            self._level_done(i)

    def _deps_ended(self, succs: list[int], ok: bool, skipped: bool) -> None:
        remaining, nfailed, nskipped = self.remaining, self.nfailed, self.nskipped
        early, state, pending = self._early, self.state, S.PENDING
        for s in succs:
            r = remaining[s] = remaining[s] - 1
            if not ok:
                if skipped:
                    nskipped[s] += 1
                else:
                    nfailed[s] += 1
            if not r:
                if state[s] is pending:
                    self._deps_done(s)
            # A failure or a skip may decide any rule early; a success only a few.
            elif r > 0 and (not ok or early[s]) and state[s] is pending:
                self._deps_done(s, early=True)

    def _deps_done(self, i: int, early: bool = False) -> None:
        waiting = self.remaining[i]
        if self.cancelled is not None:
            if not early:
                self._move(i, T.CANCEL, Detail(reason=self.cancelled))
            return
        failed, skipped, rule = self.nfailed[i], self.nskipped[i], self.specs[i].trigger
        succeeded = 0
        if rule in COUNT_SUCCEEDED:
            ndeps = len(self.graph.preds[i]) + (self.phases.waits(i) if self.phases else 0)
            succeeded = ndeps - waiting - failed - skipped
        verdict = decide(rule, failed, skipped, succeeded, waiting)
        if verdict is None:
            return
        if waiting:
            self.remaining[i] = -1   # decided: later endings must not decide it again
        if verdict is not RUN:
            self._move(i, T.SKIP if verdict is SKIP else T.UPSTREAM_FAIL)
        elif self.mode == "levels" and self.graph.level[i] > self.current_level:
            self.held.setdefault(self.graph.level[i], []).append(i)
        else:
            self._make_ready(i)

    def _make_ready(self, i: int) -> None:
        if self.keyer is not None:
            key = self.keys[i] = self.keyer(i, [self.keys[j] for j in self.graph.preds[i]])
            if key is not None and self.restore is not None:
                found, value = self.restore(i, key)
                if found:
                    self.results[i] = value
                    self._move(i, T.RESTORE, Detail(cached=True, key=key))
                    return
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
        ctx = self.running.pop(token, None)
        if ctx is None:
            # A late result of an attempt already timed out or abandoned: its
            # worker is free again; the result is discarded.
            self.abandoned.discard(token)
            return
        i, a = token
        if self._pooled and a != COMPENSATION:
            self.ready.release(i)
        if out.stdout or out.stderr or out.displays:
            self._logs.append((self._names[i], a, out.stdout, out.stderr, out.displays))
        if a == COMPENSATION:
            self._compensated(i, out)
        elif out.ok:
            value = out.value
            # The attempt's span is the running and succeeded events' times; only
            # the worker is new (kept small: this is the hot path).
            detail = {"worker": out.worker}
            if ctx.key is not None:
                detail["key"] = ctx.key
            if type(value) is Saved:   # what the run's wrapper saved (results.py)
                value, kind, blob = value
                if kind is not None:
                    detail["result"] = kind
                if blob is not None:   # stored in the row of the event _move makes
                    self._values[self._seq] = blob
            self.results[i] = value
            self.took[i] = out.finished - out.started
            self._move(i, T.SUCCEED, detail)
        elif isinstance(out.error, SkipTask):
            self._move(i, T.SKIP, Detail(reason=safe_str(out.error), worker=out.worker))
        elif isinstance(out.error, TaskCancelled) and (ctx.cancelled or self.cancelled):
            self._move(i, T.CANCEL, Detail(reason=self.cancelled or "cancelled",
                                           worker=out.worker))
        else:
            self._fail(i, out.error, out.error_text,
                       Detail(started=out.started, finished=out.finished, worker=out.worker))

    def _fail(self, i: int, error: BaseException | None, text: str | None, detail: Detail
              ) -> None:
        spec = self.specs[i]
        a = self.attempt[i]
        retries_left = (a <= spec.retries and self.cancelled is None
                        and (error is None or _retries(error, spec.retry_on)))
        if error is not None:
            self.errors[i] = error
        detail["error"] = _summary(error, text)
        detail["traceback"] = text
        if not retries_left:
            # Enough to inspect and requeue it later (the dead-letter record).
            keys, index = self.keys, self.graph.index
            detail["inputs"] = {p: [keys[index[d]] for d in dep] if isinstance(dep, tuple)
                                else keys[index[dep]] for p, (dep, _k) in spec.inputs.items()}
            if self.keys[i] is not None:
                detail["key"] = self.keys[i]
        if retries_left:
            delay = backoff_delay(a, spec.retry_delay, spec.backoff, spec.max_delay,
                                  spec.jitter, self.rng)
            detail["retry_in"] = delay
            self._move(i, T.FAIL, detail, retries_left=True)
            self._add_timer(self._now() + delay, "retry", i, a)
        else:
            self._move(i, T.FAIL, detail, retries_left=False)
            if self.fail_fast and self.cancelled is None:
                self._cancel(f"fail_fast: task {self._names[i]!r} failed")

    def _on_control(self, kind: str, arg: Any) -> None:
        if kind == "add_sink":
            self._send_snapshot(arg)
            self.sinks.append(arg)
        elif kind == "cancel":
            self._cancel(arg)

    def _compensated(self, i: int, out: Outcome) -> None:
        if out.ok:
            self._move(i, T.SUCCEED, Detail(worker=out.worker))
        else:
            self._move(i, T.FAIL, Detail(error="compensation failed: "
                                         + _summary(out.error, out.error_text),
                                         traceback=out.error_text, worker=out.worker))

    # -- timers ----------------------------------------------------------------------
    def _add_timer(self, when: float, kind: str, i: int, a: int) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (when, self._timer_seq, kind, i, a))

    def _fire_timers(self) -> None:
        timers, now = self.timers, self._now()
        while timers and timers[0][0] <= now:
            _, _, kind, i, a = heapq.heappop(timers)
            if kind == "timeout" and (i, a) in self.running:
                ctx = self.running.pop((i, a))
                ctx.cancelled = True
                self._abandon((i, a))
                self.ready.release(i)
                if self._ahead and not self._held:  # its replacement takes the next queued
                    self._picked_up()
                limit = self.specs[i].timeout
                err = TaskTimeout(f"task {self._names[i]!r} exceeded its timeout of {limit:g}s")
                self._fail(i, err, f"TaskTimeout: {err}", Detail(timeout=limit))
            elif kind == "retry" and self.state[i] is S.RETRYING and self.attempt[i] == a:
                self._move(i, T.RETRY)
                self.ready.push(i)
            elif kind == "grace" and self.running:
                self._finish_cancel()
            elif kind == "deadline" and self.state[i] in ACTIVE:
                due = cast(float, self.info.deadlines[i])   # its timer was set for one
                self._move(i, T.MISS_DEADLINE, Detail(deadline=due, late=now - due))

    # -- sinks -----------------------------------------------------------------------
    def _flush(self) -> None:
        if self._buf:
            batch, self._buf = self._buf, []
            if self._values:
                # Before the events they belong to: a sink that stores them
                # (the store's) writes both in one row.
                values, self._values = self._values, {}
                self._publish("values", values, optional=True)
            self._publish("events", batch)
        if self._logs:
            logs, self._logs = self._logs, []
            self._publish("logs", logs)

    def _publish(self, method: str, batch: Any, optional: bool = False) -> None:
        publish(self.sinks, method, batch, optional)


def _retries(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``error`` is one of ``kinds``; a class whose metaclass makes
    ``isinstance`` raise counts as no match, never as an engine error."""
    try:
        return isinstance(error, kinds)
    except Exception:  # noqa: BLE001 - user code (__instancecheck__) on the engine thread
        return False


def _summary(error: BaseException | None, text: str | None) -> str:
    if error is not None:
        return describe(error)   # a user's __str__ may raise: never on this thread
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else "unknown error"
