"""``flow.simulate``, ``nbflow.compare``: what a student or a pipeline author sees."""

from __future__ import annotations

import gc
import re
import threading
import time
import weakref

import pytest

import nbflow
from nbflow.core.graph import Graph
from nbflow.core.simulate import Stepper, durations_of
from nbflow.core.spec import TaskSpec
from nbflow.simulation import compare, gantts


def diamond(store=None) -> nbflow.Flow:
    flow = nbflow.Flow("diamond", store=store)

    def boom():
        raise AssertionError("a simulation must not run task code")

    for name, after in [("a", []), ("b", []), ("c", ["a"]), ("<d&e>", ["a", "b"])]:
        flow.task(boom, name=name, after=after)
    return flow


DURATIONS = {"a": 3, "b": 2, "c": 1, "<d&e>": 4}


def test_a_simulation_runs_no_code_and_sleeps_not():
    start = time.perf_counter()
    sim = diamond().simulate(workers=2, durations={**DURATIONS, "a": 3600})
    assert time.perf_counter() - start < 5
    assert sim.makespan == 3604 and sim.order == ["a", "b", "c", "<d&e>"]


def test_results_per_task_and_per_worker():
    sim = diamond().simulate(workers=2, durations=DURATIONS)
    tasks = sim.tasks()
    # at t=3 the worker free the longest (worker 1, since t=2) takes c
    assert tasks["c"] == {"state": "succeeded", "start": 3, "finish": 4, "worker": "worker 1",
                          "attempts": 1, "wait": 0.0}
    assert sim.utilisation() == {"worker 0": 7 / 7, "worker 1": 3 / 7}
    df = sim.status()
    assert list(df.columns) == ["task", "state", "start", "finish", "duration", "worker",
                                "attempts", "wait"]
    assert df.set_index("task")["duration"].to_dict() == {"a": 3, "b": 2, "c": 1, "<d&e>": 4}


def test_unknown_durations_take_the_default():
    sim = diamond().simulate(workers=4, durations={"a": 2}, default=0.5)
    assert {t: r["finish"] - r["start"] for t, r in sim.tasks().items()} == {
        "a": 2, "b": 0.5, "c": 0.5, "<d&e>": 0.5}


def test_one_worker_waits_are_counted():
    sim = diamond().simulate(workers=1, durations=DURATIONS)
    # a 0-3; b (ready at 0) 3-5; c (ready at 3) 5-6; <d&e> (ready at 5) 6-10
    assert sim.max_wait == 3 and sim.mean_wait == (0 + 3 + 2 + 1) / 4


def test_failures_with_a_seed_repeat():
    flow = nbflow.Flow("flaky")
    for k in range(20):
        flow.task(lambda: None, name=f"t{k}", retries=3, retry_delay=1.0)
    runs = [flow.simulate(workers=3, failures=0.4, seed=11).status().to_dict() for _ in range(2)]
    assert runs[0] == runs[1]
    assert max(runs[0]["attempts"].values()) > 1


def test_the_gantt_chart_is_an_svg_with_every_name_escaped():
    svg = diamond().simulate(workers=2, durations=DURATIONS).gantt()._repr_svg_()
    assert svg.startswith("<svg") and "&lt;d&amp;e&gt;" in svg and "<d&e>" not in svg
    assert "worker 0" in svg and "worker 1" in svg
    by_task = diamond().simulate(workers=2, durations=DURATIONS).gantt(by="task").svg
    assert by_task.count("<g><title>") == by_task.count("<rect") - 1 == 4
    with pytest.raises(ValueError, match="by must be 'worker' or 'task'"):
        diamond().simulate().gantt(by="lane")


def test_step_mode_shows_the_ready_queue_in_policy_order():
    flow = nbflow.Flow("steps")
    flow.task(lambda: None, name="first")
    for name, prio in [("low", 1), ("high", 9), ("mid", 5)]:
        flow.task(lambda: None, name=name, after=["first"], priority=prio)
    sim = flow.simulate(workers=1, durations={"first": 1, "low": 1, "high": 1, "mid": 1},
                        step=True)
    assert sim.state() == {"time": 0.0, "ready": [], "running": ["first"], "finished": []}
    assert sim.step() == ("t=1s: first running -> succeeded; low pending -> ready; high pending "
                          "-> ready; mid pending -> ready; high ready -> running")
    assert sim.state() == {"time": 1.0, "ready": ["mid", "low"], "running": ["high"],
                           "finished": ["first"]}
    sim.run()
    assert sim.done and sim.order == ["first", "high", "mid", "low"]
    assert sim.step() == "the run is over"


