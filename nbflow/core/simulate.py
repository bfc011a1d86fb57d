"""Discrete-event simulation: the real engine and scheduler on a virtual clock.

A simulation is a run of the same :class:`~nbflow.core.engine.Engine`, with the
same policies, trigger rules, retries and back-off, in which no task's code runs
and nothing sleeps:

* the clock is a :class:`~nbflow.core.clock.VirtualClock`;
* the executor is a :class:`SimulatedExecutor`: ``submit`` takes the lowest
  numbered free worker, looks up how long the attempt takes (``duration(task,
  attempt)``) and whether it fails, and schedules its outcome on the clock at
  ``now + duration``.  Nothing else: it holds no scheduling state, exactly as a
  real executor does, so every decision is the engine's and its scheduler's.

When several attempts end at the same instant the clock hands all their
outcomes to the engine together, and the engine applies them all before its
next dispatch: list scheduling as Graham defined it (a worker that frees up at
``t`` and a task that becomes ready at ``t`` meet at ``t``).  Ties between
tasks ready at the same time break by the policy, then by declaration order.
So the same flow, durations, failures and seed give the same schedule every
time, and a real run that takes the same durations makes the same decisions.

A timed-out attempt keeps its worker until its duration is over, as a thread
that cannot be stopped does; a task's ``run_if`` is not evaluated (no code
runs), so such a task always runs.

:func:`simulate` runs one to the end and returns a :class:`Schedule`;
:class:`Stepper` runs one in a thread of its own and lets a caller advance it one
instant at a time (``step()``) and look at the engine's state in between.
"""

from __future__ import annotations

import random
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import heappush, heapreplace
from typing import Any

from .clock import Inbox, Message, VirtualClock
from .engine import Engine
from .executor import Report, Token
from .graph import Graph
from .sinks import Event, Sink
from .spec import TaskSpec
from .states import TERMINAL, State
from .worker import Outcome, TaskContext

#: Seconds an attempt takes when the durations say nothing about its task.
DEFAULT_DURATION = 1.0

Duration = Callable[[str, int], float]
Fails = Callable[[str, int], bool]
_END_STATES = {s.value for s in TERMINAL} | {State.RETRYING.value}
_outcome = tuple.__new__   # as the worker builds outcomes: without namedtuple's Python frame


_INF = float("inf")


def never(_name: str, _attempt: int) -> bool:
    """``fails`` when nothing fails (the executor then skips asking)."""
    return False


class SimulatedFailure(Exception):
    """The failure a simulation gives an attempt it was told to fail."""


def worker_name(k: int) -> str:
    return f"worker {k}"


class SimulatedExecutor:
    """An executor that runs nothing: each attempt holds a worker for its duration.

    ``duration(task, attempt)`` gives the seconds an attempt takes and
    ``fails(task, attempt)`` whether it fails; outcomes are scheduled on
    ``clock`` (a :class:`VirtualClock`).
    """

    shares_memory = True
    lookahead = 0

    def __init__(self, workers: int, clock: VirtualClock, duration: Duration, fails: Fails):
        self.workers = workers
        self._clock, self._duration, self._fails = clock, duration, fails
        # (free from, worker): the engine hands out no more attempts than it has
        # free workers, so the top is free; of those free, the one free longest
        # (then the lowest numbered), so lanes read the same every time.
        self._free = [(float("-inf"), k) for k in range(workers)]
        self._names = [worker_name(k) for k in range(workers)]
        self._report: Report | None = None
        self._table = getattr(duration, "table", None)

    def start(self, report: Report) -> None:
        self._report = report

    def submit(self, token: Token, fn: Callable[..., Any] | None, kwargs: dict[str, Any],
               ctx: TaskContext) -> None:
        clock, free = self._clock, self._free
        now = clock.t
        name, attempt = ctx.name, ctx.attempt
        table = self._table
        end = now + (table[name] if table is not None else self._duration(name, attempt))
        k = free[0][1]
        heapreplace(free, (end, k))
        if self._fails is not never and self._fails(name, attempt):
            error = SimulatedFailure(f"simulated failure of {name!r} (attempt {attempt})")
            text = "".join(traceback.format_exception_only(error))
            outcome = _outcome(Outcome, (False, None, error, text, now, end, "", "",
                                         self._names[k], ()))
        else:
            outcome = _outcome(Outcome, (True, None, None, None, now, end, "", "",
                                         self._names[k], ()))
        # What clock.at(end, ...) does, without its frame (one per attempt).
        heappush(clock._due, (end, clock._seq, (token, outcome)))
        clock._seq += 1

    def cancel(self, token: Token) -> None:
        pass   # an attempt runs its course, as a thread that cannot be stopped does

    def shutdown(self) -> None:
        self._report = None


