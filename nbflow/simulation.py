"""What ``flow.simulate`` and ``nbflow.compare`` return (``core/simulate.py`` runs them).

A :class:`Simulation` is the schedule of one simulated run: its makespan, each
task's start, finish, worker and attempts, the workers' utilisation, waiting
times, and drawings (a Gantt chart per worker or per task).  A
:class:`SteppedSimulation` is the same advanced by hand (``step()``), for
teaching; ``state()`` shows the clock, the ready queue in the policy's order,
what runs and what is done.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .api import env_policy, new_run_id
from .core.policies import absolute, policy_name
from .core.scheduler import check_pools
from .core.simulate import Schedule, Stepper, durations_of, failures_of, simulate, worker_name
from .core.states import TERMINAL
from .gantt import Charts, Gantt, gantt_svg

if TYPE_CHECKING:
    from .api import Flow


class Simulation:
    """One simulated run of a flow (see :meth:`nbflow.Flow.simulate`)."""

    def __init__(self, flow_name: str, schedule: Schedule, params: dict[str, Any],
                 deadlines: dict[str, float] | None = None,
                 resources: dict[str, dict[str, int]] | None = None):
        self.flow_name = flow_name
        self.schedule = schedule
        self.params = params
        self.deadlines = deadlines or {}   # task -> seconds after the start
        self.resources = resources or {}   # task -> {pool: slots} it holds while it runs
        self.run_id: str | None = None   # set when the simulation was recorded

    def __repr__(self) -> str:
        return (f"<nbflow.Simulation of {self.flow_name!r}: {self.params['policy']}, "
                f"{self.params['workers']} workers, makespan {self.makespan:g}s>")

    @property
    def makespan(self) -> float:
        """Simulated seconds from the start to the end of the last attempt."""
        return self.schedule.makespan

    @property
    def order(self) -> list[str]:
        """Tasks in the order they first started."""
        return self.schedule.start_order()

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Per task: ``start`` and ``finish`` (first start, last end), ``worker`` (of the
        last attempt), ``attempts``, ``state`` and ``wait`` (seconds ready but idle)."""
        out: dict[str, dict[str, Any]] = {}
        waits = self.schedule.waits()
        for name, state in self.schedule.final_states().items():
            out[name] = {"state": state, "start": None, "finish": None, "worker": None,
                         "attempts": 0, "wait": waits[name]}
        for s in self.schedule.spans:
            row = out[s.task]
            row["start"] = s.start if row["start"] is None else row["start"]
            row["finish"], row["worker"] = s.end, s.worker
            row["attempts"] = max(row["attempts"], s.attempt)
        return out

    def utilisation(self) -> dict[str, float]:
        """Busy fraction of each worker over the makespan."""
        return self.schedule.utilisation()

    @property
    def mean_wait(self) -> float:
        waits = self.schedule.waits()
        return sum(waits.values()) / len(waits) if waits else 0.0

    @property
    def max_wait(self) -> float:
        return max(self.schedule.waits().values(), default=0.0)

    @property
    def deadline_misses(self) -> list[str]:
        """Tasks whose deadline passed before they finished (when the flow sets deadlines)."""
        return sorted({ev[2] for ev in self.schedule.events
                       if ev[4] == ev[5] and ev[7] and "deadline" in ev[7]})

    def pool_utilisation(self) -> dict[str, float]:
        """Busy fraction of each pool's slots over the makespan (slot-seconds held
        by attempts over slots x makespan)."""
        pools, span = self.params.get("pools", {}), self.makespan
        held = dict.fromkeys(pools, 0.0)
        for s in self.schedule.spans:
            for pool, slots in self.resources.get(s.task, {}).items():
                held[pool] += slots * (s.end - s.start)
        return {pool: (held[pool] / (n * span) if span else 0.0) for pool, n in pools.items()}

    def lateness(self) -> dict[str, float]:
        """Per task with a deadline: its finish minus its deadline, in seconds (negative:
        early), as scheduling texts define lateness; a task that never ran is left out."""
        finish = {name: row["finish"] for name, row in self.tasks().items()}
        return {name: finish[name] - due for name, due in self.deadlines.items()
                if finish[name] is not None}

    @property
    def max_lateness(self) -> float | None:
        """The largest lateness (``L_max``), None when no task has a deadline."""
        return max(self.lateness().values(), default=None)

    def summary(self) -> dict[str, Any]:
        """One row of :func:`compare`."""
        util = self.utilisation()
        return {"policy": self.params["policy"], "workers": self.params["workers"],
                "seed": self.params.get("seed"), "makespan": self.makespan,
                "mean_wait": self.mean_wait, "max_wait": self.max_wait,
                "utilisation": sum(util.values()) / len(util) if util else 0.0,
                "deadline_misses": len(self.deadline_misses)}

    def status(self):
        """A pandas DataFrame, one row per task (state, start, finish, worker, attempts,
        wait), in declaration order."""
        import pandas as pd
        rows = [{"task": name, **row} for name, row in self.tasks().items()]
        df = pd.DataFrame(rows, columns=["task", "state", "start", "finish", "worker",
                                         "attempts", "wait"])
        df.insert(4, "duration", df["finish"] - df["start"])
        return df

    def gantt(self, by: str = "worker", title: str | None = None) -> Gantt:
        """A Gantt chart: one lane per worker (``by="worker"``) or per task (``"task"``)."""
        if by not in ("worker", "task"):
            raise ValueError(f"by must be 'worker' or 'task', got {by!r}")
        lanes = ([worker_name(k) for k in range(self.schedule.workers)] if by == "worker"
                 else self.schedule.names)
        if title is None:
            title = (f"{self.params['policy']}, {self.params['workers']} workers: "
                     f"makespan {self.makespan:g}s")
        return Gantt(gantt_svg(self.schedule.spans, lanes, by=by, title=title,
                               makespan=self.makespan))

    def _repr_svg_(self) -> str:
        return self.gantt().svg


