"""A simulation's widgets without a browser: what the step view sends for Step, Run and
Reset, the virtual clock of a recorded simulation, and the static pictures where no widget
renders."""

from __future__ import annotations

import nbflow
from nbflow.gantt import Gantt
from nbflow.notebook.widgets.simulated import SimulationStepper, StaticPicture

EVIL = "<img src=x onerror=alert(1)>"


def diamond(**options) -> nbflow.Flow:
    flow = nbflow.Flow("diamond", **options)
    flow.task(lambda: 1, name="a")
    flow.task(lambda: 1, name=EVIL, after=["a"])
    flow.task(lambda: 1, name="c", after=["a"])
    flow.task(lambda: 1, name="d", after=[EVIL, "c"])
    return flow


DURATIONS = {"a": 2, EVIL: 3, "c": 1, "d": 1}


def test_the_step_views_buttons_step_run_and_reset(comms):
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    view = sim.widget()
    assert isinstance(view, SimulationStepper)
    assert view._step["running"] == [[0, "worker 0"]] and view._step["time"] == 0

    view._on_message(view, {"type": "step"}, [])
    [update] = comms.updates(view)
    assert update["_step"]["time"] == 2.0
    assert update["_step"]["ready"] == [2] and update["_step"]["running"] == [[1, "worker 0"]]
    assert update["_step"]["said"].startswith("t=2s: a running -> succeeded")
    snapshot = update["_snapshot"]
    assert snapshot["now"] == 2.0 and not snapshot["running"] and snapshot["outcome"] == "stepping"
    # The running attempt's bar names its worker from its start (the timeline's lane).
    assert [b[2] for b in snapshot["bars"] if b[4] is None] == ["worker 0"]

    view._on_message(view, {"type": "run"}, [])
    done = comms.updates(view)[-1]
    assert done["_step"]["done"] and done["_step"]["time"] == 7.0
    assert done["_snapshot"]["outcome"] == "succeeded"
    assert {row[1] for row in done["_snapshot"]["tasks"]} == {"succeeded"}

    view._on_message(view, {"type": "reset"}, [])
    reset = comms.updates(view)[-1]
    assert reset["_step"]["time"] == 0 and not reset["_step"]["done"]
    assert [row[1] for row in reset["_snapshot"]["tasks"]] == ["running", "pending", "pending",
                                                               "pending"]
    # Each message is newer than the last: the page drops an older snapshot.
    seqs = [u["_snapshot"]["seq"] for u in comms.updates(view)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # A step from Python reaches the view too.
    sim.step()
    assert comms.updates(view)[-1]["_step"]["time"] == 2.0
    assert sim.run().makespan == 7.0


def test_a_step_that_fails_is_said_on_the_page_whose_buttons_wait_for_an_answer(
        comms, monkeypatch):
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    view = sim.widget()

    def broken():
        raise RuntimeError(EVIL)

    monkeypatch.setattr(sim, "step", broken)
    view._on_message(view, {"type": "step"}, [])
    [update] = comms.updates(view)   # an answer: the page enables its buttons again
    assert update["_step"]["said"] == f"step failed: RuntimeError: {EVIL}"


def test_a_recorded_simulation_is_shown_on_its_virtual_clock(comms, store_path):
    sim = diamond(store=store_path).simulate(workers=2, durations=DURATIONS, record=True)
    dash = sim.dashboard()
    assert dash._graph["virtual"] and dash._graph["run"] == sim.run_id
    snapshot = dash._snapshot
    assert snapshot["t0"] == 0.0 and snapshot["t1"] == snapshot["now"] == sim.makespan == 6.0
    assert sorted((b[3], b[4]) for b in snapshot["bars"]) == [(0, 2), (2, 3), (2, 5), (5, 6)]


def test_a_simulations_dashboard_knows_which_tasks_hold_pool_slots(comms):
    flow = diamond()
    flow.pool("db", slots=1)
    flow.task(lambda: 1, name="load", resources={"db": 1})
    dash = flow.simulate(workers=2, durations=DURATIONS).dashboard()
    load = dash._graph["names"].index("load")
    assert dash._graph["pools"] == {"db": 1}
    assert dash._graph["resources"] == {load: {"db": 1}}   # the timeline's "by pool" lanes


def test_where_no_widget_renders_each_is_its_picture(monkeypatch):
    monkeypatch.setenv("NBFLOW_DASHBOARD", "static")
    sim = diamond().simulate(workers=2, durations=DURATIONS)
    assert isinstance(sim.gantt(), Gantt)
    picture = sim.dashboard()
    assert isinstance(picture, StaticPicture)
    html = picture._repr_html_()
    assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "succeeded: 4" in html and "<svg" in html   # the DAG (if dot) and the Gantt chart
    stepped = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    stepped.step()
    html = stepped.widget()._repr_html_()
    assert "step by step</b> · t = 2 s" in html
    assert "running</b> (1): &lt;img src=x onerror=alert(1)&gt;" in html


def test_the_dashboard_and_gantt_chart_of_a_stepped_simulation_follow_its_steps(comms):
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    dash, chart = sim.dashboard(), sim.gantt()
    assert [row[1] for row in dash._snapshot["tasks"]] == ["running", "pending", "pending",
                                                           "pending"]
    sim.step()
    [update] = comms.updates(dash)
    assert [row[1] for row in update["_snapshot"]["tasks"]] == ["succeeded", "running",
                                                                "ready", "pending"]
    assert update["_snapshot"]["now"] == 2.0 and len(update["_snapshot"]["bars"]) == 2
    assert "t=2s so far" in chart.svg and comms.updates(chart)[-1]["_snapshot"]["now"] == 2.0
    sim.reset()
    assert [row[1] for row in comms.updates(dash)[-1]["_snapshot"]["tasks"]] == [
        "running", "pending", "pending", "pending"]
    sim.run()
    assert {row[1] for row in comms.updates(dash)[-1]["_snapshot"]["tasks"]} == {"succeeded"}
    assert "makespan 7s" in chart.svg
    # Closed, a view is let go: the steps after it send it nothing.
    dash_id = dash.model_id
    dash.close()
    sent = [m for m in comms.messages if m.comm_id == dash_id]
    sim.reset()
    assert [m for m in comms.messages if m.comm_id == dash_id] == sent
    assert dash not in sim._views and chart in sim._views