# -- inputs ---------------------------------------------------------------------------
def durations_of(durations: Any, names: Sequence[str], default: float = DEFAULT_DURATION
                 ) -> Duration:
    """``duration(task, attempt)`` from a dict (task -> seconds), a callable
    ``(task, attempt) -> seconds`` or None (every task takes ``default``).

    Raises
    ------
    ValueError
        a duration that is negative, infinite or not a number (named).
    TypeError
        ``durations`` is none of those.
    """
    if durations is None:
        durations = {}
    if isinstance(durations, Mapping):
        table = dict.fromkeys(names, default)
        table.update(durations)
        seconds = table.values()
        # Checked whole, in C, when every duration is a float in range (a NaN makes
        # the sum NaN; an overflowing sum is checked one by one): a loop over ten
        # thousand tasks cost a quarter of what the list scheduler takes in all.
        if (len(table) == len(names) and set(map(type, seconds)) <= {float}
                and (not table or (min(seconds) >= 0 and sum(seconds) < _INF))):
            return _Table(table)
        get, table = durations.get, {}
        for name in names:
            value = get(name, default)
            # A float in range as it is (most are); anything else is checked and converted.
            table[name] = (value if type(value) is float and 0 <= value < _INF
                           else _seconds(name, value))
        unknown = sorted(set(durations) - set(names))
        if unknown:
            raise ValueError(f"durations name tasks the flow does not have: "
                             f"{', '.join(map(repr, unknown[:5]))}")
        return _Table(table)
    if callable(durations):
        return lambda name, attempt: _seconds(name, durations(name, attempt))
    raise TypeError("durations must be a dict {task: seconds}, a function (task, attempt) -> "
                    f"seconds, or 'history'; got {type(durations).__name__}")


class _Table:
    """Durations from a dict, checked once: ``table[task]`` (the executor reads it
    without calling)."""

    __slots__ = ("table",)

    def __init__(self, table: dict[str, float]):
        self.table = table

    def __call__(self, name: str, _attempt: int) -> float:
        return self.table[name]


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the duration of task {name!r} must be a number of seconds, got "
                         f"{value!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"the duration of task {name!r} must be a finite number of seconds "
                         f">= 0, got {value!r}")
    return seconds


def failures_of(failures: Any, seed: int | None) -> Fails:
    """``fails(task, attempt)`` from None (nothing fails), a dict (task -> how many of
    its first attempts fail), a probability per attempt (drawn from ``seed``), or a
    callable ``(task, attempt) -> bool``.

    Raises
    ------
    ValueError, TypeError
        a probability outside [0, 1], a count that is not a whole number >= 0.
    """
    if failures is None:
        return never
    if isinstance(failures, Mapping):
        for name, k in failures.items():
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ValueError(f"failures[{name!r}] must be how many of the task's first "
                                 f"attempts fail (a whole number >= 0), got {k!r}")
        return lambda name, attempt: attempt <= failures.get(name, 0)
    if isinstance(failures, (int, float)) and not isinstance(failures, bool):
        if not 0 <= failures <= 1:
            raise ValueError(f"a failure probability must be between 0 and 1, got {failures!r}")
        rng = random.Random(seed)
        return lambda _name, _attempt: rng.random() < failures
    if callable(failures):
        return lambda name, attempt: bool(failures(name, attempt))
    raise TypeError("failures must be a dict {task: failing attempts}, a probability, or a "
                    f"function (task, attempt) -> bool; got {type(failures).__name__}")


# -- the result -----------------------------------------------------------------------
@dataclass
class Span:
    """One simulated attempt: who ran it, when, and how it ended."""

    task: str
    attempt: int
    worker: str
    start: float
    end: float
    state: str          # succeeded, failed, retrying (failed with a retry to come), cancelled...


