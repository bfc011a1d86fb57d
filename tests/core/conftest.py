"""Building blocks for engine tests: task specs, a recording sink, a synchronous run.

Core tests run the engine with the synchronous executor and a virtual clock, so
a run is deterministic and a retry back-off or timeout costs no real time.  The
helpers are handed out as session fixtures so Hypothesis tests can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pytest

from nbflow.core.clock import VirtualClock
from nbflow.core.engine import Engine
from nbflow.core.events import FROM, TASK, TO
from nbflow.core.graph import Graph
from nbflow.core.spec import TaskSpec
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
