"""A simulation's widgets (``nbflow/simulation.py``): its dashboard, its Gantt chart and the
step-by-step view.

Each is the dashboard's widget (``dashboard.py``, the same front end and wire protocol),
fed from the simulation's events in memory instead of a run's bridge, with times on the
virtual clock: seconds from the simulation's start (``_graph["virtual"]`` tells the page).
A simulation is over, or stopped between two steps, so nothing is live: every change is
one whole snapshot, published when the simulation changes (a step, a run, a reset).
"""

from __future__ import annotations

import html
from typing import Any

import traitlets as t

from ...core.events import AT, DETAIL
from ...core.safe import safe_str
from ..bridge import TaskTable
from ..context import renders_widgets
from .dashboard import PARTS as DASHBOARD_PARTS
from .dashboard import Dashboard, initial_state
from .layout import DagLayout
from .static import framed, static_html

# Ready, running and finished tasks listed by name in the step view's static picture.
LISTED = 40


def _virtual(event: tuple, origin: float) -> tuple:
    """``event`` with its times counted from ``origin`` (a recorded simulation's start)."""
    detail = event[DETAIL]
    if detail and "started" in detail:
        detail = {**detail, "started": detail["started"] - origin,
                  "finished": detail["finished"] - origin}
    return (*event[:AT], event[AT] - origin, detail)


def snapshot_of(sim: Any, seq: int) -> dict:
    """The task table of ``sim`` as it stands (a bridge's snapshot, ``bridge.py``)."""
    schedule = sim.schedule
    table = TaskTable(list(schedule.names))
    origin = schedule.origin
    for event in schedule.events:
        table.apply(_virtual(event, origin) if origin else event)
    # A running attempt's worker is known from its start (the executor chose it).
    for name, worker in sim.running_workers().items():
        i = table.index[name]
        table.bars[i, table.attempt[i]][2] = worker
    now = sim.now
    snapshot = table.snapshot()
    snapshot.update(run=sim.label, seq=seq, now=now, t0=0.0, t1=now, running=False,
                    outcome=sim.outcome)
    return snapshot


def layout_of(sim: Any, collapse_above: int | None) -> DagLayout:
    return DagLayout(sim.flow_name, sim.graph, limit=collapse_above)


def dashboard_picture(sim: Any, layout: DagLayout, snapshot: dict, uid: str = "") -> str:
    """The static picture of a simulation's dashboard: the DAG as it stands, and the Gantt
    chart."""
    return (static_html(sim.flow_name, sim.label, layout, snapshot, uid=uid)
            + f"<div>{sim.gantt_svg()}</div>")


def panel_of(sim: Any, said: str = "", seq: int = 1) -> dict:
    """The step view's panel (``SimulationStepper._step``); ``seq`` tells two apart."""
    state, index = sim.state(), sim.schedule.names.index
    workers = sim.running_workers()
    return {"seq": seq, "time": state["time"], "said": said, "done": sim.done,
            "ready": [index(n) for n in state["ready"]],
            "running": [[index(n), workers.get(n)] for n in state["running"]],
            "finished": [index(n) for n in state["finished"]]}


def stepper_picture(sim: Any, panel: dict, layout: DagLayout, snapshot: dict,
                    uid: str = "") -> str:
    """The static picture of the step view: the clock, the three sets, then the dashboard's."""
    names = sim.schedule.names

    def listed(what: str, items: list) -> str:
        shown = ", ".join(html.escape(names[i if isinstance(i, int) else i[0]])
                          for i in items[:LISTED]) or "none"
        more = f" … and {len(items) - LISTED:,} more" if len(items) > LISTED else ""
        return f"<div><b>{what}</b> ({len(items):,}): {shown}{more}</div>"

    clock = f"{panel['time']:g} s" if sim.unit == "s" else sim.time(panel["time"])
    head = (f"<div><b>step by step</b> · t = {html.escape(clock)}"
            + (" · the run is over" if panel["done"] else "") + "</div>"
            + listed("ready, in the policy's order", panel["ready"])
            + listed("running", panel["running"]) + listed("finished", panel["finished"]))
    # Not framed apart: the live view hides the whole output its picture is in.
    return (f'<div style="font-family:sans-serif;font-size:13px">{head}</div>'
            + dashboard_picture(sim, layout, snapshot, uid))