@dataclass
class Schedule:
    """What a simulation did: every event, and the attempts laid out on workers."""

    names: list[str]
    workers: int
    policy: str
    origin: float = 0.0    # the clock's time at the start; spans count from it
    events: list[Event] = field(default_factory=list)

    _derived: dict[str, tuple[int, Any]] = field(default_factory=dict, repr=False,
                                                 compare=False)

    def _once(self, what: str, make: Callable[[], Any]) -> Any:
        # A simulation's summary reads spans and waits several times; each is one
        # walk over the events, done again only when there are more (a stepped one).
        seen, value = self._derived.get(what, (-1, None))
        if seen != len(self.events):
            value = make()
            self._derived[what] = (len(self.events), value)
        return value

    @property
    def spans(self) -> list[Span]:
        """Every attempt that ran, in the order they started."""
        return list(self._once("spans", self._spans))

    def _spans(self) -> list[Span]:
        started: dict[tuple[str, int], float] = {}
        out = []
        for ev in self.events:
            task, attempt, frm, to, at, detail = ev[2], ev[3], ev[4], ev[5], ev[6], ev[7]
            if frm == to:
                continue   # a note that changes no state (a missed deadline)
            if to == "running":
                started[task, attempt] = at - self.origin
            elif frm == "running" and to in _END_STATES:
                start = started.pop((task, attempt))
                worker = (detail or {}).get("worker", "")
                out.append(Span(task, attempt, worker, start, at - self.origin, to))
        out.sort(key=lambda s: (s.start, s.worker))
        return out

    def start_order(self) -> list[str]:
        """Task names in the order their first attempts started."""
        seen: dict[str, None] = {}
        for ev in self.events:
            if ev[5] == "running":
                seen.setdefault(ev[2])
        return list(seen)

    @property
    def makespan(self) -> float:
        """From the start (time 0) to the end of the last attempt."""
        # The virtual clock never goes back, so the events are in time order: the last
        # attempt's end is the last event out of running (not a walk over every span).
        for ev in reversed(self.events):
            if ev[4] == "running":
                return ev[6] - self.origin
        return 0.0

    def waits(self) -> dict[str, float]:
        """Seconds each task spent ready but not running (all its attempts)."""
        return dict(self._once("waits", self._waits))

    def _waits(self) -> dict[str, float]:
        ready_since: dict[str, float] = {}
        waited = dict.fromkeys(self.names, 0.0)
        for ev in self.events:
            task, frm, to, at = ev[2], ev[4], ev[5], ev[6]
            if frm == to:
                continue   # a missed deadline: the task goes on waiting
            if to == "ready":
                ready_since[task] = at
            elif frm == "ready" and task in ready_since:
                waited[task] += at - ready_since.pop(task)   # a difference: no origin
        return waited

    def utilisation(self) -> dict[str, float]:
        """Busy fraction of each worker over the makespan."""
        busy = {worker_name(k): 0.0 for k in range(self.workers)}
        for s in self.spans:
            busy[s.worker] = busy.get(s.worker, 0.0) + (s.end - s.start)
        span = self.makespan
        return {w: (b / span if span else 0.0) for w, b in busy.items()}

    def final_states(self) -> dict[str, str]:
        out = dict.fromkeys(self.names, "pending")
        for ev in self.events:
            out[ev[2]] = ev[5]
        return out


class _SimEngine(Engine):
    """The engine, every decision its own, with what a simulation has no use for left out.

    No code runs, so an attempt is handed to the executor without its function
    and its inputs.  The events go straight into the schedule (the engine's
    buffer is ``schedule.events``); a flush hands the sinks, if any, what is new.
    """

    def __init__(self, graph: Graph, specs: Sequence[TaskSpec], schedule: Schedule,
                 executor: SimulatedExecutor, sinks: Sequence[Sink], **options: Any):
        super().__init__(graph, specs, executor, sinks=sinks, **options)
        self._buf = schedule.events
        self._published = 0
        self._execute = executor.submit

    def _submit(self, token: Token, ctx: TaskContext) -> None:
        self._execute(token, None, _NO_INPUTS, ctx)

    def _flush(self) -> None:
        # Advanced with no sink too: one added later gets a snapshot, then only
        # the events after it.  No code runs, so there are no logs or values.
        end = len(self._buf)
        if end > self._published:
            if self.sinks:
                self._publish("events", self._buf[self._published:end])
            self._published = end


_NO_INPUTS: dict[str, Any] = {}


def _engine(graph: Graph, specs: Sequence[TaskSpec], schedule: Schedule, clock: VirtualClock,
            duration: Duration, fails: Fails, seed: int | None, mode: str,
            sinks: Sequence[Sink], run_id: str, scheduling: dict[str, Any]) -> Engine:
    executor = SimulatedExecutor(schedule.workers, clock, duration, fails)
    return _SimEngine(graph, specs, schedule, executor, sinks, clock=clock, mode=mode,
                      policy=schedule.policy, run_id=run_id, seed=seed, **scheduling)