class SteppedSimulation(Simulation):
    """A simulation advanced one instant at a time (``flow.simulate(..., step=True)``)."""

    def __init__(self, flow_name: str, stepper: Stepper, params: dict[str, Any],
                 deadlines: dict[str, float] | None = None,
                 resources: dict[str, dict[str, int]] | None = None):
        super().__init__(flow_name, stepper.schedule, params, deadlines, resources)
        self._stepper = stepper
        stepper.new_events()

    @property
    def done(self) -> bool:
        return self._stepper.done

    @property
    def now(self) -> float:
        return self._stepper.clock.now()

    def step(self) -> str:
        """Apply the next instant (every attempt ending then, and what starts); says what
        happened, one line per change."""
        events = self._stepper.step()
        if not events:
            return "the run is over" if self.done else "nothing happened"
        return f"t={self.now:g}s: " + "; ".join(f"{ev[2]} {ev[4]} -> {ev[5]}" for ev in events)

    def run(self) -> SteppedSimulation:
        """Step to the end."""
        while not self.done:
            self._stepper.step()
        return self

    def state(self) -> dict[str, Any]:
        """The clock, the ready queue in the policy's order, what runs, what is done."""
        engine = self._stepper.engine
        names = engine.graph.names
        running = sorted({names[i] for i, _a in engine.running})
        done = [n for n, s in zip(names, engine.state) if s in TERMINAL]
        return {"time": self.now, "ready": [names[i] for i in engine.ready.ordered()],
                "running": running, "finished": done}




