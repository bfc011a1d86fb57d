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
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .api import env_policy, new_run_id
from .core.graph import Graph
from .core.policies import absolute, policy_name
from .core.scheduler import check_pools
from .core.simulate import Schedule, Stepper, durations_of, failures_of, simulate, worker_name
from .core.states import TERMINAL
from .gantt import Charts, Gantt, gantt_svg, time_text

if TYPE_CHECKING:
    from .api import Flow


class Simulation:
    """One simulated run of a flow (see :meth:`nbflow.Flow.simulate`)."""

    def __init__(self, flow_name: str, schedule: Schedule, params: dict[str, Any],
                 graph: Graph, deadlines: dict[str, float] | None = None,
                 resources: dict[str, dict[str, int]] | None = None):
        self.flow_name = flow_name
        self.schedule = schedule
        self.params = params
        self.graph = graph
        self.deadlines = deadlines or {}   # task -> seconds after the start
        self.resources = resources or {}   # task -> {pool: slots} it holds while it runs
        self.run_id: str | None = None   # set when the simulation was recorded
        # The widgets shown for it, refreshed after each change (a stepped one's steps).
        self._views: list[Any] = []

    def __repr__(self) -> str:
        return (f"<nbflow.Simulation of {self.flow_name!r}: {self.params['policy']}, "
                f"{self.params['workers']} workers, makespan {self.time(self.makespan)}>")

    @property
    def unit(self) -> str:
        """What the clock counts (``flow.simulate(unit=...)``): seconds unless told."""
        return self.params.get("unit", "s")

    def time(self, t: float) -> str:
        """``t`` on this simulation's clock, in its unit: ``3s``, ``125ms``, ``4 min``."""
        return time_text(t, self.unit)

    @property
    def makespan(self) -> float:
        """Simulated seconds from the start to the end of the last attempt."""
        return self.schedule.makespan

    @property
    def now(self) -> float:
        """The virtual clock's time (seconds from the start): the end, once it is over."""
        return self.makespan

    @property
    def done(self) -> bool:
        """Whether the simulation has run to its end (a stepped one may not have)."""
        return True

    def running_workers(self) -> dict[str, str]:
        """The worker each running task holds (none once the simulation is over)."""
        return {}

    @property
    def label(self) -> str:
        """What the widgets call this simulation: its run id when recorded."""
        return self.run_id or f"simulation ({self._setup})"

    @property
    def _setup(self) -> str:
        workers = self.params["workers"]
        levels = ", level by level" if self.params.get("mode") == "levels" else ""
        return f"{self.params['policy']}, {workers} worker{'' if workers == 1 else 's'}{levels}"

    @property
    def outcome(self) -> str:
        """The state a run that did the same would end in."""
        finals = set(self.schedule.final_states().values())
        return ("failed" if finals & {"failed", "upstream_failed"} else
                "cancelled" if "cancelled" in finals else "succeeded")

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

    def gantt(self, by: str = "worker", title: str | None = None):
        """A Gantt chart: one lane per worker (``by="worker"``) or per task (``"task"``).

        In JupyterLab it is the dashboard's timeline widget (zoom, pan, hover) with the
        static SVG beside it for saved notebooks; where no widget renders (nbconvert,
        papermill), the SVG alone (a :class:`~nbflow.gantt.Gantt`).  Its ``svg`` is the SVG.
        """
        from .notebook.context import renders_widgets
        if not renders_widgets():
            return Gantt(self.gantt_svg(by, title))
        from .notebook.widgets.simulated import SimulationGantt
        return SimulationGantt(self, by, title)

    def gantt_svg(self, by: str = "worker", title: str | None = None) -> str:
        """The Gantt chart as an SVG document (see :meth:`gantt`)."""
        if by not in ("worker", "task"):
            raise ValueError(f"by must be 'worker' or 'task', got {by!r}")
        lanes = ([worker_name(k) for k in range(self.schedule.workers)] if by == "worker"
                 else self.schedule.names)
        if title is None:
            title = (f"{self._setup}: makespan {self.time(self.makespan)}" if self.done
                     else f"{self._setup}: t={self.time(self.now)} so far")
        return gantt_svg(self.schedule.spans, lanes, by=by, title=title,
                         makespan=self.makespan, unit=self.unit)

    def dashboard(self, *, collapse_above: int | None = 300):
        """The dashboard (DAG, timeline, task table) of this simulation, from its events in
        memory (nothing is read from the store), times on the virtual clock; a static
        picture with the Gantt chart where no widget renders."""
        from .notebook.widgets.simulated import dashboard
        return dashboard(self, collapse_above)

    def _repr_svg_(self) -> str:
        return self.gantt_svg()

    def _ipython_display_(self) -> None:
        # Its Gantt chart: the live timeline where widgets render, else the SVG.
        from IPython.display import display
        display(self.gantt())


