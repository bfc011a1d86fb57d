"""Building blocks for engine tests: task specs, a recording sink, a synchronous run.

The engine runs with the synchronous executor and a virtual clock unless a test
passes its own (``tests/executors`` passes the thread pool and the real clock),
so a run is deterministic and a retry back-off or timeout costs no real time.
The helpers are handed out as session fixtures so Hypothesis tests can use
them; a folder's conftest imports the fixtures it offers.
"""

from __future__ import annotations

import heapq
import itertools
import queue
from collections.abc import Callable, Iterable, Sequence

import pytest

from nbflow.core.clock import VirtualClock
from nbflow.core.engine import Engine
from nbflow.core.events import FROM, TASK, TO
from nbflow.core.graph import Graph
from nbflow.core.spec import TaskSpec
from nbflow.core.worker import execute
from nbflow.executors.sync import SyncExecutor


class Recorder:
    """A sink that keeps every event and log record, and the ``finish`` argument."""

    def __init__(self):
        self.log: list[tuple] = []
        self.output: list[tuple] = []
        self.finished: list = []

    def events(self, batch):
        self.log.extend(batch)

    def logs(self, batch):
        self.output.extend(batch)

    def finish(self, reason):
        self.finished.append(reason)

    def starts(self) -> list[str]:
        """Task names in the order their attempts started."""
        return [ev[TASK] for ev in self.log if ev[TO] == "running"]

    def of(self, name: str) -> list[tuple[str, str]]:
        """``(from, to)`` of every event of task ``name``."""
        return [(ev[FROM], ev[TO]) for ev in self.log if ev[TASK] == name]


def make_spec(name: str, fn: Callable | None = None, after: Iterable[str] = (),
              inputs: Iterable[str] = (), **options) -> TaskSpec:
    """A task ``name`` running ``fn`` (default: return the name); ``inputs`` are
    dependencies whose results ``fn`` receives as keyword arguments."""
    inputs = {dep: (dep, None) for dep in inputs}
    deps = tuple(dict.fromkeys([*after, *inputs]))
    return TaskSpec(name, fn or (lambda **_: name), deps, inputs, **options)


def make_engine(specs: Sequence[TaskSpec], *, workers: int = 1, executor=None, clock=None,
                **engine_options) -> tuple[Engine, Recorder]:
    """An engine for ``specs`` on the synchronous executor and a virtual clock."""
    recorder = Recorder()
    graph = Graph([s.name for s in specs], [s.deps for s in specs])
    engine = Engine(graph, specs, executor or SyncExecutor(workers), sinks=[recorder],
                    clock=clock or VirtualClock(), **engine_options)
    return engine, recorder


def run_specs(specs: Sequence[TaskSpec], **options) -> tuple[Engine, Recorder]:
    """Run ``specs`` to the end (options as :func:`make_engine`)."""
    engine, recorder = make_engine(specs, **options)
    engine.run()
    return engine, recorder


def states(engine: Engine) -> dict[str, str]:
    return {name: s.value for name, s in zip(engine.graph.names, engine.state)}


@pytest.fixture(scope="session")
def spec():
    return make_spec


@pytest.fixture(scope="session")
def engine_for():
    return make_engine


@pytest.fixture(scope="session")
def run():
    return run_specs


@pytest.fixture(scope="session")
def final_states():
    return states


class SimClock(VirtualClock):
    """A virtual clock that also delivers the outcomes a :class:`TimedExecutor`
    holds, each when its task's duration has passed."""

    def __init__(self):
        super().__init__()
        self.due: list[tuple] = []   # (when, seq, inbox message)

    def wait(self, inbox, deadline):
        try:
            return inbox.get_nowait()
        except queue.Empty:
            pass
        if self.due and (deadline is None or self.due[0][0] <= deadline):
            when, _, msg = heapq.heappop(self.due)
            self.t = max(self.t, when)
            return msg
        return super().wait(inbox, deadline)


class TimedExecutor:
    """Runs each attempt at once but reports it ``durations[task]`` seconds later
    on a :class:`SimClock` (default 1 s), so ``workers`` tasks overlap in time."""

    lookahead = 0

    def __init__(self, workers: int, clock: SimClock, durations: dict[str, float]):
        self.workers, self.clock, self.durations = workers, clock, durations
        self._seq = itertools.count()

    def start(self, report) -> None:
        pass

    def submit(self, token, fn, kwargs, ctx=None) -> None:
        out = execute(fn, kwargs, ctx)
        heapq.heappush(self.clock.due, (self.clock.now() + self.durations.get(ctx.name, 1.0),
                                        next(self._seq), (token, out)))

    def cancel(self, token) -> None:
        pass

    def shutdown(self) -> None:
        pass


def run_timed(specs: Sequence[TaskSpec], durations: dict[str, float], workers: int = 1,
              **options) -> tuple[Engine, Recorder]:
    """Run ``specs`` on ``workers`` overlapping in virtual time (options as make_engine)."""
    clock = SimClock()
    engine, recorder = make_engine(specs, executor=TimedExecutor(workers, clock, durations),
                                   clock=clock, **options)
    engine.run()
    return engine, recorder


@pytest.fixture(scope="session")
def timed():
    return run_timed