def simulate_flow(flow: Flow, *, workers: int = 4, policy: str | None = None,
                  durations: Any = None, default: float = 1.0, failures: Any = None,
                  seed: int | None = None, mode: str = "eager", step: bool = False,
                  record: bool = False, inherit_priority: bool | None = None) -> Simulation:
    """``flow.simulate``: see its docstring."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    graph, specs = flow.build()
    check_pools(specs, flow.pools)
    policy = next(p for p in (policy, flow.policy, env_policy(), "priority") if p is not None)
    inherit = flow.inherit_priority if inherit_priority is None else bool(inherit_priority)
    # What a real run's scheduler gets (Flow.run): the flow's pools, the inheritance,
    # and the recorded durations for the policies that rank by them.
    scheduling = {"pools": flow.pools, "inherit_priority": inherit,
                  "history": flow._expected_durations(policy, graph)}
    if isinstance(durations, str) and durations == "history":
        # The medians the duration-ranking policies read (store/history.py), by code.
        durations = flow.history.expected(graph, flow._bases)
    duration = durations_of(durations, graph.names, default)
    fails = failures_of(failures, seed)
    params = {"workers": workers, "policy": policy_name(policy), "seed": seed, "mode": mode,
              "simulated": True}
    if inherit:
        params["inherit_priority"] = True
    if flow.pools:
        params["pools"] = dict(flow.pools)
    resources = {s.name: dict(s.resources) for s in specs if s.resources}
    if step:
        if record:
            raise ValueError("record=True needs the whole run: use it without step=True")
        stepper = Stepper(graph, specs, workers=workers, policy=policy, duration=duration,
                          fails=fails, seed=seed, mode=mode, **scheduling)
        return SteppedSimulation(flow.name, stepper, params, _deadlines(specs, 0.0),
                                 resources)
    if not record:
        schedule = simulate(graph, specs, workers=workers, policy=policy, duration=duration,
                            fails=fails, seed=seed, mode=mode, **scheduling)
        return Simulation(flow.name, schedule, params, _deadlines(specs, 0.0), resources)
    # Recorded: a run of the store like any other, marked simulated, its virtual
    # clock starting now so that its times read as times.
    store = flow.store
    run_id, created = new_run_id(), time.time()
    store.create_run(run_id, flow.name, graph, [s.kind for s in specs], params, created)
    schedule = simulate(graph, specs, workers=workers, policy=policy, duration=duration,
                        fails=fails, seed=seed, mode=mode, sinks=[store.sink(run_id)],
                        run_id=run_id, start=created, **scheduling)
    finals = set(schedule.final_states().values())
    state = ("failed" if finals & {"failed", "upstream_failed"} else
             "cancelled" if "cancelled" in finals else "succeeded")
    store.finish_run(run_id, state, created + schedule.makespan)
    sim = Simulation(flow.name, schedule, params, _deadlines(specs, created), resources)
    sim.run_id = run_id
    return sim


def _deadlines(specs, start: float) -> dict[str, float]:
    """Each deadline as seconds after a simulation's start (a datetime one too)."""
    return {s.name: absolute(s.deadline, start) - start for s in specs if s.deadline is not None}


def compare(flow: Flow, *, policies: Iterable[str] = ("fifo", "priority"),
            workers: Iterable[int] | int = (2, 4), durations: Any = None,
            failures: Any = None, seeds: Iterable[int | None] = (None,), default: float = 1.0):
    """Simulate ``flow`` under every combination of policy, worker count and seed.

    Returns a pandas DataFrame, one row per simulation: policy, workers, seed,
    makespan, mean and max waiting time, mean utilisation, deadline misses.
    ``df.attrs["simulations"]`` holds the :class:`Simulation` objects, which
    :func:`gantts` draws side by side.
    """
    import pandas as pd
    workers = [workers] if isinstance(workers, int) else list(workers)
    sims = [simulate_flow(flow, workers=w, policy=p, durations=durations, failures=failures,
                          seed=s, default=default)
            for p, w, s in itertools.product(list(policies), workers, list(seeds))]
    df = pd.DataFrame([sim.summary() for sim in sims])
    df.attrs["simulations"] = sims
    return df


def gantts(sims: Sequence[Simulation] | Any, by: str = "worker",
           titles: Sequence[str] | None = None) -> Charts:
    """The Gantt charts of several simulations side by side (or of ``compare``'s
    result); ``titles`` replaces their default titles, in order."""
    if hasattr(sims, "attrs"):
        sims = sims.attrs["simulations"]
    sims = list(sims)
    names = list(titles) if titles is not None else [None] * len(sims)
    if len(names) != len(sims):
        raise ValueError(f"{len(names)} titles for {len(sims)} simulations")
    return Charts([sim.gantt(by=by, title=title).svg for sim, title in zip(sims, names)])