class SteppedSimulation(Simulation):
    """A simulation advanced one instant at a time (``flow.simulate(..., step=True)``)."""

    def __init__(self, flow_name: str, make: Callable[[], Stepper], params: dict[str, Any],
                 deadlines: dict[str, float] | None = None,
                 resources: dict[str, dict[str, int]] | None = None):
        self._make = make
        self._start()
        super().__init__(flow_name, self.schedule, params, self._stepper.engine.graph,
                         deadlines, resources)

    def _start(self) -> None:
        self._stepper = stepper = self._make()
        stepper.new_events()
        self.schedule = stepper.schedule
        # A simulation dropped between two steps ends its engine's thread with it (the
        # callback holds the stepper, not the simulation).
        self._closing = weakref.finalize(self, stepper.close)

    def __repr__(self) -> str:
        return (f"<nbflow.SteppedSimulation of {self.flow_name!r}: {self.params['policy']}, "
                f"{self.params['workers']} workers, t={self.time(self.now)}"
                + (", over>" if self.done else ">"))

    @property
    def done(self) -> bool:
        return self._stepper.done

    @property
    def now(self) -> float:
        return self._stepper.clock.now()

    @property
    def outcome(self) -> str:
        return super().outcome if self.done else "stepping"

    def step(self) -> str:
        """Apply the next instant (every attempt ending then, and what starts); says what
        happened, one line per change."""
        events = self._stepper.step()
        if not events:
            said = "the run is over" if self.done else "nothing happened"
        else:
            said = f"t={self.time(self.now)}: " + "; ".join(f"{ev[2]} {ev[4]} -> {ev[5]}"
                                                     for ev in events)
        self._changed(said)
        return said

    def run(self) -> SteppedSimulation:
        """Step to the end."""
        while not self.done:
            self._stepper.step()
        self._changed("the run is over")
        return self

    def reset(self) -> SteppedSimulation:
        """Back to the start (time 0, nothing run), with the same inputs and seed."""
        # The old run stops where it stands (its thread ends, nothing more of it is run)
        # and a new engine starts from the same inputs: what a new simulation would be.
        self._closing()
        self._start()
        self._changed("reset to the start")
        return self

    def running_workers(self) -> dict[str, str]:
        """The worker each running task holds."""
        names = self.schedule.names
        return {names[i]: worker for (i, _a), worker in self._stepper.running_workers()}

    def widget(self, *, collapse_above: int | None = 300):
        """The step view: Step, Run and Reset buttons, the clock, the ready queue in the
        policy's order, the running and finished tasks, and the DAG and the timeline as
        they go (displaying the simulation shows it too); a static picture of where it
        stands where no widget renders."""
        from .notebook.widgets.simulated import stepper
        return stepper(self, collapse_above)

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget())

    def _changed(self, said: str) -> None:
        for view in list(self._views):
            view.refresh(said)

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
                  record: bool = False, inherit_priority: bool | None = None,
                  unit: str = "s") -> Simulation:
    """``flow.simulate``: see its docstring."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if not isinstance(unit, str) or len(unit) > 12 or not all(c.isalpha() for c in unit):
        raise ValueError(f'unit must be a short word of letters such as "s", "ms", "min" or '
                         f'"" (plain numbers), got {unit!r}')
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
    if unit != "s":
        params["unit"] = unit
    if flow.pools:
        params["pools"] = dict(flow.pools)
    resources = {s.name: dict(s.resources) for s in specs if s.resources}
    if step:
        if record:
            raise ValueError("record=True needs the whole run: use it without step=True")
        # A reset starts again from the same inputs: a new failure draw from the seed.
        def make() -> Stepper:
            return Stepper(graph, specs, workers=workers, policy=policy, duration=duration,
                           fails=failures_of(failures, seed), seed=seed, mode=mode,
                           **scheduling)
        return SteppedSimulation(flow.name, make, params, _deadlines(specs, 0.0), resources)
    if not record:
        schedule = simulate(graph, specs, workers=workers, policy=policy, duration=duration,
                            fails=fails, seed=seed, mode=mode, **scheduling)
        return Simulation(flow.name, schedule, params, graph, _deadlines(specs, 0.0),
                          resources)
    # Recorded: a run of the store like any other, marked simulated, its virtual
    # clock starting now so that its times read as times.
    store = flow.store
    run_id, created = new_run_id(), time.time()
    store.create_run(run_id, flow.name, graph, [s.kind for s in specs], params, created)
    schedule = simulate(graph, specs, workers=workers, policy=policy, duration=duration,
                        fails=fails, seed=seed, mode=mode, sinks=[store.sink(run_id)],
                        run_id=run_id, start=created, **scheduling)
    sim = Simulation(flow.name, schedule, params, graph, _deadlines(specs, created), resources)
    sim.run_id = run_id
    store.finish_run(run_id, sim.outcome, created + schedule.makespan)
    return sim


def _deadlines(specs, start: float) -> dict[str, float]:
    """Each deadline as seconds after a simulation's start (a datetime one too)."""
    return {s.name: absolute(s.deadline, start) - start for s in specs if s.deadline is not None}


def compare(flow: Flow, *, policies: Iterable[str] = ("fifo", "priority"),
            workers: Iterable[int] | int = (2, 4), durations: Any = None,
            failures: Any = None, seeds: Iterable[int | None] = (None,), default: float = 1.0,
            unit: str = "s"):
    """Simulate ``flow`` under every combination of policy, worker count and seed.

    Returns a pandas DataFrame, one row per simulation: policy, workers, seed,
    makespan, mean and max waiting time, mean utilisation, deadline misses.
    ``df.attrs["simulations"]`` holds the :class:`Simulation` objects, which
    :func:`gantts` draws side by side; ``unit`` labels their clocks, as in ``simulate``.
    """
    import pandas as pd
    workers = [workers] if isinstance(workers, int) else list(workers)
    sims = [simulate_flow(flow, workers=w, policy=p, durations=durations, failures=failures,
                          seed=s, default=default, unit=unit)
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
    return Charts([sim.gantt_svg(by, title) for sim, title in zip(sims, names)])