class SimulationDashboard(Dashboard):
    """The dashboard (DAG, timeline, table) of a simulation: ``sim.dashboard()``.

    Same parameters as :class:`Dashboard` but ``sim`` (a :class:`nbflow.Simulation`)
    instead of a run or a flow; displayed, it is the live widget and, for saved
    notebooks and nbconvert, the static picture with the Gantt chart.
    """

    def __init__(self, sim: Any, *, collapse_above: int | None = 300,
                 parts: Any = None, timeline: str = "workers"):
        self._sim = sim
        self._timeline = timeline
        self._seq = 1
        super().__init__(sim, collapse_above=collapse_above, parts=parts)
        sim._views.append(self)   # a stepped simulation's steps and resets reach it

    def _first(self, sim: Any, _flow: Any) -> tuple[None, DagLayout, dict]:
        layout = layout_of(sim, self.collapse_above)
        index = {name: i for i, name in enumerate(sim.schedule.names)}
        holds = {index[name]: slots for name, slots in sim.resources.items() if name in index}
        state = initial_state(sim.flow_name, sim.label, layout, sim.params, holds)
        state["_graph"].update(virtual=True, timeline=self._timeline)
        if sim.unit != "s":   # the page labels the clock so; seconds are its default
            state["_graph"]["unit"] = sim.unit
        state["_snapshot"] = snapshot_of(sim, self._seq)
        return None, layout, state

    def refresh(self, said: str = "") -> None:
        """Show the simulation as it stands now (after a step or a reset); ``said``: what
        the change did."""
        self._seq += 1   # the page drops a snapshot older than the one it has
        state = self._state_now(said)
        with self._sync_lock:
            self._set_state(state)
        self._refresh_displays(state["_snapshot"])

    def _state_now(self, _said: str) -> dict:
        return {"_snapshot": snapshot_of(self._sim, self._seq)}

    def static_html(self, snapshot: dict | None = None) -> str:
        return dashboard_picture(self._sim, self._layout, snapshot or self._snapshot, self._uid)

    def close(self) -> None:
        # getattr: ipywidgets also calls this from __del__, after a failed __init__.
        views = getattr(getattr(self, "_sim", None), "_views", [])
        if self in views:
            views.remove(self)
        super().close()

    def __repr__(self) -> str:
        return f"<nbflow.{type(self).__name__} of {self._sim!r}>"


class SimulationGantt(SimulationDashboard):
    """``sim.gantt()`` where widgets render: the dashboard's timeline (one lane per worker,
    or per task), with the static SVG chart (``nbflow/gantt.py``) beside it for saved
    notebooks and nbconvert; ``svg`` is that chart."""

    PARTS = ("timeline",)

    def __init__(self, sim: Any, by: str = "worker", title: str | None = None):
        self._chart = by, title
        self.svg = sim.gantt_svg(by, title)
        super().__init__(sim, timeline="tasks" if by == "task" else "workers")

    def _state_now(self, said: str) -> dict:
        self.svg = self._sim.gantt_svg(*self._chart)   # the picture a save keeps
        return super()._state_now(said)

    def static_html(self, snapshot: dict | None = None) -> str:
        return framed(self.svg, self._uid)

    def _repr_svg_(self) -> str:
        return self.svg


class SimulationStepper(SimulationDashboard):
    """A stepped simulation's widget (``sim.widget()``, or display ``sim``): Step, Run and
    Reset, the clock, the ready queue in the policy's order, what runs and what is done,
    above the DAG and the timeline as they go.

    The buttons are handled by the kernel when it is idle: a step is a few engine turns,
    done in the message's handler.  ``_step`` is the panel's synced state::

        {"seq", "time", "said", "done", "ready": [i...], "running": [[i, worker]...],
         "finished": [i...]}   (i: a task's declaration index)
    """

    PARTS = ("stepper", "graph", "timeline")
    KNOWN_PARTS = (*DASHBOARD_PARTS, "stepper")
    _step = t.Dict().tag(sync=True)

    def _first(self, sim: Any, flow: Any) -> tuple[None, DagLayout, dict]:
        latest, layout, state = super()._first(sim, flow)
        state["_step"] = panel_of(sim)
        return latest, layout, state

    def _state_now(self, said: str) -> dict:
        return {**super()._state_now(said), "_step": panel_of(self._sim, said, self._seq)}

    def _on_message(self, widget: Any, content: Any, buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        action = {"step": self._sim.step, "run": self._sim.run, "reset": self._sim.reset}.get(
            kind) if isinstance(kind, str) else None
        if action is None:
            super()._on_message(widget, content, buffers)
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - said on the page, whose buttons wait for an answer
            self.refresh(f"{kind} failed: {type(exc).__name__}: {safe_str(exc)}")

    def static_html(self, snapshot: dict | None = None) -> str:
        return stepper_picture(self._sim, self._step, self._layout,
                               snapshot or self._snapshot, self._uid)



class StaticPicture:
    """A simulation's picture alone, where the front end renders no widgets (nbclient,
    papermill, nbconvert ``--execute``): it opens no comm, so the notebook holds no
    widget state."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html


def dashboard(sim: Any, collapse_above: int | None = 300) -> SimulationDashboard | StaticPicture:
    """``sim.dashboard()``: the widget, or its picture where no widget renders."""
    if renders_widgets():
        return SimulationDashboard(sim, collapse_above=collapse_above)
    return StaticPicture(dashboard_picture(sim, layout_of(sim, collapse_above),
                                           snapshot_of(sim, 1)))


def stepper(sim: Any, collapse_above: int | None = 300) -> SimulationStepper | StaticPicture:
    """``sim.widget()``: the step view, or its picture where no widget renders."""
    if renders_widgets():
        return SimulationStepper(sim, collapse_above=collapse_above)
    return StaticPicture(stepper_picture(sim, panel_of(sim), layout_of(sim, collapse_above),
                                         snapshot_of(sim, 1)))