def test_a_stepper_stops_before_each_instant():
    # The engine steps in a thread of its own: this is here, not in tests/core.
    specs = [TaskSpec(name, lambda: None, deps) for name, deps in
             [("a", ()), ("b", ()), ("c", ("a", "b"))]]
    graph = Graph([s.name for s in specs], [s.deps for s in specs])
    stepper = Stepper(graph, specs, workers=2,
                      duration=durations_of({"a": 1, "b": 3, "c": 1}, graph.names))
    assert [(ev[2], ev[5]) for ev in stepper.new_events()] == [
        ("a", "ready"), ("b", "ready"), ("a", "running"), ("b", "running")]
    assert stepper.clock.now() == 0 and not stepper.done
    assert [(ev[2], ev[5]) for ev in stepper.step()] == [("a", "succeeded")]
    assert stepper.clock.now() == 1
    assert [(ev[2], ev[5]) for ev in stepper.step()] == [
        ("b", "succeeded"), ("c", "ready"), ("c", "running")]
    assert [(ev[2], ev[5]) for ev in stepper.step()] == [("c", "succeeded")]
    assert stepper.done and stepper.step() == []


def test_a_paused_stepped_simulation_leaves_the_garbage_collector_alone():
    # A student may leave it between two steps for an hour: a run's gc freeze for
    # that long would let the kernel's garbage pile up.
    before = gc.get_threshold()
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    sim.step()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_a_recorded_simulation_is_a_run_marked_simulated(store_path):
    flow = diamond(store_path)
    sim = flow.simulate(workers=2, durations=DURATIONS, record=True)
    [run] = flow.store.runs()
    assert run["id"] == sim.run_id and run["state"] == "succeeded"
    assert '"simulated": true' in run["params"]
    assert run["finished"] - run["created"] == pytest.approx(7)
    assert {r["name"]: r["state"] for r in flow.store.tasks(sim.run_id)} == dict.fromkeys(
        DURATIONS, "succeeded")


def test_nothing_is_written_without_record(store_path):
    flow = diamond(store_path)
    flow.simulate(workers=2, durations=DURATIONS)
    assert flow.store.runs() == []


def test_compare_makes_one_row_per_combination():
    df = compare(diamond(), policies=["fifo", "priority"], workers=[1, 2],
                 durations=DURATIONS)
    assert list(df.columns) == ["policy", "workers", "seed", "makespan", "mean_wait",
                                "max_wait", "utilisation", "deadline_misses"]
    assert df.set_index(["policy", "workers"])["makespan"].to_dict() == {
        ("fifo", 1): 10, ("fifo", 2): 7, ("priority", 1): 10, ("priority", 2): 7}
    html = gantts(df)._repr_html_()
    assert html.count("<svg") == 4


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_workers_are_refused(workers):
    with pytest.raises(ValueError, match="workers must be a whole number >= 1"):
        diamond().simulate(workers=workers)


def test_history_durations_are_the_medians_of_recorded_runs(store_path):
    flow = nbflow.Flow("hist", store=store_path)
    naps = iter([0.05, 0.15, 0.10])

    @flow.task
    def nap():
        time.sleep(next(naps))

    @flow.task
    def never():
        raise ValueError("fails: no success to learn from")

    for _ in range(3):
        flow.run()
    flow.simulate(durations={"nap": 99, "never": 1}, record=True)   # not history: simulated
    learned = flow.history.expected(flow.build()[0], flow._bases)
    assert list(learned) == ["nap"] and 0.09 < learned["nap"] < 0.2
    sim = flow.simulate(durations="history", default=7)
    assert sim.tasks()["nap"]["finish"] == pytest.approx(learned["nap"])
    assert sim.tasks()["never"]["finish"] - sim.tasks()["never"]["start"] == 7