def simulate(graph: Graph, specs: Sequence[TaskSpec], *, workers: int,
             policy: str = "priority", duration: Duration | None = None,
             fails: Fails | None = None, seed: int | None = None, mode: str = "eager",
             sinks: Sequence[Sink] = (), run_id: str = "simulation", start: float = 0.0,
             pools: dict[str, int] | None = None, inherit_priority: bool = False,
             history: dict[str, float] | None = None) -> Schedule:
    """Run ``specs`` on ``workers`` simulated workers to the end; the schedule.

    ``duration`` and ``fails`` are as :func:`durations_of` and :func:`failures_of`
    make them (default: every attempt takes :data:`DEFAULT_DURATION` and succeeds).
    ``sinks`` also get the events, as in a real run; their times count from
    ``start`` (the schedule's own count from 0).  ``pools``, ``inherit_priority``
    and ``history`` go to the engine's scheduler as in a real run.
    """
    schedule = Schedule(list(graph.names), workers, policy, origin=start)
    clock = VirtualClock(start)
    _engine(graph, specs, schedule, clock, duration or durations_of(None, graph.names),
            fails or failures_of(None, seed), seed, mode, sinks, run_id,
            {"pools": pools, "inherit_priority": inherit_priority, "history": history}).run()
    return schedule


class _StepClock(VirtualClock):
    """A virtual clock that waits for permission before each new instant."""

    def __init__(self, stepper: Stepper):
        super().__init__()
        self._stepper = stepper

    def wait(self, inbox: Inbox, deadline: float | None) -> Message | None:
        if inbox.empty():   # the engine is done with this instant: let the caller look
            self._stepper._pause()
        return super().wait(inbox, deadline)

    def due(self) -> list[Any]:
        """The messages scheduled and not yet delivered (the running attempts' outcomes)."""
        return [message for _when, _seq, message in self._due]


class _Stopped(BaseException):
    """Raised on a stepper's engine thread by :meth:`Stepper.close`: the run unwinds
    from where it stands (a BaseException: the engine catches no such thing)."""


class Stepper:
    """A simulation advanced by hand, one instant at a time (for teaching).

    The engine runs in a thread of its own and stops before each new instant.
    :meth:`step` lets it apply the next one (every ending at that time, then
    what starts) and returns the events it made; between steps
    :attr:`engine` can be read, since the engine is stopped.  :meth:`close`
    ends the thread where the run stands, without running the rest.
    """

    def __init__(self, graph: Graph, specs: Sequence[TaskSpec], *, workers: int,
                 policy: str = "priority", duration: Duration | None = None,
                 fails: Fails | None = None, seed: int | None = None, mode: str = "eager",
                 run_id: str = "simulation", pools: dict[str, int] | None = None,
                 inherit_priority: bool = False, history: dict[str, float] | None = None):
        self.schedule = Schedule(list(graph.names), workers, policy)
        self.clock = _StepClock(self)
        self._cond = threading.Condition()
        self._paused = False
        self._go = False
        self._stop = False
        self.done = False
        self.error: BaseException | None = None
        self.engine = _engine(graph, specs, self.schedule, self.clock,
                              duration or durations_of(None, graph.names),
                              fails or failures_of(None, seed), seed, mode, (), run_id,
                              {"pools": pools, "inherit_priority": inherit_priority,
                               "history": history})
        self._seen = 0
        self._thread = threading.Thread(target=self._run, name="nbflow-simulation",
                                        daemon=True)
        self._thread.start()
        self._wait_paused()

    def _run(self) -> None:
        try:
            self.engine.run(freeze=False)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by step(), never lost in the thread
            self.error = exc
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()

    def _pause(self) -> None:
        # On the engine's thread: wait until step() says go.
        with self._cond:
            self._paused = True
            self._cond.notify_all()
            while not self._go:
                self._cond.wait()
            self._go = False
            self._paused = False
            if self._stop:
                raise _Stopped

    def _wait_paused(self) -> None:
        with self._cond:
            while not (self._paused or self.done):
                self._cond.wait()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """End the engine's thread where the run stands (a reset: the rest is not run);
        :attr:`done` after it.  Safe to call twice, and from the engine's thread (a
        garbage collection there): the thread then ends at its next pause."""
        with self._cond:
            self._stop = self._go = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def running_workers(self) -> list[tuple[Token, str]]:
        """``((task, attempt), worker)`` of each running attempt: the worker its
        outcome, scheduled when it started, names."""
        return [(token, outcome.worker) for token, outcome in self.clock.due()]

    def new_events(self) -> list[Event]:
        """The events since the last call (the first call: everything so far)."""
        events = self.schedule.events[self._seen:]
        self._seen += len(events)
        return events

    def step(self) -> list[Event]:
        """Apply the next instant; the events it made (empty once the run is over)."""
        with self._cond:
            if self.done:
                return []
            self._go = True
            self._cond.notify_all()
        # Wait until the engine is stopped again: not still paused from before.
        with self._cond:
            while self._paused and self._go:
                self._cond.wait()
        self._wait_paused()
        return self.new_events()