def test_pools_hold_in_a_simulation():
    flow = nbflow.Flow("pooled")
    flow.pool("db", slots=1)
    for name in ("q1", "q2"):
        flow.task(lambda: None, name=name, resources={"db": 1})
    flow.task(lambda: None, name="free")
    sim = flow.simulate(workers=3, durations={"q1": 2, "q2": 2, "free": 1})
    starts = {t: r["start"] for t, r in sim.tasks().items()}
    assert starts == {"q1": 0, "q2": 2, "free": 0}   # one slot: the queries take turns
    assert sim.params["pools"] == {"db": 1} and sim.pool_utilisation() == {"db": 1.0}
    flow.pool("db", slots=2)
    assert flow.simulate(workers=3, durations={"q1": 2, "q2": 1, "free": 1}
                         ).pool_utilisation() == {"db": 3 / 4}
    flow.task(lambda: None, name="big", resources={"db": 3})
    with pytest.raises(ValueError, match="big"):
        flow.simulate()


def pathfinder(**options) -> nbflow.Flow:
    """A low-priority task that urgent work needs, and medium work in between."""
    flow = nbflow.Flow("inversion", **options)
    flow.task(lambda: None, name="low", priority=1)
    flow.task(lambda: None, name="high", after=["low"], priority=10, deadline=3)
    for k in range(3):
        flow.task(lambda: None, name=f"mid{k}", priority=5)
    return flow


def test_priority_inheritance_applies_in_a_simulation():
    durations = {"low": 1, "high": 1, "mid0": 2, "mid1": 2, "mid2": 2}
    inverted = pathfinder().simulate(workers=1, durations=durations)
    assert inverted.order == ["mid0", "mid1", "mid2", "low", "high"]
    assert inverted.deadline_misses == ["high"]
    for sim in (pathfinder().simulate(workers=1, durations=durations, inherit_priority=True),
                pathfinder(inherit_priority=True).simulate(workers=1, durations=durations)):
        assert sim.order == ["low", "high", "mid0", "mid1", "mid2"]
        assert sim.deadline_misses == [] and sim.params["inherit_priority"] is True
    assert pathfinder(inherit_priority=True).simulate(
        workers=1, durations=durations, inherit_priority=False).order == inverted.order


def test_lateness_is_finish_minus_deadline():
    durations = {"low": 1, "high": 1, "mid0": 2, "mid1": 2, "mid2": 2}
    sim = pathfinder().simulate(workers=1, durations=durations)
    assert sim.lateness() == {"high": 8 - 3} and sim.max_lateness == 5
    early = pathfinder().simulate(workers=1, durations=durations, inherit_priority=True)
    assert early.lateness() == {"high": 2 - 3} and early.max_lateness == -1
    assert diamond().simulate().max_lateness is None


def test_a_policy_object_is_named_in_the_simulation():
    from nbflow.policies import Aging
    sim = diamond().simulate(workers=1, policy=Aging(rate=2.0, cap=5), durations=DURATIONS)
    assert sim.params["policy"] == repr(Aging(rate=2.0, cap=5))


def test_a_missed_deadline_changes_no_wait_and_no_span():
    # Deadlines pass while "late" runs (t=3, it runs 2-4) and while "later" is ready (t=1).
    flow = nbflow.Flow("late")
    flow.task(lambda: None, name="first", priority=5)
    flow.task(lambda: None, name="late", deadline=3)
    flow.task(lambda: None, name="later", deadline=1)
    sim = flow.simulate(workers=1, durations={"first": 2, "late": 2, "later": 1})
    tasks = sim.tasks()
    assert (tasks["late"]["start"], tasks["late"]["finish"], tasks["late"]["wait"]) == (2, 4, 2)
    assert (tasks["later"]["start"], tasks["later"]["wait"]) == (4, 4)
    assert sim.deadline_misses == ["late", "later"]
    assert sim.summary()["deadline_misses"] == 2


def simulation_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nbflow-simulation"]


def test_a_reset_is_the_start_again_without_running_the_rest():
    before = simulation_threads()
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True, failures=0.3, seed=5)
    fresh = sim.state()
    steps = [sim.step() for _ in range(2)]
    old = sim._stepper
    made, engine = len(old.schedule.events), weakref.ref(old.engine)
    sim.reset()
    # Cheap: the old run stopped where it stood (nothing more of it ran), its thread and
    # its engine are gone, and one thread steps the new one.
    assert len(old.schedule.events) == made and old.done
    del old
    gc.collect()
    assert engine() is None
    assert len(simulation_threads()) == len(before) + 1
    # Exact: the state of a new simulation, and the same steps again.
    assert sim.state() == fresh and sim.now == 0 and not sim.done
    assert sim.schedule.events and all(ev[6] == 0 for ev in sim.schedule.events)
    assert [sim.step() for _ in range(2)] == steps
    assert sim.run().makespan == diamond().simulate(
        workers=1, durations=DURATIONS, failures=0.3, seed=5).makespan


def test_a_stepped_simulation_let_go_ends_its_thread():
    before = simulation_threads()
    sim = diamond().simulate(workers=1, durations=DURATIONS, step=True)
    sim.step()
    assert len(simulation_threads()) == len(before) + 1
    del sim
    gc.collect()
    assert simulation_threads() == before


def test_the_gantt_chart_reads_on_a_light_and_a_dark_page():
    # JupyterLab shows an SVG output as an <img>: no colour of the page's theme reaches
    # it, so the chart brings its own background and inks that read on it.
    from colour_vision import contrast

    from nbflow.render import STATE_COLORS, STATE_INK

    flaky = diamond()
    flaky.remove("b")
    flaky.task(lambda: None, name="b", retries=1)
    sim = flaky.simulate(workers=2, durations={**DURATIONS, "a": 30}, failures={"b": 1})
    for svg in (sim.gantt_svg(), sim.gantt_svg(by="task")):
        assert "currentColor" not in svg
        width, height = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)"', svg).groups()
        paper = re.search(r'<svg [^>]*>\s*<rect width="(\d+)" height="(\d+)" [^>]*'
                          r'fill="(#[0-9a-f]{6})"', svg)
        assert paper and paper.groups()[:2] == (width, height)   # under all of it
        paper = paper.group(3)
        states = set()
        for bar, text in re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*/>'
                                    r'(?:<text [^>]*fill="(#[0-9a-f]{6})")?', svg)[1:]:
            state = next(s for s, c in STATE_COLORS.items() if c == bar)
            states.add(state)
            assert not text or contrast(bar, text) >= 3, (state, text)
        assert {"succeeded", "retrying"} <= states
        inks = set(re.findall(r'<text (?:(?!fill=)[^>])*fill="(#[0-9a-f]{6})"[^>]*>[^<#]',
                              svg)) - set(STATE_INK.values())
        assert inks and all(contrast(ink, paper) >= 4.5 for ink in inks), inks


def test_a_simulation_counts_in_the_unit_it_was_given():
    ms = diamond().simulate(workers=1, durations=DURATIONS, unit="ms")
    svg = ms.gantt_svg()
    assert 'aria-label="priority, 1 worker: makespan 10ms"' in svg
    ticks = re.findall(r'text-anchor="middle" [^>]*>([^<]*)<', svg)
    assert ticks[0] == "0ms" and ticks[-1] == "10ms" and not any(t.endswith("s") and
                                                                 not t.endswith("ms")
                                                                 for t in ticks)
    assert "3ms-5ms on worker 0" in svg and repr(ms).endswith("makespan 10ms>")
    minutes = diamond().simulate(workers=1, durations=DURATIONS, unit="min")
    assert "makespan 10 min" in minutes.gantt_svg() and "2 min<" in minutes.gantt_svg()
    plain = diamond().simulate(workers=1, durations=DURATIONS, unit="")
    assert re.findall(r'text-anchor="middle" [^>]*>([^<]*)<', plain.gantt_svg())[:2] == [
        "0", "2"]
    stepped = diamond().simulate(workers=1, durations=DURATIONS, unit="ms", step=True)
    assert stepped.step().startswith("t=3ms: a running -> succeeded")
    assert "t=3ms so far" in stepped.gantt_svg()
    levels = diamond().simulate(workers=2, durations=DURATIONS, mode="levels", unit="min")
    assert 'aria-label="priority, 2 workers, level by level: makespan 7 min"' in levels.gantt_svg()
    # Seconds unless told, as before.
    assert "makespan 10s" in diamond().simulate(workers=1, durations=DURATIONS).gantt_svg()
    df = compare(diamond(), policies=["fifo"], workers=[1], durations=DURATIONS, unit="ms")
    assert "makespan 10ms" in gantts(df)._repr_html_()
    for bad in ("<b>", "m s", 5, "x" * 13):
        with pytest.raises(ValueError, match="unit must be a short word"):
            diamond().simulate(unit=bad)
